//! Putting a rewritten file in place without losing the original: the size limit checked before
//! any write, the in-place rewrite of a hard-linked file ordered so the file never gets shorter
//! and a full disk leaves it unchanged, the metadata a replacement must keep, and the check that
//! no other process has the file open for writing.
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};

use super::{overlay, Rewrite};
use rustix::fs::{FallocateFlags, Gid, Mode, Uid, XattrFlags};

/// A write past the soft `RLIMIT_FSIZE` (`ulimit -f`) raises SIGXFSZ, whose default action kills
/// ldnote (exit 153) in the middle of a step. A noted file that would not fit is refused before
/// the first byte is written, so the signal never comes (the linker's output was within it).
pub fn within_file_size_limit(len: u64) -> Result<(), String> {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Fsize);
    match limit.current {
        Some(max) if len > max => Err(format!(
            "the noted file ({len} bytes) would exceed the file size limit ({max} bytes, ulimit -f)"
        )),
        _ => Ok(()),
    }
}

/// Rewrite `file` (`old_len` bytes long) in place into the file `new` describes, for a file with
/// several hard links whose names must all see the note (as patchelf does). Never shortens the
/// file before the new bytes are safe:
/// 0. the span of changed bytes inside the old length is built in memory first (from the file
///    and the edits), so that a lack of memory refuses before anything is written;
/// 1. the space of the grown file is allocated (`fallocate`): a full disk, a quota or `EFBIG`
///    fails here, and the file is cut back to exactly its old bytes;
/// 2. the bytes beyond the old end are written (the old file is still whole: everything it
///    references lies before its old end);
/// 3. one write of that span. A `kill -9` during this one write can leave a mixture (the kernel
///    copies page by page); nothing can make an in-place edit of an inode atomic, which is why
///    `link` mode always replaces by rename instead. Holding the span (from the file header to
///    the section headers: about the file's size) is the price of that single write; the rename
///    path holds only the edits.
pub fn rewrite_in_place(file: &File, old_len: u64, new: &Rewrite) -> io::Result<()> {
    let new_len = new.len();
    // Bytes of the tail that fall inside the old length (the tail starts inside the old file).
    let inside = usize::try_from(old_len.saturating_sub(new.keep))
        .unwrap_or(usize::MAX)
        .min(new.tail.len());
    let mut lo = u64::MAX;
    let mut hi = 0;
    for (at, len) in new
        .edits
        .iter()
        .map(|w| (w.offset, w.bytes.len()))
        .chain([(new.keep, inside)])
        .filter(|&(_, len)| len > 0)
    {
        lo = lo.min(at);
        hi = hi.max(at + len as u64);
    }
    let mut span = Vec::new();
    if lo < hi {
        let size =
            usize::try_from(hi - lo).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        span.try_reserve_exact(size)
            .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
        span.resize(size, 0);
        file.read_exact_at(&mut span, lo)?;
        for w in &new.edits {
            overlay(&mut span, lo, w.offset, &w.bytes);
        }
        overlay(&mut span, lo, new.keep, &new.tail[..inside]);
    }
    if new_len > old_len {
        match rustix::fs::fallocate(file, FallocateFlags::empty(), old_len, new_len - old_len) {
            Ok(()) => {}
            // Filesystems without fallocate: the tail write below grows the file instead.
            Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {}
            Err(e) => {
                let _ = file.set_len(old_len);
                return Err(e.into());
            }
        }
        let beyond = new.tail.get(inside..).unwrap_or_default();
        if let Err(e) = file.write_all_at(beyond, new.keep + inside as u64) {
            let _ = file.set_len(old_len);
            return Err(e);
        }
    }
    if !span.is_empty() {
        file.write_all_at(&span, lo)?;
    }
    if new_len < old_len {
        file.set_len(new_len)?;
    }
    Ok(())
}

/// Give the replacement `to` what the file it replaces had, as patchelf's in-place rewrite
/// keeps them: owner and group (where the caller may set them), extended attributes (ACLs are
/// `system.posix_acl_*` attributes), and the permission bits, last so that an ACL cannot change
/// them. `security.capability` is not copied: the kernel drops file capabilities on every write
/// to a file, so a patched file never keeps them. Set-user-ID and set-group-ID bits are dropped
/// when the owner or the group could not be kept (a non-root user replacing a root-owned
/// set-user-ID file would otherwise own a set-user-ID file); the message says so. Returns the
/// warnings; an error when an extended attribute cannot be kept (the original then stays).
pub fn keep_metadata(meta: &Metadata, from: &File, to: &File) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    let (uid, gid) = (meta.uid(), meta.gid());
    let owner = rustix::fs::fchown(to, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
    if owner.is_err() {
        // An ordinary user may still keep a group they belong to.
        let _ = rustix::fs::fchown(to, None, Some(Gid::from_raw(gid)));
    }
    let now = to.metadata().map_err(|e| e.to_string())?;
    let mut mode = meta.mode() & 0o7777;
    if (now.uid() != uid || now.gid() != gid) && mode & 0o6000 != 0 {
        mode &= !0o6000;
        warnings.push(format!(
            "owner {uid}:{gid} cannot be kept (the noted file belongs to {}:{}): its \
             set-user-ID/set-group-ID bits are dropped",
            now.uid(),
            now.gid()
        ));
    }
    copy_xattrs(from, to)?;
    rustix::fs::fchmod(to, Mode::from_raw_mode(mode)).map_err(|e| e.to_string())?;
    Ok(warnings)
}

fn copy_xattrs(from: &File, to: &File) -> Result<(), String> {
    let size = match rustix::fs::flistxattr_query(from) {
        Ok(0) => return Ok(()),
        Ok(n) => n,
        // No extended attributes on this filesystem: nothing to keep.
        Err(e) if e == rustix::io::Errno::OPNOTSUPP => return Ok(()),
        Err(e) => return Err(format!("cannot list extended attributes: {e}")),
    };
    let mut names = vec![0u8; size];
    let n = rustix::fs::flistxattr(from, &mut names[..])
        .map_err(|e| format!("cannot list extended attributes: {e}"))?;
    for name in names[..n.min(size)]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
    {
        if name == b"security.capability" {
            continue;
        }
        let shown = String::from_utf8_lossy(name);
        let name = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
        let len = rustix::fs::fgetxattr_query(from, name)
            .map_err(|e| format!("cannot read extended attribute `{shown}`: {e}"))?;
        let mut value = vec![0u8; len];
        let got = rustix::fs::fgetxattr(from, name, &mut value[..])
            .map_err(|e| format!("cannot read extended attribute `{shown}`: {e}"))?;
        let kept = rustix::fs::fsetxattr(to, name, &value[..got.min(len)], XattrFlags::empty());
        match kept {
            Ok(()) => {}
            // Security labels are the policy's to set on a new file (SELinux, Smack).
            Err(_) if shown.starts_with("security.") => {}
            Err(e) => return Err(format!("cannot keep extended attribute `{shown}`: {e}")),
        }
    }
    Ok(())
}

/// Whether another process has `file` open for writing (a linker still writing it, or any
/// writer): then its bytes are not final, and a replacement renamed over the name would leave
/// that process's last writes in the orphaned inode. Asked of the kernel with a read lease
/// (`F_SETLEASE F_RDLCK` is refused with `EAGAIN` exactly when the file is open for writing
/// anywhere), released at once. `None` when the kernel cannot say (only the file's owner or
/// CAP_LEASE may take a lease; some filesystems have none). `file` must be open read-only.
pub fn open_for_writing_elsewhere(file: &File) -> Option<bool> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let set = |arg: libc::c_int| {
        // SAFETY: fcntl(F_SETLEASE) takes an integer argument and touches no memory of ours;
        // `fd` is a valid descriptor borrowed from `file` for the duration of the call. rustix
        // has no lease API, and no other call tells whether a file is open for writing.
        #[allow(unsafe_code)]
        let r = unsafe { libc::fcntl(fd, libc::F_SETLEASE, arg) };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    };
    match set(libc::F_RDLCK) {
        Ok(()) => {
            let _ = set(libc::F_UNLCK);
            Some(false)
        }
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Some(true),
        Err(_) => None,
    }
}
