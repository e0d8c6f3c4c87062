//! The rtld-audit module (audit/) on a stock loader: `la_objsearch(name, LA_SER_ORIG)` answers
//! before any search. For a requester with DT_RUNPATH and a usable note, and no
//! LD_LIBRARY_PATH, the module opens each absolute `=` path of the name's entry in order
//! (`openat`, then reads the ELF header and closes it) and hands the first loadable one to the
//! loader, which opens it as a path with `/`; a `?` element, an `=` path with `$`, or no usable
//! element leaves the name to the stock search (audit/src/parse.rs `step`). Entries outside the
//! requester's current DT_RUNPATH are skipped (docs/note-format.md, "Stale entries").
use super::super::model::{Call, Stage};
use super::super::probe::Probe;
use super::{Fatal, Hit, Sim};
use crate::note::Entry;
use crate::target::{verify, Verdict};

impl<P: Probe> Sim<'_, P> {
    /// The module's answer for `name` requested by `loader`: a hit, or `None` for the stock
    /// search.
    pub(super) fn audit(&mut self, name: &[u8], loader: usize) -> Result<Option<Hit>, Fatal> {
        let llp_set = self
            .inp
            .ld_library_path
            .as_ref()
            .is_some_and(|v| !v.is_empty());
        if llp_set || self.run.maps[loader].runpath.is_none() {
            return Ok(None);
        }
        let Some(entries) = self.note_entries(loader, name) else {
            return Ok(None);
        };
        let current = module_elements(
            self.run.maps[loader].runpath.as_deref().unwrap_or_default(),
            self.run.maps[loader].origin.as_deref(),
        );
        for e in entries {
            // The stale-entry rule as the module applies it (audit/src/parse/runpath.rs
            // `step`): an entry outside the current run path is skipped; where currency
            // depends on a value the module cannot know, the stock search runs.
            let p = match e {
                Entry::Exact(p) if p.starts_with(b"/") => {
                    let Some(dir) = crate::stale::exact_dir(&p) else {
                        continue;
                    };
                    match holds(&current, dir) {
                        Currency::No => continue,
                        Currency::Unknown => return Ok(None),
                        Currency::Yes => p,
                    }
                }
                Entry::Exact(_) => continue,
                Entry::Hint(d) => match expand(&d, self.run.maps[loader].origin.as_deref()) {
                    Elem::Dropped => continue,
                    Elem::Unknown => return Ok(None),
                    Elem::Dir(d) => match holds(&current, &d) {
                        Currency::No => continue,
                        Currency::Yes | Currency::Unknown => return Ok(None),
                    },
                },
            };
            if p.contains(&b'$') {
                return Ok(None);
            }
            // The module's own check: open, read the header, close.
            let opened = self.probe.open(&p);
            self.push(
                Some(Call::Openat),
                &p,
                opened.as_ref().err().copied(),
                false,
                Stage::NoteExact,
            );
            let Ok(o) = opened else { continue };
            if o.is_dir {
                continue;
            }
            let head = self.probe.read(&p, 64).unwrap_or_default();
            if !matches!(verify(&head, &self.acc), Verdict::Accept) {
                continue;
            }
            // The loader opens the returned path (`open_verify`, as for a name with `/`).
            if let Ok(o) = self.open_verify(&p, false, Stage::NoteExact)? {
                return Ok(Some((p, o, Stage::NoteExact, Some(loader))));
            }
        }
        Ok(None)
    }
}

/// A run-path component or `?` hint directory as the module sees it after substitution.
#[derive(Debug, PartialEq, Eq)]
enum Elem {
    /// In `fillin_rpath`'s form: tokens substituted, trailing slashes removed (a lone `/`
    /// stays); empty for the current directory.
    Dir(Vec<u8>),
    /// The loader drops it (a token without a value, or nothing left).
    Dropped,
    /// It needs `$LIB`, `$PLATFORM` or an unknown origin: values the module does not know.
    Unknown,
}

enum Currency {
    Yes,
    No,
    Unknown,
}

/// One component substituted as `_dl_dst_substitute` does, with the module's knowledge: only
/// `$ORIGIN`/`${ORIGIN}` of an object whose origin is known.
fn expand(comp: &[u8], origin: Option<&[u8]>) -> Elem {
    if comp.is_empty() {
        return Elem::Dir(Vec::new());
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < comp.len() {
        if comp[i] != b'$' {
            out.push(comp[i]);
            i += 1;
            continue;
        }
        let rest = &comp[i + 1..];
        let token = |name: &[u8]| -> Option<usize> {
            let braced = [b"{".as_slice(), name, b"}"].concat();
            if rest.starts_with(&braced) {
                return Some(braced.len());
            }
            let ends = rest
                .get(name.len())
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'));
            (rest.starts_with(name) && ends).then_some(name.len())
        };
        if let Some(n) = token(b"ORIGIN") {
            match origin {
                Some(o) => out.extend_from_slice(o),
                None => return Elem::Unknown,
            }
            i += 1 + n;
        } else if token(b"LIB").is_some() || token(b"PLATFORM").is_some() {
            return Elem::Unknown;
        } else {
            out.push(b'$');
            i += 1;
        }
    }
    while out.len() > 1 && out.last() == Some(&b'/') {
        out.pop();
    }
    if out.is_empty() {
        Elem::Dropped
    } else {
        Elem::Dir(out)
    }
}

/// The requester's current run-path elements, as the module reads them: the raw DT_RUNPATH
/// split at every `:` (an empty one has none), each substituted by [`expand`].
fn module_elements(runpath: &[u8], origin: Option<&[u8]>) -> Vec<Elem> {
    if runpath.is_empty() {
        return Vec::new();
    }
    runpath
        .split(|b| *b == b':')
        .map(|c| expand(c, origin))
        .collect()
}

/// Whether `dir` (an `=` entry's directory, which keeps one trailing slash, or a substituted
/// hint) is one of `current`: compared in `fillin_rpath`'s form, a known match wins over
/// elements the module cannot evaluate.
fn holds(current: &[Elem], dir: &[u8]) -> Currency {
    let mut d = dir;
    while d.len() > 1 && d.last() == Some(&b'/') {
        d = &d[..d.len() - 1];
    }
    let mut unknown = false;
    for e in current {
        match e {
            Elem::Dir(x) if x.as_slice() == d => return Currency::Yes,
            Elem::Unknown => unknown = true,
            _ => {}
        }
    }
    if unknown {
        Currency::Unknown
    } else {
        Currency::No
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modules_elements() {
        let o = Some(&b"/opt/bin"[..]);
        assert_eq!(expand(b"", o), Elem::Dir(vec![]));
        assert_eq!(expand(b"/a/lib//", o), Elem::Dir(b"/a/lib".to_vec()));
        assert_eq!(expand(b"/", o), Elem::Dir(b"/".to_vec()));
        assert_eq!(
            expand(b"$ORIGIN/../lib", o),
            Elem::Dir(b"/opt/bin/../lib".to_vec())
        );
        assert_eq!(expand(b"${ORIGIN}/x", o), Elem::Dir(b"/opt/bin/x".to_vec()));
        assert_eq!(expand(b"$ORIGIN/x", None), Elem::Unknown);
        assert_eq!(expand(b"/usr/$LIB", o), Elem::Unknown);
        assert_eq!(expand(b"/p/${PLATFORM}", o), Elem::Unknown);
        assert_eq!(
            expand(b"/a/$ORIGINAL", o),
            Elem::Dir(b"/a/$ORIGINAL".to_vec())
        );
        let cur = module_elements(b"/inst/lib::$LIB", o);
        assert!(matches!(holds(&cur, b"/inst/lib/"), Currency::Yes));
        assert!(matches!(holds(&cur, b""), Currency::Yes));
        assert!(matches!(holds(&cur, b"/build/"), Currency::Unknown));
        let cur = module_elements(b"/inst/lib", o);
        assert!(matches!(holds(&cur, b"/build/"), Currency::No));
        assert!(module_elements(b"", o).is_empty());
    }
}
