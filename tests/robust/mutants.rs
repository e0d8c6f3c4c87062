//! A file `patch` refuses is left byte for byte unchanged: everything is validated before the
//! first byte is written. Mutants of real outputs (one with a reservation hidden by `--defer`,
//! one without, one by mold) have bytes of their headers and section tables overwritten; each
//! is patched, and a refusal must leave it as it was. The refused mutants are the kind that once
//! had a section renamed before the refusal; `fuzz/regressions/elf_embed/` keeps some.

use std::process::Command;

use crate::common::*;
use crate::require;
use crate::robust_util::Rng;

/// Where mutations land: the ELF and program headers, the section header table and the
/// section name table (what the in-place plan and the fallback parse).
fn hot_ranges(data: &[u8]) -> Vec<(usize, usize)> {
    use object::read::elf::{FileHeader, SectionHeader};
    let mut v = vec![(0, 64.min(data.len())), (64, 1024.min(data.len()))];
    if let Ok(h) = object::elf::FileHeader64::<object::Endianness>::parse(data) {
        if let Ok(e) = h.endian() {
            let shoff = h.e_shoff(e) as usize;
            v.push((shoff, data.len()));
            if let Ok(secs) = h.section_headers(e, data) {
                if let Some(s) = secs.get(usize::from(h.e_shstrndx(e))) {
                    let o = s.sh_offset(e) as usize;
                    v.push((o, (o + s.sh_size(e) as usize).min(data.len())));
                }
            }
        }
    }
    v.retain(|(a, b)| a < b);
    v
}

#[test]
fn refused_files_are_never_modified() {
    require!("gcc");
    let l = Layout::new();
    let lib = l.lib_in("d", "liba.so");
    let base = |name: &str, ldnote_args: &[&str], extra: &[&str]| {
        let out = l.p(name);
        let mut args = Link::program(&l).input(&lib).runpath(l.pb("d")).args(&out);
        args.extend(extra.iter().map(Into::into));
        run_ok(
            ldnote_cmd()
                .arg("link")
                .args(ldnote_args)
                .arg("--")
                .arg("gcc")
                .args(&args)
                .current_dir(l.root()),
        );
        std::fs::read(&out).expect("read")
    };
    let mut bases = vec![
        base("deferred", &["--defer"], &[]),
        base("plain", &["--no-reserve", "--defer"], &[]),
        small_reservation(&l),
    ];
    // The linker's own output with a reservation too small for its note: `patch` must take the
    // fallback; with the section name table's type broken the fallback refuses. That refusal
    // once came after the reservation's section had been renamed.
    {
        let mut m = bases[2].clone();
        let at = shstrtab_type_offset(&m).expect("section headers");
        m[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
        let f = l.p("broken-names");
        std::fs::write(&f, &m).expect("write");
        let o = run(Command::new(ldnote()).arg("patch").arg(&f));
        assert_eq!(o.status.code(), Some(1), "{}", stderr_of(&o));
        assert!(
            stderr_of(&o).contains("section name table"),
            "{}",
            stderr_of(&o)
        );
        assert_eq!(std::fs::read(&f).expect("read"), m, "refused and modified");
    }
    if which::which("mold").is_ok() {
        bases.push(base("mold", &["--defer"], &["-fuse-ld=mold"]));
    }
    let mut rng = Rng(0xdead_beef_1234_5678);
    let f = l.p("mutant");
    let (mut refused, mut total) = (0, 0);
    let mut modified = Vec::new();
    for (b, data) in bases.iter().enumerate() {
        let ranges = hot_ranges(data);
        for i in 0..400 {
            let mut m = data.clone();
            for _ in 0..1 + rng.below(3) {
                let (lo, hi) = ranges[rng.below(ranges.len() as u64) as usize];
                let at = lo + rng.below((hi - lo) as u64) as usize;
                m[at] = match rng.below(4) {
                    0 => 0,
                    1 => 0xff,
                    2 => m[at] ^ (1 << rng.below(8)),
                    _ => rng.below(256) as u8,
                };
            }
            std::fs::write(&f, &m).expect("write");
            let o = run(Command::new(ldnote()).arg("patch").arg(&f));
            total += 1;
            if !o.status.success() {
                refused += 1;
                if std::fs::read(&f).expect("read") != m {
                    let keep = l.p(format!("modified-{b}-{i}"));
                    std::fs::write(&keep, &m).expect("keep");
                    modified.push(format!("{}: {}", keep.display(), stderr_of(&o).trim()));
                }
            }
        }
    }
    eprintln!(
        "{total} mutants, {refused} refused, {} modified",
        modified.len()
    );
    assert!(
        refused > 0,
        "no mutant was refused: the test proves nothing"
    );
    assert!(
        modified.is_empty(),
        "refused but modified:\n{}",
        modified.join("\n")
    );
}

/// File offset of the section name table header's `sh_type` (64-bit little-endian).
fn shstrtab_type_offset(data: &[u8]) -> Option<usize> {
    let word = |o: usize, n: usize| -> Option<u64> {
        let b = data.get(o..o + n)?;
        Some(b.iter().rev().fold(0, |a, x| a << 8 | u64::from(*x)))
    };
    let shoff = word(0x28, 8)? as usize;
    let ndx = word(0x3e, 2)? as usize;
    Some(shoff + ndx * 64 + 4)
}

/// The linker's bytes (no note step) of a program needing eight libraries named without `.so`
/// from a long directory: the reservation is sized from `-l` and `.so` inputs, so it is too
/// small for this note.
fn small_reservation(l: &Layout) -> Vec<u8> {
    let dir = l.mkdir("x".repeat(120));
    let libs: Vec<std::path::PathBuf> = (1..=8)
        .map(|i| {
            let p = dir.join(format!("lib{i}"));
            run_ok(
                Command::new("gcc")
                    .args(["-shared", "-o"])
                    .arg(&p)
                    .arg(l.pic_object())
                    .arg(format!("-Wl,-soname,lib{i}")),
            );
            p
        })
        .collect();
    let main = l.object("m", MAIN_C, &[]);
    let mut args: Vec<std::ffi::OsString> = vec!["-o".into(), "probe".into(), main.into()];
    args.push("-Wl,--no-as-needed".into());
    args.extend(libs.iter().map(|p| p.clone().into_os_string()));
    args.push("-Wl,--enable-new-dtags".into());
    args.push(cat(&[b"-Wl,-rpath,", bytes(&dir)]));
    let o = run_ok(
        ldnote_cmd()
            .args(["link", "-v", "--", "gcc"])
            .args(&args)
            .current_dir(l.root()),
    );
    let err = stderr_of(&o);
    let reserve = err
        .split(['(', ')'])
        .find(|w| w.ends_with(".o") && w.contains("reserve-"))
        .unwrap_or_else(|| panic!("no reservation in: {err}"));
    assert!(
        err.contains("the note needs"),
        "the reservation was big enough: {err}"
    );
    args[1] = "raw".into();
    run_ok(
        Command::new("gcc")
            .arg(reserve)
            .args(&args)
            .current_dir(l.root()),
    );
    std::fs::read(l.p("raw")).expect("read")
}
