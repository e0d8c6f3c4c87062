//! Replacing and rewriting a noted file against other processes and the system's limits: a
//! file another process still writes, a full disk and a size limit when a hard-linked file is
//! rewritten in place, `kill -9` during that rewrite, parallel `patch` runs on one file, and the
//! metadata (extended attributes, ACLs, set-user-ID) a replacement keeps.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::*;
use crate::require;
use crate::robust_util::*;

/// A program linked by plain gcc (no note), with `data_kib` of data.
fn plain_program(l: &Layout, name: &str, data_kib: usize) -> PathBuf {
    let out = l.p(name);
    run_ok(
        Command::new("gcc")
            .args(program_args(l, &out, data_kib))
            .current_dir(l.root()),
    );
    out
}

#[test]
fn patch_refuses_a_file_another_process_has_open_for_writing() {
    require!("gcc");
    let l = Layout::new();
    let prog = plain_program(&l, "prog", 1);
    let before = std::fs::read(&prog).expect("read");
    // A writer that keeps the file open (as a linker does until it has written the build-id).
    let mut holder = Command::new("sh")
        .args(["-c", "exec 3>>\"$1\"; echo ready; exec sleep 30", "sh"])
        .arg(&prog)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn holder");
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(holder.stdout.as_mut().expect("stdout"), &mut ready).expect("ready");
    let o = run(ldnote_cmd().arg("patch").arg(&prog));
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(o.status.code(), Some(1), "{}", stderr_of(&o));
    assert!(
        stderr_of(&o).contains("open for writing by another process"),
        "{}",
        stderr_of(&o)
    );
    assert_eq!(std::fs::read(&prog).expect("read"), before, "file changed");
    // Once the writer is gone the file is noted.
    run_ok(ldnote_cmd().arg("patch").arg(&prog));
    run_ok(ldnote_cmd().arg("check").arg(&prog));
}

/// `ldnote patch` in a loop while GNU ld writes a large output: whatever the timing, the linker's
/// last writes (the build-id note) are never lost into an orphaned inode.
#[test]
fn patch_racing_a_linker_never_loses_its_writes() {
    require!("gcc");
    let readelf = require!("readelf");
    let l = Layout::new();
    let out = l.p("big");
    let args = program_args(&l, &out, 16 * 1024);
    for round in 0..5 {
        let _ = std::fs::remove_file(&out);
        // An earlier output the patch loop can start on.
        run_ok(Command::new("gcc").args(&args).current_dir(l.root()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let looper = {
            let (stop, out) = (stop.clone(), out.clone());
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = ldnote_cmd()
                        .arg("patch")
                        .arg(&out)
                        .stderr(Stdio::null())
                        .status();
                }
            })
        };
        std::thread::sleep(Duration::from_millis(30));
        let linked = run(Command::new("gcc")
            .args(&args)
            .arg("-Wl,--build-id")
            .current_dir(l.root()));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        looper.join().expect("patch loop");
        assert!(linked.status.success(), "{}", stderr_of(&linked));
        let notes = stdout_of(&run(Command::new(&readelf).arg("-n").arg(&out)));
        assert!(
            notes.contains("NT_GNU_BUILD_ID") && !notes.contains("(NONE)"),
            "round {round}: the build-id note was lost:\n{notes}"
        );
        let c = run(ldnote_cmd().arg("check").arg(&out));
        assert!(
            !stdout_of(&c).contains("damaged"),
            "round {round}: {}",
            stdout_of(&c)
        );
        run_ok(&mut Command::new(&out));
    }
}

/// `check` reads the whole note segment: a zeroed build-id note (what the race above leaves)
/// fails even though the resolution note is right.
#[test]
fn check_fails_on_a_zeroed_build_id_note() {
    require!("gcc");
    let l = Layout::new();
    let prog = plain_program(&l, "prog", 1);
    run_ok(ldnote_cmd().arg("patch").arg(&prog));
    run_ok(ldnote_cmd().arg("check").arg(&prog));
    let mut data = std::fs::read(&prog).expect("read");
    let (off, size) = section_range(&data, b".note.gnu.build-id").expect("build-id section");
    data[off..off + size].fill(0);
    std::fs::write(&prog, &data).expect("write");
    let o = run(ldnote_cmd().arg("check").arg(&prog));
    assert_eq!(o.status.code(), Some(1), "{}", stdout_of(&o));
    assert!(stdout_of(&o).contains("all-zero note"), "{}", stdout_of(&o));
}

/// File range of a section by name (64-bit little-endian ELF), read with `object`.
fn section_range(data: &[u8], name: &[u8]) -> Option<(usize, usize)> {
    use object::{Object, ObjectSection};
    let f = object::File::parse(data).ok()?;
    let s = f.sections().find(|s| s.name_bytes().ok() == Some(name))?;
    let (o, n) = s.file_range()?;
    Some((o as usize, n as usize))
}

/// Two names of one file (patch mode rewrites such a file in place so both see the note).
fn hard_linked(l: &Layout, dir: &Path, data_kib: usize) -> (PathBuf, PathBuf, Vec<u8>) {
    let src = plain_program(l, "src", data_kib);
    let prog = dir.join("prog");
    let twin = dir.join("twin");
    std::fs::copy(&src, &prog).expect("copy");
    std::fs::hard_link(&prog, &twin).expect("ln");
    let before = std::fs::read(&prog).expect("read");
    (prog, twin, before)
}

/// A program needing 40 libraries from long directory names: its note (about 8 KiB) makes the
/// noted file at least a page longer than the linker's.
fn program_with_a_big_note(l: &Layout) -> PathBuf {
    big_note_link(l).build("src")
}

fn big_note_link(l: &Layout) -> Link<'_> {
    let long = "d".repeat(150);
    let mut link = Link::program(l);
    let mut rp = Vec::new();
    for i in 0..40 {
        let dir = format!("{long}/{i}");
        link = link.input(l.lib_in(&dir, &format!("libn{i}.so")));
        if i > 0 {
            rp.push(b':');
        }
        rp.extend(l.pb(&dir));
    }
    link.runpath(rp)
}

#[test]
fn full_disk_never_shortens_a_hard_linked_file() {
    require!("gcc");
    let l = Layout::new();
    let Some(fs) = Tmpfs::mount(&l.p("small"), 2048) else {
        return;
    };
    let src = program_with_a_big_note(&l);
    let prog = fs.0.join("prog");
    let twin = fs.0.join("twin");
    std::fs::copy(&src, &prog).expect("copy");
    std::fs::hard_link(&prog, &twin).expect("ln");
    let before = std::fs::read(&prog).expect("read");
    // Fill the filesystem so that the file cannot grow by a single page.
    let filler = fs.0.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4096"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    let o = run(ldnote_cmd().arg("patch").arg(&prog));
    assert_eq!(o.status.code(), Some(1), "{}", stderr_of(&o));
    assert!(
        stderr_of(&o).contains("No space left on device"),
        "{}",
        stderr_of(&o)
    );
    assert_eq!(std::fs::read(&prog).expect("read"), before, "file changed");
    assert_eq!(std::fs::read(&twin).expect("read"), before);
    run_ok(&mut Command::new(&prog));
    // With room again it is noted through both names.
    std::fs::remove_file(&filler).expect("rm filler");
    run_ok(ldnote_cmd().arg("patch").arg(&prog));
    run_ok(ldnote_cmd().arg("check").arg(&prog).arg(&twin));
    assert_eq!(std::fs::read(&prog).ok(), std::fs::read(&twin).ok());
}

/// `ulimit -f` between the file's size and the noted size: refused before the first byte, no
/// SIGXFSZ (exit 153), nothing left behind; in link mode the link still succeeds.
#[test]
fn file_size_limit_is_checked_before_writing() {
    require!("gcc");
    require!("prlimit");
    let l = Layout::new();
    let dir = l.mkdir("lim");
    let (prog, twin, before) = hard_linked(&l, &dir, 256);
    let single = dir.join("single");
    std::fs::copy(&prog, &single).expect("copy");
    let limit = before.len().to_string();
    for f in [&prog, &single] {
        let o = run(Command::new("prlimit")
            .arg(format!("--fsize={limit}"))
            .arg(ldnote())
            .arg("patch")
            .arg(f));
        assert_eq!(o.status.code(), Some(1), "{}", stderr_of(&o));
        assert!(
            stderr_of(&o).contains("file size limit"),
            "{}",
            stderr_of(&o)
        );
        assert_eq!(std::fs::read(f).expect("read"), before, "{f:?} changed");
        assert_eq!(leftovers(f), Vec::<PathBuf>::new(), "temporary file left");
    }
    assert_eq!(std::fs::read(&twin).expect("read"), before);
    // Link mode: the linker's output fits the limit, the noted copy (its note is about 8 KiB)
    // does not. (1 KiB of slack: cp(1) in the wrapper needs a little more than the file.)
    let w = wrapper(&l, "cc-wrap", "");
    let out = l.p("linked");
    let args = big_note_link(&l).args(&out);
    let probe = run(ldnote_cmd()
        .args(["link", "--no-reserve", "--"])
        .arg(&w)
        .args(&args)
        .current_dir(l.root()));
    assert!(probe.status.success(), "{}", stderr_of(&probe));
    let size = std::fs::metadata(l.p("linked.linker"))
        .expect("snapshot")
        .len();
    let noted = std::fs::metadata(&out).expect("noted").len();
    assert!(
        noted > size + 1024,
        "the note does not grow the file enough: {size} -> {noted}"
    );
    let o = run(Command::new("prlimit")
        .arg(format!("--fsize={}", size + 1024))
        .arg(ldnote())
        .args(["link", "--no-reserve", "--"])
        .arg(&w)
        .args(&args)
        .current_dir(l.root()));
    assert_eq!(o.status.code(), Some(0), "{}", stderr_of(&o));
    assert!(
        stderr_of(&o).contains("file size limit"),
        "{}",
        stderr_of(&o)
    );
    assert_eq!(
        std::fs::read(&out).expect("out"),
        std::fs::read(l.p("linked.linker")).expect("snapshot")
    );
    assert_eq!(
        leftovers(&out),
        Vec::<PathBuf>::new(),
        "temporary file left"
    );
}

/// `kill -9` at random moments of the in-place rewrite of a hard-linked 2 MiB file: the file is
/// never shorter than the original, its first bytes are never lost, and a complete run after
/// any kill leaves the noted file through both names.
#[test]
fn kill9_during_hard_linked_rewrite_never_shortens_it() {
    require!("gcc");
    let l = Layout::new();
    let dir = l.mkdir("k");
    let src = plain_program(&l, "src", 2048);
    let before = std::fs::read(&src).expect("read");
    let noted = reference_noted(&src, &l.p("reference"));
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut old, mut new, mut other) = (0, 0, 0);
    for round in 0..30 {
        let prog = dir.join("prog");
        let twin = dir.join("twin");
        let _ = std::fs::remove_file(&prog);
        let _ = std::fs::remove_file(&twin);
        std::fs::write(&prog, &before).expect("write");
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::hard_link(&prog, &twin).expect("ln");
        let mut child = ldnote_cmd()
            .arg("patch")
            .arg(&prog)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(Duration::from_micros(rng.below(8_000)));
        kill9(child.id());
        let _ = child.wait();
        let got = std::fs::read(&prog).expect("read");
        assert!(
            got.len() >= before.len(),
            "round {round}: shortened to {} bytes (was {})",
            got.len(),
            before.len()
        );
        if got == before {
            old += 1;
        } else if got == noted {
            new += 1;
        } else {
            other += 1;
        }
        run_ok(ldnote_cmd().arg("patch").arg(&prog));
        assert_eq!(
            std::fs::read(&twin).expect("twin"),
            std::fs::read(&prog).expect("prog")
        );
        run_ok(ldnote_cmd().arg("check").arg(&prog));
    }
    eprintln!("kill -9 rounds: {old} original, {new} noted, {other} grown or mixed");
}

#[test]
fn parallel_patch_runs_on_one_file_all_succeed() {
    require!("gcc");
    let l = Layout::new();
    for prog in [
        plain_program(&l, "prog", 512),
        Link::program(&l).build("nothing"),
    ] {
        parallel_patch(&prog);
    }
}

/// 50 `patch` runs on `prog` at once: all succeed, the file ends noted (or, with nothing to
/// record, unchanged).
fn parallel_patch(prog: &Path) {
    let prog = prog.to_owned();
    let children: Vec<_> = (0..50)
        .map(|_| {
            ldnote_cmd()
                .arg("patch")
                .arg(&prog)
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().expect("wait");
        assert!(
            o.status.success(),
            "a parallel run failed: {}",
            stderr_of(&o)
        );
    }
    run_ok(ldnote_cmd().arg("check").arg(&prog));
    assert_eq!(leftovers(&prog), Vec::<PathBuf>::new());
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::getxattr(p, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

/// A POSIX ACL as the kernel stores it (`system.posix_acl_access`): owner rwx, user 4242 r-x,
/// group r-x, mask r-x, other r-x.
fn acl_bytes() -> Vec<u8> {
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in [
        (0x01u16, 7u16, u32::MAX),
        (0x02, 5, 4242),
        (0x04, 5, u32::MAX),
        (0x10, 5, u32::MAX),
        (0x20, 5, u32::MAX),
    ] {
        v.extend(tag.to_le_bytes());
        v.extend(perm.to_le_bytes());
        v.extend(id.to_le_bytes());
    }
    v
}

/// The append fallback replaces the file: its extended attributes and ACL come along, as with
/// patchelf 0.19.3 (which rewrites the inode in place and so keeps them).
#[test]
fn extended_attributes_and_acls_are_kept_as_patchelf_keeps_them() {
    require!("gcc");
    require!("patchelf");
    let l = Layout::new();
    let src = plain_program(&l, "src", 1);
    let mut kept = Vec::new();
    for tool in ["ldnote", "patchelf"] {
        let f = l.p(format!("by-{tool}"));
        std::fs::copy(&src, &f).expect("copy");
        rustix::fs::setxattr(
            &f,
            "user.ldnote-test",
            b"kept",
            rustix::fs::XattrFlags::empty(),
        )
        .expect("user xattr (the test filesystem must support them)");
        rustix::fs::setxattr(
            &f,
            "system.posix_acl_access",
            &acl_bytes(),
            rustix::fs::XattrFlags::empty(),
        )
        .expect("ACL");
        let ino = std::fs::metadata(&f).expect("meta").ino();
        if tool == "ldnote" {
            run_ok(ldnote_cmd().arg("patch").arg(&f));
            assert_ne!(
                std::fs::metadata(&f).expect("meta").ino(),
                ino,
                "not replaced"
            );
        } else {
            let o = patchelf_cache(&f);
            assert!(o.status.success(), "{}", stderr_of(&o));
        }
        kept.push((
            xattr(&f, "user.ldnote-test"),
            xattr(&f, "system.posix_acl_access"),
            std::fs::metadata(&f).expect("meta").mode() & 0o7777,
        ));
    }
    assert_eq!(kept[0].0.as_deref(), Some(&b"kept"[..]), "user xattr lost");
    assert!(kept[0].1.is_some(), "ACL lost");
    assert_eq!(
        kept[0], kept[1],
        "ldnote and patchelf keep different metadata"
    );
}

/// A non-root user who may write the directory of a root-owned set-user-ID file: the replaced
/// file is theirs, so the set-user-ID and set-group-ID bits are dropped (with a warning).
#[test]
fn setuid_bits_are_dropped_when_the_owner_cannot_be_kept() {
    require!("gcc");
    require!("setpriv");
    if !rustix::process::geteuid().is_root() {
        return skip_or_fail(
            "setuid_bits_are_dropped_when_the_owner_cannot_be_kept",
            "needs root to make a root-owned set-user-ID file",
        );
    }
    let l = Layout::new();
    let src = plain_program(&l, "src", 1);
    let dir = l.mkdir("shared");
    for d in [l.root(), &dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).expect("chmod dir");
    }
    let f = dir.join("prog");
    std::fs::copy(&src, &f).expect("copy");
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o6777)).expect("chmod");
    let o = run(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(ldnote())
        .arg("patch")
        .arg(&f));
    assert!(o.status.success(), "{}", stderr_of(&o));
    let m = std::fs::metadata(&f).expect("meta");
    assert_eq!(
        m.uid(),
        65534,
        "the file was not replaced by the user's copy"
    );
    assert_eq!(
        m.mode() & 0o7777,
        0o777,
        "set-user-ID kept on a file whose owner changed"
    );
    assert!(stderr_of(&o).contains("set-user-ID"), "{}", stderr_of(&o));
    run_ok(ldnote_cmd().arg("check").arg(&f));
}

/// The append fallback holds neither the file nor its rewritten image: a 200 MiB output is noted
/// under an address-space limit of a quarter of its size (only the headers and the tables that
/// move are read; the kernel copies the rest file to file). A hard-linked file, rewritten in
/// place with one write of the changed span, holds that span once (a limit of 1.25 times the
/// file; the whole file and its image needed twice). The result is byte for byte what the
/// in-memory `append_note` makes of the same bytes and note, and it runs.
#[test]
fn the_append_fallback_streams_a_large_output() {
    use object::{Object, ObjectSection};
    require!("gcc");
    require!("prlimit");
    let l = Layout::new();
    let prog = plain_program(&l, "prog", 200 * 1024);
    let linked = l.p("linked");
    std::fs::copy(&prog, &linked).expect("copy");
    let other_name = l.p("other-name");
    std::fs::hard_link(&linked, &other_name).expect("hard link");
    let original = std::fs::read(&prog).expect("read");
    for (f, limit) in [
        (&prog, original.len() / 4),
        (&linked, original.len() + original.len() / 4),
    ] {
        let o = run(Command::new("prlimit")
            .arg(format!("--as={limit}"))
            .arg(ldnote())
            .arg("patch")
            .arg(f));
        assert!(o.status.success(), "{}: {}", f.display(), stderr_of(&o));
        run_ok(ldnote_cmd().arg("check").arg(f));
        assert_eq!(leftovers(f), Vec::<PathBuf>::new(), "temporary file left");
        let noted = std::fs::read(f).expect("read");
        let section = object::File::parse(&*noted)
            .expect("parse")
            .section_by_name(".note.nixos.ldcache")
            .expect("note section")
            .data()
            .expect("note bytes")
            .to_vec();
        let expected = ldnote::embed::append::append_note(&original, &section).expect("in memory");
        assert!(
            noted.len() > original.len(),
            "{}: not appended",
            f.display()
        );
        assert!(
            noted == expected,
            "{}: differs from the in-memory result",
            f.display()
        );
    }
    let (a, b) = (
        std::fs::metadata(&linked).expect("meta"),
        std::fs::metadata(&other_name).expect("meta"),
    );
    assert_eq!(a.ino(), b.ino(), "the hard link was broken");
    run_ok(&mut Command::new(&prog));
    run_ok(&mut Command::new(&other_name));
}
