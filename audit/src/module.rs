//! The rtld-audit entry points (`la_version`, `la_objopen`, `la_objsearch`, `la_objclose`) and
//! the module's state. No `la_symbind*` or `la_pltenter`: binding stays as fast as stock.
//!
//! Unsafe code is needed here, and only here and in `sys`/`mem`: the loader hands the module
//! raw pointers (link maps, C strings, cookies), the module reads the objects' memory, and it
//! keeps its state in statics (no allocator). Every read of object memory goes through
//! `parse::Checked` (inside a readable PT_LOAD of that object, after its headers were copied
//! with `process_vm_readv`, which cannot fault) or is of a pointer the loader or the kernel
//! provides (the link map, `l_name`, the name asked for, the main program's `AT_PHDR`).
#![allow(unsafe_code)]

use core::cell::UnsafeCell;

use crate::parse::{self, Mem, Step, HOST};
use crate::sys;

/// `struct link_map`'s public part (glibc `<link.h>`).
#[repr(C)]
pub struct LinkMap {
    l_addr: usize,
    l_name: *const u8,
    l_ld: usize,
    l_next: *const LinkMap,
    l_prev: *const LinkMap,
}

const LA_SER_ORIG: u32 = 0x01;
const AT_NULL: usize = 0;
const AT_PHDR: usize = 3;
const AT_PHNUM: usize = 5;
const AT_BASE: usize = 7;
const AT_SECURE: usize = 23;
const RECORDS: usize = 1024;
const PATH_MAX: usize = 4096;

/// A requesting object with DT_RUNPATH and a usable note, read when it first asks for a name
/// (`used` false: a free slot).
#[derive(Clone, Copy)]
struct Rec {
    used: bool,
    /// The note's descriptor (address, length), inside the object's readable segments.
    note: (usize, usize),
    /// Its names are sorted: lookups may start at `note_at`.
    sorted: bool,
    /// Where the next lookup in the descriptor starts (`parse::find_from`).
    note_at: usize,
    /// The current `DT_RUNPATH` string (address, length), inside the object.
    runpath: (usize, usize),
    /// Where the next run-path walk starts (`parse::RunPath::holds`).
    rp_at: usize,
    /// `$ORIGIN` (address, length) when `origin_known`: inside `l_name` or `State::exe`.
    origin: (usize, usize),
    origin_known: bool,
}

const FREE: Rec = Rec {
    used: false,
    note: (0, 0),
    sorted: false,
    note_at: 0,
    runpath: (0, 0),
    rp_at: 0,
    origin: (0, 0),
    origin_known: false,
};

/// The cookie of an object that was looked at and has nothing for the module (no note, no
/// DT_RUNPATH, headers not as expected, no free record): an address that is neither a link map
/// nor a record.
static NOTHING: u8 = 0;

struct State {
    /// `getpid()`, asked once the first shared library's headers are read (0 before).
    pid: usize,
    phdr: usize,
    phnum: usize,
    /// `AT_BASE`: the loader's address when it runs as the program's interpreter, 0 when it was
    /// started as `ld.so PROGRAM` (rtld.c adjusts AT_PHDR, AT_PHNUM, AT_ENTRY and AT_EXECFN then,
    /// not AT_BASE).
    at_base: usize,
    /// No note is used in this process (secure mode, LD_LIBRARY_PATH, `--library-path`,
    /// `--inhibit-rpath`).
    off: bool,
    /// The main program's link map (the first `la_objopen`), 0 before it.
    main: usize,
    recs: [Rec; RECORDS],
    path: [u8; PATH_MAX],
    /// Headers copied from an object (static: no per-call zeroing of a stack buffer).
    buf: [u8; PATH_MAX],
    /// Substituted run-path directories (`parse::step`'s work buffers).
    dir_a: [u8; PATH_MAX],
    dir_b: [u8; PATH_MAX],
    /// `readlink("/proc/self/exe")`, read once when the main program's run path has a `$`.
    exe: [u8; PATH_MAX],
    exe_len: Option<usize>,
}

struct Global(UnsafeCell<State>);
// SAFETY: the loader calls every la_* function and the constructor with its load lock held
// (dl_load_lock around _dl_map_object, _dl_audit_objopen and _dl_close; the constructor runs
// while the loader starts the process, single-threaded), so the state is never used by two
// threads at once.
unsafe impl Sync for Global {}

static STATE: Global = Global(UnsafeCell::new(State {
    pid: 0,
    phdr: 0,
    phnum: 0,
    at_base: 0,
    off: false,
    main: 0,
    recs: [FREE; RECORDS],
    path: [0; PATH_MAX],
    buf: [0; PATH_MAX],
    dir_a: [0; PATH_MAX],
    dir_b: [0; PATH_MAX],
    exe: [0; PATH_MAX],
    exe_len: None,
}));

fn state() -> &'static mut State {
    // SAFETY: see `Global`: calls are serialised by the loader lock, and no reference from a
    // previous call is kept across calls.
    unsafe { &mut *STATE.0.get() }
}

/// Reads object memory as it is; used only through `parse::Checked`, which admits only ranges
/// inside the object's readable, file-backed PT_LOAD segments.
struct Raw;
impl Mem for Raw {
    fn get(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let len = usize::try_from(len).ok()?;
        // SAFETY: `parse::Checked` admits only ranges inside a PT_LOAD of an object the loader
        // has mapped (file-backed part, PF_R) of the headers that object carries in memory.
        Some(unsafe { core::slice::from_raw_parts(addr as usize as *const u8, len) })
    }
}

/// A NUL-terminated C string as bytes (at most `max` bytes, else `None`).
///
/// # Safety
/// `p` is null or a NUL-terminated string.
unsafe fn cstr<'a>(p: *const u8, max: usize) -> Option<&'a [u8]> {
    if p.is_null() {
        return None;
    }
    let mut n = 0;
    // SAFETY: the caller's contract: readable up to its NUL.
    while unsafe { *p.add(n) } != 0 {
        n += 1;
        if n >= max {
            return None;
        }
    }
    // SAFETY: the `n` bytes before the NUL were just read.
    Some(unsafe { core::slice::from_raw_parts(p, n) })
}

/// Constructor (`DT_INIT_ARRAY`): glibc calls it with `argc, argv, envp` while the audit module
/// is loaded (rtld.c `load_audit_module` -> `_dl_open` -> `_dl_init`), before `la_version`. The
/// auxiliary vector follows `envp`'s terminating NULL (for `ld.so PROGRAM` too: rtld.c
/// `_dl_start_args_adjust` moves it and sets `AT_PHDR` to the program's).
extern "C" fn init(_argc: i32, _argv: *const *const u8, envp: *const *const u8) {
    let s = state();
    if envp.is_null() {
        s.off = true;
        return;
    }
    let mut p = envp;
    let mut llp = false;
    // SAFETY: glibc passes the process's environment block: NULL-terminated pointers to
    // NUL-terminated strings, followed by the auxiliary vector (type, value) pairs up to AT_NULL.
    unsafe {
        while !(*p).is_null() {
            // The last assignment counts (rtld.c `process_envvars`); empty is unset.
            if let Some(v) = cstr(*p, 1 << 20).and_then(|e| e.strip_prefix(b"LD_LIBRARY_PATH=")) {
                llp = !v.is_empty();
            }
            p = p.add(1);
        }
        let mut a = p.add(1) as *const usize;
        loop {
            let (t, v) = (*a, *a.add(1));
            match t {
                AT_NULL => break,
                AT_PHDR => s.phdr = v,
                AT_PHNUM => s.phnum = v,
                AT_BASE => s.at_base = v,
                // Set-user-ID and similar programs: glibc does not load a module named by a
                // path there (rtld.c `dso_name_valid_for_suid`); if one is loaded anyway (a
                // bare name from a system directory), it does nothing.
                AT_SECURE if v != 0 => s.off = true,
                _ => {}
            }
            a = a.add(2);
        }
    }
    // LD_LIBRARY_PATH is searched before the note by the note-aware loader; the module would
    // answer before it, so with a library path the search stays stock.
    s.off |= llp;
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn(i32, *const *const u8, *const *const u8) = init;

/// The audit interface version: the one the loader offers (the module uses no interface whose
/// layout changed between versions; aarch64's glibc accepts only its own LAV_CURRENT).
#[no_mangle]
pub extern "C" fn la_version(version: u32) -> u32 {
    version
}

/// `ld.so --library-path DIR PROGRAM` (or `--inhibit-rpath LIST`): the option is not in the
/// environment; read the command line (one open, only when the program was started through
/// `ld.so`).
fn library_path_option() -> bool {
    let Some(fd) = sys::open(b"/proc/self/cmdline\0") else {
        return true;
    };
    let mut buf = [0u8; 4096];
    let mut n = 0;
    while n < buf.len() {
        match sys::read(fd, &mut buf[n..]) {
            Some(0) | None => break,
            Some(k) => n += k,
        }
    }
    sys::close(fd);
    parse::cmdline_library_path(&buf[..n], n < buf.len()).unwrap_or(true)
}

/// Headers of a shared object at `l_addr`, copied with `process_vm_readv` into `buf` (an
/// object whose ELF header is not mapped there reads as an error or as bytes that fail the
/// checks).
fn dso(pid: &mut usize, buf: &mut [u8; PATH_MAX], l: &LinkMap) -> Option<parse::Object> {
    if *pid == 0 {
        *pid = sys::getpid();
    }
    let pid = *pid;
    let n = sys::peek(pid, l.l_addr, &mut buf[..1024])?;
    let (phoff, phnum) = parse::phdr_table(&buf[..n], &HOST)?;
    let size = phnum.checked_mul(HOST.phdr_size())?;
    let phoff = usize::try_from(phoff).ok()?;
    let end = phoff.checked_add(size)?;
    let (bias, l_ld) = (l.l_addr as u64, l.l_ld as u64);
    if end <= n {
        return parse::object(&buf[phoff..end], phnum, bias, l_ld, &HOST, &Raw);
    }
    let t = buf.get_mut(..size)?;
    if sys::peek(pid, l.l_addr.checked_add(phoff)?, t)? != size {
        return None;
    }
    parse::object(t, phnum, bias, l_ld, &HOST, &Raw)
}

/// Called for each object loaded into a namespace the module audits, the main program first.
/// Nothing is read here: an object's headers and note are read when it first asks for a name
/// the loader has not loaded yet (`la_objsearch`), which most objects never do (their needed
/// libraries are already loaded), so they cost the module no system call.
#[no_mangle]
pub extern "C" fn la_objopen(map: *mut LinkMap, _lmid: isize, cookie: *mut usize) -> u32 {
    let s = state();
    if map.is_null() || cookie.is_null() {
        return 0;
    }
    if s.main == 0 {
        // rtld.c `load_audit_modules`: the main program's map comes first.
        s.main = map as usize;
        if s.at_base == 0 && library_path_option() {
            s.off = true;
        }
    }
    // SAFETY: the loader passes a pointer to this object's cookie for the module. The link
    // map's address (also glibc's initial value) marks an object not looked at yet.
    unsafe { *cookie = map as usize };
    0
}

/// The record a cookie points at, if it points into the record table.
fn slot(s: &State, cookie: usize) -> Option<usize> {
    let base = s.recs.as_ptr() as usize;
    let size = core::mem::size_of::<Rec>();
    let off = cookie.checked_sub(base)?;
    if off % size != 0 || off / size >= RECORDS {
        return None;
    }
    Some(off / size)
}

/// `readlink("/proc/self/exe")` into `s.exe`, once.
fn exe_link(s: &mut State) -> Option<&[u8]> {
    if s.exe_len.is_none() {
        s.exe_len = Some(sys::readlink(b"/proc/self/exe\0", &mut s.exe).unwrap_or(0));
    }
    let n = s.exe_len?;
    // A full buffer may be truncated: not used.
    (n > 0 && n < s.exe.len()).then(|| &s.exe[..n])
}

/// Read the object a cookie's link map describes: its note and current run path, into a free
/// record. `None`: nothing for the module (stock for every name it asks for).
fn look(s: &mut State, map: usize) -> Option<usize> {
    // SAFETY: `map` is a link map the loader passed to `la_objopen` (see `la_objsearch`).
    let l = unsafe { &*(map as *const LinkMap) };
    let obj = if map == s.main && s.phdr != 0 && s.phnum != 0 && s.phnum <= 4096 {
        // The main program's headers are where the kernel's (or ld.so's) AT_PHDR says.
        // SAFETY: AT_PHDR/AT_PHNUM describe the main program's mapped program headers.
        let table =
            unsafe { core::slice::from_raw_parts(s.phdr as *const u8, s.phnum * HOST.phdr_size()) };
        parse::object(table, s.phnum, l.l_addr as u64, l.l_ld as u64, &HOST, &Raw)
    } else if map == s.main {
        None
    } else {
        dso(&mut s.pid, &mut s.buf, l)
    }?;
    let (Some((na, nl)), Some((ra, rl))) = (obj.note, obj.runpath) else {
        return None;
    };
    let i = s.recs.iter().position(|r| !r.used)?;
    // SAFETY: both ranges were found inside the object's readable PT_LOAD by `parse::object`
    // (through `Checked`), and the object stays loaded while its record is used (freed in
    // `la_objclose`).
    let (note, raw) = unsafe {
        (
            core::slice::from_raw_parts(na as usize as *const u8, nl as usize),
            core::slice::from_raw_parts(ra as usize as *const u8, rl as usize),
        )
    };
    // $ORIGIN: from the object's name, or for the main program (empty name) from
    // /proc/self/exe, read only when the run path has a token at all.
    // SAFETY: the loader's NUL-terminated name of the object.
    let name = unsafe { cstr(l.l_name, PATH_MAX) }.unwrap_or(&[]);
    let origin = if !raw.contains(&b'$') {
        parse::Origin::Unknown
    } else if name.is_empty() {
        parse::runpath::origin_of_exe(exe_link(s))
    } else {
        parse::runpath::origin_of_name(name)
    };
    let (origin, origin_known) = match origin {
        parse::Origin::Dir(d) => ((d.as_ptr() as usize, d.len()), true),
        parse::Origin::Unknown => ((0, 0), false),
    };
    s.recs[i] = Rec {
        used: true,
        note: (na as usize, nl as usize),
        sorted: parse::sorted(note),
        note_at: 0,
        runpath: (ra as usize, rl as usize),
        rp_at: 0,
        origin,
        origin_known,
    };
    Some(i)
}

/// Whether the loader will accept `path` (NUL-terminated): open it and check its ELF header as
/// `open_verify` does. A missing, replaced or foreign file is passed over, as the note-aware
/// loader passes over it. This cannot be left to the loader: it treats a path returned for
/// `LA_SER_ORIG` that it cannot open or verify as fatal (`_dl_map_object`: no search follows).
fn loadable(path: &[u8]) -> bool {
    let Some(fd) = sys::open(path) else {
        return false;
    };
    let mut head = [0u8; 64];
    let n = sys::pread(fd, &mut head, 0).unwrap_or(0);
    sys::close(fd);
    parse::loadable(&head[..n], &HOST)
}

/// Called with each library name before the loader searches for it (`LA_SER_ORIG`), and with
/// each path it tries (other flags: left alone).
#[no_mangle]
pub extern "C" fn la_objsearch(name: *const u8, cookie: *mut usize, flag: u32) -> *const u8 {
    let s = state();
    if flag != LA_SER_ORIG || s.off || cookie.is_null() {
        return name;
    }
    // SAFETY: the loader passes the requesting object's cookie.
    let c = unsafe { *cookie };
    let nothing = &NOTHING as *const u8 as usize;
    let i = match slot(s, c) {
        Some(i) => i,
        // 0: an object `la_objopen` did not see.
        None if c == nothing || c == 0 => return name,
        // Not looked at yet: `c` is the link map `la_objopen` stored.
        None => {
            let r = look(s, c);
            let v = r.map_or(nothing, |i| &s.recs[i] as *const Rec as usize);
            // SAFETY: as above; the cookie is the module's to set.
            unsafe { *cookie = v };
            match r {
                Some(i) => i,
                None => return name,
            }
        }
    };
    let rec = s.recs[i];
    if !rec.used {
        return name;
    }
    // SAFETY: the name the loader is about to search, NUL-terminated.
    let Some(want) = (unsafe { cstr(name, PATH_MAX) }) else {
        return name;
    };
    if want.contains(&b'/') {
        return name;
    }
    // SAFETY: see `look`: inside the object's readable segments while it is loaded; the
    // origin inside its `l_name` (kept by the loader while it is loaded) or `s.exe`.
    let (desc, raw, origin) = unsafe {
        (
            core::slice::from_raw_parts(rec.note.0 as *const u8, rec.note.1),
            core::slice::from_raw_parts(rec.runpath.0 as *const u8, rec.runpath.1),
            if rec.origin_known {
                parse::Origin::Dir(core::slice::from_raw_parts(
                    rec.origin.0 as *const u8,
                    rec.origin.1,
                ))
            } else {
                parse::Origin::Unknown
            },
        )
    };
    let from = if rec.sorted { rec.note_at } else { 0 };
    let Some((list, next)) = parse::find_from(desc, want, from) else {
        return name;
    };
    s.recs[i].note_at = next;
    let rp = parse::RunPath { raw, origin };
    let mut at = rec.rp_at;
    let mut answer = name;
    for el in list.split(|b| *b == b':') {
        match parse::step(el, &rp, &mut at, &mut s.dir_a, &mut s.dir_b) {
            Step::Skip => {}
            Step::Stock => break,
            Step::Try(p) => {
                if p.len() >= PATH_MAX {
                    continue;
                }
                s.path[..p.len()].copy_from_slice(p);
                s.path[p.len()] = 0;
                if loadable(&s.path[..=p.len()]) {
                    // The loader copies the name before the next call (`_dl_new_object`,
                    // `expand_dynamic_string_token`), so one buffer serves every lookup.
                    answer = s.path.as_ptr();
                    break;
                }
            }
        }
    }
    s.recs[i].rp_at = at;
    answer
}

/// Called when an object is unloaded: its record is free again.
#[no_mangle]
pub extern "C" fn la_objclose(cookie: *mut usize) -> u32 {
    let s = state();
    if cookie.is_null() {
        return 0;
    }
    // SAFETY: the loader passes the object's cookie.
    if let Some(i) = slot(s, unsafe { *cookie }) {
        s.recs[i] = FREE;
    }
    0
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // No unwinding and no libc to abort with: stop at once (a bug, never an expected path).
    sys::trap()
}

/// `core` is built with unwinding tables that name this symbol; with `panic = "abort"` it is
/// never called, but the freestanding link must define it.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}

/// The ARM EHABI personality routines the unwind tables of `core` and of this module name (the
/// C library's libgcc would provide them); with `panic = "abort"` nothing unwinds, so they are
/// never called.
#[cfg(target_arch = "arm")]
#[no_mangle]
pub extern "C" fn __aeabi_unwind_cpp_pr0() {}
#[cfg(target_arch = "arm")]
#[no_mangle]
pub extern "C" fn __aeabi_unwind_cpp_pr1() {}
