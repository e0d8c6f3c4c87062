//! Unit tests on small ELF files synthesised with `object::write::elf::Writer`: the planner's
//! decisions and the typed errors. Real linkers, loaders and binutils are in tests/append_e2e.rs.

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::write::elf::{FileHeader as WHeader, ProgramHeader as WProg, SectionHeader as WSec};
use object::Endianness;

use super::{append_note, AppendError};

/// A well-formed resolution note (`libx.so` -> `=/x`).
fn note() -> Vec<u8> {
    let desc = b"libx.so\0=/x\0\0";
    let mut v = Vec::new();
    for w in [6u32, desc.len() as u32, 0x63a8_6cb6] {
        v.extend(w.to_le_bytes());
    }
    v.extend(b"NixOS\0\0\0");
    v.extend(desc);
    v.resize(v.len().div_ceil(4) * 4, 0);
    v
}

/// An ELF64 LE file: PT_PHDR + one PT_LOAD over [0, end of `.text`), `.text` at `text_at`, then
/// `.shstrtab` and the section headers.
fn synth(e_type: u16, text_at: usize) -> Vec<u8> {
    synth_with(e_type, text_at, false)
}

/// As [`synth`], with a non-allocated `.comment` right after `.text` if `comment`.
fn synth_with(e_type: u16, text_at: usize, comment: bool) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut w = object::write::elf::Writer::new(Endianness::Little, true, &mut buf);
    w.reserve_file_header();
    w.reserve_program_headers(2);
    w.reserve_until(text_at);
    let text = w.reserve(16, 16) as u64;
    let load_end = w.reserved_len() as u64;
    w.reserve_null_section_index();
    let text_name = w.add_section_name(b".text");
    w.reserve_section_index();
    let comment_name = comment.then(|| w.add_section_name(b".comment"));
    let comment_at = comment.then(|| {
        w.reserve_section_index();
        w.reserve(8, 1) as u64
    });
    w.reserve_shstrtab_section_index();
    w.reserve_shstrtab();
    w.reserve_section_headers();

    let header = WHeader {
        os_abi: 0,
        abi_version: 0,
        e_type,
        e_machine: elf::EM_X86_64,
        e_entry: text,
        e_flags: 0,
    };
    w.write_file_header(&header).expect("header");
    w.write_align_program_headers();
    let seg = |p_type, p_offset, p_filesz, p_align| WProg {
        p_type,
        p_flags: elf::PF_R | elf::PF_X,
        p_offset,
        p_vaddr: p_offset,
        p_paddr: p_offset,
        p_filesz,
        p_memsz: p_filesz,
        p_align,
    };
    w.write_program_header(&seg(elf::PT_PHDR, 64, 112, 8));
    w.write_program_header(&seg(elf::PT_LOAD, 0, load_end, 0x1000));
    w.pad_until(text as usize);
    w.write(&[0xc3; 16]);
    if comment {
        w.write(b"GCC: 12\0");
    }
    w.write_shstrtab();
    w.write_null_section_header();
    w.write_section_header(&WSec {
        name: Some(text_name),
        sh_type: elf::SHT_PROGBITS,
        sh_flags: u64::from(elf::SHF_ALLOC | elf::SHF_EXECINSTR),
        sh_addr: text,
        sh_offset: text,
        sh_size: 16,
        sh_link: 0,
        sh_info: 0,
        sh_addralign: 16,
        sh_entsize: 0,
    });
    if let (Some(name), Some(at)) = (comment_name, comment_at) {
        w.write_section_header(&WSec {
            name: Some(name),
            sh_type: elf::SHT_PROGBITS,
            sh_flags: 0,
            sh_addr: 0,
            sh_offset: at,
            sh_size: 8,
            sh_link: 0,
            sh_info: 0,
            sh_addralign: 1,
            sh_entsize: 0,
        });
    }
    w.write_shstrtab_section_header();
    buf
}

#[test]
fn rejects_bad_section() {
    let elf = synth(elf::ET_DYN, 0x200);
    assert!(matches!(
        append_note(&elf, &[]),
        Err(AppendError::BadSection(_))
    ));
    assert!(matches!(
        append_note(&elf, &[0; 6]),
        Err(AppendError::BadSection(_))
    ));
}

#[test]
fn rejects_unsuitable_files() {
    assert_eq!(
        append_note(b"hello world", &note()),
        Err(AppendError::NotElf)
    );
    assert_eq!(append_note(&[], &note()), Err(AppendError::NotElf));
    let rel = synth(elf::ET_REL, 0x200);
    assert_eq!(append_note(&rel, &note()), Err(AppendError::Relocatable));
    let core = synth(elf::ET_CORE, 0x200);
    assert_eq!(
        append_note(&core, &note()),
        Err(AppendError::UnsupportedType(elf::ET_CORE))
    );
}

#[test]
fn code_right_after_the_headers_means_no_room() {
    // `.text` directly follows the program headers: it cannot move, and there is no PT_NOTE to
    // grow, so the table cannot take the entries a PT_NOTE (and a PT_LOAD) need.
    let elf = synth(elf::ET_DYN, 64 + 2 * 56);
    assert!(matches!(
        append_note(&elf, &note()),
        Err(AppendError::NoRoom(_))
    ));
}

#[test]
fn a_segment_ending_the_image_grows() {
    // Only the reclaimable `.shstrtab` and section headers follow the PT_LOAD: it grows over them.
    let elf = synth(elf::ET_DYN, 0x200);
    let out = append_note(&elf, &note()).expect("append");
    let h = elf::FileHeader64::<Endianness>::parse(&*out).expect("parse");
    let e = h.endian().expect("endian");
    let phdrs = h.program_headers(e, &*out).expect("phdrs");
    assert_eq!(
        phdrs.len(),
        3,
        "PT_PHDR, the grown PT_LOAD, the new PT_NOTE"
    );
    let (load, pt_note) = (&phdrs[1], &phdrs[2]);
    assert_eq!(pt_note.p_type(e), elf::PT_NOTE);
    let end = pt_note.p_offset(e) + pt_note.p_filesz(e);
    assert_eq!(
        load.p_offset(e) + load.p_filesz(e),
        end,
        "the PT_LOAD covers the note"
    );
    assert_eq!(load.p_memsz(e), load.p_filesz(e));
}

#[test]
fn free_space_after_the_headers_gets_a_new_segment() {
    // A non-allocated section after the PT_LOAD keeps its place: the note needs a new PT_LOAD.
    let elf = synth_with(elf::ET_DYN, 0x200, true);
    let note = note();
    let out = append_note(&elf, &note).expect("append");
    let h = elf::FileHeader64::<Endianness>::parse(&*out).expect("parse");
    let e = h.endian().expect("endian");
    let phdrs = h.program_headers(e, &*out).expect("phdrs");
    assert_eq!(phdrs.len(), 4, "PT_PHDR, PT_LOAD, new PT_LOAD, new PT_NOTE");
    let pt_note = phdrs
        .iter()
        .find(|p| p.p_type(e) == elf::PT_NOTE)
        .expect("PT_NOTE");
    assert_eq!(pt_note.p_align(e), 4);
    let load = phdrs
        .iter()
        .filter(|p| p.p_type(e) == elf::PT_LOAD)
        .find(|l| {
            l.p_offset(e) <= pt_note.p_offset(e)
                && pt_note.p_offset(e) + pt_note.p_filesz(e) <= l.p_offset(e) + l.p_filesz(e)
        })
        .expect("a PT_LOAD maps the note");
    assert_eq!(
        load.p_vaddr(e) % 0x1000,
        load.p_offset(e) % 0x1000,
        "congruent"
    );
    assert!(load.p_vaddr(e) >= 0x1000, "above the existing segment");
    let at = pt_note.p_offset(e) as usize;
    assert_eq!(&out[at..at + note.len()], &note[..]);
    let phdr = phdrs
        .iter()
        .find(|p| p.p_type(e) == elf::PT_PHDR)
        .expect("PT_PHDR");
    assert_eq!(phdr.p_filesz(e), 4 * 56, "PT_PHDR covers the grown table");
    // `.text` kept its bytes and place; the section was added.
    assert_eq!(out[0x200..0x210], elf[0x200..0x210]);
    let secs = h.sections(e, &*out).expect("sections");
    let added = secs
        .section_by_name(e, b".note.nixos.ldcache")
        .expect("section")
        .1;
    assert_eq!(added.sh_type(e), elf::SHT_NOTE);
    assert_eq!(added.sh_offset(e), pt_note.p_offset(e));
    assert_eq!(append_note(&out, &note), Err(AppendError::AlreadyPresent));
}

#[test]
fn truncated_input_is_an_error() {
    let elf = synth(elf::ET_DYN, 0x200);
    for len in 0..elf.len() {
        assert!(append_note(&elf[..len], &note()).is_err(), "length {len}");
    }
}

#[test]
fn a_second_append_grows_the_segment_of_the_first() {
    // The driver's flow when a note must be replaced by a larger one: the old note is made inert
    // (another n_type) and its section renamed, then the file goes through `append_note` again.
    let elf = synth_with(elf::ET_DYN, 0x200, true);
    let once = append_note(&elf, &note()).expect("first append");
    let mut inert = once.clone();
    let h = elf::FileHeader64::<Endianness>::parse(&*once).expect("parse");
    let e = h.endian().expect("endian");
    let secs = h.sections(e, &*once).expect("sections");
    let (idx, sec) = secs
        .section_by_name(e, b".note.nixos.ldcache")
        .expect("note section");
    let at = sec.sh_offset(e) as usize + 8;
    inert[at..at + 4].copy_from_slice(&0x6c64_6e72u32.to_le_bytes());
    let hdr = h.e_shoff(e) as usize + idx.0 * 64;
    let name = sec.sh_name(e) + 6; // ".note.nixos.ldcache" -> ".ldcache"
    inert[hdr..hdr + 4].copy_from_slice(&name.to_le_bytes());

    let mut bigger = note();
    bigger.extend(note());
    let twice = append_note(&inert, &bigger).expect("second append");
    let count = |data: &[u8], ty: u32| {
        let h = elf::FileHeader64::<Endianness>::parse(data).expect("parse");
        let phdrs = h.program_headers(e, data).expect("phdrs");
        phdrs.iter().filter(|p| p.p_type(e) == ty).count()
    };
    assert_eq!(
        count(&twice, elf::PT_LOAD),
        count(&once, elf::PT_LOAD),
        "no third PT_LOAD"
    );
    assert_eq!(count(&twice, elf::PT_NOTE), 1, "the PT_NOTE grew");
    let h = elf::FileHeader64::<Endianness>::parse(&*twice).expect("parse");
    let secs = h.sections(e, &*twice).expect("sections");
    let sec = secs
        .section_by_name(e, b".note.nixos.ldcache")
        .expect("new section")
        .1;
    let at = sec.sh_offset(e) as usize;
    assert_eq!(&twice[at..at + bigger.len()], &bigger[..]);
}

#[test]
fn the_rewrite_keeps_the_bytes_it_does_not_edit() {
    // The plan describes the new file against the old one: everything before the rebuilt tail
    // that no edit touches is the old bytes, and reading through a cache gives the same plan.
    let elf = synth(elf::ET_DYN, 0x200);
    let rw = super::plan_append(elf.as_slice(), &note()).expect("plan");
    let cache = object::ReadCache::new(std::io::Cursor::new(elf.clone()));
    assert_eq!(super::plan_append(&cache, &note()).expect("plan"), rw);
    let new = rw.to_bytes(&elf).expect("bytes");
    assert_eq!(new.len() as u64, rw.len());
    let keep = rw.keep as usize;
    let edited = |i: usize| {
        rw.edits
            .iter()
            .any(|w| (w.offset as usize..w.offset as usize + w.bytes.len()).contains(&i))
    };
    assert!((0..keep).filter(|&i| !edited(i)).all(|i| new[i] == elf[i]));
    assert_eq!(&new[keep..], rw.tail.as_slice());
    super::verify(new.as_slice(), &note()).expect("verify");
}

#[test]
fn edits_land_in_order_and_a_patch_goes_into_the_edit_it_falls_in() {
    use super::Rewrite;
    let old = [1u8; 16];
    let mut rw = Rewrite {
        keep: 12,
        edits: Vec::new(),
        tail: vec![9; 4],
    };
    rw.put(2, &[5; 6], "t").expect("put");
    rw.put(4, &[7; 2], "t").expect("put inside");
    assert_eq!(
        rw.edits.len(),
        1,
        "a patch inside an edit is folded into it"
    );
    rw.put(10, &[3; 4], "t").expect("put across keep");
    assert_eq!(rw.put(15, &[0; 2], "t"), Err(AppendError::Corrupt("t")));
    let want = [1, 1, 5, 5, 7, 7, 5, 5, 1, 1, 3, 3, 3, 3, 9, 9];
    assert_eq!(rw.to_bytes(&old).expect("bytes"), want);
    assert_eq!(rw.read(&old[..], 3, 10, "t").expect("read"), want[3..13]);
}

#[test]
fn an_allocation_that_cannot_be_made_is_an_error() {
    // Every buffer the rewrite holds is reserved fallibly: no abort, whatever a header claims.
    assert_eq!(
        super::rewrite::zeroed(1 << 62),
        Err(AppendError::NoMemory(1 << 62))
    );
}
