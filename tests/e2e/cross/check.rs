//! Per-case verification: the program's output, each object's exact note, the note's byte
//! order, and every `=` entry against the target loader (harness::peel).

use super::harness::{self, host, Image};
use std::collections::BTreeMap;
use std::path::Path;

/// Counts for one target, and every mismatch with its details.
pub struct Tally {
    pub name: &'static str,
    pub cases: usize,
    pub checked: usize,
    pub byte_order: usize,
    pub bad: Vec<String>,
    pub notes: Vec<String>,
}

impl Tally {
    pub fn fail(&mut self, case: &str, msg: String) {
        self.bad.push(format!("[{}/{case}] {msg}", self.name));
    }
}

/// What one case expects of one noted object: its exact note (soname -> path list).
pub struct Want<'w> {
    pub obj: &'w str,
    pub note: &'w [(&'w str, &'w [&'w str])],
}

/// Run `prog`, compare its output, then check each object's note exactly and against the
/// loader (peeling every soname the note names).
pub fn verify(
    img: &Image,
    t: &mut Tally,
    case: &str,
    prog: &str,
    out: &str,
    wants: &[Want],
    mount: Option<(&Path, &Path)>,
) {
    t.cases += 1;
    let first = harness::trace(img, prog, mount);
    if !first.ok || first.stdout != out {
        let tail: Vec<&str> = first.raw.lines().rev().take(6).collect();
        t.fail(
            case,
            format!(
                "program printed {:?} (ok={}), expected {out:?}; stderr tail {tail:?}",
                first.stdout, first.ok
            ),
        );
    }
    for w in wants {
        let file = host(&img.root, w.obj);
        let note = harness::show(&file);
        let want: BTreeMap<String, Vec<String>> = w
            .note
            .iter()
            .map(|(s, l)| (s.to_string(), l.iter().map(|p| p.to_string()).collect()))
            .collect();
        if note != want {
            t.fail(case, format!("{}: note {note:?}, expected {want:?}", w.obj));
        }
        check_byte_order(img, t, case, &file, !note.is_empty());
        // `ldnote check` against the same sysroot agrees that the note is current.
        let chk = std::process::Command::new(crate::common::ldnote())
            .arg("check")
            .arg("--sysroot")
            .arg(&img.root)
            .arg(&file)
            .output()
            .expect("run ldnote check");
        if !chk.status.success() {
            let err = String::from_utf8_lossy(&chk.stderr);
            t.fail(
                case,
                format!(
                    "{}: `ldnote check --sysroot` says {}: {}",
                    w.obj,
                    chk.status,
                    err.trim()
                ),
            );
        }
        let rpath = harness::run_path(&file);
        for (soname, list) in &note {
            let seq = harness::peel(img, prog, &first, soname, &rpath, mount);
            let (n, bad) = harness::check_against_loader(list, &seq);
            t.checked += n;
            for b in bad {
                t.fail(case, format!("{} {soname}: {b}", w.obj));
            }
        }
    }
}

/// The note's header must be in the target's byte order: namesz 6 and n_type 0x63a86cb6 as
/// stored bytes (big-endian on s390x).
fn check_byte_order(img: &Image, t: &mut Tally, case: &str, file: &Path, noted: bool) {
    let heads = harness::raw_note_headers(file);
    if !noted {
        return;
    }
    let (namesz, ty) = if img.arch.big_endian {
        (6u32.to_be_bytes(), 0x63a8_6cb6u32.to_be_bytes())
    } else {
        (6u32.to_le_bytes(), 0x63a8_6cb6u32.to_le_bytes())
    };
    t.byte_order += 1;
    match heads.as_slice() {
        [h] if h[0..4] == namesz && h[8..12] == ty => {}
        _ => t.fail(case, format!("{}: note headers {heads:02x?}, expected one with namesz {namesz:02x?} and type {ty:02x?}", file.display())),
    }
}

pub fn main_src(calls: &[(&str, &str)]) -> String {
    let mut s = String::from("#include <stdio.h>\n");
    for (_, f) in calls {
        s += &format!("int {f}(void);\n");
    }
    let fmt: Vec<String> = calls.iter().map(|(l, _)| format!("{l}=%d")).collect();
    let args: Vec<String> = calls.iter().map(|(_, f)| format!("{f}()")).collect();
    s + &format!(
        "int main(void) {{ printf(\"{}\\n\", {}); return 0; }}\n",
        fmt.join(" "),
        args.join(", ")
    )
}

/// A program `bin` calling `calls`, linked through ldnote with `args`.
pub fn program(img: &Image, stem: &str, bin: &str, calls: &[(&str, &str)], args: &[String]) {
    let o = img.object(stem, &main_src(calls), &img.gcc(), &[]);
    img.link(bin, &[&o], args);
}

pub fn s(v: &str) -> String {
    v.to_string()
}
