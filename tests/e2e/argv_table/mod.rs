//! Link-line parser tests: real argv captured from gcc, clang, g++, a cross gcc and rustc (live
//! when the tool is installed, and as committed fixtures under `fixtures/argv/`), then a table of
//! tricky hand-written command lines.
//!
//! Fixture format: one argument per line, raw bytes. `LDNOTE_UPDATE_FIXTURES=1` rewrites the
//! fixtures from the live capture. With `CI=true` a missing tool fails the test; locally the live
//! half is skipped with a printed reason and the committed fixture is still checked.

use ldnote::argv::{plan, LinkPlan, SkipReason, ToolKind};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Command;

mod cases;
mod real_link;

use crate::common::have;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/argv")
}

/// Plan, and check that `plan` left the argument vector untouched.
pub fn plan_checked(kind: ToolKind, args: &[OsString], cwd: &Path) -> LinkPlan {
    let before = args.to_vec();
    let p = plan(kind, args, cwd).unwrap_or_else(|e| panic!("plan failed: {e} for {args:?}"));
    assert_eq!(args, before.as_slice(), "plan modified its arguments");
    p
}

fn read_fixture(name: &str) -> Vec<OsString> {
    let path = fixtures_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines: Vec<OsString> = bytes
        .split(|&b| b == b'\n')
        .map(|l| OsString::from_vec(l.to_vec()))
        .collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn write_fixture(name: &str, args: &[OsString]) {
    let mut out = Vec::new();
    for a in args {
        assert!(
            !a.as_bytes().contains(&b'\n'),
            "argument with newline: {a:?}"
        );
        out.extend_from_slice(a.as_bytes());
        out.push(b'\n');
    }
    std::fs::create_dir_all(fixtures_dir()).expect("create fixtures dir");
    std::fs::write(fixtures_dir().join(name), out).expect("write fixture");
}

/// Run `tool -### args...` in `dir` and return the arguments of the linker (or collect2) line.
fn capture_dash3(tool: &str, args: &[&str], dir: &Path) -> Vec<OsString> {
    let out = Command::new(tool)
        .arg("-###")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(out.status.success(), "{tool} -### failed: {out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut found = None;
    for line in stderr.lines().filter(|l| l.starts_with(' ')) {
        let words = shell_words::split(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let Some(first) = words.first() else { continue };
        let base = Path::new(first).file_name().unwrap_or_default();
        let is_linker = base == "collect2"
            || ldnote::argv::classify_tool(base).is_some_and(|t| t.kind == ToolKind::Linker);
        if is_linker {
            found = Some(words[1..].iter().map(OsString::from).collect());
        }
    }
    found.unwrap_or_else(|| panic!("no linker line in {tool} -### output:\n{stderr}"))
}

/// Run rustc with `-C linker=` a script that writes its argv, one per line, to a file.
fn capture_rustc(crate_type: &str, output: &str, dir: &Path) -> Vec<OsString> {
    let script = dir.join("dump-argv.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$LDNOTE_ARGV_DUMP\"\n",
    )
    .expect("write script");
    let mut perms = std::fs::metadata(&script).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).expect("chmod");
    std::fs::write(
        dir.join("hello.rs"),
        "pub fn main() { println!(\"hi\"); }\n",
    )
    .expect("write");
    let dump = dir.join(format!("{crate_type}.argv"));
    let status = Command::new("rustc")
        .args([
            "--crate-type",
            crate_type,
            "--crate-name",
            "hello",
            "hello.rs",
            "-o",
            output,
        ])
        .arg(format!("-Clinker={}", script.display()))
        .args([
            "-C",
            "link-arg=-Wl,-rpath,/opt/rust/lib",
            "-C",
            "link-arg=-Wl,--enable-new-dtags",
        ])
        .env("LDNOTE_ARGV_DUMP", &dump)
        .current_dir(dir)
        .status()
        .expect("run rustc");
    assert!(status.success(), "rustc failed");
    let bytes = std::fs::read(&dump).expect("read argv dump");
    let mut v: Vec<OsString> = bytes
        .split(|&b| b == b'\n')
        .map(|l| OsString::from_vec(l.to_vec()))
        .collect();
    v.pop();
    v
}

/// What a captured link line must yield.
struct Facts {
    kind: ToolKind,
    /// Compared by file name: live captures run in a temp dir.
    output_name: &'static str,
    rpaths: &'static [&'static str],
    new_dtags: Option<bool>,
    sysroot: Option<&'static str>,
    emulation: Option<&'static str>,
    shared: bool,
    pie: Option<bool>,
    /// Libraries that must be among the `-l`s.
    libs: &'static [&'static str],
}

fn check_facts(what: &str, p: &LinkPlan, f: &Facts) {
    let os = |s: &&str| OsString::from(s);
    assert_eq!(p.kind, f.kind, "{what}");
    assert_eq!(p.skip, None, "{what}: {p:?}");
    assert_eq!(
        Path::new(&p.output).file_name(),
        Some(OsStr::new(f.output_name)),
        "{what}: output"
    );
    assert_eq!(
        p.rpaths,
        f.rpaths.iter().map(os).collect::<Vec<_>>(),
        "{what}: rpaths"
    );
    assert_eq!(p.new_dtags, f.new_dtags, "{what}: new_dtags");
    assert_eq!(
        p.sysroot.as_deref(),
        f.sysroot.map(OsStr::new),
        "{what}: sysroot"
    );
    assert_eq!(
        p.emulation.as_deref(),
        f.emulation.map(OsStr::new),
        "{what}: emulation"
    );
    assert_eq!(p.shared, f.shared, "{what}: shared");
    assert_eq!(p.pie, f.pie, "{what}: pie");
    assert!(!p.static_pie, "{what}: static_pie");
    for lib in f.libs {
        assert!(
            p.libs.iter().any(|l| l == lib),
            "{what}: -l{lib} missing in {:?}",
            p.libs
        );
    }
    assert!(!p.inputs.is_empty(), "{what}: no inputs");
    // No option value may leak into the inputs.
    for input in &p.inputs {
        assert!(
            !input.as_bytes().starts_with(b"-"),
            "{what}: option {input:?} taken as input"
        );
    }
    assert!(
        !p.inputs
            .iter()
            .any(|i| p.lib_dirs.contains(i) || p.rpaths.contains(i)),
        "{what}: a -L or -rpath value was taken as an input"
    );
}

/// Check the live capture (if the tool exists) and the committed fixture against `facts`.
fn real_case(fixture: &str, tool: &str, capture: impl FnOnce(&Path) -> Vec<OsString>, f: Facts) {
    if have(tool) {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = capture(dir.path());
        check_facts(
            &format!("{fixture} (live)"),
            &plan_checked(f.kind, &live, dir.path()),
            &f,
        );
        if std::env::var_os("LDNOTE_UPDATE_FIXTURES").is_some() {
            write_fixture(fixture, &live);
        }
    }
    let committed = read_fixture(fixture);
    let cwd = std::env::temp_dir();
    check_facts(
        &format!("{fixture} (committed)"),
        &plan_checked(f.kind, &committed, &cwd),
        &f,
    );
}

fn c_source(dir: &Path) {
    std::fs::write(dir.join("hello.c"), "int main(void) { return 0; }\n").expect("write hello.c");
}

#[test]
fn real_gcc_collect2_line() {
    let args = [
        "hello.c",
        "-o",
        "hello",
        "-Wl,-rpath,/opt/a:/opt/b",
        "-Xlinker",
        "-rpath",
        "-Xlinker",
        "$ORIGIN/../lib",
        "-Wl,--enable-new-dtags",
        "-L/opt/a",
        "-lm",
    ];
    let facts = || Facts {
        kind: ToolKind::Linker,
        output_name: "hello",
        rpaths: &["/opt/a:/opt/b", "$ORIGIN/../lib"],
        new_dtags: Some(true),
        sysroot: None,
        emulation: Some("elf_x86_64"),
        shared: false,
        pie: Some(true),
        libs: &["m", "c"],
    };
    real_case(
        "gcc-x86_64.collect2.args",
        "gcc",
        |d| {
            c_source(d);
            capture_dash3("gcc", &args, d)
        },
        facts(),
    );
    // The driver line itself yields the same link facts (emulation and pie are gcc's defaults,
    // which only the collect2 line shows).
    let dir = tempfile::tempdir().expect("tempdir");
    let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
    let p = plan_checked(ToolKind::Driver, &argv, dir.path());
    assert_eq!(p.rpaths, ["/opt/a:/opt/b", "$ORIGIN/../lib"]);
    assert_eq!(
        (p.new_dtags, p.skip, p.output.as_os_str()),
        (Some(true), None, OsStr::new("hello"))
    );
    assert_eq!(p.inputs, [OsString::from("hello.c")]);
    assert_eq!(p.libs, [OsString::from("m")]);
    assert_eq!(p.lib_dirs, [OsString::from("/opt/a")]);
}

#[test]
fn real_clang_lld_line() {
    real_case(
        "clang-lld.ld.args",
        "clang",
        |d| {
            c_source(d);
            capture_dash3(
                "clang",
                &[
                    "-fuse-ld=lld",
                    "hello.c",
                    "-o",
                    "hello2",
                    "-Wl,-rpath=/opt/c",
                    "-Wl,--disable-new-dtags",
                    "--sysroot=/",
                ],
                d,
            )
        },
        Facts {
            kind: ToolKind::Linker,
            output_name: "hello2",
            rpaths: &["/opt/c"],
            new_dtags: Some(false),
            sysroot: Some("/"),
            emulation: Some("elf_x86_64"),
            shared: false,
            pie: Some(true),
            libs: &["c"],
        },
    );
}

#[test]
fn real_clang_bfd_shared_line() {
    real_case(
        "clang-bfd-shared.ld.args",
        "clang",
        |d| {
            c_source(d);
            capture_dash3(
                "clang",
                &[
                    "-shared",
                    "-fPIC",
                    "hello.c",
                    "-o",
                    "libhello.so",
                    "-Wl,-soname,libhello.so.1",
                    "-rpath",
                    "/opt/e",
                ],
                d,
            )
        },
        Facts {
            kind: ToolKind::Linker,
            output_name: "libhello.so",
            rpaths: &["/opt/e"],
            new_dtags: None,
            sysroot: None,
            emulation: Some("elf_x86_64"),
            shared: true,
            pie: None,
            libs: &["c"],
        },
    );
}

#[test]
fn real_gxx_shared_line() {
    real_case(
        "gxx-shared.collect2.args",
        "g++",
        |d| {
            std::fs::write(d.join("hello.cc"), "int f() { return 1; }\n").expect("write");
            capture_dash3(
                "g++",
                &[
                    "-shared",
                    "-fPIC",
                    "hello.cc",
                    "-o",
                    "libhellocc.so",
                    "-Wl,-soname",
                    "-Wl,libhellocc.so.1",
                    "-Wl,-R,/opt/d",
                ],
                d,
            )
        },
        Facts {
            kind: ToolKind::Linker,
            output_name: "libhellocc.so",
            rpaths: &["/opt/d"],
            new_dtags: None,
            sysroot: None,
            emulation: Some("elf_x86_64"),
            shared: true,
            pie: None,
            libs: &["stdc++", "c"],
        },
    );
}

#[test]
fn real_aarch64_cross_gcc_line() {
    real_case(
        "aarch64-gcc.collect2.args",
        "aarch64-linux-gnu-gcc",
        |d| {
            c_source(d);
            capture_dash3(
                "aarch64-linux-gnu-gcc",
                &["hello.c", "-o", "hello-arm", "-Wl,-rpath,/opt/arm"],
                d,
            )
        },
        Facts {
            kind: ToolKind::Linker,
            output_name: "hello-arm",
            rpaths: &["/opt/arm"],
            new_dtags: None,
            sysroot: Some("/"),
            emulation: Some("aarch64linux"),
            shared: false,
            pie: Some(true),
            libs: &["c"],
        },
    );
}

/// The other Debian cross compilers: each line names its own emulation and sysroot.
#[test]
fn real_other_cross_gcc_lines() {
    let crosses = [
        ("i686-linux-gnu", "elf_i386"),
        ("riscv64-linux-gnu", "elf64lriscv"),
        ("arm-linux-gnueabihf", "armelf_linux_eabi"),
        ("powerpc64le-linux-gnu", "elf64lppc"),
        ("s390x-linux-gnu", "elf64_s390"),
    ];
    for (triple, emulation) in crosses {
        let tool = format!("{triple}-gcc");
        real_case(
            &format!("{triple}-gcc.collect2.args"),
            &tool,
            |d| {
                c_source(d);
                capture_dash3(&tool, &["hello.c", "-o", "hello-x", "-Wl,-rpath,/opt/x"], d)
            },
            Facts {
                kind: ToolKind::Linker,
                output_name: "hello-x",
                rpaths: &["/opt/x"],
                new_dtags: None,
                sysroot: Some("/"),
                emulation: Some(emulation),
                shared: false,
                pie: Some(true),
                libs: &["c"],
            },
        );
    }
}

#[test]
fn real_rustc_bin_line() {
    real_case(
        "rustc-bin.cc.args",
        "rustc",
        |d| capture_rustc("bin", "hello", d),
        Facts {
            kind: ToolKind::Driver,
            output_name: "hello",
            rpaths: &["/opt/rust/lib"],
            new_dtags: Some(true),
            sysroot: None,
            emulation: None,
            shared: false,
            pie: Some(true),
            libs: &["c", "gcc_s"],
        },
    );
}

#[test]
fn real_rustc_cdylib_line() {
    real_case(
        "rustc-cdylib.cc.args",
        "rustc",
        |d| capture_rustc("cdylib", "libhello.so", d),
        Facts {
            kind: ToolKind::Driver,
            output_name: "libhello.so",
            rpaths: &["/opt/rust/lib"],
            new_dtags: Some(true),
            sysroot: None,
            emulation: None,
            shared: true,
            pie: None,
            libs: &["c", "gcc_s"],
        },
    );
}

#[test]
fn skip_reason_is_displayable() {
    assert_eq!(
        SkipReason::NotAFile.to_string(),
        "output is not a regular file"
    );
}
