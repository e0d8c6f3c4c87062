//! Executable specification of `ldnote patch --shrink-rpath`'s run-path step: the same result as
//! `patchelf --shrink-rpath` (0.19.3), written in place. Kept apart from `src/shrink.rs` as an
//! independent statement of the rules (a deliberate oracle): `shrink_matches_patchelf`
//! checks it against patchelf byte for byte, and ldnote's own mode against both.
//!
//! patchelf's rules (checked against patchelf 0.19.3 by `shrink_matches_patchelf` in
//! tests/nix_fixup.rs):
//! - The run path is DT_RUNPATH, else DT_RPATH, read from `.dynstr` (by section name).
//! - Components are split on `:`; empty components are dropped.
//! - A component not starting with `/` (`$ORIGIN/..`, relative) is kept.
//! - An absolute directory is kept iff it provides at least one DT_NEEDED name not provided by
//!   an earlier kept directory: `<dir>/<name>` opens, its first 52 bytes are an ELF header
//!   (magic, EI_VERSION 1, class 1 or 2) and its e_machine bytes equal the object's.
//!   ENOENT (also a dangling symlink) = not provided. Any other open/read error (a directory,
//!   EACCES) makes patchelf fail the whole file, which it then leaves unchanged.
//!   A short or non-ELF file: patchelf fails the file only when no earlier probe of the process
//!   failed with ENOENT (its error type depends on a stale `errno`); in the usual case it counts
//!   as not provided, which is what this function does.
//! - DT_RPATH without DT_RUNPATH: its tag becomes DT_RUNPATH, even if the string is unchanged.
//! - A changed string is written in place: the old string's bytes become `X` (so that Nix's
//!   reference scanner no longer sees the removed store paths), then the new string and a NUL
//!   are written at the same offset. The new string is never longer.
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;

use object::elf;
use object::read::elf::{Dyn as _, FileHeader, SectionHeader as _};
use object::Endianness;

/// The run-path edit for one file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Run path before.
    pub old: Vec<u8>,
    /// Run path after.
    pub new: Vec<u8>,
    /// (file offset, bytes) to write, in order.
    pub writes: Vec<(u64, Vec<u8>)>,
}

/// The edit for `data`, `None` when the file has no run path (or is not a dynamic ELF).
pub fn plan(data: &[u8]) -> Result<Option<Plan>, String> {
    match object::FileKind::parse(data) {
        Ok(object::FileKind::Elf32) => plan_elf::<elf::FileHeader32<Endianness>>(data),
        Ok(object::FileKind::Elf64) => plan_elf::<elf::FileHeader64<Endianness>>(data),
        _ => Ok(None),
    }
}

fn cstr(data: &[u8], at: u64) -> Result<&[u8], String> {
    let tail = usize::try_from(at)
        .ok()
        .and_then(|a| data.get(a..))
        .ok_or("string offset outside the file")?;
    let end = tail
        .iter()
        .position(|b| *b == 0)
        .ok_or("unterminated string")?;
    Ok(&tail[..end])
}

fn plan_elf<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<Option<Plan>, String> {
    let h = H::parse(data).map_err(|e| e.to_string())?;
    let e = h.endian().map_err(|e| e.to_string())?;
    let sections = h.sections(e, data).map_err(|e| e.to_string())?;
    let Some(dynamic) = sections.iter().find(|s| s.sh_type(e) == elf::SHT_DYNAMIC) else {
        return Ok(None);
    };
    let Some((_, dynstr)) = sections.section_by_name(e, b".dynstr") else {
        return Err("no .dynstr section".into());
    };
    let str_off: u64 = dynstr.sh_offset(e).into();
    let dyn_off: u64 = dynamic.sh_offset(e).into();
    let entries: &[H::Dyn] = dynamic
        .data_as_array(e, data)
        .map_err(|_| "cannot read the dynamic section".to_string())?;
    let mut needed = Vec::new();
    let (mut runpath, mut rpath) = (None, None);
    for (i, d) in entries.iter().enumerate() {
        let tag: u64 = d.d_tag(e).into();
        let val: u64 = d.d_val(e).into();
        match u32::try_from(tag).unwrap_or(u32::MAX) {
            elf::DT_NULL => break,
            elf::DT_NEEDED => needed.push(cstr(data, str_off + val)?),
            elf::DT_RUNPATH => runpath = Some((i, val)),
            elf::DT_RPATH => rpath = Some((i, val)),
            _ => {}
        }
    }
    let (convert, (_, val)) = match (runpath, rpath) {
        (Some(r), Some(p)) if r.1 == p.1 => {
            return Err("DT_RPATH and DT_RUNPATH share one string: not shrunk".into())
        }
        (Some(r), _) => (None, r),
        (None, Some(p)) => (Some(p.0), p),
        (None, None) => return Ok(None),
    };
    let old = cstr(data, str_off + val)?;
    let machine = &data[18..20];
    let mut found = vec![false; needed.len()];
    let mut kept: Vec<&[u8]> = Vec::new();
    for comp in old.split(|b| *b == b':').filter(|c| !c.is_empty()) {
        if comp[0] != b'/' {
            kept.push(comp);
            continue;
        }
        let mut provides = false;
        for (j, name) in needed.iter().enumerate() {
            if found[j] {
                continue;
            }
            let mut p = comp.to_vec();
            p.push(b'/');
            p.extend_from_slice(name);
            if probe(&p, machine)? {
                found[j] = true;
                provides = true;
            }
        }
        if provides {
            kept.push(comp);
        }
    }
    let new = kept.join(&b':');
    let mut writes = Vec::new();
    if let Some(i) = convert {
        let at = dyn_off + (i * std::mem::size_of::<H::Dyn>()) as u64;
        let tag = u64::from(elf::DT_RUNPATH);
        let bytes = match (h.is_type_64(), e) {
            (true, Endianness::Little) => tag.to_le_bytes().to_vec(),
            (true, Endianness::Big) => tag.to_be_bytes().to_vec(),
            (false, Endianness::Little) => (tag as u32).to_le_bytes().to_vec(),
            (false, Endianness::Big) => (tag as u32).to_be_bytes().to_vec(),
        };
        writes.push((at, bytes));
    }
    if new.as_slice() != old {
        let mut bytes = new.clone();
        bytes.push(0);
        bytes.resize(old.len(), b'X');
        writes.push((str_off + val, bytes));
    }
    Ok(Some(Plan {
        old: old.to_vec(),
        new,
        writes,
    }))
}

/// Does `path` provide a library for an object whose e_machine bytes are `machine`?
fn probe(path: &[u8], machine: &[u8]) -> Result<bool, String> {
    let show = || String::from_utf8_lossy(path).into_owned();
    let f = match std::fs::File::open(OsStr::from_bytes(path)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("{}: {e}", show())),
    };
    let mut head = Vec::with_capacity(52);
    f.take(52)
        .read_to_end(&mut head)
        .map_err(|e| format!("{}: {e}", show()))?;
    let valid = head.len() == 52
        && head[..4] == elf::ELFMAG
        && head[6] == elf::EV_CURRENT
        && matches!(head[4], elf::ELFCLASS32 | elf::ELFCLASS64);
    Ok(valid && &head[18..20] == machine)
}

/// Apply `plan` to the file at `path` in place.
pub fn apply(path: &std::path::Path, plan: &Plan) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path)?;
    for (at, bytes) in &plan.writes {
        f.write_all_at(bytes, *at)?;
    }
    Ok(())
}
