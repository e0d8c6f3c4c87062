//! Whole-file checks for `ldnote check`: a file whose resolution note is right can still be
//! damaged elsewhere by a writer that raced the note step (a linker still writing when the file
//! was replaced leaves its last writes, such as the build-id, in the orphaned inode; a truncated
//! rewrite cuts off the section headers). These are the damages such races leave, read from the
//! headers and the PT_NOTE segments only.
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader};
use object::{Endianness, FileKind, ReadRef};

use crate::elf::notes;

/// Everything wrong with the file's layout and notes, one message each (empty when sound).
pub fn problems<'data, R: ReadRef<'data>>(data: R) -> Vec<String> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf32) => problems_as::<elf::FileHeader32<Endianness>, R>(data),
        Ok(FileKind::Elf64) => problems_as::<elf::FileHeader64<Endianness>, R>(data),
        _ => vec!["not a readable ELF file".into()],
    }
}

fn problems_as<'data, H: FileHeader<Endian = Endianness>, R: ReadRef<'data>>(
    data: R,
) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(len) = data.len() else {
        return vec!["cannot read the file size".into()];
    };
    let Ok(hdr) = H::parse(data) else {
        return vec!["truncated ELF header".into()];
    };
    let Ok(endian) = hdr.endian() else {
        return vec!["bad byte order".into()];
    };
    let shoff: u64 = hdr.e_shoff(endian).into();
    let shsize = u64::from(hdr.e_shnum(endian)) * u64::from(hdr.e_shentsize(endian));
    if shoff != 0 && shoff.checked_add(shsize).is_none_or(|e| e > len) {
        out.push(format!(
            "the section header table ({shsize} bytes at {shoff:#x}) lies past the end of the \
             file ({len} bytes): the file is truncated"
        ));
    }
    let Ok(phdrs) = hdr.program_headers(endian, data) else {
        out.push("the program header table lies outside the file".into());
        return out;
    };
    for (i, p) in phdrs.iter().enumerate() {
        let off: u64 = p.p_offset(endian).into();
        let size: u64 = p.p_filesz(endian).into();
        if p.p_type(endian) == elf::PT_LOAD && off.checked_add(size).is_none_or(|e| e > len) {
            out.push(format!(
                "PT_LOAD {i} ({size:#x} bytes at {off:#x}) lies past the end of the file \
                 ({len} bytes): the file is truncated"
            ));
        }
        if p.p_type(endian) != elf::PT_NOTE {
            continue;
        }
        let Ok(bytes) = data.read_bytes_at(off, size) else {
            out.push(format!("PT_NOTE {i} lies outside the file"));
            continue;
        };
        let align: u64 = p.p_align(endian).into();
        // mold merges 4-aligned notes into one 8-aligned PT_NOTE, which the loader's walk
        // misreads: a segment is damaged only when a walk over 4-aligned notes fails too.
        if let Err(m) = note_segment(bytes, align, endian) {
            if notes::walk_align(align) <= 4 || note_segment(bytes, 4, endian).is_err() {
                out.push(format!("PT_NOTE {i} (at {off:#x}): {m}"));
            }
        }
    }
    out
}

/// Walk every note of one PT_NOTE segment with the loader's rule ([`notes::walk`]). A note
/// with an all-zero header is not something any tool writes: it is zeroed bytes where a note
/// should be (readelf shows `(NONE)`), the trace of a note written into a file that had been
/// replaced; a note running past the segment is malformed.
fn note_segment(bytes: &[u8], p_align: u64, endian: Endianness) -> Result<(), String> {
    for n in notes::walk(bytes, p_align, endian) {
        if n.is_zeroed() {
            return Err(format!(
                "an all-zero note at offset {:#x} of the segment (bytes that were never written)",
                n.at
            ));
        }
        if !n.in_bounds {
            return Err(format!(
                "the note at offset {:#x} of the segment runs past its end",
                n.at
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], desc: &[u8], ty: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend((name.len() as u32).to_le_bytes());
        v.extend((desc.len() as u32).to_le_bytes());
        v.extend(ty.to_le_bytes());
        v.extend(name);
        v.resize(v.len().div_ceil(4) * 4, 0);
        v.extend(desc);
        v.resize(v.len().div_ceil(4) * 4, 0);
        v
    }

    #[test]
    fn a_zeroed_build_id_fails() {
        let mut seg = note(b"GNU\0", &[0x11; 20], 3);
        assert_eq!(note_segment(&seg, 4, Endianness::Little), Ok(()));
        seg.extend(note(b"GNU\0", &[1, 2, 3, 4], 1));
        assert_eq!(note_segment(&seg, 4, Endianness::Little), Ok(()));
        seg[..36].fill(0);
        assert!(note_segment(&seg, 4, Endianness::Little).is_err());
    }

    #[test]
    fn a_note_past_the_segment_fails() {
        let mut seg = note(b"GNU\0", &[0x11; 20], 3);
        seg[4] = 200;
        assert!(note_segment(&seg, 4, Endianness::Little).is_err());
    }
}
