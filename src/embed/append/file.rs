//! The append fallback on a file: the noted copy written beside the output and renamed over it
//! (never a torn output), or, for a hard-linked file in `patch` mode, rewritten in place as
//! patchelf does. Everything is checked before the first byte is written.
use std::ffi::OsStr;
use std::fs::File;
use std::path::Path;

use object::ReadCache;

use super::stream::View;
use crate::elf::ElfInfo;

/// Why the fallback did not complete; the message names the file and the cause.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Refused before anything was written (malformed input, no room, too large): the file is
    /// byte for byte as it was.
    #[error("{0}")]
    Refused(String),
    /// Failed while writing or replacing.
    #[error("{0}")]
    Io(String),
}

/// The fallback: rewrite the file with the note in a new segment, via a temporary file in the
/// same directory and a rename (never a torn output). The bytes come from `file`, the descriptor
/// the output was read through, and the rename happens only if the name still refers to that
/// file. A symlink is followed (the file it names is noted, the link stays); owner, group,
/// extended attributes and mode are kept (`replace::keep_metadata`). With `keep_links` (patch
/// mode) a file with several hard links is rewritten in place instead, so that every name sees
/// the noted file, as with patchelf (`replace::rewrite_in_place`: never shortened, not atomic).
/// Everything is checked before the first byte is written: a refusal leaves the file as it was.
/// Returns the warnings to show (metadata that could not be kept).
pub fn append_file(
    path: &Path,
    file: &File,
    info: &ElfInfo,
    note: &[u8],
    keep_links: bool,
) -> Result<Vec<String>, AppendError> {
    use std::os::unix::fs::MetadataExt;
    let show = path.display();
    let refuse = AppendError::Refused;
    let io = AppendError::Io;
    let real = std::fs::canonicalize(path).map_err(|e| refuse(format!("`{show}`: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| refuse(format!("`{show}`: {e}")))?;
    let len = meta.len();
    // An unusable reservation or a stale note: made inert and its section name hidden in the
    // bytes the fallback reads (only those writes that lie inside the file).
    let mut base = crate::embed::neutralize(info);
    base.retain(|w| {
        w.offset
            .checked_add(w.bytes.len() as u64)
            .is_some_and(|e| e <= len)
    });
    // Only the headers and the tables the plan touches are read, through a cache that lives
    // as long as the planning: memory does not grow with the file.
    let mut new = {
        let cache = ReadCache::new(View::patched(file, len, &base));
        super::plan_append(&cache, note)
    }
    .map_err(|e| refuse(format!("`{show}`: cannot add the note: {e}")))?;
    new.lay_under(base);
    // The loader must find the note in the planned file: checked before the first byte is
    // written (a refusal leaves nothing behind), and again on the copy as written.
    super::verify(&ReadCache::new(View::rewritten(file, &new)), note)
        .map_err(|e| refuse(format!("`{show}`: cannot add the note: {e}")))?;
    super::replace::within_file_size_limit(new.len())
        .map_err(|e| refuse(format!("`{show}`: {e}; left unchanged")))?;
    let same_file = |m: &std::fs::Metadata| m.dev() == meta.dev() && m.ino() == meta.ino();
    let replaced = || {
        io(format!(
            "`{show}` was replaced by another process while it was being noted; left alone"
        ))
    };
    if keep_links && meta.nlink() > 1 {
        super::replace::rewrite_in_place(file, len, &new).map_err(|e| {
            refuse(format!(
                "`{show}`: cannot rewrite the file: {e}; left unchanged"
            ))
        })?;
        return Ok(Vec::new());
    }
    let dir = real.parent().unwrap_or(Path::new("/"));
    let name = real.file_name().unwrap_or_default();
    remove_stale_temps(dir, name);
    let tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(name, std::process::id()))
        .tempfile_in(dir)
        .map_err(|e| {
            refuse(format!(
                "`{show}`: cannot create a temporary file beside it: {e}"
            ))
        })?;
    super::stream::write_rewrite(file, tmp.as_file(), &new)
        .map_err(|e| refuse(format!("`{show}`: cannot write the noted copy: {e}")))?;
    // The copy as written, read back from the disk (a short or failed write shows here).
    super::verify(&ReadCache::new(tmp.as_file()), note)
        .map_err(|e| refuse(format!("`{show}`: cannot add the note: {e}")))?;
    let warnings = super::replace::keep_metadata(&meta, file, tmp.as_file())
        .map_err(|e| refuse(format!("`{show}`: {e}; left unchanged")))?;
    // Closed before the rename: a descriptor open for writing on the new file would make a
    // concurrent run take it for a linker still writing it.
    let tmp = tmp.into_temp_path();
    // The name must still be the file that was read (a small window remains between this check
    // and the rename; closing it needs renameat2(RENAME_EXCHANGE)).
    match std::fs::metadata(&real) {
        Ok(m) if same_file(&m) => {}
        _ => return Err(replaced()),
    }
    tmp.persist(&real)
        .map_err(|e| io(format!("`{show}`: cannot replace the file: {}", e.error)))?;
    Ok(warnings
        .into_iter()
        .map(|w| format!("`{show}`: {w}"))
        .collect())
}

/// Temporary files are `.NAME.ldnote-PID-XXXXXX` beside the output: hidden, never matching
/// `NAME` or a library glob, and attributable to the process that made it.
pub fn temp_prefix(name: &OsStr, pid: u32) -> std::ffi::OsString {
    let mut p = std::ffi::OsString::from(".");
    p.push(name);
    p.push(format!(".ldnote-{pid}-"));
    p
}

/// A `kill -9` between creating the temporary file and the rename leaves it behind: remove the
/// ones of `name` whose process is gone (checked through /proc; where there is no /proc nothing
/// is removed). Failures are ignored: this is housekeeping.
fn remove_stale_temps(dir: &Path, name: &OsStr) {
    use std::os::unix::ffi::OsStrExt;
    if !Path::new("/proc/self").exists() {
        return;
    }
    let mut head = std::ffi::OsString::from(".");
    head.push(name);
    head.push(".ldnote-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.as_bytes().strip_prefix(head.as_bytes()) else {
            continue;
        };
        let pid = rest.split(|b| *b == b'-').next().unwrap_or_default();
        let Some(pid) = std::str::from_utf8(pid)
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
