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

/// A noted object with DT_RUNPATH: its note's descriptor (address, length); length 0 = free.
#[derive(Clone, Copy)]
struct Rec {
    addr: usize,
    len: usize,
}

struct State {
    pid: usize,
    phdr: usize,
    phnum: usize,
    /// `AT_BASE`: the loader's address when it runs as the program's interpreter, 0 when it was
    /// started as `ld.so PROGRAM` (rtld.c adjusts AT_PHDR, AT_PHNUM, AT_ENTRY and AT_EXECFN then,
    /// not AT_BASE).
    at_base: usize,
    /// No note is used in this process (secure mode, LD_LIBRARY_PATH, `--library-path`).
    off: bool,
    seen_main: bool,
    recs: [Rec; RECORDS],
    path: [u8; PATH_MAX],
    /// Headers copied from an object (static: no per-call zeroing of a stack buffer).
    buf: [u8; PATH_MAX],
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
    seen_main: false,
    recs: [Rec { addr: 0, len: 0 }; RECORDS],
    path: [0; PATH_MAX],
    buf: [0; PATH_MAX],
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
    s.pid = sys::getpid();
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

/// `ld.so --library-path DIR PROGRAM`: the library path is not in the environment; read the
/// command line (one open, only when the program was started through `ld.so`).
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
fn dso(pid: usize, buf: &mut [u8; PATH_MAX], l: &LinkMap) -> Option<parse::Object> {
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
#[no_mangle]
pub extern "C" fn la_objopen(map: *mut LinkMap, _lmid: isize, cookie: *mut usize) -> u32 {
    let s = state();
    if map.is_null() || cookie.is_null() {
        return 0;
    }
    // SAFETY: the loader passes its link map for the object.
    let l = unsafe { &*map };
    let obj = if !s.seen_main {
        // rtld.c `load_audit_modules`: the main program's map comes first. Its headers are
        // where the kernel's (or ld.so's) AT_PHDR says.
        s.seen_main = true;
        if s.at_base == 0 && library_path_option() {
            s.off = true;
        }
        if s.off || s.phdr == 0 || s.phnum == 0 || s.phnum > 4096 {
            return 0;
        }
        // SAFETY: AT_PHDR/AT_PHNUM describe the main program's mapped program headers.
        let table =
            unsafe { core::slice::from_raw_parts(s.phdr as *const u8, s.phnum * HOST.phdr_size()) };
        parse::object(table, s.phnum, l.l_addr as u64, l.l_ld as u64, &HOST, &Raw)
    } else if s.off {
        return 0;
    } else {
        dso(s.pid, &mut s.buf, l)
    };
    let Some((addr, len)) = obj.and_then(|o| o.note) else {
        return 0;
    };
    if let Some(r) = s.recs.iter_mut().find(|r| r.len == 0) {
        r.addr = addr as usize;
        r.len = len as usize;
        // SAFETY: the loader passes a pointer to this object's cookie for the module.
        unsafe { *cookie = r as *mut Rec as usize };
    }
    0
}

/// The record a cookie points at, if it is one of ours.
fn record(s: &State, cookie: usize) -> Option<Rec> {
    let base = s.recs.as_ptr() as usize;
    let size = core::mem::size_of::<Rec>();
    let off = cookie.checked_sub(base)?;
    if off % size != 0 {
        return None;
    }
    s.recs.get(off / size).copied().filter(|r| r.len != 0)
}

/// Whether the loader will accept `path` (NUL-terminated): open it and check its ELF header as
/// `open_verify` does. A missing, replaced or foreign file is passed over, as the note-aware
/// loader passes over it.
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
    let Some(rec) = record(s, unsafe { *cookie }) else {
        return name;
    };
    // SAFETY: the name the loader is about to search, NUL-terminated.
    let Some(want) = (unsafe { cstr(name, PATH_MAX) }) else {
        return name;
    };
    if want.contains(&b'/') {
        return name;
    }
    // SAFETY: the descriptor was found inside the object's readable PT_LOAD by
    // `parse::object` (through `Checked`) and the object is still loaded (its record is freed
    // in `la_objclose`).
    let desc = unsafe { core::slice::from_raw_parts(rec.addr as *const u8, rec.len) };
    let Some(list) = parse::find(desc, want) else {
        return name;
    };
    for el in list.split(|b| *b == b':') {
        match parse::step(el) {
            Step::Skip => {}
            Step::Stock => return name,
            Step::Try(p) => {
                if p.len() >= PATH_MAX {
                    continue;
                }
                s.path[..p.len()].copy_from_slice(p);
                s.path[p.len()] = 0;
                if loadable(&s.path[..=p.len()]) {
                    // The loader copies the name before the next call (`_dl_new_object`,
                    // `expand_dynamic_string_token`), so one buffer serves every lookup.
                    return s.path.as_ptr();
                }
            }
        }
    }
    name
}

/// Called when an object is unloaded: its record is free again.
#[no_mangle]
pub extern "C" fn la_objclose(cookie: *mut usize) -> u32 {
    let s = state();
    if cookie.is_null() {
        return 0;
    }
    // SAFETY: the loader passes the object's cookie.
    let c = unsafe { *cookie };
    if record(s, c).is_some() {
        let i = (c - s.recs.as_ptr() as usize) / core::mem::size_of::<Rec>();
        s.recs[i].len = 0;
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
