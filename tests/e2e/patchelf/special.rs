//! Differential checks that are not one layout and one link: the independent note walker held
//! to binutils and to the loader's `p_align` rule, and stale notes re-noted after the layout
//! changes (several steps on the same files).
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

fn join_rp(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b':')
}

fn patchelf_cmd(file: &Path) -> Command {
    let mut c = Command::new("patchelf");
    c.arg("--build-resolution-cache").arg(file);
    c
}

#[test]
fn walker_agrees_with_readelf() {
    // The independent walker itself, checked against binutils on patchelf's output: the same
    // descriptor bytes as `readelf -n` prints for the NixOS note.
    if require_tool("patchelf").is_none() || require_tool("readelf").is_none() {
        return;
    }
    let l = Layout::new();
    let a = l.lib_in("d1", "liba.so");
    let out = Link::program(&l)
        .input(&a)
        .runpath(join_rp(&[&l.pb("d1"), b"$ORIGIN"]))
        .build("prog");
    run_ok(
        Command::new("patchelf")
            .arg("--build-resolution-cache")
            .arg(&out),
    );
    let walked = note_desc(&out).expect("walker finds patchelf's note");
    let text = stdout_of(&run_ok(
        Command::new("readelf").args(["-n", "-W"]).arg(&out),
    ));
    let line = text
        .lines()
        .skip_while(|l| !l.contains("NixOS"))
        .find(|l| l.contains("description data:"))
        .unwrap_or_else(|| panic!("no NixOS note data in readelf -n:\n{text}"));
    let hex = line.split("description data:").nth(1).expect("data");
    let from_readelf: Vec<u8> = hex
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).expect("hex byte"))
        .collect();
    assert_eq!(walked, from_readelf);
}

#[test]
fn walker_follows_p_align_like_the_loader() {
    // A 4-aligned note in an input object: GNU ld puts it in a 4-aligned PT_NOTE where the
    // loader's walk finds it; mold 1.10 merges all notes into one 8-aligned PT_NOTE after the
    // 36-byte build-id note, where the walk (padding to p_align) cannot reach it, although
    // readelf, which reads section headers, still lists it (NOTE-FORMAT.md).
    for t in ["mold", "readelf"] {
        if require_tool(t).is_none() {
            return;
        }
    }
    let l = Layout::new();
    let src = ".section .note.nixos.ldcache,\"a\",@note\n.balign 4\n.long 6\n.long 11\n\
               .long 0x63a86cb6\n.asciz \"NixOS\"\n.balign 4\n.asciz \"liba.so\"\n\
               .byte 0x3f, 0, 0\n.balign 4\n";
    let s = l.write(".build/note.s", src.as_bytes());
    let note_o = l.p(".build/note.o");
    run_ok(Command::new("gcc").arg("-c").arg(&s).arg("-o").arg(&note_o));
    let main = l.object("main", MAIN_C, &[]);
    for (ld, found) in [("bfd", true), ("mold", false)] {
        let out = l.p(format!("prog-{ld}"));
        run_ok(
            Command::new("gcc")
                .arg(format!("-fuse-ld={ld}"))
                .arg("-Wl,--build-id=sha1")
                .arg(&main)
                .arg(&note_o)
                .arg("-o")
                .arg(&out),
        );
        let listed = stdout_of(&run_ok(
            Command::new("readelf").args(["-n", "-W"]).arg(&out),
        ));
        assert!(
            listed.contains("NixOS"),
            "{ld}: readelf does not list the note"
        );
        let walked = find_note(&out);
        assert_eq!(walked.is_some(), found, "{ld}: walker result {walked:?}");
        if let Some(n) = walked {
            assert_eq!(n.desc, b"liba.so\0?\0\0");
            assert_eq!(n.segment_align, 4);
        }
        // ldnote's own reader agrees with the loader's view.
        let o = run(ldnote_cmd().args(["show", "--json"]).arg(&out));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(
            v["status"],
            if found { "noted" } else { "none" },
            "{ld}: ldnote show: {v}"
        );
    }
}

#[test]
fn stale_notes_are_rewritten_to_what_patchelf_writes_now() {
    // The layout changes after noting (libraries appear in 30 more run-path dirs, then vanish
    // again): `ldnote patch` on a stale note, whoever wrote it, must leave exactly the note
    // patchelf writes now on an un-noted copy (growing past the old note's room, then shrinking).
    if require_tool("patchelf").is_none() {
        return;
    }
    let l = Layout::new();
    let a = l.lib_in("d1", "liba.so");
    let extra: Vec<Vec<u8>> = (0..30).map(|i| l.pb(format!("e{i:02}"))).collect();
    for i in 0..30 {
        l.mkdir(format!("e{i:02}"));
    }
    let mut comps = vec![l.pb("d1")];
    comps.extend(extra.iter().cloned());
    let refs: Vec<&[u8]> = comps.iter().map(|c| &c[..]).collect();
    let bare = Link::program(&l)
        .input(&a)
        .runpath(join_rp(&refs))
        .build_twins("prog");
    let twin = PathBuf::from(cat(&[bytes(&bare), LINKED_TWIN.as_bytes()]));
    let by_pe = copy_as(&bare, "by-patchelf");
    run_ok(
        Command::new("patchelf")
            .arg("--build-resolution-cache")
            .arg(&by_pe),
    );
    let by_ln = copy_as(&bare, "by-ldnote");
    run_ok(ldnote_cmd().arg("patch").arg(&by_ln));
    let noted = [by_pe, by_ln, twin];
    for n in &noted {
        assert!(note_desc(n).is_some(), "{}", n.display());
    }

    let grow = |on: bool| {
        for i in 0..29 {
            let p = l.p(format!("e{i:02}/liba.so"));
            if on {
                std::fs::copy(&a, &p).expect("copy");
            } else {
                std::fs::remove_file(&p).expect("rm");
            }
        }
    };
    for step in ["grow", "shrink"] {
        grow(step == "grow");
        let fresh = copy_as(&bare, &format!("fresh-{step}"));
        run_ok(
            Command::new("patchelf")
                .arg("--build-resolution-cache")
                .arg(&fresh),
        );
        let want = note_desc(&fresh).expect("patchelf note");
        for n in &noted {
            let o = run(ldnote_cmd().arg("check").arg(n));
            assert_eq!(
                o.status.code(),
                Some(1),
                "{step}: check must see the stale note of {}",
                n.display()
            );
            let o = run(ldnote_cmd().arg("patch").arg(n));
            assert!(
                o.status.success(),
                "{step} {}: {}",
                n.display(),
                stderr_of(&o)
            );
            let got = note_desc(n).expect("note after re-noting");
            assert_eq!(
                got.escape_ascii().to_string(),
                want.escape_ascii().to_string(),
                "{step} {}",
                n.display()
            );
            run_ok(ldnote_cmd().arg("check").arg(n));
            let before = std::fs::read(n).expect("read");
            run_ok(&mut patchelf_cmd(n));
            assert!(
                std::fs::read(n).expect("read") == before,
                "{step}: patchelf rewrote {}",
                n.display()
            );
            let r = run(Command::new("readelf").args(["-a", "-W"]).arg(n));
            assert!(
                r.stderr.is_empty(),
                "{step} {}: readelf: {}",
                n.display(),
                stderr_of(&r)
            );
            run_ok(&mut Command::new(n));
        }
    }
}
