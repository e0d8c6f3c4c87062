//! Search-path lists: `fillin_rpath`, `decompose_rpath`/`cache_rpath`, the DST substitution
//! (`_dl_dst_substitute`, `is_dst`) and the process-wide directory elements with their
//! per-capstr existence status (elf/dl-load.c).

use super::Sim;
use crate::explain::probe::Probe;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Unknown,
    Nonexisting,
    Existing,
}

/// `struct r_search_path_elem`: global, keyed by the expanded dirname.
pub(super) struct Elem {
    pub(super) dirname: Vec<u8>,
    pub(super) status: Vec<Status>,
}

/// `struct r_search_path_struct`: not yet decomposed, `-1`, or a list of elements.
#[derive(Clone)]
pub(super) enum List {
    Unset,
    Gone,
    Dirs(Vec<usize>),
}

/// `is_dst`: the length of a (possibly braced) DST name at `s`, or 0.
pub(super) fn is_dst(s: &[u8], name: &[u8]) -> usize {
    let (curly, body) = match s.first() {
        Some(b'{') => (true, &s[1..]),
        _ => (false, s),
    };
    if !body.starts_with(name) {
        return 0;
    }
    let next = body.get(name.len()).copied();
    if curly {
        if next == Some(b'}') {
            name.len() + 2
        } else {
            0
        }
    } else if next.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
        0
    } else {
        name.len()
    }
}

/// `_dl_new_object`'s origin: the directory of `realname`, CWD-prefixed when relative.
pub(super) fn origin_of(realname: &[u8], cwd: &[u8]) -> Vec<u8> {
    let mut full = Vec::new();
    if realname.first() != Some(&b'/') {
        full.extend_from_slice(cwd);
        if !full.ends_with(b"/") {
            full.push(b'/');
        }
    }
    full.extend_from_slice(realname);
    match full.iter().rposition(|b| *b == b'/') {
        Some(0) => b"/".to_vec(),
        Some(i) => full[..i].to_vec(),
        None => full,
    }
}

impl<P: Probe> Sim<'_, P> {
    /// `_dl_init_paths`: system dirs, then the executable's RUNPATH or RPATH, then
    /// LD_LIBRARY_PATH (so later lists share these elements).
    pub(super) fn init_paths(&mut self) {
        // `_dl_init_paths` gives every system dir its own element, a repeated one too (a
        // Nix-style build lists its lib dir twice: slibdir and libdir), each with its own
        // existence status. GL(dl_all_dirs) ends with them in order, so a run-path or
        // LD_LIBRARY_PATH entry of the same name shares the first.
        for d in self.inp.facts.system_dirs.clone() {
            self.elems.push(Elem {
                dirname: d.clone(),
                status: vec![Status::Unknown; self.capstrs.len()],
            });
            let i = self.elems.len() - 1;
            self.by_name.entry(d).or_insert(i);
            self.system.push(i);
        }
        if self.run.maps[0].runpath.is_some() {
            self.cache_list(0, true);
            self.rpath_dirs[0] = List::Gone;
        } else {
            self.runpath_dirs[0] = List::Gone;
            self.cache_list(0, false);
        }
        if let Some(p) = self.inp.ld_library_path.clone().filter(|p| !p.is_empty()) {
            let dirs = self.fillin(&p, b":;", 0);
            self.llp = (!dirs.is_empty()).then_some(dirs);
        }
    }

    pub(super) fn elem(&mut self, dir: &[u8]) -> usize {
        if let Some(i) = self.by_name.get(dir) {
            return *i;
        }
        // Relative and empty dirs are never cached: the CWD might change.
        let init = if dir.first() == Some(&b'/') {
            Status::Unknown
        } else {
            Status::Existing
        };
        self.elems.push(Elem {
            dirname: dir.to_vec(),
            status: vec![init; self.capstrs.len()],
        });
        self.by_name.insert(dir.to_vec(), self.elems.len() - 1);
        self.elems.len() - 1
    }

    /// `_dl_dst_substitute`; `None` when a known DST has no value (the element is dropped).
    pub(super) fn expand(&self, s: &[u8], l: usize) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            if s[i] != b'$' {
                out.push(s[i]);
                i += 1;
                continue;
            }
            let rest = &s[i + 1..];
            let f = &self.inp.facts;
            let (len, repl) = match (
                is_dst(rest, b"ORIGIN"),
                is_dst(rest, b"PLATFORM"),
                is_dst(rest, b"LIB"),
            ) {
                (n, _, _) if n > 0 => (n, self.run.maps[l].origin.clone()),
                (_, n, _) if n > 0 => (n, f.platform.clone()),
                (_, _, n) if n > 0 => (n, Some(f.lib.clone())),
                _ => (0, None),
            };
            if len == 0 {
                out.push(b'$');
                i += 1;
                continue;
            }
            out.extend_from_slice(&repl?);
            i += 1 + len;
        }
        Some(out)
    }

    /// `fillin_rpath`: split, expand, normalise to one trailing `/`, share global elements,
    /// drop duplicates within the list.
    pub(super) fn fillin(&mut self, s: &[u8], seps: &[u8], l: usize) -> Vec<usize> {
        let mut out = Vec::new();
        for cp in s.split(|b| seps.contains(b)) {
            let mut dir = Vec::new();
            if !cp.is_empty() {
                let Some(mut e) = self.expand(cp, l) else {
                    continue;
                };
                if e.is_empty() {
                    continue;
                }
                while e.len() > 1 && e.ends_with(b"/") {
                    e.pop();
                }
                if !e.ends_with(b"/") {
                    e.push(b'/');
                }
                dir = e;
            }
            let i = self.elem(&dir);
            if !out.contains(&i) {
                out.push(i);
            }
        }
        out
    }

    /// `cache_rpath` / `decompose_rpath`: the (lazily built) RUNPATH or RPATH list of `l`.
    pub(super) fn cache_list(&mut self, l: usize, runpath: bool) -> Option<Vec<usize>> {
        let slot = if runpath {
            &self.runpath_dirs[l]
        } else {
            &self.rpath_dirs[l]
        };
        match slot {
            List::Gone => return None,
            List::Dirs(d) => return Some(d.clone()),
            List::Unset => {}
        }
        let m = &self.run.maps[l];
        let text = if runpath {
            m.runpath.clone()
        } else {
            m.rpath.clone()
        };
        let dirs = match text {
            Some(t) if !t.is_empty() => self.fillin(&t, b":", l),
            _ => Vec::new(),
        };
        let new = if dirs.is_empty() {
            List::Gone
        } else {
            List::Dirs(dirs.clone())
        };
        if runpath {
            self.runpath_dirs[l] = new;
        } else {
            self.rpath_dirs[l] = new;
        }
        (!dirs.is_empty()).then_some(dirs)
    }
}
