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
    run(Command::new("sh")
        .arg(repo().join("nix/make-inner-linkers.sh"))
        .arg(&out)
        .arg(LDNOTE)
        .arg(&unwrapped)
        .arg(prefix)
        .arg(&bash)
        .arg(&w.store)
        .arg("2.36"));
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
    run(Command::new("aarch64-linux-gnu-gcc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(lib.join("libdep.so"))
        .arg(w.root.join("dep.c")));
    let bdir = w.root.join("inner-b");
    std::fs::create_dir_all(&bdir).expect("mkdir");
    std::os::unix::fs::symlink(out.join(format!("bin/{prefix}ld")), bdir.join("ld")).expect("ln");
    let prog = w.root.join("prog");
    run(Command::new("aarch64-linux-gnu-gcc")
        .arg(format!("-B{}/", bdir.display()))
        .arg("-o")
        .arg(&prog)
        .arg(w.root.join("main.c"))
        .arg(format!("-L{}", lib.display()))
        .arg("-ldep")
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .env_remove("LDNOTE_IMMUTABLE")
        .env_remove("LDNOTE_DEFER"));
    assert_eq!(e_machine(&prog), Some(object::elf::EM_AARCH64));
    let show = run(w.ldnote().args(["show", "--json"]).arg(&prog));
    assert!(String::from_utf8_lossy(&show.stdout).contains("\"status\": \"noted\""));
    run(w.ldnote().arg("check").arg(&prog));
    let o = run(Command::new("qemu-aarch64")
        .args(["-L", "/usr/aarch64-linux-gnu"])
        .arg(&prog));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "7\n");
    // The adapter builds them with this builder and the build platform's shell, and no longer
    // with a compiled wrapper.
    let adapter = std::fs::read_to_string(repo().join("nix/adapter.nix")).expect("adapter");
    assert!(adapter.contains("${buildPackages.runtimeShell} ${./make-inner-linkers.sh}"));
    assert!(!adapter.contains("makeBinaryWrapper ${"));
    assert!(!adapter.contains("nativeBuildInputs = [ buildPackages.makeBinaryWrapper ]"));
}
