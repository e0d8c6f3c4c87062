//! Post-link fallback: put a `.note.nixos.ldcache` note into an already linked ELF that has no room
//! reserved for it (`ldnote patch`, or a linker that dropped the reserved section).
//!
//! # Strategy
//!
//! The loader finds the note only through a PT_NOTE program header inside a PT_LOAD, so the note
//! needs mapped bytes *and*, usually, one more program header. The program header table sits at
//! the start of the first PT_LOAD, directly followed by `.interp`, the notes, `.dynsym` and the
//! other dynamic-linking tables, so it cannot grow in place. Moving the table itself elsewhere
//! works for the loader but not for GNU `strip`/`objcopy`: BFD always rewrites the table right after
//! the ELF header and then shifts every section behind it (tried: the stripped program crashes).
//! So the table stays where it is, and what is in its way moves instead:
//!
//! * Only tables that nothing reaches by address except program headers and dynamic tags are
//!   moved: `.interp`, notes, hash tables, `.dynsym`, `.dynstr`, version tables, dynamic
//!   relocations. Each moves as a unit with the segments and tag ranges over it, its internal
//!   layout intact; PT_INTERP / PT_NOTE / PT_GNU_PROPERTY, the dynamic tags and the symbols
//!   defined in it are shifted. Anything else in the way (code, `.rodata`) makes the plan fail.
//! * Where the moved units and the note go, cheapest first:
//!   1. If there is a 4-aligned PT_NOTE, its notes move and our note is appended to it, so no
//!      program header is added and the table need not grow at all.
//!   2. The bytes after a PT_LOAD that are free both in the file and in the address space (GNU ld
//!      and gold leave up to a page of padding between segments; GNU ld on aarch64 up to 64 KiB):
//!      that PT_LOAD grows over them. Zero bytes of file growth beyond the section headers.
//!   3. Otherwise (lld, mold pack the file) a new PT_LOAD at the end of the file. Its address is
//!      free to choose, so it is picked above every segment and congruent to its offset modulo the
//!      largest `p_align` of the existing PT_LOADs (64 KiB pages on aarch64/ppc64) without any
//!      file padding: it costs only the moved bytes and the note (patchelf pads to a page).
//!      Its `p_vaddr - p_offset` is kept no smaller than any existing PT_LOAD's: qemu-user derives
//!      AT_PHDR from the smallest one (patchelf pads ET_EXEC files for the same reason). It starts
//!      a byte before the first table in it: llvm-objcopy treats a segment that starts at the
//!      same offset as an earlier program header (PT_INTERP) as that one's child and then drops
//!      its page alignment.
//! * The grown program header table, a grown PT_LOAD and a new PT_LOAD must not cover the address
//!   of an allocated section that stays, NOBITS ones included: BFD lays sections out by address
//!   and would shift them (seen with mold executables that patchelf had already rewritten).
//! * The new section header goes at the end of the section header table and its name at the end
//!   of `.shstrtab`; both tables are rewritten at the end of the file (in place of the old ones
//!   when they end the file, as they do after every linker we serve).
//!
//! Everything else keeps its bytes and offsets; code, data and `.dynamic` keep their addresses,
//! so non-PIE executables are fine. Limits: a program whose code takes the address of a moved
//! table (a linker-script symbol such as `__build_id_start` inside `.note.gnu.build-id`) would
//! read zeros there; no linker does that by default.
//!
//! The result is a [`Rewrite`]: the input's bytes up to the rewritten tail, a few edits over them,
//! and the new tail. Its size follows the headers and the moved tables, not the file, so a
//! caller can copy the unchanged bytes file to file; [`append_note`] builds it in memory.

pub mod file;
mod image;
mod plan;
pub mod replace;
mod rewrite;
pub mod stream;
mod write;

use object::{elf, ReadRef};

use crate::elf::dynamic::{self, DynEntry};
use crate::elf::notes;
use crate::note::{NOTE_NAME, NOTE_TYPE, SECTION_NAME};
use image::Image;
use plan::Ctx;
pub use rewrite::{overlay, Rewrite};

/// Why a note could not be appended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendError {
    /// The input does not start with an ELF header.
    #[error("not an ELF file")]
    NotElf,
    /// The input is truncated or its headers contradict each other.
    #[error("corrupt or truncated ELF file: {0}")]
    Corrupt(&'static str),
    /// A relocatable object: the note belongs in the linked output.
    #[error("relocatable object (ET_REL): the note belongs in a linked executable or library")]
    Relocatable,
    /// Neither an executable nor a shared object.
    #[error("unsupported ELF file type {0} (expected ET_EXEC or ET_DYN)")]
    UnsupportedType(u16),
    /// A legal ELF feature this embedder does not handle.
    #[error("unsupported ELF layout: {0}")]
    Unsupported(&'static str),
    /// The file has no section headers to add `.note.nixos.ldcache` to.
    #[error("the file has no section headers")]
    NoSectionHeaders,
    /// The file already carries a resolution note.
    #[error("the file already has a .note.nixos.ldcache note")]
    AlreadyPresent,
    /// The bytes to embed are not a 4-byte aligned, non-empty note section.
    #[error("invalid note section: {0}")]
    BadSection(&'static str),
    /// No placement keeps the program loadable.
    #[error("no room can be made for the note: {0}")]
    NoRoom(&'static str),
    /// The new image cannot be allocated (a large output under a memory limit).
    #[error("not enough memory for the rewritten file ({0} bytes)")]
    NoMemory(u64),
    /// The rewritten file would not show the note to the loader (an existing PT_NOTE holds a
    /// malformed note that stops the loader's walk before the appended one).
    #[error("the loader would not find the appended note: {0}")]
    NotFound(&'static str),
}

/// `data`: a linked ELF (ET_EXEC or ET_DYN, 32/64-bit, LE/BE) with no `.note.nixos.ldcache`
/// section. `section`: the complete bytes to place in a new section `.note.nixos.ldcache`
/// (already-encoded note(s), 4-byte aligned length). Returns the whole new file image, checked
/// with [`verify`].
pub fn append_note(data: &[u8], section: &[u8]) -> Result<Vec<u8>, AppendError> {
    let new = plan_append(data, section)?.to_bytes(data)?;
    verify(new.as_slice(), section)?;
    Ok(new)
}

/// What [`append_note`] does, without building the new file: the [`Rewrite`] that turns `data`
/// into it. Only the headers, the dynamic and note segments, the symbol tables, the section name
/// table and the tables that move are read from `data` (a byte slice, or an
/// `object::ReadCache` over a file), so memory does not grow with the file. The caller writes
/// the result and checks it with [`verify`].
pub fn plan_append<'d, R: ReadRef<'d>>(data: R, section: &[u8]) -> Result<Rewrite, AppendError> {
    if section.is_empty() || section.len() % 4 != 0 {
        return Err(AppendError::BadSection(
            "length must be a non-zero multiple of 4",
        ));
    }
    let img = Image::parse(data)?;
    if img.secs.iter().any(|s| s.name == SECTION_NAME) || has_resolution_note(&img, data) {
        return Err(AppendError::AlreadyPresent);
    }
    if img.loads().next().is_none() {
        return Err(AppendError::NoRoom("the file has no PT_LOAD"));
    }
    let page = img.loads().map(|l| l.align).max().unwrap_or(0).max(0x1000);
    if !page.is_power_of_two() {
        return Err(AppendError::Corrupt(
            "PT_LOAD alignment is not a power of two",
        ));
    }
    let len = data
        .len()
        .map_err(|()| AppendError::Corrupt("file length"))?;
    let ctx = Ctx {
        dynamic: read_dynamic(&img, data)?,
        note_len: section.len() as u64,
        tail: reclaimable_tail(&img, len),
        page,
        img: &img,
    };
    let plan = ctx.plan()?;
    write::apply(&ctx, data, &plan, section, SECTION_NAME)
}

/// Read the rewritten file back the way the loader walks it: the first live resolution note
/// must be the one just placed, byte for byte. A malformed note earlier in a PT_NOTE segment
/// (bogus `n_namesz`/`n_descsz`) ends the walk before an appended note, and a file that cannot
/// be read back must not replace the linker's output. `new`: the bytes, or an
/// `object::ReadCache` over the written file.
pub fn verify<'d, R: ReadRef<'d>>(new: R, section: &[u8]) -> Result<(), AppendError> {
    let info = crate::elf::read(new)
        .map_err(|_| AppendError::NotFound("the rewritten file does not read back"))?;
    let live = info.live_note().ok_or(AppendError::NotFound(
        "a malformed note ends the PT_NOTE walk before it",
    ))?;
    let ours = new
        .read_bytes_at(live.offset, section.len() as u64)
        .is_ok_and(|b| b == section);
    if !live.in_bounds || !ours {
        return Err(AppendError::NotFound(
            "another resolution note comes first in the PT_NOTE walk",
        ));
    }
    Ok(())
}

/// Where the section name table and the section header table can be rewritten: the start of
/// their run at the end of the file, if nothing else follows them; otherwise the end of the file.
fn reclaimable_tail(img: &Image, len: u64) -> u64 {
    let (sh_lo, sh_hi) = img.sh_table();
    if sh_hi != len {
        return len;
    }
    let strtab = &img.secs[img.shstrndx];
    let kept_end = img
        .secs
        .iter()
        .enumerate()
        .skip(1)
        .filter(|&(i, _)| i != img.shstrndx)
        .filter_map(|(_, s)| s.file_range().map(|r| r.1))
        .chain(img.segs.iter().map(|s| s.file_end()))
        .chain([img.ph_end(img.segs.len())])
        .max()
        .unwrap_or(0);
    let str_end = strtab.offset.saturating_add(strtab.size);
    // The name table is reclaimed with the header table when only alignment padding separates them.
    if strtab.offset >= kept_end && str_end <= sh_lo && sh_lo - str_end < img.word() {
        strtab.offset
    } else if sh_lo >= kept_end.max(str_end) {
        sh_lo
    } else {
        len
    }
}

/// The entries of the first PT_DYNAMIC, with the file offset of each value field.
fn read_dynamic<'d, R: ReadRef<'d>>(img: &Image, data: R) -> Result<Vec<DynEntry>, AppendError> {
    let Some(seg) = img.segs.iter().find(|s| s.p_type == elf::PT_DYNAMIC) else {
        return Ok(Vec::new());
    };
    let bytes = data
        .read_bytes_at(seg.offset, seg.filesz)
        .map_err(|()| AppendError::Corrupt("dynamic section"))?;
    Ok(dynamic::entries(bytes, seg.offset, img.is64, img.endian))
}

/// Is a NixOS resolution note already reachable through a PT_NOTE (even without its section)?
/// Read with the loader's walk ([`crate::elf::notes`]).
fn has_resolution_note<'d, R: ReadRef<'d>>(img: &Image, data: R) -> bool {
    img.segs
        .iter()
        .filter(|s| s.p_type == elf::PT_NOTE)
        .filter_map(|s| Some((data.read_bytes_at(s.offset, s.filesz).ok()?, s.align)))
        .any(|(bytes, align)| {
            notes::walk(bytes, align, img.endian)
                .any(|n| n.n_type == NOTE_TYPE && n.owner_is(bytes, NOTE_NAME))
        })
}

#[cfg(test)]
mod tests;
