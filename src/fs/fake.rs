//! An in-memory filesystem for unit tests of resolution.
use std::collections::BTreeMap;
use std::io;

use super::{Fs, Kind, Listing, ListingBuilder};

/// An in-memory filesystem for unit tests of resolution.
#[derive(Clone, Debug, Default)]
pub struct FakeFs {
    nodes: BTreeMap<Vec<u8>, FakeNode>,
    /// Directories whose listing fails with EACCES (still traversable).
    pub unlistable: Vec<Vec<u8>>,
}

#[derive(Clone, Debug)]
enum FakeNode {
    Dir,
    File(Vec<u8>),
    Link(Vec<u8>),
}

impl FakeFs {
    /// An empty filesystem holding only `/`.
    pub fn new() -> Self {
        let mut f = FakeFs::default();
        f.nodes.insert(b"/".to_vec(), FakeNode::Dir);
        f
    }

    fn parents(&mut self, path: &[u8]) {
        let mut i = 1;
        while let Some(pos) = path[i..].iter().position(|b| *b == b'/') {
            let dir = &path[..i + pos];
            self.nodes.entry(dir.to_vec()).or_insert(FakeNode::Dir);
            i += pos + 1;
        }
    }

    /// Add a directory (and its parents).
    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.parents(path.as_bytes());
        self.nodes.insert(path.as_bytes().to_vec(), FakeNode::Dir);
        self
    }

    /// Add a file with contents (and its parent directories).
    pub fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
        self.parents(path.as_bytes());
        self.nodes
            .insert(path.as_bytes().to_vec(), FakeNode::File(data.to_vec()));
        self
    }

    /// Add a symlink `path -> target`.
    pub fn link(&mut self, path: &str, target: &str) -> &mut Self {
        self.parents(path.as_bytes());
        self.nodes.insert(
            path.as_bytes().to_vec(),
            FakeNode::Link(target.as_bytes().to_vec()),
        );
        self
    }
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl Fs for FakeFs {
    fn kind(&self, path: &[u8]) -> io::Result<Kind> {
        match self.nodes.get(path) {
            Some(FakeNode::Dir) => Ok(Kind::Dir),
            Some(FakeNode::File(_)) => Ok(Kind::File),
            Some(FakeNode::Link(t)) => Ok(Kind::Symlink(t.clone())),
            None => Err(not_found()),
        }
    }

    fn list(&self, path: &[u8]) -> io::Result<Listing> {
        match self.nodes.get(path) {
            Some(FakeNode::Dir) => {}
            Some(_) => return Err(io::Error::from_raw_os_error(20)), // ENOTDIR
            None => return Err(not_found()),
        }
        if self.unlistable.iter().any(|u| u == path) {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        let mut prefix = path.to_vec();
        if !prefix.ends_with(b"/") {
            prefix.push(b'/');
        }
        let mut out = ListingBuilder::default();
        for (k, _) in self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k[prefix.len()..].contains(&b'/'))
        {
            out.push(&k[prefix.len()..], None);
        }
        Ok(out.finish())
    }

    fn head(&self, path: &[u8], n: usize) -> io::Result<Vec<u8>> {
        match self.nodes.get(path) {
            Some(FakeNode::File(d)) => Ok(d[..n.min(d.len())].to_vec()),
            Some(FakeNode::Dir) => Err(io::Error::from_raw_os_error(21)), // EISDIR, as read(2)
            Some(FakeNode::Link(_)) => Err(io::Error::other("head() on a symlink")),
            None => Err(not_found()),
        }
    }
}
