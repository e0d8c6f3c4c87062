//! The real filesystem under a sysroot, resolved by the kernel where it can.
use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, OFlags};

use super::{Fs, Kind, Listing, ListingBuilder, ResolveError, Sysroot};

/// The real filesystem under a sysroot directory.
///
/// For a sysroot other than `/`, paths are resolved by the kernel inside the sysroot when it can:
/// `openat2(root, path, RESOLVE_IN_ROOT)` (Linux 5.6+) re-roots absolute link targets and clamps
/// `..` at the root, exactly the rules [`Sysroot`] implements by walking components, in one call
/// per open and with no window between the walk and the open. Then no ancestor directory has to be
/// listed to learn whether it is a link: a 40-directory run path costs 40 directory opens and one
/// open per candidate. Where `openat2` is refused (an older kernel, a seccomp filter), the paths
/// are joined under the root and [`Sysroot`] walks them.
#[derive(Clone, Debug)]
pub struct RealFs {
    root: Vec<u8>,
    in_root: Option<std::sync::Arc<KernelRoot>>,
}

/// The sysroot opened as a directory, for `openat2(RESOLVE_IN_ROOT)`.
#[derive(Debug)]
struct KernelRoot {
    fd: std::os::fd::OwnedFd,
    /// Set when the kernel refused `openat2` (before Linux 5.6, or a seccomp filter): from
    /// then on paths are walked in user space.
    refused: std::sync::atomic::AtomicBool,
}

impl RealFs {
    /// A filesystem rooted at `root` (`/` for native).
    pub fn new(root: &OsStr) -> Self {
        let mut r = root.as_bytes().to_vec();
        while r.len() > 1 && r.ends_with(b"/") {
            r.pop();
        }
        if r.is_empty() {
            r.push(b'/');
        }
        let in_root = if r == b"/" {
            None
        } else {
            kernel_root(&r).map(std::sync::Arc::new)
        };
        RealFs { root: r, in_root }
    }

    /// The same root, resolved by walking components in user space even where the kernel could
    /// do it (to test that both give the same answers).
    pub fn walking(mut self) -> Self {
        self.in_root = None;
        self
    }

    /// `path` on the host: itself for the root `/` (no copy: every open of a wrapped link
    /// passes here), else joined under the root.
    fn host<'p>(&self, path: &'p [u8]) -> Cow<'p, Path> {
        if self.root == b"/" {
            return Cow::Borrowed(Path::new(OsStr::from_bytes(path)));
        }
        let mut p = self.root.clone();
        if !path.starts_with(b"/") {
            p.push(b'/');
        }
        p.extend_from_slice(path);
        Cow::Owned(PathBuf::from(OsString::from_vec(p)))
    }

    /// Open `path` (a target path) with `flags`: inside the root by the kernel, or on the host
    /// (for `/`, or after walking the path inside the root where the kernel cannot).
    fn open(&self, path: &[u8], flags: OFlags) -> io::Result<std::os::fd::OwnedFd> {
        let flags = flags | OFlags::CLOEXEC;
        let host: Cow<'_, Path> = match self.kernel() {
            Some(root) => match open_in_root(&root.fd, path, flags) {
                Err(e) if refused(&e) => {
                    root.refused
                        .store(true, std::sync::atomic::Ordering::Relaxed);
                    Cow::Owned(self.walked(path)?)
                }
                r => return r,
            },
            None if self.in_root.is_some() => Cow::Owned(self.walked(path)?),
            None => self.host(path),
        };
        Ok(rustix::fs::open(
            host.as_ref(),
            flags,
            rustix::fs::Mode::empty(),
        )?)
    }

    /// `lstat` of `path` joined under the root (the host resolves any link on the way).
    fn host_kind(&self, path: &[u8]) -> io::Result<Kind> {
        let h = self.host(path);
        let ft = std::fs::symlink_metadata(&h)?.file_type();
        Ok(if ft.is_symlink() {
            Kind::Symlink(std::fs::read_link(&h)?.as_os_str().as_bytes().to_vec())
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File
        } else {
            Kind::Other
        })
    }

    /// The kernel root, unless the kernel refused `openat2`.
    fn kernel(&self) -> Option<&KernelRoot> {
        self.in_root
            .as_deref()
            .filter(|r| !r.refused.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// `path` resolved inside the root in user space, as a host path.
    fn walked(&self, path: &[u8]) -> io::Result<PathBuf> {
        let walking = self.clone().walking();
        let real = Sysroot::new(walking).resolve(path).map_err(|e| match e {
            ResolveError::Io(_, io) => io,
            other => io::Error::other(other.to_string()),
        })?;
        Ok(self.host(&real).into_owned())
    }
}

/// The root directory for `openat2`. Whether the kernel allows `openat2` is learnt from the
/// first real call (no probe: every call counts on the wrapper's hot path).
fn kernel_root(root: &[u8]) -> Option<KernelRoot> {
    let fd = rustix::fs::open(
        OsStr::from_bytes(root),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    Some(KernelRoot {
        fd,
        refused: std::sync::atomic::AtomicBool::new(false),
    })
}

/// `openat2` itself is unavailable (not: the path failed).
fn refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS) | Some(libc::EPERM) | Some(libc::EOPNOTSUPP)
    )
}

fn open_in_root(
    root: &std::os::fd::OwnedFd,
    path: &[u8],
    flags: OFlags,
) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::ResolveFlags;
    // With RESOLVE_IN_ROOT an absolute path is taken relative to `root`. EAGAIN: a concurrent
    // rename raced a `..` lookup; the kernel asks the caller to retry.
    let mut tries = 0;
    loop {
        match rustix::fs::openat2(
            root,
            OsStr::from_bytes(path),
            flags,
            rustix::fs::Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(rustix::io::Errno::AGAIN) if tries < 8 => tries += 1,
            other => return Ok(other?),
        }
    }
}

/// Up to `n` bytes from the start of `f`.
fn read_head(f: std::fs::File, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n.min(1 << 16));
    f.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

fn kind_of(t: FileType) -> Kind {
    match t {
        FileType::Symlink => Kind::Symlink(Vec::new()),
        FileType::Directory => Kind::Dir,
        FileType::RegularFile => Kind::File,
        _ => Kind::Other,
    }
}

impl Fs for RealFs {
    fn kind(&self, path: &[u8]) -> io::Result<Kind> {
        let root = match self.kernel() {
            Some(root) => &root.fd,
            None if self.in_root.is_some() => return self.clone().walking().kind(path),
            None => return self.host_kind(path),
        };
        // lstat inside the root: open the parent in the root, then look at the last name
        // without following it. `.`/`..`/empty last names are directories reached in the root.
        let cut = path.iter().rposition(|b| *b == b'/');
        let (parent, name) = match cut {
            Some(c) => (&path[..c.max(1)], &path[c + 1..]),
            None => (&b"/"[..], path),
        };
        let got = if matches!(name, b"" | b"." | b"..") {
            open_in_root(root, path, OFlags::PATH | OFlags::CLOEXEC)
                .and_then(|fd| Ok(rustix::fs::fstat(&fd)?))
                .map(|st| kind_of(FileType::from_raw_mode(st.st_mode)))
        } else {
            open_in_root(
                root,
                parent,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            )
            .and_then(|dir| {
                let name = OsStr::from_bytes(name);
                let st = rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)?;
                Ok(match kind_of(FileType::from_raw_mode(st.st_mode)) {
                    Kind::Symlink(_) => {
                        Kind::Symlink(rustix::fs::readlinkat(&dir, name, Vec::new())?.into_bytes())
                    }
                    k => k,
                })
            })
        };
        match got {
            Err(e) if refused(&e) => {
                if let Some(r) = &self.in_root {
                    r.refused.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                self.clone().walking().kind(path)
            }
            other => other,
        }
    }

    fn list(&self, path: &[u8]) -> io::Result<Listing> {
        let fd = self.open(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        // One `getdents64` buffer on the stack, never zeroed, and no allocation per entry: a
        // run path of one-library store directories lists dozens of them per link.
        let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 16 * 1024];
        let mut dir = rustix::fs::RawDir::new(&fd, &mut buf);
        let mut out = ListingBuilder::default();
        while let Some(ent) = dir.next() {
            let ent = ent?;
            let name = ent.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            // d_type: no syscall on ext4/tmpfs/xfs/btrfs; DT_UNKNOWN leaves it to lstat.
            let kind = match ent.file_type() {
                FileType::Unknown => None,
                t => Some(kind_of(t)),
            };
            out.push(name, kind);
        }
        Ok(out.finish())
    }

    fn head(&self, path: &[u8], n: usize) -> io::Result<Vec<u8>> {
        // O_NONBLOCK: a FIFO named like a library must not hang the link (the loader would
        // block on it; we report it instead). It changes nothing for regular files.
        let f = std::fs::File::from(self.open(path, OFlags::RDONLY | OFlags::NONBLOCK)?);
        let ft = f.metadata()?.file_type();
        if ft.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        if !ft.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        read_head(f, n)
    }

    fn head_of_file(&self, path: &[u8], buf: &mut [u8]) -> io::Result<usize> {
        // The listing said "regular file" (d_type): no fstat. Should the name have been replaced
        // since by a directory, the read fails with EISDIR; by a FIFO or device, O_NONBLOCK
        // keeps the read from blocking and the bytes fail the ELF check.
        let fd = self.open(path, OFlags::RDONLY | OFlags::NONBLOCK)?;
        let mut got = 0;
        while got < buf.len() {
            match rustix::io::read(&fd, &mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(got)
    }

    fn native_resolution(&self) -> bool {
        self.root == b"/" || self.in_root.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's RESOLVE_IN_ROOT and the user-space walk agree on a real sysroot, and
    /// neither escapes it.
    #[test]
    fn kernel_and_walked_resolution_agree() {
        use crate::resolve::{Policy, Resolver};
        use std::os::unix::fs::symlink;
        let t = tempfile::tempdir().expect("tempdir");
        let r = t.path();
        let mk = |p: &str| std::fs::create_dir_all(r.join(p)).expect("mkdir");
        mk("usr/lib/real");
        mk("etc");
        std::fs::write(r.join("usr/lib/real/libx.so.1"), b"x").expect("write");
        std::fs::write(r.join("etc/f"), b"f").expect("write");
        symlink("/usr/lib/real/libx.so.1", r.join("usr/lib/libx.so.1")).expect("ln");
        symlink("usr/lib", r.join("lib")).expect("ln");
        symlink("../../../../etc", r.join("usr/lib/esc")).expect("ln");
        symlink("/etc/os-release", r.join("h")).expect("ln");
        symlink("/b", r.join("a")).expect("ln");
        symlink("/a", r.join("b")).expect("ln");
        let kernel = RealFs::new(r.as_os_str());
        assert!(
            kernel.in_root.is_some(),
            "openat2(RESOLVE_IN_ROOT) unavailable here"
        );
        let walked = kernel.clone().walking();
        // As on a kernel that refuses openat2: the first refusal switches to the walk.
        let refusing = RealFs::new(r.as_os_str());
        if let Some(k) = &refusing.in_root {
            k.refused.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let read = |fs: RealFs, p: &str| {
            Resolver::new(fs, Policy::default())
                .read_head(p.as_bytes(), 8)
                .map_err(|e| e.kind())
        };
        for (path, want) in [
            ("/lib/libx.so.1", Ok(b"x".to_vec())),
            ("/usr/lib/esc/f", Ok(b"f".to_vec())),
            ("/lib/../../../etc/f", Ok(b"f".to_vec())),
            ("/h", Err(io::ErrorKind::NotFound)),
        ] {
            assert_eq!(read(kernel.clone(), path), want, "kernel: {path}");
            assert_eq!(read(walked.clone(), path), want, "walked: {path}");
            assert_eq!(read(refusing.clone(), path), want, "refused: {path}");
        }
        assert!(read(kernel.clone(), "/a/x").is_err());
        assert!(read(walked.clone(), "/a/x").is_err());
        for fs in [kernel, walked, refusing] {
            let s = Sysroot::new(fs.clone());
            let real = s.resolve(b"/lib").expect("resolve");
            let listing = fs.list(&real).expect("list");
            let names: Vec<Vec<u8>> = listing.names().map(<[u8]>::to_vec).collect();
            assert_eq!(
                names,
                vec![b"esc".to_vec(), b"libx.so.1".to_vec(), b"real".to_vec()]
            );
            assert_eq!(
                fs.kind(b"/usr/lib/esc").expect("kind"),
                Kind::Symlink(b"../../../../etc".to_vec())
            );
            assert_eq!(fs.kind(b"/usr/lib/real").expect("kind"), Kind::Dir);
        }
    }
}
