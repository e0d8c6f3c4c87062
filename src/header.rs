//! The ELF file header from its first bytes, through `object`'s typed headers, and the byte
//! order as `object` names it: for the readers that look only at a header (the loader's
//! `open_verify` checks of a candidate in `target::verify`, the link plan's look at an input
//! object) and for every writer of words in a file's byte order.

use object::elf::{FileHeader32, FileHeader64};
use object::pod::from_bytes;
use object::read::elf::FileHeader;
use object::Endianness;

/// `object`'s byte order for an `EI_DATA` that is (`big`) or is not `ELFDATA2MSB`.
pub fn byte_order(big: bool) -> Endianness {
    if big {
        Endianness::Big
    } else {
        Endianness::Little
    }
}

/// The header fields after `e_ident` that these readers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fields {
    /// `e_type`.
    pub e_type: u16,
    /// `e_machine`.
    pub e_machine: u16,
    /// `e_version`.
    pub e_version: u32,
    /// `e_flags`.
    pub e_flags: u32,
    /// `e_phentsize`.
    pub e_phentsize: u16,
}

/// The fields of a header of this class and byte order, if `head` holds all of it (52 bytes
/// for ELFCLASS32, 64 for ELFCLASS64).
pub fn fields(head: &[u8], is_64: bool, e: Endianness) -> Option<Fields> {
    if is_64 {
        fields_of::<FileHeader64<Endianness>>(head, e)
    } else {
        fields_of::<FileHeader32<Endianness>>(head, e)
    }
}

fn fields_of<H: FileHeader<Endian = Endianness>>(head: &[u8], e: Endianness) -> Option<Fields> {
    let (h, _) = from_bytes::<H>(head).ok()?;
    Some(Fields {
        e_type: h.e_type(e),
        e_machine: h.e_machine(e),
        e_version: h.e_version(e),
        e_flags: h.e_flags(e),
        e_phentsize: h.e_phentsize(e),
    })
}

/// `e_ident`'s class and byte order, if `head` starts with the ELF magic: (is 64-bit, byte order).
/// `e_ident` opens the header of both classes; `head` must hold at least an `Elf32_Ehdr`.
pub fn ident(head: &[u8]) -> Option<(bool, Endianness)> {
    let (h, _) = from_bytes::<FileHeader32<Endianness>>(head).ok()?;
    let h = &h.e_ident;
    if h.magic != object::elf::ELFMAG {
        return None;
    }
    Some((
        h.class == object::elf::ELFCLASS64,
        byte_order(h.data == object::elf::ELFDATA2MSB),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_sit_where_each_class_puts_them() {
        let mut h64 = vec![0u8; 64];
        h64[..4].copy_from_slice(&object::elf::ELFMAG);
        h64[4] = object::elf::ELFCLASS64;
        h64[5] = object::elf::ELFDATA2MSB;
        h64[16..18].copy_from_slice(&1u16.to_be_bytes());
        h64[18..20].copy_from_slice(&62u16.to_be_bytes());
        h64[48..52].copy_from_slice(&7u32.to_be_bytes());
        h64[54..56].copy_from_slice(&56u16.to_be_bytes());
        let (is_64, e) = ident(&h64).expect("ELF");
        assert!(is_64 && e == Endianness::Big);
        let f = fields(&h64, true, e).expect("64 bytes");
        assert_eq!(
            (f.e_type, f.e_machine, f.e_flags, f.e_phentsize),
            (1, 62, 7, 56)
        );
        assert!(fields(&h64[..63], true, e).is_none());
        let mut h32 = vec![0u8; 52];
        h32[36..40].copy_from_slice(&9u32.to_le_bytes());
        h32[42..44].copy_from_slice(&32u16.to_le_bytes());
        let f = fields(&h32, false, Endianness::Little).expect("52 bytes");
        assert_eq!((f.e_flags, f.e_phentsize), (9, 32));
    }
}
