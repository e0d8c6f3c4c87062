//! Fuzz target `audit_parse`: the rtld-audit module's reading of ELF headers, program headers,
//! dynamic sections and the resolution note (it runs inside every program that uses it); the
//! checks live in `audit/src/parse/check.rs`, replayed over the corpus by the audit crate's
//! host tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ldnote_audit::parse::check::check(data);
});
