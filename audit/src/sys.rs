//! Raw Linux system calls: the module links no libc.
#![allow(unsafe_code)]

// System call numbers: the kernel's per-architecture tables (arch/*/entry/syscalls, the
// generic include/uapi/asm-generic/unistd.h for aarch64 and riscv64), as the `libc` crate's
// `SYS_*` constants give them.
#[cfg(target_arch = "x86_64")]
mod nr {
    pub const READ: usize = 0;
    pub const CLOSE: usize = 3;
    pub const PREAD64: usize = 17;
    pub const GETPID: usize = 39;
    pub const OPENAT: usize = 257;
    pub const PROCESS_VM_READV: usize = 310;
    pub const READLINKAT: usize = 267;
}
#[cfg(any(target_arch = "aarch64", target_arch = "riscv64"))]
mod nr {
    pub const OPENAT: usize = 56;
    pub const CLOSE: usize = 57;
    pub const READ: usize = 63;
    pub const PREAD64: usize = 67;
    pub const GETPID: usize = 172;
    pub const PROCESS_VM_READV: usize = 270;
    pub const READLINKAT: usize = 78;
}
#[cfg(target_arch = "x86")]
mod nr {
    pub const READ: usize = 3;
    pub const CLOSE: usize = 6;
    pub const GETPID: usize = 20;
    pub const PREAD64: usize = 180;
    pub const OPENAT: usize = 295;
    pub const PROCESS_VM_READV: usize = 347;
    pub const READLINKAT: usize = 305;
}
/// ARM EABI numbers (no 0x900000 OABI offset).
#[cfg(target_arch = "arm")]
mod nr {
    pub const READ: usize = 3;
    pub const CLOSE: usize = 6;
    pub const GETPID: usize = 20;
    pub const PREAD64: usize = 180;
    pub const OPENAT: usize = 322;
    pub const PROCESS_VM_READV: usize = 376;
    pub const READLINKAT: usize = 332;
}
#[cfg(target_arch = "powerpc64")]
mod nr {
    pub const READ: usize = 3;
    pub const CLOSE: usize = 6;
    pub const GETPID: usize = 20;
    pub const PREAD64: usize = 179;
    pub const OPENAT: usize = 286;
    pub const PROCESS_VM_READV: usize = 351;
    pub const READLINKAT: usize = 296;
}
#[cfg(target_arch = "s390x")]
mod nr {
    pub const READ: usize = 3;
    pub const CLOSE: usize = 6;
    pub const GETPID: usize = 20;
    pub const PREAD64: usize = 180;
    pub const OPENAT: usize = 288;
    pub const PROCESS_VM_READV: usize = 340;
    pub const READLINKAT: usize = 298;
}
/// The n64 ABI's numbers (base 5000).
#[cfg(target_arch = "mips64")]
mod nr {
    pub const READ: usize = 5000;
    pub const CLOSE: usize = 5003;
    pub const PREAD64: usize = 5016;
    pub const GETPID: usize = 5038;
    pub const OPENAT: usize = 5247;
    pub const PROCESS_VM_READV: usize = 5304;
    pub const READLINKAT: usize = 5257;
}
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "riscv64",
    target_arch = "x86",
    target_arch = "arm",
    target_arch = "powerpc64",
    target_arch = "s390x",
    target_arch = "mips64",
)))]
compile_error!("ldnote-audit: no system call layer for this architecture");

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

#[cfg(target_arch = "riscv64")]
unsafe fn call6(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the Linux RISC-V convention (a7 = number, a0..a5 = arguments, a0 = result; no
    // other register changes). Callers pass pointers to buffers they own for the lengths given.
    unsafe {
        core::arch::asm!("ecall", in("a7") n, inlateout("a0") a[0] as isize => ret,
            in("a1") a[1], in("a2") a[2], in("a3") a[3], in("a4") a[4], in("a5") a[5],
            options(nostack));
    }
    ret
}

#[cfg(target_arch = "x86")]
unsafe fn call6(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // `int 0x80` takes the number in eax and the arguments in ebx, ecx, edx, esi, edi, ebp.
    // LLVM reserves esi (base pointer) and ebp (frame pointer) for itself, so those two are
    // saved on the stack and loaded from memory that eax points at, with the number.
    let mem = [n, a[3], a[5]];
    // SAFETY: the Linux i386 convention (eax = result; no other register changes); esi and ebp
    // are restored before the block ends and the stack is balanced. Callers pass pointers to
    // buffers they own for the lengths they give.
    unsafe {
        core::arch::asm!(
            "push ebp",
            "push esi",
            "mov esi, [eax + 4]",
            "mov ebp, [eax + 8]",
            "mov eax, [eax]",
            "int 0x80",
            "pop esi",
            "pop ebp",
            inlateout("eax") mem.as_ptr() => ret,
            in("ebx") a[0], in("ecx") a[1], in("edx") a[2], in("edi") a[4],
        );
    }
    ret
}

#[cfg(target_arch = "arm")]
unsafe fn call6(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the Linux ARM EABI convention (r7 = number, r0..r5 = arguments, r0 = result; no
    // other register changes). Callers pass pointers to buffers they own for the lengths they
    // give.
    unsafe {
        core::arch::asm!("svc 0", in("r7") n, inlateout("r0") a[0] as isize => ret,
            in("r1") a[1], in("r2") a[2], in("r3") a[3], in("r4") a[4], in("r5") a[5],
            options(nostack));
    }
    ret
}

#[cfg(target_arch = "powerpc64")]
unsafe fn call6(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the Linux powerpc64 `sc` convention (kernel Documentation/arch/powerpc/
    // syscall64-abi.rst): r0 = number, r3..r8 = arguments, r3 = result with CR0.SO set on
    // failure (r3 then holds the positive errno, negated here); r0, r4..r12, cr0, ctr and xer
    // are volatile. Callers pass pointers to buffers they own for the lengths they give.
    unsafe {
        core::arch::asm!("sc", "bns+ 1f", "neg 3, 3", "1:",
            inlateout("r0") n => _, inlateout("r3") a[0] as isize => ret,
            inlateout("r4") a[1] => _, inlateout("r5") a[2] => _, inlateout("r6") a[3] => _,
            inlateout("r7") a[4] => _, inlateout("r8") a[5] => _,
            lateout("r9") _, lateout("r10") _, lateout("r11") _, lateout("r12") _,
            lateout("cr0") _, lateout("ctr") _, lateout("xer") _, options(nostack));
    }
    ret
}

#[cfg(target_arch = "s390x")]
unsafe fn call6(n: usize, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the Linux s390x convention: `svc 0` takes the number from r1 (any number; `svc N`
    // encodes only those below 256), the arguments in r2..r7, the result in r2; no other
    // register changes. Callers pass pointers to buffers they own for the lengths they give.
    unsafe {
        core::arch::asm!("svc 0", in("r1") n, inlateout("r2") a[0] as isize => ret,
            in("r3") a[1], in("r4") a[2], in("r5") a[3], in("r6") a[4], in("r7") a[5],
            options(nostack));
    }
    ret
}

#[cfg(target_arch = "mips64")]
unsafe fn call6(n: usize, a: [usize; 6]) -> isize {
    let (v0, err): (isize, usize);
    // SAFETY: the Linux MIPS n64 convention: v0 ($2) = number, a0..a5 ($4..$9) = arguments;
    // v0 = result and a3 ($7) non-zero on failure (v0 then holds the positive errno); $3,
    // $8..$15, $24 and $25 may change ($1, hi and lo too: LLVM keeps no value in them across an
    // asm block). Callers pass pointers to buffers they own for the lengths they give.
    unsafe {
        core::arch::asm!("syscall",
            inlateout("$2") n as isize => v0, inlateout("$4") a[0] => _,
            inlateout("$5") a[1] => _, inlateout("$6") a[2] => _, inlateout("$7") a[3] => err,
            inlateout("$8") a[4] => _, inlateout("$9") a[5] => _,
            lateout("$3") _, lateout("$10") _, lateout("$11") _,
            lateout("$12") _, lateout("$13") _, lateout("$14") _, lateout("$15") _,
            lateout("$24") _, lateout("$25") _,
            options(nostack));
    }
    if err != 0 {
        -v0
    } else {
        v0
    }
}

/// Stop at once (an undefined or trapping instruction: SIGILL or SIGTRAP); used by the panic
/// handler, as there is no libc to abort with.
pub fn trap() -> ! {
    loop {
        // SAFETY: the instruction raises a signal and touches nothing.
        unsafe {
            #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
            core::arch::asm!("ud2");
            #[cfg(target_arch = "aarch64")]
            core::arch::asm!("udf #0");
            // The permanently undefined encoding Linux uses as its ARM-mode breakpoint.
            #[cfg(target_arch = "arm")]
            core::arch::asm!(".inst 0xe7f001f0");
            #[cfg(target_arch = "riscv64")]
            core::arch::asm!("unimp");
            #[cfg(target_arch = "powerpc64")]
            core::arch::asm!("trap");
            // Opcode 0x00 is not an instruction on s390x: an operation exception, SIGILL.
            #[cfg(target_arch = "s390x")]
            core::arch::asm!(".short 0");
            #[cfg(target_arch = "mips64")]
            core::arch::asm!("break");
        }
    }
}

const AT_FDCWD: isize = -100;
const O_CLOEXEC: usize = 0o2_000_000;
/// 32-bit kernels refuse to open a file of 2 GiB or more without O_LARGEFILE (64-bit ones set it
/// themselves); glibc's loader opens with it (`__open64_nocancel`), so the module does too.
#[cfg(target_arch = "x86")]
const O_LARGEFILE: usize = 0o100_000;
#[cfg(target_arch = "arm")]
const O_LARGEFILE: usize = 0o400_000;
#[cfg(target_pointer_width = "64")]
const O_LARGEFILE: usize = 0;

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
                O_CLOEXEC | O_LARGEFILE,
                0,
                0,
                0,
            ],
        )
    };
    (r >= 0).then_some(r as usize)
}

/// `pread64(fd, buf, len, off)`: the byte count.
pub fn pread(fd: usize, buf: &mut [u8], off: u64) -> Option<usize> {
    let (b, n) = (buf.as_mut_ptr() as usize, buf.len());
    #[cfg(target_pointer_width = "64")]
    let a = [fd, b, n, off as usize, 0, 0];
    // 32-bit kernels take the 64-bit offset as two words, low first on these little-endian
    // targets; i386 in the next two argument registers.
    #[cfg(target_arch = "x86")]
    let a = [fd, b, n, off as u32 as usize, (off >> 32) as usize, 0];
    // The ARM EABI passes a 64-bit argument in an even/odd register pair: r3 is padding, the
    // offset is in r4 (low) and r5 (high).
    #[cfg(target_arch = "arm")]
    let a = [fd, b, n, 0, off as u32 as usize, (off >> 32) as usize];
    // SAFETY: `buf` is writable for its length for the duration of the call.
    let r = unsafe { call6(nr::PREAD64, a) };
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

/// `readlinkat(AT_FDCWD, path, buf, len)`: the byte count (no NUL is added). `path` must end
/// in a NUL.
pub fn readlink(path: &[u8], buf: &mut [u8]) -> Option<usize> {
    if path.last() != Some(&0) {
        return None;
    }
    // SAFETY: `path` is NUL-terminated, `buf` writable for its length, both borrowed for the
    // call.
    let r = unsafe {
        call6(
            nr::READLINKAT,
            [
                AT_FDCWD as usize,
                path.as_ptr() as usize,
                buf.as_mut_ptr() as usize,
                buf.len(),
                0,
                0,
            ],
        )
    };
    (r >= 0).then_some(r as usize)
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
