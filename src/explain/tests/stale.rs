//! The stale-entry rule of this project's loader (`--loader note`, dialect ldnote): only entries
//! whose directory is a current DT_RUNPATH element are used; the nixpkgs dialect uses them all.
use super::*;

fn note(pairs: &[(&str, Vec<Entry>)]) -> Entries {
    let mut e = Entries::new();
    for (n, l) in pairs {
        e.insert(n.as_bytes().to_vec(), l.clone());
    }
    e
}
fn exact(p: &str) -> Entry {
    Entry::Exact(p.as_bytes().to_vec())
}
fn hint(p: &str) -> Entry {
    Entry::Hint(p.as_bytes().to_vec())
}
/// The calls of the whole run, without the successful ones' order: what strace compares.
fn calls(r: &Run) -> Vec<(Option<Call>, Vec<u8>, Option<i32>)> {
    r.trace
        .iter()
        .map(|e| (e.call, e.path.clone(), e.errno))
        .collect()
}

/// A build-tree note after `patchelf --set-rpath /inst` (a decoy of the same soname still in
/// the build tree): the `=` entry and the `?` hint are skipped and the run is stock's, call for
/// call; the nixpkgs reader would load the decoy.
#[test]
fn entries_outside_the_current_runpath_are_skipped() {
    let e = note(&[
        ("libfoo.so", vec![exact("/build/libfoo.so")]),
        ("libbar.so", vec![hint("/build")]),
    ]);
    let mut f = base_fs();
    f.file("/build/libfoo.so", &lib())
        .file("/build/libbar.so", &lib())
        .file("/inst/libfoo.so", &lib())
        .file("/inst/libbar.so", &lib());
    let exe = so(
        &["libfoo.so", "libbar.so"],
        Some("/inst"),
        None,
        None,
        Some(&e),
    );
    let stock = sim(f.clone(), &exe, None, false);
    let ours = sim(f.clone(), &exe, None, true);
    assert_eq!(loaded(&ours, "libfoo.so"), "/inst/libfoo.so");
    assert_eq!(loaded(&ours, "libbar.so"), "/inst/libbar.so");
    assert_eq!(calls(&ours), calls(&stock));
    // The audit module skips them too (its own reading of the run path): stock's run.
    let audit = sim_dialect(f.clone(), &exe, None, true, NoteDialect::Audit);
    assert_eq!(loaded(&audit, "libfoo.so"), "/inst/libfoo.so");
    assert_eq!(loaded(&audit, "libbar.so"), "/inst/libbar.so");
    assert_eq!(calls(&audit), calls(&stock));
    let nixpkgs = sim_dialect(f, &exe, None, true, NoteDialect::Nixpkgs);
    assert_eq!(loaded(&nixpkgs, "libfoo.so"), "/build/libfoo.so");
    assert_eq!(loaded(&nixpkgs, "libbar.so"), "/build/libbar.so");
}

/// What writers make of components with trailing slashes (`/t/libs//` gives
/// `=/t/libs///libfoo.so`), a `$ORIGIN` hint and an `=` entry inside the expanded origin are
/// all current: the note is used as written.
#[test]
fn fresh_entries_with_slashes_and_origin_are_used() {
    let e = note(&[
        ("libfoo.so", vec![exact("/t/libs///libfoo.so")]),
        ("libo.so", vec![hint("$ORIGIN/sub/")]),
        ("libp.so", vec![exact("/bin/sub/libp.so")]),
    ]);
    let mut f = base_fs();
    f.file("/t/libs/libfoo.so", &lib())
        .file("/bin/sub/libo.so", &lib())
        .file("/bin/sub/libp.so", &lib());
    let exe = so(
        &["libfoo.so", "libo.so", "libp.so"],
        Some("$ORIGIN/sub:/t/libs//"),
        None,
        None,
        Some(&e),
    );
    let r = sim(f, &exe, None, true);
    assert_eq!(loaded(&r, "libfoo.so"), "/t/libs///libfoo.so");
    assert_eq!(counts_of(&r, "libfoo.so"), c(1, 0, 1, 0));
    assert_eq!(loaded(&r, "libo.so"), "/bin/sub/libo.so");
    assert_eq!(r.search_counts(&r.searches[1]).openat_fail, 10);
    assert_eq!(loaded(&r, "libp.so"), "/bin/sub/libp.so");
    assert_eq!(counts_of(&r, "libp.so"), c(1, 0, 1, 0));
}

/// CMake's padded build run path rewritten in place (`/build::::` -> `/inst`): the padding's
/// current-directory hints are stale too, so the current directory is not searched.
#[test]
fn padding_hints_after_an_in_place_rewrite_are_skipped() {
    let e = note(&[(
        "libfoo.so",
        vec![exact("/build/libfoo.so"), hint(""), hint(""), hint("")],
    )]);
    let mut f = base_fs();
    f.file("/work/libfoo.so", &lib())
        .file("/inst/libfoo.so", &lib());
    let exe = so(&["libfoo.so"], Some("/inst"), None, None, Some(&e));
    let r = sim(f.clone(), &exe, None, true);
    assert_eq!(loaded(&r, "libfoo.so"), "/inst/libfoo.so");
    assert!(!r.trace.iter().any(|e| e.path == b"libfoo.so"));
    // Unchanged, the padding is one current element (the CWD), and the hints search it.
    let exe = so(&["libfoo.so"], Some("/build:::"), None, None, Some(&e));
    let r = sim(f, &exe, None, true);
    assert_eq!(loaded(&r, "libfoo.so"), "libfoo.so");
}

/// Only the stale element of a list is skipped. A run path none of whose directories exists
/// is forgotten after its first fruitless walk (glibc's open_path sets it to -1): later names
/// then have no current element, and their entries are not even tried.
#[test]
fn mixed_lists_and_forgotten_runpaths() {
    let e = note(&[
        (
            "libfoo.so",
            vec![exact("/old/libfoo.so"), exact("/t/libs/libfoo.so")],
        ),
        ("libbar.so", vec![exact("/none/libbar.so")]),
        ("libbaz.so", vec![exact("/none/libbaz.so")]),
    ]);
    let mut f = base_fs();
    f.file("/old/libfoo.so", &lib())
        .file("/t/libs/libfoo.so", &lib());
    let exe = so(&["libfoo.so"], Some("/t/libs"), None, None, Some(&e));
    let r = sim(f.clone(), &exe, None, true);
    assert_eq!(loaded(&r, "libfoo.so"), "/t/libs/libfoo.so");
    assert_eq!(counts_of(&r, "libfoo.so"), c(1, 0, 1, 0));
    let exe = so(
        &["libbar.so", "libbaz.so"],
        Some("/none"),
        None,
        None,
        Some(&e),
    );
    let r = sim(f, &exe, None, true);
    let tried = |p: &[u8]| r.trace.iter().filter(|e| e.path == p).count();
    assert_eq!(
        tried(b"/none/libbar.so"),
        2,
        "the note's open, then the walk's"
    );
    assert_eq!(tried(b"/none/libbaz.so"), 0);
}
