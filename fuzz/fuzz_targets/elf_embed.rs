//! Fuzz target `elf_embed`: see `tests/robust_util/fuzz_checks.rs` for what it checks.
#![no_main]
#[path = "../../tests/robust_util/fuzz_checks.rs"]
#[allow(dead_code)]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::elf_embed(data));
