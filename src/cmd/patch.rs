//! `ldnote patch FILE...`: note already-linked files (the post-link path; patchelf-compatible).
use std::path::PathBuf;

use super::note::Noter;
use super::options::{NoteOpts, PatchArgs};
use super::show::is_elf;

/// `ldnote patch FILE...`: 0 when every file is noted (or skipped by `--skip-non-elf`), 1 when
/// one could not be noted, 2 when one is not an ELF file to note (missing, not a regular file,
/// not ELF) or an option is invalid: the scheme of every command (README, "Exit status").
pub fn patch(args: PatchArgs, files: &[PathBuf]) -> i32 {
    let skip_non_elf = args.skip_non_elf;
    let mut noter = match Noter::for_files(NoteOpts::from(args)) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let opts = noter.opts.clone();
    noter.keep_links = true;
    let mut code = 0;
    for f in files {
        match is_elf(f) {
            Ok(true) => {}
            // A missing file is still an error: only what exists and is not ELF is passed over.
            Ok(false) | Err(_) if skip_non_elf && f.symlink_metadata().is_ok() => {
                say!(opts, "{}: not an ELF file, skipped", f.display());
                continue;
            }
            Ok(false) => {
                errln!("ldnote: error: `{}`: not an ELF file", f.display());
                code = 2;
                continue;
            }
            Err(e) => {
                errln!("ldnote: error: {e}");
                code = 2;
                continue;
            }
        }
        if let Err(e) = noter.note_file(f) {
            errln!("ldnote: error: {e}");
            code = code.max(1);
        }
    }
    code
}
