//! Resolution: DT_NEEDED x run path -> note entries, inside a sysroot.
//!
//! The rules are patchelf 0.19.1+'s (`--build-resolution-cache`), so that wherever patchelf is
//! right the descriptor is byte-identical; they go beyond it where patchelf records something the
//! loader would not load (see [`Resolver::resolve`]) or entries that can only cost the note-aware
//! loader failing calls the stock loader does not make (see `prune`). Each directory is listed at most once (one
//! `getdents` pass, cached) instead of one `access()` per needed name and directory.

use crate::bytes::lossy;
use std::borrow::Cow;
use std::io;
use std::rc::Rc;

use crate::fs::{Fs, Kind, Sysroot};
use crate::note::{Entries, Entry};
use crate::target::{verify, Acceptance, Verdict, HEAD_LEN};

/// Policy knobs beyond patchelf's behaviour.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Legacy hwcaps subdirectory names the target loader probes (glibc <= 2.36). A run-path
    /// directory holding any of them becomes a `?` hint: the stock loader would look there
    /// before the directory itself, which an `=` entry would bypass.
    pub legacy_hwcaps: Vec<Vec<u8>>,
    /// When set, `=` entries are written only for directories under one of these prefixes;
    /// other absolute directories become `?` hints (they may change after the link).
    pub immutable_prefixes: Option<Vec<Vec<u8>>>,
}

/// Why a run-path component became a `?` hint, or what happened to a candidate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Event {
    /// Component hinted, with the reason.
    Hint {
        /// The component.
        dir: String,
        /// Why.
        why: String,
    },
    /// `=` entry recorded.
    Found {
        /// The soname.
        soname: String,
        /// The recorded path.
        path: String,
    },
    /// A candidate the loader would skip (wrong class/machine/flags): not recorded.
    Skipped {
        /// The candidate path.
        path: String,
        /// Why.
        why: String,
    },
    /// A candidate the loader would reject fatally: recorded as a `?` hint of its directory
    /// for that soname so that the note keeps the stock loader's outcome.
    Fatal {
        /// The candidate path.
        path: String,
        /// Why.
        why: String,
    },
    /// A needed name containing `/`: opened directly by the loader, not recorded.
    Direct {
        /// The name.
        name: String,
    },
    /// An entry left out of a soname's list because it could only add failing calls
    /// (see `prune`).
    Dropped {
        /// The soname.
        soname: String,
        /// The entry, `=PATH` or `?DIR`.
        entry: String,
        /// Why.
        why: String,
    },
    /// A directory entry matched but could not be opened (dangling link, no permission):
    /// the loader moves on, so nothing is recorded.
    Unopenable {
        /// The candidate path.
        path: String,
        /// Why.
        why: String,
    },
}

/// The result for one object.
#[derive(Clone, Debug, Default)]
pub struct Resolution {
    /// soname -> entries.
    pub entries: Entries,
    /// What was decided, in order (for `-v` and `explain`).
    pub events: Vec<Event>,
}

enum Listing {
    /// The entries, and the resolved directory when it is not the component itself (a
    /// sysroot's symlinks; native resolution never copies it).
    Names(Option<Vec<u8>>, Rc<crate::fs::Listing>),
    /// Listing is refused but the directory may be searchable: probe names one by one.
    Probe,
    /// Absent or not a directory.
    Missing(String),
}

/// Resolves objects against one sysroot, caching directory listings across objects.
pub struct Resolver<F: Fs> {
    root: Sysroot<F>,
    policy: Policy,
    listings: crate::fnv::Map<Vec<u8>, Rc<Listing>>,
    /// Whether [`Resolution::events`] is filled (see [`Resolver::record_events`]).
    events: bool,
    /// The positions [`present`] finds, kept between directories (one buffer per resolver,
    /// not one per directory).
    hits: Vec<usize>,
}

impl<F: Fs> Resolver<F> {
    /// A resolver over `fs` with `policy`, recording events.
    pub fn new(fs: F, policy: Policy) -> Self {
        Resolver {
            root: Sysroot::new(fs),
            policy,
            listings: crate::fnv::Map::default(),
            events: true,
            hits: Vec::new(),
        }
    }

    /// Whether to record [`Event`]s (on by default). They exist to be shown (`-v`, `explain`);
    /// a wrapped link that shows nothing skips building them: two strings per library found,
    /// on every link. The entries do not depend on it.
    pub fn record_events(&mut self, on: bool) {
        self.events = on;
    }

    /// The first `n` bytes of `path` (a target path), resolved inside the sysroot.
    pub fn read_head(&self, path: &[u8], n: usize) -> io::Result<Vec<u8>> {
        let real = self.root.resolve(path).map_err(|e| match e {
            crate::fs::ResolveError::Io(_, io) => io,
            other => io::Error::other(other.to_string()),
        })?;
        self.root.fs().head(&real, n)
    }

    /// Change the policy (it depends on each object's target); listings stay cached.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// Compute the entries for an object with these DT_NEEDED names and this run path
    /// (DT_RUNPATH, else DT_RPATH), checking candidates with `acc`.
    ///
    /// Per component, in run-path order (patchelf's loop, and the loader's search order):
    /// - empty (the CWD), relative (resolved against the process CWD by glibc), or holding `$`
    ///   (a dynamic string token): `?component` for every searched name;
    /// - absent, not a directory, or unsearchable: `?component` (patchelf 0.19.1);
    /// - holding `glibc-hwcaps` (or, per policy, a legacy hwcaps subdirectory): `?component`,
    ///   because the loader looks in those subdirectories first;
    /// - otherwise `=component/name` for each name present that the target loader would accept.
    ///   Files it would skip (other class, machine, float ABI) are left out, as the loader
    ///   goes on past them; files it would reject fatally become `?component` for that name
    ///   so the note-aware loader meets the same file and fails the same way.
    ///
    /// Then each soname's list is pruned (`prune`): a directory once, no trailing cwd-relative
    /// hints, no list of hints that only follows the run-path walk.
    pub fn resolve(
        &mut self,
        needed: &[Vec<u8>],
        search_path: &[u8],
        acc: &Acceptance,
    ) -> Resolution {
        let mut res = Resolution::default();
        let on = self.events;
        let mut searched: Vec<&[u8]> = Vec::new();
        for n in needed {
            if n.contains(&b'/') {
                record(&mut res.events, on, || Event::Direct { name: lossy(n) });
            } else {
                searched.push(n);
            }
        }
        if searched.is_empty() {
            return res;
        }
        let by_name = Positions::new(&searched);
        // Every component is looked up once: no growth of the cache on the way.
        self.listings
            .reserve(search_path.iter().filter(|b| **b == b':').count() + 1);
        for comp in search_path.split(|b| *b == b':') {
            let listing = match self.static_hint(comp) {
                Some(why) => Err(why),
                None => {
                    let l = self.listing(comp);
                    match listing_hint(&l, &self.policy.legacy_hwcaps) {
                        Some(why) => Err(why),
                        None => Ok(l),
                    }
                }
            };
            let listing = match listing {
                Ok(l) => l,
                Err(why) => {
                    record(&mut res.events, on, || Event::Hint {
                        dir: lossy(comp),
                        why,
                    });
                    for n in &searched {
                        res.entries
                            .entry(n.to_vec())
                            .or_default()
                            .push(Entry::Hint(comp.to_vec()));
                    }
                    continue;
                }
            };
            let mut hits = std::mem::take(&mut self.hits);
            present(&listing, &searched, &by_name, &mut hits);
            for &i in &hits {
                let n = searched[i];
                let mut path = comp.to_vec();
                path.push(b'/');
                path.extend_from_slice(n);
                match self.candidate(&listing, n, &path, acc) {
                    None => {}
                    // `=dir/lib:x.so` would be split at the `:` by the loader: the directory is
                    // a `?` hint for this soname instead (the loader's search finds the file).
                    Some(Verdict::Accept) if n.contains(&b':') => {
                        record(&mut res.events, on, || Event::Hint {
                            dir: lossy(comp),
                            why: format!(
                                "soname `{}` contains `:`, which a path list cannot hold",
                                lossy(n)
                            ),
                        });
                        res.entries
                            .entry(n.to_vec())
                            .or_default()
                            .push(Entry::Hint(comp.to_vec()));
                    }
                    Some(Verdict::Accept) => {
                        record(&mut res.events, on, || Event::Found {
                            soname: lossy(n),
                            path: lossy(&path),
                        });
                        res.entries
                            .entry(n.to_vec())
                            .or_default()
                            .push(Entry::Exact(path));
                    }
                    Some(Verdict::Skip(why)) => record(&mut res.events, on, || Event::Skipped {
                        path: lossy(&path),
                        why,
                    }),
                    Some(Verdict::Fatal(why)) => {
                        record(&mut res.events, on, || Event::Fatal {
                            path: lossy(&path),
                            why,
                        });
                        res.entries
                            .entry(n.to_vec())
                            .or_default()
                            .push(Entry::Hint(comp.to_vec()));
                    }
                }
            }
            self.hits = hits;
        }
        // The run path's directories as `fillin_rpath` keeps them: in order, each once. Needed
        // only for a list of hints (`prune`'s last rule), so built only then.
        let walk = std::cell::OnceCell::new();
        let walk = || {
            walk.get_or_init(|| {
                let mut walk: Vec<Vec<u8>> = Vec::new();
                for comp in search_path.split(|b| *b == b':') {
                    let d = crate::stale::dir_form(comp);
                    if !walk.contains(&d) {
                        walk.push(d);
                    }
                }
                walk
            })
            .as_slice()
        };
        for (soname, list) in res.entries.iter_mut() {
            for (e, why) in prune(list, &walk) {
                record(&mut res.events, on, || Event::Dropped {
                    soname: lossy(soname),
                    entry: lossy(&e.encode()),
                    why: why.into(),
                });
            }
        }
        // Names seen only as unopenable, or left with nothing by `prune`: no pair at all.
        res.entries.retain(|_, v| !v.is_empty());
        res
    }

    /// Why a component is a hint before its directory is looked at, or `None`.
    fn static_hint(&self, comp: &[u8]) -> Option<String> {
        if comp.is_empty() {
            return Some("empty component: the loader searches the current directory".into());
        }
        if comp.contains(&b'$') {
            return Some("dynamic string token, expanded by the loader".into());
        }
        if comp[0] != b'/' {
            return Some("relative: resolved against the process's working directory".into());
        }
        if let Some(prefixes) = &self.policy.immutable_prefixes {
            if !prefixes.iter().any(|p| under(comp, p)) {
                return Some("not under an immutable prefix (may change after the link)".into());
            }
        }
        None
    }

    /// The listing of `comp`, read once per resolver (one lookup when cached).
    fn listing(&mut self, comp: &[u8]) -> Rc<Listing> {
        if let Some(l) = self.listings.get(comp) {
            return l.clone();
        }
        let l = Rc::new(match self.root.resolve_dir(comp) {
            None => Listing::Missing("cannot be resolved inside the sysroot".into()),
            Some(real) => match self.root.list(&real) {
                Ok(names) => Listing::Names((*real != *comp).then(|| real.into_owned()), names),
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Listing::Probe,
                Err(e) => Listing::Missing(format!("absent or not a searchable directory ({e})")),
            },
        });
        self.listings.insert(comp.to_vec(), l.clone());
        l
    }

    /// The loader's verdict on `comp/name`, or `None` when there is no such (openable) file.
    fn candidate(
        &self,
        listing: &Listing,
        name: &[u8],
        path: &[u8],
        acc: &Acceptance,
    ) -> Option<Verdict> {
        // A regular file in a resolved directory is opened directly; a symlink (or an entry of
        // unknown kind) is resolved inside the sysroot first.
        let mut regular = false;
        let real = match listing {
            Listing::Missing(_) => return None,
            Listing::Names(dir, names) => match names.get(name) {
                None => return None,
                // open() of a directory succeeds; the read fails with EISDIR: fatal.
                Some(Some(Kind::Dir)) => {
                    return Some(Verdict::Fatal(
                        "cannot read file data: Is a directory".into(),
                    ))
                }
                // A FIFO, socket or device: the loader would block on it or fail to read it.
                Some(Some(Kind::Other)) => {
                    return Some(Verdict::Fatal("not a regular file".into()))
                }
                Some(Some(Kind::File)) => {
                    regular = true;
                    if let Some(dir) = dir {
                        let mut p = dir.clone();
                        if !p.ends_with(b"/") {
                            p.push(b'/');
                        }
                        p.extend_from_slice(name);
                        Cow::Owned(p)
                    } else {
                        // Resolved to itself (native resolution): `path` is `dir/name`.
                        Cow::Borrowed(path)
                    }
                }
                Some(_) => Cow::Owned(self.root.resolve(path).ok()?),
            },
            Listing::Probe => Cow::Owned(self.root.resolve(path).ok()?),
        };
        let fs = self.root.fs();
        let mut buf = [0u8; HEAD_LEN];
        let head = if regular {
            fs.head_of_file(&real, &mut buf)
                .map(|n| Cow::Borrowed(&buf[..n]))
        } else {
            fs.head(&real, HEAD_LEN).map(Cow::Owned)
        };
        match head {
            Ok(head) => Some(verify(&head, acc)),
            Err(e) if e.raw_os_error() == Some(libc::EISDIR) => Some(Verdict::Fatal(
                "cannot read file data: Is a directory".into(),
            )),
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                Some(Verdict::Fatal("not a regular file".into()))
            }
            // ENOENT (dangling link), EACCES: the loader's open fails and it goes on.
            Err(_) => None,
        }
    }
}

/// Why a listed component is a hint (it is missing, or the loader searches subdirectories of it
/// first), or `None` when its files can be looked up.
fn listing_hint(listing: &Listing, legacy: &[Vec<u8>]) -> Option<String> {
    match listing {
        Listing::Missing(why) => Some(why.clone()),
        Listing::Probe => None,
        Listing::Names(_, names) => {
            if names.contains(b"glibc-hwcaps") {
                return Some("has a glibc-hwcaps subdirectory, searched first".into());
            }
            legacy.iter().find(|l| names.contains(l)).map(|l| {
                format!(
                    "has legacy hwcaps subdirectory `{}` (glibc <= 2.36 searches it first)",
                    lossy(l)
                )
            })
        }
    }
}

/// Positions in `searched` of the names `listing` holds, ascending, into `hits`. Walks whichever
/// is smaller, the directory's listing or the needed names, so 1,000 needed names against 1,000
/// one-library directories cost 1,000 visits, not 1,000,000 lookups. A directory that cannot be
/// listed is probed name by name (every name is a candidate).
fn present(listing: &Listing, searched: &[&[u8]], by_name: &Positions, hits: &mut Vec<usize>) {
    hits.clear();
    let names = match listing {
        Listing::Missing(_) => return,
        Listing::Probe => return hits.extend(0..searched.len()),
        Listing::Names(_, names) => names,
    };
    if names.len() < by_name.first.len() {
        for k in names.names() {
            by_name.each(k, |i| hits.push(i));
        }
        hits.sort_unstable();
    } else {
        hits.extend((0..searched.len()).filter(|&i| names.contains(searched[i])));
    }
}

/// Each searched name's positions in the list (a name may be needed twice): the first in a map,
/// each later one chained from the one before, so the whole index is two allocations, not one
/// list per name.
struct Positions<'n> {
    first: crate::fnv::Map<&'n [u8], usize>,
    next: Vec<usize>,
}

impl<'n> Positions<'n> {
    fn new(searched: &[&'n [u8]]) -> Self {
        let mut first = crate::fnv::Map::default();
        first.reserve(searched.len());
        let mut next = vec![usize::MAX; searched.len()];
        // Walked from the end, each name's first position ends up in the map, its chain in order.
        for (i, n) in searched.iter().enumerate().rev() {
            if let Some(later) = first.insert(*n, i) {
                next[i] = later;
            }
        }
        Positions { first, next }
    }

    /// Calls `f` with every position of `name`, ascending.
    fn each(&self, name: &[u8], mut f: impl FnMut(usize)) {
        let mut at = self.first.get(name).copied();
        while let Some(i) = at {
            f(i);
            at = self.next.get(i).copied().filter(|&n| n != usize::MAX);
        }
    }
}

/// Push the event `make` builds, when events are recorded.
fn record(events: &mut Vec<Event>, on: bool, make: impl FnOnce() -> Event) {
    if on {
        events.push(make());
    }
}

/// Drops the entries of one soname's list that can only cost the note-aware loader failing
/// calls the stock loader does not make (docs/note-format.md, "What ldnote does differently"):
/// - an entry whose directory (in `fillin_rpath`'s form) an earlier entry already names:
///   `fillin_rpath` keeps one copy of a directory per run path, so the stock loader searches
///   it once, while the note-aware loader would search it again per entry. CMake pads its
///   build-tree run path with empty components (each one the current directory), one `?` hint
///   per component otherwise;
/// - `?` hints of cwd-relative directories (empty, `.`, `lib`; not `$` tokens) after the last
///   `=` entry. When everything before them failed, the loader falls back to its `DT_RUNPATH`
///   walk, which searches those directories again; a library in the process's working
///   directory is the exception, so the hint would mostly double the failures. Without it the
///   walk finds exactly what the stock loader finds. Meson's `X` padding component is such a
///   directory;
/// - a list of hints only, naming the first directories of the run path (`walk`, in
///   `fillin_rpath`'s form) in order: the note would search what the walk searches first, in the
///   same order, and the walk would search it again when the library lives elsewhere (libc,
///   found through `ld.so.cache`). Hints that skip a run-path directory (`?$ORIGIN/lib` after
///   `/usr/lib/app`) stay: they save that directory's search.
fn prune<'w>(
    list: &mut Vec<Entry>,
    walk: &dyn Fn() -> &'w [Vec<u8>],
) -> Vec<(Entry, &'static str)> {
    let mut dropped = Vec::new();
    // One entry (the usual case: the library's own directory) names no directory twice.
    if list.len() > 1 {
        let mut seen: Vec<Vec<u8>> = Vec::new();
        for e in std::mem::take(list) {
            let dir = match &e {
                Entry::Hint(d) => Some(crate::stale::dir_form(d)),
                Entry::Exact(p) => crate::stale::exact_dir(p).map(<[u8]>::to_vec),
            };
            match dir {
                Some(d) if seen.contains(&d) => {
                    dropped.push((e, "an earlier entry names the same directory"));
                }
                Some(d) => {
                    seen.push(d);
                    list.push(e);
                }
                None => list.push(e),
            }
        }
    }
    while let Some(Entry::Hint(d)) = list.last() {
        if d.first() == Some(&b'/') || d.contains(&b'$') {
            break;
        }
        if let Some(e) = list.pop() {
            dropped.push((
                e,
                "cwd-relative hint after the last `=` entry: the run-path walk searches it anyway",
            ));
        }
    }
    let prefix = !list.is_empty()
        && list.iter().all(|e| matches!(e, Entry::Hint(_)))
        && list.len() <= walk().len()
        && list.iter().zip(walk()).all(|(e, w)| match e {
            Entry::Hint(d) => crate::stale::dir_form(d) == *w,
            Entry::Exact(_) => false,
        });
    if prefix {
        for e in list.drain(..) {
            dropped.push((
                e,
                "hints only, of the run path's first directories: the note would search them \
                 as the run-path walk does, then the walk again",
            ));
        }
    }
    dropped
}

/// `dir` is `prefix` or below it (component-wise). A `.` or `..` component makes the answer
/// "no": `/nix/store/../tmp` is not in the store, and the loader does not normalise it.
fn under(dir: &[u8], prefix: &[u8]) -> bool {
    if dir.split(|b| *b == b'/').any(|c| c == b"." || c == b"..") {
        return false;
    }
    let p = prefix.strip_suffix(b"/").unwrap_or(prefix);
    dir.starts_with(p) && (dir.len() == p.len() || dir[p.len()] == b'/' || p.is_empty())
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
