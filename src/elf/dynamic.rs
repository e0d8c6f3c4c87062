//! PT_DYNAMIC entries, addresses and dynamic strings, read the same way for every reader: the
//! model ([`super::read`]), `explain`'s facts and the append planner (which reads only the
//! headers and the tables it moves, so it takes these functions rather than the whole model).

use object::elf;
use object::pod::slice_from_bytes;
use object::read::elf::Dyn as _;
use object::Endianness;

/// One dynamic entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DynEntry {
    /// `d_tag`.
    pub tag: u64,
    /// `d_val` / `d_ptr`.
    pub val: u64,
    /// File offset of the entry (its `d_tag` field).
    pub at: u64,
    /// File offset of the `d_val` field (for in-place edits).
    pub val_off: u64,
}

/// Size of one dynamic entry in this class.
pub fn entry_size(is_64: bool) -> u64 {
    if is_64 {
        16
    } else {
        8
    }
}

/// The entries of a PT_DYNAMIC whose file bytes are `bytes` (at file offset `offset`), up to
/// and without DT_NULL, as the loader's `elf_get_dynamic_info` reads them; a partial entry at
/// the end is ignored.
pub fn entries(bytes: &[u8], offset: u64, is_64: bool, endian: Endianness) -> Vec<DynEntry> {
    let size = entry_size(is_64);
    let count = bytes.len() / size as usize;
    let raw: Vec<(u64, u64)> = if is_64 {
        slice_from_bytes::<elf::Dyn64<Endianness>>(bytes, count)
            .map(|(d, _)| {
                d.iter()
                    .map(|d| (d.d_tag(endian), d.d_val(endian)))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        slice_from_bytes::<elf::Dyn32<Endianness>>(bytes, count)
            .map(|(d, _)| {
                d.iter()
                    .map(|d| (u64::from(d.d_tag(endian)), u64::from(d.d_val(endian))))
                    .collect()
            })
            .unwrap_or_default()
    };
    raw.into_iter()
        .take_while(|(tag, _)| *tag != u64::from(elf::DT_NULL))
        .enumerate()
        .map(|(i, (tag, val))| {
            let at = offset.saturating_add(i as u64 * size);
            DynEntry {
                tag,
                val,
                at,
                val_off: at.saturating_add(size / 2),
            }
        })
        .collect()
}

/// The first value of `tag`, if any.
pub fn value(entries: &[DynEntry], tag: u32) -> Option<u64> {
    entries
        .iter()
        .find(|e| e.tag == u64::from(tag))
        .map(|e| e.val)
}

/// How one PT_LOAD maps file bytes to addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Load {
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_offset`.
    pub offset: u64,
    /// `p_filesz`.
    pub filesz: u64,
}

/// The file offset of a virtual address, through the first PT_LOAD that maps it from the file
/// (addresses of the zero-filled tail have no file offset).
pub fn addr_to_offset(loads: impl IntoIterator<Item = Load>, addr: u64) -> Option<u64> {
    loads.into_iter().find_map(|l| {
        (addr >= l.vaddr && addr < l.vaddr.saturating_add(l.filesz))
            .then(|| (addr - l.vaddr).checked_add(l.offset))
            .flatten()
    })
}

/// Whether some PT_LOAD maps the file range `off..off+len` (the loader only sees mapped bytes).
pub fn is_mapped(loads: impl IntoIterator<Item = Load>, off: u64, len: u64) -> bool {
    loads
        .into_iter()
        .any(|l| off >= l.offset && off.saturating_add(len) <= l.offset.saturating_add(l.filesz))
}

/// The NUL-terminated string at `off` in a string table.
pub fn string_at(table: &[u8], off: u64) -> Result<&[u8], &'static str> {
    let rest = usize::try_from(off)
        .ok()
        .and_then(|o| table.get(o..))
        .filter(|r| !r.is_empty())
        .ok_or("dynamic string offset out of range")?;
    let end = rest
        .iter()
        .position(|b| *b == 0)
        .ok_or("unterminated dynamic string")?;
    Ok(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stop_at_dt_null_and_know_their_value_offsets() {
        let mut bytes = Vec::new();
        for (tag, val) in [
            (elf::DT_NEEDED, 7u64),
            (elf::DT_STRSZ, 9),
            (elf::DT_NULL, 0),
            (1, 1),
        ] {
            bytes.extend(u64::from(tag).to_be_bytes());
            bytes.extend(val.to_be_bytes());
        }
        bytes.extend([0; 5]);
        let e = entries(&bytes, 0x100, true, Endianness::Big);
        assert_eq!(e.len(), 2);
        assert_eq!(
            e[1],
            DynEntry {
                tag: u64::from(elf::DT_STRSZ),
                val: 9,
                at: 0x110,
                val_off: 0x118
            }
        );
        assert_eq!(value(&e, elf::DT_NEEDED), Some(7));
    }

    #[test]
    fn addresses_map_through_the_file_part_of_a_load() {
        let l = [Load {
            vaddr: 0x1000,
            offset: 0x200,
            filesz: 0x10,
        }];
        assert_eq!(addr_to_offset(l, 0x100f), Some(0x20f));
        assert_eq!(addr_to_offset(l, 0x1010), None);
        assert!(is_mapped(l, 0x200, 0x10));
        assert!(!is_mapped(l, 0x200, 0x11));
    }

    #[test]
    fn strings_end_at_their_nul_inside_the_table() {
        assert_eq!(string_at(b"a\0bc\0", 2), Ok(&b"bc"[..]));
        assert!(string_at(b"a\0bc", 2).is_err());
        assert!(string_at(b"a\0", 2).is_err());
    }
}
