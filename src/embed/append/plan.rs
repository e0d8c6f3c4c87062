//! Choosing where the note goes and what has to move (see the strategy comment in `append.rs`).

use object::elf;

use super::image::{Image, Sec, Seg};
use super::AppendError;

/// `DT_RELR` / `DT_RELRSZ` (gABI 2022; object 0.36 lacks them).
const DT_RELR: u32 = 36;
const DT_RELRSZ: u32 = 35;

/// Dynamic tags that hold the address of a table the dynamic loader finds only through the tag;
/// when that table moves, the tag is rewritten.
const PATCHABLE_TAGS: [u32; 11] = [
    elf::DT_HASH,
    elf::DT_STRTAB,
    elf::DT_SYMTAB,
    elf::DT_RELA,
    elf::DT_REL,
    elf::DT_JMPREL,
    DT_RELR,
    elf::DT_GNU_HASH,
    elf::DT_VERSYM,
    elf::DT_VERDEF,
    elf::DT_VERNEED,
];
/// Address tags that may point at code or data: anything they point into must not move.
const PINNING_TAGS: [u32; 6] = [
    elf::DT_PLTGOT,
    elf::DT_INIT,
    elf::DT_FINI,
    elf::DT_INIT_ARRAY,
    elf::DT_FINI_ARRAY,
    elf::DT_PREINIT_ARRAY,
];
/// (address tag, size tag) pairs whose table must move as one block.
const SIZED_TAGS: [(u32, u32); 5] = [
    (elf::DT_RELA, elf::DT_RELASZ),
    (elf::DT_REL, elf::DT_RELSZ),
    (elf::DT_JMPREL, elf::DT_PLTRELSZ),
    (DT_RELR, DT_RELRSZ),
    (elf::DT_STRTAB, elf::DT_STRSZ),
];

pub(super) use crate::elf::dynamic::DynEntry;

/// A contiguous file range that moves as a whole (sections plus the non-LOAD segments over them).
#[derive(Clone, Debug)]
pub(super) struct Unit {
    pub lo: u64,
    pub hi: u64,
    pub align: u64,
    /// `vaddr - offset` inside the unit before the move.
    pub vdelta: u64,
    pub secs: Vec<usize>,
    pub segs: Vec<usize>,
}

/// Where the moved units and the note land.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dest {
    /// Grow this PT_LOAD into the unused file and address space after it.
    Extend(usize),
    /// A new PT_LOAD appended to the file, mapped above every existing segment.
    NewLoad { offset: u64, vaddr: u64 },
}

/// The note's PT_NOTE: an existing 4-aligned one that is moved and grown, or a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NoteSeg {
    Extend(usize),
    New,
}

#[derive(Clone, Debug)]
pub(super) struct Plan {
    /// Units with their new file offsets.
    pub moves: Vec<(Unit, u64)>,
    pub note_off: u64,
    pub note_seg: NoteSeg,
    pub dest: Dest,
    /// `vaddr - offset` at the destination.
    pub dest_vdelta: u64,
    /// End of the placed content in the file.
    pub end: u64,
    pub new_phnum: usize,
}

impl Plan {
    pub fn addr_shift(&self, u: &Unit, new_off: u64) -> u64 {
        new_off
            .wrapping_add(self.dest_vdelta)
            .wrapping_sub(u.lo.wrapping_add(u.vdelta))
    }
}

/// Everything the planner needs to know about the input besides the headers.
pub(super) struct Ctx<'a> {
    pub img: &'a Image,
    pub dynamic: Vec<DynEntry>,
    pub note_len: u64,
    /// Start of the reclaimable tail (old `.shstrtab` / section header table); new content goes
    /// at or after it.
    pub tail: u64,
    /// Page size the layout honours: the largest PT_LOAD `p_align`, at least 4 KiB.
    pub page: u64,
}

fn align_up(v: u64, a: u64) -> Option<u64> {
    let a = a.max(1);
    v.checked_add(a - 1).map(|x| x / a * a)
}
fn align_down(v: u64, a: u64) -> u64 {
    let a = a.max(1);
    v / a * a
}
/// Smallest `x >= v` with `x % a == r % a`.
fn align_mod(v: u64, a: u64, r: u64) -> Option<u64> {
    let a = a.max(1);
    let base = align_down(v, a).checked_add(r % a)?;
    if base >= v {
        Some(base)
    } else {
        base.checked_add(a)
    }
}
fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

/// Sections whose only references are program headers or dynamic tags, so moving them and
/// rewriting those references is invisible to the program.
fn movable(ctx: &Ctx, s: &Sec) -> bool {
    let f = s.flags;
    if f & u64::from(elf::SHF_ALLOC) == 0
        || f & u64::from(elf::SHF_WRITE | elf::SHF_EXECINSTR | elf::SHF_TLS) != 0
    {
        return false;
    }
    match s.sh_type {
        elf::SHT_NOTE
        | elf::SHT_HASH
        | elf::SHT_GNU_HASH
        | elf::SHT_DYNSYM
        | elf::SHT_GNU_VERSYM
        | elf::SHT_GNU_VERDEF
        | elf::SHT_GNU_VERNEED
        | elf::SHT_RELA
        | elf::SHT_REL
        | elf::SHT_RELR => true,
        // Only the dynamic string table: other SHF_ALLOC string tables may be used by code.
        elf::SHT_STRTAB => ctx
            .dynamic
            .iter()
            .any(|d| d.tag == u64::from(elf::DT_STRTAB) && d.val == s.addr),
        elf::SHT_PROGBITS => s.name == b".interp",
        _ => false,
    }
}

#[derive(Clone, Copy)]
enum Item {
    Sec(usize),
    Seg(usize),
    Dyn,
}

fn items(ctx: &Ctx) -> Vec<(u64, u64, Item)> {
    let img = ctx.img;
    let mut v = Vec::new();
    for (i, s) in img.secs.iter().enumerate().skip(1) {
        if let Some((lo, hi)) = s.file_range() {
            v.push((lo, hi, Item::Sec(i)));
        }
    }
    for (i, s) in img.segs.iter().enumerate() {
        if s.filesz > 0 && s.p_type != elf::PT_LOAD && s.p_type != elf::PT_PHDR {
            v.push((s.offset, s.file_end(), Item::Seg(i)));
        }
    }
    for (at, sz) in SIZED_TAGS {
        let get = |t: u32| {
            ctx.dynamic
                .iter()
                .find(|d| d.tag == u64::from(t))
                .map(|d| d.val)
        };
        if let (Some(addr), Some(size)) = (get(at), get(sz)) {
            if let Some(lo) = img.vaddr_to_off(addr).filter(|_| size > 0) {
                v.push((lo, lo.saturating_add(size), Item::Dyn));
            }
        }
    }
    v
}

/// The units that must move so that the file ranges `seeds` become free: the connected groups
/// of overlapping items (a segment or dynamic table spanning a section moves with it) that touch
/// a seed. One sort and sweep, so hostile inputs with many sections stay cheap.
fn units_for(ctx: &Ctx, seeds: &[(u64, u64)]) -> Result<Vec<Unit>, &'static str> {
    let mut all = items(ctx);
    all.sort_by_key(|x| (x.0, x.1));
    let mut groups: Vec<Unit> = Vec::new();
    for (lo, hi, item) in all {
        let unit = match groups.last_mut() {
            Some(u) if lo < u.hi => u,
            _ => {
                groups.push(Unit {
                    lo,
                    hi,
                    align: 1,
                    vdelta: 0,
                    secs: vec![],
                    segs: vec![],
                });
                groups.last_mut().ok_or("internal")?
            }
        };
        unit.hi = unit.hi.max(hi);
        match item {
            Item::Sec(i) => unit.secs.push(i),
            Item::Seg(i) => unit.segs.push(i),
            Item::Dyn => {}
        }
    }
    let mut units: Vec<Unit> = groups
        .into_iter()
        .filter(|u| seeds.iter().any(|&r| overlaps((u.lo, u.hi), r)))
        .collect();
    for u in &mut units {
        check_unit(ctx, u)?;
    }
    Ok(units)
}

fn check_unit(ctx: &Ctx, u: &mut Unit) -> Result<(), &'static str> {
    let img = ctx.img;
    let load = img
        .loads()
        .find(|l| l.offset <= u.lo && u.hi <= l.file_end())
        .ok_or("a table in the way is not inside one PT_LOAD")?;
    u.vdelta = load.vaddr.wrapping_sub(load.offset);
    let mut align = 1u64;
    for &i in &u.secs {
        let s = &img.secs[i];
        if !movable(ctx, s) {
            return Err("a section in the way cannot be moved");
        }
        if s.addr.wrapping_sub(s.offset) != u.vdelta {
            return Err("section address and offset disagree with their PT_LOAD");
        }
        align = align.max(s.addralign);
    }
    for &i in &u.segs {
        let s = &img.segs[i];
        if !matches!(
            s.p_type,
            elf::PT_NOTE | elf::PT_INTERP | elf::PT_GNU_PROPERTY
        ) {
            return Err("a segment in the way cannot be moved");
        }
        align = align.max(s.align);
    }
    if align > 64 || !align.is_power_of_two() {
        return Err("a table in the way has an unusual alignment");
    }
    u.align = align;
    // Nothing that the program or the loader reaches by address, other than through the tags we
    // rewrite, may point into the unit.
    let vr = (u.lo.wrapping_add(u.vdelta), u.hi.wrapping_add(u.vdelta));
    let inside = |a: u64| vr.0 <= a && a < vr.1;
    if inside(img.entry) {
        return Err("the entry point is in the way");
    }
    if ctx
        .dynamic
        .iter()
        .any(|d| PINNING_TAGS.iter().any(|&t| u64::from(t) == d.tag) && inside(d.val))
    {
        return Err("a dynamic tag pins a table in the way");
    }
    let ehdr = (0, if img.is64 { 64 } else { 52 });
    let old_ph = (img.phoff, img.ph_end(img.segs.len()));
    if overlaps((u.lo, u.hi), ehdr)
        || overlaps((u.lo, u.hi), old_ph)
        || overlaps((u.lo, u.hi), img.sh_table())
    {
        return Err("the ELF headers are in the way");
    }
    Ok(())
}

pub(super) fn is_patchable(tag: u64) -> bool {
    PATCHABLE_TAGS.iter().any(|&t| u64::from(t) == tag)
}

/// Units at their new offsets, then the note.
struct Placed {
    moves: Vec<(Unit, u64)>,
    note_off: u64,
    end: u64,
}

/// Lays the units out from `start` (each keeps its offset modulo its alignment), the unit holding
/// `note` last, then the note.
fn layout(units: &[Unit], note: Option<&Seg>, start: u64, note_len: u64) -> Option<Placed> {
    let holds = |u: &Unit| note.is_some_and(|n| u.lo <= n.offset && n.file_end() <= u.hi);
    let mut order: Vec<&Unit> = units.iter().filter(|u| !holds(u)).collect();
    order.extend(units.iter().filter(|u| holds(u)));
    let mut cur = start;
    let mut moves = Vec::new();
    for u in order {
        let off = align_mod(cur, u.align, u.lo)?;
        cur = off.checked_add(u.hi - u.lo)?;
        moves.push((u.clone(), off));
    }
    let note_off = match note {
        // The grown PT_NOTE continues right after its last note.
        Some(n) => {
            let (u, off) = moves.last()?;
            if n.file_end() != u.hi {
                return None;
            }
            off.checked_add(u.hi - u.lo)?
        }
        None => align_up(cur, 4)?,
    };
    Some(Placed {
        end: note_off.checked_add(note_len)?,
        moves,
        note_off,
    })
}

impl Ctx<'_> {
    fn phdr_room_ok(&self, new_phnum: usize) -> bool {
        let img = self.img;
        let old = (img.phoff, img.ph_end(img.segs.len()));
        let new_end = img.ph_end(new_phnum);
        match img
            .loads()
            .find(|l| l.offset <= old.0 && old.1 <= l.file_end())
        {
            Some(l) => new_end <= l.file_end(),
            None => true,
        }
    }

    /// Is the file range free of anything that is not being moved? From the reclaimable tail on
    /// everything is free: the tail is rewritten after the new content (this lets a segment that
    /// ends the loaded image, such as one added by an earlier append, simply grow).
    fn file_free(&self, r: (u64, u64), moved: &[(Unit, u64)], new_phnum: usize) -> bool {
        let r = (r.0, r.1.min(self.tail));
        if r.0 >= r.1 {
            return true;
        }
        let img = self.img;
        let is_moved = |i: usize| moved.iter().any(|(u, _)| u.secs.contains(&i));
        let ehdr = (0, if img.is64 { 64 } else { 52 });
        if overlaps(r, ehdr) || overlaps(r, (img.phoff, img.ph_end(new_phnum))) {
            return false;
        }
        if img
            .secs
            .iter()
            .enumerate()
            .skip(1)
            .any(|(i, s)| !is_moved(i) && s.file_range().is_some_and(|sr| overlaps(r, sr)))
        {
            return false;
        }
        !img.segs
            .iter()
            .any(|s| s.filesz > 0 && overlaps(r, (s.offset, s.file_end())))
    }

    /// Is the address range free of allocated sections that are not being moved? NOBITS ones
    /// count: BFD places sections by address, and shifts any it finds under the grown headers.
    fn addr_free(&self, r: (u64, u64), units: &[Unit]) -> bool {
        let moved = |i: usize| units.iter().any(|u| u.secs.contains(&i));
        let tls_bss =
            |s: &Sec| s.sh_type == elf::SHT_NOBITS && s.flags & u64::from(elf::SHF_TLS) != 0;
        !self.img.secs.iter().enumerate().skip(1).any(|(i, s)| {
            s.flags & u64::from(elf::SHF_ALLOC) != 0
                && s.size > 0
                && !tls_bss(s)
                && !moved(i)
                && overlaps(r, (s.addr, s.addr.saturating_add(s.size)))
        })
    }

    /// The addresses the grown program header table takes must hold nothing that stays.
    fn phdr_addr_free(&self, units: &[Unit], new_phnum: usize) -> bool {
        let img = self.img;
        let old_end = img.ph_end(img.segs.len());
        match img
            .loads()
            .find(|l| l.offset <= img.phoff && old_end <= l.file_end())
        {
            Some(l) => {
                let delta = l.vaddr.wrapping_sub(l.offset);
                let r = (
                    old_end.wrapping_add(delta),
                    img.ph_end(new_phnum).wrapping_add(delta),
                );
                r.0 <= r.1 && self.addr_free(r, units)
            }
            None => true,
        }
    }

    /// Plan: grow PT_LOAD `li` into the free bytes after it.
    fn try_extend(
        &self,
        li: usize,
        units: &[Unit],
        note: Option<usize>,
        new_phnum: usize,
    ) -> Option<Plan> {
        let img = self.img;
        let l = &img.segs[li];
        if l.p_type != elf::PT_LOAD || l.filesz != l.memsz || l.filesz == 0 {
            return None;
        }
        let note_seg = note.map(|i| &img.segs[i]);
        let Placed {
            moves,
            note_off,
            end,
        } = layout(units, note_seg, l.file_end(), self.note_len)?;
        if !self.file_free((l.file_end(), end), &moves, new_phnum) {
            return None;
        }
        // The added addresses must not reach a page another PT_LOAD maps.
        let vend = l.vaddr.checked_add(end - l.offset)?;
        let page_end = align_up(vend, self.page)?;
        if !img.is64 && page_end > 1 << 32 {
            return None;
        }
        if !self.addr_free((l.mem_end(), vend), units) {
            return None;
        }
        let ext = (l.mem_end(), page_end);
        let clash = img.segs.iter().enumerate().any(|(i, m)| {
            i != li
                && m.p_type == elf::PT_LOAD
                && overlaps(
                    ext,
                    (
                        align_down(m.vaddr, self.page),
                        m.mem_end().max(m.vaddr.saturating_add(1)),
                    ),
                )
        });
        if clash {
            return None;
        }
        Some(Plan {
            moves,
            note_off,
            note_seg: note.map_or(NoteSeg::New, NoteSeg::Extend),
            dest: Dest::Extend(li),
            dest_vdelta: l.vaddr.wrapping_sub(l.offset),
            end,
            new_phnum,
        })
    }

    /// Plan: a new PT_LOAD at the end of the file. Its address is chosen above every segment
    /// and with `vaddr - offset` no smaller than any existing PT_LOAD's, because qemu-user
    /// computes AT_PHDR from the smallest `p_vaddr - p_offset`; addresses cost nothing, so no
    /// file padding is needed (patchelf pads the file instead).
    fn try_new_load(&self, units: &[Unit], note: Option<usize>, new_phnum: usize) -> Option<Plan> {
        let img = self.img;
        let note_seg = note.map(|i| &img.segs[i]);
        // The segment starts before the first table in it: llvm-objcopy makes a segment that
        // starts at the same offset as an earlier program header (PT_INTERP, PT_NOTE) that
        // segment's child, and then lays it out without its page alignment.
        let offset = align_up(self.tail, 8)?;
        let Placed {
            moves,
            note_off,
            end,
        } = layout(units, note_seg, offset + 1, self.note_len)?;
        let max_end = img.loads().map(Seg::mem_end).max()?;
        let min_delta = img
            .loads()
            .map(|l| i128::from(l.vaddr) - i128::from(l.offset))
            .min()?;
        let page = i128::from(self.page);
        let want = (i128::from(align_down(offset, self.page)) + min_delta).max(i128::from(max_end));
        let base = (want + page - 1).div_euclid(page) * page;
        let vaddr = base + i128::from(offset % self.page);
        let limit: i128 = if img.is64 { 1 << 64 } else { 1 << 32 };
        if vaddr + i128::from(end - offset) + page > limit {
            return None;
        }
        let vaddr = u64::try_from(vaddr).ok()?;
        if !self.addr_free((vaddr, vaddr + (end - offset)), units) {
            return None;
        }
        Some(Plan {
            moves,
            note_off,
            note_seg: note.map_or(NoteSeg::New, NoteSeg::Extend),
            dest: Dest::NewLoad { offset, vaddr },
            dest_vdelta: vaddr.wrapping_sub(offset),
            end,
            new_phnum,
        })
    }

    /// Tries the placements from cheapest to dearest:
    /// 1. move a 4-aligned PT_NOTE's notes into free bytes after a PT_LOAD and grow it (no new
    ///    program header);
    /// 2. a new PT_NOTE in free bytes after a PT_LOAD (one new program header);
    /// 3. as 1, but into a new PT_LOAD (one new program header);
    /// 4. a new PT_NOTE in a new PT_LOAD (two).
    pub fn plan(&self) -> Result<Plan, AppendError> {
        let img = self.img;
        let n = img.segs.len();
        // Only a PT_NOTE walked with 4-byte steps may take the 4-aligned note at its end.
        let notes: Vec<usize> = (0..n)
            .filter(|&i| {
                let s = &img.segs[i];
                s.p_type == elf::PT_NOTE
                    && s.align <= 4
                    && s.filesz == s.memsz
                    && s.filesz > 0
                    && s.offset % 4 == 0
                    && s.filesz % 4 == 0
            })
            .collect();
        let mut loads: Vec<usize> = (0..n)
            .filter(|&i| img.segs[i].p_type == elf::PT_LOAD)
            .collect();
        // Prefer growing a read-only segment: the note is data nobody writes.
        loads.sort_by_key(|&i| img.segs[i].flags & elf::PF_W != 0);
        let mut why = "no free space after any PT_LOAD";
        for (grow_load, extend) in [(false, true), (false, false), (true, true), (true, false)] {
            let candidates: Vec<Option<usize>> = if extend {
                notes.iter().map(|&i| Some(i)).collect()
            } else {
                vec![None]
            };
            for note in candidates {
                let new_phnum = n + usize::from(grow_load) + usize::from(!extend);
                if !self.phdr_room_ok(new_phnum) {
                    why = "the program header table cannot grow inside its PT_LOAD";
                    continue;
                }
                let mut seeds = vec![];
                if new_phnum > n {
                    seeds.push((img.ph_end(n), img.ph_end(new_phnum)));
                }
                if let Some(i) = note {
                    seeds.push((img.segs[i].offset, img.segs[i].file_end()));
                }
                let units = match units_for(self, &seeds) {
                    Ok(u) => u,
                    Err(e) => {
                        why = e;
                        continue;
                    }
                };
                if new_phnum > n && !self.phdr_addr_free(&units, new_phnum) {
                    why = "an allocated section lies where the program header table would grow";
                    continue;
                }
                let plan = if grow_load {
                    self.try_new_load(&units, note, new_phnum)
                } else {
                    loads
                        .iter()
                        .find_map(|&li| self.try_extend(li, &units, note, new_phnum))
                };
                if let Some(p) = plan {
                    return Ok(p);
                }
            }
        }
        Err(AppendError::NoRoom(why))
    }
}
