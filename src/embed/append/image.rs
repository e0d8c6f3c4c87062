//! A class- and byte-order-neutral view of the parts of an ELF file the appender edits: the file
//! header fields, the program headers and the section headers, widened to `u64`, plus the
//! endian-aware writers that put them back.

use object::elf;
use object::pod::bytes_of;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::{Endian, Endianness, FileKind, ReadRef, U32, U64};

use super::rewrite::Rewrite;
use super::AppendError;

/// One program header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Seg {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

impl Seg {
    pub fn file_end(&self) -> u64 {
        self.offset.saturating_add(self.filesz)
    }
    pub fn mem_end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }
}

/// One section header, with its name resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Sec {
    pub name_off: u32,
    pub name: Vec<u8>,
    pub sh_type: u32,
    pub flags: u64,
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
    pub link: u32,
    pub info: u32,
    pub addralign: u64,
    pub entsize: u64,
}

impl Sec {
    /// Bytes this section occupies in the file (none for SHT_NOBITS / empty sections).
    pub fn file_range(&self) -> Option<(u64, u64)> {
        if self.sh_type == elf::SHT_NOBITS || self.size == 0 {
            None
        } else {
            Some((self.offset, self.offset.saturating_add(self.size)))
        }
    }
}

/// The parsed headers of the input.
#[derive(Clone, Debug)]
pub(super) struct Image {
    pub is64: bool,
    pub endian: Endianness,
    pub entry: u64,
    pub phoff: u64,
    pub shoff: u64,
    pub shstrndx: usize,
    pub segs: Vec<Seg>,
    pub secs: Vec<Sec>,
}

impl Image {
    /// Reads only the headers and the section name table from `data`.
    pub fn parse<'d, R: ReadRef<'d>>(data: R) -> Result<Image, AppendError> {
        match FileKind::parse(data) {
            Ok(FileKind::Elf32) => parse_as::<elf::FileHeader32<Endianness>, R>(data),
            Ok(FileKind::Elf64) => parse_as::<elf::FileHeader64<Endianness>, R>(data),
            _ => Err(AppendError::NotElf),
        }
    }

    pub fn phentsize(&self) -> u64 {
        if self.is64 {
            56
        } else {
            32
        }
    }
    pub fn shentsize(&self) -> u64 {
        if self.is64 {
            64
        } else {
            40
        }
    }
    /// Size of one ELF word (pointer-sized field).
    pub fn word(&self) -> u64 {
        if self.is64 {
            8
        } else {
            4
        }
    }
    pub fn ph_end(&self, count: usize) -> u64 {
        self.phoff + self.phentsize() * count as u64
    }
    pub fn sh_table(&self) -> (u64, u64) {
        (
            self.shoff,
            self.shoff + self.shentsize() * self.secs.len() as u64,
        )
    }
    pub fn loads(&self) -> impl Iterator<Item = &Seg> {
        self.segs.iter().filter(|s| s.p_type == elf::PT_LOAD)
    }
    /// File offset of a virtual address, through the PT_LOAD that maps it from the file.
    pub fn vaddr_to_off(&self, vaddr: u64) -> Option<u64> {
        let loads = self.loads().map(|s| crate::elf::dynamic::Load {
            vaddr: s.vaddr,
            offset: s.offset,
            filesz: s.filesz,
        });
        crate::elf::dynamic::addr_to_offset(loads, vaddr)
    }

    pub fn get_u16(&self, data: &[u8], off: u64) -> Option<u16> {
        let b = data.get(usize::try_from(off).ok()?..)?.get(..2)?;
        Some(self.endian.read_u16_bytes([b[0], b[1]]))
    }
    pub fn get_u32(&self, data: &[u8], off: u64) -> Option<u32> {
        let b = data.get(usize::try_from(off).ok()?..)?.get(..4)?;
        Some(self.endian.read_u32_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Reads an ELF word (4 or 8 bytes by class).
    pub fn get_word(&self, data: &[u8], off: u64) -> Option<u64> {
        if !self.is64 {
            return self.get_u32(data, off).map(u64::from);
        }
        let b = data.get(usize::try_from(off).ok()?..)?.get(..8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(self.endian.read_u64_bytes(a))
    }
    pub fn put_u16(&self, out: &mut Rewrite, off: u64, v: u16) -> Result<(), AppendError> {
        out.put(
            off,
            &self.endian.write_u16_bytes(v),
            "write outside the image",
        )
    }
    pub fn put_u32(&self, out: &mut Rewrite, off: u64, v: u32) -> Result<(), AppendError> {
        out.put(
            off,
            &self.endian.write_u32_bytes(v),
            "write outside the image",
        )
    }
    pub fn put_word(&self, out: &mut Rewrite, off: u64, v: u64) -> Result<(), AppendError> {
        if self.is64 {
            out.put(
                off,
                &self.endian.write_u64_bytes(v),
                "write outside the image",
            )
        } else {
            self.put_u32(out, off, narrow(v)?)
        }
    }

    /// Encodes one program header in the file's class and byte order.
    pub fn encode_seg(&self, s: &Seg) -> Result<Vec<u8>, AppendError> {
        let e = self.endian;
        let (w32, w64) = (|v| U32::new(e, v), |v| U64::new(e, v));
        Ok(if self.is64 {
            bytes_of(&elf::ProgramHeader64 {
                p_type: w32(s.p_type),
                p_flags: w32(s.flags),
                p_offset: w64(s.offset),
                p_vaddr: w64(s.vaddr),
                p_paddr: w64(s.paddr),
                p_filesz: w64(s.filesz),
                p_memsz: w64(s.memsz),
                p_align: w64(s.align),
            })
            .to_vec()
        } else {
            bytes_of(&elf::ProgramHeader32 {
                p_type: w32(s.p_type),
                p_offset: w32(narrow(s.offset)?),
                p_vaddr: w32(narrow(s.vaddr)?),
                p_paddr: w32(narrow(s.paddr)?),
                p_filesz: w32(narrow(s.filesz)?),
                p_memsz: w32(narrow(s.memsz)?),
                p_flags: w32(s.flags),
                p_align: w32(narrow(s.align)?),
            })
            .to_vec()
        })
    }

    /// Encodes one section header in the file's class and byte order.
    pub fn encode_sec(&self, s: &Sec) -> Result<Vec<u8>, AppendError> {
        let e = self.endian;
        let (w32, w64) = (|v| U32::new(e, v), |v| U64::new(e, v));
        Ok(if self.is64 {
            bytes_of(&elf::SectionHeader64 {
                sh_name: w32(s.name_off),
                sh_type: w32(s.sh_type),
                sh_flags: w64(s.flags),
                sh_addr: w64(s.addr),
                sh_offset: w64(s.offset),
                sh_size: w64(s.size),
                sh_link: w32(s.link),
                sh_info: w32(s.info),
                sh_addralign: w64(s.addralign),
                sh_entsize: w64(s.entsize),
            })
            .to_vec()
        } else {
            bytes_of(&elf::SectionHeader32 {
                sh_name: w32(s.name_off),
                sh_type: w32(s.sh_type),
                sh_flags: w32(narrow(s.flags)?),
                sh_addr: w32(narrow(s.addr)?),
                sh_offset: w32(narrow(s.offset)?),
                sh_size: w32(narrow(s.size)?),
                sh_link: w32(s.link),
                sh_info: w32(s.info),
                sh_addralign: w32(narrow(s.addralign)?),
                sh_entsize: w32(narrow(s.entsize)?),
            })
            .to_vec()
        })
    }

    /// Offsets of `e_phoff`, `e_shoff`, `e_phnum`, `e_shnum` in the file header.
    pub fn ehdr_fields(&self) -> (u64, u64, u64, u64) {
        if self.is64 {
            (0x20, 0x28, 0x38, 0x3c)
        } else {
            (0x1c, 0x20, 0x2c, 0x30)
        }
    }
}

/// A value for a 32-bit ELF field.
fn narrow(v: u64) -> Result<u32, AppendError> {
    u32::try_from(v).map_err(|_| AppendError::NoRoom("value beyond 4 GiB in a 32-bit file"))
}

fn parse_as<'d, Elf: FileHeader<Endian = Endianness>, R: ReadRef<'d>>(
    data: R,
) -> Result<Image, AppendError> {
    let corrupt = |what: &'static str| move |_| AppendError::Corrupt(what);
    let hdr = Elf::parse(data).map_err(corrupt("ELF header"))?;
    let endian = hdr.endian().map_err(corrupt("ELF byte order"))?;
    let e_type = hdr.e_type(endian);
    match e_type {
        elf::ET_EXEC | elf::ET_DYN => {}
        elf::ET_REL => return Err(AppendError::Relocatable),
        other => return Err(AppendError::UnsupportedType(other)),
    }
    let is64 = hdr.is_type_64();
    let phentsize = if is64 { 56 } else { 32 };
    let shentsize = if is64 { 64 } else { 40 };
    if hdr.e_phentsize(endian) != phentsize {
        return Err(AppendError::Corrupt("e_phentsize"));
    }
    // Extended numbering (PN_XNUM / SHN_XINDEX in section 0) is not produced by the linkers we
    // serve; refusing it keeps the header rewrite simple and exact.
    if hdr.e_phnum(endian) == elf::PN_XNUM {
        return Err(AppendError::Unsupported(
            "extended program header numbering",
        ));
    }
    let e_shoff: u64 = hdr.e_shoff(endian).into();
    if e_shoff == 0 || hdr.e_shnum(endian) == 0 {
        return Err(AppendError::NoSectionHeaders);
    }
    if hdr.e_shentsize(endian) != shentsize {
        return Err(AppendError::Corrupt("e_shentsize"));
    }
    if hdr.e_shstrndx(endian) == elf::SHN_XINDEX {
        return Err(AppendError::Unsupported("extended section numbering"));
    }
    let phdrs = hdr
        .program_headers(endian, data)
        .map_err(corrupt("program header table"))?;
    let shdrs = hdr
        .section_headers(endian, data)
        .map_err(corrupt("section header table"))?;
    let shstrndx = usize::from(hdr.e_shstrndx(endian));
    let strtab = shdrs
        .get(shstrndx)
        .ok_or(AppendError::Corrupt("e_shstrndx"))?;
    if strtab.sh_type(endian) != elf::SHT_STRTAB {
        return Err(AppendError::Corrupt("section name table is not SHT_STRTAB"));
    }
    let strings = strtab
        .data(endian, data)
        .map_err(corrupt("section name table"))?;
    let len = data
        .len()
        .map_err(|()| AppendError::Corrupt("file length"))?;
    let mut segs = Vec::with_capacity(phdrs.len());
    for p in phdrs {
        let s = Seg {
            p_type: p.p_type(endian),
            flags: p.p_flags(endian),
            offset: p.p_offset(endian).into(),
            vaddr: p.p_vaddr(endian).into(),
            paddr: p.p_paddr(endian).into(),
            filesz: p.p_filesz(endian).into(),
            memsz: p.p_memsz(endian).into(),
            align: p.p_align(endian).into(),
        };
        if s.offset.checked_add(s.filesz).is_none_or(|e| e > len) {
            return Err(AppendError::Corrupt(
                "segment extends past the end of the file",
            ));
        }
        if s.vaddr.checked_add(s.memsz).is_none() {
            return Err(AppendError::Corrupt("segment address overflow"));
        }
        segs.push(s);
    }
    let mut secs = Vec::with_capacity(shdrs.len());
    for (i, s) in shdrs.iter().enumerate() {
        let name_off = s.sh_name(endian);
        let name = usize::try_from(name_off)
            .ok()
            .and_then(|o| strings.get(o..))
            .map(|rest| rest.split(|&b| b == 0).next().unwrap_or_default().to_vec())
            .ok_or(AppendError::Corrupt("section name offset"))?;
        let sec = Sec {
            name_off,
            name,
            sh_type: s.sh_type(endian),
            flags: s.sh_flags(endian).into(),
            addr: s.sh_addr(endian).into(),
            offset: s.sh_offset(endian).into(),
            size: s.sh_size(endian).into(),
            link: s.sh_link(endian),
            info: s.sh_info(endian),
            addralign: s.sh_addralign(endian).into(),
            entsize: s.sh_entsize(endian).into(),
        };
        if i > 0 && sec.file_range().is_some_and(|(_, e)| e > len) {
            return Err(AppendError::Corrupt(
                "section extends past the end of the file",
            ));
        }
        secs.push(sec);
    }
    Ok(Image {
        is64,
        endian,
        entry: hdr.e_entry(endian).into(),
        phoff: hdr.e_phoff(endian).into(),
        shoff: e_shoff,
        shstrndx,
        segs,
        secs,
    })
}
