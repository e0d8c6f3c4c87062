//! `/etc/ld.so.cache` as glibc 2.36 reads it (elf/dl-cache.c, sysdeps/generic/dl-cache.h):
//! the `glibc-ld.so.cache1.1` format, optionally behind the old `ld.so-1.7.0` table, with
//! the glibc-hwcaps extension. A lookup costs no system call; the chosen path then gets one
//! `open_verify`.

use object::Endian as _;

/// One usable entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheEntry {
    /// `flags` (`FLAG_ELF_LIBC6 | arch`).
    pub flags: i32,
    /// The soname key.
    pub key: Vec<u8>,
    /// The library path.
    pub value: Vec<u8>,
    /// The `hwcap` word (bit 62 set: glibc-hwcaps extension index in the low 32 bits).
    pub hwcap: u64,
}

/// A parsed cache.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LdCache {
    /// Entries in file order (sorted by `_dl_cache_libcmp`, hwcaps entries first per name).
    pub entries: Vec<CacheEntry>,
    /// glibc-hwcaps subdirectory names from the extension directory.
    pub hwcaps: Vec<Vec<u8>>,
}

/// Why a cache file was not understood (the loader then ignores it for the process).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// Neither magic.
    #[error("not an ld.so.cache (bad magic)")]
    Magic,
    /// Cut off or with out-of-range offsets.
    #[error("truncated ld.so.cache")]
    Truncated,
}

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const EXT_MAGIC: u32 = 0xeaa4_2174;
const EXT_TAG_HWCAPS: u32 = 1;
const HWCAP_EXTENSION: u64 = 1 << 62;

fn u32_at(d: &[u8], o: usize, be: bool) -> Option<u32> {
    let b: [u8; 4] = d.get(o..o.checked_add(4)?)?.try_into().ok()?;
    Some(crate::header::byte_order(be).read_u32_bytes(b))
}

fn u64_at(d: &[u8], o: usize, be: bool) -> Option<u64> {
    let b: [u8; 8] = d.get(o..o.checked_add(8)?)?.try_into().ok()?;
    Some(crate::header::byte_order(be).read_u64_bytes(b))
}

fn cstr(d: &[u8], o: usize) -> Option<Vec<u8>> {
    let rest = d.get(o..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    Some(rest[..end].to_vec())
}

impl LdCache {
    /// Parse a cache file. `big_endian` is the target's byte order (the new format's `flags`
    /// byte records it too; a mismatch makes the loader ignore the file).
    pub fn parse(data: &[u8], big_endian: bool) -> Result<Self, CacheError> {
        let mut base = 0usize;
        if data.starts_with(OLD_MAGIC) {
            // Old header: magic (11), nlibs (u32 at 12), then 12-byte entries; the new format
            // follows, aligned to 8 (ALIGN_CACHE).
            let n = u32_at(data, 12, big_endian).ok_or(CacheError::Truncated)? as usize;
            base = (16 + n * 12).div_ceil(8) * 8;
        }
        let d = data.get(base..).ok_or(CacheError::Truncated)?;
        if !d.starts_with(NEW_MAGIC) {
            return Err(CacheError::Magic);
        }
        let be = big_endian;
        let nlibs = u32_at(d, 20, be).ok_or(CacheError::Truncated)? as usize;
        let ext_off = u32_at(d, 32, be).ok_or(CacheError::Truncated)? as usize;
        let mut out = LdCache::default();
        // Strings are offsets from the start of the new-format header.
        for i in 0..nlibs {
            let e = 48 + i * 24;
            let flags = u32_at(d, e, be).ok_or(CacheError::Truncated)? as i32;
            let key = u32_at(d, e + 4, be).ok_or(CacheError::Truncated)? as usize;
            let value = u32_at(d, e + 8, be).ok_or(CacheError::Truncated)? as usize;
            let hwcap = u64_at(d, e + 16, be).ok_or(CacheError::Truncated)?;
            out.entries.push(CacheEntry {
                flags,
                key: cstr(d, key).ok_or(CacheError::Truncated)?,
                value: cstr(d, value).ok_or(CacheError::Truncated)?,
                hwcap,
            });
        }
        if ext_off != 0 && u32_at(d, ext_off, be) == Some(EXT_MAGIC) {
            let count = u32_at(d, ext_off + 4, be).unwrap_or(0) as usize;
            for s in 0..count {
                let sec = ext_off + 8 + s * 16;
                let (Some(tag), Some(off), Some(size)) = (
                    u32_at(d, sec, be),
                    u32_at(d, sec + 8, be),
                    u32_at(d, sec + 12, be),
                ) else {
                    break;
                };
                if tag == EXT_TAG_HWCAPS {
                    // An array of u32 string offsets.
                    for k in 0..(size as usize / 4) {
                        if let Some(so) = u32_at(d, off as usize + 4 * k, be) {
                            out.hwcaps.push(cstr(d, so as usize).unwrap_or_default());
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// `search_cache`: among the entries for `name` with acceptable `flags`, the usable
    /// glibc-hwcaps entry of highest priority (position in `active`), else the first plain
    /// entry. Legacy-hwcap entries (nonzero `hwcap` without the extension bit) are not
    /// usable here: `ldconfig` of glibc 2.36 no longer writes them.
    pub fn lookup(&self, name: &[u8], flags_ok: &[i32], active: &[Vec<u8>]) -> Option<&[u8]> {
        let mut best: Option<(usize, &CacheEntry)> = None;
        for e in self
            .entries
            .iter()
            .filter(|e| libcmp(name, &e.key) == std::cmp::Ordering::Equal)
        {
            if !flags_ok.contains(&e.flags) {
                continue;
            }
            if e.hwcap >> 32 == HWCAP_EXTENSION >> 32 {
                let idx = (e.hwcap & 0xffff_ffff) as usize;
                let Some(sub) = self.hwcaps.get(idx) else {
                    continue;
                };
                let Some(prio) = active.iter().position(|a| a == sub) else {
                    continue;
                };
                if !matches!(best, Some((p, _)) if p <= prio) {
                    best = Some((prio, e));
                }
                continue;
            }
            if let Some((_, b)) = best {
                return Some(&b.value);
            }
            if e.hwcap != 0 {
                continue;
            }
            return Some(&e.value);
        }
        best.map(|(_, e)| e.value.as_slice())
    }
}

/// `_dl_cache_libcmp`: runs of digits compare numerically, other bytes bytewise.
pub fn libcmp(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut i, mut j) = (0, 0);
    let at = |s: &[u8], k: usize| s.get(k).copied().unwrap_or(0);
    while at(a, i) != 0 {
        let (c1, c2) = (at(a, i), at(b, j));
        if c1.is_ascii_digit() {
            if !c2.is_ascii_digit() {
                return Ordering::Greater;
            }
            let (mut v1, mut v2) = (0u128, 0u128);
            while at(a, i).is_ascii_digit() {
                v1 = v1
                    .saturating_mul(10)
                    .saturating_add(u128::from(at(a, i) - b'0'));
                i += 1;
            }
            while at(b, j).is_ascii_digit() {
                v2 = v2
                    .saturating_mul(10)
                    .saturating_add(u128::from(at(b, j) - b'0'));
                j += 1;
            }
            if v1 != v2 {
                return v1.cmp(&v2);
            }
        } else if c2.is_ascii_digit() {
            return Ordering::Less;
        } else if c1 != c2 {
            return c1.cmp(&c2);
        } else {
            i += 1;
            j += 1;
        }
    }
    0u8.cmp(&at(b, j))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Build a new-format cache image (little endian) from (flags, key, value, hwcap).
    pub(crate) fn image(entries: &[(i32, &str, &str, u64)], hwcaps: &[&str]) -> Vec<u8> {
        let mut strings: Vec<u8> = Vec::new();
        let head = 48 + entries.len() * 24;
        let add = |s: &str, strings: &mut Vec<u8>| {
            let o = head + strings.len();
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
            o as u32
        };
        let mut ents = Vec::new();
        for (f, k, v, h) in entries {
            let ko = add(k, &mut strings);
            let vo = add(v, &mut strings);
            ents.push((*f, ko, vo, *h));
        }
        let hw_offs: Vec<u32> = hwcaps.iter().map(|h| add(h, &mut strings)).collect();
        let mut d = NEW_MAGIC.to_vec();
        d.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        d.extend_from_slice(&(strings.len() as u32).to_le_bytes());
        d.extend_from_slice(&[2, 0, 0, 0]);
        let ext_pos = (head + strings.len()).div_ceil(4) * 4;
        d.extend_from_slice(&(if hwcaps.is_empty() { 0 } else { ext_pos as u32 }).to_le_bytes());
        d.extend_from_slice(&[0; 12]);
        for (f, k, v, h) in ents {
            d.extend_from_slice(&f.to_le_bytes());
            d.extend_from_slice(&k.to_le_bytes());
            d.extend_from_slice(&v.to_le_bytes());
            d.extend_from_slice(&0u32.to_le_bytes());
            d.extend_from_slice(&h.to_le_bytes());
        }
        d.extend_from_slice(&strings);
        if !hwcaps.is_empty() {
            d.resize(ext_pos, 0);
            let arr = ext_pos + 8 + 16;
            d.extend_from_slice(&EXT_MAGIC.to_le_bytes());
            d.extend_from_slice(&1u32.to_le_bytes());
            d.extend_from_slice(&EXT_TAG_HWCAPS.to_le_bytes());
            d.extend_from_slice(&0u32.to_le_bytes());
            d.extend_from_slice(&(arr as u32).to_le_bytes());
            d.extend_from_slice(&((hw_offs.len() * 4) as u32).to_le_bytes());
            for o in hw_offs {
                d.extend_from_slice(&o.to_le_bytes());
            }
        }
        d
    }

    #[test]
    fn picks_by_flags_and_hwcaps_priority() {
        let img = image(
            &[
                (
                    0x303,
                    "libz.so.1",
                    "/l/glibc-hwcaps/x86-64-v2/libz.so.1",
                    HWCAP_EXTENSION | 1,
                ),
                (
                    0x303,
                    "libz.so.1",
                    "/l/glibc-hwcaps/x86-64-v3/libz.so.1",
                    HWCAP_EXTENSION,
                ),
                (0x0a03, "libz.so.1", "/arm/libz.so.1", 0),
                (0x303, "libz.so.1", "/l/libz.so.1", 0),
            ],
            &["x86-64-v3", "x86-64-v2"],
        );
        let c = LdCache::parse(&img, false).expect("parses");
        let v2 = vec![b"x86-64-v2".to_vec()];
        let v3 = vec![b"x86-64-v3".to_vec(), b"x86-64-v2".to_vec()];
        assert_eq!(
            c.lookup(b"libz.so.1", &[0x303], &v3),
            Some(&b"/l/glibc-hwcaps/x86-64-v3/libz.so.1"[..])
        );
        assert_eq!(
            c.lookup(b"libz.so.1", &[0x303], &v2),
            Some(&b"/l/glibc-hwcaps/x86-64-v2/libz.so.1"[..])
        );
        assert_eq!(
            c.lookup(b"libz.so.1", &[0x303], &[]),
            Some(&b"/l/libz.so.1"[..])
        );
        assert_eq!(
            c.lookup(b"libz.so.1", &[0x0a03], &[]),
            Some(&b"/arm/libz.so.1"[..])
        );
        assert_eq!(c.lookup(b"libq.so", &[0x303], &[]), None);
    }

    #[test]
    fn libcmp_is_numeric_on_digit_runs() {
        use std::cmp::Ordering::*;
        assert_eq!(libcmp(b"libc.so.6", b"libc.so.6"), Equal);
        assert_eq!(libcmp(b"libx.so.10", b"libx.so.9"), Greater);
        assert_eq!(libcmp(b"libx.so.01", b"libx.so.1"), Equal);
        assert_eq!(libcmp(b"liba", b"libb"), Less);
    }

    #[test]
    fn garbage_is_rejected() {
        assert_eq!(LdCache::parse(b"hello", false), Err(CacheError::Magic));
        assert_eq!(LdCache::parse(NEW_MAGIC, false), Err(CacheError::Truncated));
    }
}
