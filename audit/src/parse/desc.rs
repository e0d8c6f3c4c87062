//! The resolution note's descriptor: the loader's whole-descriptor checks, and the lookup of a
//! name's path list (pairs of NUL-terminated soname and path list, ended by an empty soname).

/// The loader's checks of a whole descriptor: more than 2 bytes, ending in two NULs, every
/// pair up to the first empty soname with a non-empty path list.
pub fn valid_desc(d: &[u8]) -> bool {
    if d.len() <= 2 || d[d.len() - 1] != 0 || d[d.len() - 2] != 0 {
        return false;
    }
    let mut parts = d[..d.len() - 1].split(|b| *b == 0);
    while let Some(soname) = parts.next() {
        if soname.is_empty() {
            break;
        }
        match parts.next() {
            Some(list) if !list.is_empty() => {}
            _ => return false,
        }
    }
    true
}

/// Index of the first NUL in `s` at or after `from` (`s.len()` if none): eight bytes at a time,
/// since every lookup walks the note's pairs up to the name asked for.
fn nul(s: &[u8], from: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = from;
    while let Some(w) = s.get(i..i + 8).and_then(|w| <[u8; 8]>::try_from(w).ok()) {
        let v = u64::from_ne_bytes(w);
        if v.wrapping_sub(ONES) & !v & HIGHS != 0 {
            break;
        }
        i += 8;
    }
    while i < s.len() && s[i] != 0 {
        i += 1;
    }
    i.min(s.len())
}

/// The path list of the first pair for `name` in a descriptor that passed [`valid_desc`] (the
/// module checks each note once, when it first reads it; a descriptor that did not pass may
/// give a wrong answer but is never read out of bounds).
pub fn find<'d>(d: &'d [u8], name: &[u8]) -> Option<&'d [u8]> {
    find_from(d, name, 0).map(|(list, _)| list)
}

/// [`find`] starting at the pair at offset `from` and wrapping around: the path list and the
/// offset of the pair after it. The loader asks for an object's needed names in `DT_NEEDED`
/// order, which is often the note's order, so starting after the last hit makes a lookup walk
/// one pair instead of half the note. Only for a descriptor whose names are [`sorted`] (each
/// name occurs once, so the first pair found is the first pair), with `from` an offset this
/// function returned (or 0).
pub fn find_from<'d>(d: &'d [u8], name: &[u8], from: usize) -> Option<(&'d [u8], usize)> {
    let end = d.len().checked_sub(1)?;
    let from = if from < end { from } else { 0 };
    let scan = |mut p: usize, stop: usize| {
        while p < stop && d[p] != 0 {
            let s_end = nul(d, p);
            let l_start = s_end + 1;
            let l_end = nul(d, l_start);
            if s_end - p == name.len() && d.get(p..s_end) == Some(name) {
                return Some((d.get(l_start..l_end)?, l_end + 1));
            }
            p = l_end + 1;
        }
        None
    };
    scan(from, end).or_else(|| scan(0, from))
}

/// Whether the descriptor's names are in strictly increasing byte order (writers sort them),
/// which makes each name unique and lets [`find_from`] start anywhere.
pub fn sorted(d: &[u8]) -> bool {
    let Some(end) = d.len().checked_sub(1) else {
        return false;
    };
    let mut prev: Option<&[u8]> = None;
    let mut p = 0;
    while p < end && d[p] != 0 {
        let s_end = nul(d, p);
        let name = &d[p..s_end];
        if prev.is_some_and(|q| q >= name) {
            return false;
        }
        prev = Some(name);
        p = nul(d, s_end + 1) + 1;
    }
    true
}
