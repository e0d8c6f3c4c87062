//! Cross targets end to end: for each target, a target image (sysroot) in a temp dir, libraries
//! and programs built with Debian's cross gcc through `ldnote link -- <triple>-gcc --sysroot=$S`,
//! and the note checked against the target's own glibc 2.36 loader run under qemu-user.
//!
//! Ground truth: `qemu-<arch> -L $S -E LD_DEBUG=libs prog`. For every (object, soname) in a note
//! the files the loader loads from the run path are obtained by peeling (load, rename the file
//! away, load again; harness::peel). Every `=` entry must be the next file in that sequence, a
//! `?dir` hint stands for whatever the loader finds in dir. Each case also states the exact note
//! expected, and the program must run and print the expected output.
//!
//! Per target it prints: cases run, `=` entries checked against the loader, mismatches
//! (`cargo test --release --test e2e cross:: -- --nocapture`). A missing tool skips a target with a printed
//! reason, or fails under CI=true.

mod arches;
mod check;
mod harness;

use crate::common::{missing, skip_or_fail};
use arches::*;
use check::{main_src, program, s, verify, Tally, Want};
use harness::{host, Arch, Image};
use std::fs;

#[test]
fn cross_x86_64() {
    run_target(&X86_64);
}
#[test]
fn cross_aarch64() {
    run_target(&AARCH64);
}
#[test]
fn cross_i686() {
    run_target(&I686);
}
#[test]
fn cross_armhf() {
    run_target(&ARMHF);
}
#[test]
fn cross_armel() {
    run_target(&ARMEL);
}
#[test]
fn cross_riscv64() {
    run_target(&RISCV64);
}
#[test]
fn cross_ppc64le() {
    run_target(&PPC64LE);
}
#[test]
fn cross_s390x() {
    run_target(&S390X);
}
#[test]
fn cross_mips64el() {
    run_target(&MIPS64EL);
}

/// Build the image and run every case for one target; print the counts; fail on any mismatch.
fn run_target(a: &Arch) {
    let gcc = format!("{}-gcc", a.triple);
    let qemu = format!("qemu-{}", a.qemu);
    let mut tools = vec![
        gcc.as_str(),
        qemu.as_str(),
        a.other_class.0,
        a.foreign,
        a.other_endian.0,
    ];
    tools.extend(a.flags_decoy.map(|d| d.0));
    let gold = format!("{}-ld.gold", a.triple);
    if a.linkers.contains(&"gold") {
        tools.push(&gold);
    }
    if a.linkers.contains(&"lld") {
        tools.push("ld.lld");
    }
    if let Some(m) = missing(&tools) {
        skip_or_fail(&format!("cross {}", a.name), &format!("`{m}` not found"));
        return;
    }
    let img = Image::new(a);
    let mut t = Tally {
        name: a.name,
        cases: 0,
        checked: 0,
        byte_order: 0,
        bad: Vec::new(),
        notes: Vec::new(),
    };
    let basic_args = case_basic(&img, &mut t);
    for ld in a.linkers {
        case_other_linker(&img, &mut t, ld, &basic_args);
    }
    case_host_decoys(&img, &mut t);
    case_other_class(&img, &mut t);
    if a.flags_decoy.is_some() {
        case_flags(&img, &mut t);
    }
    case_other_endian(&img, &mut t);
    case_symlinks(&img, &mut t);
    case_legacy_hwcaps(&img, &mut t);
    eprintln!(
        "cross {}: cases run {}, `=` entries checked against the loader {}, note byte-order checks {}, mismatches {}",
        t.name,
        t.cases,
        t.checked,
        t.byte_order,
        t.bad.len()
    );
    for n in &t.notes {
        eprintln!("  note: {n}");
    }
    for b in &t.bad {
        eprintln!("  MISMATCH {b}");
    }
    assert!(
        t.bad.is_empty(),
        "{} mismatches for {} (details above)",
        t.bad.len(),
        a.name
    );
}

/// Two needed libraries, one present in two run-path dirs (both recorded, run-path order), and
/// a library that has its own run path (its note is checked too).
fn case_basic(img: &Image, t: &mut Tally) -> Vec<String> {
    let r = &img.root;
    img.lib("/opt/basic/libc3/libbc.so.1", "libbc.so.1", "bc", 3);
    let o = img.object(
        "ba",
        "int bc(void);\nint ba(void) { return 100 + bc(); }\n",
        &img.gcc(),
        &["-fPIC"],
    );
    let libc3 = host(r, "/opt/basic/libc3");
    img.link(
        "/opt/basic/liba/libba.so.1",
        &[&o],
        &[
            s("-shared"),
            s("-Wl,-soname,libba.so.1"),
            format!("-L{}", libc3.display()),
            s("-l:libbc.so.1"),
            s("-Wl,-rpath,/opt/basic/libc3"),
        ],
    );
    img.lib("/opt/basic/libb/libbb.so.1", "libbb.so.1", "bb", 2);
    img.lib("/opt/basic/old/libbb.so.1", "libbb.so.1", "bb", 20);
    let args = [
        format!("-L{}", host(r, "/opt/basic/liba").display()),
        s("-l:libba.so.1"),
        format!("-L{}", host(r, "/opt/basic/libb").display()),
        s("-l:libbb.so.1"),
        format!("-Wl,-rpath-link,{}", libc3.display()),
        s("-Wl,-rpath,/opt/basic/liba:/opt/basic/libb:/opt/basic/old"),
    ];
    program(
        img,
        "basic",
        "/opt/basic/bin/prog",
        &[("A", "ba"), ("B", "bb")],
        &args,
    );
    let exe = Want {
        obj: "/opt/basic/bin/prog",
        note: &[
            ("libba.so.1", &["=/opt/basic/liba/libba.so.1"]),
            (
                "libbb.so.1",
                &["=/opt/basic/libb/libbb.so.1", "=/opt/basic/old/libbb.so.1"],
            ),
        ],
    };
    let liba = Want {
        obj: "/opt/basic/liba/libba.so.1",
        note: &[("libbc.so.1", &["=/opt/basic/libc3/libbc.so.1"])],
    };
    verify(
        img,
        t,
        "basic",
        "/opt/basic/bin/prog",
        "A=103 B=2\n",
        &[exe, liba],
        None,
    );
    args.to_vec()
}

/// The basic program linked by gold or lld (through `-fuse-ld`; lld from a `-B` dir holding an
/// `ld.lld` link, as Debian ships no `<triple>-ld.lld`): the same note, the same loader truth.
fn case_other_linker(img: &Image, t: &mut Tally, ld: &str, args: &[String]) {
    let mut a = args.to_vec();
    if ld == "lld" {
        let b = img.work.join("lld-bin");
        if !b.exists() {
            fs::create_dir_all(&b).expect("mkdir");
            let real = which::which("ld.lld").expect("ld.lld on PATH");
            std::os::unix::fs::symlink(real, b.join("ld.lld")).expect("symlink");
        }
        a.push(format!("-B{}/", b.display()));
    }
    a.push(format!("-fuse-ld={ld}"));
    let bin = format!("/opt/basic/bin/prog-{ld}");
    img.link(&bin, &[&img.work.join("basic.o")], &a);
    let exe = Want {
        obj: &bin,
        note: &[
            ("libba.so.1", &["=/opt/basic/liba/libba.so.1"]),
            (
                "libbb.so.1",
                &["=/opt/basic/libb/libbb.so.1", "=/opt/basic/old/libbb.so.1"],
            ),
        ],
    };
    verify(
        img,
        t,
        &format!("basic-{ld}"),
        &bin,
        "A=103 B=2\n",
        &[exe],
        None,
    );
}

/// Run-path dirs that exist on the host too: `one` holds a foreign library with the same soname
/// on the host and nothing in the image; `two` holds the target library in the image and nothing
/// on the host. ldnote must record the image's truth; patchelf (host filesystem) records `one`.
fn case_host_decoys(img: &Image, t: &mut Tally) {
    let dir = match tempfile::Builder::new()
        .prefix("ldnote-decoy-")
        .tempdir_in("/opt")
    {
        Ok(d) => d,
        Err(e) => {
            return skip_or_fail(
                &format!("cross {} host decoys", t.name),
                &format!("cannot create a dir in /opt: {e}"),
            )
        }
    };
    let p = dir.path().to_str().expect("utf-8 tempdir").to_string();
    img.decoy(
        &dir.path().join("one/libdec.so.1"),
        "libdec.so.1",
        "dec",
        img.arch.foreign,
        &[],
    );
    fs::create_dir_all(dir.path().join("two")).expect("mkdir");
    fs::create_dir_all(host(&img.root, &format!("{p}/one"))).expect("mkdir");
    img.lib(&format!("{p}/two/libdec.so.1"), "libdec.so.1", "dec", 5);
    let args = [
        format!("-L{}", host(&img.root, &format!("{p}/two")).display()),
        s("-l:libdec.so.1"),
        format!("-Wl,-rpath,{p}/one:{p}/two"),
    ];
    program(img, "decoy", "/opt/decoy/bin/prog", &[("D", "dec")], &args);
    let two = format!("={p}/two/libdec.so.1");
    let one = format!("={p}/one/libdec.so.1");
    let exe = Want {
        obj: "/opt/decoy/bin/prog",
        note: &[("libdec.so.1", &[two.as_str()])],
    };
    verify(
        img,
        t,
        "host-decoys",
        "/opt/decoy/bin/prog",
        "D=5\n",
        &[exe],
        None,
    );
    let ours = harness::show(&host(&img.root, "/opt/decoy/bin/prog"));
    let o = img.work.join("decoy.o");
    // The sysroot given as LDNOTE_SYSROOT instead of on the link line: the same note.
    img.link_env_sysroot("/opt/decoy/bin/prog-env", &[&o], &args);
    let env_note = harness::show(&host(&img.root, "/opt/decoy/bin/prog-env"));
    if env_note != ours {
        t.fail(
            "host-decoys",
            format!("with LDNOTE_SYSROOT the note is {env_note:?}, with --sysroot {ours:?}"),
        );
    }
    // Post-link: `ldnote patch --sysroot $S` on a plain link gives the same note, and the
    // patched program still loads and runs on the target.
    let patched = "/opt/decoy/bin/prog-patched";
    img.link_plain(&host(&img.root, patched), &[&o], &args);
    let before = fs::read(host(&img.root, patched)).expect("read");
    let out = img.patch(&host(&img.root, patched));
    if !img.arch.append {
        let err = String::from_utf8_lossy(&out.stderr);
        let unchanged = fs::read(host(&img.root, patched)).expect("read") == before;
        if out.status.success() || !err.contains("cannot add the note") || !unchanged {
            t.fail(
                "host-decoys",
                format!("expected a clean append failure, file unchanged ({unchanged}): {err}"),
            );
        } else {
            t.notes.push(format!(
                "host-decoys: append not possible here: {}",
                err.trim()
            ));
        }
    } else if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        t.fail(
            "host-decoys",
            format!(
                "ldnote patch --sysroot failed ({}): {}",
                out.status,
                err.trim()
            ),
        );
    } else {
        let pn = harness::show(&host(&img.root, patched));
        let run = harness::trace(img, patched, None);
        if pn != ours || !run.ok || run.stdout != "D=5\n" {
            t.fail(
                "host-decoys",
                format!(
                    "patch mode: note {pn:?} (link mode {ours:?}), program printed {:?} ok={}",
                    run.stdout, run.ok
                ),
            );
        }
    }
    if !harness::patchelf_ok() {
        return skip_or_fail("patchelf oracle", "patchelf 0.19.x not on PATH");
    }
    let plain = img.work.join("decoy-plain");
    img.link_plain(&plain, &[&o], &args);
    let pn = harness::patchelf_note(&plain);
    let theirs = pn.get("libdec.so.1").cloned().unwrap_or_default();
    if pn == ours || !theirs.contains(&one) || theirs.contains(&two) {
        t.fail("host-decoys", format!("patchelf was expected to record the host's {one} (and not {two}); it wrote {pn:?}, ldnote {ours:?}"));
    } else {
        t.notes.push(format!(
            "host-decoys: patchelf (host fs) wrote {theirs:?}, ldnote (sysroot) {:?}",
            ours.get("libdec.so.1")
        ));
    }
    // The loader check must catch patchelf's host-based entry (it proves the check has teeth).
    let first = harness::trace(img, "/opt/decoy/bin/prog", None);
    let seq = harness::peel(
        img,
        "/opt/decoy/bin/prog",
        &first,
        "libdec.so.1",
        &harness::run_path(&plain),
        None,
    );
    let (_, bad) = harness::check_against_loader(&theirs, &seq);
    if bad.is_empty() {
        t.fail(
            "host-decoys",
            format!("the loader check accepted patchelf's {theirs:?} (loader sequence {seq:?})"),
        );
    }
}

#[test]
fn loader_check_rules() {
    use harness::check_against_loader as check;
    let seq = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let l = seq(&["/a/libx.so", "/b/libx.so"]);
    assert_eq!(
        check(&seq(&["=/a/libx.so", "=/b/libx.so"]), &l),
        (2, vec![])
    );
    assert_eq!(check(&seq(&["?/a", "=/b/libx.so"]), &l).1.len(), 0);
    assert_eq!(
        check(&seq(&["=/b/libx.so"]), &l).1.len(),
        2,
        "wrong first entry and a missed file"
    );
    assert_eq!(check(&seq(&["=/a/libx.so"]), &l).1.len(), 1, "missed /b");
    assert_eq!(
        check(&seq(&["=/c/libx.so", "=/a/libx.so", "=/b/libx.so"]), &l)
            .1
            .len(),
        1,
        "a wasted =/c"
    );
    let hw = seq(&["/d/tls/libx.so", "/d/libx.so"]);
    assert_eq!(check(&seq(&["?/d"]), &hw).1.len(), 0);
    assert_eq!(check(&seq(&["=/d/libx.so"]), &hw).1.len(), 2);
    assert!(!harness::under("/dd/libx.so", "/d") && harness::under("/d/x/libx.so", "/d/"));
}

/// A library of the other ELF class first in the run path: the loader skips it.
fn case_other_class(img: &Image, t: &mut Tally) {
    let (cc, fl) = img.arch.other_class;
    img.decoy(
        &host(&img.root, "/opt/class/wrong/libcls.so.1"),
        "libcls.so.1",
        "cls",
        cc,
        fl,
    );
    img.lib("/opt/class/right/libcls.so.1", "libcls.so.1", "cls", 6);
    let args = [
        format!("-L{}", host(&img.root, "/opt/class/right").display()),
        s("-l:libcls.so.1"),
        s("-Wl,-rpath,/opt/class/wrong:/opt/class/right"),
    ];
    // Compiled and linked in one step: the reservation then comes from the target's
    // `reserve_eflags` (no input object to copy), and must not change the output's e_flags.
    let src = img.work.join("class.c");
    fs::write(&src, main_src(&[("K", "cls")])).expect("write");
    let mut a1 = img
        .arch
        .one_step_cflags
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>();
    a1.extend(args.iter().cloned());
    img.link("/opt/class/bin/prog", &[&src], &a1);
    let plain = img.work.join("class-plain");
    img.link_plain(&plain, &[&src], &a1);
    let (ours, theirs) = (
        harness::e_flags(&host(&img.root, "/opt/class/bin/prog")),
        harness::e_flags(&plain),
    );
    if ours != theirs {
        t.fail(
            "other-class",
            format!("e_flags {ours:#x} with ldnote's reservation, {theirs:#x} without"),
        );
    }
    let exe = Want {
        obj: "/opt/class/bin/prog",
        note: &[("libcls.so.1", &["=/opt/class/right/libcls.so.1"])],
    };
    verify(
        img,
        t,
        "other-class",
        "/opt/class/bin/prog",
        "K=6\n",
        &[exe],
        None,
    );
}

/// A library of the wrong float ABI (arm soft/hard, riscv lp64) or ELF ABI (ppc64 ELFv1) first:
/// the loader skips it (Debian arm/unsubmitted-ldso-multilib, elf_machine_matches_host).
fn case_flags(img: &Image, t: &mut Tally) {
    let Some((cc, fl)) = img.arch.flags_decoy else {
        return;
    };
    img.decoy(
        &host(&img.root, "/opt/float/bad/libflt.so.1"),
        "libflt.so.1",
        "flt",
        cc,
        fl,
    );
    img.lib("/opt/float/good/libflt.so.1", "libflt.so.1", "flt", 7);
    let args = [
        format!("-L{}", host(&img.root, "/opt/float/good").display()),
        s("-l:libflt.so.1"),
        s("-Wl,-rpath,/opt/float/bad:/opt/float/good"),
    ];
    program(img, "flags", "/opt/float/bin/prog", &[("F", "flt")], &args);
    let exe = Want {
        obj: "/opt/float/bin/prog",
        note: &[("libflt.so.1", &["=/opt/float/good/libflt.so.1"])],
    };
    verify(
        img,
        t,
        "float-abi",
        "/opt/float/bin/prog",
        "F=7\n",
        &[exe],
        None,
    );
}

/// A library of the other byte order (and machine) first. Debian's loader checks the machine
/// before EI_DATA (debian/patches/any/unsubmitted-ldso-machine-mismatch.diff), so it is
/// skipped, not fatal: the note should hold only the right file.
fn case_other_endian(img: &Image, t: &mut Tally) {
    let (cc, fl) = img.arch.other_endian;
    img.decoy(
        &host(&img.root, "/opt/endian/other/libend.so.1"),
        "libend.so.1",
        "endn",
        cc,
        fl,
    );
    img.lib("/opt/endian/right/libend.so.1", "libend.so.1", "endn", 8);
    let args = [
        format!("-L{}", host(&img.root, "/opt/endian/right").display()),
        s("-l:libend.so.1"),
        s("-Wl,-rpath,/opt/endian/other:/opt/endian/right"),
    ];
    program(
        img,
        "endian",
        "/opt/endian/bin/prog",
        &[("E", "endn")],
        &args,
    );
    let exe = Want {
        obj: "/opt/endian/bin/prog",
        note: &[("libend.so.1", &["=/opt/endian/right/libend.so.1"])],
    };
    verify(
        img,
        t,
        "other-endian",
        "/opt/endian/bin/prog",
        "E=8\n",
        &[exe],
        None,
    );
}

/// Symlinks inside the image: a relative chain (lib/librel.so.1 -> ../real/librel.so.1.0 ->
/// librel.so.1.0.0); an absolute link with `..` above the root (`/../../..M/real/...`) that
/// must resolve inside the image; and an absolute link whose target exists only on the host
/// (dangling in the image: no `=` entry). The ground truth runs in a mount namespace where the
/// host path M is the image's M, so absolute links resolve as on the target.
fn case_symlinks(img: &Image, t: &mut Tally) {
    let r = &img.root;
    let mdir = match tempfile::Builder::new()
        .prefix("ldnote-abs-")
        .tempdir_in("/opt")
    {
        Ok(d) => d,
        Err(e) => {
            return skip_or_fail(
                &format!("cross {} symlinks", t.name),
                &format!("cannot create a dir in /opt: {e}"),
            )
        }
    };
    let m = mdir.path().to_str().expect("utf-8 tempdir").to_string();
    img.lib("/opt/links/real/librel.so.1.0.0", "librel.so.1", "rel", 9);
    harness::symlink("librel.so.1.0.0", &host(r, "/opt/links/real/librel.so.1.0"));
    harness::symlink(
        "../real/librel.so.1.0",
        &host(r, "/opt/links/lib/librel.so.1"),
    );
    img.lib(
        &format!("{m}/real/libabs.so.1.0"),
        "libabs.so.1",
        "abs1",
        10,
    );
    harness::symlink(
        &format!("/../../..{m}/real/libabs.so.1.0"),
        &host(r, &format!("{m}/abs/libabs.so.1")),
    );
    // On the host only: a loadable target library the escaping link would reach.
    let hostonly = img.lib(
        &format!("{m}/hostonly-build/libabs.so.1"),
        "libabs.so.1",
        "abs1",
        -2,
    );
    fs::create_dir_all(mdir.path().join("hostonly")).expect("mkdir");
    fs::copy(&hostonly, mdir.path().join("hostonly/libabs.so.1")).expect("copy to host");
    fs::remove_dir_all(host(r, &format!("{m}/hostonly-build"))).expect("rm");
    harness::symlink(
        &format!("/../../../..{m}/hostonly/libabs.so.1"),
        &host(r, "/opt/links/esc/libabs.so.1"),
    );
    let args = [
        format!("-L{}", host(r, "/opt/links/real").display()),
        s("-l:librel.so.1.0.0"),
        format!("-L{}", host(r, &format!("{m}/real")).display()),
        s("-l:libabs.so.1.0"),
        format!("-Wl,-rpath,/opt/links/lib:/opt/links/esc:{m}/abs"),
    ];
    program(
        img,
        "links",
        "/opt/links/bin/prog",
        &[("R", "rel"), ("X", "abs1")],
        &args,
    );
    let abs = format!("={m}/abs/libabs.so.1");
    let exe = Want {
        obj: "/opt/links/bin/prog",
        note: &[
            ("libabs.so.1", &[abs.as_str()]),
            ("librel.so.1", &["=/opt/links/lib/librel.so.1"]),
        ],
    };
    let image_m = host(r, &m);
    let mount = if missing(&["unshare", "mount"]).is_none() {
        Some((image_m.as_path(), mdir.path()))
    } else {
        None
    };
    if mount.is_none() {
        skip_or_fail("symlinks ground truth", "unshare/mount not available");
        return;
    }
    verify(
        img,
        t,
        "symlinks",
        "/opt/links/bin/prog",
        "R=9 X=10\n",
        &[exe],
        mount,
    );
}

/// A legacy hwcaps subdirectory (glibc <= 2.36) of a run-path dir holds the library too: the
/// stock loader takes it before the dir itself, so an `=dir/lib` entry would change the library
/// loaded; the dir must be a `?` hint. The subdir name is one this target's loader probes.
fn case_legacy_hwcaps(img: &Image, t: &mut Tally) {
    let sub = img.arch.legacy_subdir;
    img.lib(
        &format!("/opt/hw/lib/{sub}/libhw.so.1"),
        "libhw.so.1",
        "hw",
        11,
    );
    img.lib("/opt/hw/lib/libhw.so.1", "libhw.so.1", "hw", 12);
    let args = [
        format!("-L{}", host(&img.root, "/opt/hw/lib").display()),
        s("-l:libhw.so.1"),
        s("-Wl,-rpath,/opt/hw/bin:/opt/hw/lib"),
    ];
    program(img, "hw", "/opt/hw/bin/prog", &[("H", "hw")], &args);
    // A hint goes to every searched soname, libc.so.6 included (patchelf's rule). `/opt/hw/bin`
    // (no library) comes first so that the hints skip a directory: a hint-only list that just
    // follows the run-path walk gets no pair at all.
    let exe = Want {
        obj: "/opt/hw/bin/prog",
        note: &[
            ("libc.so.6", &["?/opt/hw/lib"]),
            ("libhw.so.1", &["?/opt/hw/lib"]),
        ],
    };
    verify(
        img,
        t,
        "legacy-hwcaps",
        "/opt/hw/bin/prog",
        "H=11\n",
        &[exe],
        None,
    );
}
