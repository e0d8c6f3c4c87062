//! `wrappers/make-wrapper-dir.sh` and `wrappers/README.md`, end to end: the directory of
//! multicall symlinks used as `gcc -B<dir>`, `clang --ld-path=<dir>/ld.lld` and first in PATH,
//! with real gcc/clang/GNU ld/lld, programs run, notes checked with `ldnote check`.
use std::ffi::OsString;
mod common;
use common::{have, repo, run_ok, LDNOTE};
use std::path::{Path, PathBuf};
use std::process::Command;

/// PATH with the directory of the ldnote under test first.
fn path_with_ldnote() -> OsString {
    let bin = Path::new(LDNOTE).parent().expect("binary has a directory");
    let mut p = OsString::from(bin);
    p.push(":");
    p.push(std::env::var_os("PATH").unwrap_or_default());
    p
}

/// PATH with `dir` first, then the directory of the ldnote under test.
fn path_with_ldnote_and(dir: &Path) -> OsString {
    let mut p = OsString::from(dir);
    p.push(":");
    p.push(path_with_ldnote());
    p
}

fn make_dir(dir: &Path, extra: &[&str]) {
    run_ok(
        Command::new(repo().join("wrappers/make-wrapper-dir.sh"))
            .args(extra)
            .arg(dir)
            .arg(LDNOTE),
    );
}

/// Build `libanswer.so` and a program using it; returns (lib dir, program source).
fn sources(t: &Path) -> (PathBuf, PathBuf) {
    let lib = t.join("lib");
    std::fs::create_dir_all(&lib).expect("mkdir");
    std::fs::write(t.join("answer.c"), "int answer(void) { return 42; }\n").expect("write");
    std::fs::write(
        t.join("hello.c"),
        "#include <stdio.h>\nint answer(void);\nint main(void) { printf(\"%d\\n\", answer()); return 0; }\n",
    )
    .expect("write");
    (lib, t.join("hello.c"))
}

/// The note of `file` as `ldnote show --json` reports it: (soname, paths) pairs.
fn note(file: &Path) -> Vec<(String, Vec<String>)> {
    let out = run_ok(Command::new(LDNOTE).args(["show", "--json"]).arg(file));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["entries"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    let paths = e["paths"]
                        .as_array()
                        .expect("paths")
                        .iter()
                        .map(|p| p.as_str().expect("str").to_string())
                        .collect();
                    (e["soname"].as_str().expect("soname").to_string(), paths)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Run the program, check its output, its note and `ldnote check`.
fn verify(prog: &Path, lib: &Path) {
    let out = run_ok(&mut Command::new(prog));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
    let want = format!("={}/libanswer.so", lib.display());
    let n = note(prog);
    assert!(
        n.iter()
            .any(|(s, p)| s == "libanswer.so" && p == &vec![want.clone()]),
        "{} has no `{want}` entry: {n:?}",
        prog.display()
    );
    run_ok(Command::new(LDNOTE).arg("check").arg(prog));
}

#[test]
fn script_makes_absolute_links_for_every_name_and_triple() {
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path().join("w");
    make_dir(
        &dir,
        &["-t", "aarch64-linux-gnu", "-t", "riscv64-linux-gnu"],
    );
    let real = std::fs::canonicalize(LDNOTE).expect("canonicalize");
    let names = [
        "ld", "ld.bfd", "ld.gold", "ld.lld", "ld.mold", "cc", "gcc", "g++", "c++", "clang",
        "clang++",
    ];
    let mut count = 0;
    for prefix in ["", "aarch64-linux-gnu-", "riscv64-linux-gnu-"] {
        for n in names {
            let link = dir.join(format!("{prefix}{n}"));
            let target = std::fs::read_link(&link).expect("is a symlink");
            assert!(
                target.is_absolute(),
                "{} -> {}",
                link.display(),
                target.display()
            );
            assert_eq!(std::fs::canonicalize(&link).expect("resolves"), real);
            count += 1;
        }
    }
    assert_eq!(std::fs::read_dir(&dir).expect("read_dir").count(), count);
    // Running it again replaces the links instead of failing.
    make_dir(&dir, &[]);
}

#[test]
fn script_rejects_bad_input() {
    let t = tempfile::tempdir().expect("tempdir");
    let script = repo().join("wrappers/make-wrapper-dir.sh");
    let dir = t.path().join("w");
    let cases: [(&[&str], i32, &str); 4] = [
        (&[], 2, "usage"),
        (&["-t", "bad/triple"], 2, "not a target triple"),
        (&["DIR", "/nonexistent/ldnote"], 1, "not an executable file"),
        (
            &["DIR", "/bin/true"],
            1,
            "does not answer --version like ldnote",
        ),
    ];
    for (args, code, msg) in cases {
        let args: Vec<&str> = args
            .iter()
            .map(|a| {
                if *a == "DIR" {
                    dir.to_str().expect("utf8")
                } else {
                    a
                }
            })
            .collect();
        let out = Command::new(&script).args(&args).output().expect("spawn");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
        assert!(!dir.exists(), "{args:?} created the directory");
    }
}

#[test]
fn gcc_with_b_dir_notes_library_and_program() {
    if !have("gcc") {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path().join("w");
    make_dir(&dir, &[]);
    let (lib, hello) = sources(t.path());
    let b = format!("-B{}", dir.display());
    run_ok(
        Command::new("gcc")
            .arg(&b)
            .args(["-shared", "-fPIC", "-o"])
            .arg(lib.join("libanswer.so"))
            .arg(t.path().join("answer.c")),
    );
    let rpath = format!("-Wl,-rpath,{}", lib.display());
    let link = |out: &Path, disable: bool| {
        let mut c = Command::new("gcc");
        c.arg(&b).arg("-o").arg(out).arg(&hello).arg("-L").arg(&lib);
        c.args(["-lanswer", &rpath]);
        if disable {
            c.env("LDNOTE_DISABLE", "1");
        }
        run_ok(&mut c);
    };
    let prog = t.path().join("hello");
    link(&prog, false);
    verify(&prog, &lib);
    // Control: the same link with ldnote disabled has no note, so the note above came from
    // the `ld` of the -B directory.
    let plain = t.path().join("hello-plain");
    link(&plain, true);
    assert!(note(&plain).is_empty());
    let out = Command::new(LDNOTE)
        .arg("check")
        .arg(&plain)
        .output()
        .expect("spawn");
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unnoted program must fail check"
    );
}

#[test]
fn clang_with_ld_path_notes_program() {
    if !have("clang") || !have("ld.lld") || !have("gcc") {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let dir = t.path().join("w");
    make_dir(&dir, &[]);
    let (lib, hello) = sources(t.path());
    run_ok(
        Command::new("gcc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(lib.join("libanswer.so"))
            .arg(t.path().join("answer.c")),
    );
    let prog = t.path().join("hello-lld");
    run_ok(
        Command::new("clang")
            .arg(format!("--ld-path={}", dir.join("ld.lld").display()))
            .arg("-o")
            .arg(&prog)
            .arg(&hello)
            .arg("-L")
            .arg(&lib)
            .arg("-lanswer")
            .arg(format!("-Wl,-rpath,{}", lib.display())),
    );
    // lld writes its name into .comment: the real lld did the link.
    let out = run_ok(Command::new("readelf").args(["-p", ".comment"]).arg(&prog));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Linker: "));
    verify(&prog, &lib);
}

/// Every ```sh block of wrappers/README.md, in order, as one `bash -eu -o pipefail` script.
#[test]
fn readme_commands_work_verbatim() {
    for tool in [
        "gcc",
        "clang",
        "ld.lld",
        "aarch64-linux-gnu-gcc",
        "qemu-aarch64",
    ] {
        if !have(tool) {
            return;
        }
    }
    let text = std::fs::read_to_string(repo().join("wrappers/README.md")).expect("README");
    let mut script = String::new();
    let mut on = false;
    for line in text.lines() {
        match (on, line) {
            (false, "```sh") => on = true,
            (true, "```") => on = false,
            (true, l) => {
                script.push_str(l);
                script.push('\n');
            }
            _ => {}
        }
    }
    assert!(!on, "unterminated code block");
    assert!(script.contains("make-wrapper-dir.sh"));
    let out = run_ok(
        Command::new("bash")
            .args(["-eu", "-o", "pipefail", "-c", &script])
            .current_dir(repo())
            .env("PATH", path_with_ldnote())
            .env_remove("LDNOTE_REAL_LD"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Five programs print 42; five `ldnote check` lines say ok.
    assert_eq!(stdout.matches("42\n").count(), 5, "{stdout}");
    for p in [
        "hello",
        "hello-lld",
        "hello-path",
        "hello-arm",
        "hello-arm-path",
    ] {
        assert!(
            stdout.contains(&format!("{p}: ok\n")),
            "{p} not checked ok: {stdout}"
        );
    }
}

/// rustc `-C linker=ldnote` runs `ldnote -m64 ... -o OUT ...`: ldnote cannot tell which driver
/// to wrap from its own name, so it runs nothing, writes nothing, and says what to do (status 2);
/// a mistyped ldnote option is still clap's usage error. The same program linked through a `cc`
/// symlink to ldnote is noted.
#[test]
fn rustc_linker_ldnote_is_explained_and_a_cc_symlink_works() {
    let Some(rustc) = common::require_tool("rustc") else {
        return;
    };
    let t = tempfile::tempdir().expect("tempdir");
    let (lib, _) = sources(t.path());
    run_ok(
        Command::new("gcc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(lib.join("libanswer.so"))
            .arg(t.path().join("answer.c")),
    );
    let main = t.path().join("main.rs");
    std::fs::write(
        &main,
        "extern \"C\" { fn answer() -> i32; }\n\
         fn main() { println!(\"{}\", unsafe { answer() }); }\n",
    )
    .expect("write");
    let rustc_link = |linker: &Path, out: &Path| {
        let mut c = Command::new(&rustc);
        c.arg(format!("-Clinker={}", linker.display()))
            .arg(format!("-Clink-arg=-Wl,-rpath,{}", lib.display()))
            .arg("-L")
            .arg(&lib)
            .args(["-l", "dylib=answer", "-o"])
            .arg(out)
            .arg(&main)
            .env_remove("LDNOTE_ACTIVE");
        c
    };
    let by_name = t.path().join("by-name");
    let out = rustc_link(Path::new(LDNOTE), &by_name)
        .output()
        .expect("spawn rustc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "rustc -C linker=ldnote linked: {stderr}"
    );
    assert!(
        stderr.contains("run as `ldnote` with a linker's arguments (`-m64` ...)")
            && stderr.contains("-C linker=DIR/cc"),
        "{stderr}"
    );
    assert!(!stderr.contains("unexpected argument"), "{stderr}");
    assert!(!by_name.exists(), "an output was written");

    let typo = Command::new(LDNOTE).arg("--bogus").output().expect("spawn");
    assert_eq!(typo.status.code(), Some(2));
    let typo_err = String::from_utf8_lossy(&typo.stderr);
    assert!(
        typo_err.contains("unexpected argument '--bogus'"),
        "{typo_err}"
    );

    let w = t.path().join("w");
    std::fs::create_dir(&w).expect("mkdir");
    std::os::unix::fs::symlink(LDNOTE, w.join("cc")).expect("symlink");
    let prog = t.path().join("via-cc");
    run_ok(&mut rustc_link(&w.join("cc"), &prog));
    verify(&prog, &lib);
}

/// A cross gcc's collect2 runs the unprefixed `ld` of a `-B` directory. Without
/// `LDNOTE_REAL_LD`, ldnote reads the target from `-maarch64linux` and runs
/// `aarch64-linux-gnu-ld` (named by `-v`), not the host's `ld` (which fails with "unrecognised
/// emulation mode"); with no such linker on PATH it warns and names the variable to set.
#[test]
fn cross_gcc_with_b_dir_runs_the_targets_ld() {
    if !(have("aarch64-linux-gnu-gcc") && have("aarch64-linux-gnu-ld") && have("qemu-aarch64")) {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let (lib, hello) = sources(t.path());
    let w = t.path().join("w");
    make_dir(&w, &["-t", "aarch64-linux-gnu"]);
    let clean = |c: &mut Command| {
        for k in [
            "LDNOTE_REAL_LD",
            "LDNOTE_LINKER",
            "LDNOTE_ACTIVE",
            "LDNOTE_DISABLE",
        ] {
            c.env_remove(k);
        }
    };
    let mut c = Command::new("aarch64-linux-gnu-gcc");
    c.arg(format!("-B{}", w.display()))
        .args(["-shared", "-fPIC", "-o"])
        .arg(lib.join("libanswer.so"))
        .arg(t.path().join("answer.c"));
    clean(&mut c);
    run_ok(&mut c);
    let prog = t.path().join("hello-arm");
    let mut c = Command::new("aarch64-linux-gnu-gcc");
    c.arg(format!("-B{}", w.display()))
        .arg("-o")
        .arg(&prog)
        .arg(&hello)
        .arg(format!("-L{}", lib.display()))
        .arg("-lanswer")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .env("LDNOTE_LOG", "1");
    clean(&mut c);
    let out = run_ok(&mut c);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("real tool: ") && stderr.contains("aarch64-linux-gnu-ld\n"),
        "{stderr}"
    );
    let ran = run_ok(
        Command::new("qemu-aarch64")
            .args(["-L", "/usr/aarch64-linux-gnu"])
            .arg(&prog),
    );
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "42\n");
    let n = note(&prog);
    let want = format!("={}/libanswer.so", lib.display());
    assert!(
        n.iter()
            .any(|(s, p)| s == "libanswer.so" && p == &vec![want.clone()]),
        "{n:?}"
    );
    run_ok(Command::new(LDNOTE).arg("check").arg(&prog));

    // First in PATH: the wrapped cross driver runs the wrapped `aarch64-linux-gnu-ld`, already the
    // target's linker: no second lookup, no warning.
    let mut c = Command::new("aarch64-linux-gnu-gcc");
    c.arg("-o")
        .arg(t.path().join("hello-arm-path"))
        .arg(&hello)
        .arg(format!("-L{}", lib.display()))
        .arg("-lanswer")
        .env("PATH", path_with_ldnote_and(&w));
    clean(&mut c);
    let out = run_ok(&mut c);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");

    // No aarch64-linux-gnu-ld on PATH: only the host's `ld` (a link to it) beside the wrappers.
    let host_only = t.path().join("host-only");
    std::fs::create_dir(&host_only).expect("mkdir");
    let host_ld = which::which("ld").expect("ld on PATH");
    std::os::unix::fs::symlink(&host_ld, host_only.join("ld")).expect("symlink");
    let obj = t.path().join("answer-arm.o");
    run_ok(
        Command::new("aarch64-linux-gnu-gcc")
            .args(["-c", "-fPIC", "-o"])
            .arg(&obj)
            .arg(t.path().join("answer.c")),
    );
    let mut c = Command::new(w.join("ld"));
    c.args(["-maarch64linux", "-shared", "-o"])
        .arg(t.path().join("x.so"))
        .arg(&obj)
        .env("PATH", format!("{}:{}", w.display(), host_only.display()));
    clean(&mut c);
    let out = c.output().expect("spawn");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no aarch64-linux-gnu-ld is on PATH")
            && stderr.contains("set LDNOTE_REAL_LD")
            && stderr.contains("unrecognised emulation mode"),
        "{stderr}"
    );
}
