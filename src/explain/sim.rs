//! The search itself: glibc 2.36 `_dl_map_object_deps` (breadth-first) and `_dl_map_object`
//! with `open_path`, `fillin_rpath`, `decompose_rpath`, the DST substitution and the
//! per-process directory existence cache (elf/dl-load.c, elf/dl-deps.c). The note-aware
//! variant consults the requesting object's `.note.nixos.ldcache` between LD_LIBRARY_PATH and
//! DT_RUNPATH (nixpkgs ldcache.patch).

use crate::bytes::lossy;
use std::collections::{HashMap, VecDeque};

use super::cache::LdCache;
use super::model::{Call, Event, Map, NoteDialect, NoteState, Outcome, Run, Search, Stage};
use super::probe::{Probe, EACCES, ENOENT, ENOTDIR};
use super::Input;

mod audit;
mod paths;
use crate::note::Entry;
use crate::target::{verify, Acceptance, Verdict};
use paths::{origin_of, Elem, List, Status};

enum Found {
    Yes(Vec<u8>, super::probe::Opened),
    No,
}

/// An error that stops loading (`_dl_signal_error`).
type Fatal = String;

/// A found object: its name, the open file, the step that found it, the list's owner.
type Hit = (Vec<u8>, super::probe::Opened, Stage, Option<usize>);

pub(super) struct Sim<'a, P: Probe> {
    probe: &'a P,
    inp: &'a Input<'a>,
    capstrs: Vec<Vec<u8>>,
    acc: Acceptance,
    elems: Vec<Elem>,
    by_name: HashMap<Vec<u8>, usize>,
    system: Vec<usize>,
    llp: Option<Vec<usize>>,
    rpath_dirs: Vec<List>,
    runpath_dirs: Vec<List>,
    cache: Option<Option<LdCache>>,
    run: Run,
    other_class: bool,
    /// `errno` as the loader leaves it: the last failed call (or a skip's ENOENT).
    errno: i32,
}

/// ld.so's own `__strerror_r` (elf/dl-minimal.c): a few messages, else `Error N`.
fn rtld_strerror(e: i32) -> String {
    match e {
        12 => "Cannot allocate memory".into(),
        22 => "Invalid argument".into(),
        2 => "No such file or directory".into(),
        1 => "Operation not permitted".into(),
        5 => "Input/output error".into(),
        13 => "Permission denied".into(),
        n => format!("Error {n}"),
    }
}

impl<'a, P: Probe> Sim<'a, P> {
    pub(super) fn new(probe: &'a P, inp: &'a Input<'a>, main: Map, rtld: Map) -> Self {
        let capstrs = inp.facts.capstrs();
        let acc = Acceptance::new(inp.ident, inp.target);
        let mut s = Sim {
            probe,
            inp,
            capstrs,
            acc,
            elems: Vec::new(),
            by_name: HashMap::new(),
            system: Vec::new(),
            llp: None,
            rpath_dirs: Vec::new(),
            runpath_dirs: Vec::new(),
            cache: None,
            run: Run::default(),
            other_class: false,
            errno: ENOENT,
        };
        s.add_map(main);
        s.add_map(rtld);
        s.init_paths();
        s
    }

    /// The path list `loader`'s note gives for `name` (empty when the note has no pair for it);
    /// `None` when the object has no usable note.
    fn note_entries(&self, loader: usize, name: &[u8]) -> Option<Vec<Entry>> {
        match &self.run.maps[loader].note {
            NoteState::Ok(pairs) | NoteState::Planned(pairs) => Some(
                pairs
                    .iter()
                    .find(|(s, _)| s == name)
                    .map(|(_, e)| e.clone())
                    .unwrap_or_default(),
            ),
            _ => None,
        }
    }

    /// Whether an `=` entry's directory is one of the elements `current` (indices into the
    /// shared elements, as `fillin` makes them).
    fn exact_is_current(&self, path: &[u8], current: &[usize]) -> bool {
        crate::stale::exact_dir(path).is_some_and(|dir| {
            crate::stale::is_current(dir, current.iter().map(|i| &self.elems[*i].dirname[..]))
        })
    }

    fn add_map(&mut self, m: Map) -> usize {
        self.run.maps.push(m);
        self.rpath_dirs.push(List::Unset);
        self.runpath_dirs.push(List::Unset);
        self.run.maps.len() - 1
    }

    fn push(
        &mut self,
        call: Option<Call>,
        path: &[u8],
        errno: Option<i32>,
        trying: bool,
        stage: Stage,
    ) {
        self.run.trace.push(Event {
            call,
            path: path.to_vec(),
            errno,
            trying,
            stage,
        });
    }

    /// `open_verify`: Ok(Ok(file)) accepted, Ok(Err(errno)) go on, Err(fatal).
    fn open_verify(
        &mut self,
        path: &[u8],
        trying: bool,
        stage: Stage,
    ) -> Result<Result<super::probe::Opened, i32>, Fatal> {
        let opened = match self.probe.open(path) {
            Err(e) => {
                self.push(Some(Call::Openat), path, Some(e), trying, stage);
                return Ok(Err(e));
            }
            Ok(o) => o,
        };
        self.push(Some(Call::Openat), path, None, trying, stage);
        if opened.is_dir {
            return Err(format!(
                "{}: cannot read file data: Is a directory",
                lossy(path)
            ));
        }
        let head = self
            .probe
            .read(path, 832)
            .map_err(|e| format!("{}: cannot read file data: {e}", lossy(path)))?;
        match verify(&head, &self.acc) {
            Verdict::Accept => Ok(Ok(opened)),
            Verdict::Skip(why) => {
                if why.contains("class") {
                    self.other_class = true;
                }
                self.errno = ENOENT;
                Ok(Err(ENOENT))
            }
            Verdict::Fatal(why) => Err(format!("{}: {why}", lossy(path))),
        }
    }

    /// `open_path` over `dirs`; also returns `any` (some directory exists).
    fn open_path(
        &mut self,
        name: &[u8],
        dirs: &[usize],
        stage: Stage,
    ) -> Result<(Found, bool), Fatal> {
        let mut any = false;
        let mut errno = ENOENT;
        let keep_slash = self.inp.facts.stat_keeps_slash();
        for &d in dirs {
            let mut here_any = false;
            for c in 0..self.capstrs.len() {
                if self.elems[d].status[c] == Status::Nonexisting {
                    continue;
                }
                let mut path = self.elems[d].dirname.clone();
                path.extend_from_slice(&self.capstrs[c]);
                let dirlen = path.len();
                path.extend_from_slice(name);
                match self.open_verify(&path, true, stage)? {
                    Ok(f) => {
                        if self.elems[d].status[c] == Status::Unknown {
                            self.elems[d].status[c] = Status::Existing;
                        }
                        return Ok((Found::Yes(path, f), true));
                    }
                    Err(e) => errno = e,
                }
                if self.elems[d].status[c] == Status::Unknown {
                    // Does the directory exist at all? (without its trailing slash <= 2.37)
                    let cut = if keep_slash {
                        dirlen
                    } else {
                        dirlen.saturating_sub(1)
                    };
                    let dir = path[..cut].to_vec();
                    let st = self.probe.stat(&dir);
                    self.push(Some(Call::Stat), &dir, st.err(), false, stage);
                    self.elems[d].status[c] = match st {
                        Ok(true) => Status::Existing,
                        Ok(false) => Status::Nonexisting,
                        Err(e) => {
                            errno = e;
                            Status::Nonexisting
                        }
                    };
                }
                here_any |= self.elems[d].status[c] != Status::Nonexisting;
            }
            let go_on = errno == ENOENT
                || errno == EACCES
                || (errno == ENOTDIR && self.inp.facts.enotdir_continues());
            if here_any && !go_on {
                // "The file exists and is readable, but something went wrong": the whole
                // list is abandoned (e.g. ENOTDIR under a relative component, BZ 31035).
                return Ok((Found::No, true));
            }
            any |= here_any;
        }
        Ok((Found::No, any))
    }

    /// Search one RPATH/RUNPATH list of object `l`, replacing it by -1 when nothing exists.
    fn search_list(&mut self, name: &[u8], l: usize, runpath: bool) -> Result<Found, Fatal> {
        let Some(dirs) = self.cache_list(l, runpath) else {
            return Ok(Found::No);
        };
        let stage = if runpath {
            Stage::Runpath
        } else {
            Stage::Rpath
        };
        let (found, any) = self.open_path(name, &dirs, stage)?;
        if !any {
            if runpath {
                self.runpath_dirs[l] = List::Gone;
            } else {
                self.rpath_dirs[l] = List::Gone;
            }
        }
        Ok(found)
    }

    fn cache_lookup(&mut self, name: &[u8]) -> Option<Vec<u8>> {
        if self.cache.is_none() {
            let mut path = self.inp.facts.sysconfdir.clone();
            path.extend_from_slice(b"/ld.so.cache");
            let parsed = match self.probe.open(&path) {
                Err(e) => {
                    self.push(Some(Call::Openat), &path, Some(e), false, Stage::CacheFile);
                    None
                }
                Ok(_) => {
                    self.push(Some(Call::Openat), &path, None, false, Stage::CacheFile);
                    self.push(Some(Call::Fstat), b"", None, false, Stage::CacheFile);
                    self.probe
                        .read(&path, usize::MAX)
                        .ok()
                        .and_then(|d| LdCache::parse(&d, self.inp.ident.big_endian).ok())
                }
            };
            self.cache = Some(parsed);
        }
        let c = self.cache.as_ref()?.as_ref()?;
        c.lookup(name, &self.inp.cache_flags, &self.inp.facts.hwcaps_active)
            .map(<[u8]>::to_vec)
    }

    /// `_dl_map_object` for a slash-less `name` requested by `loader`.
    fn search(&mut self, name: &[u8], loader: usize) -> Result<Option<Hit>, Fatal> {
        macro_rules! hit {
            ($f:expr, $stage:expr, $owner:expr) => {
                if let Found::Yes(p, o) = $f {
                    return Ok(Some((p, o, $stage, $owner)));
                }
            };
        }
        // 0. The audit module answers before the search starts (LA_SER_ORIG).
        if self.inp.use_notes && self.inp.dialect == NoteDialect::Audit {
            if let Some(h) = self.audit(name, loader)? {
                return Ok(Some(h));
            }
        }
        // 1. DT_RPATH of the loader chain, then of the executable, unless the loader has
        //    DT_RUNPATH.
        if self.run.maps[loader].runpath.is_none() {
            let mut did_main = false;
            let mut l = Some(loader);
            while let Some(li) = l {
                if self.cache_list(li, false).is_some() {
                    let f = self.search_list(name, li, false)?;
                    hit!(f, Stage::Rpath, Some(li));
                    did_main |= li == 0;
                }
                l = self.run.maps[li].loader;
            }
            if !did_main {
                let f = self.search_list(name, 0, false)?;
                hit!(f, Stage::Rpath, Some(0));
            }
        }
        // 2. LD_LIBRARY_PATH.
        if let Some(dirs) = self.llp.clone() {
            let (f, _) = self.open_path(name, &dirs, Stage::LdLibraryPath)?;
            hit!(f, Stage::LdLibraryPath, None);
        }
        // 2b. The note-aware loader: the requesting object's note. This project's loader
        //     reads it only for objects with DT_RUNPATH (loader/glibc-2.36-ldcache.patch): for
        //     DT_RPATH objects the RPATH walk above already ran, and their notes are not ours.
        let note_read = match self.inp.dialect {
            NoteDialect::Ldnote => self.run.maps[loader].runpath.is_some(),
            NoteDialect::Nixpkgs => true,
            NoteDialect::Audit => false,
        };
        if self.inp.use_notes && note_read {
            let entries = self.note_entries(loader, name).unwrap_or_default();
            // This project's loader uses only entries its current DT_RUNPATH could have
            // produced (crate::stale); the nixpkgs reader uses every entry.
            let current = match self.inp.dialect {
                NoteDialect::Ldnote if !entries.is_empty() => {
                    Some(self.cache_list(loader, true).unwrap_or_default())
                }
                _ => None,
            };
            for e in entries {
                match e {
                    Entry::Exact(p) => {
                        // The ldnote loader ignores relative `=` paths; it prints
                        // `trying cached file=P` (stage NoteExact) before opening.
                        if self.inp.dialect == NoteDialect::Ldnote && !p.starts_with(b"/") {
                            continue;
                        }
                        if let Some(cur) = &current {
                            if !self.exact_is_current(&p, cur) {
                                continue;
                            }
                        }
                        if let Ok(o) = self.open_verify(&p, false, Stage::NoteExact)? {
                            return Ok(Some((p, o, Stage::NoteExact, Some(loader))));
                        }
                    }
                    Entry::Hint(d) => {
                        // nixpkgs: decompose_rpath("") gives nothing; ldnote: the CWD.
                        if d.is_empty() && self.inp.dialect == NoteDialect::Nixpkgs {
                            continue;
                        }
                        let dirs = self.fillin(&d, b":", loader);
                        if let (Some(cur), Some(i)) = (&current, dirs.first()) {
                            if !cur.contains(i) {
                                continue;
                            }
                        }
                        let (f, _) = self.open_path(name, &dirs, Stage::NoteHint)?;
                        hit!(f, Stage::NoteHint, Some(loader));
                    }
                }
            }
        }
        // 3. DT_RUNPATH of the loader only.
        let f = self.search_list(name, loader, true)?;
        hit!(f, Stage::Runpath, Some(loader));
        // 5. ld.so.cache (DF_1_NODEFLIB rejects entries under system dirs).
        let nodeflib = self.run.maps[loader].nodeflib;
        if let Some(p) = self.cache_lookup(name) {
            let rejected = nodeflib && self.inp.facts.system_dirs.iter().any(|d| p.starts_with(d));
            if rejected {
                self.push(None, &p, None, true, Stage::Cache);
            } else if let Ok(o) = self.open_verify(&p, true, Stage::Cache)? {
                return Ok(Some((p, o, Stage::Cache, None)));
            }
        }
        // 6. System dirs.
        if !nodeflib {
            let dirs = self.system.clone();
            let (f, _) = self.open_path(name, &dirs, Stage::Default)?;
            hit!(f, Stage::Default, None);
        }
        Ok(None)
    }

    /// `_dl_map_object`: one request of `name` by `loader`.
    fn map_object(&mut self, name: &[u8], loader: usize) -> Result<Outcome, Fatal> {
        for (i, m) in self.run.maps.iter_mut().enumerate() {
            if m.name == name || m.names.iter().any(|n| n == name) {
                return Ok(Outcome::AlreadyLoaded { map: i });
            }
            if m.soname.as_deref() == Some(name) {
                m.names.push(name.to_vec());
                return Ok(Outcome::AlreadyLoaded { map: i });
            }
        }
        self.other_class = false;
        let found = if name.contains(&b'/') {
            match self.open_verify(name, false, Stage::Direct)? {
                Ok(o) => Some((name.to_vec(), o, Stage::Direct, None)),
                Err(_) => None,
            }
        } else {
            self.search(name, loader)?
        };
        let Some((realname, opened, stage, owner)) = found else {
            let why = if self.other_class {
                let c = if self.inp.ident.is_64 {
                    "ELFCLASS32"
                } else {
                    "ELFCLASS64"
                };
                format!("wrong ELF class: {c}")
            } else if self.run.maps[loader].nodeflib {
                "cannot open shared object file".to_string()
            } else {
                format!(
                    "cannot open shared object file: {}",
                    rtld_strerror(self.errno)
                )
            };
            return Err(format!("{}: {why}", lossy(name)));
        };
        self.push(Some(Call::Fstat), b"", None, false, Stage::Map);
        if let Some(i) = self
            .run
            .maps
            .iter()
            .position(|m| !m.id.is_empty() && m.id == opened.id)
        {
            let m = &mut self.run.maps[i];
            if !m.names.iter().any(|n| n == name) {
                m.names.push(name.to_vec());
            }
            return Ok(Outcome::SameFile {
                map: i,
                stage,
                owner,
            });
        }
        let data = self
            .probe
            .read(&realname, usize::MAX)
            .map_err(|e| format!("{}: {e}", lossy(&realname)))?;
        let mut map = super::read_map(&data, &realname, self.inp)
            .map_err(|e| format!("{}: {e}", lossy(&realname)))?;
        map.loader = Some(loader);
        map.names = vec![name.to_vec()];
        map.origin = Some(origin_of(&realname, &self.inp.cwd));
        map.id = opened.id;
        let i = self.add_map(map);
        Ok(Outcome::Loaded {
            map: i,
            stage,
            owner,
        })
    }

    /// `_dl_map_object_deps`: breadth-first over DT_NEEDED.
    pub(super) fn run(mut self) -> Run {
        let mut queue = VecDeque::from([0usize]);
        let mut reserved = vec![0usize];
        while let Some(l) = queue.pop_front() {
            for raw in self.run.maps[l].needed.clone() {
                let start = self.run.trace.len();
                // DSTs in DT_NEEDED are expanded first (expand_dst); empty is fatal.
                let name = if raw.contains(&b'$') {
                    self.expand(&raw, l)
                } else {
                    Some(raw.clone())
                };
                let outcome = match name.as_deref() {
                    None | Some(b"") => Err(format!(
                        "{}: empty dynamic string token substitution",
                        lossy(&raw)
                    )),
                    Some(n) => self.map_object(n, l),
                };
                let outcome = outcome.unwrap_or_else(Outcome::Failed);
                let dep = match &outcome {
                    Outcome::Loaded { map, .. }
                    | Outcome::AlreadyLoaded { map }
                    | Outcome::SameFile { map, .. } => Some(*map),
                    Outcome::Failed(e) => {
                        self.run.error = Some(e.clone());
                        None
                    }
                };
                self.run.searches.push(Search {
                    requester: l,
                    name: name.unwrap_or(raw),
                    outcome,
                    events: start..self.run.trace.len(),
                });
                match dep {
                    None => return self.run,
                    Some(d) if !reserved.contains(&d) => {
                        reserved.push(d);
                        queue.push_back(d);
                    }
                    Some(_) => {}
                }
            }
        }
        self.run
    }
}
