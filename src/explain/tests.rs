//! The search rules against an in-memory sysroot ([`crate::fs::FakeFs`]), with counts taken
//! from loader.md §3 (verified there with strace on glibc 2.36).
use super::*;
use crate::fs::FakeFs;
use crate::note::{encode_descriptor, Entries, Entry};

mod audit;
mod stale;

const X86_64: Ident = Ident {
    is_64: true,
    big_endian: false,
    machine: 62,
    e_flags: 0,
    osabi: 0,
};

/// A minimal x86-64 ET_DYN image: one PT_LOAD over the file, PT_DYNAMIC, optional PT_NOTE
/// holding a resolution note.
fn so(
    needed: &[&str],
    runpath: Option<&str>,
    rpath: Option<&str>,
    soname: Option<&str>,
    note: Option<&Entries>,
) -> Vec<u8> {
    so_with(needed, runpath, rpath, soname, note, 0)
}

/// [`so`] with a DT_FLAGS_1 value (0: none).
fn so_with(
    needed: &[&str],
    runpath: Option<&str>,
    rpath: Option<&str>,
    soname: Option<&str>,
    note: Option<&Entries>,
    flags_1: u64,
) -> Vec<u8> {
    let mut strtab = vec![0u8];
    let mut add = |s: &str| {
        let o = strtab.len() as u64;
        strtab.extend_from_slice(s.as_bytes());
        strtab.push(0);
        o
    };
    let mut dyns: Vec<(u64, u64)> = needed.iter().map(|n| (1u64, add(n))).collect();
    if let Some(r) = runpath {
        dyns.push((29, add(r)));
    }
    if let Some(r) = rpath {
        dyns.push((15, add(r)));
    }
    if let Some(s) = soname {
        dyns.push((14, add(s)));
    }
    if flags_1 != 0 {
        dyns.push((0x6fff_fffb, flags_1));
    }
    let nph = 3u64;
    let str_off = 64 + 56 * nph;
    let dyn_off = (str_off + strtab.len() as u64).div_ceil(8) * 8;
    dyns.push((5, str_off));
    dyns.push((10, strtab.len() as u64));
    dyns.push((0, 0));
    let note_off = dyn_off + 16 * dyns.len() as u64;
    let mut notebytes = Vec::new();
    if let Some(e) = note {
        let desc = encode_descriptor(e).expect("nonempty");
        notebytes.extend_from_slice(&6u32.to_le_bytes());
        notebytes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        notebytes.extend_from_slice(&crate::note::NOTE_TYPE.to_le_bytes());
        notebytes.extend_from_slice(b"NixOS\0\0\0");
        notebytes.extend_from_slice(&desc);
        while notebytes.len() % 4 != 0 {
            notebytes.push(0);
        }
    }
    let total = note_off + notebytes.len() as u64;
    let mut d = vec![0u8; 64];
    d[..4].copy_from_slice(b"\x7fELF");
    d[4] = 2;
    d[5] = 1;
    d[6] = 1;
    d[16..18].copy_from_slice(&3u16.to_le_bytes());
    d[18..20].copy_from_slice(&62u16.to_le_bytes());
    d[20..24].copy_from_slice(&1u32.to_le_bytes());
    d[32..40].copy_from_slice(&64u64.to_le_bytes());
    d[52..54].copy_from_slice(&64u16.to_le_bytes());
    d[54..56].copy_from_slice(&56u16.to_le_bytes());
    d[56..58].copy_from_slice(&(nph as u16).to_le_bytes());
    let ph = |d: &mut Vec<u8>, ty: u32, off: u64, size: u64, align: u64| {
        d.extend_from_slice(&ty.to_le_bytes());
        d.extend_from_slice(&4u32.to_le_bytes());
        for v in [off, off, off, size, size, align] {
            d.extend_from_slice(&v.to_le_bytes());
        }
    };
    ph(&mut d, 1, 0, total, 0x1000);
    ph(&mut d, 2, dyn_off, 16 * dyns.len() as u64, 8);
    ph(&mut d, 4, note_off, notebytes.len() as u64, 4);
    d.extend_from_slice(&strtab);
    d.resize(dyn_off as usize, 0);
    for (t, v) in &dyns {
        d.extend_from_slice(&t.to_le_bytes());
        d.extend_from_slice(&v.to_le_bytes());
    }
    d.extend_from_slice(&notebytes);
    d
}

fn lib() -> Vec<u8> {
    so(&[], None, None, None, None)
}

fn amd() -> LoaderFacts {
    let b = |s: &str| s.as_bytes().to_vec();
    LoaderFacts {
        source: "test".into(),
        version: (2, 36),
        platform: Some(b("x86_64")),
        lib: b("lib/x86_64-linux-gnu"),
        hwcaps_active: vec![b("x86-64-v4"), b("x86-64-v3"), b("x86-64-v2")],
        legacy_hwcaps: vec![b("x86_64")],
        system_dirs: vec![
            b("/lib/x86_64-linux-gnu/"),
            b("/usr/lib/x86_64-linux-gnu/"),
            b("/lib/"),
            b("/usr/lib/"),
        ],
        sysconfdir: b("/etc"),
        rtld: b("/lib64/ld-linux-x86-64.so.2"),
    }
}

fn sim(fs: FakeFs, exe: &[u8], llp: Option<&str>, notes: bool) -> Run {
    sim_dialect(fs, exe, llp, notes, NoteDialect::Ldnote)
}

fn sim_dialect(
    fs: FakeFs,
    exe: &[u8],
    llp: Option<&str>,
    notes: bool,
    dialect: NoteDialect,
) -> Run {
    sim_facts(fs, exe, llp, notes, dialect, &amd())
}

fn sim_facts(
    fs: FakeFs,
    exe: &[u8],
    llp: Option<&str>,
    notes: bool,
    dialect: NoteDialect,
    facts: &LoaderFacts,
) -> Run {
    let inp = Input {
        facts,
        ident: X86_64,
        target: None,
        cache_flags: vec![0x303],
        ld_library_path: llp.map(|s| s.as_bytes().to_vec()),
        cwd: b"/work".to_vec(),
        use_notes: notes,
        dialect,
        plan: None,
    };
    let probe = FsProbe::new(fs, b"/work");
    simulate(&probe, &inp, exe, b"/bin").expect("simulates")
}

fn base_fs() -> FakeFs {
    let mut f = FakeFs::new();
    f.file(
        "/lib/x86_64-linux-gnu/libc.so.6",
        &so(
            &["ld-linux-x86-64.so.2"],
            None,
            None,
            Some("libc.so.6"),
            None,
        ),
    )
    .file(
        "/lib64/ld-linux-x86-64.so.2",
        &so(&[], None, None, Some("ld-linux-x86-64.so.2"), None),
    )
    .dir("/usr/lib/x86_64-linux-gnu")
    .dir("/usr/lib")
    .dir("/work");
    f
}

fn c(openat_ok: u64, openat_fail: u64, stat_ok: u64, stat_fail: u64) -> Counts {
    Counts {
        openat_ok,
        openat_fail,
        stat_ok,
        stat_fail,
    }
}

fn loaded(r: &Run, name: &str) -> String {
    let s = r
        .searches
        .iter()
        .find(|s| s.name == name.as_bytes())
        .expect("searched");
    match &s.outcome {
        Outcome::Loaded { map, .. }
        | Outcome::SameFile { map, .. }
        | Outcome::AlreadyLoaded { map } => {
            String::from_utf8_lossy(&r.maps[*map].name).into_owned()
        }
        Outcome::Failed(e) => format!("FAILED {e}"),
    }
}

fn counts_of(r: &Run, name: &str) -> Counts {
    let s = r
        .searches
        .iter()
        .find(|s| s.name == name.as_bytes())
        .expect("searched");
    r.search_counts(s)
}

#[test]
fn existence_cache_counts_match_strace_of_glibc_2_36() {
    let mut f = base_fs();
    f.dir("/t/empty")
        .file("/t/libs/libfoo.so", &lib())
        .file("/t/libs/libbar.so", &lib());
    let exe = so(
        &["libfoo.so", "libbar.so", "libc.so.6"],
        Some("/t/empty:/t/nonexist:/t/libs"),
        None,
        None,
        None,
    );
    let r = sim(f, &exe, None, false);
    assert_eq!(r.error, None);
    // libfoo: empty/ 11+11 (10 stat fail, 1 ok), nonexist/ 11+11 fail, libs/ 10+10 fail then
    // one open OK, plus the fstat of the opened file.
    assert_eq!(counts_of(&r, "libfoo.so"), c(1, 32, 2, 31));
    // libbar: one open in empty/ (only the base slot is left), none in nonexist/, one in libs/.
    assert_eq!(counts_of(&r, "libbar.so"), c(1, 1, 1, 0));
    // libc: empty/ 1, libs/ 1 fail; cache file missing (1 open fail); default dir probes.
    let lc = counts_of(&r, "libc.so.6");
    assert_eq!((lc.openat_fail, lc.openat_ok), (2 + 1 + 10, 1));
    assert_eq!(loaded(&r, "libc.so.6"), "/lib/x86_64-linux-gnu/libc.so.6");
    assert_eq!(
        loaded(&r, "ld-linux-x86-64.so.2"),
        "/lib64/ld-linux-x86-64.so.2"
    );
    assert_eq!(r.trying()[0], b"/t/empty/glibc-hwcaps/x86-64-v4/libfoo.so");
}

#[test]
fn relative_dirs_are_never_cached_and_never_stated() {
    let mut f = base_fs();
    f.file("/work/here/libfoo.so", &lib())
        .file("/work/here/libbar.so", &lib());
    let exe = so(
        &["libfoo.so", "libbar.so", "libx.so"],
        Some("reldir:here"),
        None,
        None,
        None,
    );
    let mut f2 = f.clone();
    f2.file("/lib/x86_64-linux-gnu/libx.so", &lib());
    let r = sim(f2, &exe, None, false);
    assert_eq!(counts_of(&r, "libfoo.so").openat_fail, 11 + 10);
    assert_eq!(counts_of(&r, "libbar.so").openat_fail, 11 + 10);
    assert_eq!(counts_of(&r, "libfoo.so").stat_fail, 0);
    assert_eq!(loaded(&r, "libfoo.so"), "here/libfoo.so");
    assert!(loaded(&r, "libx.so").starts_with("/lib/x86_64"));
}

#[test]
fn runpath_with_no_existing_dir_is_dropped_after_first_search() {
    let f = base_fs();
    let mut f2 = f.clone();
    f2.file("/lib/x86_64-linux-gnu/liba.so", &lib())
        .file("/lib/x86_64-linux-gnu/libb.so", &lib());
    let exe = so(
        &["liba.so", "libb.so"],
        Some("/no/1:/no/2"),
        None,
        None,
        None,
    );
    let r = sim(f2, &exe, None, false);
    let rp = |n: &str| {
        let s = r
            .searches
            .iter()
            .find(|s| s.name == n.as_bytes())
            .expect("s");
        r.trace[s.events.clone()]
            .iter()
            .filter(|e| e.stage == Stage::Runpath)
            .count()
    };
    assert_eq!(rp("liba.so"), 44);
    assert_eq!(rp("libb.so"), 0);
}

#[test]
fn rpath_chain_rules() {
    // A: exe RPATH, libA RPATH: libA's dep found via the exe's RPATH.
    // B: libA RUNPATH: the exe's RPATH is not used for libA's deps.
    // D: exe RPATH, libA RUNPATH, libC no paths: libC's dep found via the exe's RPATH.
    let mk = |a_runpath: bool| {
        let mut f = base_fs();
        let (rp, run) = if a_runpath {
            (None, Some("/a"))
        } else {
            (Some("/a"), None)
        };
        f.file(
            "/e/libA.so",
            &so(&["libC.so", "libdep.so"], run, rp, None, None),
        )
        .file("/a/libC.so", &so(&["libdep2.so"], None, None, None, None))
        .file("/e/libdep.so", &lib())
        .file("/e/libdep2.so", &lib());
        let exe = so(&["libA.so"], None, Some("/e"), None, None);
        sim(f, &exe, None, false)
    };
    let a = mk(false);
    assert_eq!(loaded(&a, "libdep.so"), "/e/libdep.so");
    let b = mk(true);
    assert!(
        loaded(&b, "libdep.so").starts_with("FAILED"),
        "{}",
        loaded(&b, "libdep.so")
    );
    // D needs libA's own dep to resolve; give libA's RUNPATH dir that dep.
    let mut f = base_fs();
    f.file(
        "/e/libA.so",
        &so(&["libC.so"], Some("/a"), None, None, None),
    )
    .file("/a/libC.so", &so(&["libdep2.so"], None, None, None, None))
    .file("/e/libdep2.so", &lib());
    let d = sim(
        f,
        &so(&["libA.so"], None, Some("/e"), None, None),
        None,
        false,
    );
    assert_eq!(loaded(&d, "libdep2.so"), "/e/libdep2.so");
}

#[test]
fn enotdir_under_a_relative_component_aborts_the_runpath() {
    let mut f = base_fs();
    f.file("/work/main", b"not a dir")
        .file("/t/libs/libfoo.so", &lib());
    let exe = so(&["libfoo.so"], Some("main:/t/libs"), None, None, None);
    let r = sim(f, &exe, None, false);
    assert!(loaded(&r, "libfoo.so").starts_with("FAILED"));
}

#[test]
fn note_exact_entry_costs_one_open_and_hints_search_normally() {
    let mut e = Entries::new();
    e.insert(
        b"libfoo.so".to_vec(),
        vec![Entry::Exact(b"/t/libs/libfoo.so".to_vec())],
    );
    e.insert(b"libbar.so".to_vec(), vec![Entry::Hint(b"/t/h".to_vec())]);
    let mut f = base_fs();
    f.file("/t/libs/libfoo.so", &lib())
        .file("/t/h/libbar.so", &lib());
    let exe = so(
        &["libfoo.so", "libbar.so"],
        Some("/t/libs:/t/h"),
        None,
        None,
        Some(&e),
    );
    let stock = sim(f.clone(), &exe, None, false);
    let noted = sim(f, &exe, None, true);
    assert_eq!(counts_of(&noted, "libfoo.so"), c(1, 0, 1, 0));
    assert_eq!(loaded(&noted, "libfoo.so"), loaded(&stock, "libfoo.so"));
    assert_eq!(counts_of(&noted, "libbar.so"), c(1, 10, 1, 10));
    assert_eq!(loaded(&noted, "libbar.so"), "/t/h/libbar.so");
    assert!(stock.counts().openat_fail > noted.counts().openat_fail);
}

/// This project's loader reads the note only of objects with DT_RUNPATH; nixpkgs' patch also
/// reads it for a DT_RPATH object once the RPATH walk failed.
#[test]
fn note_of_an_rpath_object_is_read_only_by_the_nixpkgs_dialect() {
    let mut e = Entries::new();
    e.insert(
        b"libfoo.so".to_vec(),
        vec![Entry::Exact(b"/t/other/libfoo.so".to_vec())],
    );
    let mut f = base_fs();
    f.dir("/t/empty").file("/t/other/libfoo.so", &lib());
    let exe = so(&["libfoo.so"], None, Some("/t/empty"), None, Some(&e));
    let ours = sim_dialect(f.clone(), &exe, None, true, NoteDialect::Ldnote);
    assert!(loaded(&ours, "libfoo.so").starts_with("FAILED"));
    let nixpkgs = sim_dialect(f.clone(), &exe, None, true, NoteDialect::Nixpkgs);
    assert_eq!(loaded(&nixpkgs, "libfoo.so"), "/t/other/libfoo.so");
    // With DT_RUNPATH instead (holding the entry's directory), both read it: no failing call.
    let exe = so(
        &["libfoo.so"],
        Some("/t/empty:/t/other"),
        None,
        None,
        Some(&e),
    );
    let ours = sim_dialect(f, &exe, None, true, NoteDialect::Ldnote);
    assert_eq!(loaded(&ours, "libfoo.so"), "/t/other/libfoo.so");
    assert_eq!(counts_of(&ours, "libfoo.so"), c(1, 0, 1, 0));
}

/// A system dir listed twice (glibc built with a prefix other than /usr, as loader/build.sh and
/// Nix do: `path.system_dirs` = PREFIX/lib/, /lib/, PREFIX/lib/) is two elements with their own
/// existence status; the run path shares the first. Seen with strace on loader/'s build: the
/// third entry's hwcaps subdirectories are probed and stat'ed again.
#[test]
fn repeated_system_dir_has_its_own_status() {
    let b = |s: &str| s.as_bytes().to_vec();
    let mut facts = amd();
    facts.system_dirs = vec![b("/g/lib/"), b("/lib/"), b("/g/lib/")];
    let mut f = base_fs();
    f.dir("/g/lib");
    let exe = so(&["libmissing.so"], Some("/g/lib"), None, None, None);
    let r = sim_facts(f, &exe, None, false, NoteDialect::Ldnote, &facts);
    assert!(r.error.is_some());
    let stats = |ok: bool| {
        r.trace
            .iter()
            .filter(|e| {
                e.call == Some(Call::Stat)
                    && e.path.starts_with(b"/g/lib")
                    && e.errno.is_none() == ok
            })
            .count()
    };
    // RUNPATH walk, then the third system entry: 10 missing subdirs + the dir itself, twice.
    assert_eq!((stats(false), stats(true)), (20, 2));
}

#[test]
fn cache_hit_costs_one_open_and_nodeflib_rejects_it() {
    let img = super::cache::tests::image(
        &[(0x303, "libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", 0)],
        &[],
    );
    let mut f = base_fs();
    f.file("/etc/ld.so.cache", &img)
        .file("/usr/lib/x86_64-linux-gnu/libz.so.1", &lib());
    let r = sim(
        f.clone(),
        &so(&["libz.so.1"], None, None, None, None),
        None,
        false,
    );
    assert_eq!(
        loaded(&r, "libz.so.1"),
        "/usr/lib/x86_64-linux-gnu/libz.so.1"
    );
    // cache file open + fstat, the candidate open + fstat.
    assert_eq!(counts_of(&r, "libz.so.1"), c(2, 0, 2, 0));
    assert_eq!(
        r.trying(),
        vec![b"/usr/lib/x86_64-linux-gnu/libz.so.1".to_vec()]
    );
    // DF_1_NODEFLIB: the entry is printed (trying) but not opened, default dirs are skipped,
    // and the error has no errno text.
    let exe = so_with(&["libz.so.1"], None, None, None, None, 0x800);
    let r = sim(f, &exe, None, false);
    assert_eq!(
        r.error.as_deref(),
        Some("libz.so.1: cannot open shared object file")
    );
    assert_eq!(r.search_counts(&r.searches[0]), c(1, 0, 1, 0)); // the cache file only
    assert_eq!(r.trying().len(), 1);
}

fn note_of(desc: &[u8]) -> NoteState {
    let mut e = Entries::new();
    e.insert(b"x".to_vec(), vec![Entry::Hint(b"/x/long/enough".to_vec())]);
    let mut img = so(&[], None, None, None, Some(&e));
    // Overwrite the descriptor in place (zero padded to its length).
    let enc = encode_descriptor(&e).expect("enc");
    let pos = img
        .windows(enc.len())
        .position(|w| w == enc.as_slice())
        .expect("desc");
    let mut d = desc.to_vec();
    d.resize(enc.len(), 0);
    img[pos..pos + enc.len()].copy_from_slice(&d);
    let facts = amd();
    let inp = Input {
        facts: &facts,
        ident: X86_64,
        target: None,
        cache_flags: vec![0x303],
        ld_library_path: None,
        cwd: b"/".to_vec(),
        use_notes: true,
        dialect: NoteDialect::Ldnote,
        plan: None,
    };
    read_map(&img, b"t", &inp).expect("reads").note
}

#[test]
fn loader_view_of_the_descriptor() {
    // Unknown and empty elements are skipped, the rest is used.
    match note_of(b"x\0!bad::?/y\0\0") {
        NoteState::Ok(p) => {
            assert_eq!(p, vec![(b"x".to_vec(), vec![Entry::Hint(b"/y".to_vec())])])
        }
        o => panic!("{o:?}"),
    }
    // An empty path list poisons the whole note.
    assert!(matches!(note_of(b"x\0\0y\0?/z\0\0"), NoteState::Bad(_)));
}

#[test]
fn wrong_class_is_opened_then_skipped() {
    let mut f = base_fs();
    let mut c32 = lib();
    c32[4] = 1;
    f.file("/t/a/libfoo.so", &c32)
        .file("/t/b/libfoo.so", &lib());
    let r = sim(
        f,
        &so(&["libfoo.so"], Some("/t/a:/t/b"), None, None, None),
        None,
        false,
    );
    assert_eq!(loaded(&r, "libfoo.so"), "/t/b/libfoo.so");
    let s = counts_of(&r, "libfoo.so");
    // /t/a: 10 failed + 1 opened-but-skipped (then its dir stat succeeds).
    assert_eq!(s.openat_ok, 2);
}

#[test]
fn ld_library_path_and_origin() {
    let mut f = base_fs();
    f.file("/bin/sub/libo.so", &lib())
        .file("/x/libl.so", &lib());
    let exe = so(
        &["libo.so", "libl.so"],
        Some("$ORIGIN/sub"),
        None,
        None,
        None,
    );
    let r = sim(f, &exe, Some("/x;/nonexist"), false);
    assert_eq!(loaded(&r, "libo.so"), "/bin/sub/libo.so");
    assert_eq!(loaded(&r, "libl.so"), "/x/libl.so");
    // LD_LIBRARY_PATH is searched first (before RUNPATH) for libo too.
    assert_eq!(r.trying()[0], b"/x/glibc-hwcaps/x86-64-v4/libo.so");
}

#[test]
fn json_fields_are_the_documented_ones() {
    let mut f = base_fs();
    f.file("/t/libs/libfoo.so", &lib());
    let exe = so(
        &["libfoo.so", "libc.so.6"],
        Some("/t/libs"),
        None,
        None,
        None,
    );
    let stock = sim(f.clone(), &exe, None, false);
    let note = sim(f, &exe, None, true);
    let text = super::json::render("prog", &amd(), false, &stock, &note);
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        ["facts", "file", "loader", "note", "stock", "version"]
    );
    assert_eq!(
        keys(&v["facts"]),
        [
            "capstrs",
            "hwcaps_active",
            "legacy_hwcaps",
            "lib",
            "platform",
            "rtld",
            "source",
            "sysconfdir",
            "system_dirs",
            "version"
        ]
    );
    assert_eq!(
        keys(&v["stock"]),
        ["error", "objects", "searches", "totals", "trace", "trying"]
    );
    assert_eq!(
        keys(&v["stock"]["objects"][0]),
        [
            "counts",
            "index",
            "kind",
            "loader",
            "needed",
            "nodeflib",
            "note",
            "note_error",
            "path",
            "rpath",
            "runpath",
            "soname"
        ]
    );
    assert_eq!(
        keys(&v["stock"]["searches"][0]),
        [
            "counts",
            "error",
            "name",
            "object",
            "owner",
            "path",
            "requester",
            "result",
            "via",
            "why"
        ]
    );
    assert_eq!(
        keys(&v["stock"]["trace"][0]),
        ["call", "errno", "path", "stage", "trying"]
    );
    assert_eq!(
        keys(&v["stock"]["totals"]),
        ["openat_fail", "openat_ok", "stat_fail", "stat_ok"]
    );
    assert_eq!(v["stock"]["searches"][0]["via"], "runpath");
    assert_eq!(
        v["stock"]["searches"][0]["why"],
        "RUNPATH of the executable"
    );
}
