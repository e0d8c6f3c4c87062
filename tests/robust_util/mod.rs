//! Helpers shared by the robustness tests (`tests/robust/`): wrapper "linkers" that run the
//! real gcc and then misbehave, a snapshot of the linker's exact bytes, the reference noted
//! file, scratch tmpfs mounts, and the "nothing lost" assertion.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

pub mod fuzz_checks;

/// A wrapper "linker": runs `gcc "$@"`, copies the output's exact bytes to `$out.linker` (or to
/// `$LDNOTE_TEST_SNAPSHOT`; through a rename, so the copy is complete when it appears), then
/// runs `after` (shell, with `$out` set). Exit status: gcc's, unless `after` exits otherwise.
pub fn wrapper(l: &Layout, name: &str, after: &str) -> PathBuf {
    let script = format!(
        "#!/bin/sh\nout=a.out\nfor a in \"$@\"; do if [ \"$prev\" = -o ]; then out=\"$a\"; fi; prev=\"$a\"; done\n\
         gcc \"$@\" || exit $?\nsnap=\"${{LDNOTE_TEST_SNAPSHOT:-$out.linker}}\"\n\
         cp \"$out\" \"$snap.tmp\" && mv \"$snap.tmp\" \"$snap\" || exit 99\n{after}\nexit 0\n"
    );
    let p = l.write(format!("tools/{name}"), script.as_bytes());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// A program linked against one library with a run path; `data_kib` of initialised data make
/// the output (and so the append fallback's copy) large.
pub fn program_args(l: &Layout, out: &Path, data_kib: usize) -> Vec<std::ffi::OsString> {
    let lib = l.lib_in("d1", "liba.so");
    let src = format!(
        "static char big[{}] = {{1}};\nint ldnote_test_lib_fn(int);\n\
         int main(void) {{ return ldnote_test_lib_fn(big[0]) - 2; }}\n",
        data_kib.max(1) * 1024
    );
    let main = l.object(&format!("main{data_kib}"), &src, &[]);
    vec![
        "-o".into(),
        out.into(),
        main.into(),
        lib.into(),
        "-Wl,--enable-new-dtags".into(),
        cat(&[b"-Wl,-rpath,", &l.pb("d1")]),
    ]
}

/// What `ldnote` writes on the linker's bytes: `ldnote patch` on a copy (the note step of
/// `ldnote link` is the same code on the same bytes; resolution does not depend on the name).
pub fn reference_noted(linker_bytes: &Path, scratch: &Path) -> Vec<u8> {
    std::fs::copy(linker_bytes, scratch).expect("copy");
    run_ok(ldnote_cmd().arg("patch").arg(scratch));
    let b = std::fs::read(scratch).expect("read reference");
    std::fs::remove_file(scratch).expect("rm reference");
    b
}

/// Which of the two allowed states a file is in.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum State {
    LinkerBytes,
    Noted,
}

/// The rule under test: the output is exactly the linker's bytes or exactly the complete noted
/// file; anything else fails with a description of the difference.
pub fn assert_linker_or_noted(out: &Path, linker: &[u8], noted: &[u8], what: &str) -> State {
    let got = std::fs::read(out).unwrap_or_else(|e| panic!("{what}: output unreadable: {e}"));
    if got == linker {
        return State::LinkerBytes;
    }
    if got == noted {
        return State::Noted;
    }
    let first = got
        .iter()
        .zip(linker)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(linker.len()));
    panic!(
        "{what}: output ({} bytes) is neither the linker's bytes ({} bytes) nor the noted file \
         ({} bytes); first difference from the linker's at {first:#x}",
        got.len(),
        linker.len(),
        noted.len()
    );
}

/// Temporary files ldnote left beside `out` (`.NAME.ldnote-*`).
pub fn leftovers(out: &Path) -> Vec<PathBuf> {
    let name = out
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let head = format!(".{name}.ldnote");
    std::fs::read_dir(out.parent().expect("dir"))
        .expect("list dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&head))
        .map(|e| e.path())
        .collect()
}

/// A tmpfs of `kib` KiB mounted at `dir` for the life of the value (root only; `None` and a
/// printed reason elsewhere, an error in CI).
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, kib: usize) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("mkdir mount point");
        let o = run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={kib}k"))
            .arg("tmpfs")
            .arg(dir));
        if o.status.success() {
            return Some(Tmpfs(dir.to_owned()));
        }
        let why = format!(
            "cannot mount a tmpfs ({}): needs root",
            stderr_of(&o).trim()
        );
        skip_or_fail("tmpfs", &why);
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Send SIGKILL to a process id (through kill(1): the tests forbid unsafe code too).
pub fn kill9(pid: u32) {
    let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
}

/// A tiny deterministic PRNG (xorshift) for kill delays: reproducible, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}
