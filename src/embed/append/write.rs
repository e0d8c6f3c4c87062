//! Producing the output, as a [`Rewrite`] of the input, from a [`Plan`].

use object::{elf, ReadRef};

use super::image::{Image, Sec, Seg};
use super::plan::{is_patchable, Ctx, Dest, DynEntry, NoteSeg, Plan};
use super::rewrite::{zeroed, Rewrite};
use super::AppendError;

fn slice<'d, R: ReadRef<'d>>(data: R, lo: u64, hi: u64) -> Result<&'d [u8], AppendError> {
    let len = hi
        .checked_sub(lo)
        .ok_or(AppendError::Corrupt("range outside the file"))?;
    data.read_bytes_at(lo, len)
        .map_err(|()| AppendError::Corrupt("range outside the file"))
}

pub(super) fn apply<'d, R: ReadRef<'d>>(
    ctx: &Ctx,
    data: R,
    plan: &Plan,
    section: &[u8],
    name: &[u8],
) -> Result<Rewrite, AppendError> {
    let img = ctx.img;
    let mask = if img.is64 {
        u64::MAX
    } else {
        u64::from(u32::MAX)
    };
    // The bytes from the reclaimable tail on are rebuilt: the moved tables and the note when
    // they go past it, the section name table and the section headers. Reserved at once and
    // fallibly: an allocation failure is an error to report, never an abort.
    let strtab = &img.secs[img.shstrndx];
    let body = plan.end.saturating_sub(ctx.tail);
    let capacity = body
        .saturating_add(strtab.size)
        .saturating_add(name.len() as u64 + 1 + img.word())
        .saturating_add((img.secs.len() as u64 + 1).saturating_mul(img.shentsize()));
    let mut tail = Vec::new();
    tail.try_reserve_exact(usize::try_from(capacity).map_err(|_| AppendError::NoMemory(capacity))?)
        .map_err(|_| AppendError::NoMemory(capacity))?;
    tail.resize(
        usize::try_from(body).map_err(|_| AppendError::NoMemory(body))?,
        0,
    );
    let mut out = Rewrite {
        keep: ctx.tail,
        edits: Vec::new(),
        tail,
    };
    // Vacate the old places (the loader never reads them again), then copy the units over.
    for (u, _) in &plan.moves {
        let zeros = zeroed(u.hi.saturating_sub(u.lo))?;
        out.put(u.lo, &zeros, "range outside the file")?;
    }
    for (u, new) in &plan.moves {
        let bytes = slice(data, u.lo, u.hi)?;
        out.put(*new, bytes, "range outside the file")?;
    }
    out.put(plan.note_off, section, "range outside the file")?;
    let note_vaddr = plan.note_off.wrapping_add(plan.dest_vdelta) & mask;
    let first_load = img
        .loads()
        .next()
        .ok_or(AppendError::NoRoom("no PT_LOAD"))?;
    let pdelta = first_load.paddr.wrapping_sub(first_load.vaddr);

    // Program headers.
    let note_len = section.len() as u64;
    let mut segs: Vec<Seg> = Vec::with_capacity(plan.new_phnum);
    for (i, s) in img.segs.iter().enumerate() {
        let mut s = s.clone();
        for (u, new) in &plan.moves {
            if u.segs.contains(&i) {
                let shift = plan.addr_shift(u, *new);
                s.offset = s.offset - u.lo + new;
                s.vaddr = s.vaddr.wrapping_add(shift) & mask;
                s.paddr = s.paddr.wrapping_add(shift) & mask;
            }
        }
        if s.p_type == elf::PT_PHDR {
            s.filesz = img.phentsize() * plan.new_phnum as u64;
            s.memsz = s.filesz;
        }
        if plan.dest == Dest::Extend(i) {
            s.filesz = plan.end - s.offset;
            s.memsz = s.filesz;
        }
        if plan.note_seg == NoteSeg::Extend(i) {
            s.filesz += note_len;
            s.memsz += note_len;
        }
        segs.push(s);
    }
    if let Dest::NewLoad { offset, vaddr } = plan.dest {
        let pos = segs
            .iter()
            .rposition(|s| s.p_type == elf::PT_LOAD)
            .map_or(segs.len(), |p| p + 1);
        let load = Seg {
            p_type: elf::PT_LOAD,
            flags: elf::PF_R,
            offset,
            vaddr,
            paddr: vaddr.wrapping_add(pdelta) & mask,
            filesz: plan.end - offset,
            memsz: plan.end - offset,
            align: ctx.page,
        };
        segs.insert(pos, load);
    }
    if plan.note_seg == NoteSeg::New {
        let pos = segs
            .iter()
            .rposition(|s| s.p_type == elf::PT_NOTE)
            .map_or(segs.len(), |p| p + 1);
        let note = Seg {
            p_type: elf::PT_NOTE,
            flags: elf::PF_R,
            offset: plan.note_off,
            vaddr: note_vaddr,
            paddr: note_vaddr.wrapping_add(pdelta) & mask,
            filesz: note_len,
            memsz: note_len,
            align: 4,
        };
        segs.insert(pos, note);
    }
    if segs.len() != plan.new_phnum || segs.len() >= usize::from(elf::PN_XNUM) {
        return Err(AppendError::NoRoom("too many program headers"));
    }
    let mut ph = Vec::with_capacity(segs.len() * img.phentsize() as usize);
    for s in &segs {
        ph.extend(img.encode_seg(s)?);
    }
    out.put(img.phoff, &ph, "program header table")?;

    // Section headers: moved sections follow their unit; the new one is appended last.
    let mut secs: Vec<Sec> = img.secs.clone();
    for (u, new) in &plan.moves {
        let shift = plan.addr_shift(u, *new);
        for &i in &u.secs {
            let s = &mut secs[i];
            s.offset = s.offset - u.lo + new;
            s.addr = s.addr.wrapping_add(shift) & mask;
        }
    }
    patch_dynamic(img, &mut out, &ctx.dynamic, plan, mask)?;
    patch_symbols(img, data, &mut out, &secs, plan, mask)?;

    let names = slice(
        data,
        strtab.offset,
        strtab.offset.saturating_add(strtab.size),
    )?;
    let name_off = u32::try_from(names.len()).map_err(|_| AppendError::Corrupt("name table"))?;
    let names_at = out.len();
    out.tail.extend_from_slice(names);
    out.tail.extend_from_slice(name);
    out.tail.push(0);
    secs[img.shstrndx].offset = names_at;
    secs[img.shstrndx].size = out.len() - names_at;
    secs.push(Sec {
        name_off,
        name: name.to_vec(),
        sh_type: elf::SHT_NOTE,
        flags: u64::from(elf::SHF_ALLOC),
        addr: note_vaddr,
        offset: plan.note_off,
        size: note_len,
        link: 0,
        info: 0,
        addralign: 4,
        entsize: 0,
    });
    if secs.len() >= usize::from(elf::SHN_LORESERVE) {
        return Err(AppendError::NoRoom("too many sections"));
    }
    let sh_at = out.len().div_ceil(img.word()) * img.word();
    let pad = usize::try_from(sh_at - out.len()).map_err(|_| AppendError::Corrupt("alignment"))?;
    out.tail.resize(out.tail.len() + pad, 0);
    for s in &secs {
        out.tail.extend(img.encode_sec(s)?);
    }

    let (phoff_at, shoff_at, phnum_at, shnum_at) = img.ehdr_fields();
    let _ = phoff_at;
    img.put_word(&mut out, shoff_at, sh_at)?;
    img.put_u16(&mut out, phnum_at, segs.len() as u16)?;
    img.put_u16(&mut out, shnum_at, secs.len() as u16)?;
    Ok(out)
}

/// Rewrites the dynamic tags that point into a moved table.
fn patch_dynamic(
    img: &Image,
    out: &mut Rewrite,
    dynamic: &[DynEntry],
    plan: &Plan,
    mask: u64,
) -> Result<(), AppendError> {
    for d in dynamic.iter().filter(|d| is_patchable(d.tag)) {
        for (u, new) in &plan.moves {
            let lo = u.lo.wrapping_add(u.vdelta);
            if lo <= d.val && d.val < lo.wrapping_add(u.hi - u.lo) {
                let v = d.val.wrapping_add(plan.addr_shift(u, *new)) & mask;
                img.put_word(out, d.val_off, v)?;
            }
        }
    }
    Ok(())
}

/// Symbols defined in a moved section get its new address, so that `.symtab` / `.dynsym` stay
/// consistent (objcopy converts symbol values to section offsets).
fn patch_symbols<'d, R: ReadRef<'d>>(
    img: &Image,
    data: R,
    out: &mut Rewrite,
    secs: &[Sec],
    plan: &Plan,
    mask: u64,
) -> Result<(), AppendError> {
    let shift_of = |shndx: u16| {
        plan.moves
            .iter()
            .find(|(u, _)| u.secs.contains(&usize::from(shndx)))
            .map(|(u, new)| plan.addr_shift(u, *new))
    };
    let (ent, shndx_at, value_at) = if img.is64 { (24, 6, 8) } else { (16, 14, 4) };
    for s in secs {
        if s.sh_type != elf::SHT_SYMTAB && s.sh_type != elf::SHT_DYNSYM {
            continue;
        }
        let count = s.size / ent;
        // The table as the new file holds it so far (moved tables are read at their new place).
        let table = out.read(data, s.offset, count * ent, "symbol table")?;
        for k in 0..count {
            let at = k * ent;
            let shndx = img
                .get_u16(&table, at + shndx_at)
                .ok_or(AppendError::Corrupt("symbol table"))?;
            if shndx == 0 || shndx >= elf::SHN_LORESERVE {
                continue;
            }
            if let Some(shift) = shift_of(shndx) {
                let v = img
                    .get_word(&table, at + value_at)
                    .ok_or(AppendError::Corrupt("symbol table"))?;
                img.put_word(out, s.offset + at + value_at, v.wrapping_add(shift) & mask)?;
            }
        }
    }
    Ok(())
}
