//! Helpers of tests/explain.rs: building layouts with real compilers, running the real loader
//! under strace / LD_DEBUG / qemu-user, and comparing with `ldnote explain --json`.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{have, run_ok};

/// A layout under construction: compiler, temp dir.
pub struct Lay {
    pub cc: &'static str,
    pub dir: tempfile::TempDir,
}

impl Lay {
    pub fn new(cc: &'static str) -> Self {
        Lay {
            cc,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    pub fn p(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
    pub fn s(&self, rel: &str) -> String {
        self.p(rel).display().to_string()
    }
    pub fn mkdir(&self, rel: &str) {
        fs::create_dir_all(self.p(rel)).expect("mkdir");
    }
    /// Build `rel` (a shared library) with DT_NEEDED on `needs` (found via -L`link_dirs`) and
    /// extra linker flags.
    pub fn lib(&self, rel: &str, needs: &[&str], flags: &[&str]) {
        let path = self.p(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let src = self.p(&format!("{}.c", rel.replace('/', "_")));
        fs::write(
            &src,
            format!(
                "int f_{}(void){{return 0;}}\n",
                rel.replace(['/', '.', '-', '$'], "_")
            ),
        )
        .expect("src");
        let mut c = Command::new(self.cc);
        c.args(["-shared", "-fPIC", "-o"])
            .arg(&path)
            .arg(&src)
            .arg("-Wl,--no-as-needed");
        for n in needs {
            c.arg(format!("-l:{n}"));
        }
        c.args(flags);
        run_ok(&mut c);
    }
    /// Build the executable `rel` (prints nothing, returns at once).
    pub fn exe(&self, rel: &str, needs: &[&str], flags: &[&str]) -> PathBuf {
        let path = self.p(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let src = self.p("main.c");
        fs::write(&src, "int main(void){return 0;}\n").expect("src");
        let mut c = Command::new(self.cc);
        c.arg("-o").arg(&path).arg(&src).arg("-Wl,--no-as-needed");
        for n in needs {
            c.arg(format!("-l:{n}"));
        }
        c.args(flags);
        run_ok(&mut c);
        path
    }
}

/// What the real loader did.
#[derive(Debug, Default)]
pub struct Actual {
    pub trace: Vec<(String, String, bool)>,
    pub trying: Vec<String>,
    pub inits: Vec<String>,
    pub failed: bool,
}

pub fn parse_ld_debug(stderr: &str, a: &mut Actual) {
    for line in stderr.lines() {
        let Some((_, text)) = line.split_once(":\t") else {
            continue;
        };
        if let Some(p) = text.strip_prefix("  trying file=") {
            a.trying.push(p.to_string());
        } else if let Some(p) = text.strip_prefix("calling init: ") {
            a.inits.push(p.to_string());
        }
    }
}

/// `strace -e trace=execve,openat,newfstatat` lines after the program's execve.
pub fn parse_strace(text: &str) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let mut started = false;
    for line in text.lines() {
        let body = line.split_once(' ').map_or(line, |(_, b)| b.trim_start());
        if body.starts_with("execve(") {
            started = body.contains("= 0");
            out.clear();
            continue;
        }
        if !started || body.starts_with("+++") || body.starts_with("---") {
            continue;
        }
        let ok = !body.contains(" = -1 ");
        let quoted = body.split('"').nth(1).unwrap_or("").to_string();
        if body.starts_with("openat(") {
            out.push(("openat".into(), quoted, ok));
        } else if body.starts_with("newfstatat(AT_FDCWD") {
            out.push(("stat".into(), quoted, ok));
        } else if body.starts_with("newfstatat(") {
            out.push(("fstat".into(), String::new(), ok));
        }
    }
    out
}

pub fn explain(args: &[&str], file: &Path, cwd: &Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ldnote"))
        .arg("explain")
        .arg("--json")
        .args(args)
        .arg(file)
        .current_dir(cwd)
        .output()
        .expect("run ldnote");
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "explain failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

pub fn predicted_trace(run: &Value) -> Vec<(String, String, bool)> {
    run["trace"]
        .as_array()
        .expect("trace")
        .iter()
        .filter(|e| !e["call"].is_null())
        .map(|e| {
            (
                e["call"].as_str().unwrap_or("").to_string(),
                e["path"].as_str().unwrap_or("").to_string(),
                e["errno"].is_null(),
            )
        })
        .collect()
}

pub fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_str().unwrap_or("").to_string())
        .collect()
}

pub fn count(t: &[(String, String, bool)]) -> [usize; 4] {
    let n = |call: &[&str], ok: bool| {
        t.iter()
            .filter(|(c, _, o)| call.contains(&c.as_str()) && *o == ok)
            .count()
    };
    [
        n(&["openat"], true),
        n(&["openat"], false),
        n(&["stat", "fstat"], true),
        n(&["stat", "fstat"], false),
    ]
}

/// Run `exe` natively under strace and with LD_DEBUG=libs, predict it, compare, print the
/// prediction error. Returns the total absolute error over the four counts.
pub fn native_case(name: &str, exe: &Path, cwd: &Path, env: &[(&str, &str)]) -> usize {
    let dir = tempfile::tempdir().expect("tmp");
    let st = dir.path().join("strace.out");
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-e", "trace=execve,openat,newfstatat", "-o"])
        .arg(&st)
        .arg(exe)
        .current_dir(cwd)
        .env_remove("LD_LIBRARY_PATH");
    for (k, v) in env {
        c.env(k, v);
    }
    let status = c.output().expect("strace").status;
    let mut actual = Actual {
        trace: parse_strace(&fs::read_to_string(&st).expect("strace out")),
        failed: !status.success(),
        ..Default::default()
    };
    let mut d = Command::new(exe);
    d.current_dir(cwd)
        .env_remove("LD_LIBRARY_PATH")
        .env("LD_DEBUG", "libs");
    for (k, v) in env {
        d.env(k, v);
    }
    parse_ld_debug(
        &String::from_utf8_lossy(&d.output().expect("run").stderr),
        &mut actual,
    );

    let mut args: Vec<String> = vec!["--cwd".into(), cwd.display().to_string()];
    for (k, v) in env {
        args.push("--env".into());
        args.push(format!("{k}={v}"));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let j = explain(&argv, exe, cwd);
    let stock = &j["stock"];
    let pred = predicted_trace(stock);
    let (pc, ac) = (count(&pred), count(&actual.trace));
    let err: usize = pc.iter().zip(ac.iter()).map(|(p, a)| p.abs_diff(*a)).sum();
    let pred_inits: Vec<String> = stock["objects"]
        .as_array()
        .expect("objects")
        .iter()
        .filter(|o| o["kind"] != "main")
        .map(|o| o["path"].as_str().unwrap_or("").to_string())
        .collect();
    let mut ai = actual.inits.clone();
    ai.sort();
    let mut pi = pred_inits.clone();
    pi.sort();
    let trying = strs(&stock["trying"]);
    println!(
        "case {name}: predicted [openat ok, openat fail, stat ok, stat fail] = {pc:?}, strace = {ac:?}, \
         prediction error = {err}; trace equal: {}; trying equal: {} ({} lines); inits equal: {}",
        pred == actual.trace,
        trying == actual.trying,
        actual.trying.len(),
        actual.failed || pi == ai
    );
    assert_eq!(
        pred, actual.trace,
        "{name}: predicted syscall sequence differs"
    );
    assert_eq!(
        trying, actual.trying,
        "{name}: trying file= sequence differs"
    );
    assert_eq!(
        stock["error"].is_null(),
        !actual.failed,
        "{name}: failure predicted wrongly: {}",
        stock["error"]
    );
    if !actual.failed {
        assert_eq!(pi, ai, "{name}: loaded objects differ");
    }
    err
}

/// Native checks need x86-64, gcc, strace and the Debian loader.
pub fn native() -> bool {
    cfg!(target_arch = "x86_64")
        && have("gcc")
        && have("strace")
        && Path::new("/lib64/ld-linux-x86-64.so.2").exists()
}

/// qemu-user's `-strace` lines (guest syscalls, guest paths): openat, and newfstatat or statx
/// (armhf/i386 use statx) by path or by fd.
pub fn parse_qemu_strace(text: &str) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let body = line.split_once(' ').map_or("", |(_, b)| b);
        let ok = !body.contains("= -1 ");
        let quoted = body.split('"').nth(1).unwrap_or("").to_string();
        if body.starts_with("openat(") {
            out.push(("openat".into(), quoted, ok));
        } else if body.starts_with("newfstatat(AT_FDCWD") || body.starts_with("statx(AT_FDCWD") {
            out.push(("stat".into(), quoted, ok));
        } else if body.starts_with("newfstatat(") || body.starts_with("statx(") {
            out.push(("fstat".into(), String::new(), ok));
        }
    }
    out
}

/// Run `exe` under `qemu -L sysroot` with LD_DEBUG=libs and with -strace; compare with
/// `ldnote explain --sysroot sysroot --qemu`.
pub fn qemu_case(
    name: &str,
    qemu: &str,
    sysroot: &str,
    exe: &Path,
    cwd: &Path,
    env: &[(&str, &str)],
) -> usize {
    qemu_case_loader(name, qemu, sysroot, exe, cwd, env, false)
}

/// [`qemu_case`] for the stock (`note` false) or the note-aware prediction; the latter also
/// compares the `trying cached file=` lines of `=` entries.
pub fn qemu_case_loader(
    name: &str,
    qemu: &str,
    sysroot: &str,
    exe: &Path,
    cwd: &Path,
    env: &[(&str, &str)],
    note: bool,
) -> usize {
    let run = |extra: &[&str]| {
        let mut c = Command::new(qemu);
        c.args(["-L", sysroot]).args(extra);
        for (k, v) in env {
            c.arg("-E").arg(format!("{k}={v}"));
        }
        c.arg(exe)
            .current_dir(cwd)
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("LD_DEBUG");
        c.output().expect("qemu")
    };
    let dbg = run(&["-E", "LD_DEBUG=libs"]);
    let mut actual = Actual {
        failed: !dbg.status.success(),
        ..Default::default()
    };
    let dbg_text = String::from_utf8_lossy(&dbg.stderr).into_owned();
    parse_ld_debug(&dbg_text, &mut actual);
    let cached: Vec<String> = dbg_text
        .lines()
        .filter_map(|x| {
            x.split_once("\t  trying cached file=")
                .map(|(_, p)| p.to_string())
        })
        .collect();
    let st = run(&["-strace"]);
    actual.trace = parse_qemu_strace(&String::from_utf8_lossy(&st.stderr));

    let mut args: Vec<String> = vec![
        "--sysroot".into(),
        sysroot.into(),
        "--qemu".into(),
        "--cwd".into(),
        cwd.display().to_string(),
    ];
    for (k, v) in env {
        args.push("--env".into());
        args.push(format!("{k}={v}"));
    }
    if note {
        args.push("--loader".into());
        args.push("note".into());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let j = explain(&argv, exe, cwd);
    let stock = if note { &j["note"] } else { &j["stock"] };
    let pred = predicted_trace(stock);
    let pred_cached: Vec<String> = stock["trace"]
        .as_array()
        .expect("trace")
        .iter()
        .filter(|e| e["stage"] == "note_exact" && e["call"] == "openat")
        .map(|e| e["path"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        pred_cached, cached,
        "{name}: trying cached file= lines differ"
    );
    let trying = strs(&stock["trying"]);
    let (pc, ac) = (count(&pred), count(&actual.trace));
    let err: usize = pc.iter().zip(ac.iter()).map(|(p, a)| p.abs_diff(*a)).sum();
    let mismatched = trying
        .iter()
        .zip(actual.trying.iter())
        .filter(|(a, b)| a != b)
        .count()
        + trying.len().abs_diff(actual.trying.len());
    println!(
        "case {name} ({qemu} -L {sysroot}): trying file= lines predicted {} / loader {}, mismatched {mismatched}; \
         [openat ok, openat fail, stat ok, stat fail] predicted {pc:?} / qemu -strace {ac:?}, prediction error = {err}; trace equal: {}",
        trying.len(),
        actual.trying.len(),
        pred == actual.trace
    );
    assert_eq!(
        trying, actual.trying,
        "{name}: trying file= sequence differs"
    );
    assert_eq!(pred, actual.trace, "{name}: syscall sequence differs");
    assert_eq!(
        stock["error"].is_null(),
        !actual.failed,
        "{name}: failure predicted wrongly"
    );
    err + mismatched
}

/// A note-aware loader built by loader/build.sh, if any: env LDNOTE_NOTE_LDSO, else a
/// finished build in the cache directory.
pub fn note_ldso() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LDNOTE_NOTE_LDSO") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("LDNOTE_GLIBC_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/ldnote")))?;
    let mut found = None;
    for e in fs::read_dir(home).ok()?.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("glibc-2.36-note-")
            && !n.contains("-linux-gnu")
            && e.path().join(".ldnote-build-complete").exists()
        {
            found = Some(e.path().join("lib/ld-linux-x86-64.so.2"));
        }
    }
    found
}
