//! The few facts about a loaded object that [`crate::elf::ElfInfo`] does not carry and the
//! loader uses while searching: DT_SONAME (already-loaded matching), DF_1_NODEFLIB (cache and
//! default dirs skipped), and PT_INTERP of the executable (the loader's own path).

use object::elf;
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::{Endianness, FileKind};

/// Extra dynamic facts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extra {
    /// DT_SONAME.
    pub soname: Option<Vec<u8>>,
    /// DT_FLAGS_1 has DF_1_NODEFLIB.
    pub nodeflib: bool,
    /// PT_INTERP without its NUL.
    pub interp: Option<Vec<u8>>,
}

/// Read [`Extra`] from a whole ELF image; malformed parts are simply absent (the main reader
/// in [`crate::elf`] reports real errors).
pub fn extra(data: &[u8]) -> Extra {
    match FileKind::parse(data) {
        Ok(FileKind::Elf32) => extra_as::<elf::FileHeader32<Endianness>>(data),
        Ok(FileKind::Elf64) => extra_as::<elf::FileHeader64<Endianness>>(data),
        _ => None,
    }
    .unwrap_or_default()
}

fn extra_as<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Option<Extra> {
    let hdr = H::parse(data).ok()?;
    let endian = hdr.endian().ok()?;
    let phdrs = hdr.program_headers(endian, data).ok()?;
    let mut out = Extra::default();
    let to_u64 = |v: H::Word| -> u64 { v.into() };
    let loads: Vec<_> = phdrs
        .iter()
        .filter(|p| p.p_type(endian) == elf::PT_LOAD)
        .collect();
    let vaddr_to_off = |addr: u64| -> Option<usize> {
        loads.iter().find_map(|l| {
            let va = to_u64(l.p_vaddr(endian));
            let fs = to_u64(l.p_filesz(endian));
            (addr >= va && addr < va.saturating_add(fs))
                .then(|| usize::try_from(addr - va + to_u64(l.p_offset(endian))).ok())
                .flatten()
        })
    };
    for ph in phdrs {
        match ph.p_type(endian) {
            elf::PT_INTERP => {
                if let Ok(b) = ph.data(endian, data) {
                    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
                    out.interp = Some(b[..end].to_vec());
                }
            }
            elf::PT_DYNAMIC => {
                let Ok(Some(dyns)) = ph.dynamic(endian, data) else {
                    continue;
                };
                let mut strtab = None;
                let mut soname = None;
                for d in dyns {
                    let tag: u64 = d.d_tag(endian).into();
                    let val: u64 = d.d_val(endian).into();
                    if tag == u64::from(elf::DT_NULL) {
                        break;
                    }
                    match tag as u32 {
                        elf::DT_STRTAB => strtab = Some(val),
                        elf::DT_SONAME => soname = Some(val),
                        elf::DT_FLAGS_1 => out.nodeflib = val & u64::from(elf::DF_1_NODEFLIB) != 0,
                        _ => {}
                    }
                }
                if let (Some(st), Some(so)) = (strtab, soname) {
                    let off = vaddr_to_off(st)?.checked_add(usize::try_from(so).ok()?)?;
                    let rest = data.get(off..)?;
                    let end = rest.iter().position(|c| *c == 0)?;
                    out.soname = Some(rest[..end].to_vec());
                }
            }
            _ => {}
        }
    }
    Some(out)
}
