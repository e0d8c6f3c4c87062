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

/// Run the module's reading of `data` as the headers and memory of a loaded object; whether a
/// note was found.
pub fn check(data: &[u8]) -> bool {
    let _ = loadable(data, &HOST);
    let bias = 0x5555_0000_0000u64;
    let Some((phoff, phnum)) = phdr_table(data, &HOST) else {
        return false;
    };
    let Some(table) = usize::try_from(phoff)
        .ok()
        .and_then(|o| Some((o, o.checked_add(phnum.checked_mul(HOST.phdr_size())?)?)))
        .and_then(|(o, e)| data.get(o..e))
    else {
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
    let Some((addr, len)) = o.note else {
        return false;
    };
    assert!(o.runpath, "a note is used only for a DT_RUNPATH object");
    let desc = img.get(addr, len).expect("the note lies inside the object");
    assert!(valid_desc(desc));
    // Every soname of the note finds its own list; each element is classified.
    let mut parts = desc[..desc.len() - 1].split(|b| *b == 0);
    while let Some(soname) = parts.next() {
        if soname.is_empty() {
            break;
        }
        let list = find(desc, soname).expect("a recorded soname is found");
        assert!(!list.is_empty());
        for el in list.split(|b| *b == b':') {
            if let Step::Try(p) = step(el) {
                assert!(p.starts_with(b"/") && !p.contains(&b'$') && !p.contains(&0));
            }
        }
        parts.next();
    }
    true
}
