//! Encoding and decoding of the `.note.nixos.ldcache` note (format: docs/note-format.md).
//!
//! The descriptor is `SONAME\0PATHLIST\0 ... \0`; PATHLIST is `:`-separated `=file` / `?dir`
//! elements. Pairs are sorted bytewise by soname (patchelf iterates a `std::map`).

use std::collections::BTreeMap;

/// The note owner, without its terminating NUL.
pub const NOTE_NAME: &[u8] = b"NixOS";
/// `n_type` of the resolution note.
pub const NOTE_TYPE: u32 = 0x63a8_6cb6;
/// Section name used by patchelf and by the loader's tests.
pub const SECTION_NAME: &[u8] = b".note.nixos.ldcache";

/// One element of a PATHLIST.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Entry {
    /// `=PATH`: the loader opens exactly this file (and still verifies it).
    Exact(Vec<u8>),
    /// `?DIR`: the loader searches this directory the normal way.
    Hint(Vec<u8>),
}

impl Entry {
    /// The encoded element: `=path` or `?dir`.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut v);
        v
    }

    /// [`Entry::encode`] appended to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let (tag, body) = self.parts();
        out.push(tag);
        out.extend_from_slice(body);
    }

    /// The length of [`Entry::encode`].
    pub fn encoded_len(&self) -> usize {
        1 + self.parts().1.len()
    }

    fn parts(&self) -> (u8, &[u8]) {
        match self {
            Entry::Exact(p) => (b'=', p),
            Entry::Hint(d) => (b'?', d),
        }
    }
}

/// The decoded content of a note: soname -> entries, in bytewise soname order.
pub type Entries = BTreeMap<Vec<u8>, Vec<Entry>>;

/// Why a descriptor cannot be decoded; mirrors what makes the nixpkgs loader distrust it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// `n_descsz <= 2`: the loader treats this as no cache.
    #[error("descriptor too short ({0} bytes; the loader needs more than 2)")]
    TooShort(usize),
    /// The descriptor does not end in two NULs.
    #[error("descriptor does not end in two NUL bytes")]
    BadTerminator,
    /// A pair is cut off (soname without path list).
    #[error("pair {0} is truncated")]
    Truncated(usize),
    /// A pair has an empty path list: the loader stops trusting the note there.
    #[error("pair {index} (soname `{soname}`) has an empty path list")]
    EmptyPathList {
        /// Index of the pair.
        index: usize,
        /// The soname, lossily printed.
        soname: String,
    },
    /// A path-list element starts with neither `=` nor `?` (the loader ignores it; we report it).
    #[error("element `{0}` starts with neither `=` nor `?`")]
    BadElement(String),
}

/// Encode the descriptor for `entries`. Returns `None` when there is nothing to record
/// (no note is written then, as patchelf does). Sonames with no entry are left out.
pub fn encode_descriptor(entries: &Entries) -> Option<Vec<u8>> {
    // Sized first: one allocation, not one per doubling (a descriptor is a few KiB per link).
    let size: usize = entries
        .iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(soname, list)| {
            soname.len() + 2 + list.iter().map(|e| e.encoded_len() + 1).sum::<usize>()
        })
        .sum();
    let mut out = Vec::with_capacity(size + 1);
    for (soname, list) in entries {
        if list.is_empty() {
            continue;
        }
        out.extend_from_slice(soname);
        out.push(0);
        for (i, e) in list.iter().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            e.encode_into(&mut out);
        }
        out.push(0);
    }
    if out.is_empty() {
        return None;
    }
    out.push(0);
    Some(out)
}

/// Decode a descriptor the way the note-aware loader reads it.
pub fn decode_descriptor(desc: &[u8]) -> Result<Entries, DecodeError> {
    if desc.len() <= 2 {
        return Err(DecodeError::TooShort(desc.len()));
    }
    if !desc.ends_with(&[0, 0]) {
        return Err(DecodeError::BadTerminator);
    }
    // Drop the final list terminator; what remains is NUL-terminated strings in pairs.
    let body = &desc[..desc.len() - 1];
    let mut parts = body.split(|b| *b == 0);
    let mut entries = Entries::new();
    let mut index = 0;
    while let Some(soname) = parts.next() {
        if soname.is_empty() {
            // The trailing split piece after the last NUL.
            break;
        }
        let list = parts.next().ok_or(DecodeError::Truncated(index))?;
        if list.is_empty() {
            return Err(DecodeError::EmptyPathList {
                index,
                soname: String::from_utf8_lossy(soname).into_owned(),
            });
        }
        let slot = entries.entry(soname.to_vec()).or_default();
        for el in list.split(|b| *b == b':') {
            match el.split_first() {
                Some((b'=', p)) => slot.push(Entry::Exact(p.to_vec())),
                Some((b'?', d)) => slot.push(Entry::Hint(d.to_vec())),
                _ => {
                    return Err(DecodeError::BadElement(
                        String::from_utf8_lossy(el).into_owned(),
                    ))
                }
            }
        }
        index += 1;
    }
    Ok(entries)
}

/// Byte order and class of the target, for encoding note headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Big-endian target.
    pub big_endian: bool,
    /// 64-bit target (note headers are 32-bit words on both; kept for completeness).
    pub is_64: bool,
}

fn put_u32(out: &mut Vec<u8>, v: u32, big_endian: bool) {
    use object::Endian as _;
    out.extend_from_slice(&crate::header::byte_order(big_endian).write_u32_bytes(v));
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// A whole note (header, `NixOS\0` padded to 8, descriptor padded to 4), as patchelf writes it.
pub fn encode_note(desc: &[u8], layout: Layout) -> Vec<u8> {
    note_bytes(NOTE_NAME, NOTE_TYPE, desc, layout)
}

/// A generic 4-aligned note with the given owner (without NUL) and type.
pub fn note_bytes(name: &[u8], n_type: u32, desc: &[u8], layout: Layout) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + name.len() + desc.len() + 8);
    let namesz = if name.is_empty() { 0 } else { name.len() + 1 };
    put_u32(&mut out, namesz as u32, layout.big_endian);
    put_u32(&mut out, desc.len() as u32, layout.big_endian);
    put_u32(&mut out, n_type, layout.big_endian);
    if namesz > 0 {
        out.extend_from_slice(name);
        out.push(0);
        pad4(&mut out);
    }
    out.extend_from_slice(desc);
    pad4(&mut out);
    out
}

/// Size of a note holding `desc_len` descriptor bytes with owner `NixOS`.
pub fn note_size(desc_len: usize) -> usize {
    12 + 8 + desc_len.div_ceil(4) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> Entry {
        let b = s.as_bytes();
        match b[0] {
            b'=' => Entry::Exact(b[1..].to_vec()),
            _ => Entry::Hint(b[1..].to_vec()),
        }
    }

    #[test]
    fn encode_matches_patchelf_layout() {
        let mut m = Entries::new();
        m.insert(b"libfoo.so".to_vec(), vec![e("=/tmp/e/lib/libfoo.so")]);
        let d = encode_descriptor(&m).expect("some");
        assert_eq!(d, b"libfoo.so\0=/tmp/e/lib/libfoo.so\0\0");
        let n = encode_note(
            &d,
            Layout {
                big_endian: false,
                is_64: true,
            },
        );
        // Bytes taken from `readelf -x .note.nixos.ldcache` of a patchelf 0.19.3 output.
        assert_eq!(&n[..20], b"\x06\0\0\0\x21\0\0\0\xb6\x6c\xa8\x63NixOS\0\0\0");
        assert_eq!(n.len(), note_size(d.len()));
        assert_eq!(n.len(), 56);
    }

    #[test]
    fn big_endian_header() {
        let n = encode_note(
            b"a\0=b\0\0",
            Layout {
                big_endian: true,
                is_64: true,
            },
        );
        assert_eq!(&n[..12], b"\0\0\0\x06\0\0\0\x06\x63\xa8\x6c\xb6");
    }

    #[test]
    fn empty_is_none_and_sorted() {
        assert_eq!(encode_descriptor(&Entries::new()), None);
        let mut m = Entries::new();
        m.insert(b"libz".to_vec(), vec![e("?/d"), e("=/d2/libz")]);
        m.insert(b"libA".to_vec(), vec![e("?/d")]);
        m.insert(b"libnone".to_vec(), vec![]);
        let d = encode_descriptor(&m).expect("some");
        assert_eq!(d, b"libA\0?/d\0libz\0?/d:=/d2/libz\0\0");
        assert_eq!(decode_descriptor(&d).expect("decodes").len(), 2);
    }

    #[test]
    fn decode_rejects_what_the_loader_rejects() {
        assert_eq!(decode_descriptor(b"\0\0"), Err(DecodeError::TooShort(2)));
        assert_eq!(
            decode_descriptor(b"a\0=b\0x"),
            Err(DecodeError::BadTerminator)
        );
        assert!(matches!(
            decode_descriptor(b"a\0\0\0"),
            Err(DecodeError::EmptyPathList { .. })
        ));
        assert!(matches!(
            decode_descriptor(b"a\0xb\0\0"),
            Err(DecodeError::BadElement(_))
        ));
    }
}
