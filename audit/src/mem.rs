//! The memory functions the compiler may call (`core` expects them from the C library, which
//! this module does not link). Byte loops through volatile accesses, so that the optimiser
//! cannot turn them back into calls to themselves.
#![allow(unsafe_code)]

/// # Safety
/// `d` and `s` valid for `n` bytes, not overlapping.
#[no_mangle]
pub unsafe extern "C" fn memcpy(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: the caller's contract: both valid for n bytes.
        unsafe { core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i))) };
    }
    d
}

/// # Safety
/// `d` and `s` valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memmove(d: *mut u8, s: *const u8, n: usize) -> *mut u8 {
    if (d as usize) <= (s as usize) {
        for i in 0..n {
            // SAFETY: the caller's contract; forward copy is correct when d <= s.
            unsafe { core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i))) };
        }
    } else {
        for i in (0..n).rev() {
            // SAFETY: the caller's contract; backward copy is correct when d > s.
            unsafe { core::ptr::write_volatile(d.add(i), core::ptr::read_volatile(s.add(i))) };
        }
    }
    d
}

/// # Safety
/// `d` valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(d: *mut u8, c: i32, n: usize) -> *mut u8 {
    for i in 0..n {
        // SAFETY: the caller's contract.
        unsafe { core::ptr::write_volatile(d.add(i), c as u8) };
    }
    d
}

/// # Safety
/// `a` and `b` valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller's contract.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// # Safety
/// `a` and `b` valid for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract.
    unsafe { memcmp(a, b, n) }
}
