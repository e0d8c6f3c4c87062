//! Differential cases against patchelf 0.19.3 `--build-resolution-cache`, the reference writer
//! of the note. Each case is a file in `tests/cases/patchelf/` (format: `case.rs`, TESTING.md):
//! a layout of real gcc-built shared libraries in a temp dir, one link with a chosen DT_NEEDED
//! list and run path, and what the note must be. The harness copies the output twice, notes one
//! copy with patchelf and one with `ldnote patch`, and requires byte-identical descriptors as
//! found by the independent PT_NOTE walker in `common` (or no note on both sides); the same link
//! through `ldnote link` must carry patchelf's note too, and each tool accepts the other's note.
//! Cases where ldnote deliberately differs say so (`relation = "differs"`) and state both notes.
//!
//! `patchelf_cases` runs every file, in parallel, and fails naming every failing file;
//! `LDNOTE_CASE=SUBSTRING` runs only the files whose name contains it.

mod case;
mod special;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::common::*;
use case::{Case, Relation, Soname};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/patchelf")
}

#[test]
fn patchelf_cases() {
    if require_tool("patchelf").is_none() {
        return;
    }
    let filter = std::env::var("LDNOTE_CASE").unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("read tests/cases/patchelf")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension() == Some(OsStr::new("toml")))
        .filter(|p| name(p).contains(&filter))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no case matches LDNOTE_CASE={filter:?}");

    // Cases run on as many workers as there are cores; each one's outcome is kept, so that one
    // failing case does not hide the others.
    let next = AtomicUsize::new(0);
    let failed = Mutex::new(vec![]);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers.min(files.len()) {
            s.spawn(|| {
                while let Some(f) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let start = std::time::Instant::now();
                    match catch_unwind(AssertUnwindSafe(|| run_file(f))) {
                        Ok(()) => println!("case {}: ok ({:.1?})", name(f), start.elapsed()),
                        Err(p) => {
                            println!("case {}: FAILED", name(f));
                            failed.lock().expect("lock").push((name(f), message(&*p)));
                        }
                    }
                }
            });
        }
    });
    let mut failed = failed.into_inner().expect("lock");
    failed.sort();
    let report: Vec<String> = failed.iter().map(|(f, m)| format!("{f}: {m}")).collect();
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        files.len(),
        report.join("\n\n")
    );
}

fn name(p: &Path) -> String {
    p.file_name().expect("file name").to_string_lossy().into()
}

fn message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic without a message".into())
}

/// One case file, once per compiler driver it names.
fn run_file(path: &Path) {
    let text = std::fs::read_to_string(path).expect("read case");
    let c = Case::parse(&text).unwrap_or_else(|e| panic!("bad case file: {e}"));
    let ccs = if c.cc.is_empty() {
        vec!["gcc".to_string()]
    } else {
        c.cc.clone()
    };
    let mut errors = vec![];
    for cc in &ccs {
        let needed = std::iter::once(cc).chain(c.lib.iter().filter_map(|l| l.cc.as_ref()));
        if needed.into_iter().any(|t| require_tool(t).is_none()) {
            continue;
        }
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| run_case(&c, cc))) {
            errors.push(format!("[{cc}] {}", message(&*p)));
        }
    }
    assert!(errors.is_empty(), "{}", errors.join("\n"));
}

fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}

fn run_case(c: &Case, cc: &str) {
    let l = Layout::with_cc(cc);
    let root = bytes(l.root()).to_vec();
    let s = |t: &str| case::bytes(t, &root, None).unwrap_or_else(|e| panic!("{e}"));
    let list = |t| case::items(t, &root).unwrap_or_else(|e| panic!("{e}"));

    for d in list(&c.dirs) {
        l.mkdir(os(&d));
    }
    build_libs(&l, c, &root);
    for f in &c.file {
        l.write(os(&s(&f.path)), &s(&f.text));
    }
    for ln in &c.symlink {
        l.symlink(os(&s(&ln.to)), os(&s(&ln.path)));
    }

    let k = &c.link;
    let mut link = if k.shared {
        Link::shared(&l)
    } else {
        Link::program(&l)
    };
    link = link.inputs(list(&k.inputs).iter().map(|p| l.p(os(p))));
    if let Some(rp) = &k.runpath {
        link = link.runpath(list(rp).join(&b':'));
    }
    if k.tag.as_deref() == Some("rpath") {
        link = link.tag(Tag::Rpath);
    }
    for a in &k.args {
        link = link.arg(os(&s(a)));
    }
    let rel = k.output.as_deref().unwrap_or("prog");
    let out = if k.twin {
        link.build_twins(rel)
    } else {
        link.build(rel)
    };
    for n in &k.add_needed {
        run_ok(
            Command::new("patchelf")
                .arg("--add-needed")
                .arg(os(&s(n)))
                .arg(&out),
        );
    }

    let dynamic = readelf_dynamic(&out);
    for h in &c.readelf.has {
        assert!(
            dynamic.contains(h),
            "layout: readelf lacks {h:?}:\n{dynamic}"
        );
    }
    for h in &c.readelf.lacks {
        assert!(
            !dynamic.contains(h),
            "layout: readelf has {h:?}:\n{dynamic}"
        );
    }
    for (h, n) in &c.readelf.count {
        assert_eq!(
            dynamic.matches(h).count(),
            *n,
            "layout: {h:?} in\n{dynamic}"
        );
    }

    let e = &c.expect;
    let args: Vec<OsString> = e.ldnote_args.iter().map(|a| os(&s(a)).into()).collect();
    let contains: Vec<Vec<u8>> = e.contains.iter().map(|t| s(t)).collect();
    let ln = match e.relation {
        Relation::Same => {
            let (dpe, ln) = differential(&l, &out, e.note.then_some(&contains[..]), &args);
            for t in &e.lacks {
                let d = dpe.as_deref().unwrap_or_default();
                assert!(!has(d, &s(t)), "note has {t:?}:\n{}", pretty_desc(Some(d)));
            }
            ln
        }
        Relation::Differs => {
            let lacks: Vec<Vec<u8>> = e.lacks.iter().map(|t| s(t)).collect();
            let (dpe, dln, ln) = differs(&l, &out, &args);
            let pe = pretty_desc(Some(&dpe));
            let pl = pretty_desc(dln.as_deref());
            // `ldnote_equals = ''`: ldnote writes no note at all (and only then).
            assert!(
                dln.is_some() || e.ldnote_equals.as_deref() == Some(""),
                "ldnote wrote no note"
            );
            let dln = dln.unwrap_or_default();
            for t in &contains {
                assert!(has(&dpe, t), "patchelf lacks {}:\n{pe}", t.escape_ascii());
            }
            for t in &lacks {
                assert!(!has(&dpe, t), "patchelf has {}:\n{pe}", t.escape_ascii());
            }
            if let Some(want) = &e.ldnote_equals {
                assert_eq!(
                    dln,
                    s(want),
                    "ldnote:\n{pl}\nwant:\n{}",
                    pretty_desc(Some(&s(want)))
                );
            }
            for t in &e.ldnote_contains {
                assert!(has(&dln, &s(t)), "ldnote lacks {t:?}:\n{pl}");
            }
            for t in &e.ldnote_lacks {
                assert!(!has(&dln, &s(t)), "ldnote has {t:?}:\n{pl}");
            }
            ln
        }
    };
    if e.run {
        // The loader loads the program with ldnote's note.
        run_ok(&mut Command::new(&ln));
    }
}

/// A library's path, soname (None: no DT_SONAME) and other compiler driver.
type LibToBuild<'a> = (Vec<u8>, Option<Vec<u8>>, Option<&'a str>);

/// The case's libraries; more than a few are built on four threads (each is one `gcc -shared`).
fn build_libs(l: &Layout, c: &Case, root: &[u8]) {
    let mut todo: Vec<LibToBuild> = vec![];
    for lib in &c.lib {
        let counter = lib.range.map(case::range);
        for i in counter.map_or(vec![None], |r| r.into_iter().map(Some).collect()) {
            let b = |t: &str| case::bytes(t, root, i).unwrap_or_else(|e| panic!("{e}"));
            let path = b(&lib.path);
            let soname = match &lib.soname {
                None => Some(
                    path.rsplit(|&c| c == b'/')
                        .next()
                        .unwrap_or_default()
                        .to_vec(),
                ),
                Some(Soname::Name(n)) => Some(b(n)),
                Some(Soname::Has(false)) => None,
                Some(Soname::Has(true)) => panic!("soname = true: give the name, or false"),
            };
            todo.push((path, soname, lib.cc.as_deref()));
        }
    }
    l.pic_object();
    let foreign: Mutex<Vec<(String, Layout)>> = Mutex::new(vec![]);
    let build = |(path, soname, cc): &LibToBuild| match cc {
        None => {
            l.lib(os(path), soname.as_deref());
        }
        Some(cc) => {
            // Built by the other compiler in its own layout, then copied into place.
            let mut f = foreign.lock().expect("lock");
            if !f.iter().any(|(c, _)| c == cc) {
                f.push((cc.to_string(), Layout::with_cc(cc)));
            }
            let (_, other) = f.iter().find(|(c, _)| c == cc).expect("layout");
            let built = other.lib(os(path), soname.as_deref());
            let to = l.p(os(path));
            std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
            std::fs::copy(built, to).expect("copy");
        }
    };
    if todo.len() <= 8 {
        todo.iter().for_each(build);
        return;
    }
    std::thread::scope(|s| {
        for t in 0..4 {
            let (todo, build) = (&todo, &build);
            s.spawn(move || todo.iter().skip(t).step_by(4).for_each(build));
        }
    });
}

fn has(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The core differential check; returns patchelf's descriptor and the copy `ldnote patch` noted.
/// `expect`: `None` for no note, else byte strings patchelf's note must contain, so that a case
/// cannot pass vacuously because the layout was not what it meant (e.g. a dropped run path).
///
/// Order: patchelf on a copy; the layout check; the link-time twin, when the case built one;
/// `ldnote patch` on another copy; cross-acceptance of each other's notes.
fn differential(
    l: &Layout,
    built: &Path,
    expect: Option<&[Vec<u8>]>,
    args: &[OsString],
) -> (Option<Vec<u8>>, PathBuf) {
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
        None => {
            assert!(
                dpe.is_none(),
                "expected no note, patchelf wrote:\n{}",
                pretty_desc(dpe.as_deref())
            );
        }
        Some(parts) => {
            let d = dpe
                .as_deref()
                .unwrap_or_else(|| panic!("expected a note\n{}", readelf_dynamic(built)));
            for p in parts {
                assert!(
                    has(d, p),
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

    let o = run(ldnote_cmd()
        .arg("patch")
        .args(args)
        .arg(&ln)
        .current_dir(l.root()));
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
        let o = run(ldnote_cmd()
            .arg("check")
            .args(args)
            .arg(&pe)
            .current_dir(l.root()));
        assert!(
            o.status.success(),
            "ldnote check rejects patchelf's note: {}{}",
            stdout_of(&o),
            stderr_of(&o)
        );
    }
    (dpe, ln)
}

/// Where ldnote deliberately writes another note than patchelf: patchelf writes one; returns
/// patchelf's descriptor, ldnote's (none: ldnote left the file unchanged), and ldnote's copy.
fn differs(l: &Layout, built: &Path, args: &[OsString]) -> (Vec<u8>, Option<Vec<u8>>, PathBuf) {
    assert!(
        note_desc(built).is_none(),
        "freshly linked file already has a note"
    );
    let pe = copy_as(built, "noted-by-patchelf");
    run_ok(
        Command::new("patchelf")
            .arg("--build-resolution-cache")
            .arg(&pe)
            .current_dir(l.root()),
    );
    let ln = copy_as(built, "noted-by-ldnote");
    run_ok(
        ldnote_cmd()
            .arg("patch")
            .args(args)
            .arg(&ln)
            .current_dir(l.root()),
    );
    let dpe = note_desc(&pe).expect("patchelf note");
    let dln = note_desc(&ln);
    if dln.is_none() {
        let same = std::fs::read(built).ok() == std::fs::read(&ln).ok();
        assert!(same, "ldnote wrote no note but changed the file");
    }
    (dpe, dln, ln)
}
