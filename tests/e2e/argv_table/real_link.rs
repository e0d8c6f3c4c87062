//! Differential end-to-end check: run the real driver or linker on an argv, then compare what
//! [`plan`](ldnote::argv::plan) predicted (output path, run path, dtag kind, shared/pie, skip)
//! with the ELF file it actually wrote (read with the `object` crate). Linked executables are run.

use super::{have, plan_checked};
use ldnote::argv::{LinkPlan, SkipReason, ToolKind};
use object::elf::{FileHeader64, DT_RPATH, DT_RUNPATH, ET_DYN, ET_REL, PT_DYNAMIC, PT_INTERP};
use object::read::elf::{Dyn, FileHeader, ProgramHeader};
use object::Endianness;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::process::Command;

/// What the linker wrote, as far as the plan predicts it.
#[derive(Debug)]
struct Written {
    e_type: u16,
    interp: bool,
    dynamic: bool,
    runpath: Option<Vec<u8>>,
    rpath: Option<Vec<u8>>,
}

/// `None` when the file is not a 64-bit ELF file.
fn read_elf(path: &Path) -> Option<Written> {
    let data = std::fs::read(path).ok()?;
    let data = data.as_slice();
    let header = FileHeader64::<Endianness>::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let phdrs = header.program_headers(endian, data).ok()?;
    let has = |t| phdrs.iter().any(|p| p.p_type(endian) == t);
    let mut out = Written {
        e_type: header.e_type(endian),
        interp: has(PT_INTERP),
        dynamic: has(PT_DYNAMIC),
        runpath: None,
        rpath: None,
    };
    let sections = header.sections(endian, data).ok()?;
    if let Some((dyns, link)) = sections.dynamic(endian, data).ok()? {
        let strings = sections.strings(endian, data, link).ok()?;
        for d in dyns {
            let value = || d.string(endian, strings).ok().map(<[u8]>::to_vec);
            match d.tag32(endian) {
                Some(DT_RUNPATH) => out.runpath = value(),
                Some(DT_RPATH) => out.rpath = value(),
                _ => {}
            }
        }
    }
    Some(out)
}

/// Files the cases use: C sources, objects, a directory and a symbols-only object.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let w = |name: &str, body: &str| std::fs::write(d.join(name), body).expect("write");
    w("main.c", "int main(void) { return 0; }\n");
    w("lib.c", "int lib_fn(void) { return 1; }\n");
    w("syms.c", "int sym_only = 1;\n");
    w("start.c", "void _start(void) {}\n");
    // Quoted with a space, nested, with a backslash escape.
    w(
        "args.rsp",
        "main.c -o 'out 3' \"-Wl,-rpath,/sp ace\" @nested.rsp\n",
    );
    w("nested.rsp", "-Wl,-rpath,/n\\\\b\n");
    std::fs::create_dir(d.join("libdir")).expect("mkdir");
    for (src, obj) in [
        ("syms.c", "syms.o"),
        ("start.c", "start.o"),
        ("main.c", "main.o"),
    ] {
        let ok = Command::new("gcc")
            .args(["-c", "-fPIC", src, "-o", obj])
            .current_dir(d)
            .status()
            .expect("run gcc -c")
            .success();
        assert!(ok, "gcc -c {src}");
    }
    dir
}

/// Run `tool args` in `dir` and check the result against the plan for the same argv.
fn run_and_compare(tool: &str, kind: ToolKind, args: &[&str], dir: &Path) {
    let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
    let plan = plan_checked(kind, &argv, dir);
    let out = Command::new(tool)
        .args(&argv)
        .current_dir(dir)
        .output()
        .expect("run tool");
    let what = format!("{tool} {args:?}");
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let output = dir.join(&plan.output);
    match plan.skip {
        None => check_linked(&what, &plan, &output),
        Some(reason) => check_skipped(&what, reason, &output, dir),
    }
}

fn check_linked(what: &str, plan: &LinkPlan, output: &Path) {
    let elf = read_elf(output).unwrap_or_else(|| panic!("{what}: no ELF at {}", output.display()));
    assert!(
        elf.dynamic,
        "{what}: plan says dynamic, file has no PT_DYNAMIC: {elf:?}"
    );
    // The linker joins every run-path argument with ':' in command-line order.
    let joined = plan
        .rpaths
        .iter()
        .map(|r| r.as_bytes())
        .collect::<Vec<_>>()
        .join(&b':');
    let expected = (!joined.is_empty()).then_some(joined);
    match plan.new_dtags {
        Some(false) => assert_eq!((&elf.rpath, &elf.runpath), (&expected, &None), "{what}"),
        Some(true) => assert_eq!((&elf.runpath, &elf.rpath), (&expected, &None), "{what}"),
        None => assert_eq!(
            elf.runpath.clone().or(elf.rpath.clone()),
            expected,
            "{what}"
        ),
    }
    if plan.shared {
        // (gold keeps a `-dynamic-linker` PT_INTERP even in a shared object.)
        assert_eq!(elf.e_type, ET_DYN, "{what}: not a shared object: {elf:?}");
    }
    if plan.pie == Some(true) && !plan.static_pie {
        assert!(
            elf.e_type == ET_DYN && elf.interp,
            "{what}: not a PIE: {elf:?}"
        );
    }
    if plan.static_pie {
        assert!(
            elf.e_type == ET_DYN && !elf.interp,
            "{what}: not static-pie: {elf:?}"
        );
    }
}

fn check_skipped(what: &str, reason: SkipReason, output: &Path, dir: &Path) {
    match reason {
        SkipReason::CompileOnly | SkipReason::Relocatable => {
            let elf = read_elf(output).unwrap_or_else(|| panic!("{what}: no object written"));
            assert_eq!(elf.e_type, ET_REL, "{what}");
        }
        SkipReason::Static => {
            let elf = read_elf(output).unwrap_or_else(|| panic!("{what}: no file written"));
            assert!(
                !elf.dynamic && !elf.interp,
                "{what}: static output is dynamic: {elf:?}"
            );
        }
        SkipReason::NonElfOutput => {
            assert!(output.exists(), "{what}: no output");
            assert!(read_elf(output).is_none(), "{what}: output is ELF");
        }
        SkipReason::NotAFile => assert!(!output.is_file(), "{what}"),
        // GNU ld refuses an ambiguous abbreviation: nothing is written.
        SkipReason::Query | SkipReason::NoInputs | SkipReason::AmbiguousOutput => {
            assert!(!dir.join("a.out").exists(), "{what}: something was linked")
        }
    }
}

/// Lines gcc and clang accept; each link leaves an ELF that matches the plan.
#[test]
fn drivers_write_what_the_plan_predicts() {
    let dir = workdir();
    let d = dir.path();
    let gcc_cases: &[&[&str]] = &[
        &[
            "main.c",
            "-o",
            "d1",
            "-Wl,-rpath,/a,-rpath,/b",
            "-Xlinker",
            "-rpath",
            "-Xlinker",
            "/c",
            "-Wl,-R,libdir",
            "-Wl,-R,syms.o",
            "-Wl,--enable-new-dtags",
        ],
        &["main.c", "-od2", "-Wl,--disable-new-dtags", "-Wl,-rpath=/x"],
        &["@args.rsp"],
        &[
            "-shared",
            "-fPIC",
            "lib.c",
            "-o",
            "libx.so",
            "-Wl,-soname,libx.so.1",
            "-Wl,-rpath",
            "-Wl,$ORIGIN",
        ],
        &[
            "main.o",
            "--output=d5",
            "-Wl,-rpath",
            "-Wl,/p1:/p2",
            "-Wl,-o,d5b",
        ],
        &["-v", "main.c", "-o", "d6", "-L", "libdir", "-l", "m"],
        &["-static-pie", "main.c", "-o", "d7"],
        &["-no-pie", "main.c", "-o", "d8", "-Wl,--rpath=/np"],
        &["-c", "main.c", "-o", "s1.o"],
        &["-r", "main.o", "syms.o", "-o", "s2.o"],
        &["-static", "main.c", "-o", "s3"],
        &["main.c", "-o", "/dev/null"],
        &["--version"],
        &["-print-search-dirs"],
    ];
    if have("gcc") {
        for args in gcc_cases {
            run_and_compare("gcc", ToolKind::Driver, args, d);
        }
        // The executables run.
        for exe in ["d1", "d2", "out 3", "d5b", "d6", "d7", "d8"] {
            let ok = Command::new(d.join(exe)).status().expect("run").success();
            assert!(ok, "{exe} did not run");
        }
    }
    if have("clang") && have("ld.lld") {
        let clang_cases: &[&[&str]] = &[
            &[
                "-fuse-ld=lld",
                "main.c",
                "-o",
                "c1",
                "-rpath",
                "/cl",
                "-Wl,-rpath,/c2",
                "--sysroot=/",
            ],
            &[
                "main.c",
                "-o",
                "c2",
                "-Wl,-R,libdir",
                "-Wl,-rpath,/q",
                "-Wl,--disable-new-dtags",
            ],
            &[
                "-fuse-ld=lld",
                "-shared",
                "-fPIC",
                "lib.c",
                "-o",
                "libc1.so",
                "-Xlinker",
                "--rpath=/l",
            ],
        ];
        for args in clang_cases {
            run_and_compare("clang", ToolKind::Driver, args, d);
        }
    }
}

/// The same linker line through GNU ld, gold, lld and mold.
#[test]
fn linkers_write_what_the_plan_predicts() {
    let dir = workdir();
    let d = dir.path();
    let common = [
        "start.o",
        "-L/usr/lib/x86_64-linux-gnu",
        "-lc",
        "-dynamic-linker",
        "/lib64/ld-linux-x86-64.so.2",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        extra
            .iter()
            .copied()
            .chain(common.iter().copied())
            .collect()
    };
    let all = [
        with(&[
            "-o",
            "l1",
            "-rpath=/x",
            "--rpath",
            "/y",
            "-R",
            "libdir",
            "--enable-new-dtags",
        ]),
        with(&[
            "--output=l2",
            "-rpath",
            "/a:/b",
            "--disable-new-dtags",
            "-z",
            "now",
            "-m",
            "elf_x86_64",
        ]),
        with(&[
            "-shared",
            "-o",
            "libl3.so",
            "-soname",
            "libl3.so.1",
            "-rpath",
            "$ORIGIN",
        ]),
        with(&["-pie", "-o", "l4", "-rpath", "/pie"]),
        vec!["-r", "start.o", "-o", "l5.o"],
        vec!["--oformat=binary", "start.o", "-o", "l6.bin"],
        vec!["--version"],
        vec!["-v"],
    ];
    for linker in ["ld", "ld.gold", "ld.lld", "ld.mold"] {
        if !have(linker) {
            continue;
        }
        for args in &all {
            // mold and gold cannot write raw binary.
            if args[0] == "--oformat=binary" && matches!(linker, "ld.mold" | "ld.gold") {
                continue;
            }
            run_and_compare(linker, ToolKind::Linker, args, d);
        }
    }
    if have("ld") {
        // GNU-only spellings: `-omagic` is `-o magic`; `-R file` is --just-symbols, not a run path.
        let gnu = with(&["-omagic", "-R", "syms.o", "-Rlibdir"]);
        run_and_compare("ld", ToolKind::Linker, &gnu, d);
        assert!(d.join("magic").is_file());
    }
}
