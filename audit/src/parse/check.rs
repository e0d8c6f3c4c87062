//! The fuzz target's checks (fuzz/fuzz_targets/audit_parse.rs), also replayed over the seed
//! corpus by the host tests: the input is an ELF file "loaded" at a fixed bias with addresses
//! equal to file offsets; everything the module would do with it must stay inside it and never
//! panic.
use super::*;

/// The file as the loader maps it: each PT_LOAD's file bytes at `bias + p_vaddr`.
struct Image<'a> {
    bytes: &'a [u8],
    bias: u64,
    loads: Vec<Phdr>,
}

impl Mem for Image<'_> {
    fn get(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let v = addr.checked_sub(self.bias)?;
        let p = self
            .loads
            .iter()
            .find(|p| p.vaddr <= v && v - p.vaddr < p.filesz)?;
        let off = usize::try_from(p.offset.checked_add(v - p.vaddr)?).ok()?;
        let end = off.checked_add(usize::try_from(len).ok()?)?;
        // Within this segment's file bytes (a range is never split across segments).
        let seg_end = usize::try_from(p.offset.checked_add(p.filesz)?).ok()?;
        (end <= seg_end).then(|| self.bytes.get(off..end)).flatten()
    }
}

/// Run the module's reading of `data` as the headers and memory of a loaded object, at load
/// address 0 and at another one (there the loader has added it to the last DT_STRTAB entry of
/// a writable dynamic section, as glibc does before `la_objopen`); whether a note was found.
pub fn check(data: &[u8]) -> bool {
    let _ = loadable(data, &HOST);
    let found = check_at(data, 0);
    let bias = 0x5555_0000_0000u64;
    let mut moved = data.to_vec();
    relocate_strtab(&mut moved, bias);
    let found_moved = check_at(&moved, bias);
    // The same file read at two addresses gives the same answer, as long as its addresses are
    // ones a loader could map (no wrap-around past the top of the address space).
    let sane = table(data).is_some_and(|(t, n)| {
        (0..n)
            .filter_map(|i| phdr(t, i, &HOST))
            .all(|p| p.vaddr.max(p.filesz).max(p.memsz) < 1 << 40)
    }) && dynamic_values_sane(data);
    if sane {
        assert_eq!(found, found_moved, "a note found at one load address only");
    }
    found
}

/// The program headers' table of `data`, if it lies inside it.
fn table(data: &[u8]) -> Option<(&[u8], usize)> {
    let (phoff, phnum) = phdr_table(data, &HOST)?;
    let o = usize::try_from(phoff).ok()?;
    let e = o.checked_add(phnum.checked_mul(HOST.phdr_size())?)?;
    Some((data.get(o..e)?, phnum))
}

/// The dynamic section's entries in the file, as `Image` maps its address, up to DT_NULL: each
/// entry's tag and the file offset of its value; and whether its segment is writable.
fn dynamic_entries(data: &[u8]) -> Option<(Vec<(u64, usize)>, bool)> {
    let (t, phnum) = table(data)?;
    let d = (0..phnum)
        .filter_map(|i| phdr(t, i, &HOST))
        .find(|p| p.kind == PT_DYNAMIC)?;
    let ent = if HOST.is_64 { 16 } else { 8 };
    let load = (0..phnum)
        .filter_map(|i| phdr(t, i, &HOST))
        .filter(|p| p.kind == PT_LOAD)
        .find(|p| p.vaddr <= d.vaddr && d.vaddr - p.vaddr < p.filesz)?;
    let start = load.offset.checked_add(d.vaddr - load.vaddr)?;
    let seg_end = load.offset.checked_add(load.filesz)?;
    let end = start.saturating_add(d.filesz.min(d.memsz)).min(seg_end);
    let (start, end) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
    let mut out = Vec::new();
    let mut at = start;
    while at
        .checked_add(ent)
        .is_some_and(|e| e <= data.len() && e <= end)
    {
        match HOST.addr(data, at) {
            Some(DT_NULL) | None => break,
            Some(tag) => out.push((tag, at + ent / 2)),
        }
        at += ent;
    }
    Some((out, d.flags & PF_W != 0))
}

/// Whether the values the module adds to a load address (DT_STRTAB, DT_RUNPATH) are ones a
/// loader could map: a value near the top of the address space wraps around at one load
/// address and not at another, so the two readings may rightly differ.
fn dynamic_values_sane(data: &[u8]) -> bool {
    let w = if HOST.is_64 { 8 } else { 4 };
    dynamic_entries(data).is_none_or(|(entries, _)| {
        entries
            .iter()
            .filter(|(tag, _)| matches!(*tag, DT_STRTAB | DT_RUNPATH))
            .all(|&(_, v)| HOST.word(data, v, w).is_none_or(|x| x < 1 << 40))
    })
}

/// What `elf_get_dynamic_info` does to the file's dynamic section in memory at load address
/// `bias`: `l_addr` added to the last DT_STRTAB entry, unless the segment is read-only.
fn relocate_strtab(data: &mut [u8], bias: u64) {
    let Some((entries, writable)) = dynamic_entries(data) else {
        return;
    };
    if !writable || HOST.ro_dynamic {
        return;
    }
    let Some(&(_, v)) = entries.iter().rfind(|(tag, _)| *tag == DT_STRTAB) else {
        return;
    };
    let w = if HOST.is_64 { 8 } else { 4 };
    let Some(old) = HOST.word(data, v, w) else {
        return;
    };
    let new = old.wrapping_add(bias);
    for i in 0..w {
        let shift = if HOST.big_endian {
            (w - 1 - i) * 8
        } else {
            i * 8
        };
        data[v + i] = (new >> shift) as u8;
    }
}

/// The stale-entry rule written the obvious way (every element substituted into its own
/// buffer), to compare the module's cursor walk with.
fn reference<'d>(el: &'d [u8], raw: &[u8], origin: Origin<'_>) -> Step<'d> {
    let mut elems: Vec<Option<Vec<u8>>> = Vec::new();
    if !raw.is_empty() {
        for comp in raw.split(|b| *b == b':') {
            let mut out = vec![0u8; 4096];
            match runpath::expand(comp, origin, &mut out) {
                runpath::Dir::Is(w) => elems.push(Some(out[..w].to_vec())),
                runpath::Dir::Dropped => {}
                runpath::Dir::Unknown => elems.push(None),
            }
        }
    }
    let current = |d: &[u8]| {
        if elems.iter().any(|e| e.as_deref() == Some(d)) {
            runpath::Current::Yes
        } else if elems.iter().any(|e| e.is_none()) {
            runpath::Current::Unknown
        } else {
            runpath::Current::No
        }
    };
    match el.split_first() {
        Some((b'=', p)) if p.first() == Some(&b'/') => match current(runpath::path_dir(p)) {
            runpath::Current::No => Step::Skip,
            runpath::Current::Unknown => Step::Stock,
            runpath::Current::Yes if p.contains(&b'$') => Step::Stock,
            runpath::Current::Yes => Step::Try(p),
        },
        Some((b'?', d)) => {
            let mut out = vec![0u8; 4096];
            match runpath::expand(d, origin, &mut out) {
                runpath::Dir::Dropped => Step::Skip,
                runpath::Dir::Unknown => Step::Stock,
                runpath::Dir::Is(w) => match current(&out[..w]) {
                    runpath::Current::No => Step::Skip,
                    _ => Step::Stock,
                },
            }
        }
        _ => Step::Skip,
    }
}

fn check_at(data: &[u8], bias: u64) -> bool {
    let Some((table, phnum)) = table(data) else {
        return false;
    };
    let loads = (0..phnum)
        .filter_map(|i| phdr(table, i, &HOST))
        .filter(|p| p.kind == PT_LOAD)
        .collect();
    let img = Image {
        bytes: data,
        bias,
        loads,
    };
    // l_ld as the loader would have it: the PT_DYNAMIC's address, else a wrong one.
    let l_ld = (0..phnum)
        .filter_map(|i| phdr(table, i, &HOST))
        .find(|p| p.kind == PT_DYNAMIC)
        .map_or(bias, |p| bias.wrapping_add(p.vaddr));
    let Some(o) = object(table, phnum, bias, l_ld, &HOST, &img) else {
        return false;
    };
    if let Some((a, l)) = o.runpath {
        let rp = img
            .get(a, l + 1)
            .expect("the run path lies inside the object");
        assert_eq!(rp.last(), Some(&0), "the run path ends in its NUL");
        assert!(!rp[..rp.len() - 1].contains(&0));
    }
    let Some((addr, len)) = o.note else {
        return false;
    };
    let (ra, rl) = o
        .runpath
        .expect("a note is used only for a DT_RUNPATH object");
    let raw = img
        .get(ra, rl)
        .expect("the run path lies inside the object");
    let desc = img.get(addr, len).expect("the note lies inside the object");
    assert!(valid_desc(desc));
    let sorted = sorted(desc);
    // Every soname of the note finds its own list (from the start, and from wherever the last
    // lookup left off when the names are sorted); each element is classified as the obvious
    // implementation of the rule does, whatever the walk's starting point.
    let (mut a, mut b) = (vec![0u8; 4096], vec![0u8; 4096]);
    let mut note_at = 0;
    let mut rp_at = 0;
    let mut parts = desc[..desc.len() - 1].split(|b| *b == 0);
    while let Some(soname) = parts.next() {
        if soname.is_empty() {
            break;
        }
        let list = find(desc, soname).expect("a recorded soname is found");
        assert!(!list.is_empty());
        if sorted {
            let (l2, next) = find_from(desc, soname, note_at).expect("found from the cursor");
            assert_eq!(l2, list);
            note_at = next;
        }
        for origin in [Origin::Dir(b"/origin/lib"), Origin::Unknown] {
            let rp = RunPath { raw, origin };
            for el in list.split(|b| *b == b':') {
                let got = step(el, &rp, &mut rp_at, &mut a, &mut b);
                assert_eq!(got, reference(el, raw, origin), "{el:?} in {raw:?}");
                if let Step::Try(p) = got {
                    assert!(p.starts_with(b"/") && !p.contains(&b'$') && !p.contains(&0));
                }
            }
        }
        parts.next();
    }
    true
}
