//! GNU ld accepts any unambiguous abbreviation of a long option (`getopt_long`), in two passes
//! (`--ou=x` is `--out-implib`, `--outpu=x` is `--output`). Each case runs the real `gcc`/`ld` and
//! compares the file it wrote with the output the plan predicts; an ambiguous spelling that
//! might be the output is never noted; and a file the linker did not write in this run is never
//! noted, whatever the analysis thought.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

use crate::common::*;
use crate::require;
use ldnote::argv::{self, SkipReason, ToolKind};

/// `gcc -o decoy main.o -Wl,ARG`: which file did ld write, and what does the plan say?
#[test]
fn abbreviations_match_the_real_linker() {
    require!("gcc");
    let l = Layout::new();
    let main = l.object("main", MAIN_C, &[]);
    // (linker argument, file ld writes as the program, or None when ld fails)
    let cases: &[(&str, Option<&str>)] = &[
        ("--outpu=r1", Some("r1")),
        ("--outp=r2", Some("r2")),
        ("--output=r3", Some("r3")),
        // `--out`/`--ou` are `--out-implib` (first pass), the program stays `decoy`.
        ("--out=imp", Some("decoy")),
        ("--ou=imp", Some("decoy")),
        ("-ou=imp", Some("decoy")),
        // One dash: `-o` with the rest as its value (`--output` needs two dashes).
        ("-outpu=r5", Some("utpu=r5")),
        ("-omagic", Some("magic")),
        // `-M=x` is `-Map=x` (unique prefix): the program stays `decoy`.
        ("-M=map", Some("decoy")),
        ("--Ma=map", Some("decoy")),
        ("--library-p=/tmp", Some("decoy")),
        ("--sysr=/", Some("decoy")),
    ];
    for (arg, wrote) in cases {
        let dir = l.mkdir(format!(
            "case{}",
            arg.len() * 131 + arg.as_bytes()[2] as usize
        ));
        for e in std::fs::read_dir(&dir).expect("ls").flatten() {
            std::fs::remove_file(e.path()).expect("clean");
        }
        let args: Vec<OsString> = vec![
            "-o".into(),
            "decoy".into(),
            main.clone().into(),
            format!("-Wl,{arg}").into(),
        ];
        let plan = argv::plan(ToolKind::Driver, &args, &dir).expect("plan");
        let o = run(Command::new("gcc").args(&args).current_dir(&dir));
        match wrote {
            Some(w) => {
                assert!(o.status.success(), "{arg}: {}", stderr_of(&o));
                assert!(
                    dir.join(w).is_file(),
                    "{arg}: ld did not write {w}: {:?}",
                    std::fs::read_dir(&dir).map(|d| d.count())
                );
                assert_eq!(plan.skip, None, "{arg}");
                assert_eq!(plan.output, OsString::from(w), "{arg}: plan output");
            }
            None => assert!(!o.status.success(), "{arg}: ld accepted it"),
        }
    }
}

/// `--o=x` could be `--output` or `--omagic` or `--oformat`: GNU ld refuses it; the plan does not
/// pretend to know the output, and `ldnote link` warns and passes the linker through.
#[test]
fn ambiguous_abbreviation_of_the_output_is_never_noted() {
    require!("gcc");
    let l = Layout::new();
    let main = l.object("main", MAIN_C, &[]);
    for arg in ["--o=real", "--o", "-Wl,--o=real"] {
        let args: Vec<OsString> = if arg.starts_with("-Wl") {
            vec!["-o".into(), "decoy".into(), main.clone().into(), arg.into()]
        } else {
            vec![main.clone().into(), arg.into(), "real".into()]
        };
        let kind = if arg.starts_with("-Wl") {
            ToolKind::Driver
        } else {
            ToolKind::Linker
        };
        let plan = argv::plan(kind, &args, l.root()).expect("plan");
        assert_eq!(plan.skip, Some(SkipReason::AmbiguousOutput), "{arg}");
    }
    let o = run(ldnote_cmd()
        .args(["link", "--", "gcc", "-o", "decoy"])
        .arg(&main)
        .arg("-Wl,--o=real")
        .current_dir(l.root()));
    assert!(!o.status.success(), "GNU ld accepted --o");
    assert!(
        stderr_of(&o).contains("may name the output"),
        "{}",
        stderr_of(&o)
    );
}

/// A library `d1/liba.so` and a main object that calls it.
fn lib_and_main(l: &Layout) -> (PathBuf, PathBuf) {
    let lib = l.lib_in("d1", "liba.so");
    let main = l.object(
        "main",
        "int ldnote_test_lib_fn(int);\nint main(void) { return ldnote_test_lib_fn(1) - 2; }\n",
        &[],
    );
    (lib, main)
}

/// The reported reproduction: `-o decoy ... -Wl,--outpu=real` with a stale, unnoted `decoy`
/// from an earlier link. ld writes `real`; ldnote notes `real` and leaves `decoy` alone.
#[test]
fn abbreviated_output_is_the_file_noted_and_the_decoy_is_untouched() {
    require!("gcc");
    let l = Layout::new();
    let (lib, main) = lib_and_main(&l);
    let line = |out: &str| -> Vec<OsString> {
        vec![
            "-o".into(),
            out.into(),
            main.clone().into(),
            lib.clone().into(),
            "-Wl,--enable-new-dtags".into(),
            cat(&[b"-Wl,-rpath,", &l.pb("d1")]),
        ]
    };
    run_ok(
        Command::new("gcc")
            .args(line("decoy"))
            .current_dir(l.root()),
    );
    let decoy = std::fs::read(l.p("decoy")).expect("decoy");
    let mut args = line("decoy");
    args.push("-Wl,--outpu=real".into());
    let o = run_ok(
        ldnote_cmd()
            .args(["link", "--"])
            .arg("gcc")
            .args(&args)
            .current_dir(l.root()),
    );
    assert_eq!(
        std::fs::read(l.p("decoy")).expect("decoy"),
        decoy,
        "the decoy was rewritten: {}",
        stderr_of(&o)
    );
    run_ok(ldnote_cmd().arg("check").arg(l.p("real")));
    run_ok(&mut Command::new(l.p("real")));
}

/// A "linker" that exits 0 without writing the output it was given: the stale file of that name
/// is not noted (it is the same inode with the same times as before the link).
#[test]
fn a_file_the_linker_did_not_write_is_never_noted() {
    require!("gcc");
    let l = Layout::new();
    let (lib, main) = lib_and_main(&l);
    run_ok(
        Command::new("gcc")
            .arg("-o")
            .arg(l.p("stale"))
            .arg(&main)
            .arg(&lib)
            .arg("-Wl,--enable-new-dtags")
            .arg(cat(&[b"-Wl,-rpath,", &l.pb("d1")])),
    );
    let before = std::fs::read(l.p("stale")).expect("stale");
    let fake = l.write("tools/gcc", b"#!/bin/sh\nexit 0\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for strict in [false, true] {
        let mut c = ldnote_link(strict);
        let o = run(c
            .arg("--")
            .arg(&fake)
            .args(["-o", "stale"])
            .arg(&main)
            .arg(&lib)
            .current_dir(l.root()));
        assert_eq!(
            o.status.code(),
            Some(i32::from(strict)),
            "{}",
            stderr_of(&o)
        );
        assert!(
            stderr_of(&o).contains("did not write it"),
            "{}",
            stderr_of(&o)
        );
        assert_eq!(std::fs::read(l.p("stale")).expect("stale"), before);
    }
}
