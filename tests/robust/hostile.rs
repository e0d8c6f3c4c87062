//! Hostile surroundings of the wrapper: two copies of ldnote on PATH, FIFOs, devices and huge
//! sparse files handed to the inspecting commands, a closed stderr, dependency files and maps
//! that must not change between runs, yes/no words in the environment, and terminal escapes in
//! sonames.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use crate::require;

const LIMIT: Duration = Duration::from_secs(20);

fn exe(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// Two directories on PATH, each holding a copy (not a link) of ldnote named `ld`: each used to
/// take the other for the real `ld` and run it, without end. A copy with the same bytes is
/// recognised; a copy of another build (different bytes) is stopped after a few rounds.
#[test]
fn two_copies_of_ldnote_on_path_as_ld() {
    let real_ld = require!("ld");
    let l = Layout::new();
    let (a, b) = (l.mkdir("a"), l.mkdir("b"));
    std::fs::copy(ldnote(), a.join("ld")).expect("copy");
    std::fs::copy(ldnote(), b.join("ld")).expect("copy");
    let sys = real_ld.parent().expect("dir").to_owned();
    let path = std::env::join_paths([&a, &b, &sys]).expect("PATH");
    let o = run_timeout(
        copy_cmd(&a.join("ld")).arg("--version").env("PATH", &path),
        LIMIT,
    )
    .expect("same-bytes copies loop");
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert!(stdout_of(&o).contains("GNU ld"), "{}", stdout_of(&o));
    // Another build: one more byte makes it a different file that still runs.
    let mut other = std::fs::read(ldnote()).expect("read");
    other.push(0);
    std::fs::write(b.join("ld"), other).expect("write");
    exe(&b.join("ld"));
    let o = run_timeout(
        copy_cmd(&a.join("ld")).arg("--version").env("PATH", &path),
        LIMIT,
    )
    .expect("different copies loop");
    assert_eq!(o.status.code(), Some(127), "{}", stderr_of(&o));
    assert!(
        stderr_of(&o).contains("ran ldnote again"),
        "{}",
        stderr_of(&o)
    );
}

/// A copy of ldnote run under its own name (multicall), with ldnote's variables cleared.
fn copy_cmd(p: &Path) -> Command {
    let mut c = Command::new(p);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("LDNOTE_") {
            c.env_remove(k);
        }
    }
    c
}

fn mkfifo(p: &Path) {
    run_ok(Command::new("mkfifo").arg(p));
}

/// A FIFO or a device never blocks and is never read to its end; a 4 GiB sparse file costs only
/// its headers (the commands run with 1 GiB of address space).
#[test]
fn fifos_devices_and_sparse_files_are_not_read_whole() {
    require!("gcc");
    require!("prlimit");
    let l = Layout::new();
    let fifo = l.p("fifo");
    mkfifo(&fifo);
    for cmd in ["show", "check", "explain", "patch"] {
        for f in [fifo.as_path(), Path::new("/dev/zero")] {
            let o = run_timeout(ldnote_cmd().arg(cmd).arg(f), LIMIT)
                .unwrap_or_else(|| panic!("`ldnote {cmd} {f:?}` hangs"));
            assert!(!o.status.success(), "{cmd} {f:?}");
            let said = format!("{}{}", stdout_of(&o), stderr_of(&o));
            assert!(said.contains("not a regular file"), "{cmd} {f:?}: {said}");
        }
    }
    let prog = Link::program(&l).build("prog");
    run_ok(ldnote_cmd().arg("patch").arg(&prog));
    let sparse = l.p("sparse");
    std::fs::copy(&prog, &sparse).expect("copy");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&sparse)
        .and_then(|f| f.set_len(4 << 30))
        .expect("grow");
    for cmd in ["show", "check"] {
        let o = run_timeout(
            Command::new("prlimit")
                .arg("--as=1073741824")
                .arg(ldnote())
                .arg(cmd)
                .arg(&sparse),
            LIMIT,
        )
        .expect("sparse file hangs");
        assert!(
            stdout_of(&o).contains("sparse"),
            "{cmd}: {}{}",
            stdout_of(&o),
            stderr_of(&o)
        );
        assert_ne!(
            o.status.code(),
            Some(134),
            "{cmd}: aborted: {}",
            stderr_of(&o)
        );
        assert!(
            !stderr_of(&o).contains("memory allocation"),
            "{}",
            stderr_of(&o)
        );
    }
}

/// `explain` probes a run path holding a FIFO named like the library before the real one.
#[test]
fn explain_does_not_hang_on_a_fifo_in_the_run_path() {
    require!("gcc");
    let l = Layout::new();
    let lib = l.lib_in("real", "liba.so");
    l.mkdir("trap");
    mkfifo(&l.p("trap/liba.so"));
    let rp = [l.pb("trap"), b":".to_vec(), l.pb("real")].concat();
    let prog = Link::program(&l).input(&lib).runpath(rp).build("prog");
    let o = run_timeout(
        ldnote_cmd().args(["explain", "--no-run-loader"]).arg(&prog),
        LIMIT,
    )
    .expect("explain hangs on a FIFO");
    // The loader fails on a FIFO where it expects an ELF file: predicted, not waited for.
    assert!(
        stdout_of(&o).contains("trap/liba.so"),
        "{}{}",
        stdout_of(&o),
        stderr_of(&o)
    );
}

/// A closed stderr (the reader of a pipe went away) never turns a good link into exit 101, with
/// or without `-v`, and the linker still runs.
#[test]
fn a_closed_stderr_never_changes_the_status() {
    require!("gcc");
    let l = Layout::new();
    let lib = l.lib_in("d", "liba.so");
    for verbose in [false, true] {
        let out = l.p(if verbose { "v" } else { "q" });
        let mut c = ldnote_cmd();
        c.arg("link");
        if verbose {
            c.arg("-v");
        }
        let args = Link::program(&l).input(&lib).runpath(l.pb("d")).args(&out);
        c.arg("--").arg("gcc").args(&args).current_dir(l.root());
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn");
        drop(child.stderr.take());
        let status = child.wait().expect("wait");
        assert_eq!(status.code(), Some(0), "verbose={verbose}");
        run_ok(ldnote_cmd().arg("check").arg(&out));
    }
}

/// `-Wl,--dependency-file` and `-Map` name the reservation object: it lives at the same path in
/// every run and still exists afterwards, so make does not relink and maps compare equal; no
/// temporary directory is made per link.
#[test]
fn dependency_files_and_maps_are_identical_run_to_run() {
    require!("gcc");
    let l = Layout::new();
    let lib = l.lib_in("d", "liba.so");
    let cache = l.mkdir("cache");
    let tmp = l.mkdir("tmp");
    let mut seen = Vec::new();
    for round in 0..2 {
        let out = l.p("prog");
        let mut args = Link::program(&l).input(&lib).runpath(l.pb("d")).args(&out);
        args.push("-Wl,--dependency-file=prog.d".into());
        args.push("-Wl,-Map=prog.map".into());
        run_ok(
            ldnote_cmd()
                .args(["link", "--", "gcc"])
                .args(&args)
                .env("XDG_CACHE_HOME", &cache)
                .env("TMPDIR", &tmp)
                .current_dir(l.root()),
        );
        run_ok(ldnote_cmd().arg("check").arg(&out));
        let deps = std::fs::read_to_string(l.p("prog.d")).expect("deps");
        assert!(
            deps.contains("/cache/ldnote/reserve/"),
            "round {round}: {deps}"
        );
        for word in deps.split_whitespace().filter(|w| w.starts_with('/')) {
            let w = word.trim_end_matches(':');
            assert!(Path::new(w).exists(), "round {round}: {w} does not exist");
        }
        seen.push((deps, std::fs::read(l.p("prog.map")).expect("map")));
        let left: Vec<_> = std::fs::read_dir(&tmp).expect("ls").collect();
        assert!(
            left.is_empty(),
            "round {round}: temporary files left: {left:?}"
        );
    }
    assert_eq!(
        seen[0], seen[1],
        "dependency file or map differs between runs"
    );
}

/// No writable cache directory: the link still succeeds, noted by the fallback; `-v` says why.
#[test]
fn an_unwritable_cache_links_without_a_reservation() {
    require!("gcc");
    let l = Layout::new();
    let lib = l.lib_in("d", "liba.so");
    let out = l.p("prog");
    let args = Link::program(&l).input(&lib).runpath(l.pb("d")).args(&out);
    let o = run_ok(
        ldnote_cmd()
            .args(["link", "-v", "--", "gcc"])
            .args(&args)
            .env("XDG_CACHE_HOME", "/proc/ldnote-none")
            .env("HOME", "/proc/ldnote-none")
            .env("TMPDIR", "/proc/ldnote-none")
            .current_dir(l.root()),
    );
    assert!(
        stderr_of(&o).contains("no cache directory"),
        "{}",
        stderr_of(&o)
    );
    run_ok(ldnote_cmd().arg("check").arg(&out));
}

/// A "linker" that writes a file that is not ELF: noting fails. `LDNOTE_STRICT=no` (and other
/// false words) must keep the default (warn, status 0); an unknown word is reported.
#[test]
fn yes_no_words_in_the_environment() {
    let l = Layout::new();
    let fake = l.write("tools/cc", b"#!/bin/sh\necho not-elf > \"$2\"\n");
    exe(&fake);
    let input = l.write("in.o", b"");
    let status = |k: &str, v: &str| {
        let o = run(ldnote_cmd()
            .args(["link", "--"])
            .arg(&fake)
            .args(["-o", "out"])
            .arg(&input)
            .env(k, v)
            .current_dir(l.root()));
        (o.status.code(), stderr_of(&o))
    };
    for v in ["no", "false", "off", "0", "NO"] {
        let (code, err) = status("LDNOTE_STRICT", v);
        assert_eq!(code, Some(0), "LDNOTE_STRICT={v}: {err}");
    }
    for v in ["yes", "true", "1", "on"] {
        let (code, err) = status("LDNOTE_STRICT", v);
        assert_eq!(code, Some(1), "LDNOTE_STRICT={v}: {err}");
    }
    let (code, err) = status("LDNOTE_STRICT", "sometimes");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("not a yes/no value"), "{err}");
    let (code, err) = status("LDNOTE_DISABLE", "false");
    assert_eq!(code, Some(0));
    assert!(
        err.contains("ldnote: warning"),
        "LDNOTE_DISABLE=false disabled ldnote: {err}"
    );
}

/// A soname holding a terminal escape is shown escaped, as readelf shows it.
#[test]
fn show_escapes_control_bytes_in_sonames() {
    require!("gcc");
    let l = Layout::new();
    let soname: &[u8] = b"lib\x1b[31mred.so";
    let lib = l.lib("d/libred.so", Some(soname));
    let prog = Link::program(&l)
        .input(&lib)
        .runpath(l.pb("d"))
        .build("prog");
    std::fs::rename(
        &lib,
        l.p("d").join(std::ffi::OsStr::new(
            std::str::from_utf8(soname).expect("utf8"),
        )),
    )
    .expect("rename");
    run_ok(ldnote_cmd().arg("patch").arg(&prog));
    let o = run_ok(ldnote_cmd().arg("show").arg(&prog));
    assert!(!o.stdout.contains(&0x1b), "raw escape printed");
    assert!(
        stdout_of(&o).contains("lib^[[31mred.so"),
        "{}",
        stdout_of(&o)
    );
}
