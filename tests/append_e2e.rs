//! End to end: `append_note` on programs and libraries linked by GNU ld, gold, lld and mold, native
//! and cross (run under qemu-user), checked against the loaders, binutils and patchelf 0.19.3.
//!
//! For every fixture the note comes from patchelf itself (`--build-resolution-cache` on a copy,
//! section extracted with objcopy), is appended to the *original* with `append_note`, and then:
//! the program runs, `readelf -a -W` is silent, a glibc-style PT_NOTE walk finds the descriptor,
//! unrelated sections keep their bytes (code and data also their addresses), and copies made by
//! `strip -s`, `objcopy --strip-debug` and their LLVM counterparts still run, still carry the
//! note, and patchelf calls them up to date. Sizes are printed (`--nocapture`) next to patchelf's.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ldnote::embed::append::{append_note, AppendError};
use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind};

use common::{have, run_ok};

/// Missing tools skip locally and fail under `CI=true`.
fn require(tools: &[String]) -> bool {
    tools.iter().all(|t| have(t))
}

const MAIN_C: &str = r#"#include <stdio.h>
int dep_value(int);
int main(void) { printf("dep says %d\n", dep_value(20)); return 0; }
"#;
const DEP_C: &str = "int dep_value(int x) { return 2 * x + 1; }\n";
const MID_C: &str = "int dep_value(int);\nint mid_value(int x) { return dep_value(x) + 100; }\n";
const RUNNER_C: &str = r#"#include <stdio.h>
int mid_value(int);
int main(void) { printf("mid says %d\n", mid_value(20)); return 0; }
"#;

/// A compiler and the tools that go with it.
struct Target {
    /// `None`: the host toolchain.
    triple: Option<&'static str>,
    qemu: Option<&'static str>,
}

const NATIVE: Target = Target {
    triple: None,
    qemu: None,
};

impl Target {
    fn cross(triple: &'static str, qemu: &'static str) -> Target {
        Target {
            triple: Some(triple),
            qemu: Some(qemu),
        }
    }
    fn tool(&self, name: &str) -> String {
        match self.triple {
            Some(t) => format!("{t}-{name}"),
            None => name.to_string(),
        }
    }
    fn label(&self) -> &'static str {
        self.triple.unwrap_or("native")
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Pie,
    NoPie,
    Shared,
}

/// An LLVM tool: Debian's `llvm` package links the unversioned name, `llvm-14` only the other.
fn llvm(name: &str) -> String {
    let versioned = format!("{name}-14");
    let found = which::which(name).is_err() && which::which(&versioned).is_ok();
    if found {
        versioned
    } else {
        name.to_string()
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write source");
    p
}

/// Runs a program of `target` (through qemu with the cross sysroot) and returns its stdout.
fn exec(target: &Target, prog: &Path) -> String {
    let mut cmd = match (target.qemu, target.triple) {
        (Some(q), Some(t)) => {
            let mut c = Command::new(q);
            c.arg("-L").arg(format!("/usr/{t}")).arg(prog);
            c
        }
        _ => Command::new(prog),
    };
    String::from_utf8_lossy(&run_ok(&mut cmd).stdout).into_owned()
}

/// Program headers and section headers, widened.
struct Headers {
    phdrs: Vec<[u64; 5]>,                     // type, offset, vaddr, filesz, align
    secs: Vec<(Vec<u8>, u32, u64, u64, u64)>, // name, type, addr, offset, size
    endian: Endianness,
}

fn headers_as<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Headers {
    let h = Elf::parse(data).expect("ELF header");
    let e = h.endian().expect("endian");
    let phdrs = h
        .program_headers(e, data)
        .expect("phdrs")
        .iter()
        .map(|p| {
            let t = u64::from(p.p_type(e));
            [
                t,
                p.p_offset(e).into(),
                p.p_vaddr(e).into(),
                p.p_filesz(e).into(),
                p.p_align(e).into(),
            ]
        })
        .collect();
    let table = h.sections(e, data).expect("sections");
    let secs = table
        .iter()
        .map(|s| {
            let (name, ty) = (table.section_name(e, s).expect("name"), s.sh_type(e));
            let size = if ty == elf::SHT_NOBITS {
                0
            } else {
                s.sh_size(e).into()
            };
            (
                name.to_vec(),
                ty,
                s.sh_addr(e).into(),
                s.sh_offset(e).into(),
                size,
            )
        })
        .collect();
    Headers {
        phdrs,
        secs,
        endian: e,
    }
}

fn headers(data: &[u8]) -> Headers {
    match FileKind::parse(data).expect("file kind") {
        FileKind::Elf32 => headers_as::<elf::FileHeader32<Endianness>>(data),
        FileKind::Elf64 => headers_as::<elf::FileHeader64<Endianness>>(data),
        k => panic!("not ELF: {k:?}"),
    }
}

fn rd32(e: Endianness, b: &[u8], at: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at + 4)?.try_into().ok()?;
    Some(match e {
        Endianness::Little => u32::from_le_bytes(s),
        Endianness::Big => u32::from_be_bytes(s),
    })
}

/// The descriptor of the first resolution note found the way the patched glibc finds it: PT_NOTE
/// segments that a PT_LOAD maps, walked note by note with the segment's `p_align` (at least 4).
fn find_note(data: &[u8]) -> Option<Vec<u8>> {
    let h = headers(data);
    for p in h.phdrs.iter().filter(|p| p[0] == u64::from(elf::PT_NOTE)) {
        let mapped = h.phdrs.iter().any(|l| {
            l[0] == u64::from(elf::PT_LOAD)
                && l[1] <= p[1]
                && p[1] + p[3] <= l[1] + l[3]
                && p[2].wrapping_sub(l[2]) == p[1] - l[1]
        });
        if !mapped {
            continue;
        }
        let seg = &data[p[1] as usize..(p[1] + p[3]) as usize];
        let align = p[4].max(4) as usize;
        let up = |v: usize| v.div_ceil(align) * align;
        let mut at = 0usize;
        while at + 12 <= seg.len() {
            let namesz = rd32(h.endian, seg, at)? as usize;
            let descsz = rd32(h.endian, seg, at + 4)? as usize;
            let ty = rd32(h.endian, seg, at + 8)?;
            let desc = up(at + 12 + namesz);
            if namesz == 6 && seg.get(at + 12..at + 18) == Some(b"NixOS\0") && ty == 0x63a8_6cb6 {
                return seg.get(desc..desc + descsz).map(<[u8]>::to_vec);
            }
            at = up(desc + descsz);
        }
    }
    None
}

/// Sections other than the tables the embedder rewrites keep their bytes; code and data keep
/// their addresses and offsets too (only dynamic-linking tables and notes may move).
fn assert_untouched(orig: &[u8], ours: &[u8]) {
    let (a, b) = (headers(orig), headers(ours));
    assert_eq!(a.secs.len() + 1, b.secs.len(), "one section added");
    let added = b.secs.last().expect("sections");
    assert_eq!(added.0, b".note.nixos.ldcache");
    assert_eq!(added.1, elf::SHT_NOTE);
    for (sa, sb) in a.secs.iter().zip(&b.secs).skip(1) {
        assert_eq!(sa.0, sb.0, "section order is kept");
        let rewritten = [&b".dynamic"[..], b".symtab", b".dynsym", b".shstrtab"];
        if !rewritten.contains(&sa.0.as_slice()) {
            let da = &orig[sa.3 as usize..(sa.3 + sa.4) as usize];
            let db = &ours[sb.3 as usize..(sb.3 + sb.4) as usize];
            assert!(da == db, "{} changed", String::from_utf8_lossy(&sa.0));
        }
        // Code, data, and anything else reached by address stays put.
        let fixed = matches!(sa.1, elf::SHT_PROGBITS | elf::SHT_NOBITS | elf::SHT_DYNAMIC)
            || sa.1 == elf::SHT_INIT_ARRAY
            || sa.1 == elf::SHT_FINI_ARRAY;
        if fixed && sa.0 != b".interp" {
            let what = String::from_utf8_lossy(&sa.0);
            assert_eq!((sa.2, sa.3), (sb.2, sb.3), "{what} moved");
        }
    }
}

fn patchelf_up_to_date(path: &Path, scratch: &Path) -> bool {
    std::fs::copy(path, scratch).expect("copy");
    let out = run_ok(
        Command::new("patchelf")
            .arg("--debug")
            .arg("--build-resolution-cache")
            .arg(scratch),
    );
    String::from_utf8_lossy(&out.stderr).contains("resolution cache already up to date")
}

/// Builds one fixture, appends patchelf's note to it, and checks everything; returns the sizes
/// (original, patchelf, ours).
fn check(
    target: &Target,
    linker: &str,
    kind: Kind,
    extra: &[&str],
    lddir: Option<&Path>,
) -> (u64, u64, u64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let cc = target.tool("gcc");
    let cc_with = |extra: &[String]| {
        let mut c = Command::new(&cc);
        if let Some(b) = lddir {
            c.arg("-B").arg(b);
        }
        c.args(extra);
        c
    };
    let depdir = d.join("dep");
    let middir = d.join("mid");
    std::fs::create_dir_all(&depdir).expect("mkdir");
    std::fs::create_dir_all(&middir).expect("mkdir");
    let dep_c = write(d, "dep.c", DEP_C);
    let lib = ["-shared", "-fPIC", "-o"].map(String::from);
    run_ok(cc_with(&lib).arg(depdir.join("libdep.so")).arg(&dep_c));
    let rpath = format!("-Wl,--enable-new-dtags,-rpath,{}", depdir.display());
    let ld = format!("-fuse-ld={linker}");
    let orig = match kind {
        Kind::Shared => middir.join("libmid.so"),
        _ => d.join("prog"),
    };
    let (src, flags) = match kind {
        Kind::Pie => (write(d, "main.c", MAIN_C), ["-fPIE", "-pie"]),
        Kind::NoPie => (write(d, "main.c", MAIN_C), ["-fno-PIE", "-no-pie"]),
        Kind::Shared => (write(d, "mid.c", MID_C), ["-fPIC", "-shared"]),
    };
    let dep = [ld, format!("-L{}", depdir.display()), "-ldep".into(), rpath];
    let mut link = cc_with(&flags.map(String::from));
    run_ok(link.args(extra).arg("-o").arg(&orig).arg(&src).args(&dep));
    let original = std::fs::read(&orig).expect("read fixture");
    // A shared library is exercised by a program linked (by the default linker) against it.
    let (prog, expected) = match kind {
        Kind::Shared => {
            let runner = d.join("runner");
            let rp = format!(
                "-Wl,--enable-new-dtags,-rpath,{}:{}",
                middir.display(),
                depdir.display()
            );
            let mid = [format!("-L{}", middir.display()), "-lmid".into(), rp];
            let src = write(d, "runner.c", RUNNER_C);
            run_ok(cc_with(&[]).arg("-o").arg(&runner).arg(src).args(&mid));
            (runner, "mid says 141\n")
        }
        _ => (orig.clone(), "dep says 41\n"),
    };
    assert_eq!(exec(target, &prog), expected, "the unmodified fixture runs");

    // The reference note: what patchelf writes for this very file.
    let by_patchelf = d.join("patchelf-out");
    std::fs::copy(&orig, &by_patchelf).expect("copy");
    run_ok(
        Command::new("patchelf")
            .arg("--build-resolution-cache")
            .arg(&by_patchelf),
    );
    let section_file = d.join("note.bin");
    run_ok(
        Command::new(target.tool("objcopy"))
            .args(["-O", "binary", "--only-section=.note.nixos.ldcache"])
            .arg(&by_patchelf)
            .arg(&section_file),
    );
    let section = std::fs::read(&section_file).expect("read note");
    let want =
        find_note(&std::fs::read(&by_patchelf).expect("read")).expect("patchelf wrote a note");
    assert!(!section.is_empty());

    let ours = append_note(&original, &section).expect("append_note");
    assert_eq!(
        find_note(&ours).as_deref(),
        Some(want.as_slice()),
        "note found by a PT_NOTE walk"
    );
    assert_untouched(&original, &ours);
    assert_eq!(
        append_note(&ours, &section),
        Err(AppendError::AlreadyPresent)
    );
    std::fs::write(&orig, &ours).expect("write result");
    let readelf = run_ok(Command::new(target.tool("readelf")).arg("-aW").arg(&orig));
    let stderr = String::from_utf8_lossy(&readelf.stderr);
    assert!(stderr.is_empty(), "readelf: {stderr}");
    // The output as written, then copies made by GNU and LLVM strip / objcopy, installed in its
    // place (llvm-objcopy re-lays out segments by its own rules).
    let keep = d.join("ours");
    std::fs::copy(&orig, &keep).expect("copy");
    let steps = [
        (None, ""),
        (Some(target.tool("strip")), "-s"),
        (Some(target.tool("objcopy")), "--strip-debug"),
        (Some(llvm("llvm-strip")), "--strip-all"),
        (Some(llvm("llvm-objcopy")), "--strip-debug"),
    ];
    for (tool, arg) in steps {
        let step = tool
            .as_deref()
            .map_or("append_note".into(), |t| format!("{t} {arg}"));
        if let Some(tool) = tool {
            let mut cmd = Command::new(&tool);
            cmd.arg(arg).arg(&keep);
            if tool.ends_with("strip") {
                cmd.arg("-o");
            }
            run_ok(cmd.arg(&orig));
        }
        let now = std::fs::read(&orig).expect("read");
        let found = find_note(&now);
        assert_eq!(
            found.as_deref(),
            Some(&want[..]),
            "{step}: note found by a PT_NOTE walk"
        );
        assert_eq!(exec(target, &prog), expected, "{step}: the program runs");
        let up = patchelf_up_to_date(&orig, &d.join("scratch"));
        assert!(up, "{step}: patchelf calls the note up to date");
    }
    let size = |p: &Path| std::fs::metadata(p).expect("stat").len();
    let sizes = (original.len() as u64, size(&by_patchelf), size(&keep));
    eprintln!(
        "append size {:<22} {linker:<5} {kind:<6?}: original {:>6}  patchelf {:>6} (+{:>6})  append_note {:>6} (+{:>4})",
        target.label(),
        sizes.0,
        sizes.1,
        sizes.1 - sizes.0,
        sizes.2,
        sizes.2 - sizes.0
    );
    sizes
}

/// Cross gcc only looks for `<triple>-ld.<name>`; a `-B` directory with `ld.lld` / `ld.mold`
/// links lets it use the host's multi-target lld and mold.
fn linker_dir(linker: &str) -> Option<tempfile::TempDir> {
    if linker != "lld" && linker != "mold" {
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let real = which::which(if linker == "lld" { "ld.lld" } else { "mold" }).ok()?;
    std::os::unix::fs::symlink(real, dir.path().join(format!("ld.{linker}"))).expect("symlink");
    Some(dir)
}

fn matrix(target: &Target, linkers: &[&str], kinds: &[Kind], extra: &[&str]) {
    let mut tools: Vec<String> = ["gcc", "objcopy", "strip", "readelf"]
        .map(|t| target.tool(t))
        .into();
    tools.extend(["llvm-strip", "llvm-objcopy"].map(llvm));
    tools.extend(
        ["patchelf".to_string()]
            .into_iter()
            .chain(target.qemu.map(str::to_string)),
    );
    if !require(&tools) {
        return;
    }
    for linker in linkers {
        let bin = match *linker {
            "bfd" => target.tool("ld.bfd"),
            "gold" => target.tool("ld.gold"),
            "lld" => "ld.lld".to_string(),
            _ => "mold".to_string(),
        };
        if !require(&[bin]) {
            continue;
        }
        let dir = if target.triple.is_some() {
            linker_dir(linker)
        } else {
            None
        };
        for &kind in kinds {
            let (orig, by_patchelf, ours) =
                check(target, linker, kind, extra, dir.as_ref().map(|d| d.path()));
            assert!(
                ours - orig < by_patchelf - orig,
                "smaller growth than patchelf"
            );
        }
    }
}

const ALL: [Kind; 3] = [Kind::Pie, Kind::NoPie, Kind::Shared];

#[test]
fn native_gnu_ld() {
    matrix(&NATIVE, &["bfd"], &ALL, &[]);
}
#[test]
fn native_gold() {
    matrix(&NATIVE, &["gold"], &ALL, &[]);
}
#[test]
fn native_lld() {
    matrix(&NATIVE, &["lld"], &ALL, &[]);
}
#[test]
fn native_mold() {
    matrix(&NATIVE, &["mold"], &ALL, &[]);
}
/// Without notes in front of them, the dynamic symbol, string and hash tables are what moves.
#[test]
fn moved_dynamic_tables() {
    let flags = ["-Wl,--build-id=none,--hash-style=sysv"];
    matrix(
        &NATIVE,
        &["bfd", "gold", "lld", "mold"],
        &[Kind::Shared],
        &flags,
    );
}
#[test]
fn cross_aarch64() {
    let t = Target::cross("aarch64-linux-gnu", "qemu-aarch64");
    matrix(
        &t,
        &["bfd", "gold", "lld", "mold"],
        &[Kind::Pie, Kind::Shared],
        &[],
    );
}
#[test]
fn cross_i686() {
    let t = Target::cross("i686-linux-gnu", "qemu-i386");
    matrix(&t, &["bfd", "lld", "mold"], &[Kind::Pie, Kind::NoPie], &[]);
}
#[test]
fn cross_armhf() {
    let t = Target::cross("arm-linux-gnueabihf", "qemu-arm");
    matrix(&t, &["bfd", "lld"], &[Kind::Pie, Kind::Shared], &[]);
}
#[test]
fn cross_s390x_big_endian() {
    // lld 14 has no s390x support.
    let t = Target::cross("s390x-linux-gnu", "qemu-s390x");
    matrix(
        &t,
        &["bfd", "gold", "mold"],
        &[Kind::Pie, Kind::NoPie, Kind::Shared],
        &[],
    );
}

/// Truncated, corrupted and unsuitable inputs get an error, never a panic.
#[test]
fn bad_input_is_an_error() {
    if !require(&["gcc".to_string()]) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let src = write(d, "main.c", MAIN_C);
    run_ok(
        Command::new("gcc")
            .arg("-c")
            .arg("-o")
            .arg(d.join("main.o"))
            .arg(&src),
    );
    let obj = std::fs::read(d.join("main.o")).expect("read");
    let note = [
        6u32.to_le_bytes(),
        4u32.to_le_bytes(),
        0x63a8_6cb6u32.to_le_bytes(),
    ]
    .concat();
    let note = [note, b"NixOS\0\0\0".to_vec(), b"a\0\0\0".to_vec()].concat();
    assert_eq!(append_note(&obj, &note), Err(AppendError::Relocatable));
    run_ok(
        Command::new("gcc")
            .arg("-o")
            .arg(d.join("prog"))
            .arg(d.join("main.o"))
            .arg("-Wl,--unresolved-symbols=ignore-all"),
    );
    let prog = std::fs::read(d.join("prog")).expect("read");
    assert!(
        append_note(&prog, &note).is_ok(),
        "the intact program is accepted"
    );
    assert!(matches!(
        append_note(&prog, &note[..6]),
        Err(AppendError::BadSection(_))
    ));
    assert_eq!(
        append_note(b"#!/bin/sh\necho hi\n", &note),
        Err(AppendError::NotElf)
    );
    for len in [
        0,
        1,
        4,
        16,
        20,
        52,
        63,
        64,
        100,
        0x200,
        prog.len() / 2,
        prog.len() - 1,
    ] {
        assert!(
            append_note(&prog[..len], &note).is_err(),
            "truncated to {len}"
        );
    }
    // Deterministic corruption of the headers and tables at both ends of the file (ELF and
    // program headers, dynamic tables / section headers); any result but a panic is fine.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let (mut ok, mut err) = (0, 0);
    for round in 0..6000 {
        let mut bad = prog.clone();
        for _ in 0..3 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let window = 0x1000.min(bad.len());
            let at = (state % window as u64) as usize;
            let at = if round % 2 == 0 {
                at
            } else {
                bad.len() - 1 - at
            };
            bad[at] = (state >> 32) as u8;
        }
        match append_note(&bad, &note) {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    eprintln!("corrupted inputs: {ok} accepted, {err} rejected");
    assert!(err > 0 && ok > 0, "the corruption reaches both outcomes");
}
