//! Target selection from a link line, end to end on real ARM links: GNU ld's
//! `armelf_linux_eabi` emulation is armel's and armhf's (the float ABI is not part of it), so an
//! `-m armelf_linux_eabi` link without an object input must take the float ABI from the
//! linker's triple, or add no reservation. A soft-float reservation in an armhf link makes GNU
//! ld refuse the link.
use std::path::Path;
use std::process::Command;

use crate::common::{have_all, ldnote_cmd, run_ok, stderr_of};

/// `e_flags` of a 32-bit little-endian ELF file.
fn e_flags(p: &Path) -> u32 {
    let b = std::fs::read(p).expect("read");
    u32::from_le_bytes([b[36], b[37], b[38], b[39]])
}

#[test]
fn armhf_link_with_only_an_archive_and_the_shared_emulation() {
    if !have_all(&[
        "arm-linux-gnueabihf-gcc",
        "arm-linux-gnueabihf-ld",
        "arm-linux-gnueabihf-ar",
    ]) {
        return;
    }
    let t = tempfile::tempdir().expect("tempdir");
    let d = t.path();
    let dep = d.join("dep");
    std::fs::create_dir(&dep).expect("mkdir");
    std::fs::write(d.join("dep.c"), "int dep(void){return 1;}\n").expect("write");
    std::fs::write(
        d.join("foo.c"),
        "int dep(void);int foo(void){return dep()+1;}\n",
    )
    .expect("write");
    run_ok(
        Command::new("arm-linux-gnueabihf-gcc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(dep.join("libdep.so"))
            .arg(d.join("dep.c")),
    );
    run_ok(
        Command::new("arm-linux-gnueabihf-gcc")
            .args(["-c", "-fPIC", "-o"])
            .arg(d.join("foo.o"))
            .arg(d.join("foo.c")),
    );
    run_ok(
        Command::new("arm-linux-gnueabihf-ar")
            .arg("rc")
            .arg(d.join("libfoo.a"))
            .arg(d.join("foo.o")),
    );
    let real = which::which("arm-linux-gnueabihf-ld").expect("ld");
    // Named with its triple (as the cross ld-wrapper runs it), and as plain `ld`.
    let plain = d.join("bin/ld");
    std::fs::create_dir(d.join("bin")).expect("mkdir");
    std::os::unix::fs::symlink(&real, &plain).expect("ln");
    for (linker, reserved) in [(real.as_path(), true), (plain.as_path(), false)] {
        let out = d.join("libx.so");
        let _ = std::fs::remove_file(&out);
        let o = run_ok(
            ldnote_cmd()
                .args(["link", "-v", "--strict", "--"])
                .arg(linker)
                .args(["-m", "armelf_linux_eabi", "-shared", "-o"])
                .arg(&out)
                .arg("--whole-archive")
                .arg(d.join("libfoo.a"))
                .arg("--no-whole-archive")
                .arg(format!("-L{}", dep.display()))
                .arg("-ldep")
                .arg("-rpath")
                .arg(&dep),
        );
        let log = stderr_of(&o);
        // Hard-float EABI5, as the archive's objects.
        assert_eq!(e_flags(&out) & 0xff00_0600, 0x0500_0400, "{log}");
        assert_eq!(
            log.contains("target not certain before the link"),
            !reserved,
            "{}: {log}",
            linker.display()
        );
        let show = run_ok(ldnote_cmd().arg("show").arg(&out));
        let text = String::from_utf8_lossy(&show.stdout);
        assert!(
            text.contains(&format!("={}/libdep.so", dep.display())),
            "{text}"
        );
        run_ok(ldnote_cmd().arg("check").arg(&out));
    }
}
