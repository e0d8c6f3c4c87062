//! Embedding the note into a linked output.
//!
//! Primary path ([`plan_in_place`]): the output already holds a `.note.nixos.ldcache` region
//! (ldnote's reservation, placed by the linker, or an earlier note); the new note is written
//! into it with a couple of `pwrite`s whose *last* one is the 4-byte `n_type` that makes the note
//! live. Until that write the region holds an inert note, so the file is at every moment either
//! the linker's output (for the loader: no live note) or the complete noted file. The cost does
//! not depend on the output's size.
//!
//! Fallback ([`append`]): no region, or the note does not fit, or the loader's `p_align` walk
//! would not find it there (mold merges notes into one 8-aligned PT_NOTE): the file is rewritten
//! with a new segment, through a temporary file and a rename.
pub mod append;

use crate::elf::{walk_segment, ElfInfo, FoundNote, NoteSegment};
use crate::note::{note_bytes, NOTE_TYPE};
use crate::reserve::{FILLER_TYPE, PLACEHOLDER_TYPE};

/// One write at a file offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    /// File offset.
    pub offset: u64,
    /// Bytes.
    pub bytes: Vec<u8>,
}

/// What to do with an output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// The output already carries exactly this note.
    UpToDate,
    /// Nothing to record and no live note: leave the file alone.
    Nothing,
    /// Apply these writes in order (the last one makes the result live).
    InPlace(Vec<Write>),
    /// The note cannot go in place; rewrite the file with a new segment.
    Append(String),
}

/// Offset added to `sh_name` to turn `.note.nixos.ldcache` into `.ldcache`: an unused
/// reservation must not look like a note to patchelf, which finds notes by section name.
pub const RENAME_SKIP: u32 = 11;

fn u32_bytes(v: u32, be: bool) -> [u8; 4] {
    if be {
        v.to_be_bytes()
    } else {
        v.to_le_bytes()
    }
}

/// The region a note can be written into: the `.note.nixos.ldcache` section if there is one,
/// else the first `NixOS` note found by the walk (placeholder or live).
fn region(info: &ElfInfo) -> Option<(u64, u64)> {
    if let Some(s) = info.note_section {
        return Some((s.offset, s.size));
    }
    info.notes.first().map(|n: &FoundNote| {
        let end = n.desc.0 + n.desc.1.div_ceil(4) * 4;
        (n.offset, end - n.offset)
    })
}

/// Plan the in-place edit for `note` (a whole encoded note, or `None` when there is nothing to
/// record). `segment_bytes` returns the current bytes of a PT_NOTE segment, used to check that
/// the loader's walk will find the new note.
pub fn plan_in_place(
    info: &ElfInfo,
    note: Option<&[u8]>,
    current_desc: Option<&[u8]>,
    segment_bytes: &dyn Fn(&NoteSegment) -> Option<Vec<u8>>,
) -> Edit {
    let be = info.ident.big_endian;
    let live = info.live_note();
    let Some(note) = note else {
        let mut writes = Vec::new();
        if let Some(n) = live {
            // A stale note would send the loader to wrong files: make it inert.
            writes.push(Write {
                offset: n.offset + 8,
                bytes: u32_bytes(PLACEHOLDER_TYPE, be).to_vec(),
            });
        }
        if let Some(s) = info.note_section {
            writes.push(rename_write(info, s.header_offset));
        }
        return if writes.is_empty() {
            Edit::Nothing
        } else {
            Edit::InPlace(writes)
        };
    };
    if let (Some(_), Some(cur)) = (live, current_desc) {
        if note.get(20..).is_some_and(|d| d.starts_with(cur))
            && note.len() == crate::note::note_size(cur.len())
        {
            return Edit::UpToDate;
        }
    }
    let Some((offset, size)) = region(info) else {
        return Edit::Append("the output has no reserved note".into());
    };
    let need = note.len() as u64;
    if need > size {
        return Edit::Append(format!(
            "the reserved note holds {size} bytes, the note needs {need}"
        ));
    }
    let rem = size - need;
    if rem != 0 && rem < 12 {
        return Edit::Append(format!(
            "{rem} bytes would be left over, too few for a filler note"
        ));
    }
    let mut content = note.to_vec();
    if rem > 0 {
        content.extend(note_bytes(
            b"",
            FILLER_TYPE,
            &vec![0; rem as usize - 12],
            layout(info),
        ));
    }
    // Check with the final bytes that the loader's walk finds this note first.
    let Some(seg) = info
        .note_segments
        .iter()
        .find(|s| s.offset <= offset && offset + size <= s.offset + s.filesz)
    else {
        return Edit::Append("the reserved note is not inside a PT_NOTE segment".into());
    };
    if !seg.loaded {
        return Edit::Append(
            "the PT_NOTE holding the reserved note is not mapped by a PT_LOAD".into(),
        );
    }
    let Some(mut bytes) = segment_bytes(seg) else {
        return Edit::Append("cannot read the PT_NOTE segment".into());
    };
    let at = (offset - seg.offset) as usize;
    bytes[at..at + content.len()].copy_from_slice(&content);
    let mut found = Vec::new();
    walk_segment(&bytes, seg, be, &mut found);
    // Other live notes are made inert below, so ours only has to be found in its segment.
    let ours = found.iter().find(|n| n.n_type == NOTE_TYPE);
    if ours.is_none_or(|n| n.offset != offset || !n.in_bounds) {
        return Edit::Append(format!(
            "a loader walking the PT_NOTE with p_align {} would not find the note in place",
            seg.align
        ));
    }
    // Write everything with the inert type first; the 4-byte type write commits.
    let mut inert = content;
    inert[8..12].copy_from_slice(&u32_bytes(PLACEHOLDER_TYPE, be));
    let mut writes = vec![Write {
        offset,
        bytes: inert,
    }];
    // Other live notes in the same segment (a foreign input's) would shadow or contradict ours.
    for n in info
        .notes
        .iter()
        .filter(|n| n.n_type == NOTE_TYPE && (n.offset < offset || n.offset >= offset + size))
    {
        writes.push(Write {
            offset: n.offset + 8,
            bytes: u32_bytes(PLACEHOLDER_TYPE, be).to_vec(),
        });
    }
    writes.push(Write {
        offset: offset + 8,
        bytes: u32_bytes(NOTE_TYPE, be).to_vec(),
    });
    Edit::InPlace(writes)
}

fn layout(info: &ElfInfo) -> crate::note::Layout {
    crate::note::Layout {
        big_endian: info.ident.big_endian,
        is_64: info.ident.is_64,
    }
}

/// The `sh_name` edit that hides an unused `.note.nixos.ldcache` section from patchelf.
/// `sh_name` is the first word of a section header in both classes.
fn rename_write(info: &ElfInfo, header_offset: u64) -> Write {
    let name = info.note_section_name.unwrap_or(0) + RENAME_SKIP;
    Write {
        offset: header_offset,
        bytes: u32_bytes(name, info.ident.big_endian).to_vec(),
    }
}
