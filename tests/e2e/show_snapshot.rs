//! Snapshots of `ldnote show` (text and `--json`) on a fixed generated layout. The temp dir
//! prefix is replaced by `[TMP]` so the snapshots are stable.

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// A program with exact matches (one soname in two dirs), hints of every kind, and a
/// path-named DT_NEEDED; linked through ldnote.
fn noted_program(l: &Layout) -> std::path::PathBuf {
    let a = l.lib_in("pkgs/a/lib", "liba.so.1");
    l.lib_in("pkgs/b/lib", "liba.so.1");
    let b = l.lib_in("pkgs/b/lib", "libb.so");
    let noso = l.lib("pkgs/c/libbyname.so", None);
    let main = l.object("main", MAIN_C, &[]);
    let rp = [
        &l.pb("pkgs/a/lib")[..],
        b":$ORIGIN/../lib:",
        &l.pb("absent"),
        b"::",
        &l.pb("pkgs/b/lib"),
        b":",
    ]
    .concat();
    let out = l.p("bin/prog");
    std::fs::create_dir_all(l.p("bin")).expect("mkdir");
    run_ok(
        ldnote_cmd()
            .args([
                "link",
                "--",
                "gcc",
                "-Wl,--no-as-needed",
                "-Wl,--enable-new-dtags",
            ])
            .args(["-Xlinker", "-rpath", "-Xlinker"])
            .arg(std::ffi::OsString::from(
                <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&rp),
            ))
            .arg(&main)
            .arg(&a)
            .arg(&b)
            .arg(&noso)
            .arg("-o")
            .arg(&out),
    );
    out
}

fn show(l: &Layout, file: &Path, json: bool) -> (Option<i32>, String) {
    let mut c = ldnote_cmd();
    c.arg("show");
    if json {
        c.arg("--json");
    }
    let o = run(c.arg(file));
    let root = l.root().to_string_lossy().into_owned();
    let text = format!("{}{}", stdout_of(&o), stderr_of(&o)).replace(&root, "[TMP]");
    (o.status.code(), text)
}

#[test]
fn show_noted_program() {
    let l = Layout::new();
    let out = noted_program(&l);
    let (code, text) = show(&l, &out, false);
    assert_eq!(code, Some(0));
    insta::assert_snapshot!("show_text_noted", text);
    let (code, json) = show(&l, &out, true);
    assert_eq!(code, Some(0));
    insta::assert_snapshot!("show_json_noted", json);
    // The JSON is what the independent walker sees.
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    let desc = note_desc(&out).expect("note");
    let mut rebuilt = vec![];
    for e in v["entries"].as_array().expect("entries") {
        rebuilt.extend_from_slice(e["soname"].as_str().expect("soname").as_bytes());
        rebuilt.push(0);
        let paths: Vec<&str> = e["paths"]
            .as_array()
            .expect("paths")
            .iter()
            .map(|p| p.as_str().expect("str"))
            .collect();
        rebuilt.extend_from_slice(paths.join(":").as_bytes());
        rebuilt.push(0);
    }
    rebuilt.push(0);
    let root = l.root().to_string_lossy().into_owned();
    assert_eq!(
        String::from_utf8_lossy(&desc).replace(&root, "[TMP]"),
        String::from_utf8_lossy(&rebuilt)
    );
}

#[test]
fn show_without_note() {
    let l = Layout::new();
    let main = l.object("main", MAIN_C, &[]);
    let out = l.p("plain");
    run_ok(Command::new("gcc").arg(&main).arg("-o").arg(&out));
    let (code, text) = show(&l, &out, false);
    assert_eq!(code, Some(0));
    insta::assert_snapshot!("show_text_none", text);
    let (code, json) = show(&l, &out, true);
    assert_eq!(code, Some(0));
    insta::assert_snapshot!("show_json_none", json);
}

#[test]
fn show_malformed_note() {
    // A noted program whose descriptor lost its final double NUL: malformed, exit 1.
    let l = Layout::new();
    let out = noted_program(&l);
    let n = find_note(&out).expect("note");
    let mut data = std::fs::read(&out).expect("read");
    let at = data
        .windows(n.desc.len())
        .position(|w| w == n.desc)
        .expect("desc in file");
    let end = at + n.desc.len();
    data[end - 2] = b'X';
    data[end - 1] = b'Y';
    std::fs::write(&out, &data).expect("write");
    let (code, text) = show(&l, &out, false);
    assert_eq!(code, Some(1));
    insta::assert_snapshot!("show_text_malformed", text);
    let (code, json) = show(&l, &out, true);
    assert_eq!(code, Some(1));
    insta::assert_snapshot!("show_json_malformed", json);
}
