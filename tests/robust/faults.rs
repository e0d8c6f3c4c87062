//! Faults during the note step: the output must always be either exactly the linker's bytes or
//! the complete noted file (kill -9 at random points, ENOSPC, a read-only filesystem, symlink and
//! hard-link outputs, the output replaced by another process, parallel links into one directory,
//! a linker killed by a signal, a linker writing huge stdout), and default mode warns and keeps
//! the linker's status while `--strict` fails naming the file and the cause.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use crate::robust_util::*;

/// Wait (spinning) until `p` exists; false after `limit`.
fn wait_for(p: &Path, limit: Duration) -> bool {
    let start = Instant::now();
    while !p.exists() {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_micros(50));
    }
    true
}

/// Link through ldnote with `wrapper`, SIGKILL ldnote a random time after the linker's output is
/// complete, `rounds` times. Every round's output must be the linker's bytes or the noted file;
/// returns how many rounds ended in each state.
fn kill_loop(extra: &[&str], data_kib: usize, rounds: usize, max_delay_us: u64) -> (usize, usize) {
    let l = Layout::new();
    // The linker lingers 50 ms after its output is complete, so that the early kill points land
    // before the note step however loaded the machine is, and the late ones after it.
    let w = wrapper(&l, "cc-wrap", "sleep 0.05");
    let out = l.p("prog");
    let args = program_args(&l, &out, data_kib);
    let linker_copy = l.p("prog.linker");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut plain, mut noted) = (0, 0);
    let mut reference: Option<(Vec<u8>, Vec<u8>)> = None;
    for round in 0..rounds {
        let _ = std::fs::remove_file(&linker_copy);
        let mut child = ldnote_cmd()
            .args(["link"])
            .args(extra)
            .arg("--")
            .arg(&w)
            .args(&args)
            .current_dir(l.root())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn ldnote");
        assert!(
            wait_for(&linker_copy, Duration::from_secs(60)),
            "the link did not finish"
        );
        std::thread::sleep(Duration::from_micros(rng.below(max_delay_us)));
        let _ = child.kill();
        let _ = child.wait();
        let linker = std::fs::read(&linker_copy).expect("linker bytes");
        // The link is deterministic: the reference noted file is computed once.
        let (lb, nb) = reference.get_or_insert_with(|| {
            (
                linker.clone(),
                reference_noted(&linker_copy, &l.p("reference")),
            )
        });
        assert_eq!(&linker, lb, "round {round}: the link is not reproducible");
        assert_ne!(lb, nb, "the reference is not noted");
        match assert_linker_or_noted(&out, lb, nb, &format!("round {round}")) {
            State::LinkerBytes => plain += 1,
            State::Noted => noted += 1,
        }
        for t in leftovers(&out) {
            // A temporary file may survive a SIGKILL; it must never be mistaken for the output.
            let name = t.file_name().expect("name").to_string_lossy().into_owned();
            assert!(
                name.starts_with(".prog.ldnote-"),
                "unexpected leftover {name}"
            );
        }
    }
    // One more, undisturbed link of the same output: it completes and removes the leftovers of
    // the killed processes.
    run_ok(
        ldnote_cmd()
            .arg("link")
            .args(extra)
            .arg("--")
            .arg(&w)
            .args(&args)
            .current_dir(l.root()),
    );
    let (lb, nb) = reference.expect("at least one round");
    assert_eq!(
        assert_linker_or_noted(&out, &lb, &nb, "final link"),
        State::Noted
    );
    if extra.contains(&"--no-reserve") {
        assert_eq!(
            leftovers(&out),
            Vec::<std::path::PathBuf>::new(),
            "stale temporary files kept"
        );
    }
    run_ok(&mut Command::new(&out));
    (plain, noted)
}

#[test]
fn kill9_during_in_place_note() {
    let (plain, noted) = kill_loop(&[], 1, 40, 100_000);
    eprintln!("in place: {plain} rounds killed before the note, {noted} after");
    assert!(
        plain > 0 && noted > 0,
        "the kill points did not span the note step"
    );
}

#[test]
fn kill9_during_append_fallback() {
    // 2 MiB of data: the fallback's copy and rename take long enough to be hit mid-way.
    let (plain, noted) = kill_loop(&["--no-reserve"], 2048, 40, 150_000);
    eprintln!("append: {plain} rounds killed before the rename, {noted} after");
    assert!(
        plain > 0 && noted > 0,
        "the kill points did not span the note step"
    );
}

#[test]
fn stale_temporary_files_of_dead_processes_are_removed() {
    let l = Layout::new();
    let out = l.p("prog");
    let args = program_args(&l, &out, 1);
    // A process that has exited (its pid is free) and this test process (alive).
    let mut dead = Command::new("true").spawn().expect("spawn true");
    let dead_pid = dead.id();
    dead.wait().expect("wait");
    let stale = l.write(format!(".prog.ldnote-{dead_pid}-abc123"), b"partial");
    let live = l.write(
        format!(".prog.ldnote-{}-def456", std::process::id()),
        b"in use",
    );
    let other = l.write(".other.ldnote-1-x", b"not ours");
    run_ok(
        ldnote_cmd()
            .args(["link", "--no-reserve", "--", "gcc"])
            .args(&args)
            .current_dir(l.root()),
    );
    assert!(note_desc(&out).is_some(), "not noted");
    assert!(!stale.exists(), "a dead process's temporary file was kept");
    assert!(live.exists(), "a live process's temporary file was removed");
    assert!(
        other.exists(),
        "another output's temporary file was removed"
    );
}

/// Run `ldnote link [strict] -- wrapper` and return (output, linker bytes).
fn link_with(
    l: &Layout,
    w: &Path,
    out: &Path,
    extra: &[&str],
    data_kib: usize,
) -> std::process::Output {
    run(ldnote_cmd()
        .arg("link")
        .args(extra)
        .arg("--")
        .arg(w)
        .args(program_args(l, out, data_kib))
        .current_dir(l.root()))
}

fn assert_warned(o: &std::process::Output, out: &Path, cause: &str, strict: bool) {
    let err = stderr_of(o);
    let name = out.to_string_lossy();
    assert!(err.contains(&*name), "stderr does not name {name}:\n{err}");
    assert!(
        err.contains(cause),
        "stderr does not give the cause `{cause}`:\n{err}"
    );
    if strict {
        assert!(!o.status.success(), "--strict succeeded:\n{err}");
        assert!(err.contains("ldnote: error:"), "{err}");
    } else {
        assert_eq!(
            o.status.code(),
            Some(0),
            "default mode must keep the linker's status:\n{err}"
        );
        assert!(err.contains("ldnote: warning:"), "{err}");
    }
}

#[test]
fn enospc_keeps_the_linkers_output() {
    let l = Layout::new();
    let Some(fs) = Tmpfs::mount(&l.p("small"), 900) else {
        return;
    };
    let w = wrapper(&l, "cc-wrap", "");
    for strict in [false, true] {
        let out = fs.0.join(if strict { "strict" } else { "default" });
        let mut extra = vec!["--no-reserve"];
        if strict {
            extra.push("--strict");
        }
        // 512 KiB of data: the output fits, a second copy (the fallback's) does not. The
        // linker's bytes are kept outside the small filesystem.
        let snap = l.p("snapshot");
        let o = run(ldnote_cmd()
            .arg("link")
            .args(&extra)
            .arg("--")
            .arg(&w)
            .args(program_args(&l, &out, 512))
            .env("LDNOTE_TEST_SNAPSHOT", &snap)
            .current_dir(l.root()));
        assert_warned(&o, &out, "No space left on device", strict);
        let linker = std::fs::read(&snap).expect("snapshot");
        assert_eq!(std::fs::read(&out).expect("read"), linker, "output changed");
        assert!(note_desc(&out).is_none(), "a note appeared");
        assert_eq!(
            leftovers(&out),
            Vec::<std::path::PathBuf>::new(),
            "temporary file left"
        );
        run_ok(&mut Command::new(&out));
        std::fs::remove_file(&out).expect("rm");
    }
}

#[test]
fn read_only_filesystem_keeps_the_linkers_output() {
    let l = Layout::new();
    let Some(fs) = Tmpfs::mount(&l.p("ro"), 4096) else {
        return;
    };
    // The filesystem turns read-only between the link and the note step.
    let dir = fs.0.display().to_string();
    for strict in [false, true] {
        let out = fs.0.join(if strict { "strict" } else { "default" });
        let _ = Command::new("mount")
            .args(["-o", "remount,rw"])
            .arg(&fs.0)
            .status();
        let w = wrapper(&l, "cc-ro", &format!("mount -o remount,ro '{dir}'"));
        let mut extra = vec![];
        if strict {
            extra.push("--strict");
        }
        let o = link_with(&l, &w, &out, &extra, 1);
        assert_warned(&o, &out, "Read-only file system", strict);
        let linker = std::fs::read(format!("{}.linker", out.display())).expect("snapshot");
        assert_eq!(std::fs::read(&out).expect("read"), linker, "output changed");
        run_ok(&mut Command::new(&out));
    }
}

/// Links a program to `out` with mold through the snapshotting wrapper (`OUT.linker` keeps the
/// linker's bytes), with no reservation, so that the append fallback notes it; `--strict`, so
/// any failure to note fails the link. Returns the linker's bytes and the fully noted file.
fn mold_link_by_fallback(l: &Layout, out: &Path) -> (Vec<u8>, Vec<u8>) {
    let w = wrapper(l, "cc-wrap", "");
    let mut args = program_args(l, out, 1);
    args.push("-fuse-ld=mold".into());
    let o = run(ldnote_cmd()
        .args(["link", "--strict", "--no-reserve", "--"])
        .arg(&w)
        .args(&args)
        .current_dir(l.root()));
    assert!(o.status.success(), "{}", stderr_of(&o));
    let snapshot = std::path::PathBuf::from(format!("{}.linker", out.display()));
    let linker = std::fs::read(&snapshot).expect("snapshot");
    let noted = reference_noted(&snapshot, &l.p("reference"));
    (linker, noted)
}

#[test]
fn symlink_output_notes_the_file_the_linker_wrote() {
    // mold writes through a symlinked output (GNU ld, gold and lld replace the link by a file);
    // ldnote then notes that same file, keeps the link, and never touches anything else. No
    // reservation: the append fallback (a new file renamed over the target) is what is tested.
    if require_tool("mold").is_none() {
        return;
    }
    let l = Layout::new();
    l.mkdir("real");
    let target = l.p("real/prog");
    std::fs::write(&target, b"old").expect("write");
    let link = l.symlink(&target, "prog");
    let bystander = l.write("real/other", b"bystander");
    let (linker, noted) = mold_link_by_fallback(&l, &link);
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("lstat")
            .file_type()
            .is_symlink(),
        "the symlink was replaced"
    );
    assert_eq!(std::fs::read_link(&link).expect("readlink"), target);
    assert_eq!(
        assert_linker_or_noted(&target, &linker, &noted, "symlink target"),
        State::Noted
    );
    assert_eq!(std::fs::read(&bystander).expect("read"), b"bystander");
    assert_eq!(leftovers(&target), Vec::<std::path::PathBuf>::new());
    run_ok(&mut Command::new(&link));
}

#[test]
fn hard_linked_output_is_replaced_atomically_in_link_mode() {
    // mold keeps a hard-linked output's inode. The append fallback (no reservation here) never
    // rewrites a file in place in link mode: the output name gets the noted file by rename, the other name keeps
    // the linker's complete bytes (a valid program without a note), nothing is ever torn.
    if require_tool("mold").is_none() {
        return;
    }
    let l = Layout::new();
    let out = l.p("prog");
    std::fs::write(&out, b"old").expect("write");
    let twin = l.p("twin");
    std::fs::hard_link(&out, &twin).expect("ln");
    let (linker, noted) = mold_link_by_fallback(&l, &out);
    assert_eq!(
        assert_linker_or_noted(&out, &linker, &noted, "output"),
        State::Noted
    );
    assert_eq!(
        std::fs::read(&twin).expect("read twin"),
        linker,
        "the other name must keep the linker's bytes"
    );
    run_ok(&mut Command::new(&out));
    run_ok(&mut Command::new(&twin));
}

#[test]
fn output_replaced_during_the_note_step_is_never_written() {
    // Another process renames a file over the output at a random moment after the link. Whatever
    // the timing, the file that replaced it is never modified (never noted, never clobbered by
    // the fallback's rename), and ldnote keeps the linker's status.
    let l = Layout::new();
    let replacement: &[u8] = b"#!/bin/sh\necho replaced by another process\n";
    l.write("replacement.src", replacement);
    let mut rng = Rng(42);
    // 16 MiB of data make the fallback's read-rewrite-rename last a few hundred ms.
    for (mode, extra, kib, max_us) in [
        ("append", vec!["--no-reserve"], 16384, 300_000),
        ("in place", vec![], 1, 20_000),
    ] {
        for round in 0..10 {
            let delay = rng.below(max_us);
            let after =
                format!("( sleep 0.{delay:06}; cp replacement.src .swap; mv .swap \"$out\" ) &");
            let w = wrapper(&l, "cc-swap", &after);
            let out = l.p("prog");
            let o = link_with(&l, &w, &out, &extra, kib);
            assert_eq!(
                o.status.code(),
                Some(0),
                "{mode} {round}: {}",
                stderr_of(&o)
            );
            // Wait for the background swap, then the replacement must be intact.
            let start = Instant::now();
            while std::fs::read(&out).ok().as_deref() != Some(replacement) {
                assert!(
                    start.elapsed() < Duration::from_secs(20),
                    "{mode} {round}: the replacement was modified or lost"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(
                leftovers(&out),
                Vec::<std::path::PathBuf>::new(),
                "{mode} {round}"
            );
            std::fs::remove_file(&out).expect("rm");
        }
    }
}

#[test]
fn parallel_links_into_one_directory() {
    // `make -j8`: eight programs linked through ldnote into one directory at once, half of them
    // by the append fallback (temporary files and renames side by side).
    if require_tool("make").is_none() {
        return;
    }
    let l = Layout::new();
    let args = program_args(&l, &l.p("unused"), 64);
    let quote = |a: &std::ffi::OsStr| format!("'{}'", a.to_string_lossy());
    let rest: Vec<String> = args[2..].iter().map(|a| quote(a)).collect();
    let mut mk = String::from("all:");
    for i in 0..8 {
        mk.push_str(&format!(" p{i}"));
    }
    mk.push('\n');
    for i in 0..8 {
        let extra = if i % 2 == 0 { "--no-reserve" } else { "" };
        mk.push_str(&format!(
            "p{i}:\n\t'{}' link --strict {extra} -- gcc -o $@ {}\n",
            ldnote().display(),
            rest.join(" ")
        ));
    }
    l.write("Makefile", mk.as_bytes());
    let o = run(Command::new("make")
        .args(["-j8", "-s"])
        .current_dir(l.root()));
    assert!(o.status.success(), "{}", stderr_of(&o));
    let outs: Vec<_> = (0..8).map(|i| l.p(format!("p{i}"))).collect();
    let c = run(ldnote_cmd().arg("check").args(&outs));
    assert!(c.status.success(), "{}", stdout_of(&c));
    for out in &outs {
        assert_eq!(leftovers(out), Vec::<std::path::PathBuf>::new());
        run_ok(&mut Command::new(out));
    }
}

#[test]
fn linker_killed_by_a_signal_after_writing_its_output() {
    // The linker wrote a complete output and then died of SIGSEGV: ldnote exits 128+11 and does
    // not touch the output (a failed link is never noted).
    let l = Layout::new();
    let w = wrapper(&l, "cc-segv", "kill -SEGV $$");
    let out = l.p("prog");
    for extra in [vec![], vec!["--strict"]] {
        let o = link_with(&l, &w, &out, &extra, 1);
        assert_eq!(o.status.code(), Some(128 + 11), "{}", stderr_of(&o));
        let linker = std::fs::read(l.p("prog.linker")).expect("snapshot");
        assert_eq!(std::fs::read(&out).expect("read"), linker, "output changed");
        assert!(note_desc(&out).is_none());
    }
}

#[test]
fn linker_writing_huge_stdout() {
    // 64 MiB on stdout and 1 MiB on stderr before the link: passed through byte for byte
    // (inherited descriptors, nothing buffered), and the output is noted.
    let l = Layout::new();
    let w = l.write(
        "tools/cc-loud",
        b"#!/bin/sh\nhead -c 67108864 /dev/zero | tr '\\0' 'x'\nhead -c 1048576 /dev/zero | tr '\\0' 'y' >&2\nexec gcc \"$@\"\n",
    );
    std::fs::set_permissions(&w, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let out = l.p("prog");
    let mut child = ldnote_cmd()
        .args(["link", "--strict", "--"])
        .arg(&w)
        .args(program_args(&l, &out, 1))
        .current_dir(l.root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = child.stderr.take().expect("stderr");
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        stderr.read_to_end(&mut v).expect("read stderr");
        v
    });
    let mut stdout = Vec::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_end(&mut stdout)
        .expect("read stdout");
    let status = child.wait().expect("wait");
    let err = err.join().expect("stderr thread");
    assert!(
        status.success(),
        "{}",
        String::from_utf8_lossy(&err[err.len().saturating_sub(2000)..])
    );
    assert_eq!(stdout.len(), 64 << 20);
    assert!(stdout.iter().all(|b| *b == b'x'));
    assert_eq!(err.len(), 1 << 20, "stderr must be the linker's only");
    assert!(note_desc(&out).is_some(), "not noted");
}
