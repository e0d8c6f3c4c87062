//! The adapter's inner linkers (nix/make-inner-linkers.sh), built as the adapter builds them for
//! a cross stdenv.
use super::*;

/// The e_machine of an ELF file's header (`None`: not ELF).
fn e_machine(p: &Path) -> Option<u16> {
    let b = std::fs::read(p).ok()?;
    if !b.starts_with(b"\x7fELF") || b.len() < 20 {
        return None;
    }
    let m = [b[18], b[19]];
    Some(if b[5] == 2 {
        u16::from_be_bytes(m)
    } else {
        u16::from_le_bytes(m)
    })
}

/// The adapter's inner linkers for a cross stdenv (prefix `aarch64-unknown-linux-gnu-`), built
/// by the same builder the adapter runs (nix/make-inner-linkers.sh with the build platform's
/// shell): each runs on the build machine (a script whose interpreter has the build machine's
/// e_machine, never a target binary), and an aarch64 link through one is noted and runs under
/// qemu-user. Before, the adapter compiled them with `buildPackages.makeBinaryWrapper`, whose
/// compiler is `targetPackages.stdenv.cc` (aarch64 in a cross set): that cannot run here
/// without Nix, so the adapter's text is checked not to come back to it.
#[test]
fn inner_linkers_for_a_cross_stdenv_run_on_the_build_machine() {
    if !have_all(&[
        "aarch64-linux-gnu-gcc",
        "aarch64-linux-gnu-ld",
        "qemu-aarch64",
        "bash",
    ]) {
        return;
    }
    let w = World::new();
    let prefix = "aarch64-unknown-linux-gnu-";
    let unwrapped = w.root.join("binutils/bin");
    std::fs::create_dir_all(&unwrapped).expect("mkdir");
    let mut names = Vec::new();
    for v in ["ld", "ld.bfd", "ld.gold"] {
        if let Ok(real) = which::which(format!("aarch64-linux-gnu-{v}")) {
            let name = format!("{prefix}{v}");
            std::os::unix::fs::symlink(real, unwrapped.join(&name)).expect("ln");
            names.push(name);
        }
    }
    let out = w.root.join("inner");
    let bash = which::which("bash").expect("bash");
    run_ok(
        Command::new("sh")
            .arg(repo().join("nix/make-inner-linkers.sh"))
            .arg(&out)
            .arg(LDNOTE)
            .arg(&unwrapped)
            .arg(prefix)
            .arg(&bash)
            .arg(&w.store)
            .arg("2.36"),
    );
    let host = e_machine(Path::new("/proc/self/exe")).expect("host ELF");
    let mut made: Vec<String> = std::fs::read_dir(out.join("bin"))
        .expect("bin")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    names.sort();
    assert_eq!(made, names);
    for n in &made {
        let p = out.join("bin").join(n);
        let text = std::fs::read(&p).expect("read");
        let runner = match e_machine(&p) {
            Some(_) => p.clone(),
            None => {
                let first = text.split(|b| *b == b'\n').next().expect("line");
                let interp = first.strip_prefix(b"#!").expect("a script or an ELF file");
                PathBuf::from(String::from_utf8_lossy(interp).trim().to_string())
            }
        };
        assert_eq!(
            e_machine(&runner),
            Some(host),
            "{n}: runs on {}",
            runner.display()
        );
    }
    // An aarch64 link through the inner `ld` (as ld-wrapper runs it): the note is written.
    let lib = w.store.join("7abc-dep/lib");
    std::fs::create_dir_all(&lib).expect("mkdir");
    std::fs::write(w.root.join("dep.c"), "int dep(void){return 7;}\n").expect("write");
    std::fs::write(
        w.root.join("main.c"),
        "#include <stdio.h>\nint dep(void);int main(void){printf(\"%d\\n\",dep());return 0;}\n",
    )
    .expect("write");
    run_ok(
        Command::new("aarch64-linux-gnu-gcc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(lib.join("libdep.so"))
            .arg(w.root.join("dep.c")),
    );
    let bdir = w.root.join("inner-b");
    std::fs::create_dir_all(&bdir).expect("mkdir");
    std::os::unix::fs::symlink(out.join(format!("bin/{prefix}ld")), bdir.join("ld")).expect("ln");
    let prog = w.root.join("prog");
    run_ok(
        Command::new("aarch64-linux-gnu-gcc")
            .arg(format!("-B{}/", bdir.display()))
            .arg("-o")
            .arg(&prog)
            .arg(w.root.join("main.c"))
            .arg(format!("-L{}", lib.display()))
            .arg("-ldep")
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .env_remove("LDNOTE_IMMUTABLE")
            .env_remove("LDNOTE_DEFER"),
    );
    assert_eq!(e_machine(&prog), Some(object::elf::EM_AARCH64));
    let show = run_ok(w.ldnote().args(["show", "--json"]).arg(&prog));
    assert!(String::from_utf8_lossy(&show.stdout).contains("\"status\": \"noted\""));
    run_ok(w.ldnote().arg("check").arg(&prog));
    let o = run_ok(
        Command::new("qemu-aarch64")
            .args(["-L", "/usr/aarch64-linux-gnu"])
            .arg(&prog),
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "7\n");
    // The adapter builds them with this builder and the build platform's shell, and no longer
    // with a compiled wrapper.
    let adapter = std::fs::read_to_string(repo().join("nix/adapter.nix")).expect("adapter");
    assert!(adapter.contains("${buildPackages.runtimeShell} ${./make-inner-linkers.sh}"));
    assert!(!adapter.contains("makeBinaryWrapper ${"));
    assert!(!adapter.contains("nativeBuildInputs = [ buildPackages.makeBinaryWrapper ]"));
}

/// tests/nix/ld-wrapper-emu.sh puts on the link line what nixpkgs' ld-wrapper does: checked on
/// the argv a recording linker receives (directly, and through a response file).
#[test]
fn ld_wrapper_emulation_builds_the_nix_argv() {
    if !have_all(&["bash", "realpath"]) {
        return;
    }
    let w = World::new();
    let d = w.root.join("emu");
    std::fs::create_dir_all(&d).expect("mkdir");
    let argv = d.join("argv");
    let rec = d.join("record-ld");
    std::fs::write(
        &rec,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\ncase \"$1\" in @*) cp \"${{1#@}}\" '{}.rsp' ;; esac\n",
            argv.display(),
            argv.display()
        ),
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&rec, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let dep = w.store.join("1dep-dep/lib");
    let other = w.store.join("2oth-other/lib");
    let direct = w.store.join("3dir-direct/lib");
    for (dir, lib) in [
        (&dep, "libdep.so"),
        (&other, "libother.so"),
        (&direct, "libd.so.2"),
    ] {
        std::fs::create_dir_all(dir).expect("mkdir");
        std::fs::write(dir.join(lib), b"").expect("write");
    }
    let emu = repo().join("tests/nix/ld-wrapper-emu.sh");
    let run_emu = |env: &[(&str, &str)], args: &[String]| -> Vec<String> {
        let _ = std::fs::remove_file(&argv);
        let mut c = Command::new("bash");
        c.arg(&emu)
            .args(args)
            .env("NIX_EMU_LD", &rec)
            .env("NIX_STORE", &w.store)
            .env("NIX_DYNAMIC_LINKER", "/nix/ld.so")
            .env("NIX_SET_BUILD_ID", "1")
            .env(
                "NIX_LDFLAGS",
                format!("-L{} -rpath /out/lib", dep.display()),
            )
            .env("NIX_LDFLAGS_BEFORE", "--before-flag")
            .env("NIX_LDFLAGS_AFTER", "--after-flag")
            .env_remove("NIX_ENFORCE_PURITY")
            .env_remove("NIX_LD_USE_RESPONSE_FILE")
            .env_remove("NIX_EMU_LINK_TYPE")
            .env_remove("NIX_DONT_SET_RPATH")
            .env_remove("NIX_HARDENING_ENABLE");
        for (k, v) in env {
            c.env(k, v);
        }
        run_ok(&mut c);
        std::fs::read_to_string(&argv)
            .expect("argv")
            .lines()
            .map(String::from)
            .collect()
    };
    // `-L` with `..` canonicalised without resolving symlinks, `-l x` with a space, a direct
    // store `.so`, a non-store `-L` (no run path), the argument after -dynamic-linker skipped.
    let args: Vec<String> = vec![
        "-o".into(),
        "prog".into(),
        "main.o".into(),
        format!("-L{}/../../2oth-other/lib", dep.display()),
        "-l".into(),
        "other".into(),
        "-ldep".into(),
        direct.join("libd.so.2").display().to_string(),
        "-L/usr/lib".into(),
        "-lc".into(),
    ];
    let a = run_emu(&[], &args);
    let s = a.join(" ");
    assert!(
        s.starts_with("-z relro -z now --before-flag -dynamic-linker /nix/ld.so -o prog"),
        "{s}"
    );
    assert!(
        s.ends_with(&format!(
            "-L{} -rpath /out/lib --after-flag -rpath {} -rpath {} -rpath {} --build-id=sha1",
            dep.display(),
            other.display(),
            direct.display(),
            dep.display()
        )),
        "{s}"
    );
    // static-pie: no dynamic linker, no -rpath from the flags or the wrapper.
    let mut sp = args.clone();
    sp.push("-static-pie".into());
    let s = run_emu(&[], &sp).join(" ");
    assert!(
        !s.contains("-rpath") && !s.contains("-dynamic-linker"),
        "{s}"
    );
    let s = run_emu(&[("NIX_DONT_SET_RPATH", "1")], &args).join(" ");
    assert_eq!(s.matches("-rpath").count(), 1, "{s}");
    let mut rel = args.clone();
    rel.push("-r".into());
    assert!(!run_emu(&[], &rel).join(" ").contains("--build-id"));
    let s = run_emu(&[("NIX_HARDENING_ENABLE", "relro")], &args).join(" ");
    assert!(s.starts_with("-z relro --before-flag"), "{s}");
    // The purity filter: an impure -L and -rpath dropped, an impure object rejected.
    let mut impure = args.clone();
    impure.extend(["-rpath".into(), "/opt/lib".into(), "-L/opt/x".into()]);
    let s = run_emu(&[("NIX_ENFORCE_PURITY", "1")], &impure).join(" ");
    assert!(!s.contains("/opt/") && !s.contains("-L/usr/lib"), "{s}");
    let o = Command::new("bash")
        .arg(&emu)
        .args(["-o", "prog", "/opt/evil.o"])
        .env("NIX_EMU_LD", &rec)
        .env("NIX_STORE", &w.store)
        .env("NIX_ENFORCE_PURITY", "1")
        .output()
        .expect("spawn");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("impure path"));
    // Through the cc-wrapper: its flags came as -Wl, flags; the ld-wrapper adds hardening,
    // NIX_LDFLAGS_AFTER, run paths and build-id only.
    let s = run_emu(&[("NIX_EMU_LINK_TYPE", "dynamic")], &args).join(" ");
    assert!(s.starts_with("-z relro -z now -o prog"), "{s}");
    assert!(!s.contains("/out/lib") && !s.contains("/nix/ld.so"), "{s}");
    assert!(
        s.ends_with(&format!(
            "--after-flag -rpath {} -rpath {} --build-id=sha1",
            other.display(),
            direct.display()
        )),
        "{s}"
    );
    let rec_cc = d.join("record-cc");
    std::fs::write(
        &rec_cc,
        "#!/bin/sh\nprintf '%s\\n' \"$NIX_EMU_LINK_TYPE\" \"$@\"\n",
    )
    .expect("write");
    std::fs::set_permissions(&rec_cc, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let cc = Command::new("bash")
        .arg(repo().join("tests/nix/cc-wrapper-emu.sh"))
        .args(["-o", "prog", "main.c", "-lfoo"])
        .env("NIX_EMU_CC", &rec_cc)
        .env("NIX_DYNAMIC_LINKER", "/nix/ld.so")
        .env(
            "NIX_LDFLAGS",
            format!("-L{} -rpath /out/lib", dep.display()),
        )
        .env("NIX_LDFLAGS_BEFORE", "--before-flag")
        .output()
        .expect("spawn");
    let got: Vec<String> = String::from_utf8_lossy(&cc.stdout)
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        got,
        [
            "dynamic".to_string(),
            "-Wl,--before-flag".into(),
            "-Wl,-dynamic-linker=/nix/ld.so".into(),
            "-o".into(),
            "prog".into(),
            "main.c".into(),
            "-lfoo".into(),
            format!("-L{}", dep.display()),
            "-Wl,-rpath".into(),
            "-Wl,/out/lib".into(),
        ],
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    // A response file: one GNU-quoted argument a line.
    let mut odd = args.clone();
    odd.push("--defsym=a\"b\\c d".into());
    let a = run_emu(&[("NIX_LD_USE_RESPONSE_FILE", "1")], &odd);
    assert_eq!(a.len(), 1, "{a:?}");
    let rsp = std::fs::read_to_string(format!("{}.rsp", argv.display())).expect("rsp");
    assert!(
        rsp.lines().all(|l| l.starts_with('"') && l.ends_with('"')),
        "{rsp}"
    );
    assert!(rsp.contains(r#""--defsym=a\"b\\c d""#), "{rsp}");
}
