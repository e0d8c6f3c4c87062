//! Bad inputs, faults and concurrency (TESTING.md), in one test binary: each module is one part
//! of that page; run one with `cargo test --release --test robust MODULE::`.

#[path = "../common/mod.rs"]
mod common;
#[path = "../robust_util/mod.rs"]
mod robust_util;

mod adversarial;
mod bad_input;
mod faults;
mod fuzz_regressions;
mod hostile;
mod ld_abbreviations;
mod mutants;
mod props;
mod replace_faults;
