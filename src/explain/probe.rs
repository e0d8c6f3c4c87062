//! The system calls the loader makes while searching, as seen from the target: `openat` of a
//! candidate (following symlinks) and `stat` of a directory, each with the errno the kernel
//! would return. The simulator needs errno values, not just success, because glibc's
//! `open_path` treats ENOENT/EACCES ("go on") differently from anything else ("abort the
//! list"), and because a wrong-class file is *opened* successfully before it is rejected.

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::fs::{walk, Fs, Kind, WalkError};

/// errno values the search distinguishes.
pub const ENOENT: i32 = 2;
/// Not a directory: a path component is a file.
pub const ENOTDIR: i32 = 20;
/// Permission denied.
pub const EACCES: i32 = 13;
/// Too many symlinks.
pub const ELOOP: i32 = 40;
/// Is a directory (what `read(2)` says for an opened directory).
pub const EISDIR: i32 = 21;

/// What a successful `open(O_RDONLY)` reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened {
    /// The object opened is a directory (open succeeds, the loader's `read` then fails).
    pub is_dir: bool,
    /// Identity of the file (stands in for st_dev/st_ino): its symlink-free path.
    pub id: Vec<u8>,
}

/// Target-view file access with kernel semantics.
pub trait Probe {
    /// `openat(AT_FDCWD, path, O_RDONLY)`; relative paths are taken against the process CWD.
    fn open(&self, path: &[u8]) -> Result<Opened, i32>;
    /// `stat(path)` (following symlinks): whether it is a directory.
    fn stat(&self, path: &[u8]) -> Result<bool, i32>;
    /// Up to `n` bytes of the file `path` (already known to open).
    fn read(&self, path: &[u8], n: usize) -> io::Result<Vec<u8>>;
}

fn errno_of(e: &io::Error) -> i32 {
    match e.raw_os_error() {
        Some(c) => c,
        None => match e.kind() {
            io::ErrorKind::NotFound => ENOENT,
            io::ErrorKind::PermissionDenied => EACCES,
            _ => ENOENT,
        },
    }
}

/// A [`Probe`] over an [`Fs`] (a sysroot, or a fake one in tests): paths are resolved
/// component by component with `lstat`, symlinks followed inside the sysroot (absolute targets
/// restart at its root, `..` stops at the root), as the target kernel would see its image.
pub struct FsProbe<F: Fs> {
    fs: F,
    cwd: Vec<u8>,
}

impl<F: Fs> FsProbe<F> {
    /// A probe over `fs` for a process whose current directory is `cwd` (target view).
    pub fn new(fs: F, cwd: &[u8]) -> Self {
        FsProbe {
            fs,
            cwd: cwd.to_vec(),
        }
    }

    /// Resolve `path` to a symlink-free path and the kind of its last component, with the
    /// kernel's errors ([`crate::fs::walk`]); relative paths start at the process's directory.
    fn walk(&self, path: &[u8]) -> Result<(Vec<u8>, Kind), i32> {
        if path.is_empty() {
            return Err(ENOENT);
        }
        let mut full = Vec::new();
        if path[0] != b'/' {
            full.extend_from_slice(&self.cwd);
            full.push(b'/');
        }
        full.extend_from_slice(path);
        walk(&full, &|p| self.fs.kind(p), true).map_err(|e| match e {
            WalkError::Loop => ELOOP,
            WalkError::NotDir => ENOTDIR,
            WalkError::Io(e) => errno_of(&e),
        })
    }
}

impl<F: Fs> Probe for FsProbe<F> {
    fn open(&self, path: &[u8]) -> Result<Opened, i32> {
        let (id, kind) = self.walk(path)?;
        Ok(Opened {
            is_dir: kind == Kind::Dir,
            id,
        })
    }

    fn stat(&self, path: &[u8]) -> Result<bool, i32> {
        self.walk(path).map(|(_, k)| k == Kind::Dir)
    }

    fn read(&self, path: &[u8], n: usize) -> io::Result<Vec<u8>> {
        let (id, _) = self.walk(path).map_err(io::Error::from_raw_os_error)?;
        // `Fs::head` may reserve `n` bytes up front: grow the request instead of asking for
        // "everything" at once.
        let mut want = n.min(1 << 16);
        loop {
            let got = self.fs.head(&id, want)?;
            if got.len() < want || want == n {
                return Ok(got);
            }
            want = want.saturating_mul(16).min(n);
        }
    }
}

/// The view of a program run as `qemu-<arch> -L ROOT`: qemu-user rewrites an *absolute* path
/// to `ROOT/path` when that exists (`access(F_OK)`, util/path.c) and otherwise passes the host
/// path through; relative paths are never rewritten. The host kernel then resolves the result
/// (symlinks included) against the host root. Without a root this is the plain host view.
/// A relative path is the process's: resolved against its current directory `cwd` (the
/// simulated process's, not ldnote's own), as the kernel does for the loader's `openat`.
pub struct HostProbe {
    root: Option<Vec<u8>>,
    cwd: Vec<u8>,
}

impl HostProbe {
    /// The host view, or qemu-user's overlay of `root` over the host, for a process whose
    /// current directory is `cwd`.
    pub fn new(root: Option<&[u8]>, cwd: &[u8]) -> Self {
        HostProbe {
            root: root
                .filter(|r| *r != b"/")
                .map(|r| r.strip_suffix(b"/").unwrap_or(r).to_vec()),
            cwd: cwd.to_vec(),
        }
    }

    fn map(&self, path: &[u8]) -> PathBuf {
        let os = |b: &[u8]| PathBuf::from(std::ffi::OsStr::from_bytes(b));
        if path.first() != Some(&b'/') {
            let mut p = self.cwd.clone();
            p.push(b'/');
            p.extend_from_slice(path);
            return os(&p);
        }
        if let (Some(root), Some(b'/')) = (&self.root, path.first()) {
            let mut p = root.clone();
            p.extend_from_slice(path);
            let cand = os(&p);
            if cand.exists() {
                return cand;
            }
        }
        os(path)
    }
}

impl Probe for HostProbe {
    fn open(&self, path: &[u8]) -> Result<Opened, i32> {
        if path.is_empty() {
            return Err(ENOENT);
        }
        let p = self.map(path);
        let md = std::fs::metadata(&p).map_err(|e| errno_of(&e))?;
        // Opening needs read permission; root ignores it, as the loader run as root would.
        // Non-blocking: a FIFO named like a library has no writer, and the simulation must not
        // wait for one (the permission check is the same).
        nonblocking(&p).map_err(|e| errno_of(&e))?;
        let id = std::fs::canonicalize(&p)
            .map(|c| c.as_os_str().as_bytes().to_vec())
            .unwrap_or_else(|_| p.as_os_str().as_bytes().to_vec());
        Ok(Opened {
            is_dir: md.is_dir(),
            id,
        })
    }

    fn stat(&self, path: &[u8]) -> Result<bool, i32> {
        if path.is_empty() {
            return Err(ENOENT);
        }
        std::fs::metadata(self.map(path))
            .map(|m| m.is_dir())
            .map_err(|e| errno_of(&e))
    }

    fn read(&self, path: &[u8], n: usize) -> io::Result<Vec<u8>> {
        use std::io::Read;
        let f = nonblocking(&self.map(path))?;
        let mut buf = Vec::new();
        f.take(n as u64).read_to_end(&mut buf)?;
        Ok(buf)
    }
}

fn nonblocking(p: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(p)
}
