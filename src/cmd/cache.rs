//! Where the reservation object lives: a content-addressed file in a per-user cache directory,
//! so that it still exists after the link and has the same path in every run. The linker records
//! its inputs in `-Map` files and `--dependency-file` lists (make and CMake >= 3.27 read the
//! latter): a path that changes per link, or names a deleted file, makes every build relink.
//! There is nothing to clean up, even after a SIGKILL.
use std::ffi::OsString;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The directories tried, in order: `$XDG_CACHE_HOME/ldnote`, `$HOME/.cache/ldnote` (the XDG
/// default), then `$TMPDIR/ldnote-UID` (or `/tmp`) for builds whose home is not writable (the
/// Nix sandbox's `/homeless-shelter`).
/// Each is made only when the one before it is not usable (the first almost always is).
fn candidates() -> impl Iterator<Item = PathBuf> {
    let abs = |v: Option<OsString>| v.filter(|p| Path::new(p).is_absolute()).map(PathBuf::from);
    let xdg = move || abs(std::env::var_os("XDG_CACHE_HOME")).map(|x| x.join("ldnote"));
    let home = move || abs(std::env::var_os("HOME")).map(|h| h.join(".cache").join("ldnote"));
    let tmp = move || {
        let tmp = abs(std::env::var_os("TMPDIR")).unwrap_or_else(|| PathBuf::from("/tmp"));
        Some(tmp.join(format!("ldnote-{}", rustix::process::geteuid().as_raw())))
    };
    std::iter::once_with(xdg)
        .chain(std::iter::once_with(home))
        .chain(std::iter::once_with(tmp))
        .flatten()
}

/// A directory only this user can write: anyone else could swap the object between the check
/// of its bytes and the linker reading it, and put code into the link. Checked first (one
/// `lstat` on every link after the first), created when missing.
fn private_dir(dir: &Path) -> bool {
    let ok = |dir: &Path| {
        std::fs::symlink_metadata(dir).is_ok_and(|m| {
            m.is_dir()
                && m.uid() == rustix::process::geteuid().as_raw()
                && m.permissions().mode() & 0o022 == 0
        })
    };
    if ok(dir) {
        return true;
    }
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    ok(dir)
}

/// The path of a file holding exactly `bytes`, written atomically (temporary file and rename)
/// when it is missing or differs; shared by concurrent links. `Err` names what failed in every
/// directory tried (the caller then links without a reservation). The name is a hash of the
/// bytes ([`ldnote::fnv::hash_words`]): a collision is harmless, as the bytes are compared before
/// a cached file is used and rewritten when they differ.
pub fn object_path(bytes: &[u8]) -> Result<PathBuf, String> {
    let name = format!("reserve-{:016x}.o", ldnote::fnv::hash_words(bytes));
    let mut why = Vec::new();
    for dir in candidates() {
        let dir = dir.join("reserve");
        if !private_dir(&dir) {
            why.push(format!(
                "{}: not a private writable directory",
                dir.display()
            ));
            continue;
        }
        let path = dir.join(&name);
        if same_bytes(&path, bytes) {
            return Ok(path);
        }
        let written = tempfile::Builder::new()
            .prefix(".reserve-")
            .tempfile_in(&dir)
            .and_then(|mut t| {
                t.write_all(bytes)?;
                t.persist(&path).map_err(|e| e.error)?;
                Ok(())
            });
        match written {
            Ok(()) => return Ok(path),
            Err(e) => why.push(format!("{}: {e}", dir.display())),
        }
    }
    Err(why.join("; "))
}

fn same_bytes(path: &Path, bytes: &[u8]) -> bool {
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut have = Vec::with_capacity(bytes.len());
    f.take(bytes.len() as u64 + 1)
        .read_to_end(&mut have)
        .is_ok()
        && have == bytes
}
