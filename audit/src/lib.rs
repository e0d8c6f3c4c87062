//! An rtld-audit module (`man 7 rtld-audit`) that makes a stock glibc (>= 2.32 for `DT_AUDIT`,
//! any for `LD_AUDIT`) honour the `.note.nixos.ldcache` resolution note written by ldnote.
//!
//! glibc calls `la_objsearch(name, cookie, LA_SER_ORIG)` with every library name before its
//! search starts (glibc 2.36 elf/dl-load.c `_dl_map_object`), with the cookie of the object that
//! asks for it; a returned name containing `/` is opened directly and no search runs. The module
//! finds each object's note in memory when `la_objopen` sees it, and for a name the requesting
//! object's note records, returns the first `=` path that is a loadable file for this process,
//! as the project's note-aware loader chooses it (loader/README.md). Anything else (a `?`
//! hint, no entry, no note, a malformed note, a DT_RPATH requester, `LD_LIBRARY_PATH` set, a
//! secure-mode process) returns the name unchanged: the stock search.
//!
//! It is freestanding: no libc, no `DT_NEEDED` (an audit module's dependencies get their own
//! copy in the audit namespace, and that copy's libc is searched through the program's whole run
//! path), its own system calls and memory functions, no allocation, no PLT hooks.
//!
//! With feature `host` (and in tests) only the pure [`parse`] code is built, with std.
#![cfg_attr(not(any(test, feature = "host")), no_std)]
// MIPS inline assembly is not stable yet: the mips64el module is built with a nightly toolchain
// (audit/build.sh), as that tier-3 target has no prebuilt `core` anyway.
#![cfg_attr(target_arch = "mips64", feature(asm_experimental_arch))]

pub mod parse;

#[cfg(not(any(test, feature = "host")))]
mod mem;
#[cfg(not(any(test, feature = "host")))]
mod module;
#[cfg(not(any(test, feature = "host")))]
mod sys;
