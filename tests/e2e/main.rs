//! End-to-end tests through real compilers, linkers, patchelf and loaders, in one test binary
//! (one link instead of one per file). Each module is one former test file; run one with
//! `cargo test --release --test e2e MODULE::`.

#[path = "../common/mod.rs"]
mod common;
mod patchelf;
