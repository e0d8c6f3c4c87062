//! `ldnote explain` against the real loaders: Debian 12's glibc 2.36 natively (strace of every
//! `openat`/`newfstatat`, LD_DEBUG=libs `trying file=` and `calling init:`, error messages), the
//! note-aware loader when one is built, a sysroot image under chroot, and every Debian cross target
//! under qemu-user (tests/explain/cross.rs). Layouts are built with real compilers in temp dirs.
//! Each case prints its prediction error (goal: 0).
use std::fs;
use std::process::Command;

use serde_json::Value;

mod common;
use common::{have, run_ok, skip_or_fail};
#[path = "explain/harness.rs"]
mod harness;
use harness::*;

#[path = "explain/cross.rs"]
mod cross;

#[test]
fn native_runpath_empty_missing_and_found_dirs() {
    if !native() {
        return;
    }
    let l = Lay::new("gcc");
    l.mkdir("empty");
    l.lib("libs/libfoo.so", &[], &[]);
    l.lib("libs/libbar.so", &[], &[]);
    let rp = format!(
        "-Wl,--enable-new-dtags,-rpath,{}:{}:{}",
        l.s("empty"),
        l.s("nonexist"),
        l.s("libs")
    );
    let exe = l.exe(
        "prog",
        &["libfoo.so", "libbar.so"],
        &[&format!("-L{}", l.s("libs")), &rp],
    );
    assert_eq!(
        native_case("runpath-empty-missing-found", &exe, l.dir.path(), &[]),
        0
    );
}

#[test]
fn native_many_dirs_hwcaps_subdirs_and_ld_library_path() {
    if !native() {
        return;
    }
    let l = Lay::new("gcc");
    let mut dirs = Vec::new();
    for i in 0..8 {
        if i % 3 != 0 {
            l.mkdir(&format!("d{i}"));
        }
        dirs.push(l.s(&format!("d{i}")));
    }
    l.lib("d7/liba.so", &[], &[]);
    l.lib("d5/libb.so", &[], &[]);
    // A glibc-hwcaps subdir that is active on every x86-64 host glibc 2.36 runs on? v2 is
    // not guaranteed, so put a copy in both v2 and the base dir: whichever the loader picks,
    // the prediction must pick the same.
    l.lib("hw/glibc-hwcaps/x86-64-v2/libh.so", &[], &[]);
    l.lib("hw/libh.so", &[], &[]);
    l.lib("llp/libl.so", &[], &[]);
    dirs.push(l.s("hw"));
    let rp = format!("-Wl,--enable-new-dtags,-rpath,{}", dirs.join(":"));
    let link = [
        format!("-L{}", l.s("d7")),
        format!("-L{}", l.s("d5")),
        format!("-L{}", l.s("hw")),
        format!("-L{}", l.s("llp")),
        rp,
    ];
    let link: Vec<&str> = link.iter().map(String::as_str).collect();
    let exe = l.exe("prog", &["liba.so", "libb.so", "libh.so", "libl.so"], &link);
    let llp = format!("{};{}::{}", l.s("nope"), l.s("d1"), l.s("llp"));
    assert_eq!(
        native_case(
            "many-dirs+hwcaps+LD_LIBRARY_PATH",
            &exe,
            l.dir.path(),
            &[("LD_LIBRARY_PATH", &llp)]
        ),
        0
    );
}

#[test]
fn native_relative_and_empty_components_with_known_cwd() {
    if !native() {
        return;
    }
    let l = Lay::new("gcc");
    l.lib("work/rel/librel.so", &[], &[]);
    l.lib("work/libcwd.so", &[], &[]);
    l.lib("abs/libabs.so", &[], &[]);
    // Leading empty, relative, absolute, trailing empty (libc then tried in the CWD).
    let rp = format!("-Wl,--enable-new-dtags,-rpath,:rel:nonrel:{}:", l.s("abs"));
    let link = [
        format!("-L{}", l.s("work/rel")),
        format!("-L{}", l.s("work")),
        format!("-L{}", l.s("abs")),
        rp,
    ];
    let link: Vec<&str> = link.iter().map(String::as_str).collect();
    let exe = l.exe("prog", &["librel.so", "libcwd.so", "libabs.so"], &link);
    assert_eq!(
        native_case("relative+empty components", &exe, &l.p("work"), &[]),
        0
    );
}

#[test]
fn native_relative_component_naming_a_file_aborts_runpath() {
    if !native() {
        return;
    }
    // BZ 31035 (<= 2.38): ENOTDIR under a relative component abandons the whole RUNPATH.
    let l = Lay::new("gcc");
    l.lib("libs/libfoo.so", &[], &[]);
    fs::write(l.p("work/afile").as_path(), b"x").unwrap_or_else(|_| {
        l.mkdir("work");
        fs::write(l.p("work/afile"), b"x").expect("write");
    });
    let rp = format!("-Wl,--enable-new-dtags,-rpath,afile:{}", l.s("libs"));
    let exe = l.exe(
        "prog",
        &["libfoo.so"],
        &[&format!("-L{}", l.s("libs")), &rp],
    );
    assert_eq!(
        native_case("relative ENOTDIR aborts", &exe, &l.p("work"), &[]),
        0
    );
}

#[test]
fn native_rpath_chains() {
    if !native() {
        return;
    }
    // A: exe RPATH + libA RPATH: libA's dependency found via the exe's RPATH.
    // B: libA RUNPATH blocks the exe's RPATH for libA's dependencies (load fails).
    // D: exe RPATH, libA RUNPATH, libC without paths: libC's dependency via the exe's RPATH.
    for (case, a_flags) in [
        ("A", "-Wl,--disable-new-dtags,-rpath,"),
        ("B", "-Wl,--enable-new-dtags,-rpath,"),
    ] {
        let l = Lay::new("gcc");
        l.lib("e/libdep.so", &[], &[]);
        let a = [format!("-L{}", l.s("e")), format!("{a_flags}{}", l.s("a"))];
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        l.lib("e/libA.so", &["libdep.so"], &a);
        let exe = l.exe(
            "prog",
            &["libA.so"],
            &[
                &format!("-L{}", l.s("e")),
                &format!("-Wl,--disable-new-dtags,-rpath,{}", l.s("e")),
            ],
        );
        assert_eq!(
            native_case(&format!("RPATH chain {case}"), &exe, l.dir.path(), &[]),
            0
        );
    }
    let l = Lay::new("gcc");
    l.lib("e/libdep2.so", &[], &[]);
    l.lib("a/libC.so", &["libdep2.so"], &[&format!("-L{}", l.s("e"))]);
    l.lib(
        "e/libA.so",
        &["libC.so"],
        &[
            &format!("-L{}", l.s("a")),
            &format!("-Wl,--enable-new-dtags,-rpath,{}", l.s("a")),
        ],
    );
    let exe = l.exe(
        "prog",
        &["libA.so"],
        &[
            &format!("-L{}", l.s("e")),
            &format!("-Wl,--disable-new-dtags,-rpath,{}", l.s("e")),
            &format!("-Wl,-rpath-link,{}", l.s("a")),
        ],
    );
    assert_eq!(native_case("RPATH chain D", &exe, l.dir.path(), &[]), 0);
}

#[test]
fn native_origin_wrong_class_and_nodeflib() {
    if !native() {
        return;
    }
    let l = Lay::new("gcc");
    l.lib("app/lib/sub/libp.so", &[], &[]);
    l.lib(
        "app/lib/libo.so",
        &["libp.so"],
        &[
            &format!("-L{}", l.s("app/lib/sub")),
            "-Wl,--enable-new-dtags,-rpath,$ORIGIN/sub",
        ],
    );
    // A 32-bit libw.so first in the path: opened, skipped, then the 64-bit one.
    let i686 = which::which("i686-linux-gnu-gcc").is_ok();
    if i686 {
        let w = Lay {
            cc: "i686-linux-gnu-gcc",
            dir: tempfile::tempdir().expect("tmp"),
        };
        w.lib("libw.so", &[], &[]);
        l.mkdir("w32");
        fs::copy(w.p("libw.so"), l.p("w32/libw.so")).expect("copy");
    }
    l.lib("w64/libw.so", &[], &[]);
    let rp = format!(
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib:{}:{}",
        l.s("w32"),
        l.s("w64")
    );
    let link = [
        format!("-L{}", l.s("app/lib")),
        format!("-L{}", l.s("w64")),
        format!("-Wl,-rpath-link,{}", l.s("app/lib/sub")),
        rp,
    ];
    let link: Vec<&str> = link.iter().map(String::as_str).collect();
    l.mkdir("app/bin");
    let exe = l.exe("app/bin/prog", &["libo.so", "libw.so"], &link);
    assert_eq!(
        native_case("$ORIGIN + wrong class", &exe, l.dir.path(), &[]),
        0
    );
    // DF_1_NODEFLIB: the cache's libc is rejected and the default dirs are skipped.
    let mut link2 = link.clone();
    link2.push("-Wl,-z,nodefaultlib");
    let exe2 = l.exe("app/bin/prog2", &["libo.so", "libw.so"], &link2);
    assert_eq!(native_case("DF_1_NODEFLIB", &exe2, l.dir.path(), &[]), 0);
}

/// Programs noted at link time by `ldnote link`: the stock prediction still equals strace
/// (stock glibc ignores the note), the note-aware prediction resolves every name to the same
/// file with no more failed calls; and, when a note-aware loader is built, its real run
/// (strace and LD_DEBUG) equals the note-aware prediction.
#[test]
fn native_noted_program_stock_and_note_aware() {
    if !native() {
        return;
    }
    let l = Lay::new("gcc");
    l.mkdir("empty");
    let mut dirs = vec![l.s("empty")];
    for i in 0..6 {
        l.lib(&format!("d{i}/lib{i}.so"), &[], &[]);
        dirs.push(l.s(&format!("d{i}")));
    }
    l.lib("h/glibc-hwcaps/x86-64-v2/libh.so", &[], &[]);
    l.lib("h/libh.so", &[], &[]);
    dirs.push(l.s("h"));
    let names: Vec<String> = (0..6)
        .map(|i| format!("lib{i}.so"))
        .chain(["libh.so".to_string()])
        .collect();
    let mut args: Vec<String> = vec![
        "link".into(),
        "--".into(),
        "gcc".into(),
        "-o".into(),
        l.s("prog"),
        l.s("main.c"),
        "-Wl,--no-as-needed".into(),
    ];
    fs::write(l.p("main.c"), "int main(void){return 0;}\n").expect("src");
    for d in &dirs {
        args.push(format!("-L{d}"));
    }
    for n in &names {
        args.push(format!("-l:{n}"));
    }
    args.push(format!("-Wl,--enable-new-dtags,-rpath,{}", dirs.join(":")));
    let mut with_loader = args.clone();
    run_ok(Command::new(env!("CARGO_BIN_EXE_ldnote")).args(&args));
    let exe = l.p("prog");
    assert_eq!(
        native_case("noted program, stock loader", &exe, l.dir.path(), &[]),
        0
    );
    let j = explain(&[], &exe, l.dir.path());
    let resolved = |run: &Value| -> Vec<(String, String)> {
        run["searches"]
            .as_array()
            .expect("s")
            .iter()
            .map(|s| {
                (
                    s["name"].as_str().unwrap_or("").into(),
                    s["path"].as_str().unwrap_or("").into(),
                )
            })
            .collect()
    };
    assert_eq!(
        resolved(&j["stock"]),
        resolved(&j["note"]),
        "the note changes what is loaded"
    );
    let (s, n) = (&j["stock"]["totals"], &j["note"]["totals"]);
    let fails =
        |t: &Value| t["openat_fail"].as_u64().unwrap_or(0) + t["stat_fail"].as_u64().unwrap_or(0);
    println!(
        "noted program: failed openat+stat stock {} -> note-aware {}",
        fails(s),
        fails(n)
    );
    assert!(fails(n) < fails(s));
    // `--plan` on the same program linked without ldnote predicts what the note would do.
    let mut plain: Vec<String> = args[2..].to_vec();
    plain[2] = l.s("prog-plain");
    run_ok(Command::new(&plain[0]).args(&plain[1..]));
    let planned = explain(&["--plan"], &l.p("prog-plain"), l.dir.path());
    assert_eq!(planned["note"]["objects"][0]["note"], "planned");
    assert_eq!(
        predicted_trace(&planned["note"]),
        predicted_trace(&j["note"]),
        "--plan differs from the linked note"
    );

    let Some(ldso) = note_ldso() else {
        // .ci/run builds it first; in CI its absence is an error, not a skip.
        return skip_or_fail(
            "note-aware loader comparison",
            "no note-aware loader (LDNOTE_NOTE_LDSO unset and no finished loader/build.sh output)",
        );
    };
    // The same program with the note-aware loader as PT_INTERP.
    with_loader[4] = l.s("prog-note");
    with_loader.push(format!("-Wl,--dynamic-linker={}", ldso.display()));
    // Its libc: in its own lib dir (an installed build), or next to a bare ld.so copy.
    with_loader.push(format!(
        "-Wl,-rpath,{}",
        ldso.parent().expect("dir").display()
    ));
    run_ok(Command::new(env!("CARGO_BIN_EXE_ldnote")).args(&with_loader));
    let exe = l.p("prog-note");
    let st = l.p("strace-note.out");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=execve,openat,newfstatat", "-o"])
        .arg(&st)
        .arg(&exe)
        .current_dir(l.dir.path())
        .env_remove("LD_LIBRARY_PATH")
        .status()
        .expect("strace");
    let actual = parse_strace(&fs::read_to_string(&st).expect("strace out"));
    let dbg = Command::new(&exe)
        .env("LD_DEBUG", "libs")
        .env_remove("LD_LIBRARY_PATH")
        .current_dir(l.dir.path())
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&dbg.stderr);
    let cached: Vec<String> = text
        .lines()
        .filter_map(|x| {
            x.split_once("\t  trying cached file=")
                .map(|(_, p)| p.to_string())
        })
        .collect();
    let mut a = Actual::default();
    parse_ld_debug(&text, &mut a);
    let j = explain(&["--loader", "note"], &exe, l.dir.path());
    let note = &j["note"];
    let pred = predicted_trace(note);
    let pred_cached: Vec<String> = note["trace"]
        .as_array()
        .expect("t")
        .iter()
        .filter(|e| e["stage"] == "note_exact" && e["call"] == "openat")
        .map(|e| e["path"].as_str().unwrap_or("").into())
        .collect();
    let (pc, ac) = (count(&pred), count(&actual));
    let err: usize = pc.iter().zip(ac.iter()).map(|(p, a)| p.abs_diff(*a)).sum();
    println!(
        "case noted program, note-aware loader {}: predicted {pc:?} / strace {ac:?}, prediction error = {err}; trace equal: {}; trying equal: {}; trying cached equal: {}",
        ldso.display(),
        pred == actual,
        strs(&note["trying"]) == a.trying,
        pred_cached == cached
    );
    assert!(status.success());
    assert_eq!(pred, actual);
    assert_eq!(strs(&note["trying"]), a.trying);
    assert_eq!(pred_cached, cached);
}

/// $LIB and $PLATFORM run-path elements, a DT_NEEDED with a `/` (opened as is), a symlinked
/// second name for an already loaded file (st_dev/st_ino reuse), LD_LIBRARY_PATH sharing a
/// directory with RUNPATH; then a directory named like the library (fatal read error).
#[test]
fn native_dst_direct_same_file_and_fatal() {
    if !native() {
        return;
    }
    let l = Lay::new("gcc");
    let out = Command::new("/lib64/ld-linux-x86-64.so.2")
        .arg("--list-diagnostics")
        .output()
        .expect("ld.so");
    let diag = String::from_utf8_lossy(&out.stdout).into_owned();
    let val = |k: &str| {
        diag.lines()
            .find_map(|x| x.strip_prefix(&format!("{k}=\"")))
            .map(|v| v.trim_end_matches('"').to_string())
    };
    let (lib, plat) = (
        val("dl_dst_lib").expect("dl_dst_lib"),
        val("dl_platform").expect("dl_platform"),
    );
    l.lib(&format!("t/{lib}/liblib.so"), &[], &[]);
    l.lib(&format!("p/{plat}/libplat.so"), &[], &[]);
    l.lib("direct/libdirect.so", &[], &[]);
    l.lib("s/libreal.so", &[], &[]);
    std::os::unix::fs::symlink(l.p("s/libreal.so"), l.p("s/libalias.so")).expect("symlink");
    let rp = format!(
        "-Wl,--enable-new-dtags,-rpath,{}/$LIB:{}/${{PLATFORM}}:{}",
        l.s("t"),
        l.s("p"),
        l.s("s")
    );
    let link = [
        format!("-L{}/{lib}", l.s("t")),
        format!("-L{}/{plat}", l.s("p")),
        format!("-L{}", l.s("s")),
        l.s("direct/libdirect.so"),
        "-l:libalias.so".to_string(),
        rp,
    ];
    let link: Vec<&str> = link.iter().map(String::as_str).collect();
    let exe = l.exe("prog", &["liblib.so", "libplat.so", "libreal.so"], &link);
    let llp = l.s("s");
    assert_eq!(
        native_case(
            "$LIB/$PLATFORM + direct + same file + shared LD_LIBRARY_PATH",
            &exe,
            l.dir.path(),
            &[("LD_LIBRARY_PATH", &llp)]
        ),
        0
    );
    let j = explain(&[], &exe, l.dir.path());
    let results: Vec<&str> = j["stock"]["searches"]
        .as_array()
        .expect("s")
        .iter()
        .map(|s| s["result"].as_str().unwrap_or(""))
        .collect();
    assert!(results.contains(&"same_file"), "{results:?}");
    // A directory named libfat.so ahead of the real one: the loader stops.
    let f = Lay::new("gcc");
    f.lib("b/libfat.so", &[], &[]);
    f.mkdir("a/libfat.so");
    let rp = format!("-Wl,--enable-new-dtags,-rpath,{}:{}", f.s("a"), f.s("b"));
    let exe = f.exe("prog", &["libfat.so"], &[&format!("-L{}", f.s("b")), &rp]);
    assert_eq!(
        native_case(
            "directory named like the library (fatal)",
            &exe,
            f.dir.path(),
            &[]
        ),
        0
    );
}

/// `--sysroot IMAGE` (no qemu): a program run with `chroot IMAGE`, where libc and a run-path
/// directory are reached through absolute symlinks that only make sense inside the image.
#[test]
fn native_sysroot_image_under_chroot() {
    if !native() || !have("chroot") {
        return;
    }
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !is_root {
        println!("SKIP sysroot image: chroot needs root");
        return;
    }
    let l = Lay::new("gcc");
    let img = l.p("img");
    for d in [
        "lib64",
        "opt/glibc",
        "lib/x86_64-linux-gnu",
        "usr/lib",
        "bin",
        "opt/real",
        "etc",
    ] {
        fs::create_dir_all(img.join(d)).expect("mkdir");
    }
    fs::copy(
        "/lib64/ld-linux-x86-64.so.2",
        img.join("lib64/ld-linux-x86-64.so.2"),
    )
    .expect("ld.so");
    fs::copy(
        "/lib/x86_64-linux-gnu/libc.so.6",
        img.join("opt/glibc/libc.so.6"),
    )
    .expect("libc");
    std::os::unix::fs::symlink(
        "/opt/glibc/libc.so.6",
        img.join("lib/x86_64-linux-gnu/libc.so.6"),
    )
    .expect("link");
    std::os::unix::fs::symlink("/opt/real", img.join("opt/l")).expect("link");
    l.lib("img/opt/real/libi.so", &[], &[]);
    // A cache written by the real ldconfig for the image, with a glibc-hwcaps entry.
    l.lib(
        "img/opt/cached/libcached.so.1",
        &[],
        &["-Wl,-soname,libcached.so.1"],
    );
    l.lib(
        "img/opt/cached/glibc-hwcaps/x86-64-v2/libcached.so.1",
        &[],
        &["-Wl,-soname,libcached.so.1"],
    );
    fs::write(img.join("etc/ld.so.conf"), "/opt/cached\n").expect("conf");
    run_ok(Command::new("ldconfig").arg("-r").arg(&img));
    let exe = l.exe(
        "img/bin/prog",
        &["libi.so", "libcached.so.1"],
        &[
            &format!("-L{}", l.s("img/opt/real")),
            &format!("-L{}", l.s("img/opt/cached")),
            "-Wl,--enable-new-dtags,-rpath,/opt/missing:/opt/l",
        ],
    );
    let st = l.p("strace.out");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=execve,openat,newfstatat", "-o"])
        .arg(&st)
        .arg("chroot")
        .arg(&img)
        .arg("/bin/prog")
        .env_remove("LD_LIBRARY_PATH")
        .status()
        .expect("strace chroot");
    let actual = parse_strace(&fs::read_to_string(&st).expect("out"));
    let j = explain(
        &["--sysroot", &img.display().to_string(), "--cwd", "/"],
        &exe,
        l.dir.path(),
    );
    let pred = predicted_trace(&j["stock"]);
    let (pc, ac) = (count(&pred), count(&actual));
    let err: usize = pc.iter().zip(ac.iter()).map(|(p, a)| p.abs_diff(*a)).sum();
    println!("case sysroot image (chroot): predicted {pc:?} / strace {ac:?}, prediction error = {err}; trace equal: {}", pred == actual);
    assert!(status.success());
    assert_eq!(pred, actual);
    assert_eq!(j["stock"]["objects"][0]["runpath"], "/opt/missing:/opt/l");
    let via: Vec<&str> = j["stock"]["searches"]
        .as_array()
        .expect("s")
        .iter()
        .map(|s| s["via"].as_str().unwrap_or(""))
        .collect();
    assert!(via.contains(&"cache"), "{via:?}");
    // ldconfig recorded a glibc-hwcaps entry; with x86-64-v2 active the cache must pick it.
    let v2 = j["facts"]["hwcaps_active"]
        .as_array()
        .expect("a")
        .iter()
        .any(|h| h == "x86-64-v2");
    let cached = j["stock"]["searches"]
        .as_array()
        .expect("s")
        .iter()
        .find(|s| s["name"] == "libcached.so.1")
        .expect("searched");
    assert_eq!(
        cached["path"]
            .as_str()
            .is_some_and(|p| p.contains("glibc-hwcaps/x86-64-v2/")),
        v2,
        "{cached}"
    );
}
