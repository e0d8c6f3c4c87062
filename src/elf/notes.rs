//! The PT_NOTE walk: one rule, the one the note's reader applies, used by every part of ldnote
//! that looks for, writes or checks notes (`show`, `check`, `patch`, `explain`, the in-place
//! embedder and the append fallback).
//!
//! The rule is the note-aware loader's (`ldcache_note_desc` in `loader/glibc-2.36-ldcache.patch`,
//! and the audit module's walk in `audit/src/parse.rs`): note by note from the segment's start,
//! each step glibc's `ELF_NOTE_NEXT_OFFSET (n_namesz, n_descsz, align)` (glibc 2.36
//! `include/elf.h`: the descriptor at `ALIGN_UP (sizeof (Nhdr) + n_namesz, align)`, the next
//! note at `ALIGN_UP (desc + n_descsz, align)`), as glibc 2.36's own walk
//! `_dl_process_pt_gnu_property` (`elf/dl-load.c`) steps. The alignment is the segment's
//! `p_align`, taken as 4 when it is below 4 (linkers write 0 or 1 for a PT_NOTE of 4-aligned
//! notes) and as it is above. glibc's property walk instead skips a segment whose `p_align` is
//! not the class's word size (it only looks for `NT_GNU_PROPERTY_TYPE_0`, 8-aligned in 64-bit
//! objects); the resolution note's reader walks every mapped PT_NOTE.
//! A note is read only while its 12-byte header lies in the segment; the walk ends at the first
//! step that does not move forward or cannot be computed.

use object::Endianness;

use object::Endian as _;

/// The alignment a walk of a PT_NOTE with this `p_align` steps with.
pub fn walk_align(p_align: u64) -> u64 {
    p_align.max(4)
}

/// One note header the walk meets. Offsets are relative to the segment's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawNote {
    /// Offset of the 12-byte header.
    pub at: u64,
    /// `n_namesz`.
    pub namesz: u32,
    /// `n_descsz`.
    pub descsz: u32,
    /// `n_type`.
    pub n_type: u32,
    /// Offset of the descriptor (`None` when the alignment makes it uncomputable).
    pub desc_at: Option<u64>,
    /// Whether the descriptor lies inside the segment (the loader refuses a note otherwise).
    pub in_bounds: bool,
}

impl RawNote {
    /// Whether the note's owner is `name` (NUL-terminated, inside the segment), as the loader
    /// compares it: `n_namesz` is the name's length plus its NUL.
    pub fn owner_is(&self, segment: &[u8], name: &[u8]) -> bool {
        let start = self.at + 12;
        u64::from(self.namesz) == name.len() as u64 + 1
            && usize::try_from(start).ok().is_some_and(|s| {
                segment
                    .get(s..s + name.len() + 1)
                    .is_some_and(|n| &n[..name.len()] == name && n[name.len()] == 0)
            })
    }

    /// The header is all zero bytes: no tool writes that (readelf shows `(NONE)`), it is the
    /// trace of bytes where a note should be that were never written.
    pub fn is_zeroed(&self) -> bool {
        self.namesz == 0 && self.descsz == 0 && self.n_type == 0
    }
}

/// The walk over one PT_NOTE segment's bytes.
#[derive(Clone, Debug)]
pub struct Notes<'a> {
    bytes: &'a [u8],
    align: u64,
    endian: Endianness,
    pos: Option<u64>,
}

/// Walk `segment` (the bytes of a PT_NOTE) with its `p_align`, in the file's byte order.
pub fn walk(segment: &[u8], p_align: u64, endian: Endianness) -> Notes<'_> {
    Notes {
        bytes: segment,
        align: walk_align(p_align),
        endian,
        pos: Some(0),
    }
}

impl Notes<'_> {
    fn u32_at(&self, at: u64) -> Option<u32> {
        let at = usize::try_from(at).ok()?;
        let b: [u8; 4] = self.bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(self.endian.read_u32_bytes(b))
    }

    /// `ALIGN_UP (v, align)`, by division so that a bogus `p_align` (up to 2^64-1, not a power
    /// of two) ends the walk instead of overflowing.
    fn up(&self, v: u64) -> Option<u64> {
        v.div_ceil(self.align).checked_mul(self.align)
    }
}

impl Iterator for Notes<'_> {
    type Item = RawNote;

    fn next(&mut self) -> Option<RawNote> {
        let pos = self.pos?;
        let len = self.bytes.len() as u64;
        if pos.checked_add(12).is_none_or(|end| end > len) {
            self.pos = None;
            return None;
        }
        let (Some(namesz), Some(descsz), Some(n_type)) =
            (self.u32_at(pos), self.u32_at(pos + 4), self.u32_at(pos + 8))
        else {
            self.pos = None;
            return None;
        };
        let desc_at = self.up(pos + 12 + u64::from(namesz));
        let desc_end = desc_at.and_then(|d| d.checked_add(u64::from(descsz)));
        let next = desc_end.and_then(|e| self.up(e));
        self.pos = next.filter(|n| *n > pos);
        Some(RawNote {
            at: pos,
            namesz,
            descsz,
            n_type,
            desc_at,
            in_bounds: desc_end.is_some_and(|e| e <= len),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::{NOTE_NAME, NOTE_TYPE};

    /// Lay out notes the way a writer aligning to `step` does.
    fn layout(step: usize, notes: &[(&[u8], usize, u32)], be: bool) -> Vec<u8> {
        let word = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
        let mut out = Vec::new();
        for (name, descsz, ty) in notes {
            out.extend(word(name.len() as u32));
            out.extend(word(*descsz as u32));
            out.extend(word(*ty));
            out.extend(*name);
            out.resize(out.len().div_ceil(step) * step, 0);
            out.extend(std::iter::repeat_n(0xd5, *descsz));
            out.resize(out.len().div_ceil(step) * step, 0);
        }
        out
    }

    /// The loader's rule, pinned by hand-computed offsets. Two notes with odd sizes: owner
    /// `GNU\0` (4) with a 3-byte descriptor, then `NixOS\0` (6) with a 7-byte one. Columns:
    /// p_align, the step the writer used, the header offsets the walk visits, the offset at
    /// which it reads the resolution note's descriptor (None: the walk does not find it).
    #[test]
    fn the_walk_steps_like_the_loader_for_every_alignment() {
        #[rustfmt::skip]
        let table: &[(u64, usize, &[u64], Option<u64>)] = &[
            // Below 4 counts as 4 (linkers write 0 or 1 for 4-aligned notes).
            (0, 4, &[0, 20], Some(40)),
            (1, 4, &[0, 20], Some(40)),
            (2, 4, &[0, 20], Some(40)),
            (3, 4, &[0, 20], Some(40)),
            (4, 4, &[0, 20], Some(40)),
            // 8: name and descriptor padded to 8 (gABI for 64-bit objects).
            (8, 8, &[0, 24], Some(48)),
            // Above 8 the segment's p_align is used as it is.
            (16, 16, &[0, 32], Some(64)),
            // 4-aligned notes under an 8-aligned PT_NOTE (mold merges notes so): the second
            // header is read 4 bytes late and the resolution note is not found.
            (8, 4, &[0, 24], None),
        ];
        let notes: &[(&[u8], usize, u32)] = &[(b"GNU\0", 3, 1), (b"NixOS\0", 7, NOTE_TYPE)];
        for be in [false, true] {
            let endian = if be {
                Endianness::Big
            } else {
                Endianness::Little
            };
            for &(p_align, step, visits, desc) in table {
                let seg = layout(step, notes, be);
                let walked: Vec<RawNote> = walk(&seg, p_align, endian).collect();
                let at: Vec<u64> = walked.iter().map(|n| n.at).collect();
                assert_eq!(at, visits, "p_align {p_align}, step {step}, be {be}");
                let found = walked
                    .iter()
                    .find(|n| n.n_type == NOTE_TYPE && n.owner_is(&seg, NOTE_NAME))
                    .and_then(|n| n.desc_at);
                assert_eq!(found, desc, "p_align {p_align}, step {step}, be {be}");
            }
        }
    }

    #[test]
    fn a_descriptor_past_the_segment_is_out_of_bounds_and_ends_the_walk() {
        let mut seg = layout(4, &[(b"NixOS\0", 7, NOTE_TYPE)], false);
        seg.truncate(seg.len() - 4);
        let walked: Vec<RawNote> = walk(&seg, 4, Endianness::Little).collect();
        assert_eq!(walked.len(), 1);
        assert!(!walked[0].in_bounds);
        assert_eq!(walked[0].desc_at, Some(20));
    }

    #[test]
    fn bogus_alignments_end_the_walk() {
        let seg = layout(4, &[(b"GNU\0", 3, 1), (b"NixOS\0", 7, NOTE_TYPE)], false);
        for align in [u64::MAX, 1 << 63, (1 << 63) + 1] {
            let walked: Vec<RawNote> = walk(&seg, align, Endianness::Little).collect();
            assert!(walked.len() <= 1, "{align:#x}: {walked:?}");
        }
    }

    #[test]
    fn a_zeroed_header_is_seen() {
        let seg = vec![0u8; 24];
        let walked: Vec<RawNote> = walk(&seg, 4, Endianness::Little).collect();
        assert!(walked[0].is_zeroed());
        assert!(!walked[0].owner_is(&seg, NOTE_NAME));
    }
}
