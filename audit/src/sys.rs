//! Raw Linux system calls: the module links no libc.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
mod nr {
    pub const READ: usize = 0;
    pub const CLOSE: usize = 3;
    pub const PREAD64: usize = 17;
    pub const GETPID: usize = 39;
    pub const OPENAT: usize = 257;
    pub const PROCESS_VM_READV: usize = 310;
}
#[cfg(target_arch = "aarch64")]
mod nr {
    pub const OPENAT: usize = 56;
    pub const CLOSE: usize = 57;
    pub const READ: usize = 63;
    pub const PREAD64: usize = 67;
    pub const GETPID: usize = 172;
    pub const PROCESS_VM_READV: usize = 270;
}
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("ldnote-audit: system calls are written for x86_64 and aarch64 only");

/// `syscall(n, a..)`; returns the raw result (negative errno on failure).
#[cfg(target_arch = "x86_64")]
unsafe fn call6(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the Linux x86_64 system call convention; the kernel clobbers rcx and r11 only.
    // Callers pass pointers to buffers they own for the lengths they give.
    unsafe {
        core::arch::asm!("syscall", inlateout("rax") n as isize => ret,
            in("rdi") a[0], in("rsi") a[1], in("rdx") a[2], in("r10") a[3], in("r8") a[4],
            in("r9") a[5], lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

#[cfg(target_arch = "aarch64")]
unsafe fn call6(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the Linux aarch64 system call convention (x8 = number, x0..x5 = arguments, x0 =
    // result). Callers pass pointers to buffers they own for the lengths they give.
    unsafe {
        core::arch::asm!("svc 0", in("x8") n, inlateout("x0") a[0] as isize => ret,
            in("x1") a[1], in("x2") a[2], in("x3") a[3], in("x4") a[4], in("x5") a[5],
            options(nostack));
    }
    ret
}

const AT_FDCWD: isize = -100;
const O_CLOEXEC: usize = 0o2_000_000;

/// `openat(AT_FDCWD, path, O_RDONLY|O_CLOEXEC)`: `path` must end in a NUL.
pub fn open(path: &[u8]) -> Option<usize> {
    if path.last() != Some(&0) {
        return None;
    }
    // SAFETY: `path` is a NUL-terminated buffer borrowed for the call.
    let r = unsafe {
        call6(
            nr::OPENAT,
            [
                AT_FDCWD as usize,
                path.as_ptr() as usize,
                O_CLOEXEC,
                0,
                0,
                0,
            ],
        )
    };
    (r >= 0).then_some(r as usize)
}

/// `pread64(fd, buf, len, off)`: the byte count.
pub fn pread(fd: usize, buf: &mut [u8], off: usize) -> Option<usize> {
    // SAFETY: `buf` is writable for its length for the duration of the call.
    let r = unsafe {
        call6(
            nr::PREAD64,
            [fd, buf.as_mut_ptr() as usize, buf.len(), off, 0, 0],
        )
    };
    (r >= 0).then_some(r as usize)
}

/// `read(fd, buf, len)`: the byte count.
pub fn read(fd: usize, buf: &mut [u8]) -> Option<usize> {
    // SAFETY: `buf` is writable for its length for the duration of the call.
    let r = unsafe {
        call6(
            nr::READ,
            [fd, buf.as_mut_ptr() as usize, buf.len(), 0, 0, 0],
        )
    };
    (r >= 0).then_some(r as usize)
}

/// `close(fd)`.
pub fn close(fd: usize) {
    // SAFETY: no memory is passed.
    unsafe { call6(nr::CLOSE, [fd, 0, 0, 0, 0, 0]) };
}

/// `getpid()`.
pub fn getpid() -> usize {
    // SAFETY: no memory is passed.
    unsafe { call6(nr::GETPID, [0; 6]) as usize }
}

#[repr(C)]
struct Iovec {
    base: usize,
    len: usize,
}

/// Copy `buf.len()` bytes of this process's memory at `addr` into `buf` with
/// `process_vm_readv`: an unmapped or unreadable address is an error (EFAULT), never a fault.
/// Returns how many bytes were copied (fewer when the range runs into unreadable memory).
pub fn peek(pid: usize, addr: usize, buf: &mut [u8]) -> Option<usize> {
    let local = Iovec {
        base: buf.as_mut_ptr() as usize,
        len: buf.len(),
    };
    let remote = Iovec {
        base: addr,
        len: buf.len(),
    };
    // SAFETY: `local` describes `buf`, writable for its length; the kernel checks `remote`
    // against this process's mappings itself and never faults on it.
    let r = unsafe {
        call6(
            nr::PROCESS_VM_READV,
            [
                pid,
                &local as *const Iovec as usize,
                1,
                &remote as *const Iovec as usize,
                1,
                0,
            ],
        )
    };
    (r >= 0).then_some(r as usize)
}
