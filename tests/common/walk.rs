//! A PT_NOTE walker that is independent of ldnote's own reader.
//!
//! It deliberately re-implements what the patched glibc loader does (walk every PT_NOTE segment
//! note by note with the segment's `p_align`, minimum 4, as `_dl_process_pt_gnu_property` does)
//! on top of `object`'s raw program-header structs only, so a bug in `src/elf.rs` cannot hide
//! itself by being used on both sides of an assertion.
use std::path::Path;

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::Endianness;

use super::{NOTE_NAME, NOTE_TYPE};

/// One note of a PT_NOTE segment, as the loader's walk sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalkedNote {
    pub name: Vec<u8>,
    pub n_type: u32,
    pub desc: Vec<u8>,
    /// `p_align` of the segment the note was found in.
    pub segment_align: u64,
    /// Whether a PT_LOAD maps the whole PT_NOTE segment (the loader only sees mapped notes).
    pub loaded: bool,
}

/// Why the walker could not read a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalkError {
    NotElf,
    Malformed(String),
}

fn align_up(v: u64, a: u64) -> u64 {
    v.div_ceil(a) * a
}

/// Walk every PT_NOTE segment of an ELF file like the patched glibc loader: note by note, name
/// and descriptor padded to `max(p_align, 4)`, the descriptor offset being
/// `ALIGN_UP(sizeof(Nhdr) + namesz, align)` (glibc's `ELF_NOTE_DESC_OFFSET`).
pub fn walk_notes(data: &[u8]) -> Result<Vec<WalkedNote>, WalkError> {
    match object::FileKind::parse(data) {
        Ok(object::FileKind::Elf32) => walk_generic::<elf::FileHeader32<Endianness>>(data),
        Ok(object::FileKind::Elf64) => walk_generic::<elf::FileHeader64<Endianness>>(data),
        _ => Err(WalkError::NotElf),
    }
}

fn walk_generic<H: FileHeader<Endian = Endianness>>(
    data: &[u8],
) -> Result<Vec<WalkedNote>, WalkError> {
    let hdr = H::parse(data).map_err(|e| WalkError::Malformed(e.to_string()))?;
    let endian = hdr
        .endian()
        .map_err(|e| WalkError::Malformed(e.to_string()))?;
    let phdrs = hdr
        .program_headers(endian, data)
        .map_err(|e| WalkError::Malformed(e.to_string()))?;
    let loads: Vec<(u64, u64, u64)> = phdrs
        .iter()
        .filter(|p| p.p_type(endian) == elf::PT_LOAD)
        .map(|p| {
            (
                p.p_offset(endian).into(),
                p.p_vaddr(endian).into(),
                p.p_filesz(endian).into(),
            )
        })
        .collect();
    let u32_at = |b: &[u8], o: usize| -> u32 {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if endian == Endianness::Big {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }
    };
    let mut out = vec![];
    for ph in phdrs.iter().filter(|p| p.p_type(endian) == elf::PT_NOTE) {
        let off: u64 = ph.p_offset(endian).into();
        let size: u64 = ph.p_filesz(endian).into();
        let vaddr: u64 = ph.p_vaddr(endian).into();
        let p_align: u64 = ph.p_align(endian).into();
        let align = p_align.max(4);
        let end = off
            .checked_add(size)
            .filter(|&e| e <= data.len() as u64)
            .ok_or_else(|| {
                WalkError::Malformed(format!("PT_NOTE at {off:#x}+{size:#x} beyond EOF"))
            })?;
        let seg = &data[off as usize..end as usize];
        let loaded = loads
            .iter()
            .any(|&(lo, lv, lf)| off >= lo && end <= lo + lf && vaddr.wrapping_sub(lv) == off - lo);
        let mut pos: u64 = 0;
        while pos + 12 <= size {
            let namesz = u64::from(u32_at(seg, pos as usize));
            let descsz = u64::from(u32_at(seg, pos as usize + 4));
            let n_type = u32_at(seg, pos as usize + 8);
            let name_end = pos + 12 + namesz;
            let desc_off = pos + align_up(12 + namesz, align);
            let desc_end = desc_off + descsz;
            if name_end > size || desc_end > size {
                // The loader stops at a note that runs past its segment.
                break;
            }
            out.push(WalkedNote {
                name: seg[(pos + 12) as usize..name_end as usize].to_vec(),
                n_type,
                desc: seg[desc_off as usize..desc_end as usize].to_vec(),
                segment_align: p_align,
                loaded,
            });
            pos = desc_off + align_up(descsz, align);
        }
    }
    Ok(out)
}

/// The resolution note as the loader finds it: the first `NixOS` note of type [`NOTE_TYPE`]
/// reachable by the walk. Panics if the file cannot be read, or if the note is not mapped.
pub fn find_note(path: &Path) -> Option<WalkedNote> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let notes = walk_notes(&data).unwrap_or_else(|e| panic!("walk {}: {e:?}", path.display()));
    let n = notes
        .into_iter()
        .find(|n| n.name == NOTE_NAME && n.n_type == NOTE_TYPE)?;
    assert!(
        n.loaded,
        "{}: resolution note in a PT_NOTE no PT_LOAD maps",
        path.display()
    );
    Some(n)
}

/// The descriptor the loader would use, or None when there is no note.
pub fn note_desc(path: &Path) -> Option<Vec<u8>> {
    find_note(path).map(|n| n.desc)
}
