//! The module's reading of ELF headers, program headers, dynamic sections and the resolution
//! note: pure functions over byte slices and a bounds-checked view of an object's memory, no
//! unsafe code, so that the host tests and the fuzz target exercise exactly what runs inside
//! every audited program.
//!
//! The note rules are those of this project's note-aware loader (loader/README.md): the note is
//! found by walking the PT_NOTE segments that a PT_LOAD maps, note by note, aligning with each
//! segment's `p_align` (at least 4); the first `NixOS` note of type 0x63a86cb6 counts; a
//! descriptor that leaves its segment, is at most 2 bytes, does not end in two NULs or has a pair
//! with an empty path list is not used at all.

/// `n_type` of the resolution note.
pub const NOTE_TYPE: u32 = 0x63a8_6cb6;
const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_NOTE: u32 = 4;
const PF_R: u32 = 4;
const PF_W: u32 = 2;
const DT_NULL: u64 = 0;
const DT_STRTAB: u64 = 5;
const DT_RUNPATH: u64 = 29;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const ELFOSABI_GNU: u8 = 3;

/// What the process's loader accepts (`open_verify` in glibc 2.36 elf/dl-load.c, with the
/// target's `VALID_ELF_OSABI`, `VALID_ELF_ABIVERSION` and `elf_machine_matches_host`). The same
/// values as the project's targets/*.toml.
#[derive(Clone, Copy, Debug)]
pub struct Host {
    /// ELFCLASS64.
    pub is_64: bool,
    /// ELFDATA2MSB.
    pub big_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    /// A third accepted OS ABI besides SYSV and GNU (ARM_AEABI on 32-bit ARM), or 0.
    pub extra_osabi: u8,
    /// `LIBC_ABI_MAX`: ELFOSABI_GNU objects need `EI_ABIVERSION` below it.
    pub abi_version_max: u8,
    /// `e_flags & mask == value` makes the loader skip the file.
    pub reject_flags: &'static [(u32, u32)],
    /// `e_flags & mask != value` makes the loader skip the file.
    pub require_flags: &'static [(u32, u32)],
    /// The loader never adds `l_addr` to the dynamic section's pointers in memory
    /// (`DL_RO_DYN_SECTION`: MIPS and RISC-V, whose dynamic sections are read-only).
    pub ro_dynamic: bool,
}

impl Host {
    /// Size of the ELF header.
    pub fn ehdr_size(&self) -> usize {
        if self.is_64 {
            64
        } else {
            52
        }
    }
    /// Size of one program header.
    pub fn phdr_size(&self) -> usize {
        if self.is_64 {
            56
        } else {
            32
        }
    }
    fn word(&self, b: &[u8], off: usize, len: usize) -> Option<u64> {
        let s = b.get(off..off.checked_add(len)?)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if self.big_endian {
                s[i]
            } else {
                s[len - 1 - i]
            };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    }
    fn half(&self, b: &[u8], off: usize) -> Option<u16> {
        self.word(b, off, 2).map(|v| v as u16)
    }
    fn u32(&self, b: &[u8], off: usize) -> Option<u32> {
        self.word(b, off, 4).map(|v| v as u32)
    }
    /// An address-sized field (`ElfW(Addr)`, `ElfW(Off)`, `ElfW(Xword)`).
    fn addr(&self, b: &[u8], off: usize) -> Option<u64> {
        self.word(b, off, if self.is_64 { 8 } else { 4 })
    }
}

/// The host this module is built for.
pub const HOST: Host = host();

const fn host() -> Host {
    let base = Host {
        is_64: cfg!(target_pointer_width = "64"),
        big_endian: cfg!(target_endian = "big"),
        machine: 0,
        extra_osabi: 0,
        abi_version_max: 4,
        reject_flags: &[],
        require_flags: &[],
        ro_dynamic: cfg!(any(target_arch = "mips64", target_arch = "riscv64")),
    };
    if cfg!(target_arch = "x86_64") {
        Host {
            machine: 62,
            ..base
        }
    } else if cfg!(target_arch = "aarch64") {
        Host {
            machine: 183,
            abi_version_max: 3,
            ..base
        }
    } else if cfg!(target_arch = "x86") {
        Host { machine: 3, ..base }
    } else if cfg!(target_arch = "arm") {
        // EF_ARM_EABIMASK | the float-ABI bit of the other EABI variant (Debian's multilib
        // loader patch skips those objects).
        Host {
            machine: 40,
            extra_osabi: 64,
            abi_version_max: 3,
            reject_flags: if cfg!(target_abi = "eabihf") {
                &[(0xff00_0200, 0x0500_0200)]
            } else {
                &[(0xff00_0400, 0x0500_0400)]
            },
            ..base
        }
    } else if cfg!(target_arch = "riscv64") {
        // EF_RISCV_FLOAT_ABI must be DOUBLE (lp64d).
        Host {
            machine: 243,
            require_flags: &[(0x6, 0x4)],
            ..base
        }
    } else if cfg!(target_arch = "powerpc64") {
        // EF_PPC64_ABI: ELFv2 only on little endian (1 = ELFv1 and 3 are skipped).
        Host {
            machine: 21,
            reject_flags: &[(0x3, 0x1), (0x3, 0x3)],
            ..base
        }
    } else if cfg!(target_arch = "s390x") {
        Host {
            machine: 22,
            abi_version_max: 3,
            ..base
        }
    } else if cfg!(target_arch = "mips64") {
        // n64 (glibc sysdeps/mips/dl-machine.h `elf_machine_matches_host`): EF_MIPS_NAN2008
        // other than the loader's legacy NaN, or EF_MIPS_FP64, is skipped. The loader's extra
        // acceptance of EM_MIPS_RS3_LE and of SYSV objects with an ABI version is not mirrored:
        // such a file is passed over and the stock search finds it.
        Host {
            machine: 8,
            abi_version_max: 6,
            reject_flags: &[(0x400, 0x400), (0x200, 0x200)],
            ..base
        }
    } else {
        base
    }
}

/// `open_verify`'s verdict on a file's first bytes: may the loader use it? `false` for every
/// reason the loader skips a file (other class, machine, float ABI) and for every reason it
/// would stop with an error (not ELF, byte order, versions, OS ABI, type, `e_phentsize`): the
/// module only hands the loader a file it will accept.
pub fn loadable(head: &[u8], h: &Host) -> bool {
    let n = h.ehdr_size();
    if head.len() < n || head[..4] != *b"\x7fELF" {
        return false;
    }
    let class_ok = head[4] == if h.is_64 { 2 } else { 1 };
    let data_ok = head[5] == if h.big_endian { 2 } else { 1 };
    let osabi = head[7];
    let abiv = head[8];
    let osabi_ok =
        osabi == 0 || osabi == ELFOSABI_GNU || (h.extra_osabi != 0 && osabi == h.extra_osabi);
    let abiv_ok = abiv == 0 || (osabi == ELFOSABI_GNU && abiv < h.abi_version_max);
    if !class_ok || !data_ok || head[6] != 1 || !osabi_ok || !abiv_ok {
        return false;
    }
    if head[9..16].iter().any(|b| *b != 0) {
        return false;
    }
    let (Some(ty), Some(machine), Some(version)) =
        (h.half(head, 16), h.half(head, 18), h.u32(head, 20))
    else {
        return false;
    };
    let flags_off = if h.is_64 { 48 } else { 36 };
    let phentsize_off = if h.is_64 { 54 } else { 42 };
    let (Some(flags), Some(phentsize)) = (h.u32(head, flags_off), h.half(head, phentsize_off))
    else {
        return false;
    };
    version == 1
        && machine == h.machine
        && (ty == ET_DYN || ty == ET_EXEC)
        && usize::from(phentsize) == h.phdr_size()
        && !h.reject_flags.iter().any(|&(m, v)| flags & m == v)
        && h.require_flags.iter().all(|&(m, v)| flags & m == v)
}

/// Where an object's program headers are, from its ELF header (as mapped in this process, so
/// the header must be the host's kind): `(e_phoff, e_phnum)`.
pub fn phdr_table(head: &[u8], h: &Host) -> Option<(u64, usize)> {
    if head.len() < h.ehdr_size() || head[..4] != *b"\x7fELF" {
        return None;
    }
    if head[4] != if h.is_64 { 2 } else { 1 } || head[5] != if h.big_endian { 2 } else { 1 } {
        return None;
    }
    let phoff = h.addr(head, if h.is_64 { 32 } else { 28 })?;
    let phentsize = h.half(head, if h.is_64 { 54 } else { 42 })?;
    let phnum = h.half(head, if h.is_64 { 56 } else { 44 })?;
    // PN_XNUM (0xffff) keeps the count in section 0, which is not mapped: nothing to read.
    if usize::from(phentsize) != h.phdr_size() || phnum == 0xffff {
        return None;
    }
    Some((phoff, usize::from(phnum)))
}

/// One program header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phdr {
    /// `p_type`.
    pub kind: u32,
    /// `p_flags`.
    pub flags: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `p_align`.
    pub align: u64,
}

/// Program header `i` of a table (`None` past its end).
pub fn phdr(table: &[u8], i: usize, h: &Host) -> Option<Phdr> {
    let sz = h.phdr_size();
    let b = table.get(i.checked_mul(sz)?..i.checked_mul(sz)?.checked_add(sz)?)?;
    Some(if h.is_64 {
        Phdr {
            kind: h.u32(b, 0)?,
            flags: h.u32(b, 4)?,
            offset: h.addr(b, 8)?,
            vaddr: h.addr(b, 16)?,
            filesz: h.addr(b, 32)?,
            memsz: h.addr(b, 40)?,
            align: h.addr(b, 48)?,
        }
    } else {
        Phdr {
            kind: h.u32(b, 0)?,
            offset: h.addr(b, 4)?,
            vaddr: h.addr(b, 8)?,
            filesz: h.addr(b, 16)?,
            memsz: h.addr(b, 20)?,
            flags: h.u32(b, 24)?,
            align: h.addr(b, 28)?,
        }
    })
}

/// Read access to memory by absolute address. The module's implementation reads the process's
/// memory as it is: it is only ever called through [`Checked`], which admits only ranges inside
/// the object's readable PT_LOAD segments.
pub trait Mem {
    /// `len` bytes at `addr`.
    fn get(&self, addr: u64, len: u64) -> Option<&[u8]>;
}

/// A [`Mem`] restricted to an object's [`Ranges`].
pub struct Checked<'a, M: Mem> {
    raw: &'a M,
    ranges: Ranges,
}

impl<M: Mem> Checked<'_, M> {
    /// The bytes from `addr` to the end of the range holding it.
    fn tail(&self, addr: u64) -> Option<&[u8]> {
        let &(_, end) = self.ranges.r[..self.ranges.n]
            .iter()
            .find(|&&(s, e)| s <= addr && addr < e)?;
        self.raw.get(addr, end - addr)
    }
}

impl<M: Mem> Mem for Checked<'_, M> {
    fn get(&self, addr: u64, len: u64) -> Option<&[u8]> {
        if self.ranges.contains(addr, len) {
            self.raw.get(addr, len)
        } else {
            None
        }
    }
}

/// The readable, file-backed part of each PT_LOAD (`[l_addr + p_vaddr, + p_filesz)`), the only
/// memory the module reads besides the headers. At most 16 ranges are kept (more PT_LOADs than
/// that: the rest is not read).
#[derive(Clone, Copy, Debug, Default)]
pub struct Ranges {
    /// `(start, end)` pairs.
    pub r: [(u64, u64); 16],
    /// How many are used.
    pub n: usize,
}

impl Ranges {
    /// Whether `[addr, addr + len)` lies inside one range.
    pub fn contains(&self, addr: u64, len: u64) -> bool {
        let Some(end) = addr.checked_add(len) else {
            return false;
        };
        self.r[..self.n].iter().any(|&(s, e)| s <= addr && end <= e)
    }
}

/// What the module needs of one loaded object.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Object {
    /// Address and length (without its NUL) of its current `DT_RUNPATH` string, when it has
    /// one inside its readable segments. The note is read only then: for a `DT_RPATH` object
    /// the loader's RPATH walk runs before the note would, and the run path decides which
    /// entries are current.
    pub runpath: Option<(u64, u64)>,
    /// Address and length of its resolution note's descriptor, if it has a usable one.
    pub note: Option<(u64, u64)>,
}

/// Look at a loaded object: `table` its program headers, `bias` its `l_addr`, `l_ld` its
/// dynamic section as the loader recorded it. `None` when the headers do not describe this
/// object (no PT_DYNAMIC at `l_ld`: e.g. an object whose ELF header is not at `l_addr`).
pub fn object(
    table: &[u8],
    phnum: usize,
    bias: u64,
    l_ld: u64,
    h: &Host,
    raw: &impl Mem,
) -> Option<Object> {
    let mut ranges = Ranges::default();
    let mut dynamic = None;
    for i in 0..phnum {
        let p = phdr(table, i, h)?;
        if p.kind == PT_LOAD && p.flags & PF_R != 0 && ranges.n < ranges.r.len() {
            let start = bias.wrapping_add(p.vaddr);
            let end = start.checked_add(p.filesz.min(p.memsz))?;
            ranges.r[ranges.n] = (start, end);
            ranges.n += 1;
        }
        if p.kind == PT_DYNAMIC {
            dynamic = Some(p);
        }
    }
    let dynamic = dynamic?;
    if bias.wrapping_add(dynamic.vaddr) != l_ld {
        return None;
    }
    let mem = Checked { raw, ranges };
    // glibc 2.36 `elf_get_dynamic_info` adds `l_addr` to DT_STRTAB in the dynamic section
    // itself (the last DT_STRTAB entry, the one it keeps) unless `l_addr` is 0, the segment
    // is read-only (`l_ld_readonly`) or the target keeps dynamic sections read-only.
    let relocated = bias != 0 && dynamic.flags & PF_W != 0 && !h.ro_dynamic;
    let size = dynamic.filesz.min(dynamic.memsz);
    let runpath = runpath(&mem, l_ld, size, bias, relocated, h);
    let note = if runpath.is_some() {
        note_desc(table, phnum, bias, h, &mem)
            .filter(|&(a, l)| mem.get(a, l).is_some_and(valid_desc))
    } else {
        None
    };
    Some(Object { runpath, note })
}

/// The `DT_RUNPATH` string of the dynamic section at `at` (at most `size` bytes, up to
/// DT_NULL): the last DT_STRTAB and the last DT_RUNPATH count, as in glibc's `l_info`. `None`
/// without DT_RUNPATH, or when the string does not lie NUL-terminated inside the object.
fn runpath(
    mem: &Checked<'_, impl Mem>,
    at: u64,
    size: u64,
    bias: u64,
    relocated: bool,
    h: &Host,
) -> Option<(u64, u64)> {
    let ent = if h.is_64 { 16 } else { 8 };
    let d = mem.get(at, size - size % ent)?;
    let (mut strtab, mut rp) = (None, None);
    for e in d.chunks_exact(ent as usize) {
        let (Some(tag), Some(val)) = (h.addr(e, 0), h.addr(e, ent as usize / 2)) else {
            break;
        };
        match tag {
            DT_NULL => break,
            DT_STRTAB => strtab = Some(val),
            DT_RUNPATH => rp = Some(val),
            _ => {}
        }
    }
    let strtab = strtab?;
    let base = if relocated {
        strtab
    } else {
        bias.wrapping_add(strtab)
    };
    let addr = base.checked_add(rp?)?;
    let tail = mem.tail(addr)?;
    let len = tail.iter().position(|b| *b == 0)?;
    Some((addr, len as u64))
}

/// The loader's note walk (loader/glibc-2.36-ldcache.patch `ldcache_note_desc`): the first
/// `NixOS` note of the resolution type in a PT_NOTE segment that a PT_LOAD maps; a descriptor
/// leaving its segment disables the note. Returns the descriptor's address and length.
pub fn note_desc(
    table: &[u8],
    phnum: usize,
    bias: u64,
    h: &Host,
    mem: &impl Mem,
) -> Option<(u64, u64)> {
    for i in 0..phnum {
        let ph = phdr(table, i, h)?;
        if ph.kind != PT_NOTE {
            continue;
        }
        let end = ph.offset.checked_add(ph.filesz)?;
        let mapped = (0..phnum).filter_map(|j| phdr(table, j, h)).any(|l| {
            l.kind == PT_LOAD
                && ph.offset >= l.offset
                && l.offset.checked_add(l.filesz).is_some_and(|e| end <= e)
        });
        if !mapped {
            continue;
        }
        let align = ph.align.max(4);
        let seg = bias.wrapping_add(ph.vaddr);
        let size = ph.filesz;
        let Some(bytes) = mem.get(seg, size) else {
            // Not inside a readable PT_LOAD of this object (a malformed header): not read.
            continue;
        };
        let round = |v: u64| v.checked_add(align - 1).map(|v| v / align * align);
        let mut pos = 0u64;
        while pos.checked_add(12).is_some_and(|e| e <= size) {
            let p = pos as usize;
            let (Some(namesz), Some(descsz), Some(kind)) =
                (h.u32(bytes, p), h.u32(bytes, p + 4), h.u32(bytes, p + 8))
            else {
                break;
            };
            let name_off = pos + 12;
            let Some(desc_off) = round(name_off + u64::from(namesz)) else {
                break;
            };
            let next = desc_off.checked_add(u64::from(descsz)).and_then(round);
            if namesz == 6
                && kind == NOTE_TYPE
                && name_off + 6 <= size
                && bytes.get(name_off as usize..name_off as usize + 6) == Some(b"NixOS\0")
            {
                if desc_off
                    .checked_add(u64::from(descsz))
                    .is_none_or(|e| e > size)
                {
                    return None;
                }
                return Some((seg.checked_add(desc_off)?, u64::from(descsz)));
            }
            match next {
                Some(n) if n > pos => pos = n,
                _ => break,
            }
        }
    }
    None
}

/// Where `ld.so PROGRAM` was given `--library-path` (which the module cannot see in the
/// environment) or `--inhibit-rpath` (the loader then ignores the run paths of the objects it
/// names, `decompose_rpath`, so their notes describe no search that happens): `cmdline` is
/// `/proc/self/cmdline` (NUL-separated). `Some(true)` when the loader's own options (before the
/// program) include one, `None` when they run past the bytes read (undecided: treat as set).
pub fn cmdline_library_path(cmdline: &[u8], complete: bool) -> Option<bool> {
    let mut args = cmdline.split(|b| *b == 0);
    args.next()?; // the loader itself
    let mut seen = 0usize;
    let total = cmdline.split(|b| *b == 0).count();
    while let Some(a) = args.next() {
        seen += 1;
        if seen + 1 >= total && !complete {
            return None;
        }
        if !a.starts_with(b"--") {
            return Some(false);
        }
        match a {
            b"--library-path" | b"--inhibit-rpath" => return Some(true),
            // rtld.c options that take a value.
            b"--audit"
            | b"--preload"
            | b"--argv0"
            | b"--glibc-hwcaps-prepend"
            | b"--glibc-hwcaps-mask" => {
                args.next();
                seen += 1;
            }
            _ => {}
        }
    }
    if complete {
        Some(false)
    } else {
        None
    }
}

mod desc;
pub mod runpath;
pub use desc::{find, find_from, sorted, valid_desc};
pub use runpath::{step, Origin, RunPath, Step};

#[cfg(any(test, feature = "host"))]
pub mod check;
#[cfg(test)]
mod tests;
