//! FNV-1a, 64 bits: the hash of the resolver's maps (run-path components, needed names), and
//! its step over whole words for the reservation cache's file names. Hashing short names per link
//! is on the wrapper's hot path, where the standard library's SipHash cost more than the lookups
//! it serves; the keys are file names of the user's own sysroot, not input an attacker picks to
//! collide.
use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a of `bytes`.
pub const fn hash(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64;
    let mut i = 0;
    while i < bytes.len() {
        h = (h ^ bytes[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
}

/// FNV-1a's step over 8-byte words (little-endian, the last one zero-padded) and the length:
/// the name of a content-addressed file of a few KiB (the reservation object, hashed on every
/// link), at an eighth of [`hash`]'s multiplications. A weaker mix than FNV-1a's; where it is
/// used, equal hashes are checked byte for byte anyway.
pub fn hash_words(bytes: &[u8]) -> u64 {
    let mut h = hash(b"") ^ bytes.len() as u64;
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(w))
            .wrapping_mul(0x0100_0000_01b3)
            .rotate_left(23);
    }
    h
}

/// FNV-1a as a [`Hasher`].
#[derive(Clone, Copy, Debug)]
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(hash(b""))
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// A `HashMap` keyed through [`Fnv`].
pub type Map<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<Fnv>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_fnv1a_vectors() {
        // FNV-1a 64 test vectors (the reference implementation's: "", "a", "foobar").
        assert_eq!(hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash(b"foobar"), 0x8594_4171_f739_67e8);
        let mut h = Fnv::default();
        h.write(b"foo");
        h.write(b"bar");
        assert_eq!(h.finish(), hash(b"foobar"));
    }

    #[test]
    fn words_tell_apart_lengths_and_every_changed_byte() {
        // The zero padding of the last word must not make `a` and `a\0` one name.
        assert_ne!(hash_words(b"a"), hash_words(b"a\0"));
        assert_ne!(hash_words(b""), hash_words(&[0; 8]));
        // A reservation-sized buffer, mostly zeros as the placeholder is: a change of any one
        // byte, in any word and at any position in it, changes the name.
        let base = vec![0u8; 4700];
        let h = hash_words(&base);
        for i in (0..base.len()).step_by(7) {
            let mut b = base.clone();
            b[i] = 1;
            assert_ne!(hash_words(&b), h, "byte {i}");
        }
    }
}
