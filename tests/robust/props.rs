//! Property tests (proptest): the note encoding round-trips over {LE, BE} x {32, 64}, and
//! embedding keeps every byte outside the note's place intact, on real linker outputs of four
//! targets (the committed fuzz seeds: x86_64, i686, armhf, s390x; GNU ld, lld, mold).

use std::path::{Path, PathBuf};

use ldnote::elf::{self, walk_segment, NoteSegment};
use ldnote::embed::{append, plan_in_place, Edit};
use ldnote::note::{decode_descriptor, encode_descriptor, encode_note, Entries, Entry, Layout};
use object::read::elf::{ElfFile32, ElfFile64};
use object::{Object, ObjectSection};
use proptest::prelude::*;

/// A soname or path byte: anything but NUL (the separator) and `:` (the list separator).
fn name() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        any::<u8>().prop_filter("separator", |b| *b != 0 && *b != b':'),
        1..24,
    )
}

fn entries(max: usize) -> impl Strategy<Value = Entries> {
    let entry = prop_oneof![name().prop_map(Entry::Exact), name().prop_map(Entry::Hint)];
    proptest::collection::btree_map(name(), proptest::collection::vec(entry, 1..4), 1..max)
}

fn layouts() -> impl Strategy<Value = Layout> {
    (any::<bool>(), any::<bool>()).prop_map(|(big_endian, is_64)| Layout { big_endian, is_64 })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn note_round_trips_in_every_layout(e in entries(8), layout in layouts(), align in prop_oneof![Just(4u64), Just(0), Just(1)]) {
        let desc = encode_descriptor(&e).expect("non-empty entries encode");
        prop_assert_eq!(&decode_descriptor(&desc).expect("decodes"), &e);
        let note = encode_note(&desc, layout);
        prop_assert_eq!(note.len() % 4, 0);
        let word = |o: usize| {
            let b: [u8; 4] = note[o..o + 4].try_into().expect("4 bytes");
            if layout.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
        };
        prop_assert_eq!(word(0), 6);
        prop_assert_eq!(word(4) as usize, desc.len());
        prop_assert_eq!(word(8), ldnote::note::NOTE_TYPE);
        // The loader's walk (p_align 4, or 0/1 which mean 4) finds it and reads the same bytes.
        let seg = NoteSegment { index: 0, offset: 0x1000, filesz: note.len() as u64, align, loaded: true };
        let mut found = Vec::new();
        walk_segment(&note, &seg, layout.big_endian, &mut found);
        prop_assert_eq!(found.len(), 1);
        let (at, len) = found[0].desc;
        let got = &note[(at - 0x1000) as usize..][..len as usize];
        prop_assert_eq!(got, &desc[..]);
    }
}

fn seed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus/elf_embed")
        .join(name)
}

/// Every section's contents by name, `(name, bytes)` (NOBITS sections are empty).
fn sections(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    fn collect<'d, O: Object<'d>>(f: &O) -> Vec<(String, Vec<u8>)> {
        f.sections()
            .map(|s| {
                let n = s.name().unwrap_or("?").to_string();
                (n, s.data().map(<[u8]>::to_vec).unwrap_or_default())
            })
            .collect()
    }
    if data[4] == 2 {
        collect(&ElfFile64::<object::Endianness>::parse(data).expect("parse 64"))
    } else {
        collect(&ElfFile32::<object::Endianness>::parse(data).expect("parse 32"))
    }
}

/// Apply an in-place plan for `e` to a copy of `data`; `None` when it does not fit in place.
fn fill(data: &[u8], e: &Entries) -> Option<(Vec<u8>, Vec<u8>)> {
    let info = elf::read(data).expect("seed reads");
    let layout = Layout {
        big_endian: info.ident.big_endian,
        is_64: info.ident.is_64,
    };
    let desc = encode_descriptor(e)?;
    let note = encode_note(&desc, layout);
    let current = info.live_note().map(|n| elf::note_desc(data, n));
    let seg = |s: &NoteSegment| {
        data.get(s.offset as usize..(s.offset + s.filesz) as usize)
            .map(<[u8]>::to_vec)
    };
    match plan_in_place(&info, Some(&note), current, &seg) {
        Edit::InPlace(writes) => {
            let mut copy = data.to_vec();
            for w in writes {
                copy[w.offset as usize..][..w.bytes.len()].copy_from_slice(&w.bytes);
            }
            Some((copy, desc))
        }
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// In place: only the note section's bytes change; every other section (and the headers'
    /// bytes outside it) is identical, and the loader's walk finds exactly the new descriptor.
    #[test]
    fn in_place_embedding_changes_only_the_note(e in entries(3), which in 0usize..5) {
        let names = ["gcc_res", "lld_res", "x_i686", "x_s390x", "x_arm-linux-gnueabihf"];
        let data = std::fs::read(seed(names[which])).expect("seed");
        let Some((new, desc)) = fill(&data, &e) else {
            return Ok(()); // does not fit the reservation: the append property covers it
        };
        prop_assert_eq!(new.len(), data.len());
        let info = elf::read(&data[..]).expect("reads");
        let sec = info.note_section.or(info.renamed_section.map(|r| r.0)).expect("reserved section");
        for (i, (a, b)) in data.iter().zip(&new).enumerate() {
            let inside = (i as u64) >= sec.offset && (i as u64) < sec.offset + sec.size;
            prop_assert!(inside || a == b, "{}: byte {:#x} outside the note changed", names[which], i);
        }
        let before = sections(&data);
        let after = sections(&new);
        prop_assert_eq!(before.len(), after.len());
        for ((n, a), (m, b)) in before.iter().zip(&after) {
            prop_assert_eq!(n, m);
            prop_assert!(n == ".note.nixos.ldcache" || a == b, "section {} changed", n);
        }
        let again = elf::read(&new[..]).expect("reads back");
        let live = again.live_note().expect("live");
        prop_assert_eq!(elf::note_desc(&new[..], live), &desc[..]);
    }

    /// Append fallback: every section keeps its contents except the tables it must rewrite
    /// (`.dynamic` and symbol tables with moved addresses, the section name table); the note is
    /// live; the file only grows.
    #[test]
    fn appending_keeps_every_other_section(e in entries(6), which in 0usize..5) {
        let names = ["gcc_plain", "mold_plain", "lld_plain", "x_s390x_plain", "x_i686_plain"];
        let data = std::fs::read(seed(names[which])).expect("seed");
        let info = elf::read(&data[..]).expect("reads");
        let layout = Layout { big_endian: info.ident.big_endian, is_64: info.ident.is_64 };
        let desc = encode_descriptor(&e).expect("encodes");
        let new = append::append_note(&data, &encode_note(&desc, layout)).expect("appends");
        prop_assert!(new.len() >= data.len());
        let rewritten = [".dynamic", ".dynsym", ".symtab", ".shstrtab"];
        let after = sections(&new);
        for (n, a) in sections(&data) {
            let b = after.iter().find(|(m, _)| *m == n).map(|x| &x.1);
            prop_assert!(b.is_some(), "section {} lost", n);
            prop_assert!(rewritten.contains(&n.as_str()) || Some(&a) == b, "section {} changed", n);
        }
        let again = elf::read(&new[..]).expect("reads back");
        let live = again.live_note().expect("live");
        prop_assert_eq!(elf::note_desc(&new[..], live), &desc[..]);
    }
}
