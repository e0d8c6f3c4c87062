//! Adversarial sysroots, run paths and outputs: symlink loops, links escaping the sysroot,
//! non-UTF-8 names, `:` in a soname, a 64 KiB run path, 10,000 DT_NEEDED, a directory named like
//! a library, a run-path entry that is a file; and malformed files handed to `patch`, `show` and
//! `check` (truncated headers, overlapping segments, PT_NOTE outside the file, bogus note sizes):
//! each a valid output or a clear error naming the file, never a panic, the file unchanged.

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::common::*;

/// `ldnote patch --strict -v` on a program with `runpath` needing `libs`, then `check` and
/// `show`: all succeed and the descriptor is returned.
fn noted(l: &Layout, libs: &[&Path], runpath: &[u8], extra: &[&str]) -> Vec<u8> {
    let prog = Link::program(l).inputs(libs).runpath(runpath).build("prog");
    let o = run(ldnote_cmd()
        .args(["patch", "--strict", "-v"])
        .args(extra)
        .arg(&prog));
    assert!(o.status.success(), "{}", stderr_of(&o));
    let c = run(ldnote_cmd().arg("check").args(extra).arg(&prog));
    assert!(c.status.success(), "check: {}", stdout_of(&c));
    run_ok(ldnote_cmd().arg("show").arg(&prog));
    note_desc(&prog).unwrap_or_default()
}

/// The path list recorded for `soname` in a descriptor.
fn list_of(d: &[u8], soname: &[u8]) -> Option<Vec<u8>> {
    let parts: Vec<&[u8]> = d.split(|b| *b == 0).collect();
    parts
        .chunks(2)
        .find(|p| p[0] == soname)
        .and_then(|p| p.get(1).map(|l| l.to_vec()))
}

fn no_panic(o: &Output) {
    let err = stderr_of(o);
    assert!(
        !err.contains("panicked") && o.status.code() != Some(101),
        "panic:\n{err}"
    );
}

#[test]
fn symlink_loops_in_the_run_path() {
    let l = Layout::new();
    let a = l.lib_in("d1", "liba.so");
    l.mkdir("loop");
    l.symlink("liba.so", "loop/liba.so"); // a file link to itself
    l.symlink(l.p("loop2"), "loop1"); // two directory links to each other
    l.symlink(l.p("loop1"), "loop2");
    let rp = [l.pb("loop"), l.pb("loop1"), l.pb("d1")].join(&b':');
    let d = noted(&l, &[&a], &rp, &[]);
    assert!(
        d.windows(7).any(|w| w == b"liba.so"),
        "{}",
        pretty_desc(Some(&d))
    );
    assert!(String::from_utf8_lossy(&d).contains(&format!("={}", l.p("d1/liba.so").display())));
    assert!(!String::from_utf8_lossy(&d).contains(&format!("={}", l.p("loop/liba.so").display())));
}

#[test]
fn links_escaping_the_sysroot_are_resolved_inside_it() {
    // In the sysroot, /lib/liba.so -> ../../../../outside/liba.so and /lib2/liba.so ->
    // /outside/liba.so. The host has such a file; the target (the sysroot) does not. Neither may
    // be recorded as `=`: the loader on the target would not find a file there.
    let l = Layout::new();
    let host = l.lib_in("outside", "liba.so");
    let sys = l.mkdir("sysroot");
    l.mkdir("sysroot/lib");
    l.mkdir("sysroot/lib2");
    let depth = sys.components().count() + 3;
    let up = "../".repeat(depth);
    l.symlink(format!("{up}{}", host.display()), "sysroot/lib/liba.so");
    l.symlink(&host, "sysroot/lib2/liba.so");
    let prog = Link::program(&l)
        .input(&host)
        .runpath("/lib:/lib2")
        .build("prog");
    let o = run(ldnote_cmd()
        .args(["patch", "--strict", "-v", "--sysroot"])
        .arg(&sys)
        .arg(&prog));
    assert!(o.status.success(), "{}", stderr_of(&o));
    let d = note_desc(&prog);
    assert!(
        !d.as_deref()
            .unwrap_or_default()
            .windows(1)
            .any(|w| w == b"="),
        "a file outside the sysroot was recorded: {}",
        pretty_desc(d.as_deref())
    );
}

#[test]
fn non_utf8_names_are_kept_byte_for_byte() {
    let l = Layout::new();
    let dir: &[u8] = b"d\xff\xfe";
    let dir = std::ffi::OsStr::from_bytes(dir);
    let name = std::ffi::OsStr::from_bytes(b"lib\xc3x.so");
    let lib = l.lib(Path::new(dir).join(name), Some(b"lib\xc3x.so"));
    let d = noted(&l, &[&lib], &l.pb(dir), &[]);
    let want = [
        b"lib\xc3x.so\0=".as_slice(),
        &l.pb(dir),
        b"/lib\xc3x.so\0\0",
    ]
    .concat();
    assert_eq!(d, want, "{}", pretty_desc(Some(&d)));
}

#[test]
fn a_colon_in_a_soname_cannot_be_an_exact_path() {
    // The loader splits a path list at `:`, so `=/d/lib:x.so` cannot be written: the directory
    // becomes a `?` hint for that soname, -v says why, the note stays valid.
    // An empty directory first, so the hint is not a mere repeat of the walk's first
    // directory (a list the writer leaves out: docs/note-format.md, "No pair for hints that
    // follow the walk").
    let l = Layout::new();
    l.mkdir("d0");
    let odd = l.lib("d1/lib:x.so", Some(b"lib:x.so"));
    let plain = l.lib_in("d1", "liby.so");
    let prog = Link::program(&l)
        .inputs([&odd, &plain])
        .runpath([l.pb("d0"), l.pb("d1")].join(&b':'))
        .build("prog");
    let o = run(ldnote_cmd().args(["patch", "--strict", "-v"]).arg(&prog));
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert!(stderr_of(&o).contains("contains `:`"), "{}", stderr_of(&o));
    let d = note_desc(&prog).expect("noted");
    let d1 = l.pb("d1");
    let want = [
        b"lib:x.so\0?".as_slice(),
        &d1,
        b"\0liby.so\0=",
        &d1,
        b"/liby.so\0\0",
    ]
    .concat();
    assert_eq!(d, want, "{}", pretty_desc(Some(&d)));
    let c = run(ldnote_cmd().arg("check").arg(&prog));
    assert!(c.status.success(), "{}", stdout_of(&c));
    // Run-path entries starting with `=` or `?` are relative: hints, encoded unambiguously
    // (before an `=` entry, where the writer keeps cwd-relative hints).
    let d2 = noted(
        &l,
        &[&plain],
        &[b"=odd:?odd:".as_slice(), &d1].concat(),
        &[],
    );
    assert_eq!(
        list_of(&d2, b"liby.so").as_deref(),
        Some(
            [b"?=odd:??odd:=".as_slice(), &d1, b"/liby.so"]
                .concat()
                .as_slice()
        ),
        "{}",
        pretty_desc(Some(&d2))
    );
}

#[test]
fn a_64_kib_run_path_and_10000_needed() {
    let l = Layout::new();
    let a = l.lib("d1/liba.so", None); // no soname: DT_NEEDED is the file name given
    let mut rp = Vec::new();
    let mut i = 0;
    while rp.len() < 64 * 1024 {
        // Existing empty directories: each listed once, none a hint (a missing one would be a
        // `?` hint for all 10,000 sonames: a note of hundreds of MB, as patchelf would write).
        rp.extend_from_slice(
            &l.mkdir(format!("empty/dir{i:05}"))
                .into_os_string()
                .into_vec(),
        );
        rp.push(b':');
        i += 1;
    }
    rp.extend_from_slice(&l.pb("d1"));
    // 10,000 sonames, each a symlink to the one library, added with patchelf (a link with 10,000
    // libraries would take minutes).
    let Some(patchelf) = require_tool("patchelf") else {
        return;
    };
    for n in 0..10_000 {
        std::os::unix::fs::symlink(&a, l.p(format!("d1/libn{n}.so"))).expect("symlink");
    }
    let prog = Link::program(&l)
        .arg(cat(&[b"-L", &l.pb("d1")]))
        .arg("-l:liba.so")
        .runpath(&rp)
        .build("prog");
    let mut add = Command::new(patchelf);
    for n in 0..10_000 {
        add.arg("--add-needed").arg(format!("libn{n}.so"));
    }
    run_ok(add.arg(&prog));
    let start = Instant::now();
    let o = run(ldnote_cmd().args(["patch", "--strict"]).arg(&prog));
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert!(
        start.elapsed() < Duration::from_secs(60),
        "took {:?}",
        start.elapsed()
    );
    let d = note_desc(&prog).expect("noted");
    let pairs = d.split(|b| *b == 0).filter(|p| !p.is_empty()).count() / 2;
    // 10,000 + liba.so (libc.so.6 is in none of these directories).
    assert_eq!(pairs, 10_001, "every soname recorded");
    assert!(d.len() < 2 << 20, "note of {} bytes", d.len());
    let c = run(ldnote_cmd().arg("check").arg(&prog));
    assert!(c.status.success(), "{}", stdout_of(&c));
}

#[test]
fn a_directory_named_like_a_library_and_a_file_as_run_path_entry() {
    let l = Layout::new();
    let a = l.lib_in("d2", "liba.so");
    l.mkdir("d1/liba.so"); // the loader fails on it: recorded as a `?` hint of d1
    let file = l.write("afile", b"not a directory");
    let rp = [l.pb("d1"), file.as_os_str().as_bytes().to_vec(), l.pb("d2")].join(&b':');
    let d = noted(&l, &[&a], &rp, &[]);
    let want = [
        b"?".as_slice(),
        &l.pb("d1"),
        b":?",
        file.as_os_str().as_bytes(),
        b":=",
        &l.pb("d2/liba.so"),
    ]
    .concat();
    assert_eq!(
        list_of(&d, b"liba.so"),
        Some(want),
        "{}",
        pretty_desc(Some(&d))
    );
}

/// Program headers of an x86_64 file: (offset of the header, p_type).
fn phdrs(d: &[u8]) -> Vec<(usize, u32)> {
    let phoff = u64::from_le_bytes(d[32..40].try_into().expect("8")) as usize;
    let n = u16::from_le_bytes([d[56], d[57]]) as usize;
    (0..n)
        .map(|i| {
            let at = phoff + i * 56;
            (at, u32::from_le_bytes(d[at..at + 4].try_into().expect("4")))
        })
        .collect()
}

fn put64(d: &mut [u8], at: usize, v: u64) {
    d[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn get64(d: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(d[at..at + 8].try_into().expect("8"))
}

/// Malformed variants of a real program (un-noted, with a run path) and of its noted twin.
fn malformed(plain: &[u8], noted: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = Vec::new();
    for len in [0, 3, 4, 16, 52, 63, 64, 64 + 56 * 3 - 1, plain.len() / 2] {
        v.push((format!("truncated to {len} bytes"), plain[..len].to_vec()));
    }
    let note = phdrs(plain)
        .into_iter()
        .find(|p| p.1 == 4)
        .expect("PT_NOTE")
        .0;
    let dynamic = phdrs(plain)
        .into_iter()
        .find(|p| p.1 == 2)
        .expect("PT_DYNAMIC")
        .0;
    let mut d = plain.to_vec();
    let (dyn_off, dyn_size) = (get64(&d, dynamic + 8), get64(&d, dynamic + 32));
    put64(&mut d, note + 8, dyn_off);
    put64(&mut d, note + 32, dyn_size);
    v.push(("PT_NOTE overlapping PT_DYNAMIC".into(), d));
    for (what, off) in [
        ("past the end", plain.len() as u64 + 64),
        ("at 2^64-4", u64::MAX - 3),
    ] {
        let mut d = plain.to_vec();
        put64(&mut d, note + 8, off);
        v.push((format!("PT_NOTE {what}"), d));
        let mut d = noted.to_vec();
        let n = phdrs(noted)
            .into_iter()
            .find(|p| p.1 == 4)
            .expect("PT_NOTE")
            .0;
        put64(&mut d, n + 32, u64::MAX - 7);
        v.push((format!("noted, PT_NOTE size {what}"), d));
    }
    let mut d = plain.to_vec();
    put64(&mut d, dynamic + 8, plain.len() as u64 - 8);
    v.push(("PT_DYNAMIC running off the end".into(), d));
    let mut d = plain.to_vec();
    d[56..58].copy_from_slice(&u16::MAX.to_le_bytes());
    v.push(("e_phnum 65535".into(), d));
    // The live note with bogus n_namesz / n_descsz.
    let at = noted
        .windows(8)
        .position(|w| w == b"\xb6\x6c\xa8\x63NixO")
        .expect("live note")
        - 8;
    for (what, field, val) in [
        ("n_descsz 2^32-1", 4, u32::MAX),
        ("n_descsz 0", 4, 0),
        ("n_namesz 2^32-16", 0, u32::MAX - 15),
    ] {
        let mut d = noted.to_vec();
        d[at + field..at + field + 4].copy_from_slice(&val.to_le_bytes());
        v.push((format!("noted, {what}"), d));
    }
    v
}

#[test]
fn malformed_files_are_clear_errors_and_stay_unchanged() {
    let l = Layout::new();
    let a = l.lib_in("d1", "liba.so");
    let prog = Link::program(&l)
        .input(&a)
        .runpath(l.pb("d1"))
        .build("prog");
    let plain = std::fs::read(&prog).expect("read");
    run_ok(ldnote_cmd().arg("patch").arg(&prog));
    let noted_bytes = std::fs::read(&prog).expect("read");
    for (what, bytes) in malformed(&plain, &noted_bytes) {
        let f = l.write("bad", &bytes);
        let show = run(ldnote_cmd().arg("show").arg(&f));
        no_panic(&show);
        let check = run(ldnote_cmd().arg("check").arg(&f));
        no_panic(&check);
        let patch = run(ldnote_cmd().args(["patch", "--strict"]).arg(&f));
        no_panic(&patch);
        let after = std::fs::read(&f).expect("read");
        if patch.status.success() {
            // Accepted only when there is nothing to do (e.g. no dynamic section left to see).
            assert_eq!(
                after, bytes,
                "{what}: patch succeeded and changed a malformed file"
            );
            eprintln!("{what}: nothing to do, unchanged");
        } else {
            assert_eq!(after, bytes, "{what}: a failed patch changed the file");
            let err = stderr_of(&patch);
            assert!(
                err.contains("bad`"),
                "{what}: the error does not name the file: {err}"
            );
            assert!(
                !check.status.success(),
                "{what}: check accepted a file patch rejects"
            );
            eprintln!("{what}: {}", err.trim());
        }
    }
}
