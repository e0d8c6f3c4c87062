//! The audit module's dialect (`explain --loader audit`): the note answers before any search,
//! `=` entries only, and every other case is the stock search.
use super::*;

fn entries() -> Entries {
    let mut e = Entries::new();
    e.insert(
        b"libfoo.so".to_vec(),
        vec![
            // Missing, in a current run-path directory: the module pays one failing open.
            Entry::Exact(b"/t/h/libfoo.so".to_vec()),
            Entry::Exact(b"/t/libs/libfoo.so".to_vec()),
        ],
    );
    e.insert(b"libbar.so".to_vec(), vec![Entry::Hint(b"/t/h".to_vec())]);
    e
}

fn fs() -> FakeFs {
    let mut f = base_fs();
    f.file("/t/libs/libfoo.so", &lib())
        .file("/t/h/libbar.so", &lib())
        .dir("/t/gone");
    f
}

/// A missing `=` file costs one failing open by the module, the next one is opened twice
/// (module check, then the loader); a `?` entry is the stock search.
#[test]
fn exact_entries_are_checked_by_the_module_and_hints_are_stock() {
    let exe = so(
        &["libfoo.so", "libbar.so"],
        Some("/t/libs:/t/h"),
        None,
        None,
        Some(&entries()),
    );
    let stock = sim(fs(), &exe, None, false);
    let audit = sim_dialect(fs(), &exe, None, true, NoteDialect::Audit);
    assert_eq!(counts_of(&audit, "libfoo.so"), c(2, 1, 1, 0));
    assert_eq!(loaded(&audit, "libfoo.so"), loaded(&stock, "libfoo.so"));
    // libbar.so: the stock RUNPATH walk. It pays for /t/libs's hwcaps subdirectories too,
    // which libfoo.so's search (answered by the module) did not probe first.
    assert_eq!(loaded(&audit, "libbar.so"), loaded(&stock, "libbar.so"));
    assert_eq!(counts_of(&stock, "libbar.so"), c(1, 11, 1, 10));
    assert_eq!(counts_of(&audit, "libbar.so"), c(1, 21, 2, 20));
}

/// LD_LIBRARY_PATH (searched first by the stock loader) and a DT_RPATH requester: the module
/// leaves the name alone.
#[test]
fn ld_library_path_and_rpath_requesters_are_stock() {
    let exe = so(
        &["libfoo.so"],
        Some("/t/libs"),
        None,
        None,
        Some(&entries()),
    );
    let stock = sim(fs(), &exe, Some("/t/none"), false);
    let audit = sim_dialect(fs(), &exe, Some("/t/none"), true, NoteDialect::Audit);
    assert_eq!(audit.counts(), stock.counts());
    let exe = so(
        &["libfoo.so"],
        None,
        Some("/t/libs"),
        None,
        Some(&entries()),
    );
    let stock = sim(fs(), &exe, None, false);
    let audit = sim_dialect(fs(), &exe, None, true, NoteDialect::Audit);
    assert_eq!(audit.counts(), stock.counts());
}
