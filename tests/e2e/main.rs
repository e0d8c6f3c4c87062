//! End-to-end tests through real compilers, linkers, patchelf and loaders, in one test binary
//! (one link instead of one per file). Each module was a test file of its own; run one with
//! `cargo test --release --test e2e MODULE::` (e.g. `patchelf::`, `cross::cross_s390x`).

#[path = "../common/mod.rs"]
mod common;

mod argv_table;
mod cli;
mod cross;
mod link;
mod patchelf;
mod show_snapshot;
mod target_triples;
