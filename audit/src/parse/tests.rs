//! Host tests of the module's parsing: hand-built images for each rule, and random mutations
//! of a valid image (no panic, nothing read outside the object's readable segments).
use super::*;

const H: Host = Host {
    is_64: true,
    big_endian: false,
    machine: 62,
    extra_osabi: 0,
    abi_version_max: 4,
    reject_flags: &[],
    require_flags: &[],
    ro_dynamic: false,
};

/// Where the test images are loaded.
const BIAS: u64 = 0x7000_0000;

/// An object image whose addresses equal file offsets plus `bias`.
struct Image {
    bytes: Vec<u8>,
    bias: u64,
}

impl Mem for Image {
    fn get(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let off = usize::try_from(addr.checked_sub(self.bias)?).ok()?;
        self.bytes
            .get(off..off.checked_add(usize::try_from(len).ok()?)?)
    }
}

fn ehdr(ty: u16, machine: u16, phnum: u16) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    h[16..18].copy_from_slice(&ty.to_le_bytes());
    h[18..20].copy_from_slice(&machine.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[32..40].copy_from_slice(&64u64.to_le_bytes());
    h[54..56].copy_from_slice(&56u16.to_le_bytes());
    h[56..58].copy_from_slice(&phnum.to_le_bytes());
    h
}

fn ph(kind: u32, flags: u32, off: u64, size: u64, align: u64) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&kind.to_le_bytes());
    p.extend_from_slice(&flags.to_le_bytes());
    for v in [off, off, off, size, size, align] {
        p.extend_from_slice(&v.to_le_bytes());
    }
    p
}

fn note(name: &[u8], kind: u32, desc: &[u8], align: usize) -> Vec<u8> {
    let pad = |v: &mut Vec<u8>| {
        while !v.len().is_multiple_of(align) {
            v.push(0);
        }
    };
    let mut n = Vec::new();
    n.extend_from_slice(&(name.len() as u32).to_le_bytes());
    n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
    n.extend_from_slice(&kind.to_le_bytes());
    n.extend_from_slice(name);
    pad(&mut n);
    n.extend_from_slice(desc);
    pad(&mut n);
    n
}

const DESC: &[u8] = b"liba.so\0=/s/a/liba.so:=/s/b/liba.so\0libb.so\0?/s/h:=/s/b/libb.so\0\0";

/// Header, 3 program headers (LOAD over everything, DYNAMIC, NOTE), the notes, the dynamic
/// section (DT_RUNPATH if `runpath`, DT_STRTAB as the loader leaves it at `BIAS`, DT_NULL),
/// then the string table with the run path `RUNPATH`.
fn image(notes: &[u8], note_align: u64, runpath: bool) -> (Vec<u8>, usize, u64) {
    let phoff = 64;
    let notes_off = phoff + 3 * 56;
    let dyn_off = (notes_off + notes.len()).next_multiple_of(8);
    let dyn_len = 3 * 16;
    let str_off = dyn_off + dyn_len;
    let mut dynamic = Vec::new();
    if runpath {
        dynamic.extend_from_slice(&29u64.to_le_bytes());
        dynamic.extend_from_slice(&1u64.to_le_bytes());
    }
    dynamic.extend_from_slice(&5u64.to_le_bytes());
    dynamic.extend_from_slice(&(BIAS + str_off as u64).to_le_bytes());
    dynamic.resize(dyn_len, 0);
    let mut strtab = vec![0u8];
    strtab.extend_from_slice(RUNPATH);
    strtab.push(0);
    let total = str_off + strtab.len();
    let mut b = ehdr(3, 62, 3);
    b.extend(ph(1, 4, 0, total as u64, 4096));
    b.extend(ph(2, 6, dyn_off as u64, dyn_len as u64, 8));
    b.extend(ph(4, 4, notes_off as u64, notes.len() as u64, note_align));
    b.extend_from_slice(notes);
    b.resize(dyn_off, 0);
    b.extend(dynamic);
    b.extend(strtab);
    (b, 3, dyn_off as u64)
}

/// The run path of the test images: the directories of `DESC`.
const RUNPATH: &[u8] = b"/s/a:/s/b/:/s/h";

fn look(b: &[u8], phnum: usize, dyn_off: u64) -> Option<Object> {
    let bias = BIAS;
    let img = Image {
        bytes: b.to_vec(),
        bias,
    };
    let (phoff, n) = phdr_table(b, &H)?;
    assert_eq!(n, phnum);
    let table = b.get(phoff as usize..phoff as usize + n * 56)?;
    object(table, n, bias, bias + dyn_off, &H, &img)
}

#[test]
fn finds_the_note_of_a_runpath_object() {
    let notes = note(b"NixOS\0", NOTE_TYPE, DESC, 4);
    let (b, n, d) = image(&notes, 4, true);
    let o = look(&b, n, d).expect("object");
    let (ra, rl) = o.runpath.expect("run path");
    let off = (ra - BIAS) as usize;
    assert_eq!(&b[off..off + rl as usize], RUNPATH);
    let (addr, len) = o.note.expect("note");
    assert_eq!(len as usize, DESC.len());
    let off = (addr - 0x7000_0000) as usize;
    assert_eq!(&b[off..off + DESC.len()], DESC);
}

#[test]
fn a_dt_rpath_object_has_no_usable_note() {
    let notes = note(b"NixOS\0", NOTE_TYPE, DESC, 4);
    let (b, n, d) = image(&notes, 4, false);
    assert_eq!(
        look(&b, n, d),
        Some(Object {
            runpath: None,
            note: None
        })
    );
}

#[test]
fn headers_of_another_object_are_refused() {
    let notes = note(b"NixOS\0", NOTE_TYPE, DESC, 4);
    let (b, n, d) = image(&notes, 4, true);
    assert_eq!(look(&b, n, d + 8), None);
}

#[test]
fn the_walk_steps_with_the_segment_alignment() {
    // A 36-byte build-id note then ours, laid out 4-aligned inside an 8-aligned PT_NOTE: the
    // loader's walk (8-aligned steps) does not find it (mold's merged PT_NOTE).
    let mut notes = note(b"GNU\0", 3, &[7u8; 20], 4);
    assert_eq!(notes.len(), 36);
    notes.extend(note(b"NixOS\0", NOTE_TYPE, DESC, 4));
    let (b, n, d) = image(&notes, 8, true);
    assert_eq!(look(&b, n, d).expect("object").note, None);
    let (b, n, d) = image(&notes, 4, true);
    assert!(look(&b, n, d).expect("object").note.is_some());
}

#[test]
fn a_descriptor_leaving_its_segment_disables_the_note() {
    let mut notes = note(b"NixOS\0", NOTE_TYPE, DESC, 4);
    notes[4..8].copy_from_slice(&10_000u32.to_le_bytes());
    // A second, good note after it is not looked at either.
    let (b, n, d) = image(&notes, 4, true);
    assert_eq!(look(&b, n, d).expect("object").note, None);
}

#[test]
fn other_notes_and_types_are_passed_over() {
    let mut notes = note(b"NixOS\0", 0x1234, b"x\0y\0\0", 4);
    notes.extend(note(b"NixOZ\0", NOTE_TYPE, b"x\0y\0\0", 4));
    notes.extend(note(b"NixOS\0", NOTE_TYPE, DESC, 4));
    let (b, n, d) = image(&notes, 4, true);
    assert_eq!(
        look(&b, n, d).expect("object").note.map(|x| x.1 as usize),
        Some(DESC.len())
    );
}

#[test]
fn malformed_descriptors_are_not_used() {
    for bad in [
        &b"\0\0"[..],
        b"a\0",
        b"liba.so\0=/x\0",
        b"liba.so\0\0libb.so\0=/y\0\0",
        b"liba.so\0=/x\0libb.so\0",
    ] {
        assert!(!valid_desc(bad), "{bad:?}");
        let notes = note(b"NixOS\0", NOTE_TYPE, bad, 4);
        let (b, n, d) = image(&notes, 4, true);
        assert_eq!(look(&b, n, d).expect("object").note, None, "{bad:?}");
    }
    assert!(valid_desc(DESC));
}

#[test]
fn lookup() {
    assert_eq!(
        find(DESC, b"liba.so"),
        Some(&b"=/s/a/liba.so:=/s/b/liba.so"[..])
    );
    assert_eq!(find(DESC, b"libb.so"), Some(&b"?/s/h:=/s/b/libb.so"[..]));
    assert_eq!(find(DESC, b"libc.so"), None);
    assert_eq!(find(DESC, b""), None);
    // From the pair after a hit, wrapping around.
    let (_, next) = find_from(DESC, b"liba.so", 0).expect("liba");
    assert_eq!(&DESC[next..next + 7], b"libb.so");
    assert_eq!(
        find_from(DESC, b"libb.so", next).map(|x| x.0),
        find(DESC, b"libb.so")
    );
    let (_, end) = find_from(DESC, b"libb.so", next).expect("libb");
    assert_eq!(
        find_from(DESC, b"liba.so", end).map(|x| x.0),
        find(DESC, b"liba.so")
    );
    assert!(sorted(DESC));
    assert!(!sorted(b"libb.so\0=/x\0liba.so\0=/y\0\0"));
    assert!(!sorted(b"liba.so\0=/x\0liba.so\0=/y\0\0"));
}

#[test]
fn loadable_mirrors_open_verify() {
    let good = ehdr(3, 62, 3);
    assert!(loadable(&good, &H));
    let exec = ehdr(2, 62, 3);
    assert!(loadable(&exec, &H));
    let mut cases: Vec<(Vec<u8>, &str)> = Vec::new();
    let m = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut h = good.clone();
        f(&mut h);
        h
    };
    cases.push((ehdr(1, 62, 3), "ET_REL"));
    cases.push((ehdr(3, 183, 3), "other machine"));
    cases.push((m(&|h| h[4] = 1), "other class"));
    cases.push((m(&|h| h[5] = 2), "byte order"));
    cases.push((m(&|h| h[6] = 2), "ident version"));
    cases.push((m(&|h| h[7] = 9), "OS ABI"));
    cases.push((m(&|h| h[8] = 1), "ABI version with SYSV"));
    cases.push((m(&|h| h[12] = 1), "padding"));
    cases.push((m(&|h| h[20] = 2), "e_version"));
    cases.push((m(&|h| h[54] = 32), "phentsize"));
    cases.push((m(&|h| h[0] = 0), "magic"));
    cases.push((good[..63].to_vec(), "short"));
    for (h, why) in cases {
        assert!(!loadable(&h, &H), "{why}");
    }
    assert!(loadable(
        &m(&|h| {
            h[7] = 3;
            h[8] = 3;
        }),
        &H
    ));
    let arm = Host {
        is_64: false,
        machine: 40,
        extra_osabi: 64,
        reject_flags: &[(0xff00_0200, 0x0500_0200)],
        ..H
    };
    let mut a = vec![0u8; 52];
    a[..7].copy_from_slice(b"\x7fELF\x01\x01\x01");
    a[16] = 3;
    a[18] = 40;
    a[20] = 1;
    a[36..40].copy_from_slice(&0x0500_0400u32.to_le_bytes());
    a[42] = 32;
    assert!(loadable(&a, &arm));
    a[36..40].copy_from_slice(&0x0500_0200u32.to_le_bytes());
    assert!(!loadable(&a, &arm), "soft-float object on armhf");
}

#[test]
fn ld_so_command_line() {
    let c = |s: &[u8]| cmdline_library_path(s, true);
    assert_eq!(c(b"/lib64/ld.so\0./prog\0"), Some(false));
    assert_eq!(c(b"/lib64/ld.so\0--library-path\0/x\0./prog\0"), Some(true));
    assert_eq!(
        c(b"/lib64/ld.so\0--audit\0/m.so\0--library-path\0/x\0./prog\0"),
        Some(true)
    );
    assert_eq!(
        c(b"/lib64/ld.so\0--argv0\0--library-path\0./prog\0"),
        Some(false)
    );
    assert_eq!(
        c(b"/lib64/ld.so\0./prog\0--library-path\0/x\0"),
        Some(false)
    );
    assert_eq!(
        cmdline_library_path(b"/lib64/ld.so\0--audit\0/m", false),
        None
    );
    assert_eq!(
        c(b"/lib64/ld.so\0--inhibit-rpath\0/x/liba.so\0./prog\0"),
        Some(true)
    );
}

/// xorshift64*: a deterministic source for the mutation test (no dependency).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Every mutation of a valid image: no panic, and a note found lies inside the image and passes
/// the descriptor checks.
#[test]
fn random_mutations_never_read_outside_the_object() {
    let mut notes = note(b"GNU\0", 3, &[7u8; 20], 4);
    notes.extend(note(b"NixOS\0", NOTE_TYPE, DESC, 4));
    let (base, n, d) = image(&notes, 4, true);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut found = 0;
    for _ in 0..200_000 {
        let mut b = base.clone();
        for _ in 0..1 + rng.next() % 4 {
            let i = (rng.next() % b.len() as u64) as usize;
            b[i] = match rng.next() % 4 {
                0 => 0,
                1 => 0xff,
                _ => rng.next() as u8,
            };
        }
        if rng.next().is_multiple_of(8) {
            b.truncate((rng.next() % b.len() as u64) as usize);
        }
        let bias = BIAS;
        let img = Image {
            bytes: b.clone(),
            bias,
        };
        let Some((phoff, phnum)) = phdr_table(&b, &H) else {
            continue;
        };
        let Some(table) = (phoff as usize)
            .checked_add(phnum * 56)
            .and_then(|e| b.get(phoff as usize..e))
        else {
            continue;
        };
        if let Some(o) = object(table, phnum, bias, bias + d, &H, &img) {
            if let Some((a, l)) = o.note {
                let desc = img.get(a, l).expect("note inside the image");
                assert!(valid_desc(desc));
                let _ = find(desc, b"liba.so");
                found += 1;
            }
        }
        let _ = n;
    }
    assert!(
        found > 1000,
        "mutations kept a usable note in {found} cases"
    );
}

/// The fuzz target's checks over its committed seeds and every input that once failed
/// (fuzz/corpus/audit_parse, fuzz/regressions/audit_parse).
#[test]
fn fuzz_corpus_replays() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut n = 0;
    for dir in ["corpus/audit_parse", "regressions/audit_parse"] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in rd.flatten() {
            let data = std::fs::read(e.path()).expect("read seed");
            let found = check::check(&data);
            let name = e.file_name().to_string_lossy().into_owned();
            if dir.starts_with("corpus")
                && cfg!(target_endian = "little")
                && cfg!(target_pointer_width = "64")
            {
                // The seeds' names say whether the module must find a note in them.
                assert_eq!(found, name.contains("-noted"), "{name}");
            }
            n += 1;
        }
    }
    assert!(n >= 4, "seed corpus missing ({n} files)");
}
