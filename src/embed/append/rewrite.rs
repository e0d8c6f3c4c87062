//! The rewritten file as a description against the original rather than a copy of it: the
//! original's first `keep` bytes with a few edits laid over them, then a rebuilt tail. The edits
//! and the tail are bounded by the headers, the tables that move and the note, never by the size
//! of the file, so a writer can copy the kept bytes file to file (`copy_file_range`) and hold only
//! this in memory.

use object::ReadRef;

use super::AppendError;
use crate::embed::Write;

/// The new file: bytes `[0, keep)` of the original, `edits` laid over them in order (a later
/// edit wins where two overlap; all lie inside `[0, keep)`), then `tail` from `keep` on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rewrite {
    /// How many leading bytes of the original the new file starts with.
    pub keep: u64,
    /// Changes inside the kept bytes, applied in order.
    pub edits: Vec<Write>,
    /// Everything after the kept bytes.
    pub tail: Vec<u8>,
}

/// A zeroed buffer, allocated fallibly: a lack of memory is an error to report, never an abort.
pub(super) fn zeroed(len: u64) -> Result<Vec<u8>, AppendError> {
    let n = usize::try_from(len).map_err(|_| AppendError::NoMemory(len))?;
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| AppendError::NoMemory(len))?;
    v.resize(n, 0);
    Ok(v)
}

fn idx(v: u64) -> Result<usize, AppendError> {
    usize::try_from(v).map_err(|_| AppendError::Corrupt("offset overflow"))
}

impl Rewrite {
    /// Length of the new file.
    pub fn len(&self) -> u64 {
        self.keep.saturating_add(self.tail.len() as u64)
    }

    /// Never true: the tail always holds the section header table.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes `bytes` at `off` of the new file. An edit goes into the newest edit that overlaps
    /// it when that one covers it whole (a moved table patched after the move), else it is added.
    pub(super) fn put(
        &mut self,
        off: u64,
        bytes: &[u8],
        what: &'static str,
    ) -> Result<(), AppendError> {
        let end = off
            .checked_add(bytes.len() as u64)
            .filter(|&e| e <= self.len())
            .ok_or(AppendError::Corrupt(what))?;
        let split = idx(self.keep.saturating_sub(off).min(bytes.len() as u64))?;
        let (head, rest) = bytes.split_at(split);
        if !head.is_empty() {
            let head_end = off + head.len() as u64;
            let newest = self
                .edits
                .iter_mut()
                .rev()
                .find(|w| w.offset < head_end && off < w.offset + w.bytes.len() as u64);
            match newest {
                Some(w) if w.offset <= off && head_end <= w.offset + w.bytes.len() as u64 => {
                    let at = idx(off - w.offset)?;
                    w.bytes[at..at + head.len()].copy_from_slice(head);
                }
                _ => {
                    let mut v = zeroed(head.len() as u64)?;
                    v.copy_from_slice(head);
                    self.edits.push(Write {
                        offset: off,
                        bytes: v,
                    });
                }
            }
        }
        if !rest.is_empty() {
            let at = idx(off + split as u64 - self.keep)?;
            let dst = self
                .tail
                .get_mut(at..idx(end - self.keep)?)
                .ok_or(AppendError::Corrupt(what))?;
            dst.copy_from_slice(rest);
        }
        Ok(())
    }

    /// Bytes `[off, off + len)` of the new file, `data` being the original.
    pub(super) fn read<'d, R: ReadRef<'d>>(
        &self,
        data: R,
        off: u64,
        len: u64,
        what: &'static str,
    ) -> Result<Vec<u8>, AppendError> {
        let end = off
            .checked_add(len)
            .filter(|&e| e <= self.len())
            .ok_or(AppendError::Corrupt(what))?;
        let mut out = zeroed(len)?;
        let kept_end = end.min(self.keep);
        if off < kept_end {
            let old = data
                .read_bytes_at(off, kept_end - off)
                .map_err(|()| AppendError::Corrupt(what))?;
            out[..old.len()].copy_from_slice(old);
            for w in &self.edits {
                overlay(&mut out, off, w.offset, &w.bytes);
            }
        }
        overlay(&mut out, off, self.keep, &self.tail);
        Ok(out)
    }

    /// The new file in memory; `data` is the original.
    pub fn to_bytes(&self, data: &[u8]) -> Result<Vec<u8>, AppendError> {
        let mut out = Vec::new();
        out.try_reserve_exact(idx(self.len())?)
            .map_err(|_| AppendError::NoMemory(self.len()))?;
        out.extend_from_slice(
            data.get(..idx(self.keep)?)
                .ok_or(AppendError::Corrupt("range outside the file"))?,
        );
        for w in &self.edits {
            overlay(&mut out, 0, w.offset, &w.bytes);
        }
        out.extend_from_slice(&self.tail);
        Ok(out)
    }

    /// Lays `writes`, made to the original before it was planned from, under the edits: the
    /// planner read the original through them, so the new file must carry them too. The parts
    /// past `keep` are dropped (the tail was built from bytes read through them).
    pub fn lay_under(&mut self, writes: Vec<Write>) {
        let keep = self.keep;
        let mut base: Vec<Write> = writes
            .into_iter()
            .filter(|w| w.offset < keep)
            .map(|mut w| {
                let room = usize::try_from(keep - w.offset).unwrap_or(usize::MAX);
                w.bytes.truncate(room);
                w
            })
            .collect();
        base.append(&mut self.edits);
        self.edits = base;
    }
}

/// Copies the part of `bytes` (placed at file offset `at`) that falls inside `out` (which holds
/// the file from offset `base`).
pub fn overlay(out: &mut [u8], base: u64, at: u64, bytes: &[u8]) {
    let lo = base.max(at);
    let hi = (base + out.len() as u64).min(at.saturating_add(bytes.len() as u64));
    if lo >= hi {
        return;
    }
    // Both ranges lie inside slices already in memory, so these fit in usize.
    let (o, b, n) = ((lo - base) as usize, (lo - at) as usize, (hi - lo) as usize);
    out[o..o + n].copy_from_slice(&bytes[b..b + n]);
}
