//! Reading what resolution and embedding need from a linked ELF: header facts, DT_NEEDED,
//! DT_RUNPATH/DT_RPATH (through PT_DYNAMIC, as the loader does), the PT_NOTE segments and the
//! resolution note found by the loader's walk ([`notes`]), and the `.note.nixos.ldcache` section if any.

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::{Endian, Endianness, FileKind, ReadRef};

use crate::note::{NOTE_NAME, NOTE_TYPE, SECTION_NAME};
use crate::target::Ident;

pub mod dynamic;
use crate::header::byte_order;
pub mod notes;

use dynamic::{DynEntry, Load};

/// Why an output cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// Not an ELF file at all.
    #[error("not an ELF file")]
    NotElf,
    /// The ELF structures are inconsistent or cut off.
    #[error("malformed ELF: {0}")]
    Malformed(String),
}

impl From<object::read::Error> for ElfError {
    fn from(e: object::read::Error) -> Self {
        ElfError::Malformed(e.to_string())
    }
}

/// A PT_NOTE segment as the loader sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NoteSegment {
    /// Index in the program header table.
    pub index: usize,
    /// File offset.
    pub offset: u64,
    /// Size in the file.
    pub filesz: u64,
    /// `p_align` (the walk steps with [`notes::walk_align`] of it).
    pub align: u64,
    /// Whether some PT_LOAD maps it (the loader only sees mapped notes).
    pub loaded: bool,
}

/// A resolution note found by the PT_NOTE walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundNote {
    /// `n_type`: [`NOTE_TYPE`] for a live note; other types (ldnote's placeholder) are inert.
    pub n_type: u32,
    /// Which PT_NOTE segment.
    pub segment: usize,
    /// File offset of the note header.
    pub offset: u64,
    /// File offset and length of the descriptor.
    pub desc: (u64, u64),
    /// Whether the note's descriptor lies inside the segment (the loader checks it).
    pub in_bounds: bool,
}

/// A section header's placement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionPlace {
    /// Section index.
    pub index: usize,
    /// File offset.
    pub offset: u64,
    /// Size.
    pub size: u64,
    /// Offset of the section header in the file (for in-place edits).
    pub header_offset: u64,
}

/// Everything ldnote needs to know about one linked object.
#[derive(Clone, Debug, Default)]
pub struct ElfInfo {
    /// Header facts.
    pub ident: Ident,
    /// `e_type`.
    pub e_type: u16,
    /// Has a PT_DYNAMIC (dynamically linked).
    pub dynamic: bool,
    /// DT_NEEDED in order.
    pub needed: Vec<Vec<u8>>,
    /// DT_RUNPATH.
    pub runpath: Option<Vec<u8>>,
    /// DT_RPATH.
    pub rpath: Option<Vec<u8>>,
    /// DT_SONAME (absent when its string cannot be read: only `explain` uses it).
    pub soname: Option<Vec<u8>>,
    /// DT_FLAGS_1.
    pub flags_1: u64,
    /// PT_INTERP without its NUL (absent when it cannot be read).
    pub interp: Option<Vec<u8>>,
    /// PT_NOTE segments.
    pub note_segments: Vec<NoteSegment>,
    /// Notes owned by `NixOS` found by the walk, in order, of any type (the loader uses the
    /// first with [`NOTE_TYPE`]; see [`ElfInfo::live_note`]).
    pub notes: Vec<FoundNote>,
    /// The `.note.nixos.ldcache` section, if present.
    pub note_section: Option<SectionPlace>,
    /// Its `sh_name` (offset in `.shstrtab`).
    pub note_section_name: Option<u32>,
    /// File offset of the run-path string in use (DT_RUNPATH's, else DT_RPATH's).
    pub run_path_string: Option<u64>,
    /// File offset of the DT_RPATH entry's tag, when the object has DT_RPATH and no DT_RUNPATH.
    pub rpath_tag: Option<u64>,
    /// An unused ldnote reservation whose section was renamed `.ldcache` (see `embed`), with
    /// its `sh_name`: filling it later renames it back.
    pub renamed_section: Option<(SectionPlace, u32)>,
    /// The file has section headers (patchelf finds the note by its section's name).
    pub has_sections: bool,
}

impl ElfInfo {
    /// The note the loader would use: the first `NixOS` note of the right type.
    pub fn live_note(&self) -> Option<&FoundNote> {
        self.notes.iter().find(|n| n.n_type == NOTE_TYPE)
    }

    /// DT_FLAGS_1 has DF_1_NODEFLIB: the loader skips its cache and default directories.
    pub fn nodeflib(&self) -> bool {
        self.flags_1 & u64::from(elf::DF_1_NODEFLIB) != 0
    }

    /// The run path the loader (and patchelf) use: DT_RUNPATH, else DT_RPATH.
    pub fn search_path(&self) -> Option<&[u8]> {
        self.runpath
            .as_deref()
            .or(self.rpath.as_deref())
            .filter(|p| !p.is_empty())
    }
}

/// Parse `data`: a byte slice, or a `&object::ReadCache<File>` so that only the headers, the
/// dynamic segment, its string table and the note segments are read, whatever the file's size.
pub fn read<'data, R: ReadRef<'data>>(data: R) -> Result<ElfInfo, ElfError> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf32) => read_as::<elf::FileHeader32<Endianness>, R>(data),
        Ok(FileKind::Elf64) => read_as::<elf::FileHeader64<Endianness>, R>(data),
        Ok(_) | Err(_) if data.read_bytes_at(0, 4).is_ok_and(|m| m == elf::ELFMAG) => Err(
            ElfError::Malformed("unsupported or truncated ELF header".into()),
        ),
        _ => Err(ElfError::NotElf),
    }
}

fn read_as<'data, H: FileHeader<Endian = Endianness>, R: ReadRef<'data>>(
    data: R,
) -> Result<ElfInfo, ElfError> {
    let hdr = H::parse(data)?;
    let endian = hdr.endian()?;
    let ident = Ident {
        is_64: hdr.is_class_64(),
        big_endian: endian.is_big_endian(),
        machine: hdr.e_machine(endian),
        e_flags: hdr.e_flags(endian),
        osabi: hdr.e_ident().os_abi,
    };
    let phdrs = hdr.program_headers(endian, data)?;
    let to_u64 = |v: H::Word| -> u64 { v.into() };
    let loads: Vec<Load> = phdrs
        .iter()
        .filter(|p| p.p_type(endian) == elf::PT_LOAD)
        .map(|l| Load {
            vaddr: to_u64(l.p_vaddr(endian)),
            offset: to_u64(l.p_offset(endian)),
            filesz: to_u64(l.p_filesz(endian)),
        })
        .collect();

    let mut info = ElfInfo {
        ident,
        e_type: hdr.e_type(endian),
        ..ElfInfo::default()
    };

    let mut dynamic_range = None;
    for (index, ph) in phdrs.iter().enumerate() {
        match ph.p_type(endian) {
            elf::PT_DYNAMIC => {
                info.dynamic = true;
                let (offset, size) = (to_u64(ph.p_offset(endian)), to_u64(ph.p_filesz(endian)));
                dynamic_range.get_or_insert((offset, size));
                let bytes = data.read_bytes_at(offset, size).map_err(|()| {
                    ElfError::Malformed("the dynamic segment lies outside the file".into())
                })?;
                if size % dynamic::entry_size(hdr.is_type_64()) != 0 {
                    return Err(ElfError::Malformed(
                        "Invalid ELF dynamic segment size".into(),
                    ));
                }
                let entries = dynamic::entries(bytes, offset, hdr.is_type_64(), endian);
                read_dynamic(&entries, data, &loads, &mut info)?;
            }
            elf::PT_INTERP => {
                info.interp = ph
                    .data(endian, data)
                    .ok()
                    .map(|b| b.iter().take_while(|c| **c != 0).copied().collect());
            }
            elf::PT_NOTE => {
                let seg = NoteSegment {
                    index,
                    offset: to_u64(ph.p_offset(endian)),
                    filesz: to_u64(ph.p_filesz(endian)),
                    align: to_u64(ph.p_align(endian)),
                    loaded: dynamic::is_mapped(
                        loads.iter().copied(),
                        to_u64(ph.p_offset(endian)),
                        to_u64(ph.p_filesz(endian)),
                    ),
                };
                walk_notes(data, &seg, endian.is_big_endian(), &mut info.notes);
                info.note_segments.push(seg);
            }
            _ => {}
        }
    }

    // The section is only needed for patchelf compatibility and in-place filling; outputs
    // without section headers are still fine.
    if let Ok(sections) = hdr.sections(endian, data) {
        // Names are compared in place (the wanted bytes, then a NUL), never searched for their
        // end: `object`'s string table finds it with `memchr`, whose first call detects the
        // CPU's features (`cpuid`, a trap to the hypervisor in a VM: about 9 us of every link).
        let names = hdr
            .shstrndx(endian, data)
            .ok()
            .and_then(|i| sections.section(object::SectionIndex(i as usize)).ok())
            .map(|t| (to_u64(t.sh_offset(endian)), to_u64(t.sh_size(endian))));
        let name_is = |off: u32, want: &[u8]| {
            let Some((at, size)) = names else {
                return false;
            };
            let len = want.len() as u64 + 1;
            u64::from(off)
                .checked_add(len)
                .is_some_and(|end| end <= size)
                && data
                    .read_bytes_at(at.saturating_add(u64::from(off)), len)
                    .is_ok_and(|b| b[..want.len()] == *want && b[want.len()] == 0)
        };
        info.has_sections = !sections.is_empty();
        let shoff: u64 = to_u64(hdr.e_shoff(endian));
        let entsize = u64::from(hdr.e_shentsize(endian));
        for (index, sh) in sections.iter().enumerate() {
            let place = SectionPlace {
                index,
                offset: to_u64(sh.sh_offset(endian)),
                size: to_u64(sh.sh_size(endian)),
                header_offset: shoff.saturating_add(entsize.saturating_mul(index as u64)),
            };
            let name = sh.sh_name(endian);
            if name_is(name, SECTION_NAME) {
                // Tools find the note by this name (patchelf, strip keeping it, our own
                // in-place fill); two sections of that name leave it ambiguous which one
                // holds the note, and hiding one would expose the other. No linker or tool
                // makes that: refused, like the other inconsistencies below.
                if let Some(first) = info.note_section {
                    return Err(ElfError::Malformed(format!(
                        "two `{}` sections (headers {} and {index})",
                        String::from_utf8_lossy(SECTION_NAME),
                        first.index
                    )));
                }
                info.note_section = Some(place);
                info.note_section_name = Some(name);
            } else if sh.sh_type(endian) == elf::SHT_NOTE
                && name_is(name, b".ldcache")
                && name
                    .checked_sub(11)
                    .is_some_and(|o| name_is(o, SECTION_NAME))
            {
                // Only ldnote's own rename: the name is the tail of `.note.nixos.ldcache`.
                info.renamed_section = Some((place, name));
            }
        }
    }
    let len = data
        .len()
        .map_err(|()| ElfError::Malformed("cannot read the file size".into()))?;
    consistent(&info, dynamic_range, len)?;
    Ok(info)
}

/// Refuse what no linker produces and what would make an edit unsafe: a PT_NOTE outside the
/// file or overlapping PT_DYNAMIC, a resolution note whose sizes are bogus, a
/// `.note.nixos.ldcache` section the loader's walk does not reach.
fn consistent(info: &ElfInfo, dynamic: Option<(u64, u64)>, len: u64) -> Result<(), ElfError> {
    let bad = |m: String| Err(ElfError::Malformed(m));
    for s in &info.note_segments {
        let end = s.offset.checked_add(s.filesz);
        if end.is_none_or(|e| e > len) {
            return bad(format!(
                "PT_NOTE segment {} (offset {:#x}, size {:#x}) lies outside the file",
                s.index, s.offset, s.filesz
            ));
        }
        if let Some((o, n)) = dynamic {
            let overlaps =
                s.filesz > 0 && n > 0 && s.offset < o.saturating_add(n) && o < s.offset + s.filesz;
            if overlaps {
                return bad(format!("PT_NOTE segment {} overlaps PT_DYNAMIC", s.index));
            }
        }
    }
    for n in &info.notes {
        // An inert NixOS note that a walk in steps of 8 reads past its segment's end is the
        // reservation itself, read 4 bytes late (mold, where that walk arrives at its start):
        // the loader's walk ends there, and the fill rewrites it.
        let eight = info
            .note_segments
            .iter()
            .any(|s| s.index == n.segment && notes::walk_align(s.align) > 4);
        if !n.in_bounds && (n.n_type == NOTE_TYPE || !eight) {
            return bad(format!(
                "the NixOS note at {:#x} has n_descsz {:#x}, past the end of its PT_NOTE segment",
                n.offset, n.desc.1
            ));
        }
        if n.n_type == NOTE_TYPE && n.desc.1 <= 2 {
            return bad(format!(
                "the resolution note at {:#x} has n_descsz {} (the loader needs more than 2)",
                n.offset, n.desc.1
            ));
        }
    }
    let section = info.note_section.or(info.renamed_section.map(|r| r.0));
    if let Some(sec) = section {
        // Only in a 4-aligned PT_NOTE must the walk land on every 4-aligned note; in an
        // 8-aligned one (mold) missing it is the documented layout problem, not corruption.
        let in_segment = info.note_segments.iter().any(|s| {
            s.align <= 4
                && s.offset <= sec.offset
                && sec.offset.saturating_add(sec.size) <= s.offset + s.filesz
        });
        if in_segment && sec.size > 0 && !info.notes.iter().any(|n| n.offset == sec.offset) {
            return bad(format!(
                "the PT_NOTE walk does not reach the note section at {:#x} (a note before or in it has bogus sizes)",
                sec.offset
            ));
        }
    }
    Ok(())
}

/// The dynamic facts from PT_DYNAMIC's entries: the loader reads the strings through
/// DT_STRTAB's address (mapped by a PT_LOAD), bounded by DT_STRSZ.
fn read_dynamic<'data, R: ReadRef<'data>>(
    entries: &[DynEntry],
    data: R,
    loads: &[Load],
    info: &mut ElfInfo,
) -> Result<(), ElfError> {
    let (Some(addr), Some(size)) = (
        dynamic::value(entries, elf::DT_STRTAB),
        dynamic::value(entries, elf::DT_STRSZ),
    ) else {
        return Err(ElfError::Malformed(
            "dynamic section without DT_STRTAB/DT_STRSZ".into(),
        ));
    };
    let off = dynamic::addr_to_offset(loads.iter().copied(), addr)
        .ok_or_else(|| ElfError::Malformed("DT_STRTAB is not mapped".into()))?;
    let table = data
        .read_bytes_at(off, size)
        .map_err(|()| ElfError::Malformed("DT_STRTAB outside the file".into()))?;
    let string = |v: u64| -> Result<Vec<u8>, ElfError> {
        dynamic::string_at(table, v)
            .map(<[u8]>::to_vec)
            .map_err(|m| ElfError::Malformed(m.into()))
    };
    let mut rpath_at = None;
    for e in entries {
        match u32::try_from(e.tag).unwrap_or(u32::MAX) {
            elf::DT_NEEDED => info.needed.push(string(e.val)?),
            elf::DT_RUNPATH => {
                info.runpath = Some(string(e.val)?);
                info.run_path_string = Some(off.saturating_add(e.val));
            }
            elf::DT_RPATH => {
                info.rpath = Some(string(e.val)?);
                rpath_at = Some((e.at, off.saturating_add(e.val)));
            }
            elf::DT_SONAME => info.soname = string(e.val).ok(),
            elf::DT_FLAGS_1 => info.flags_1 = e.val,
            _ => {}
        }
    }
    if info.runpath.is_none() {
        if let Some((tag_at, string_at)) = rpath_at {
            info.rpath_tag = Some(tag_at);
            info.run_path_string = Some(string_at);
        }
    }
    Ok(())
}

/// Record the resolution notes of one PT_NOTE segment, read from `data`.
fn walk_notes<'data, R: ReadRef<'data>>(
    data: R,
    seg: &NoteSegment,
    be: bool,
    out: &mut Vec<FoundNote>,
) {
    let Ok(bytes) = data.read_bytes_at(seg.offset, seg.filesz) else {
        return;
    };
    walk_segment(bytes, seg, be, out);
}

/// Walk the bytes of one PT_NOTE segment with the loader's rule ([`notes::walk`]) and record
/// every `NixOS` note, of any type; exposed so that a planned in-place edit can be checked
/// before it is written.
pub fn walk_segment(bytes: &[u8], seg: &NoteSegment, be: bool, out: &mut Vec<FoundNote>) {
    for n in notes::walk(bytes, seg.align, byte_order(be)) {
        if !n.owner_is(bytes, NOTE_NAME) {
            continue;
        }
        let (Some(at), Some(desc_at)) = (
            seg.offset.checked_add(n.at),
            n.desc_at.and_then(|d| seg.offset.checked_add(d)),
        ) else {
            return;
        };
        out.push(FoundNote {
            n_type: n.n_type,
            segment: seg.index,
            offset: at,
            desc: (desc_at, u64::from(n.descsz)),
            in_bounds: n.in_bounds,
        });
    }
}

/// The descriptor bytes of a found note (empty when out of bounds).
pub fn note_desc<'data, R: ReadRef<'data>>(data: R, n: &FoundNote) -> &'data [u8] {
    data.read_bytes_at(n.desc.0, n.desc.1).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{encode_note, Layout};

    #[test]
    fn bogus_alignment_and_offsets_end_the_walk() {
        let l = Layout {
            big_endian: false,
            is_64: true,
        };
        let mut bytes = encode_note(b"a\0=b\0\0", l);
        bytes.extend(encode_note(b"c\0=d\0\0", l));
        for (offset, align) in [
            (0, u64::MAX),
            (0, 1 << 63),
            (0, (1 << 63) + 1),
            (u64::MAX - 8, 4),
        ] {
            let seg = NoteSegment {
                index: 0,
                offset,
                filesz: bytes.len() as u64,
                align,
                loaded: true,
            };
            let mut out = Vec::new();
            walk_segment(&bytes, &seg, false, &mut out);
            assert!(out.len() <= 1, "{offset:#x}/{align:#x}: {out:?}");
        }
    }
}
