//! `ldnote patch FILE...`: note already-linked files (the post-link path; patchelf-compatible).
use std::path::PathBuf;

use super::link::fail;
use super::note::Noter;
use super::options::NoteOpts;

/// `ldnote patch FILE...`.
pub fn patch(opts: NoteOpts, files: &[PathBuf]) -> i32 {
    let opts = opts.with_env();
    let sysroot = opts.file_sysroot();
    let mut noter = match Noter::new(opts.clone(), &sysroot) {
        Ok(n) => n,
        Err(e) => return fail(&e),
    };
    noter.keep_links = true;
    let mut failed = 0;
    for f in files {
        if let Err(e) = noter.note_file(f) {
            errln!("ldnote: error: {e}");
            failed += 1;
        }
    }
    i32::from(failed > 0)
}
