//! The command line keeps its promises: everything after the linker name is the linker's, bad
//! values are errors, one exit-status scheme, `--skip-non-elf`, `LDNOTE_SYSROOT` and `--cwd` in
//! `explain`, no reservation for a link line without a run path. Real gcc, GNU ld and loaders.
use std::path::Path;
use std::process::Command;

use crate::common::{self, ldnote_cmd, run, run_ok, stderr_of, stdout_of, Layout};

/// A noted or reserved region in the output, found by section name (`readelf -S`).
fn sections(p: &Path) -> String {
    stdout_of(&run_ok(Command::new("readelf").arg("-SW").arg(p)))
}

/// A library `libfoo.so` in `dir` and the source of a program calling it.
fn foo(l: &Layout, dir: &str) -> std::path::PathBuf {
    l.write(".build/foo.c", b"int foo(void) { return 7; }\n");
    l.mkdir(dir);
    run_ok(
        Command::new("gcc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(l.p(format!("{dir}/libfoo.so")))
            .arg(l.p(".build/foo.c")),
    );
    l.write(
        "main.c",
        b"int foo(void);\nint main(void) { return foo() == 7 ? 0 : 1; }\n",
    )
}

#[test]
fn everything_after_the_linker_is_the_linkers() {
    let l = Layout::new();
    let src = l.write("m.c", common::MAIN_C.as_bytes());
    // `-v` after gcc is gcc's: it prints its specs and still links.
    let o = run(ldnote_cmd()
        .current_dir(l.root())
        .args(["link", "gcc", "-v", "-o", "m"])
        .arg(&src));
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert!(
        stderr_of(&o).contains("Using built-in specs"),
        "{}",
        stderr_of(&o)
    );
    // `--strict` after gcc is gcc's too: gcc refuses it and its status is the command's.
    let o = run(ldnote_cmd()
        .current_dir(l.root())
        .args(["link", "gcc", "--strict", "-o", "m2"])
        .arg(&src));
    assert_eq!(o.status.code(), Some(1), "{}", stderr_of(&o));
    assert!(stderr_of(&o).contains("--strict"), "{}", stderr_of(&o));
    assert!(!l.p("m2").exists());
    // Before the linker (with or without `--`) it is ldnote's.
    for sep in [&[][..], &["--"][..]] {
        let o = run(ldnote_cmd()
            .current_dir(l.root())
            .args(["link", "-v"])
            .args(sep)
            .args(["gcc", "-o", "m3"])
            .arg(&src));
        assert!(o.status.success(), "{}", stderr_of(&o));
        assert!(
            stderr_of(&o).contains("ldnote: real tool: gcc"),
            "{}",
            stderr_of(&o)
        );
        assert!(!stderr_of(&o).contains("Using built-in specs"));
    }
}

#[test]
fn bad_values_are_errors_and_a_link_still_runs() {
    let l = Layout::new();
    let src = foo(&l, "lib");
    let rpath = format!("-Wl,-rpath,{}", l.p("lib").display());
    let link = |opts: &[&str], out: &str| {
        run(ldnote_cmd()
            .current_dir(l.root())
            .arg("link")
            .args(opts)
            .args(["gcc", "-o", out])
            .arg(&src)
            .args(["-Llib", "-lfoo", &rpath]))
    };
    for bad in [
        &["--target", "banana"][..],
        &["--target", "arm64"],
        &["--glibc", "banana"],
        &["--sysroot", "/nonexistent/root"],
    ] {
        // Default: a warning, the link runs and its output is the linker's (no note).
        let o = link(bad, "p");
        assert!(o.status.success(), "{bad:?}: {}", stderr_of(&o));
        assert!(
            stderr_of(&o).contains("warning"),
            "{bad:?}: {}",
            stderr_of(&o)
        );
        let show = run(ldnote_cmd().arg("show").arg(l.p("p")));
        assert!(
            stdout_of(&show).contains("no .note.nixos.ldcache"),
            "{bad:?}"
        );
        std::fs::remove_file(l.p("p")).expect("rm");
        // --strict: status 2, the linker is not run.
        let strict: Vec<&str> = [&["--strict"][..], bad].concat();
        let o = link(&strict, "q");
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {}", stderr_of(&o));
        assert!(!l.p("q").exists(), "{bad:?}");
    }
    let o = link(&[], "ok");
    assert!(o.status.success(), "{}", stderr_of(&o));
    for bad in [
        &["--target", "banana"][..],
        &["--glibc", "2.x"],
        &["--sysroot", "/nonexistent/root"],
    ] {
        for cmd in ["check", "patch"] {
            let o = run(ldnote_cmd().arg(cmd).args(bad).arg(l.p("ok")));
            assert_eq!(o.status.code(), Some(2), "{cmd} {bad:?}: {}", stderr_of(&o));
        }
    }
    let o = run(ldnote_cmd()
        .env("LDNOTE_SYSROOT", "/nonexistent/root")
        .arg("check")
        .arg(l.p("ok")));
    assert_eq!(o.status.code(), Some(2), "{}", stderr_of(&o));
    assert!(
        stderr_of(&o).contains("LDNOTE_SYSROOT"),
        "{}",
        stderr_of(&o)
    );
    // Options that mean nothing to a command are refused by it.
    for (cmd, opt) in [
        ("check", "--strict"),
        ("check", "--defer"),
        ("patch", "--audit"),
    ] {
        let o = run(ldnote_cmd().args([cmd, opt]).arg(l.p("ok")));
        assert_eq!(o.status.code(), Some(2), "{cmd} {opt}");
    }
    run_ok(ldnote_cmd().arg("check").arg(l.p("ok")));
}

#[test]
fn one_exit_status_scheme_and_skip_non_elf() {
    let l = Layout::new();
    let src = foo(&l, "lib");
    run_ok(
        ldnote_cmd()
            .current_dir(l.root())
            .args(["link", "--no-reserve", "gcc", "-o", "prog"])
            .arg(&src)
            .args(["-Llib", "-lfoo"])
            .arg(format!("-Wl,-rpath,{}", l.p("lib").display())),
    );
    let script = l.write("script.sh", b"#!/bin/sh\n");
    let dir = l.mkdir("adir");
    let missing = l.p("missing");
    // show: 2 for no ELF file to read (JSON status "error"), 0 for a note.
    for p in [&script, &dir, &missing] {
        let o = run(ldnote_cmd().args(["show", "--json"]).arg(p));
        assert_eq!(o.status.code(), Some(2), "{}", p.display());
        assert!(
            stdout_of(&o).contains("\"status\": \"error\""),
            "{}",
            stdout_of(&o)
        );
        let o = run(ldnote_cmd().arg("show").arg(p));
        assert!(!stdout_of(&o).contains("malformed"), "{}", stdout_of(&o));
        let o = run(ldnote_cmd().arg("check").arg(p));
        assert_eq!(o.status.code(), Some(2), "check {}", p.display());
    }
    run_ok(ldnote_cmd().arg("show").arg(l.p("prog")));
    // check: 1 for a missing note (the program was linked with --no-reserve... and noted by the
    // fallback, so make one stale by copying an un-noted build).
    run_ok(
        Command::new("gcc")
            .current_dir(l.root())
            .args(["-o", "plain"])
            .arg(&src)
            .args(["-Llib", "-lfoo"])
            .arg(format!("-Wl,-rpath,{}", l.p("lib").display())),
    );
    let o = run(ldnote_cmd().arg("check").arg(l.p("plain")));
    assert_eq!(o.status.code(), Some(1), "{}", stdout_of(&o));
    // patch: non-ELF files are errors (2) without --skip-non-elf, yet the ELF file is noted.
    let o = run(ldnote_cmd().arg("patch").arg(&script).arg(l.p("plain")));
    assert_eq!(o.status.code(), Some(2), "{}", stderr_of(&o));
    run_ok(ldnote_cmd().arg("check").arg(l.p("plain")));
    // --skip-non-elf: scripts and directories are passed over, missing files still fail.
    std::fs::copy(l.p("prog"), l.p("again")).expect("copy");
    let before = std::fs::read(&script).expect("read");
    run_ok(
        ldnote_cmd()
            .args(["patch", "--skip-non-elf"])
            .arg(&script)
            .arg(&dir)
            .arg(l.p("again")),
    );
    assert_eq!(std::fs::read(&script).expect("read"), before);
    let o = run(ldnote_cmd().args(["patch", "--skip-non-elf"]).arg(&missing));
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_link_without_a_run_path_gets_no_reservation() {
    let l = Layout::new();
    let src = l.write("m.c", common::MAIN_C.as_bytes());
    run_ok(
        ldnote_cmd()
            .current_dir(l.root())
            .args(["link", "gcc", "-o", "m"])
            .arg(&src),
    );
    let s = sections(&l.p("m"));
    assert!(!s.contains("ldcache"), "{s}");
    run_ok(&mut Command::new(l.p("m")));
    // GNU ld takes LD_RUN_PATH when the line has no -rpath: that output is noted.
    let src = foo(&l, "lib");
    run_ok(
        ldnote_cmd()
            .current_dir(l.root())
            .env("LD_RUN_PATH", l.p("lib"))
            .args(["link", "gcc", "-o", "r"])
            .arg(&src)
            .args(["-Llib", "-lfoo"]),
    );
    let o = run_ok(ldnote_cmd().arg("show").arg(l.p("r")));
    assert!(stdout_of(&o).contains("libfoo.so"), "{}", stdout_of(&o));
    assert!(sections(&l.p("r")).contains(".note.nixos.ldcache"));
    run_ok(&mut Command::new(l.p("r")));
}

#[test]
fn explain_takes_cwd_and_the_sysroot_from_the_environment() {
    let l = Layout::new();
    let src = foo(&l, "d/libs");
    // A relative run path: the process's current directory decides.
    run_ok(
        Command::new("gcc")
            .current_dir(l.root())
            .args(["-o", "m"])
            .arg(&src)
            .args(["-Ld/libs", "-lfoo", "-Wl,-rpath,libs"]),
    );
    l.mkdir("elsewhere");
    let real = run(Command::new(l.p("m")).current_dir(l.p("d")));
    assert!(real.status.success(), "{}", stderr_of(&real));
    let ex = |cwd: &str| {
        run(ldnote_cmd()
            .current_dir(l.p("elsewhere"))
            .args(["explain", "--cwd"])
            .arg(l.p(cwd))
            .arg(l.p("m")))
    };
    let o = ex("d");
    assert_eq!(o.status.code(), Some(0), "{}", stdout_of(&o));
    assert!(
        stdout_of(&o).contains("libfoo.so => libs/libfoo.so"),
        "{}",
        stdout_of(&o)
    );
    let real = run(Command::new(l.p("m")).current_dir(l.p("elsewhere")));
    assert!(!real.status.success());
    let o = ex("elsewhere");
    assert_eq!(o.status.code(), Some(1), "{}", stdout_of(&o));
    // LDNOTE_SYSROOT is explain's root when --sysroot is not given: a run path that exists
    // only under the sysroot is found there.
    let root = l.mkdir("root");
    std::fs::create_dir_all(root.join("opt/foo")).expect("mkdir");
    std::fs::copy(l.p("d/libs/libfoo.so"), root.join("opt/foo/libfoo.so")).expect("copy");
    run_ok(
        Command::new("gcc")
            .current_dir(l.root())
            .args(["-o", "s"])
            .arg(&src)
            .args(["-Ld/libs", "-lfoo", "-Wl,-rpath,/opt/foo"]),
    );
    let o = run(ldnote_cmd()
        .env("LDNOTE_SYSROOT", &root)
        .args(["explain", "--no-run-loader", "--target", "x86_64"])
        .arg(l.p("s")));
    assert!(
        stdout_of(&o).contains("libfoo.so => /opt/foo/libfoo.so"),
        "{}{}",
        stdout_of(&o),
        stderr_of(&o)
    );
}

#[test]
fn check_says_when_a_foreign_file_has_no_sysroot() {
    let Some(cc) = common::require_tool("aarch64-linux-gnu-gcc") else {
        return;
    };
    let l = Layout::new();
    let src = l.write("m.c", common::MAIN_C.as_bytes());
    run_ok(
        Command::new(cc)
            .current_dir(l.root())
            .args(["-o", "m"])
            .arg(&src),
    );
    let o = run(ldnote_cmd().arg("check").arg(l.p("m")));
    let e = stderr_of(&o);
    assert!(e.contains("aarch64") && e.contains("LDNOTE_SYSROOT"), "{e}");
    let o = run(ldnote_cmd()
        .args(["check", "--sysroot", "/usr/aarch64-linux-gnu"])
        .arg(l.p("m")));
    assert!(
        !stderr_of(&o).contains("not this host"),
        "{}",
        stderr_of(&o)
    );
}

#[test]
fn a_real_tool_that_is_ldnote_names_the_variable() {
    let l = Layout::new();
    let ld = l.p("ld");
    std::os::unix::fs::symlink(common::ldnote(), &ld).expect("symlink");
    let o = run(Command::new(&ld)
        .env("LDNOTE_REAL_LD", &ld)
        .env_remove("LDNOTE_ACTIVE")
        .arg("--version"));
    assert_eq!(o.status.code(), Some(127));
    let e = stderr_of(&o);
    assert!(
        e.contains("LDNOTE_REAL_LD=") && e.contains("set LDNOTE_REAL_LD to the real `ld`"),
        "{e}"
    );
}
