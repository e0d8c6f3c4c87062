//! Unit tests of the in-place fill (`plan_in_place`, `lead`, `neutralize`).
use super::*;
use crate::elf::SectionPlace;
use crate::note::{encode_note, Layout};
use crate::reserve::placeholder;
use crate::target::Ident;

const LE: Layout = Layout {
    big_endian: false,
    is_64: true,
};

/// An output whose only PT_NOTE (at file offset 0x300, p_align 4) holds a reservation of
/// `size` bytes at 0x320, after a 32-byte ABI-tag-like note.
fn output(size: u64) -> (ElfInfo, Vec<u8>) {
    output_after(&note_bytes(b"GNU", 1, &[0; 16], LE), size, 4)
}

/// An output whose only PT_NOTE (at file offset 0x300, `p_align` `align`) holds the notes
/// `before`, then a reservation of `size` bytes.
fn output_after(before: &[u8], size: u64, align: u64) -> (ElfInfo, Vec<u8>) {
    let mut seg = before.to_vec();
    seg.extend(placeholder(size as usize, LE));
    let segment = NoteSegment {
        index: 3,
        offset: 0x300,
        filesz: seg.len() as u64,
        align,
        loaded: true,
    };
    let mut notes = Vec::new();
    walk_segment(&seg, &segment, false, &mut notes);
    let info = ElfInfo {
        ident: Ident {
            is_64: true,
            big_endian: false,
            machine: object::elf::EM_X86_64,
            e_flags: 0,
            osabi: 0,
        },
        e_type: object::elf::ET_DYN,
        dynamic: true,
        note_segments: vec![segment],
        notes,
        note_section: Some(SectionPlace {
            index: 5,
            offset: 0x300 + before.len() as u64,
            size,
            header_offset: 0x2000,
        }),
        note_section_name: Some(0x40),
        has_sections: true,
        ..ElfInfo::default()
    };
    (info, seg)
}

fn plan(info: &ElfInfo, seg: &[u8], note: Option<&[u8]>, cur: Option<&[u8]>) -> Edit {
    let seg = seg.to_vec();
    plan_in_place(info, note, cur, &move |_| Some(seg.clone()))
}

#[test]
fn fill_writes_inert_first_and_commits_with_the_type() {
    let (info, seg) = output(256);
    let note = encode_note(b"libz.so\0=/s/libz.so\0\0", LE);
    let Edit::InPlace(w) = plan(&info, &seg, Some(&note), None) else {
        panic!("in place expected")
    };
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].offset, 0x320);
    assert_eq!(
        w[0].bytes.len(),
        256,
        "note plus filler fill the whole reservation"
    );
    assert_eq!(
        &w[0].bytes[8..12],
        &PLACEHOLDER_TYPE.to_le_bytes(),
        "inert until the commit"
    );
    assert_eq!(
        &w[0].bytes[12..note.len()],
        &note[12..],
        "everything but the type is final"
    );
    assert_eq!(
        w[1],
        Write {
            offset: 0x328,
            bytes: NOTE_TYPE.to_le_bytes().to_vec()
        }
    );
    // The result, as the loader's walk sees it: our note, then the filler.
    let mut bytes = seg.clone();
    bytes[0x20..0x20 + 256].copy_from_slice(&w[0].bytes);
    bytes[0x28..0x2c].copy_from_slice(&w[1].bytes);
    let mut found = Vec::new();
    walk_segment(&bytes, &info.note_segments[0], false, &mut found);
    assert_eq!(found.iter().filter(|n| n.n_type == NOTE_TYPE).count(), 1);
}

#[test]
fn too_small_or_awkward_remainders_fall_back() {
    let note = encode_note(b"libz.so\0=/s/libz.so\0\0", LE); // 20 + 24 = 44 bytes
    let (info, seg) = output(40);
    assert!(matches!(
        plan(&info, &seg, Some(&note), None),
        Edit::Append(_)
    ));
    let (info, seg) = output(48);
    assert!(
        matches!(plan(&info, &seg, Some(&note), None), Edit::Append(m) if m.contains("filler"))
    );
    let (info, seg) = output(44);
    assert!(matches!(
        plan(&info, &seg, Some(&note), None),
        Edit::InPlace(_)
    ));
}

#[test]
fn eight_aligned_segments_too_small_for_the_lead_fall_back() {
    // The walk in steps of 8 arrives at the region's start: the note goes 40 bytes in.
    let note = encode_note(b"libz.so\0=/s/libz.so\0\0", LE);
    let (mut info, seg) = output(64);
    info.note_segments[0].align = 8;
    assert!(
        matches!(plan(&info, &seg, Some(&note), None), Edit::Append(m) if m.contains("p_align 8"))
    );
    let (mut info, seg) = output(256);
    info.note_segments[0].align = 8;
    assert!(matches!(
        plan(&info, &seg, Some(&note), None),
        Edit::InPlace(_)
    ));
}

/// Wherever the walk in steps of 8 arrives in the region (0, 4, 8 or 12 bytes in), the
/// loader's walk finds the note and its descriptor, and a walk of the section in steps of 4
/// reads only inert notes, in bounds, ending exactly at its end. The notes before the region:
/// `gcc`'s property note (8-aligned, read alike by both walks), a 36-byte build-id (read 4
/// bytes late afterwards by the walk in steps of 8, as mold 2.37 lays them out), then a note
/// that walk misreads into arriving 8 or 12 bytes in.
#[test]
fn every_arrival_of_the_eight_step_walk_is_filled_in_place() {
    let property = note_bytes(b"GNU", 5, &[1; 16], LE);
    let build_id = note_bytes(b"GNU", 3, &[7; 20], LE);
    let odd = note_bytes(b"GNU", 8, &[0; 4], LE);
    let abi_tag = note_bytes(
        b"GNU",
        1,
        &[0, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0],
        LE,
    );
    // (where the walk arrives, the notes before the region, where the note goes)
    let cases = [
        (0u64, vec![property.clone()], 40u64),
        (4, vec![property.clone(), build_id.clone()], 20),
        (8, vec![property.clone(), build_id.clone(), odd], 24),
        (12, vec![property, build_id, abi_tag], 12),
    ];
    for (gap, before, note_at) in cases {
        let size = 256u64;
        let at = before.concat().len();
        let (info, seg) = output_after(&before.concat(), size, 8);
        let segment = info.note_segments[0];
        // The case is what it says: the walk in steps of 8 arrives `gap` bytes in.
        let arrives = crate::elf::notes::walk(&seg, 8, object::Endianness::Little)
            .map(|n| n.at)
            .find(|&p| p >= at as u64);
        assert_eq!(arrives, Some(at as u64 + gap), "case {gap}");
        let offset = 0x300 + at as u64;
        let desc = b"libz.so\0=/s/libz.so\0\0";
        let note = encode_note(desc, LE);
        let e = plan(&info, &seg, Some(&note), None);
        let Edit::InPlace(w) = e else {
            panic!("gap {gap}: in place expected: {e:?}")
        };
        let mut after = seg.clone();
        for x in &w {
            let o = (x.offset - 0x300) as usize;
            after[o..o + x.bytes.len()].copy_from_slice(&x.bytes);
        }
        let mut found = Vec::new();
        walk_segment(&after, &segment, false, &mut found);
        let live: Vec<_> = found.iter().filter(|n| n.n_type == NOTE_TYPE).collect();
        assert_eq!(live.len(), 1, "gap {gap}: {found:?}");
        assert_eq!(live[0].offset, offset + note_at, "gap {gap}");
        let d = (live[0].desc.0 - 0x300) as usize;
        assert_eq!(&after[d..d + desc.len()], desc, "gap {gap}");
        let eight: Vec<_> =
            crate::elf::notes::walk(&after, 8, object::Endianness::Little).collect();
        assert!(eight.iter().all(|n| !n.is_zeroed()), "gap {gap}: {eight:?}");
        let region = &after[at..at + size as usize];
        let four: Vec<_> = crate::elf::notes::walk(region, 4, object::Endianness::Little).collect();
        assert!(
            four.iter()
                .all(|n| n.in_bounds && n.n_type != NOTE_TYPE && !n.is_zeroed()),
            "gap {gap}: {four:?}"
        );
        let last = four.last().expect("a note");
        let end = last.desc_at.unwrap_or(0) + u64::from(last.descsz);
        assert_eq!(
            end.div_ceil(4) * 4,
            size,
            "gap {gap}: the walk in steps of 4 spans the region"
        );
    }
}

#[test]
fn nothing_to_record_hides_the_section_and_stale_notes_go_inert() {
    let (info, seg) = output(256);
    let Edit::InPlace(w) = plan(&info, &seg, None, None) else {
        panic!("rename expected")
    };
    assert_eq!(
        w,
        vec![Write {
            offset: 0x2000,
            bytes: (0x40 + RENAME_SKIP).to_le_bytes().to_vec()
        }]
    );
    let (mut info, seg) = output(256);
    info.notes[0].n_type = NOTE_TYPE;
    let Edit::InPlace(w) = plan(&info, &seg, None, Some(b"x\0=y\0\0")) else {
        panic!("edit expected")
    };
    assert_eq!(
        w[0],
        Write {
            offset: 0x328,
            bytes: PLACEHOLDER_TYPE.to_le_bytes().to_vec()
        }
    );
}

#[test]
fn identical_note_is_up_to_date() {
    let (mut info, seg) = output(256);
    info.notes[0].n_type = NOTE_TYPE;
    let desc = b"libz.so\0=/s/libz.so\0\0";
    let note = encode_note(desc, LE);
    assert_eq!(plan(&info, &seg, Some(&note), Some(desc)), Edit::UpToDate);
    assert!(matches!(
        plan(&info, &seg, Some(&note), Some(b"libz.so\0=/t/libz.so\0\0")),
        Edit::InPlace(_)
    ));
}

#[test]
fn a_hidden_reservation_is_renamed_back_when_filled() {
    let (mut info, seg) = output(256);
    let place = info.note_section.take().expect("section");
    info.renamed_section = Some((place, 0x40 + RENAME_SKIP));
    let note = encode_note(b"libz.so\0=/s/libz.so\0\0", LE);
    let Edit::InPlace(w) = plan(&info, &seg, Some(&note), None) else {
        panic!("fill expected")
    };
    assert_eq!(
        w[1],
        Write {
            offset: 0x2000,
            bytes: 0x40u32.to_le_bytes().to_vec()
        }
    );
    assert_eq!(
        w.last().map(|w| w.offset),
        Some(0x328),
        "the type write still commits last"
    );
}

#[test]
fn a_bogus_section_size_falls_back_without_allocating_it() {
    let (mut info, seg) = output(256);
    let note = encode_note(b"libz.so\0=/s/libz.so\0\0", LE);
    for size in [u64::MAX - 3, (u64::MAX - 0x320) & !3, 1 << 40] {
        if let Some(s) = info.note_section.as_mut() {
            s.size = size;
        }
        assert!(
            matches!(plan(&info, &seg, Some(&note), None), Edit::Append(m) if m.contains("PT_NOTE")),
            "size {size:#x}"
        );
    }
}

#[test]
fn nothing_to_record_makes_every_live_note_inert() {
    let (mut info, seg) = output(256);
    info.note_section = None;
    let mut second = info.notes[0].clone();
    second.offset += 0x100;
    info.notes.push(second);
    for n in &mut info.notes {
        n.n_type = NOTE_TYPE;
    }
    let Edit::InPlace(w) = plan(&info, &seg, None, Some(b"x\0=y\0\0")) else {
        panic!("edit expected")
    };
    let offsets: Vec<u64> = w.iter().map(|w| w.offset).collect();
    assert_eq!(offsets, vec![0x328, 0x428]);
}

#[test]
fn an_unaligned_region_falls_back() {
    let note = encode_note(b"libz.so\0=/s/libz.so\0\0", LE);
    let (mut info, seg) = output(256);
    if let Some(s) = info.note_section.as_mut() {
        s.size = 257;
    }
    assert!(
        matches!(plan(&info, &seg, Some(&note), None), Edit::Append(m) if m.contains("aligned"))
    );
}
