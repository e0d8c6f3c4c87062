//! Carrying out an in-place [`Edit`](super::Edit): the only writes of the in-place path, through
//! the descriptor the output was read with.

use std::os::unix::fs::FileExt;

use super::{plan_in_place, Edit, Write};
use crate::elf::ElfInfo;

/// The edit that leaves nothing live behind: every live resolution note made inert and an
/// unused `.note.nixos.ldcache` section renamed (patchelf would take it for a note). Used when
/// there is nothing to record, and before (or after a failed) append fallback.
pub fn neutralize(info: &ElfInfo) -> Vec<Write> {
    match plan_in_place(info, None, None, &|_| None) {
        Edit::InPlace(writes) => writes,
        _ => Vec::new(),
    }
}

/// The usual in-place edit is one region write (inert type) and the 4-byte commit of the type.
/// When the region lies within one page, write it once with the live type instead: the kernel
/// copies a single page all or nothing even when a SIGKILL arrives, so the file goes straight
/// from the linker's bytes to the noted file. Otherwise the commit stays the last, separate write.
pub fn in_one_write_when_atomic(writes: Vec<Write>) -> Vec<Write> {
    const PAGE: u64 = 4096;
    if let [region, commit] = writes.as_slice() {
        let len = region.bytes.len() as u64;
        let same_page = len > 0 && region.offset / PAGE == (region.offset + len - 1) / PAGE;
        if same_page && commit.offset == region.offset + 8 && commit.bytes.len() == 4 {
            let mut bytes = region.bytes.clone();
            bytes[8..12].copy_from_slice(&commit.bytes);
            return vec![Write {
                offset: region.offset,
                bytes,
            }];
        }
    }
    writes
}

/// Write `writes` in order through `file` (in one write when that is atomic, see
/// [`in_one_write_when_atomic`]). Returns how many writes were made.
pub fn apply(file: &impl FileExt, writes: Vec<Write>) -> std::io::Result<usize> {
    let writes = in_one_write_when_atomic(writes);
    for w in &writes {
        file.write_all_at(&w.bytes, w.offset)?;
    }
    Ok(writes.len())
}

/// Write what can be written of `writes`, ignoring failures: the clean-up after a failed
/// append, where the first error is the one to report.
pub fn apply_best_effort(file: &impl FileExt, writes: &[Write]) {
    for w in writes {
        let _ = file.write_all_at(&w.bytes, w.offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_within_one_page_is_written_once_with_its_live_type() {
        let region = Write {
            offset: 0x320,
            bytes: vec![0; 64],
        };
        let commit = Write {
            offset: 0x328,
            bytes: vec![1, 2, 3, 4],
        };
        let one = in_one_write_when_atomic(vec![region.clone(), commit.clone()]);
        assert_eq!(one.len(), 1);
        assert_eq!(&one[0].bytes[8..12], &[1, 2, 3, 4]);
        let across = Write {
            offset: 0xff0,
            ..region
        };
        let commit = Write {
            offset: 0xff8,
            ..commit
        };
        assert_eq!(in_one_write_when_atomic(vec![across, commit]).len(), 2);
    }
}
