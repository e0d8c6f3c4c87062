//! All filesystem access of resolution goes through [`Fs`], so a fake sysroot can test it.
//!
//! Paths handed to an [`Fs`] are *target* paths (absolute, as they appear in a run path); the
//! implementation maps them under its sysroot. [`Sysroot`] resolves symlinks *inside* the sysroot
//! (an absolute link target is re-rooted, `..` never climbs above the root, loops are reported),
//! which is what the target sees at run time when the sysroot is its image.

use std::borrow::Cow;
use std::cell::RefCell;
use std::io;
use std::rc::Rc;

mod fake;
mod real;
pub use fake::FakeFs;
pub use real::RealFs;

/// What a path names, without following a final symlink (`lstat`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link with its target.
    Symlink(Vec<u8>),
    /// Anything else (device, fifo, socket).
    Other,
}

/// Primitive, non-following operations on a (sysroot-relative) filesystem.
pub trait Fs {
    /// `lstat`: the kind of `path` without following a final symlink.
    fn kind(&self, path: &[u8]) -> io::Result<Kind>;
    /// The names in directory `path` (one `getdents` pass), each with its kind when cheap
    /// (`d_type`), `None` when unknown. `path` has no symlinks in it.
    fn list(&self, path: &[u8]) -> io::Result<Listing>;
    /// Up to `n` bytes from the start of file `path` (no symlinks in `path`).
    fn head(&self, path: &[u8], n: usize) -> io::Result<Vec<u8>>;
    /// [`Fs::head`] of a name its directory's listing reported as a regular file (`d_type`),
    /// into `buf` (as many bytes as fit; returns how many were read): an implementation may
    /// skip checking the kind again, and the caller's buffer may be on its stack (one
    /// candidate per library found, on every link).
    fn head_of_file(&self, path: &[u8], buf: &mut [u8]) -> io::Result<usize> {
        let head = self.head(path, buf.len())?;
        let n = head.len().min(buf.len());
        buf[..n].copy_from_slice(&head[..n]);
        Ok(n)
    }
    /// True when the implementation already resolves paths as the target would (sysroot `/`:
    /// the kernel's own resolution is the right one), so [`Sysroot`] need not walk components.
    fn native_resolution(&self) -> bool {
        false
    }
}
/// Why a path could not be resolved inside the sysroot.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// Too many symlinks (the kernel's limit is 40), most likely a loop.
    #[error("too many levels of symbolic links resolving `{0}` inside the sysroot (a loop?)")]
    Loop(String),
    /// A component is missing or unreadable.
    #[error("{1}: `{0}`")]
    Io(String, #[source] io::Error),
}

/// A directory's listing: each name with its kind from `d_type` (`None`: unknown), the names in
/// one buffer and the entries sorted by name. Two allocations whatever the directory's size (a
/// store's run path lists dozens of one-library directories on every link, where a map and a
/// string per name cost more than the lookups they serve), and a lookup is a binary search.
/// Made by a [`ListingBuilder`], so never unsorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listing {
    names: Vec<u8>,
    entries: Vec<ListEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct ListEntry {
    start: usize,
    end: usize,
    kind: Option<Kind>,
}

/// The names of one directory as it is read, in the order `getdents` gives them.
#[derive(Debug, Default)]
pub struct ListingBuilder(Listing);

impl ListingBuilder {
    /// Add a name (each once, as a directory holds it once).
    pub fn push(&mut self, name: &[u8], kind: Option<Kind>) {
        let l = &mut self.0;
        let start = l.names.len();
        l.names.extend_from_slice(name);
        l.entries.push(ListEntry {
            start,
            end: l.names.len(),
            kind,
        });
    }

    /// The listing, its entries sorted by name.
    pub fn finish(self) -> Listing {
        let mut l = self.0;
        if l.entries.len() > 1 {
            let names = &l.names;
            l.entries
                .sort_unstable_by(|a, b| names[a.start..a.end].cmp(&names[b.start..b.end]));
        }
        l
    }
}

impl Listing {
    fn name(&self, e: &ListEntry) -> &[u8] {
        &self.names[e.start..e.end]
    }

    /// The kind of `name` (`Some(None)`: present, kind unknown), `None` when absent.
    pub fn get(&self, name: &[u8]) -> Option<&Option<Kind>> {
        self.entries
            .binary_search_by(|e| self.name(e).cmp(name))
            .ok()
            .map(|i| &self.entries[i].kind)
    }

    /// Whether the directory holds `name`.
    pub fn contains(&self, name: &[u8]) -> bool {
        self.get(name).is_some()
    }

    /// The names, in bytewise order.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.entries.iter().map(|e| self.name(e))
    }

    /// How many names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the directory holds no name.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A listing or the error that listing gave (kept as kind and errno: `io::Error` is not `Clone`).
type CachedListing = Result<Rc<Listing>, (io::ErrorKind, Option<i32>)>;

/// Symlink-aware path resolution inside a sysroot, with caches of resolved directories and of
/// directory listings: each directory is read once (one `getdents` pass) and the kinds of its
/// entries answer later `lstat` questions, so resolution costs about one call per directory.
pub struct Sysroot<F: Fs> {
    fs: F,
    dirs: crate::fnv::Map<Vec<u8>, Option<Vec<u8>>>,
    lists: RefCell<crate::fnv::Map<Vec<u8>, CachedListing>>,
}

const MAX_LINKS: usize = 40;

impl<F: Fs> Sysroot<F> {
    /// Wrap a filesystem.
    pub fn new(fs: F) -> Self {
        Sysroot {
            fs,
            dirs: crate::fnv::Map::default(),
            lists: RefCell::new(crate::fnv::Map::default()),
        }
    }

    /// The underlying filesystem.
    pub fn fs(&self) -> &F {
        &self.fs
    }

    /// The listing of the symlink-free directory `dir`, read once. Under native resolution
    /// nothing here walks paths, so the listing is only the caller's (the resolver caches its
    /// own) and is not kept.
    pub fn list(&self, dir: &[u8]) -> io::Result<Rc<Listing>> {
        let read = || self.fs.list(dir).map(Rc::new);
        if self.fs.native_resolution() {
            return read();
        }
        if let Some(hit) = self.lists.borrow().get(dir) {
            return hit.clone().map_err(|(kind, raw)| match raw {
                Some(code) => io::Error::from_raw_os_error(code),
                None => io::Error::from(kind),
            });
        }
        let got = read();
        let cached = match &got {
            Ok(l) => Ok(l.clone()),
            Err(e) => Err((e.kind(), e.raw_os_error())),
        };
        self.lists.borrow_mut().insert(dir.to_vec(), cached);
        got
    }

    /// `lstat` of a symlink-free parent's entry, answered from the parent's listing when its
    /// `d_type` is known (a symlink still needs its target).
    fn kind(&self, path: &[u8]) -> io::Result<Kind> {
        let cut = path.iter().rposition(|b| *b == b'/').unwrap_or(0);
        let (parent, name) = (
            if cut == 0 { &b"/"[..] } else { &path[..cut] },
            &path[cut + 1..],
        );
        if let Ok(listing) = self.list(parent) {
            match listing.get(name) {
                None => return Err(io::Error::from(io::ErrorKind::NotFound)),
                Some(Some(k)) if !matches!(k, Kind::Symlink(_)) => return Ok(k.clone()),
                Some(_) => {}
            }
        }
        self.fs.kind(path)
    }

    /// Resolve `path` (absolute, target view) to a symlink-free path inside the sysroot,
    /// following every symlink including the last component. Absolute link targets restart at
    /// the sysroot's root; `..` at the root stays at the root (as the kernel's RESOLVE_IN_ROOT).
    pub fn resolve(&self, path: &[u8]) -> Result<Vec<u8>, ResolveError> {
        if self.fs.native_resolution() {
            return Ok(path.to_vec());
        }
        let show = || String::from_utf8_lossy(path).into_owned();
        match walk(path, &|p| self.kind(p), false) {
            Ok((resolved, _)) => Ok(resolved),
            Err(WalkError::Loop) => Err(ResolveError::Loop(show())),
            Err(WalkError::NotDir) => Err(ResolveError::Io(
                show(),
                io::Error::from_raw_os_error(libc::ENOTDIR),
            )),
            Err(WalkError::Io(e)) => Err(ResolveError::Io(show(), e)),
        }
    }

    /// Resolve a directory once per process, as the loader's existence cache does (native
    /// resolution: the directory itself, not copied).
    pub fn resolve_dir<'d>(&mut self, dir: &'d [u8]) -> Option<Cow<'d, [u8]>> {
        if self.fs.native_resolution() {
            return Some(Cow::Borrowed(dir));
        }
        if let Some(hit) = self.dirs.get(dir) {
            return hit.clone().map(Cow::Owned);
        }
        let r = self.resolve(dir).ok();
        self.dirs.insert(dir.to_vec(), r.clone());
        r.map(Cow::Owned)
    }
}

/// Why [`walk`] stopped.
#[derive(Debug)]
pub(crate) enum WalkError {
    /// More than the kernel's 40 symlinks (`ELOOP`).
    Loop,
    /// A component other than the last is not a directory (`ENOTDIR`; `kernel` rules only).
    NotDir,
    /// A component could not be looked at.
    Io(io::Error),
}

/// Resolve the absolute `path` component by component inside a root, the way the kernel does
/// under `RESOLVE_IN_ROOT`: symlinks followed (the last component's too, at most 40 in all),
/// absolute link targets restart at the root, `..` at the root stays there. `kind` is `lstat`
/// of a symlink-free path. With `kernel` rules (the loader's view, `explain`): a file followed
/// by more components is `ENOTDIR` and any missing component an error. Without (resolution's
/// view, [`Sysroot`]): a missing last component is kept, so that the resolved (missing) path
/// still names what the caller's own open will report. Returns the symlink-free path and the
/// kind of its last component.
pub(crate) fn walk(
    path: &[u8],
    kind: &dyn Fn(&[u8]) -> io::Result<Kind>,
    kernel: bool,
) -> Result<(Vec<u8>, Kind), WalkError> {
    let mut pending: Vec<Vec<u8>> = split(path);
    pending.reverse();
    let mut done: Vec<Vec<u8>> = Vec::new();
    let mut links = 0;
    let mut last = Kind::Dir;
    while let Some(comp) = pending.pop() {
        if kernel && last != Kind::Dir {
            // A file followed by more components (even a trailing `/`).
            return Err(WalkError::NotDir);
        }
        match comp.as_slice() {
            b"" | b"." => continue,
            b".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(comp);
        match kind(&join(&done)) {
            Ok(Kind::Symlink(target)) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(WalkError::Loop);
                }
                done.pop();
                if target.starts_with(b"/") {
                    done.clear();
                }
                let mut t = split(&target);
                t.reverse();
                pending.extend(t);
            }
            Ok(k) => last = k,
            Err(e) if !kernel && e.kind() == io::ErrorKind::NotFound && pending.is_empty() => {}
            Err(e) => return Err(WalkError::Io(e)),
        }
    }
    Ok((join(&done), last))
}

fn split(p: &[u8]) -> Vec<Vec<u8>> {
    p.split(|b| *b == b'/').map(<[u8]>::to_vec).collect()
}

fn join(parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in parts {
        out.push(b'/');
        out.extend_from_slice(p);
    }
    if out.is_empty() {
        out.push(b'/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_links_are_rerooted_and_dotdot_is_clamped() {
        let mut f = FakeFs::new();
        f.file("/usr/lib/real/libx.so.1", b"x")
            .link("/usr/lib/libx.so.1", "/usr/lib/real/libx.so.1")
            .link("/lib", "usr/lib")
            .link("/usr/lib/esc", "../../../../etc")
            .dir("/etc");
        let s = Sysroot::new(f);
        assert_eq!(
            s.resolve(b"/lib/libx.so.1").expect("ok"),
            b"/usr/lib/real/libx.so.1"
        );
        assert_eq!(s.resolve(b"/usr/lib/esc").expect("ok"), b"/etc");
    }

    #[test]
    fn a_listing_finds_every_name_pushed_in_any_order() {
        let mut b = ListingBuilder::default();
        let names: [&[u8]; 5] = [b"libz.so.1", b"glibc-hwcaps", b"a", b"libc.so.6", b"\xff"];
        for (i, n) in names.iter().enumerate() {
            b.push(n, (i % 2 == 0).then_some(Kind::File));
        }
        let l = b.finish();
        assert_eq!(l.len(), names.len());
        for (i, n) in names.iter().enumerate() {
            assert_eq!(l.get(n), Some(&(i % 2 == 0).then_some(Kind::File)), "{n:?}");
        }
        for absent in [&b""[..], b"libz.so", b"libz.so.10", b"b"] {
            assert!(!l.contains(absent), "{absent:?}");
        }
        let mut sorted: Vec<&[u8]> = names.to_vec();
        sorted.sort();
        assert_eq!(l.names().collect::<Vec<_>>(), sorted);
        assert!(ListingBuilder::default().finish().is_empty());
    }

    #[test]
    fn loops_are_diagnosed() {
        let mut f = FakeFs::new();
        f.link("/a", "/b").link("/b", "/a");
        let s = Sysroot::new(f);
        let e = s.resolve(b"/a/x").expect_err("loop");
        assert!(e.to_string().contains("too many levels"), "{e}");
    }
}
