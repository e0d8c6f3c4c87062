//! The properties the fuzz targets check, shared with `tests/robust/fuzz_regressions.rs`, which
//! replays every input that once broke one of them (`fuzz/regressions/<target>/`).
//! Each function panics (the fuzzer's crash) when a property does not hold.
use std::os::unix::ffi::OsStrExt;

use ldnote::elf::{self, walk_segment, NoteSegment};
use ldnote::embed::{append, plan_in_place, Edit};
use ldnote::note::{decode_descriptor, encode_descriptor, encode_note, Layout};
use ldnote::rsp::tokenize;

/// The descriptor the ELF target embeds.
pub const FUZZ_DESC: &[u8] = b"libfuzz.so.1\0=/nix/store/x/lib/libfuzz.so.1:?/d\0\0";

/// Read an output as `ldnote link`/`patch` do, plan the in-place edit (with and without a note
/// to record) and apply it to a copy, and try the append fallback. Nothing may panic; planned
/// writes lie inside the file; a written note is the live one the loader's walk finds.
pub fn elf_embed(data: &[u8]) {
    let Ok(info) = elf::read(data) else {
        return;
    };
    let layout = Layout {
        big_endian: info.ident.big_endian,
        is_64: info.ident.is_64,
    };
    let note = encode_note(FUZZ_DESC, layout);
    let current = info.live_note().map(|n| elf::note_desc(data, n));
    let seg = |s: &NoteSegment| {
        let o = usize::try_from(s.offset).ok()?;
        let n = usize::try_from(s.filesz).ok()?;
        data.get(o..o.checked_add(n)?).map(<[u8]>::to_vec)
    };
    for want in [Some(note.as_slice()), None] {
        if let Edit::InPlace(writes) = plan_in_place(&info, want, current, &seg) {
            let mut copy = data.to_vec();
            for w in &writes {
                let dst = usize::try_from(w.offset)
                    .ok()
                    .and_then(|o| copy.get_mut(o..o.checked_add(w.bytes.len())?))
                    .expect("a planned write lies inside the file");
                dst.copy_from_slice(&w.bytes);
            }
            let again = elf::read(&copy[..]).expect("an edited file still reads");
            match want {
                Some(_) => {
                    let live = again.live_note().expect("the edit leaves a live note");
                    assert_eq!(elf::note_desc(&copy[..], live), FUZZ_DESC);
                }
                None => assert!(again.live_note().is_none(), "a stale note stays live"),
            }
        }
    }
    if let Ok(new) = append::append_note(data, &note) {
        let again = elf::read(&new[..]).expect("an appended file reads");
        let live = again.live_note().expect("the appended note is live");
        assert_eq!(elf::note_desc(&new[..], live), FUZZ_DESC);
    }
}

/// The note decoder and the PT_NOTE walk on arbitrary bytes: a descriptor that decodes
/// re-encodes to one that decodes to the same entries; the walk stays in bounds.
pub fn note_decode(data: &[u8]) {
    if let Ok(entries) = decode_descriptor(data) {
        if let Some(again) = encode_descriptor(&entries) {
            assert_eq!(decode_descriptor(&again).ok(), Some(entries));
        }
    }
    let (align, rest) = match data.split_first() {
        Some((a, r)) => (u64::from(*a) << (a % 64), r),
        None => (4, data),
    };
    for be in [false, true] {
        // A segment near the top of the address space: offsets must not overflow.
        let seg = NoteSegment {
            index: 0,
            offset: u64::MAX - rest.len() as u64 / 2,
            filesz: rest.len() as u64,
            align,
            loaded: true,
        };
        let mut out = Vec::new();
        walk_segment(rest, &seg, be, &mut out);
        for n in &out {
            assert!(n.offset >= seg.offset, "note before its segment");
        }
    }
}

/// The response-file tokenizer: no NUL inside an argument; quoting each argument (backslash
/// before every byte, inside double quotes) and tokenizing again gives the same arguments.
pub fn rsp_tokenize(data: &[u8]) {
    let args = tokenize(data);
    let mut quoted = Vec::new();
    for a in &args {
        assert!(!a.as_bytes().contains(&0), "NUL inside an argument");
        quoted.push(b'"');
        for b in a.as_bytes() {
            quoted.extend_from_slice(&[b'\\', *b]);
        }
        quoted.extend_from_slice(b"\" ");
    }
    assert_eq!(tokenize(&quoted), args);
}
