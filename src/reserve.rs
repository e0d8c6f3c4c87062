//! The reservation: an input object, generated for the target, holding a `.note.nixos.ldcache`
//! section of a chosen size with an *inert* note (owner `NixOS`, a type no loader looks for).
//!
//! Every linker we support (GNU ld, gold, lld, mold) places an SHF_ALLOC SHT_NOTE input section
//! in a PT_NOTE inside the first read-only PT_LOAD (NOTE-FORMAT.md, "Facts measured here"), so
//! after the link the note can be filled in place: no relayout, no new segment, a cost
//! independent of the output's size. See `embed` for the fill.

use object::write::Object;
use object::{Architecture, BinaryFormat, Endianness, FileFlags, SectionFlags, SectionKind};

use crate::note::{note_bytes, Layout, NOTE_NAME, SECTION_NAME};
use crate::target::Ident;

/// `n_type` of the inert placeholder note ("ldnr"); the loader only reads type 0x63a86cb6.
pub const PLACEHOLDER_TYPE: u32 = 0x6c64_6e72;
/// Owner of the filler note that pads a filled reservation.
pub const FILLER_NAME: &[u8] = b"ldnote";
/// `n_type` of the filler note.
pub const FILLER_TYPE: u32 = 0x6c64_6e66;

/// Why no reservation could be made.
#[derive(Debug, thiserror::Error)]
pub enum ReserveError {
    /// `object` cannot write objects for this machine.
    #[error("no object writer for e_machine {0}")]
    Machine(u16),
    /// The writer failed.
    #[error("cannot write the reservation object: {0}")]
    Write(String),
}

fn architecture(id: &Ident) -> Option<Architecture> {
    use object::elf::*;
    Some(match (id.machine, id.is_64) {
        (EM_X86_64, true) => Architecture::X86_64,
        (EM_X86_64, false) => Architecture::X86_64_X32,
        (EM_386, false) => Architecture::I386,
        (EM_AARCH64, true) => Architecture::Aarch64,
        (EM_AARCH64, false) => Architecture::Aarch64_Ilp32,
        (EM_ARM, false) => Architecture::Arm,
        (EM_RISCV, true) => Architecture::Riscv64,
        (EM_RISCV, false) => Architecture::Riscv32,
        (EM_PPC64, true) => Architecture::PowerPc64,
        (EM_PPC, false) => Architecture::PowerPc,
        (EM_S390, true) => Architecture::S390x,
        (EM_LOONGARCH, true) => Architecture::LoongArch64,
        (EM_MIPS, true) => Architecture::Mips64,
        (EM_MIPS, false) => Architecture::Mips,
        (EM_SPARCV9, true) => Architecture::Sparc64,
        _ => return None,
    })
}

/// The inert note occupying `size` bytes (a multiple of 4, at least 20).
pub fn placeholder(size: usize, layout: Layout) -> Vec<u8> {
    let desc = vec![0u8; size.saturating_sub(20)];
    note_bytes(NOTE_NAME, PLACEHOLDER_TYPE, &desc, layout)
}

/// A relocatable object for the target `id` (class, byte order, machine, and `e_flags` as the
/// target's other objects have them, so that the linker accepts it) with a reservation of
/// `size` bytes.
pub fn object(id: &Ident, size: usize) -> Result<Vec<u8>, ReserveError> {
    let arch = architecture(id).ok_or(ReserveError::Machine(id.machine))?;
    let endian = if id.big_endian {
        Endianness::Big
    } else {
        Endianness::Little
    };
    let mut obj = Object::new(BinaryFormat::Elf, arch, endian);
    obj.flags = FileFlags::Elf {
        os_abi: 0,
        abi_version: 0,
        e_flags: id.e_flags,
    };
    let size = size.max(20).div_ceil(4) * 4;
    let layout = Layout {
        big_endian: id.big_endian,
        is_64: id.is_64,
    };
    let sec = obj.add_section(Vec::new(), SECTION_NAME.to_vec(), SectionKind::Note);
    let s = obj.section_mut(sec);
    s.flags = SectionFlags::Elf {
        sh_flags: u64::from(object::elf::SHF_ALLOC),
    };
    s.set_data(placeholder(size, layout), 4);
    // Without it GNU ld warns and makes the stack executable.
    let stack = obj.add_section(Vec::new(), b".note.GNU-stack".to_vec(), SectionKind::Other);
    obj.section_mut(stack).flags = SectionFlags::Elf { sh_flags: 0 };
    obj.write().map_err(|e| ReserveError::Write(e.to_string()))
}

/// Bytes to reserve for a link with about `libs` needed names and these run-path components:
/// each name, each hint component once per name, and one exact path per name in the longest
/// directory (the common case), plus 10%. Too small is safe (the post-link fallback takes
/// over); too big wastes file bytes.
pub fn estimate(libs: usize, rpath_components: &[&[u8]]) -> usize {
    // libc.so.6 and the like come from the driver or linker scripts, not from `-l`.
    let names = libs + 3;
    let longest = rpath_components.iter().map(|c| c.len()).max().unwrap_or(0);
    let hints: usize = rpath_components
        .iter()
        .filter(|c| c.is_empty() || c[0] != b'/' || c.contains(&b'$'))
        .map(|c| c.len() + 2)
        .sum();
    // soname + NUL, `=dir/soname` + separator, hints; sonames average well under 24 bytes.
    let per_name = 24 + 1 + 1 + longest + 1 + 24 + 1 + hints;
    let total = 20 + names * per_name + names * per_name / 10;
    total.clamp(256, 1 << 20).div_ceil(8) * 8
}
