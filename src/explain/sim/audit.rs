//! The rtld-audit module (audit/) on a stock loader: `la_objsearch(name, LA_SER_ORIG)` answers
//! before any search. For a requester with DT_RUNPATH and a usable note, and no
//! LD_LIBRARY_PATH, the module opens each absolute `=` path of the name's entry in order
//! (`openat`, then reads the ELF header and closes it) and hands the first loadable one to the
//! loader, which opens it as a path with `/`; a `?` element, an `=` path with `$`, or no usable
//! element leaves the name to the stock search (audit/src/parse.rs `step`).
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
        for e in entries {
            let p = match e {
                Entry::Exact(p) if p.starts_with(b"/") => p,
                Entry::Exact(_) => continue,
                Entry::Hint(_) => return Ok(None),
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
