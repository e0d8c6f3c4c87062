//! `patchelf --shrink-rpath`, as an in-place edit, so that the Nix fixup phase can shrink and note
//! in one pass (see docs/nix.md). The result is byte-identical to patchelf 0.19.3's.
//!
//! Rules (patchelf's `modifyRPath(rpShrink)`): components are split on `:` and empty ones dropped;
//! a component not starting with `/` is kept; an absolute directory is kept only if it provides a
//! DT_NEEDED name that no earlier kept directory provided, where "provides" means `dir/name`
//! opens and starts with an ELF header of the object's `e_machine`. A DT_RPATH becomes
//! DT_RUNPATH. The new string (never longer) is written over the old one, NUL-terminated and
//! padded with `X` so that Nix's reference scanner no longer sees removed store paths.

use std::io;

use object::Endian as _;

use crate::elf::ElfInfo;
use crate::embed::Write;

/// What a probe of `dir/name` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// An ELF file of the right machine.
    Provides,
    /// Absent (ENOENT, dangling link) or not an ELF of this machine.
    Absent,
}

/// The shrunk run path. `probe` sees `dir/name` paths; an `Err` from it aborts (patchelf then
/// leaves the file unchanged).
pub fn shrink(
    needed: &[Vec<u8>],
    run_path: &[u8],
    probe: &mut dyn FnMut(&[u8]) -> io::Result<Probe>,
) -> io::Result<Vec<u8>> {
    let mut found = vec![false; needed.len()];
    let mut kept: Vec<&[u8]> = Vec::new();
    for comp in run_path.split(|b| *b == b':').filter(|c| !c.is_empty()) {
        if comp[0] != b'/' {
            kept.push(comp);
            continue;
        }
        let mut provides = false;
        for (j, name) in needed.iter().enumerate() {
            if found[j] {
                continue;
            }
            let mut p = comp.to_vec();
            p.push(b'/');
            p.extend_from_slice(name);
            if probe(&p)? == Probe::Provides {
                found[j] = true;
                provides = true;
            }
        }
        if provides {
            kept.push(comp);
        }
    }
    Ok(kept.join(&b':'))
}

/// patchelf's test of a probed file's first bytes: ELF magic, EI_VERSION 1, a known class, and
/// the same `e_machine` bytes as the object (compared raw, so in the object's byte order).
pub fn provides(head: &[u8], machine_bytes: [u8; 2]) -> Probe {
    let ok = head.len() >= 52
        && head[..4] == object::elf::ELFMAG
        && head[6] == 1
        && matches!(head[4], 1 | 2)
        && head[18..20] == machine_bytes;
    if ok {
        Probe::Provides
    } else {
        Probe::Absent
    }
}

/// The string write: `new`, a NUL, then `X` up to the old length.
pub fn string_bytes(old_len: usize, new: &[u8]) -> Vec<u8> {
    let mut b = new.to_vec();
    b.push(0);
    b.resize(old_len.max(new.len() + 1), b'X');
    b
}

/// The in-place writes that give `info` the run path `new` in place of `old` (its search path,
/// at `info.run_path_string`): a DT_RPATH tag becomes DT_RUNPATH, as patchelf does, and the
/// string is overwritten ([`string_bytes`]). Empty when nothing changes.
pub fn writes(info: &ElfInfo, old: &[u8], new: &[u8]) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(tag_at) = info.rpath_tag {
        let e = info.ident.endian();
        let bytes = if info.ident.is_64 {
            e.write_u64_bytes(u64::from(object::elf::DT_RUNPATH))
                .to_vec()
        } else {
            e.write_u32_bytes(object::elf::DT_RUNPATH).to_vec()
        };
        out.push(Write {
            offset: tag_at,
            bytes,
        });
    }
    if let Some(at) = info.run_path_string.filter(|_| new != old) {
        out.push(Write {
            offset: at,
            bytes: string_bytes(old.len(), new),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_relative_and_providing_dirs_only() {
        let needed = vec![b"liba.so".to_vec(), b"libb.so".to_vec()];
        let mut probe = |p: &[u8]| -> io::Result<Probe> {
            Ok(match p {
                b"/x/liba.so" | b"/y/liba.so" | b"/y/libb.so" => Probe::Provides,
                _ => Probe::Absent,
            })
        };
        let got = shrink(&needed, b"/none::/x:$ORIGIN/../lib:/y:/z", &mut probe).expect("ok");
        assert_eq!(got, b"/x:$ORIGIN/../lib:/y");
        assert_eq!(string_bytes(8, b"/x"), b"/x\0XXXXX");
    }

    #[test]
    fn errors_abort() {
        let mut probe = |_: &[u8]| -> io::Result<Probe> { Err(io::Error::from_raw_os_error(13)) };
        assert!(shrink(&[b"a".to_vec()], b"/d", &mut probe).is_err());
    }
}
