//! Differential tests against patchelf 0.19.3 `--build-resolution-cache`, the reference writer
//! (NOTE-FORMAT.md "Writer rules"). Each case builds a layout of real gcc-built shared libraries
//! in a temp dir, links an object with a chosen DT_NEEDED list and run path, copies it twice,
//! notes one copy with patchelf and one with `ldnote patch`, and requires byte-identical
//! descriptors as found by the independent PT_NOTE walker in `common` (or no note on both sides).
//!
//! The layouts avoid legacy hwcaps subdirectory names (`tls`, `x86_64`, `haswell`, ...), non-ELF
//! and wrong-class candidates: there ldnote deliberately differs (see `intended_differences`).

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// What the patchelf side must contain, so that a case cannot pass vacuously because the layout
/// was not what the test meant to build (e.g. a run path the linker dropped).
enum Expect<'a> {
    /// No note at all.
    NoNote,
    /// A note whose descriptor contains every one of these byte strings.
    Contains(Vec<&'a [u8]>),
}

/// The core differential check; returns patchelf's descriptor.
///
/// Order: patchelf on a copy; the layout check (`expect`); the link-time twin, when the case
/// built one; `ldnote patch` on another copy; cross-acceptance of each other's notes.
fn differential(l: &Layout, built: &Path, expect: Expect) -> Option<Vec<u8>> {
    common::require_tool("patchelf")?;
    let original = std::fs::read(built).expect("read built");
    assert!(
        note_desc(built).is_none(),
        "freshly linked file already has a note"
    );
    let pe = copy_as(built, "noted-by-patchelf");
    let ln = copy_as(built, "noted-by-ldnote");
    let esc = |d: &Option<Vec<u8>>| d.as_deref().map(|d| d.escape_ascii().to_string());

    // Both writers run with the layout root as cwd, so relative components could only be
    // resolved against it by mistake (the loader resolves them against its cwd at run time).
    let o = run(Command::new("patchelf")
        .arg("--build-resolution-cache")
        .arg(&pe)
        .current_dir(l.root()));
    assert!(o.status.success(), "patchelf failed: {}", stderr_of(&o));
    let dpe = note_desc(&pe);

    match expect {
        Expect::NoNote => {
            assert!(
                dpe.is_none(),
                "expected no note, patchelf wrote:\n{}",
                pretty_desc(dpe.as_deref())
            );
        }
        Expect::Contains(parts) => {
            let d = dpe
                .as_deref()
                .unwrap_or_else(|| panic!("expected a note\n{}", readelf_dynamic(built)));
            for p in parts {
                assert!(
                    d.windows(p.len()).any(|w| w == p),
                    "layout check: patchelf's descriptor lacks `{}`:\n{}",
                    p.escape_ascii(),
                    pretty_desc(Some(d))
                );
            }
        }
    }

    // The link-time twin (same link through `ldnote link`) carries exactly patchelf's note too,
    // and patchelf, run on it as nixpkgs' fixup hook would, leaves it alone.
    let twin = PathBuf::from(cat(&[bytes(built), LINKED_TWIN.as_bytes()]));
    if twin.exists() {
        let dt = note_desc(&twin);
        assert_eq!(
            esc(&dpe),
            esc(&dt),
            "link-time note differs for {}\npatchelf:\n{}\nldnote link:\n{}",
            twin.display(),
            pretty_desc(dpe.as_deref()),
            pretty_desc(dt.as_deref()),
        );
        let before = std::fs::read(&twin).expect("read");
        let o = patchelf_cache(&twin);
        assert!(
            o.status.success(),
            "patchelf rejects the link-time note: {}",
            stderr_of(&o)
        );
        if dt.is_some() {
            assert!(
                std::fs::read(&twin).expect("read") == before,
                "patchelf rewrote the link-time output"
            );
        }
    }

    let o = run(ldnote_cmd().arg("patch").arg(&ln).current_dir(l.root()));
    assert!(
        o.status.success(),
        "ldnote patch failed ({}): {}{}",
        o.status,
        stdout_of(&o),
        stderr_of(&o)
    );
    let dln = note_desc(&ln);
    assert_eq!(
        esc(&dpe),
        esc(&dln),
        "descriptors differ for {}\n{}patchelf:\n{}\nldnote patch:\n{}",
        built.display(),
        readelf_dynamic(built),
        pretty_desc(dpe.as_deref()),
        pretty_desc(dln.as_deref()),
    );
    if dln.is_none() {
        // Nothing to record: ldnote must not have touched the file.
        assert!(
            std::fs::read(&ln).expect("read") == original,
            "ldnote changed a file it did not note"
        );
    } else {
        // Cross-acceptance: patchelf leaves ldnote's note alone, ldnote's check accepts patchelf's.
        let before = std::fs::read(&ln).expect("read");
        let o = patchelf_cache(&ln);
        assert!(
            o.status.success(),
            "patchelf rejects ldnote's note: {}",
            stderr_of(&o)
        );
        assert!(
            std::fs::read(&ln).expect("read") == before,
            "patchelf rewrote ldnote's output"
        );
        let o = run(ldnote_cmd().arg("check").arg(&pe).current_dir(l.root()));
        assert!(
            o.status.success(),
            "ldnote check rejects patchelf's note: {}{}",
            stdout_of(&o),
            stderr_of(&o)
        );
    }
    dpe
}

/// `prefix/soname` as bytes, e.g. `=` + dir + `/libx.so`.
fn entry(tag: &str, dir: &Path, soname: &str) -> Vec<u8> {
    [tag.as_bytes(), bytes(dir), b"/", soname.as_bytes()].concat()
}

fn join_rp(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b':')
}

macro_rules! case {
    ($name:ident, |$l:ident| $body:block) => {
        #[test]
        fn $name() {
            let $l = Layout::new();
            $body
        }
    };
}

// ---- Basic shapes ----

case!(runpath_two_libs_two_dirs, |l| {
    let a = l.lib_in("d1", "liba.so.1");
    let b = l.lib_in("d2", "libb.so.2");
    let rp = join_rp(&[&l.pb("d1"), &l.pb("d2")]);
    let out = Link::program(&l)
        .inputs([&a, &b])
        .runpath(&rp)
        .build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![
            &entry("=", &l.p("d1"), "liba.so.1"),
            &entry("=", &l.p("d2"), "libb.so.2"),
        ]),
    );
});

case!(rpath_instead_of_runpath, |l| {
    let a = l.lib_in("d1", "liba.so");
    let rp = join_rp(&[&l.pb("d1"), &l.pb("nope")]);
    let out = Link::program(&l)
        .input(&a)
        .runpath(&rp)
        .tag(Tag::Rpath)
        .build_twins("prog");
    assert!(
        readelf_dynamic(&out).contains("(RPATH)"),
        "{}",
        readelf_dynamic(&out)
    );
    differential(
        &l,
        &out,
        Expect::Contains(vec![&entry("=", &l.p("d1"), "liba.so"), b"?"]),
    );
});

case!(no_run_path_no_note, |l| {
    let a = l.lib_in("d1", "liba.so");
    let out = Link::program(&l).input(&a).build_twins("prog");
    differential(&l, &out, Expect::NoNote);
});

case!(no_needed_no_note, |l| {
    l.lib_in("d1", "liba.so");
    let out = Link::shared(&l)
        .arg("-nostdlib")
        .runpath(l.pb("d1"))
        .build_twins("libnoneeded.so");
    assert!(!readelf_dynamic(&out).contains("NEEDED"));
    differential(&l, &out, Expect::NoNote);
});

case!(nothing_found_no_note, |l| {
    // Existing, empty directories: nothing to record, no hint.
    l.mkdir("e1");
    l.mkdir("e2");
    let a = l.lib_in("elsewhere", "liba.so");
    let out = Link::program(&l)
        .input(&a)
        .runpath(join_rp(&[&l.pb("e1"), &l.pb("e2")]))
        .build_twins("prog");
    differential(&l, &out, Expect::NoNote);
});

case!(shared_library_as_noted_object, |l| {
    let a = l.lib_in("d1", "liba.so");
    let b = l.lib_in("d2", "libb.so");
    let rp = join_rp(&[&l.pb("d2"), &l.pb("d1"), b"$ORIGIN"]);
    let out = Link::shared(&l)
        .inputs([&a, &b])
        .runpath(&rp)
        .build_twins("out/libnoted.so");
    differential(
        &l,
        &out,
        Expect::Contains(vec![
            &entry("=", &l.p("d1"), "liba.so"),
            &entry("=", &l.p("d2"), "libb.so"),
            b"?$ORIGIN",
        ]),
    );
});

case!(non_pie_executable, |l| {
    let a = l.lib_in("d1", "liba.so");
    let out = Link::program(&l)
        .input(&a)
        .runpath(l.pb("d1"))
        .arg("-no-pie")
        .build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![&entry("=", &l.p("d1"), "liba.so")]),
    );
});

// ---- Dynamic string tokens ----

case!(origin_token, |l| {
    let a = l.lib_in("lib", "liba.so");
    let rp = join_rp(&[b"$ORIGIN/../lib", &l.pb("lib")]);
    let out = Link::program(&l)
        .input(&a)
        .runpath(&rp)
        .build_twins("bin/prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![b"liba.so\0?$ORIGIN/../lib:=", b"?$ORIGIN/../lib"]),
    );
});

case!(origin_braced_token, |l| {
    let a = l.lib_in("lib", "liba.so");
    let rp = join_rp(&[&l.pb("lib"), b"${ORIGIN}/../lib"]);
    let out = Link::program(&l)
        .input(&a)
        .runpath(&rp)
        .build_twins("bin/prog");
    differential(&l, &out, Expect::Contains(vec![b"?${ORIGIN}/../lib"]));
});

case!(lib_token, |l| {
    let a = l.lib_in("x/lib64", "liba.so");
    let rp = join_rp(&[&[&l.pb("x")[..], b"/$LIB"].concat(), &l.pb("x/lib64")]);
    let out = Link::program(&l).input(&a).runpath(&rp).build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![b"/$LIB:=", &entry("=", &l.p("x/lib64"), "liba.so")]),
    );
});

case!(platform_token, |l| {
    let a = l.lib_in("p/d", "liba.so");
    let rp = join_rp(&[&[&l.pb("p")[..], b"/$PLATFORM/lib"].concat(), &l.pb("p/d")]);
    let out = Link::program(&l).input(&a).runpath(&rp).build_twins("prog");
    differential(&l, &out, Expect::Contains(vec![b"/$PLATFORM/lib:"]));
});

// ---- Empty, relative, absent and odd components ----

case!(empty_leading_component, |l| {
    let a = l.lib_in("d1", "liba.so");
    let rp = [b":", &l.pb("d1")[..]].concat();
    let out = Link::program(&l).input(&a).runpath(&rp).build_twins("prog");
    differential(&l, &out, Expect::Contains(vec![b"liba.so\0?:="]));
});

case!(empty_middle_component, |l| {
    let a = l.lib_in("d1", "liba.so");
    let b = l.lib_in("d2", "libb.so");
    let rp = join_rp(&[&l.pb("d1"), b"", &l.pb("d2")]);
    let out = Link::program(&l)
        .inputs([&a, &b])
        .runpath(&rp)
        .build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![b"liba.so:?\0", b"libb.so\0?:="]),
    );
});

case!(empty_trailing_component, |l| {
    let a = l.lib_in("d1", "liba.so");
    let rp = [&l.pb("d1")[..], b":"].concat();
    let out = Link::program(&l).input(&a).runpath(&rp).build_twins("prog");
    differential(&l, &out, Expect::Contains(vec![b"liba.so:?\0"]));
});

case!(only_empty_components, |l| {
    let a = l.lib_in("d1", "liba.so");
    let out = Link::program(&l)
        .input(&a)
        .runpath(b"::")
        .build_twins("prog");
    differential(&l, &out, Expect::Contains(vec![b"liba.so\0?:?:?\0"]));
});

case!(relative_dirs, |l| {
    // `lib` and `./lib` exist relative to the cwd of both writers; they must stay hints.
    let a = l.lib_in("lib", "liba.so");
    let rp = join_rp(&[b"lib", b"./lib", b"../lib", &l.pb("lib")]);
    let out = Link::program(&l).input(&a).runpath(&rp).build_twins("prog");
    differential(&l, &out, Expect::Contains(vec![b"?lib:?./lib:?../lib:="]));
});

case!(absent_dirs, |l| {
    let a = l.lib_in("d1", "liba.so");
    let rp = join_rp(&[&l.pb("absent"), &l.pb("d1"), &l.pb("d1/absent/deeper")]);
    let out = Link::program(&l).input(&a).runpath(&rp).build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![&[b"?", &l.pb("absent")[..], b":="].concat()]),
    );
});

case!(regular_file_component, |l| {
    let a = l.lib_in("d1", "liba.so");
    l.write("afile", b"not a directory\n");
    let rp = join_rp(&[&l.pb("afile"), &l.pb("d1")]);
    let out = Link::program(&l).input(&a).runpath(&rp).build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![&entry("=", &l.p("d1"), "liba.so")]),
    );
});

case!(glibc_hwcaps_subdirectory, |l| {
    let a = l.lib_in("h", "liba.so");
    l.lib_in("h/glibc-hwcaps/x86-64-v3", "liba.so");
    let b = l.lib_in("d2", "libb.so");
    let rp = join_rp(&[&l.pb("h"), &l.pb("d2")]);
    let out = Link::program(&l)
        .inputs([&a, &b])
        .runpath(&rp)
        .build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![&[b"liba.so\0?", &l.pb("h")[..], b"\0"].concat()]),
    );
});

case!(trailing_slash_dirs, |l| {
    let a = l.lib_in("d1", "liba.so");
    let b = l.lib_in("d2", "libb.so");
    let rp = join_rp(&[
        &[&l.pb("d1")[..], b"/"].concat(),
        &[&l.pb("d2")[..], b"//"].concat(),
    ]);
    let out = Link::program(&l)
        .inputs([&a, &b])
        .runpath(&rp)
        .build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![
            &[b"=", &l.pb("d1")[..], b"//liba.so"].concat(),
            &[b"=", &l.pb("d2")[..], b"///libb.so"].concat(),
        ]),
    );
});

case!(dotdot_and_symlinked_dir_not_normalised, |l| {
    let a = l.lib_in("real", "liba.so");
    l.mkdir("other");
    l.symlink(l.p("real"), "linkdir");
    let rp = join_rp(&[
        &[&l.pb("other")[..], b"/../real"].concat(),
        &l.pb("linkdir"),
    ]);
    let out = Link::program(&l).input(&a).runpath(&rp).build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![
            b"/other/../real/liba.so",
            &entry("=", &l.p("linkdir"), "liba.so"),
        ]),
    );
});

case!(dir_names_with_space_and_non_utf8, |l| {
    let d1: &[u8] = b"with space";
    let d2: &[u8] = b"bin\xff\xfe";
    let d1os = OsStr::from_bytes(d1);
    let d2os = OsStr::from_bytes(d2);
    let a = l.lib(Path::new(d1os).join("liba.so"), Some(b"liba.so"));
    let b = l.lib(Path::new(d2os).join("libb.so"), Some(b"libb.so"));
    let rp = join_rp(&[&l.pb(d1os), &l.pb(d2os)]);
    let out = Link::program(&l)
        .inputs([&a, &b])
        .runpath(&rp)
        .build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![b"with space/liba.so", b"bin\xff\xfe/libb.so"]),
    );
});

// ---- Matches ----

case!(same_soname_in_several_dirs_all_recorded, |l| {
    let a = l.lib_in("d1", "libdup.so.3");
    l.lib_in("d3", "libdup.so.3");
    l.lib_in("d4", "libdup.so.3");
    l.mkdir("d2");
    let rp = join_rp(&[&l.pb("d1"), &l.pb("d2"), &l.pb("d3"), &l.pb("d4")]);
    let out = Link::program(&l).input(&a).runpath(&rp).build_twins("prog");
    let want = [
        &entry("=", &l.p("d1"), "libdup.so.3")[..],
        b":",
        &entry("=", &l.p("d3"), "libdup.so.3"),
        b":",
        &entry("=", &l.p("d4"), "libdup.so.3"),
    ]
    .concat();
    differential(&l, &out, Expect::Contains(vec![&want]));
});

case!(run_path_lists_one_dir_many_times, |l| {
    let a = l.lib_in("d1", "liba.so");
    let d = l.pb("d1");
    let parts: Vec<&[u8]> = (0..40).map(|_| &d[..]).collect();
    let out = Link::program(&l)
        .input(&a)
        .runpath(join_rp(&parts))
        .build_twins("prog");
    let e = entry("=", &l.p("d1"), "liba.so");
    let want = [&e[..], b":", &e[..], b":", &e[..]].concat();
    differential(&l, &out, Expect::Contains(vec![&want]));
});

case!(symlinked_libs, |l| {
    // lib.so.1 -> lib.so.1.2.3 in the same dir, and a soname link into another dir.
    l.lib("d1/libsym.so.1.2.3", Some(b"libsym.so.1"));
    l.symlink("libsym.so.1.2.3", "d1/libsym.so.1");
    l.lib("real/libother.so.4.0", Some(b"libother.so.4"));
    l.symlink("../real/libother.so.4.0", "d2/libother.so.4");
    l.symlink(l.p("nowhere/libdangling.so.1"), "d2/libdangling.so.1");
    let dangling = l.lib("build/libdangling.so.1", Some(b"libdangling.so.1"));
    let rp = join_rp(&[&l.pb("d1"), &l.pb("d2")]);
    let out = Link::program(&l)
        .inputs([l.p("d1/libsym.so.1"), l.p("d2/libother.so.4"), dangling])
        .runpath(&rp)
        .build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![
            &entry("=", &l.p("d1"), "libsym.so.1"),
            &entry("=", &l.p("d2"), "libother.so.4"),
        ]),
    );
});

case!(symlink_loops_chains_and_overlong_components, |l| {
    // d1/liba.so -> a -> liba.so (a loop); loopdir -> loopdir; d2/liba.so -> sub/liba.so.1.0
    // through a symlinked subdirectory; and a component longer than PATH_MAX.
    l.lib("real/liba.so.1.0", Some(b"liba.so"));
    l.symlink("a", "d1/liba.so");
    l.symlink("liba.so", "d1/a");
    l.symlink("loopdir", "loopdir");
    l.symlink("../real", "d2/sub");
    l.symlink("sub/liba.so.1.0", "d2/liba.so");
    let long = [&l.pb("")[..], &[b'x'; 5000][..]].concat();
    let rp = join_rp(&[&l.pb("d1"), &l.pb("loopdir"), &l.pb("d2"), &long]);
    let out = Link::program(&l)
        .input(l.p("real/liba.so.1.0"))
        .runpath(&rp)
        .build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![
            &[b"liba.so\0?", &l.pb("loopdir")[..], b":="].concat(),
            &entry("=", &l.p("d2"), "liba.so"),
        ]),
    );
});

case!(needed_with_slash_not_recorded, |l| {
    // A library without DT_SONAME linked by path: DT_NEEDED is the path, opened directly.
    let noso = l.lib("d1/libnoso.so", None);
    let a = l.lib_in("d1", "liba.so");
    let out = Link::program(&l)
        .inputs([&noso, &a])
        .runpath(l.pb("d1"))
        .build_twins("prog");
    assert!(
        readelf_dynamic(&out).contains("/libnoso.so]"),
        "{}",
        readelf_dynamic(&out)
    );
    let d = differential(
        &l,
        &out,
        Expect::Contains(vec![&entry("=", &l.p("d1"), "liba.so")]),
    );
    assert!(!d.unwrap_or_default().windows(9).any(|w| w == b"libnoso.s"));
});

case!(only_slash_needed_no_note, |l| {
    let noso = l.lib("d1/libnoso.so", None);
    let out = Link::shared(&l)
        .arg("-nostdlib")
        .input(&noso)
        .runpath(l.pb("d1"))
        .build_twins("libx.so");
    differential(&l, &out, Expect::NoNote);
});

case!(duplicated_needed_entry, |l| {
    // Every linker dedupes DT_NEEDED, so the duplicate is added with patchelf before the test.
    let pe = require!("patchelf");
    let a = l.lib_in("d1", "liba.so");
    let out = Link::program(&l)
        .input(&a)
        .runpath(l.pb("d1"))
        .build("prog");
    run_ok(Command::new(pe).args(["--add-needed", "liba.so"]).arg(&out));
    assert_eq!(
        readelf_dynamic(&out).matches("[liba.so]").count(),
        2,
        "{}",
        readelf_dynamic(&out)
    );
    differential(
        &l,
        &out,
        Expect::Contains(vec![&entry("=", &l.p("d1"), "liba.so")]),
    );
});

case!(two_sonames_for_one_library, |l| {
    // The same code under two sonames (libx.so.1 and libx.so.2) in the same directory.
    let a = l.lib_in("d1", "libx.so.1");
    let b = l.lib_in("d1", "libx.so.2");
    let out = Link::program(&l)
        .inputs([&a, &b])
        .runpath(l.pb("d1"))
        .build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![
            &entry("=", &l.p("d1"), "libx.so.1"),
            &entry("=", &l.p("d1"), "libx.so.2"),
        ]),
    );
});

case!(sonames_sort_bytewise, |l| {
    let names = [
        "libc++.so.1",
        "libc.so.7",
        "libZ.so",
        "liba.so",
        "lib_u.so",
        "lib\u{e9}.so",
        "libA.so.10",
        "libA.so.9",
    ];
    let mut libs: Vec<PathBuf> = names.iter().map(|n| l.lib_in("d1", n)).collect();
    let ff = l.lib(OsStr::from_bytes(b"d1/lib\xff.so"), Some(b"lib\xff.so"));
    libs.push(ff);
    let out = Link::program(&l)
        .inputs(&libs)
        .runpath([&l.pb("d1")[..], b":"].concat())
        .build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![b"libA.so.10\0", b"libc++.so.1\0", b"lib\xff.so\0"]),
    );
});

case!(hundred_and_ten_libs_in_hundred_and_ten_dirs, |l| {
    l.pic_object();
    let n = 110;
    let libs: Vec<PathBuf> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|t| {
                let l = &l;
                s.spawn(move || {
                    (0..n)
                        .filter(|i| i % 4 == t)
                        .map(|i| {
                            (
                                i,
                                l.lib_in(
                                    &format!("pkg{i:03}/lib"),
                                    &format!("libp{i:03}.so.{}", i % 7),
                                ),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, PathBuf)> = hs
            .into_iter()
            .flat_map(|h| h.join().expect("thread"))
            .collect();
        all.sort();
        all.into_iter().map(|(_, p)| p).collect()
    });
    // Run path in reverse package order, with a few absent and token components in between.
    let mut comps: Vec<Vec<u8>> = (0..n)
        .rev()
        .map(|i| l.pb(format!("pkg{i:03}/lib")))
        .collect();
    comps.insert(50, l.pb("absent"));
    comps.insert(7, b"$ORIGIN/lib".to_vec());
    let refs: Vec<&[u8]> = comps.iter().map(|c| &c[..]).collect();
    let out = Link::program(&l)
        .inputs(&libs)
        .runpath(join_rp(&refs))
        .build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![
            &entry("=", &l.p("pkg109/lib"), "libp109.so.4"),
            b"?$ORIGIN/lib",
        ]),
    );
});

case!(hints_and_matches_interleave_in_run_path_order, |l| {
    let a = l.lib_in("d1", "liba.so");
    l.lib_in("d3", "liba.so");
    let b = l.lib_in("d3", "libb.so");
    let rp = join_rp(&[
        &l.pb("d1"),
        b"$ORIGIN",
        &l.pb("d2-absent"),
        b"",
        &l.pb("d3"),
    ]);
    let out = Link::program(&l)
        .inputs([&a, &b])
        .runpath(&rp)
        .build_twins("prog");
    let want = [
        &entry("=", &l.p("d1"), "liba.so")[..],
        b":?$ORIGIN:?",
        &l.pb("d2-absent"),
        b":?:",
        &entry("=", &l.p("d3"), "liba.so"),
    ]
    .concat();
    differential(&l, &out, Expect::Contains(vec![&want]));
});

// ---- Foreign targets (cross compilers): class, byte order and machine of the noted object ----

fn cross_case(cc: &str) {
    if common::require_tool(cc).is_none() {
        return;
    }
    let l = Layout::with_cc(cc);
    let a = l.lib_in("d1", "liba.so");
    let b = l.lib_in("d2", "libb.so.1");
    let rp = join_rp(&[&l.pb("d1"), &l.pb("d2"), b"$ORIGIN"]);
    let out = Link::program(&l)
        .inputs([&a, &b])
        .runpath(&rp)
        .build_twins("prog");
    differential(
        &l,
        &out,
        Expect::Contains(vec![
            &entry("=", &l.p("d1"), "liba.so"),
            &entry("=", &l.p("d2"), "libb.so.1"),
        ]),
    );
}

#[test]
fn cross_i686_elf32() {
    cross_case("i686-linux-gnu-gcc");
}

#[test]
fn cross_s390x_big_endian() {
    cross_case("s390x-linux-gnu-gcc");
}

#[test]
fn cross_aarch64() {
    cross_case("aarch64-linux-gnu-gcc");
}

#[test]
fn cross_armhf_elf32() {
    cross_case("arm-linux-gnueabihf-gcc");
}

// ---- The intended differences (NOTE-FORMAT.md "Where patchelf falls short") ----

#[test]
fn intended_difference_legacy_hwcaps_subdir() {
    // glibc <= 2.36 probes `<dir>/tls/` (and the other legacy hwcaps subdirs) before `<dir>`:
    // an `=` entry for `<dir>/lib` could load a different library than the stock loader, so
    // ldnote records the directory as a `?` hint; patchelf ignores the subdirectory.
    if common::require_tool("patchelf").is_none() {
        return;
    }
    let l = Layout::new();
    let a = l.lib_in("t", "liba.so");
    l.mkdir("t/tls");
    let out = Link::program(&l).input(&a).runpath(l.pb("t")).build("prog");
    let pe = copy_as(&out, "pe");
    run_ok(
        Command::new("patchelf")
            .arg("--build-resolution-cache")
            .arg(&pe),
    );
    let exact = entry("=", &l.p("t"), "liba.so");
    let hint = [b"?", &l.pb("t")[..]].concat();
    let dpe = note_desc(&pe).expect("patchelf note");
    assert!(
        contains(&dpe, &exact),
        "patchelf:\n{}",
        pretty_desc(Some(&dpe))
    );

    for glibc in [None, Some("2.36")] {
        let ln = copy_as(&out, "ln");
        let mut c = ldnote_cmd();
        c.arg("patch");
        if let Some(g) = glibc {
            c.args(["--glibc", g]);
        }
        run_ok(c.arg(&ln));
        let dln = note_desc(&ln).expect("ldnote note");
        assert_eq!(
            dln,
            [
                b"liba.so\0",
                &hint[..],
                b"\0libc.so.6\0",
                &hint[..],
                b"\0\0"
            ]
            .concat(),
            "glibc {glibc:?}: ldnote:\n{}",
            pretty_desc(Some(&dln))
        );
    }
    // glibc 2.37 dropped the legacy subdirectories: then ldnote agrees with patchelf.
    let ln = copy_as(&out, "ln237");
    run_ok(ldnote_cmd().args(["patch", "--glibc", "2.37"]).arg(&ln));
    assert_eq!(
        note_desc(&ln).map(|d| pretty_desc(Some(&d))),
        Some(pretty_desc(Some(&dpe)))
    );
}

#[test]
fn intended_difference_wrong_class_library_first() {
    // The loader skips a wrong-class candidate and goes on; patchelf records it anyway.
    if common::require_tool("patchelf").is_none()
        || common::require_tool("i686-linux-gnu-gcc").is_none()
    {
        return;
    }
    let l = Layout::new();
    let l32 = Layout::with_cc("i686-linux-gnu-gcc");
    let wrong = l32.lib_in("d32", "liba.so");
    std::fs::create_dir_all(l.p("d32")).expect("mkdir");
    std::fs::copy(&wrong, l.p("d32/liba.so")).expect("copy");
    let a = l.lib_in("d64", "liba.so");
    let rp = join_rp(&[&l.pb("d32"), &l.pb("d64")]);
    let out = Link::program(&l).input(&a).runpath(&rp).build("prog");

    let pe = copy_as(&out, "pe");
    run_ok(
        Command::new("patchelf")
            .arg("--build-resolution-cache")
            .arg(&pe),
    );
    let ln = copy_as(&out, "ln");
    run_ok(ldnote_cmd().arg("patch").arg(&ln));
    let e32 = entry("=", &l.p("d32"), "liba.so");
    let e64 = entry("=", &l.p("d64"), "liba.so");
    let dpe = note_desc(&pe).expect("patchelf note");
    let dln = note_desc(&ln).expect("ldnote note");
    assert!(
        contains(&dpe, &[&e32[..], b":", &e64].concat()),
        "patchelf:\n{}",
        pretty_desc(Some(&dpe))
    );
    assert!(
        contains(&dln, &[b"liba.so\0", &e64[..], b"\0"].concat()),
        "ldnote:\n{}",
        pretty_desc(Some(&dln))
    );
    assert!(
        !contains(&dln, &e32),
        "ldnote recorded the 32-bit library:\n{}",
        pretty_desc(Some(&dln))
    );
    // The program runs with ldnote's note, i.e. the loader indeed found the right library.
    run_ok(&mut Command::new(&ln));
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn walker_agrees_with_readelf() {
    // The independent walker itself, checked against binutils on patchelf's output: the same
    // descriptor bytes as `readelf -n` prints for the NixOS note.
    if common::require_tool("patchelf").is_none() || common::require_tool("readelf").is_none() {
        return;
    }
    let l = Layout::new();
    let a = l.lib_in("d1", "liba.so");
    let out = Link::program(&l)
        .input(&a)
        .runpath(join_rp(&[&l.pb("d1"), b"$ORIGIN"]))
        .build("prog");
    run_ok(
        Command::new("patchelf")
            .arg("--build-resolution-cache")
            .arg(&out),
    );
    let walked = note_desc(&out).expect("walker finds patchelf's note");
    let text = stdout_of(&run_ok(
        Command::new("readelf").args(["-n", "-W"]).arg(&out),
    ));
    let line = text
        .lines()
        .skip_while(|l| !l.contains("NixOS"))
        .find(|l| l.contains("description data:"))
        .unwrap_or_else(|| panic!("no NixOS note data in readelf -n:\n{text}"));
    let hex = line.split("description data:").nth(1).expect("data");
    let from_readelf: Vec<u8> = hex
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).expect("hex byte"))
        .collect();
    assert_eq!(walked, from_readelf);
}

#[test]
fn walker_follows_p_align_like_the_loader() {
    // A 4-aligned note in an input object: GNU ld puts it in a 4-aligned PT_NOTE where the
    // loader's walk finds it; mold 1.10 merges all notes into one 8-aligned PT_NOTE after the
    // 36-byte build-id note, where the walk (padding to p_align) cannot reach it, although
    // readelf, which reads section headers, still lists it (NOTE-FORMAT.md).
    for t in ["mold", "readelf"] {
        if common::require_tool(t).is_none() {
            return;
        }
    }
    let l = Layout::new();
    let src = ".section .note.nixos.ldcache,\"a\",@note\n.balign 4\n.long 6\n.long 11\n\
               .long 0x63a86cb6\n.asciz \"NixOS\"\n.balign 4\n.asciz \"liba.so\"\n\
               .byte 0x3f, 0, 0\n.balign 4\n";
    let s = l.write(".build/note.s", src.as_bytes());
    let note_o = l.p(".build/note.o");
    run_ok(Command::new("gcc").arg("-c").arg(&s).arg("-o").arg(&note_o));
    let main = l.object("main", MAIN_C, &[]);
    for (ld, found) in [("bfd", true), ("mold", false)] {
        let out = l.p(format!("prog-{ld}"));
        run_ok(
            Command::new("gcc")
                .arg(format!("-fuse-ld={ld}"))
                .arg("-Wl,--build-id=sha1")
                .arg(&main)
                .arg(&note_o)
                .arg("-o")
                .arg(&out),
        );
        let listed = stdout_of(&run_ok(
            Command::new("readelf").args(["-n", "-W"]).arg(&out),
        ));
        assert!(
            listed.contains("NixOS"),
            "{ld}: readelf does not list the note"
        );
        let walked = find_note(&out);
        assert_eq!(walked.is_some(), found, "{ld}: walker result {walked:?}");
        if let Some(n) = walked {
            assert_eq!(n.desc, b"liba.so\0?\0\0");
            assert_eq!(n.segment_align, 4);
        }
        // ldnote's own reader agrees with the loader's view.
        let o = run(ldnote_cmd().args(["show", "--json"]).arg(&out));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(
            v["status"],
            if found { "noted" } else { "none" },
            "{ld}: ldnote show: {v}"
        );
    }
}

#[test]
fn stale_notes_are_rewritten_to_what_patchelf_writes_now() {
    // The layout changes after noting (libraries appear in 30 more run-path dirs, then vanish
    // again): `ldnote patch` on a stale note, whoever wrote it, must leave exactly the note
    // patchelf writes now on an un-noted copy (growing past the old note's room, then shrinking).
    if common::require_tool("patchelf").is_none() {
        return;
    }
    let l = Layout::new();
    let a = l.lib_in("d1", "liba.so");
    let extra: Vec<Vec<u8>> = (0..30).map(|i| l.pb(format!("e{i:02}"))).collect();
    for i in 0..30 {
        l.mkdir(format!("e{i:02}"));
    }
    let mut comps = vec![l.pb("d1")];
    comps.extend(extra.iter().cloned());
    let refs: Vec<&[u8]> = comps.iter().map(|c| &c[..]).collect();
    let bare = Link::program(&l)
        .input(&a)
        .runpath(join_rp(&refs))
        .build_twins("prog");
    let twin = PathBuf::from(cat(&[bytes(&bare), LINKED_TWIN.as_bytes()]));
    let by_pe = copy_as(&bare, "by-patchelf");
    run_ok(
        Command::new("patchelf")
            .arg("--build-resolution-cache")
            .arg(&by_pe),
    );
    let by_ln = copy_as(&bare, "by-ldnote");
    run_ok(ldnote_cmd().arg("patch").arg(&by_ln));
    let noted = [by_pe, by_ln, twin];
    for n in &noted {
        assert!(note_desc(n).is_some(), "{}", n.display());
    }

    let grow = |on: bool| {
        for i in 0..29 {
            let p = l.p(format!("e{i:02}/liba.so"));
            if on {
                std::fs::copy(&a, &p).expect("copy");
            } else {
                std::fs::remove_file(&p).expect("rm");
            }
        }
    };
    for step in ["grow", "shrink"] {
        grow(step == "grow");
        let fresh = copy_as(&bare, &format!("fresh-{step}"));
        run_ok(
            Command::new("patchelf")
                .arg("--build-resolution-cache")
                .arg(&fresh),
        );
        let want = note_desc(&fresh).expect("patchelf note");
        for n in &noted {
            let o = run(ldnote_cmd().arg("check").arg(n));
            assert_eq!(
                o.status.code(),
                Some(1),
                "{step}: check must see the stale note of {}",
                n.display()
            );
            let o = run(ldnote_cmd().arg("patch").arg(n));
            assert!(
                o.status.success(),
                "{step} {}: {}",
                n.display(),
                stderr_of(&o)
            );
            let got = note_desc(n).expect("note after re-noting");
            assert_eq!(
                got.escape_ascii().to_string(),
                want.escape_ascii().to_string(),
                "{step} {}",
                n.display()
            );
            run_ok(ldnote_cmd().arg("check").arg(n));
            let before = std::fs::read(n).expect("read");
            run_ok(&mut patchelf_cmd(n));
            assert!(
                std::fs::read(n).expect("read") == before,
                "{step}: patchelf rewrote {}",
                n.display()
            );
            let r = run(Command::new("readelf").args(["-a", "-W"]).arg(n));
            assert!(
                r.stderr.is_empty(),
                "{step} {}: readelf: {}",
                n.display(),
                stderr_of(&r)
            );
            run_ok(&mut Command::new(n));
        }
    }
}

fn patchelf_cmd(file: &Path) -> Command {
    let mut c = Command::new("patchelf");
    c.arg("--build-resolution-cache").arg(file);
    c
}

#[test]
fn difference_unusable_candidates_get_no_exact_entry() {
    // A directory and a text file named like the library, before the real one. patchelf
    // (access(R_OK) only) writes `=` entries for both; the stock loader fails hard on them
    // ("cannot read file data" / "file too short"), so ldnote must not point the loader at them
    // with `=`; it keeps the directories as `?` hints, which reproduce the stock behaviour.
    if common::require_tool("patchelf").is_none() {
        return;
    }
    let l = Layout::new();
    l.mkdir("isdir/liba.so");
    l.write("text/liba.so", b"INPUT(-lfoo)\n");
    let a = l.lib_in("good", "liba.so");
    let rp = join_rp(&[&l.pb("isdir"), &l.pb("text"), &l.pb("good")]);
    let out = Link::program(&l).input(&a).runpath(&rp).build("prog");
    let pe = copy_as(&out, "pe");
    run_ok(&mut patchelf_cmd(&pe));
    let ln = copy_as(&out, "ln");
    run_ok(ldnote_cmd().arg("patch").arg(&ln));
    let dpe = note_desc(&pe).expect("patchelf note");
    let dln = note_desc(&ln).expect("ldnote note");
    for dir in ["isdir", "text"] {
        let e = entry("=", &l.p(dir), "liba.so");
        assert!(contains(&dpe, &e), "patchelf:\n{}", pretty_desc(Some(&dpe)));
        assert!(!contains(&dln, &e), "ldnote:\n{}", pretty_desc(Some(&dln)));
    }
    assert!(contains(&dln, &entry("=", &l.p("good"), "liba.so")));
}
