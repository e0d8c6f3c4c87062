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
mod apply;

pub use apply::{apply, apply_best_effort, in_one_write_when_atomic, neutralize};

use object::Endian as _;

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
    crate::header::byte_order(be).write_u32_bytes(v)
}

/// The region a note can be written into: the `.note.nixos.ldcache` section if there is one,
/// else the first `NixOS` note found by the walk (placeholder or live).
fn region(info: &ElfInfo) -> Option<(u64, u64)> {
    if let Some(s) = info.note_section {
        return Some((s.offset, s.size));
    }
    if let Some((s, _)) = info.renamed_section {
        return Some((s.offset, s.size));
    }
    info.notes.first().map(|n: &FoundNote| {
        let end = n.desc.0.saturating_add(n.desc.1.div_ceil(4) * 4);
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
        // A stale note would send the loader to wrong files: make it inert, and every other
        // live one too (the next would become the loader's).
        let mut writes: Vec<Write> = info
            .notes
            .iter()
            .filter(|n| n.n_type == NOTE_TYPE)
            .map(|n| Write {
                offset: n.offset + 8,
                bytes: u32_bytes(PLACEHOLDER_TYPE, be).to_vec(),
            })
            .collect();
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
    // patchelf finds the note by its section's name: a region that will not be named
    // `.note.nixos.ldcache` afterwards (a hidden reservation whose full name `strip` dropped
    // from .shstrtab) would get a second note from `patchelf --build-resolution-cache`.
    let named = info.note_section.is_some_and(|s| s.offset == offset)
        || info
            .renamed_section
            .is_some_and(|(s, _)| s.offset == offset);
    if info.has_sections && !named {
        return Edit::Append(
            "the reserved note has no `.note.nixos.ldcache` section name to restore".into(),
        );
    }
    if size % 4 != 0 || offset % 4 != 0 {
        return Edit::Append(format!(
            "the reserved note ({size} bytes at {offset:#x}) is not 4-byte aligned"
        ));
    }
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
    // The region must lie inside a PT_NOTE segment whose bytes can be read, before anything of
    // its (untrusted) size is allocated.
    let Some(seg) = info.note_segments.iter().find(|s| {
        s.offset <= offset
            && offset
                .checked_add(size)
                .is_some_and(|end| s.offset.checked_add(s.filesz).is_some_and(|e| end <= e))
    }) else {
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
    let at = usize::try_from(offset - seg.offset).unwrap_or(usize::MAX);
    if bytes.get(at..at.saturating_add(size as usize)).is_none() {
        return Edit::Append("cannot read the PT_NOTE segment".into());
    }
    let mut content = Vec::with_capacity(size as usize);
    content.extend_from_slice(note);
    if rem > 0 {
        content.extend(note_bytes(
            b"",
            FILLER_TYPE,
            &vec![0; rem as usize - 12],
            layout(info),
        ));
    }
    // Check with the final bytes that the loader's walk finds this note first, where it was
    // written: the walk must land on our header *and* read the descriptor there.
    let finds = |bytes: &mut Vec<u8>, content: &[u8], header: u64, desc: u64| {
        if let Some(d) = bytes.get_mut(at..at + content.len()) {
            d.copy_from_slice(content);
        }
        let mut found = Vec::new();
        walk_segment(bytes, seg, be, &mut found);
        // Other live notes are made inert below, so ours only has to be found in its segment.
        found
            .iter()
            .find(|n| n.n_type == NOTE_TYPE)
            .is_some_and(|n| n.offset == header && n.desc.0 == desc && n.in_bounds)
    };
    let mut header = offset;
    if !finds(&mut bytes, &content, offset, offset + 20) {
        // A segment walked in steps of 8 (mold merges every note into one PT_NOTE aligned for
        // `.note.gnu.property`): the descriptor follows the 6-byte name padded to 8 from the
        // header's 12 bytes, i.e. 24 bytes in, not 20. Write the note where that walk arrives,
        // in the segment as the linker left it (read again: the check above wrote into it).
        let Some(fresh) = segment_bytes(seg) else {
            return Edit::Append("cannot read the PT_NOTE segment".into());
        };
        bytes = fresh;
        let placed = aligned_note(&bytes, seg, be, offset, size, note, layout(info));
        match placed {
            Some((h, c)) if finds(&mut bytes, &c, h, h + 24) => {
                header = h;
                content = c;
            }
            _ => {
                return Edit::Append(format!(
                    "a loader walking the PT_NOTE with p_align {} would not find the note in place",
                    seg.align
                ))
            }
        }
    }
    // Write everything with the inert type first; the 4-byte type write commits.
    let mut inert = content;
    let type_at = (header - offset) as usize + 8;
    inert[type_at..type_at + 4].copy_from_slice(&u32_bytes(PLACEHOLDER_TYPE, be));
    let mut writes = vec![Write {
        offset,
        bytes: inert,
    }];
    // Other live notes in the same segment (a foreign input's) would shadow or contradict ours.
    for n in info
        .notes
        .iter()
        .filter(|n| n.n_type == NOTE_TYPE && (n.offset < offset || n.offset - offset >= size))
    {
        writes.push(Write {
            offset: n.offset + 8,
            bytes: u32_bytes(PLACEHOLDER_TYPE, be).to_vec(),
        });
    }
    // A reservation hidden as `.ldcache` earlier (nothing to record at link time) gets its name
    // back so that patchelf finds the note.
    if let Some((s, name)) = info.renamed_section {
        if s.offset == offset && info.note_section.is_none() {
            writes.push(Write {
                offset: s.header_offset,
                bytes: u32_bytes(name.saturating_sub(RENAME_SKIP), be).to_vec(),
            });
        }
    }
    writes.push(Write {
        offset: header + 8,
        bytes: u32_bytes(NOTE_TYPE, be).to_vec(),
    });
    Edit::InPlace(writes)
}

/// The region's new bytes when the segment is walked in steps of `p_align` = 8: the walk's
/// positions are fixed by the notes before the region (the linker's), so the note goes where the
/// walk first arrives inside the region, laid out for that walk (descriptor at +24, padded to 8),
/// and an inert filler note takes the rest after it, also for that walk. The region starts with
/// inert filler notes ([`lead`]) that a reader walking the section by its own alignment (4:
/// `readelf -n`) sees across the whole region, with no misread descriptor. Returns the note's
/// file offset and the bytes of the whole region; `None` when the note does not fit after where
/// the walk arrives.
fn aligned_note(
    seg_bytes: &[u8],
    seg: &NoteSegment,
    be: bool,
    offset: u64,
    size: u64,
    note: &[u8],
    lay: crate::note::Layout,
) -> Option<(u64, Vec<u8>)> {
    let align = seg.align;
    if align != 8 {
        return None;
    }
    let up = |v: u64| v.div_ceil(align).checked_mul(align);
    let rd = |o: u64| -> Option<u64> {
        let o = usize::try_from(o).ok()?;
        let b: [u8; 4] = seg_bytes.get(o..o.checked_add(4)?)?.try_into().ok()?;
        Some(u64::from(if be {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }))
    };
    let start = offset.checked_sub(seg.offset)?;
    let end = start.checked_add(size)?;
    let mut pos = 0u64;
    while pos < start {
        let (namesz, descsz) = (rd(pos)?, rd(pos.checked_add(4)?)?);
        let next = up(up(pos.checked_add(12)?.checked_add(namesz)?)?.checked_add(descsz)?)?;
        if next <= pos {
            return None;
        }
        pos = next;
    }
    // The note for a walk in steps of 8: header and name as before, 4 more bytes of padding,
    // the same descriptor, padded to 8.
    let mut ours = note.get(..20)?.to_vec();
    ours.extend_from_slice(&[0; 4]);
    ours.extend_from_slice(note.get(20..)?);
    ours.resize(usize::try_from(up(ours.len() as u64)?).ok()?, 0);
    let (at, mut region) = lead(pos - start, size, be, lay)?;
    let note_end = start.checked_add(at)?.checked_add(ours.len() as u64)?;
    let rem = end.checked_sub(note_end)?;
    if rem != 0 && rem < 16 {
        return None;
    }
    region.extend_from_slice(&ours);
    if rem > 0 {
        // namesz 0: the descriptor starts at +16 in a walk in steps of 8.
        let mut filler = note_bytes(b"", FILLER_TYPE, &[], lay);
        filler[4..8].copy_from_slice(&u32_bytes(rem as u32 - 16, be));
        filler.resize(rem as usize, 0);
        region.extend(filler);
    }
    (region.len() as u64 == size).then_some((offset + at, region))
}

/// The region's bytes before the note when the walk in steps of 8 first arrives `gap` bytes
/// into it, and where in the region the note goes. Both walks must stay on inert notes: the
/// one in steps of 8 (the loader's, by `p_align`) until it reaches the note, the one in steps
/// of 4 (`readelf -n` and patchelf, by the section's alignment) across the whole region. Both
/// start on 8-aligned notes; their headers diverge by the padding of the name and descriptor.
/// - `gap >= 12`: a filler spanning the region for the walk in steps of 4; the walk in steps of
///   8 arrives inside its descriptor, where the note goes;
/// - `gap == 8`: the same filler with type 0: the walk in steps of 8 reads a header at +8 from
///   the filler's type and its first descriptor bytes (namesz 0, descsz 0, type "ldno"), and
///   moves on 16 bytes, to +24;
/// - `gap == 4`: a filler whose *name* ("ldnote", then zeros) spans the region (descsz 0, type
///   0): the header read at +4 is its descsz, its type and its name's first bytes (namesz 0,
///   descsz 0, type "ldno"), so that walk moves on to +20;
/// - `gap == 0`: both walks read a first filler with an 8-byte name; the walk in steps of 4
///   moves on 20 bytes, the one in steps of 8 24, which is the `gap == 4` case 20 bytes in: the
///   note goes at +40.
///
/// The headers only the walk in steps of 8 reads are never all zero, which `check` would take
/// for bytes that were never written.
///
/// `None` when the region is too small for that.
fn lead(gap: u64, size: u64, be: bool, lay: crate::note::Layout) -> Option<(u64, Vec<u8>)> {
    let u32_of = |v: u64| u32::try_from(v).ok().map(|v| u32_bytes(v, be));
    let filler = |namesz: u64, descsz: u64, n_type: u32| -> Option<Vec<u8>> {
        let mut h = note_bytes(b"", n_type, &[], lay);
        h[0..4].copy_from_slice(&u32_of(namesz)?);
        h[4..8].copy_from_slice(&u32_of(descsz)?);
        Some(h)
    };
    let name = b"ldnote\0";
    let (at, mut lead) = match gap {
        g if g >= 12 => (g, filler(0, size.checked_sub(12)?, FILLER_TYPE)?),
        8 => {
            let mut f = filler(0, size.checked_sub(12)?, 0)?;
            f.extend_from_slice(&[0; 4]);
            f.extend_from_slice(name);
            (24, f)
        }
        4 => {
            let mut f = filler(size.checked_sub(12)?, 0, 0)?;
            f.extend_from_slice(name);
            (20, f)
        }
        0 => {
            let mut f = filler(8, 0, FILLER_TYPE)?;
            f.extend_from_slice(b"ldnote\0\0");
            f.extend(filler(size.checked_sub(32)?, 0, 0)?);
            f.extend_from_slice(name);
            (40, f)
        }
        _ => return None,
    };
    if at > size {
        return None;
    }
    lead.resize(usize::try_from(at).ok()?, 0);
    Some((at, lead))
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
    let name = info
        .note_section_name
        .unwrap_or(0)
        .saturating_add(RENAME_SKIP);
    Write {
        offset: header_offset,
        bytes: u32_bytes(name, info.ident.big_endian).to_vec(),
    }
}

#[cfg(test)]
mod tests;
