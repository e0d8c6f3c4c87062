//! Every input that once made a fuzz target fail (`fuzz/regressions/<target>/`), replayed with
//! the same checks (`robust_util/fuzz_checks.rs`), plus the committed seed corpora: fixed bugs
//! stay fixed without cargo-fuzz.
use crate::robust_util::fuzz_checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in ["regressions", "corpus"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for e in entries {
            let p = e.expect("dir entry").path();
            let data = std::fs::read(&p).expect("read input");
            eprintln!("{target}: {}", p.display());
            check(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn elf_embed_regressions() {
    assert!(replay("elf_embed", fuzz_checks::elf_embed) > 0);
}

#[test]
fn note_decode_regressions() {
    assert!(replay("note_decode", fuzz_checks::note_decode) > 0);
}

#[test]
fn rsp_tokenize_regressions() {
    assert!(replay("rsp_tokenize", fuzz_checks::rsp_tokenize) > 0);
}
