//! `ldnote explain`: a simulator of glibc 2.36's library search, precise enough that its
//! predictions (which file each DT_NEEDED resolves to, every `openat` and `newfstatat` the
//! loader makes, every LD_DEBUG `trying file=` line) equal the real loader's, for the stock
//! loader and for the note-aware one (reader rules: docs/note-format.md); the glibc rule each
//! piece mirrors is named in its module.
//!
//! Layers: [`facts`] (capstr list, system dirs; from the target loader's diagnostics or target
//! data), [`cache`] (`/etc/ld.so.cache`), [`probe`] (target-view syscalls with errno, over an
//! [`crate::fs::Fs`] or qemu-user's overlay), `sim` (the search), [`model`] (the result).

pub mod cache;
pub mod facts;
pub mod json;
pub mod model;
pub mod probe;
mod sim;
#[cfg(test)]
mod tests;

use crate::elf::{self, ElfError};
use crate::note;
use crate::target::{Ident, Target};

pub use facts::LoaderFacts;
pub use model::{
    Call, Counts, Event, Map, MapKind, NoteDialect, NotePairs, NoteState, Outcome, Run, Search,
    Stage,
};
pub use probe::{FsProbe, HostProbe, Probe};

/// For objects without a note: the descriptor ldnote would write, from the object's bytes and
/// its path (`explain --plan`).
pub type Planner<'a> = &'a dyn Fn(&[u8], &[u8]) -> Option<Vec<u8>>;

/// Everything about the process being simulated except the files.
#[derive(Clone)]
pub struct Input<'a> {
    /// The loader's facts.
    pub facts: &'a LoaderFacts,
    /// Header facts of the executable (the loader accepts libraries like it).
    pub ident: Ident,
    /// Its target data, when known (extra `e_flags` rules of `open_verify`).
    pub target: Option<&'a Target>,
    /// `ld.so.cache` flags the loader accepts.
    pub cache_flags: Vec<i32>,
    /// LD_LIBRARY_PATH, if set.
    pub ld_library_path: Option<Vec<u8>>,
    /// The process CWD (target view): relative search dirs and `$ORIGIN` of relative names.
    pub cwd: Vec<u8>,
    /// Simulate the note-aware loader.
    pub use_notes: bool,
    /// Which one.
    pub dialect: NoteDialect,
    /// In the note-aware run, give objects without a note the one ldnote would write.
    pub plan: Option<Planner<'a>>,
}

/// Why the executable cannot be simulated.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// Not a readable ELF file.
    #[error(transparent)]
    Elf(#[from] ElfError),
    /// Statically linked: the loader never runs.
    #[error("not dynamically linked (no PT_DYNAMIC)")]
    Static,
}

/// Read a loaded object as the loader sees it (DT_RPATH dropped when DT_RUNPATH is present,
/// elf/get-dynamic-info.h; the note only when the note walk finds a live, mapped one).
fn read_map(data: &[u8], name: &[u8], inp: &Input) -> Result<Map, ElfError> {
    let info = elf::read(data)?;
    let nodeflib = info.nodeflib();
    let note = match info.live_note() {
        None => NoteState::None,
        Some(n) if !n.in_bounds => NoteState::Bad("descriptor outside its PT_NOTE segment".into()),
        Some(n)
            if !info
                .note_segments
                .iter()
                .any(|s| s.index == n.segment && s.loaded) =>
        {
            NoteState::Bad("PT_NOTE segment not mapped".into())
        }
        Some(n) => match loader_view(elf::note_desc(data, n)) {
            Ok(e) => NoteState::Ok(e),
            Err(e) => NoteState::Bad(e),
        },
    };
    let note = match (note, inp.plan) {
        (NoteState::None, Some(plan)) if inp.use_notes => {
            match plan(data, name).map(|d| loader_view(&d)) {
                Some(Ok(p)) => NoteState::Planned(p),
                _ => NoteState::None,
            }
        }
        (n, _) => n,
    };
    Ok(Map {
        name: name.to_vec(),
        names: Vec::new(),
        soname: info.soname,
        loader: None,
        kind: MapKind::Lib,
        origin: None,
        needed: info.needed,
        rpath: if info.runpath.is_some() {
            None
        } else {
            info.rpath
        },
        runpath: info.runpath,
        nodeflib,
        note,
        id: Vec::new(),
    })
}

/// The descriptor as the note-aware loader reads it: more than 2 bytes ending in two NULs,
/// `soname\0pathlist\0` pairs up to an empty soname; a pair with an empty path list poisons
/// the whole note. Elements other than `=X` and `?X` are ignored (unlike
/// [`note::decode_descriptor`], which reports them).
fn loader_view(desc: &[u8]) -> Result<NotePairs, String> {
    if desc.len() <= 2 || !desc.ends_with(&[0, 0]) {
        return Err("descriptor too short or not ending in two NULs".into());
    }
    let mut out = Vec::new();
    let mut parts = desc[..desc.len() - 1].split(|b| *b == 0);
    while let Some(soname) = parts.next() {
        if soname.is_empty() {
            break;
        }
        let list = parts.next().unwrap_or_default();
        if list.is_empty() {
            return Err(format!(
                "empty path list for `{}`",
                String::from_utf8_lossy(soname)
            ));
        }
        let entries = list
            .split(|b| *b == b':')
            .filter_map(|el| match el.split_first() {
                Some((b'=', p)) => Some(note::Entry::Exact(p.to_vec())),
                Some((b'?', d)) => Some(note::Entry::Hint(d.to_vec())),
                _ => None,
            })
            .collect();
        out.push((soname.to_vec(), entries));
    }
    Ok(out)
}

/// The loader's path as the executable names it (PT_INTERP), if any.
pub fn interp(exe: &[u8]) -> Option<Vec<u8>> {
    elf::read(exe).ok().and_then(|i| i.interp)
}

/// Simulate starting the executable `exe` (its bytes; `exe_origin` is its `$ORIGIN`, the
/// directory of `/proc/self/exe`). Libraries are read through `probe`.
pub fn simulate<P: Probe>(
    probe: &P,
    inp: &Input,
    exe: &[u8],
    exe_origin: &[u8],
) -> Result<Run, ExplainError> {
    let mut main = read_map(exe, b"", inp)?;
    if !elf::read(exe)?.dynamic {
        return Err(ExplainError::Static);
    }
    main.kind = MapKind::Main;
    main.origin = Some(exe_origin.to_vec());
    // The loader is pre-registered under its PT_INTERP path and its DT_SONAME (rtld.c).
    let rtld_path = interp(exe).unwrap_or_else(|| inp.facts.rtld.clone());
    let rtld_soname = probe
        .read(&rtld_path, usize::MAX)
        .ok()
        .and_then(|d| elf::read(&d[..]).ok().and_then(|i| i.soname))
        .unwrap_or_else(|| {
            rtld_path
                .rsplit(|b| *b == b'/')
                .next()
                .unwrap_or_default()
                .to_vec()
        });
    let rtld = Map {
        name: rtld_path,
        names: vec![rtld_soname.clone()],
        soname: Some(rtld_soname),
        loader: None,
        kind: MapKind::Rtld,
        origin: None,
        needed: Vec::new(),
        rpath: None,
        runpath: None,
        nodeflib: false,
        note: NoteState::None,
        id: Vec::new(),
    };
    Ok(sim::Sim::new(probe, inp, main, rtld).run())
}
