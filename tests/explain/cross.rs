//! The same layouts under qemu-user for every cross target with a Debian sysroot: LD_DEBUG=libs
//! `trying file=` lines and `qemu -strace` calls against `ldnote explain --sysroot S --qemu`.
use std::fs;
use std::path::{Path, PathBuf};

use super::harness::*;
use crate::common::{have, in_ci, run_ok};

/// One built layout: case name, the layout (kept alive), executable, CWD, environment.
type Built = (String, Lay, PathBuf, PathBuf, Vec<(String, String)>);

/// The same layouts for any compiler.
fn cross_layouts(cc: &'static str) -> Vec<Built> {
    let mut out = Vec::new();
    // RUNPATH with an empty dir, a missing dir, the libs dir; libc then from the system dirs.
    let l = Lay::new(cc);
    l.mkdir("empty");
    l.lib("libs/libfoo.so", &[], &[]);
    l.lib("libs/libbar.so", &[], &[]);
    let rp = format!(
        "-Wl,--enable-new-dtags,-rpath,{}:{}:{}",
        l.s("empty"),
        l.s("nonexist"),
        l.s("libs")
    );
    let exe = l.exe(
        "prog",
        &["libfoo.so", "libbar.so"],
        &[&format!("-L{}", l.s("libs")), &rp],
    );
    let cwd = l.dir.path().to_path_buf();
    out.push((
        "runpath-empty-missing-found".to_string(),
        l,
        exe,
        cwd,
        Vec::new(),
    ));
    // Relative and empty components, run in a known CWD; LD_LIBRARY_PATH with `;` and a gap.
    let l = Lay::new(cc);
    l.lib("work/rel/librel.so", &[], &[]);
    l.lib("work/libcwd.so", &[], &[]);
    l.lib("abs/libabs.so", &[], &[]);
    l.lib("llp/libl.so", &[], &[]);
    let rp = format!("-Wl,--enable-new-dtags,-rpath,:rel:nonrel:{}:", l.s("abs"));
    let link = [
        format!("-L{}", l.s("work/rel")),
        format!("-L{}", l.s("work")),
        format!("-L{}", l.s("abs")),
        format!("-L{}", l.s("llp")),
        rp,
    ];
    let link: Vec<&str> = link.iter().map(String::as_str).collect();
    let exe = l.exe(
        "prog",
        &["librel.so", "libcwd.so", "libabs.so", "libl.so"],
        &link,
    );
    let llp = format!("{};{}::{}", l.s("nope"), l.s("abs"), l.s("llp"));
    let cwd = l.p("work");
    out.push((
        "relative+empty+LD_LIBRARY_PATH".to_string(),
        l,
        exe,
        cwd,
        vec![("LD_LIBRARY_PATH".to_string(), llp)],
    ));
    // RPATH chain (exe RPATH reaches through a RUNPATH lib) and $ORIGIN.
    let l = Lay::new(cc);
    l.lib("e/libdep2.so", &[], &[]);
    l.lib("a/libC.so", &["libdep2.so"], &[&format!("-L{}", l.s("e"))]);
    l.lib(
        "e/libA.so",
        &["libC.so"],
        &[
            &format!("-L{}", l.s("a")),
            "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../a",
        ],
    );
    let exe = l.exe(
        "bin/prog",
        &["libA.so"],
        &[
            &format!("-L{}", l.s("e")),
            "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../e",
            &format!("-Wl,-rpath-link,{}", l.s("a")),
        ],
    );
    let cwd = l.dir.path().to_path_buf();
    out.push(("RPATH chain + $ORIGIN".to_string(), l, exe, cwd, Vec::new()));
    // Decoys ahead of the real library: a host (x86-64) build and, for armhf, a soft-float
    // build (Debian's loader skips it silently); the loader opens each, skips it, goes on.
    let l = Lay::new(cc);
    l.lib("real/libd.so", &[], &[]);
    let mut decoys = vec![("gcc", "host")];
    if cc == "arm-linux-gnueabihf-gcc" && which::which("arm-linux-gnueabi-gcc").is_ok() {
        decoys.push(("arm-linux-gnueabi-gcc", "softfloat"));
    }
    let mut rp = Vec::new();
    for (dcc, dir) in decoys {
        let d = Lay::new(dcc);
        d.lib("libd.so", &[], &[]);
        l.mkdir(dir);
        fs::copy(d.p("libd.so"), l.p(&format!("{dir}/libd.so"))).expect("copy decoy");
        rp.push(l.s(dir));
    }
    rp.push(l.s("real"));
    let exe = l.exe(
        "prog",
        &["libd.so"],
        &[
            &format!("-L{}", l.s("real")),
            &format!("-Wl,--enable-new-dtags,-rpath,{}", rp.join(":")),
        ],
    );
    let cwd = l.dir.path().to_path_buf();
    out.push((
        "decoys (other machine / float ABI)".to_string(),
        l,
        exe,
        cwd,
        Vec::new(),
    ));
    out
}

fn cross(qemu: &'static str, cc: &'static str, sysroot: &'static str) {
    if !have(qemu) || !have(cc) || !Path::new(sysroot).is_dir() {
        return;
    }
    let mut total = 0;
    for (name, _lay, exe, cwd, env) in cross_layouts(cc) {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        total += qemu_case(&name, qemu, sysroot, &exe, &cwd, &env);
    }
    assert_eq!(total, 0);
}

#[test]
fn aarch64_under_qemu() {
    cross(
        "qemu-aarch64",
        "aarch64-linux-gnu-gcc",
        "/usr/aarch64-linux-gnu",
    );
}

#[test]
fn armhf_under_qemu() {
    cross(
        "qemu-arm",
        "arm-linux-gnueabihf-gcc",
        "/usr/arm-linux-gnueabihf",
    );
}

#[test]
fn i686_under_qemu() {
    cross("qemu-i386", "i686-linux-gnu-gcc", "/usr/i686-linux-gnu");
}

#[test]
fn riscv64_ppc64le_s390x_under_qemu() {
    cross(
        "qemu-riscv64",
        "riscv64-linux-gnu-gcc",
        "/usr/riscv64-linux-gnu",
    );
    cross(
        "qemu-ppc64le",
        "powerpc64le-linux-gnu-gcc",
        "/usr/powerpc64le-linux-gnu",
    );
    cross("qemu-s390x", "s390x-linux-gnu-gcc", "/usr/s390x-linux-gnu");
}

#[test]
fn armel_under_qemu() {
    cross(
        "qemu-arm",
        "arm-linux-gnueabi-gcc",
        "/usr/arm-linux-gnueabi",
    );
}

/// The aarch64 note-aware loader (loader/build.sh --target aarch64-linux-gnu) under qemu, if
/// built: a program noted by `ldnote link` with that loader as PT_INTERP.
#[test]
fn aarch64_note_aware_loader_under_qemu() {
    let cc = "aarch64-linux-gnu-gcc";
    let ci = in_ci();
    if !have("qemu-aarch64") || !have(cc) {
        return;
    }
    // LDNOTE_NOTE_LDSO_AARCH64 (an ld.so with libc.so.6 next to it), else a finished build.
    let ldso = std::env::var_os("LDNOTE_NOTE_LDSO_AARCH64")
        .map(PathBuf::from)
        .or_else(|| {
            // The same cache directory as loader/build.sh and note_ldso().
            let cache = std::env::var_os("LDNOTE_GLIBC_CACHE")
                .map(PathBuf::from)
                .or_else(|| Some(Path::new(&std::env::var_os("HOME")?).join(".cache/ldnote")))?;
            fs::read_dir(cache)
                .ok()?
                .flatten()
                .map(|e| e.path())
                .find(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("glibc-2.36-note-aarch64"))
                        && p.join(".ldnote-build-complete").exists()
                })
                .map(|p| p.join("lib/ld-linux-aarch64.so.1"))
        });
    let Some(ldso) = ldso else {
        // In CI this runs only when .ci/run built the aarch64 loader (LDNOTE_CI_AARCH64_LOADER=1);
        // otherwise the README says this one comparison is a local, opt-in check.
        assert!(
            !(ci && std::env::var("LDNOTE_CI_AARCH64_LOADER").as_deref() == Ok("1")),
            "CI: the aarch64 note-aware loader was to be built but is missing"
        );
        println!("SKIP aarch64 note-aware loader: no LDNOTE_NOTE_LDSO_AARCH64 and no finished loader/build.sh --target aarch64-linux-gnu output");
        return;
    };
    let libdir = ldso.parent().expect("dir").to_path_buf();
    let l = Lay::new(cc);
    l.mkdir("empty");
    let mut dirs = vec![l.s("empty"), l.s("missing")];
    for i in 0..4 {
        l.lib(&format!("d{i}/liba{i}.so"), &[], &[]);
        dirs.push(l.s(&format!("d{i}")));
    }
    dirs.push(libdir.display().to_string());
    fs::write(l.p("main.c"), "int main(void){return 0;}\n").expect("src");
    let mut args: Vec<String> = vec![
        "link".into(),
        "--".into(),
        cc.into(),
        "-o".into(),
        l.s("prog"),
        l.s("main.c"),
        "-Wl,--no-as-needed".into(),
    ];
    for i in 0..4 {
        args.push(format!("-L{}", l.s(&format!("d{i}"))));
        args.push(format!("-l:liba{i}.so"));
    }
    args.push(format!("-Wl,--enable-new-dtags,-rpath,{}", dirs.join(":")));
    args.push(format!("-Wl,--dynamic-linker={}", ldso.display()));
    run_ok(std::process::Command::new(env!("CARGO_BIN_EXE_ldnote")).args(&args));
    let err = qemu_case_loader(
        "noted program, aarch64 note-aware loader",
        "qemu-aarch64",
        "/usr/aarch64-linux-gnu",
        &l.p("prog"),
        l.dir.path(),
        &[],
        true,
    );
    assert_eq!(err, 0);
}
