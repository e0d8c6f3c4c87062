//! Resolution rules against an in-memory fake sysroot.
use super::*;
use crate::fs::FakeFs;
use crate::note::encode_descriptor;
use crate::target::Ident;

const X86_64: Ident = Ident {
    is_64: true,
    big_endian: false,
    machine: 62,
    e_flags: 0,
    osabi: 0,
};

/// A 64-byte ELF header (enough for `open_verify`'s checks).
fn ehdr(is_64: bool, be: bool, machine: u16, e_type: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = if is_64 { 2 } else { 1 };
    h[5] = if be { 2 } else { 1 };
    h[6] = 1;
    let put16 = |h: &mut Vec<u8>, o: usize, v: u16| {
        let b = if be { v.to_be_bytes() } else { v.to_le_bytes() };
        h[o..o + 2].copy_from_slice(&b);
    };
    put16(&mut h, 16, e_type);
    put16(&mut h, 18, machine);
    let v = if be {
        1u32.to_be_bytes()
    } else {
        1u32.to_le_bytes()
    };
    h[20..24].copy_from_slice(&v);
    if is_64 {
        put16(&mut h, 54, 56);
    } else {
        put16(&mut h, 42, 32);
    }
    h
}

fn lib() -> Vec<u8> {
    ehdr(true, false, 62, 3)
}

fn run(fs: FakeFs, policy: Policy, needed: &[&str], rp: &str) -> String {
    let mut r = Resolver::new(fs, policy);
    let needed: Vec<Vec<u8>> = needed.iter().map(|n| n.as_bytes().to_vec()).collect();
    let res = r.resolve(&needed, rp.as_bytes(), &Acceptance::new(X86_64, None));
    match encode_descriptor(&res.entries) {
        Some(d) => String::from_utf8_lossy(&d).replace('\0', "|"),
        None => "<none>".into(),
    }
}

#[test]
fn every_matching_component_in_order_and_sorted_sonames() {
    let mut f = FakeFs::new();
    f.file("/a/libz.so.1", &lib())
        .file("/b/libz.so.1", &lib())
        .file("/b/liba.so", &lib());
    assert_eq!(
        run(f, Policy::default(), &["libz.so.1", "liba.so"], "/a:/b"),
        "liba.so|=/b/liba.so|libz.so.1|=/a/libz.so.1:=/b/libz.so.1||"
    );
}

#[test]
fn hints_for_empty_relative_token_missing_and_hwcaps() {
    let mut f = FakeFs::new();
    f.file("/h/glibc-hwcaps/x86-64-v3/libx.so", &lib())
        .file("/h/libx.so", &lib())
        .file("/ok/libx.so", &lib());
    f.file("/afile", b"x");
    let got = run(
        f,
        Policy::default(),
        &["libx.so"],
        ":rel:$ORIGIN/../lib:/missing:/afile:/h:/ok:",
    );
    assert_eq!(
        got,
        "libx.so|?:?rel:?$ORIGIN/../lib:?/missing:?/afile:?/h:=/ok/libx.so||"
    );
}

#[test]
fn slash_names_are_skipped_and_nothing_gives_no_note() {
    let mut f = FakeFs::new();
    f.dir("/empty");
    assert_eq!(
        run(f.clone(), Policy::default(), &["/abs/libq.so"], "/empty"),
        "<none>"
    );
    assert_eq!(run(f, Policy::default(), &["libq.so"], "/empty"), "<none>");
}

#[test]
fn wrong_class_and_machine_are_skipped_fatal_files_hint() {
    let mut f = FakeFs::new();
    f.file("/w32/libm.so", &ehdr(false, false, 3, 3))
        .file("/arm/libm.so", &ehdr(true, false, 183, 3))
        .file(
            "/txt/libm.so",
            b"/* GNU ld script */ INPUT(libm.so.6) and some more text to pass 64 bytes ......",
        )
        .file("/be/libm.so", &ehdr(true, true, 62, 3))
        .dir("/dir/libm.so")
        .file("/good/libm.so", &lib());
    let got = run(
        f,
        Policy::default(),
        &["libm.so"],
        "/w32:/arm:/txt:/be:/dir:/good",
    );
    assert_eq!(got, "libm.so|?/txt:?/be:?/dir:=/good/libm.so||");
}

#[test]
fn symlinks_resolve_inside_the_sysroot() {
    let mut f = FakeFs::new();
    f.file("/usr/lib/real/libs.so.1.2", &lib())
        .link("/usr/lib/app/libs.so.1", "/usr/lib/real/libs.so.1.2")
        .link("/lib", "usr/lib")
        .link("/usr/lib/app/libdangling.so", "/nowhere/x.so");
    assert_eq!(
        run(
            f,
            Policy::default(),
            &["libs.so.1", "libdangling.so"],
            "/lib/app"
        ),
        "libs.so.1|=/lib/app/libs.so.1||"
    );
}

#[test]
fn legacy_hwcaps_and_immutable_prefix_policies() {
    let mut f = FakeFs::new();
    f.file("/store/a/libx.so", &lib())
        .dir("/store/a/tls")
        .file("/store/b/libx.so", &lib())
        .file("/usr/lib/libx.so", &lib());
    let p = Policy {
        legacy_hwcaps: vec![b"tls".to_vec()],
        immutable_prefixes: Some(vec![b"/store".to_vec()]),
    };
    assert_eq!(
        run(f, p, &["libx.so"], "/store/a:/store/b:/usr/lib"),
        "libx.so|?/store/a:=/store/b/libx.so:?/usr/lib||"
    );
}

#[test]
fn duplicate_needed_is_recorded_once_and_trailing_slash_is_verbatim() {
    let mut f = FakeFs::new();
    f.file("/d/liby.so", &lib());
    assert_eq!(
        run(f, Policy::default(), &["liby.so", "liby.so"], "/d/"),
        "liby.so|=/d//liby.so||"
    );
}

#[test]
fn unlistable_directories_are_probed() {
    let mut f = FakeFs::new();
    f.file("/locked/libp.so", &lib());
    f.unlistable.push(b"/locked".to_vec());
    assert_eq!(
        run(f, Policy::default(), &["libp.so", "libq.so"], "/locked"),
        "libp.so|=/locked/libp.so||"
    );
}

#[test]
fn debian_skips_other_byte_order_for_another_machine() {
    let mut f = FakeFs::new();
    f.file("/be/libm.so", &ehdr(true, true, 22, 3))
        .file("/good/libm.so", &lib());
    let mut acc = Acceptance::new(X86_64, None);
    acc.machine_check_before_ident = true;
    let mut r = Resolver::new(f, Policy::default());
    let res = r.resolve(&[b"libm.so".to_vec()], b"/be:/good", &acc);
    let d = encode_descriptor(&res.entries).expect("note");
    assert_eq!(d, b"libm.so\0=/good/libm.so\0\0");
    assert!(matches!(&res.events[0], Event::Skipped { why, .. } if why.contains("machine")));
}

#[test]
fn listing_or_names_walked_whichever_is_smaller_same_result() {
    // /small lists fewer entries than there are needed names (walk the listing), /big more
    // (walk the names); a needed name listed twice is recorded once per directory either way.
    let mut f = FakeFs::new();
    f.file("/small/libb.so", &lib());
    for n in [
        "liba.so", "libb.so", "libc1.so", "libc2.so", "libc3.so", "libc4.so",
    ] {
        f.file(&format!("/big/{n}"), &lib());
    }
    assert_eq!(
        run(
            f,
            Policy::default(),
            &["libb.so", "liba.so", "libb.so", "libzz.so"],
            "/small:/big"
        ),
        "liba.so|=/big/liba.so|libb.so|=/small/libb.so:=/big/libb.so||"
    );
}

#[test]
fn a_colon_in_a_soname_becomes_a_hint() {
    // `=/a/lib:x.so` would be read by the loader as `=/a/lib` and `x.so`.
    let mut f = FakeFs::new();
    // (`/e` before it, so that the hint list skips a directory and is kept.)
    f.file("/a/lib:x.so", &lib())
        .file("/a/liby.so", &lib())
        .dir("/e");
    assert_eq!(
        run(f, Policy::default(), &["lib:x.so", "liby.so"], "/e:/a"),
        "lib:x.so|?/a|liby.so|=/a/liby.so||"
    );
}

#[test]
fn a_directory_is_recorded_once_per_soname_as_fillin_rpath_keeps_it_once() {
    let mut f = FakeFs::new();
    f.file("/a/liba.so", &lib()).file("/b/libb.so", &lib());
    // `/a`, `/a/` and `/a//` are one directory; `.` and `` are two (`./` and the empty one).
    assert_eq!(
        run(
            f,
            Policy::default(),
            &["liba.so", "libb.so"],
            "::/a:/a/:.:./:/a//:/b:$ORIGIN:$ORIGIN/:"
        ),
        "liba.so|?:=/a/liba.so:?.:?$ORIGIN|libb.so|?:?.:=/b/libb.so:?$ORIGIN||"
    );
}

#[test]
fn cwd_relative_hints_after_the_last_exact_entry_are_dropped() {
    let mut f = FakeFs::new();
    f.file("/a/liba.so", &lib());
    let needed = ["liba.so", "libc.so.6"];
    // CMake's build-tree padding (empty components) and Meson's (an `X` component): the
    // padding only ever costs failing calls, libc.so.6 (found through ld.so.cache) gets no pair.
    let cmake = format!("/a{}", ":".repeat(12));
    assert_eq!(
        run(f.clone(), Policy::default(), &needed, &cmake),
        "liba.so|=/a/liba.so||"
    );
    assert_eq!(
        run(f.clone(), Policy::default(), &needed, "/a:XXXXXXXXXXXX"),
        "liba.so|=/a/liba.so||"
    );
    assert_eq!(run(f.clone(), Policy::default(), &needed, ":::"), "<none>");
    // Before an `=` entry the hint keeps the stock order; a token hint stays at the end.
    assert_eq!(
        run(f, Policy::default(), &needed, ":/a:rel:$ORIGIN:."),
        "liba.so|?:=/a/liba.so:?rel:?$ORIGIN|libc.so.6|?:?rel:?$ORIGIN||"
    );
}

#[test]
fn dropped_entries_are_reported() {
    let mut f = FakeFs::new();
    f.file("/a/liba.so", &lib());
    let mut r = Resolver::new(f, Policy::default());
    let res = r.resolve(
        &[b"liba.so".to_vec()],
        b"/a:/a/:",
        &Acceptance::new(X86_64, None),
    );
    let dropped: Vec<(&str, &str)> = res
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Dropped { entry, why, .. } => Some((entry.as_str(), why.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(dropped.len(), 2, "{dropped:?}");
    assert_eq!(dropped[0].0, "=/a//liba.so");
    assert!(dropped[0].1.contains("same directory"));
    assert_eq!(dropped[1].0, "?");
    assert!(dropped[1].1.contains("after the last `=`"));
}

#[test]
fn events_are_recorded_only_when_asked_and_the_entries_do_not_depend_on_it() {
    let mut f = FakeFs::new();
    // Found, skipped (another class), dropped (the same directory twice), hinted (a token).
    f.file("/a/liba.so", &lib())
        .file("/b/libb.so", &ehdr(false, false, 3, 3))
        .file("/c/libb.so", &lib());
    let resolve = |events: bool| {
        let mut r = Resolver::new(f.clone(), Policy::default());
        r.record_events(events);
        r.resolve(
            &[
                b"liba.so".to_vec(),
                b"libb.so".to_vec(),
                b"x/liby.so".to_vec(),
            ],
            b"/a:/a/:/b:$ORIGIN:/c",
            &Acceptance::new(X86_64, None),
        )
    };
    let (on, off) = (resolve(true), resolve(false));
    assert_eq!(on.entries, off.entries);
    assert!(off.events.is_empty(), "{:?}", off.events);
    for want in ["Found", "Skipped", "Dropped", "Hint", "Direct"] {
        assert!(
            on.events.iter().any(|e| format!("{e:?}").starts_with(want)),
            "no {want} event in {:?}",
            on.events
        );
    }
}

#[test]
fn hint_lists_of_the_run_paths_first_directories_are_dropped() {
    let mut f = FakeFs::new();
    f.file("/a/liba.so", &lib()).dir("/usr/lib/app");
    let needed = ["liba.so", "libc.so.6"];
    // Meson's build-tree run path: libc.so.6 would search `$ORIGIN/sub` before the walk does.
    assert_eq!(
        run(
            f.clone(),
            Policy::default(),
            &needed,
            "$ORIGIN/sub:XXXXXXXX"
        ),
        "<none>"
    );
    assert_eq!(
        run(f.clone(), Policy::default(), &needed, "$ORIGIN/sub:/a:XXXX"),
        "liba.so|?$ORIGIN/sub:=/a/liba.so||"
    );
    // A hint that skips a run-path directory saves its search: kept.
    assert_eq!(
        run(f, Policy::default(), &needed, "/usr/lib/app:$ORIGIN/../lib"),
        "liba.so|?$ORIGIN/../lib|libc.so.6|?$ORIGIN/../lib||"
    );
}

#[test]
fn positions_chain_every_occurrence_in_order() {
    let searched: [&[u8]; 6] = [b"a", b"b", b"a", b"c", b"a", b"b"];
    let p = Positions::new(&searched);
    let all = |n: &[u8]| {
        let mut v = Vec::new();
        p.each(n, |i| v.push(i));
        v
    };
    assert_eq!(all(b"a"), [0, 2, 4]);
    assert_eq!(all(b"b"), [1, 5]);
    assert_eq!(all(b"c"), [3]);
    assert!(all(b"d").is_empty());
    assert_eq!(p.first.len(), 3);
}
