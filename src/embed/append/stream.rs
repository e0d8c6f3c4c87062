//! The append fallback's file side: reading the output through a few pending edits, and writing
//! a [`Rewrite`] of it without holding either file in memory. The kept bytes go file to file
//! with `copy_file_range`, which the kernel turns into a shared extent (a reflink) where the
//! filesystem can (Btrfs, XFS) and otherwise copies without passing through user space.
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;

use super::{overlay, Rewrite};
use crate::embed::Write;
use rustix::io::Errno;

/// A file seen with `patches` laid over its first `file_len` bytes and `tail` after them: the
/// output before planning (its reservation made inert in memory only), or the planned result
/// before it is written. `Read + Seek`, so `object::ReadCache` reads only what is asked for.
pub struct View<'a> {
    file: &'a File,
    file_len: u64,
    patches: &'a [Write],
    tail: &'a [u8],
    pos: u64,
}

impl<'a> View<'a> {
    /// `file` with `patches` applied.
    pub fn patched(file: &'a File, file_len: u64, patches: &'a [Write]) -> View<'a> {
        View {
            file,
            file_len,
            patches,
            tail: &[],
            pos: 0,
        }
    }

    /// The file `new` describes, `file` being the original it was planned from.
    pub fn rewritten(file: &'a File, new: &'a Rewrite) -> View<'a> {
        View {
            file,
            file_len: new.keep,
            patches: &new.edits,
            tail: &new.tail,
            pos: 0,
        }
    }

    fn len(&self) -> u64 {
        self.file_len + self.tail.len() as u64
    }
}

impl Read for View<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len().saturating_sub(self.pos);
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let buf = &mut buf[..want];
        let got = if self.pos < self.file_len {
            let room = usize::try_from(self.file_len - self.pos).unwrap_or(usize::MAX);
            let n = self.file.read_at(&mut buf[..want.min(room)], self.pos)?;
            for p in self.patches {
                overlay(&mut buf[..n], self.pos, p.offset, &p.bytes);
            }
            n
        } else {
            overlay(buf, self.pos, self.file_len, self.tail);
            want
        };
        self.pos += got as u64;
        Ok(got)
    }
}

impl Seek for View<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        Ok(self.pos)
    }
}

/// Writes the file `new` describes into the empty file `to`; `from` is the original.
pub fn write_rewrite(from: &File, to: &File, new: &Rewrite) -> io::Result<()> {
    copy_range(from, to, new.keep)?;
    for w in &new.edits {
        to.write_all_at(&w.bytes, w.offset)?;
    }
    to.write_all_at(&new.tail, new.keep)?;
    to.set_len(new.len())
}

/// Copies bytes `[0, len)` of `from` to the same offsets of `to`: by the kernel where it can,
/// else through a small buffer (across filesystems on kernels before 5.3, on filesystems that
/// refuse the call, or where there is no such call).
fn copy_range(from: &File, to: &File, len: u64) -> io::Result<()> {
    let (mut off_in, mut off_out) = (0u64, 0u64);
    while off_in < len {
        // At most 1 GiB per call: the kernel may copy less, and the count must fit an isize.
        let want = usize::try_from(len - off_in)
            .unwrap_or(usize::MAX)
            .min(1 << 30);
        match rustix::fs::copy_file_range(from, Some(&mut off_in), to, Some(&mut off_out), want) {
            // The source ended early (it shrank) or the filesystem copies nothing: the buffered
            // loop below finishes the copy or reports the short file.
            Ok(0) => break,
            Ok(_) => {}
            Err(Errno::INTR) => {}
            Err(Errno::XDEV | Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP | Errno::PERM) => {
                break
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut buf = Vec::new();
    let size = usize::try_from(len - off_in)
        .unwrap_or(usize::MAX)
        .min(1 << 20);
    buf.try_reserve_exact(size)
        .map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    buf.resize(size, 0);
    while off_in < len {
        let want = usize::try_from(len - off_in)
            .unwrap_or(usize::MAX)
            .min(size);
        let n = from.read_at(&mut buf[..want], off_in)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file got shorter while it was being copied",
            ));
        }
        to.write_all_at(&buf[..n], off_out)?;
        off_in += n as u64;
        off_out += n as u64;
    }
    Ok(())
}
