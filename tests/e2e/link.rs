//! End to end through the real linkers (GNU ld, gold, lld, mold), each reached four ways:
//! `ldnote link -- gcc -fuse-ld=X`, `ldnote link -- <linker> <ld args>` (the exact command line
//! gcc's collect2 would run), and through multicall symlinks first on PATH (`gcc` -> nested
//! `ld.X`, and `ld.X` called directly). Every output must run, carry the note where the loader
//! looks (independent walker), carry exactly patchelf's descriptor for an un-noted twin, survive
//! `strip`/`strip -s`/`objcopy --strip-debug`, be clean for `readelf`, pass `ldnote check`, and be
//! "already up to date" for patchelf.
//!
//! Each test prints one `E2E-REPORT` line (size vs the bare link, whether the post-link fallback
//! ran); `cargo test --release --test e2e link:: -- --nocapture | grep E2E-REPORT` collects them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

const MAIN: &str = r#"#include <stdio.h>
int a_value(void);
const char *b_name(void);
int c_mul(int);
int main(void) { printf("a=%d b=%s c=%d\n", a_value(), b_name(), c_mul(5)); return 0; }
"#;
const EXPECTED: &str = "a=11 b=bee c=15\n";

/// Three libraries in three package-like directories and the program's object.
struct Fixture {
    l: Layout,
    main_o: PathBuf,
    dirs: [PathBuf; 3],
}

fn fixture() -> Fixture {
    let l = Layout::new();
    let libs = [
        (
            "pkgs/a/lib",
            "liba.so.1",
            "liba.so",
            "int a_value(void) { return 11; }\n",
        ),
        (
            "pkgs/b/lib",
            "libb.so",
            "libb.so",
            "const char *b_name(void) { return \"bee\"; }\n",
        ),
        (
            "pkgs/c/lib64",
            "libthree.so.2",
            "libthree.so",
            "int c_mul(int x) { return 3 * x; }\n",
        ),
    ];
    for (dir, soname, devname, src) in libs {
        let o = l.object(soname, src, &["-fPIC"]);
        let out = l.mkdir(dir).join(soname);
        run_ok(
            Command::new("gcc")
                .args(["-shared", "-o"])
                .arg(&out)
                .arg(&o)
                .arg(format!("-Wl,-soname,{soname}")),
        );
        if devname != soname {
            l.symlink(soname, format!("{dir}/{devname}"));
        }
    }
    let main_o = l.object("main", MAIN, &[]);
    let dirs = [l.p("pkgs/a/lib"), l.p("pkgs/b/lib"), l.p("pkgs/c/lib64")];
    Fixture { l, main_o, dirs }
}

impl Fixture {
    fn runpath(&self) -> OsString {
        cat(&[
            bytes(&self.dirs[0]),
            b":",
            bytes(&self.dirs[1]),
            b":",
            bytes(&self.dirs[2]),
        ])
    }

    /// gcc arguments (after `gcc`) linking the program with linker `ld` to `out`.
    fn gcc_args(&self, ld: &str, out: &Path) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec![format!("-fuse-ld={ld}").into(), "-o".into(), out.into()];
        a.push(self.main_o.clone().into());
        for d in &self.dirs {
            a.push(cat(&[b"-L", bytes(d)]));
        }
        a.extend(
            [
                "-la",
                "-lb",
                "-lthree",
                "-Wl,--enable-new-dtags",
                "-Xlinker",
                "-rpath",
                "-Xlinker",
            ]
            .map(OsString::from),
        );
        a.push(self.runpath());
        a
    }

    /// The linker command line collect2 would run (from `gcc -###`), minus the LTO plugin
    /// options (the inputs are plain objects) and `-fuse-ld=`, which collect2 consumes.
    fn ld_args(&self, ld: &str, out: &Path) -> Vec<OsString> {
        let o = run_ok(Command::new("gcc").arg("-###").args(self.gcc_args(ld, out)));
        let err = stderr_of(&o);
        let line = err
            .lines()
            .find(|l| {
                l.trim_start()
                    .split(' ')
                    .next()
                    .is_some_and(|c| c.ends_with("/collect2"))
            })
            .unwrap_or_else(|| panic!("no collect2 line in gcc -### output:\n{err}"));
        let words = shell_words::split(line).expect("parse collect2 line");
        let mut out_args = vec![];
        let mut it = words.into_iter().skip(1);
        while let Some(w) = it.next() {
            if w == "-plugin" {
                it.next();
            } else if w.starts_with("-plugin-opt") || w.starts_with("-fuse-ld=") {
            } else {
                out_args.push(OsString::from(w));
            }
        }
        out_args
    }
}

/// The real linker binary for a `-fuse-ld=` name.
fn linker_program(ld: &str) -> &'static str {
    match ld {
        "bfd" => "ld.bfd",
        "gold" => "ld.gold",
        "lld" => "ld.lld",
        "mold" => "ld.mold",
        _ => unreachable!(),
    }
}

/// A directory of multicall symlinks to the ldnote binary.
fn multicall_dir(l: &Layout) -> PathBuf {
    let d = l.mkdir("multicall");
    for name in ["gcc", "cc", "ld", "ld.bfd", "ld.gold", "ld.lld", "ld.mold"] {
        std::os::unix::fs::symlink(ldnote(), d.join(name)).expect("symlink");
    }
    d
}

fn path_with(first: &Path) -> OsString {
    let mut p = first.as_os_str().to_owned();
    p.push(":");
    p.push(std::env::var_os("PATH").unwrap_or_default());
    p
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// `ldnote link -v -- gcc -fuse-ld=X ...`
    Gcc,
    /// `ldnote link -v -- ld.X <collect2's ld arguments>`
    Ld,
    /// `gcc -fuse-ld=X ...` with multicall `gcc` and `ld.X` first on PATH (nested wrappers).
    MulticallGcc,
    /// `ld.X <ld arguments>` through the multicall symlink.
    MulticallLd,
    /// `ldnote link -- gcc -fuse-ld=X` with a distribution-style hardened, size-optimised link:
    /// `--gc-sections`, `-z now`, `-z relro`, sha1 build id, `-s`.
    GccHardened,
    /// `ldnote link -v -- clang -fuse-ld=X ...`
    Clang,
}

const HARDENED: [&str; 5] = [
    "-Wl,--gc-sections",
    "-Wl,-z,now",
    "-Wl,-z,relro",
    "-Wl,--build-id=sha1",
    "-s",
];

fn e2e(ld: &str, mode: Mode) {
    for t in [
        "gcc",
        "patchelf",
        "strip",
        "objcopy",
        "readelf",
        linker_program(ld),
    ] {
        if require_tool(t).is_none() {
            return;
        }
    }
    let f = fixture();
    let l = &f.l;
    let out = l.p("bin/prog");
    let bare = l.p("bin/prog-bare");
    std::fs::create_dir_all(l.p("bin")).expect("mkdir");

    // The un-noted twin, linked the same way without ldnote.
    match mode {
        Mode::Gcc | Mode::MulticallGcc => run_ok(Command::new("gcc").args(f.gcc_args(ld, &bare))),
        Mode::Clang => run_ok(Command::new("clang").args(f.gcc_args(ld, &bare))),
        Mode::GccHardened => run_ok(
            Command::new("gcc")
                .args(f.gcc_args(ld, &bare))
                .args(HARDENED),
        ),
        Mode::Ld | Mode::MulticallLd => {
            run_ok(Command::new(linker_program(ld)).args(f.ld_args(ld, &bare)))
        }
    };
    assert!(note_desc(&bare).is_none());

    let o = match mode {
        Mode::Gcc => run(ldnote_cmd()
            .args(["link", "-v", "--", "gcc"])
            .args(f.gcc_args(ld, &out))),
        Mode::Clang => run(ldnote_cmd()
            .args(["link", "-v", "--", "clang"])
            .args(f.gcc_args(ld, &out))),
        Mode::GccHardened => run(ldnote_cmd()
            .args(["link", "-v", "--", "gcc"])
            .args(f.gcc_args(ld, &out))
            .args(HARDENED)),
        Mode::Ld => run(ldnote_cmd()
            .args(["link", "-v", "--", linker_program(ld)])
            .args(f.ld_args(ld, &out))),
        Mode::MulticallGcc => {
            let mc = multicall_dir(l);
            run(Command::new("gcc")
                .env("PATH", path_with(&mc))
                .env("LDNOTE_LOG", "1")
                .args(f.gcc_args(ld, &out)))
        }
        Mode::MulticallLd => {
            let mc = multicall_dir(l);
            let name = if ld == "bfd" {
                "ld"
            } else {
                linker_program(ld)
            };
            run(Command::new(mc.join(name))
                .env("PATH", path_with(&mc))
                .env("LDNOTE_LOG", "1")
                .args(f.ld_args(ld, &out)))
        }
    };
    let log = stderr_of(&o);
    assert!(
        o.status.success(),
        "{ld} {mode:?}: link failed ({}):\n{log}",
        o.status
    );
    if let Mode::MulticallGcc | Mode::MulticallLd = mode {
        // The trace proves the wrapper really ran (not the real tool found first on PATH).
        assert!(
            log.contains("ldnote"),
            "{ld} {mode:?}: no ldnote trace, was the wrapper bypassed?\n{log}"
        );
    }

    // It runs and prints what the libraries compute.
    let r = run_ok(&mut Command::new(&out));
    assert_eq!(stdout_of(&r), EXPECTED);

    // The loader finds the note, and it is exactly patchelf's for the twin.
    let desc = note_desc(&out)
        .unwrap_or_else(|| panic!("{ld} {mode:?}: no note found by the walk\n{log}"));
    let twin = copy_as(&bare, "prog-bare-patchelf");
    run_ok(
        Command::new("patchelf")
            .arg("--build-resolution-cache")
            .arg(&twin),
    );
    let want = note_desc(&twin).expect("patchelf note on the twin");
    assert_eq!(
        desc.escape_ascii().to_string(),
        want.escape_ascii().to_string(),
        "{ld} {mode:?}: ldnote\n{}\npatchelf\n{}",
        pretty_desc(Some(&desc)),
        pretty_desc(Some(&want))
    );
    for (i, d) in f.dirs.iter().enumerate() {
        let so = ["liba.so.1", "libb.so", "libthree.so.2"][i];
        let e = [b"=", bytes(d), b"/", so.as_bytes()].concat();
        assert!(
            desc.windows(e.len()).any(|w| w == e),
            "missing {}",
            e.escape_ascii()
        );
    }

    // Stripped copies keep it and still run.
    let strips: [(&str, Vec<&str>); 3] = [
        ("strip", vec!["-o"]),
        ("strip", vec!["-s", "-o"]),
        ("objcopy", vec!["--strip-debug"]),
    ];
    for (i, (tool, args)) in strips.iter().enumerate() {
        let copy = l.p(format!("bin/prog-stripped-{i}"));
        let mut c = Command::new(tool);
        c.args(args);
        if *tool == "objcopy" {
            c.arg(&out).arg(&copy);
        } else {
            c.arg(&copy).arg(&out);
        }
        run_ok(&mut c);
        assert_eq!(
            note_desc(&copy).as_deref(),
            Some(&desc[..]),
            "{tool} {args:?} lost the note"
        );
        assert_eq!(stdout_of(&run_ok(&mut Command::new(&copy))), EXPECTED);
    }

    // readelf is silent on stderr (no warnings about the layout).
    let r = run(Command::new("readelf").args(["-a", "-W"]).arg(&out));
    assert!(
        r.status.success() && r.stderr.is_empty(),
        "readelf -a -W: {}",
        stderr_of(&r)
    );

    // ldnote check agrees.
    let r = run(ldnote_cmd().arg("check").arg(&out));
    assert!(
        r.status.success(),
        "ldnote check: {}{}",
        stdout_of(&r),
        stderr_of(&r)
    );

    // patchelf: already up to date, file unchanged. In a PT_NOTE walked in steps of 8 (mold)
    // the note is laid out for that walk, which patchelf, reading the section in steps of 4,
    // does not parse: it refuses to add a second note, and also leaves the file unchanged.
    let before = std::fs::read(&out).expect("read");
    let eight = find_note(&out).is_some_and(|n| n.segment_align == 8);
    let r = run(Command::new("patchelf")
        .args(["--build-resolution-cache", "--debug"])
        .arg(&out));
    let said = format!("{}{}", stdout_of(&r), stderr_of(&r));
    if eight {
        assert!(said.contains("already present"), "patchelf said:\n{said}");
    } else {
        assert!(r.status.success(), "patchelf: {}", stderr_of(&r));
        assert!(
            said.contains("already up to date"),
            "patchelf said:\n{said}"
        );
    }
    assert!(
        std::fs::read(&out).expect("read") == before,
        "patchelf rewrote the file"
    );

    let size = before.len();
    let bare_size = std::fs::metadata(&bare).expect("stat").len() as usize;
    let twin_size = std::fs::metadata(&twin).expect("stat").len() as usize;
    let fallback = log.contains("fallback");
    // Every linker, mold included (one 8-aligned PT_NOTE), gets the note in place.
    assert!(
        !fallback,
        "{ld} {mode:?}: the post-link fallback ran\n{log}"
    );
    println!(
        "E2E-REPORT linker={ld} mode={mode:?} bare={bare_size} ldnote={size} (+{}) patchelf={twin_size} (+{}) fallback={}",
        size as i64 - bare_size as i64,
        twin_size as i64 - bare_size as i64,
        if fallback { "yes" } else { "no" }
    );
}

macro_rules! e2e_tests {
    ($($name:ident: $ld:literal, $mode:ident;)*) => {
        $(#[test] fn $name() { e2e($ld, Mode::$mode); })*
    };
}

e2e_tests! {
    bfd_via_gcc: "bfd", Gcc;
    bfd_direct: "bfd", Ld;
    bfd_multicall_gcc: "bfd", MulticallGcc;
    bfd_multicall_ld: "bfd", MulticallLd;
    gold_via_gcc: "gold", Gcc;
    gold_direct: "gold", Ld;
    gold_multicall_gcc: "gold", MulticallGcc;
    gold_multicall_ld: "gold", MulticallLd;
    lld_via_gcc: "lld", Gcc;
    lld_direct: "lld", Ld;
    lld_multicall_gcc: "lld", MulticallGcc;
    lld_multicall_ld: "lld", MulticallLd;
    mold_via_gcc: "mold", Gcc;
    mold_direct: "mold", Ld;
    mold_multicall_gcc: "mold", MulticallGcc;
    mold_multicall_ld: "mold", MulticallLd;
    bfd_hardened: "bfd", GccHardened;
    gold_hardened: "gold", GccHardened;
    lld_hardened: "lld", GccHardened;
    mold_hardened: "mold", GccHardened;
    bfd_via_clang: "bfd", Clang;
    lld_via_clang: "lld", Clang;
}

#[test]
fn disabled_is_pure_pass_through() {
    // LDNOTE_DISABLE=1: the output is byte for byte the bare link's.
    if require_tool("gcc").is_none() {
        return;
    }
    let f = fixture();
    let bare = f.l.p("bare");
    let out = f.l.p("disabled");
    run_ok(Command::new("gcc").args(f.gcc_args("bfd", &bare)));
    run_ok(
        ldnote_cmd()
            .env("LDNOTE_DISABLE", "1")
            .args(["link", "--", "gcc"])
            .args(f.gcc_args("bfd", &out)),
    );
    assert!(std::fs::read(&bare).expect("read") == std::fs::read(&out).expect("read"));
}

/// Check a noted output: it runs, and its note is exactly patchelf's on the bare twin.
fn assert_noted_like_patchelf(out: &Path, bare: &Path) {
    assert_eq!(stdout_of(&run_ok(&mut Command::new(out))), EXPECTED);
    let twin = copy_as(bare, "twin-for-patchelf");
    run_ok(
        Command::new("patchelf")
            .arg("--build-resolution-cache")
            .arg(&twin),
    );
    assert_eq!(
        note_desc(out).map(|d| d.escape_ascii().to_string()),
        note_desc(&twin).map(|d| d.escape_ascii().to_string()),
        "{}",
        out.display()
    );
}

#[test]
fn response_file_and_default_output() {
    // The output named inside a gcc response file, and no -o at all (a.out in the cwd).
    if require_tool("patchelf").is_none() {
        return;
    }
    let f = fixture();
    let l = &f.l;
    let bare = l.p("bin/bare");
    std::fs::create_dir_all(l.p("bin")).expect("mkdir");
    run_ok(Command::new("gcc").args(f.gcc_args("bfd", &bare)));

    let out = l.p("bin/from-rsp");
    let quoted: Vec<String> = f
        .gcc_args("bfd", &out)
        .iter()
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let rsp = l.write("args.rsp", quoted.join("\n").as_bytes());
    let o = run(ldnote_cmd()
        .args(["link", "--", "gcc"])
        .arg(cat(&[b"@", bytes(&rsp)])));
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert_noted_like_patchelf(&out, &bare);

    let cwd = l.mkdir("work");
    let args: Vec<OsString> = f.gcc_args("bfd", Path::new("unused"))[3..].to_vec();
    let o = run(ldnote_cmd()
        .args(["link", "--", "gcc", "-fuse-ld=bfd"])
        .args(&args)
        .current_dir(&cwd));
    assert!(o.status.success(), "{}", stderr_of(&o));
    assert_noted_like_patchelf(&cwd.join("a.out"), &bare);
}

/// A shared library noted at link time by each linker: its note covers its own dependencies,
/// found through its own RUNPATH when a program (which knows only the library's dir) loads it.
fn shared_lib_e2e(ld: &str) {
    for t in ["patchelf", linker_program(ld)] {
        if require_tool(t).is_none() {
            return;
        }
    }
    let f = fixture();
    let l = &f.l;
    let mid_o = l.object(
        "mid",
        "#include <stdio.h>\nint a_value(void); const char *b_name(void); int c_mul(int);\n\
         void mid(void) { printf(\"a=%d b=%s c=%d\\n\", a_value(), b_name(), c_mul(5)); }\n",
        &["-fPIC"],
    );
    let mut args = f.gcc_args(ld, Path::new("placeholder"));
    args[3] = mid_o.into();
    let mid_dir = l.mkdir("pkgs/mid/lib");
    let build = |out: &Path, with_ldnote: bool| {
        let mut a = args.clone();
        a[2] = out.into();
        a.extend(["-shared", "-Wl,-soname,libmid.so"].map(OsString::from));
        let o = if with_ldnote {
            run(ldnote_cmd().args(["link", "-v", "--", "gcc"]).args(&a))
        } else {
            run(Command::new("gcc").args(&a))
        };
        assert!(o.status.success(), "{ld}: {}", stderr_of(&o));
        stderr_of(&o)
    };
    let bare = l.p("bare-libmid.so");
    build(&bare, false);
    let lib = mid_dir.join("libmid.so");
    let log = build(&lib, true);
    let twin = copy_as(&bare, "bare-libmid-patchelf.so");
    run_ok(
        Command::new("patchelf")
            .arg("--build-resolution-cache")
            .arg(&twin),
    );
    let got = note_desc(&lib).unwrap_or_else(|| panic!("{ld}: no note on the library\n{log}"));
    assert_eq!(
        got.escape_ascii().to_string(),
        note_desc(&twin)
            .expect("patchelf note")
            .escape_ascii()
            .to_string(),
        "{ld}"
    );
    run_ok(ldnote_cmd().arg("check").arg(&lib));
    let main = l.object(
        "usemid",
        "void mid(void);\nint main(void) { mid(); return 0; }\n",
        &[],
    );
    let prog = l.p("usemid");
    run_ok(
        Command::new("gcc")
            .arg(&main)
            .arg(&lib)
            .arg("-Wl,--enable-new-dtags")
            .arg(cat(&[b"-Wl,-rpath,", bytes(&mid_dir)]))
            .arg("-o")
            .arg(&prog),
    );
    assert_eq!(stdout_of(&run_ok(&mut Command::new(&prog))), EXPECTED);
    println!(
        "E2E-REPORT linker={ld} mode=SharedLib bare={} ldnote={} fallback={}",
        std::fs::metadata(&bare).expect("stat").len(),
        std::fs::metadata(&lib).expect("stat").len(),
        if log.contains("fallback") {
            "yes"
        } else {
            "no"
        }
    );
}

#[test]
fn shared_lib_bfd() {
    shared_lib_e2e("bfd");
}

#[test]
fn shared_lib_gold() {
    shared_lib_e2e("gold");
}

#[test]
fn shared_lib_lld() {
    shared_lib_e2e("lld");
}

#[test]
fn shared_lib_mold() {
    shared_lib_e2e("mold");
}

#[test]
fn lto_links() {
    // GCC LTO objects (GIMPLE, handled by the linker plugin) next to ldnote's reservation
    // object; lld 14 cannot load GCC's plugin, so it is left out.
    if require_tool("patchelf").is_none() {
        return;
    }
    let f = fixture();
    let l = &f.l;
    let lto_o = l.object("main-lto", MAIN, &["-flto"]);
    for ld in ["bfd", "gold", "mold"] {
        if require_tool(linker_program(ld)).is_none() {
            return;
        }
        let mut args = f.gcc_args(ld, Path::new("x"));
        args[3] = lto_o.clone().into();
        args.insert(0, "-flto".into());
        let bare = l.p(format!("lto-bare-{ld}"));
        let out = l.p(format!("lto-{ld}"));
        let mut a = args.clone();
        a[3] = bare.clone().into();
        run_ok(Command::new("gcc").args(&a));
        a[3] = out.clone().into();
        run_ok(ldnote_cmd().args(["link", "--", "gcc"]).args(&a));
        assert_noted_like_patchelf(&out, &bare);
        run_ok(ldnote_cmd().arg("check").arg(&out));
    }
}

/// `patch` and `check` take their sysroot from `LDNOTE_SYSROOT` when `--sysroot` is not given,
/// as `link` does: a run path that exists only inside the sysroot gets an `=` entry there, and
/// the same file checked against the host's `/` does not pass.
#[test]
fn patch_and_check_take_the_sysroot_from_the_environment() {
    let l = Layout::new();
    let dir = "/opt/ldnote-env-sysroot/lib";
    assert!(!Path::new(dir).exists(), "{dir} exists on the host");
    let lib = l.lib_in(&format!("root{dir}"), "libsr.so");
    let prog = Link::program(&l)
        .input(&lib)
        .runpath(dir.as_bytes())
        .build("prog");
    let root = l.p("root");
    run_ok(
        ldnote_cmd()
            .env("LDNOTE_SYSROOT", &root)
            .arg("patch")
            .arg(&prog),
    );
    let desc = note_desc(&prog).expect("a note");
    let want = format!("libsr.so\0={dir}/libsr.so\0");
    assert!(
        desc.windows(want.len()).any(|w| w == want.as_bytes()),
        "not resolved in the sysroot:\n{}",
        pretty_desc(Some(&desc))
    );
    run_ok(
        ldnote_cmd()
            .env("LDNOTE_SYSROOT", &root)
            .arg("check")
            .arg(&prog),
    );
    let host = run(ldnote_cmd()
        .env_remove("LDNOTE_SYSROOT")
        .arg("check")
        .arg(&prog));
    assert!(!host.status.success(), "check against / passed");
    // `--sysroot` wins over the environment.
    let o = run(ldnote_cmd()
        .env("LDNOTE_SYSROOT", "/")
        .arg("check")
        .arg("--sysroot")
        .arg(&root)
        .arg(&prog));
    assert!(o.status.success(), "{}", stderr_of(&o));
    // The noted program runs, its library found through the run path's host copy.
    let o = run(Command::new(&prog).env("LD_LIBRARY_PATH", l.p(format!("root{dir}"))));
    assert!(o.status.success(), "{}", stderr_of(&o));
}
