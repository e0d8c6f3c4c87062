//! Shared helpers of the integration tests, used by every test binary: running commands (`run`,
//! `run_ok`), tool requirements (a missing tool skips locally and fails under `CI=true`), temp
//! layouts with gcc-built tiny libraries and programs, and (`walk.rs`) a PT_NOTE walker that is
//! independent of ldnote's own reader.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

mod walk;
// Not every test binary reads notes.
#[allow(unused_imports)]
pub use walk::*;

/// The note owner and type (NOTE-FORMAT.md), restated here rather than imported from the crate.
pub const NOTE_NAME: &[u8] = b"NixOS\0";
pub const NOTE_TYPE: u32 = 0x63a8_6cb6;

/// The ldnote binary under test.
pub const LDNOTE: &str = env!("CARGO_BIN_EXE_ldnote");

/// The ldnote binary under test, as a path.
pub fn ldnote() -> PathBuf {
    PathBuf::from(LDNOTE)
}

/// `Command` for the ldnote binary, with the environment knobs that would change its behaviour
/// cleared, so a developer's shell cannot change a test's outcome.
pub fn ldnote_cmd() -> Command {
    let mut c = Command::new(ldnote());
    for k in [
        "LDNOTE_SYSROOT",
        "LDNOTE_STRICT",
        "LDNOTE_DISABLE",
        "LDNOTE_LOG",
        "LDNOTE_IMMUTABLE",
        "LDNOTE_LINKER",
        "LDNOTE_GLIBC",
        "LDNOTE_ACTIVE",
    ] {
        c.env_remove(k);
    }
    c
}

/// `ldnote link`, with `--strict` when `strict` (the two modes most robustness cases run).
pub fn ldnote_link(strict: bool) -> Command {
    let mut c = ldnote_cmd();
    c.arg("link");
    if strict {
        c.arg("--strict");
    }
    c
}

/// The repository root (the crate's manifest directory).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether CI is on (`CI=true`): a missing tool or prerequisite is then an error, never a skip.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| v == "true")
}

/// Skip (locally, with a printed reason) or fail (under `CI=true`) for a missing prerequisite.
pub fn skip_or_fail(what: &str, why: &str) {
    if in_ci() {
        panic!("{what}: {why} (CI=true: a missing tool is an error)");
    }
    eprintln!("SKIP {what}: {why}");
}

/// Find a tool on PATH. Locally a missing tool skips the test with a printed reason; in CI
/// (`CI=true`) it is an error, because a skipped differential test proves nothing.
pub fn require_tool(name: &str) -> Option<PathBuf> {
    match which::which(name) {
        Ok(p) => Some(p),
        Err(e) => {
            if in_ci() {
                panic!(
                    "required tool `{name}` not found on PATH ({e}); CI=true makes this an error"
                );
            }
            eprintln!("SKIP: required tool `{name}` not found on PATH ({e})");
            None
        }
    }
}

/// The first of `progs` not on PATH, if any (a probe: pair it with [`skip_or_fail`]).
pub fn missing(progs: &[&str]) -> Option<String> {
    progs
        .iter()
        .find(|p| which::which(p).is_err())
        .map(|p| p.to_string())
}

/// Whether `tool` is on PATH; under `CI=true` a missing tool is an error, locally a skip.
pub fn have(tool: &str) -> bool {
    require_tool(tool).is_some()
}

/// Whether every one of `tools` is on PATH (under `CI=true` a missing one is an error).
pub fn have_all(tools: &[&str]) -> bool {
    tools.iter().all(|t| have(t))
}

/// `let x = require!("patchelf");` returns from the test (skip) when the tool is missing locally.
#[macro_export]
macro_rules! require {
    ($name:expr) => {
        match $crate::common::require_tool($name) {
            Some(p) => p,
            None => return,
        }
    };
}

/// Run a command and capture its output; panics (with the command line) only if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null());
    match busy_retry(|| cmd.output()) {
        Ok(o) => o,
        Err(e) => panic!("cannot run {cmd:?}: {e}"),
    }
}

/// Start a process, retrying while the kernel answers ETXTBSY: a program a test has just
/// written is still open for writing in a child that another test thread forked in that moment
/// (until that child's exec closes its copy of the descriptor), so exec refuses it briefly.
fn busy_retry<T>(mut start: impl FnMut() -> std::io::Result<T>) -> std::io::Result<T> {
    let mut tries = 0;
    loop {
        match start() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// Run a command with a time limit; `None` (after killing the child) when it did not finish.
pub fn run_timeout(cmd: &mut Command, limit: std::time::Duration) -> Option<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child =
        busy_retry(|| cmd.spawn()).unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let start = std::time::Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return Some(child.wait_with_output().expect("collect output")),
            Ok(None) if start.elapsed() < limit => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// Run a command that must succeed; on failure print everything it said.
pub fn run_ok(cmd: &mut Command) -> Output {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "command failed ({}): {cmd:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Concatenate path bytes (paths are bytes, never `String`).
pub fn cat(parts: &[&[u8]]) -> OsString {
    OsString::from_vec(parts.concat())
}

pub fn bytes(p: &Path) -> &[u8] {
    p.as_os_str().as_bytes()
}

/// A temporary directory tree for one test.
pub struct Layout {
    pub tmp: tempfile::TempDir,
    /// The C compiler driver used for libraries and links (a cross gcc for foreign targets).
    pub cc: String,
    pic: OnceLock<PathBuf>,
}

impl Default for Layout {
    fn default() -> Self {
        Self::new()
    }
}

impl Layout {
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("ldnote-test-")
            .tempdir()
            .expect("create temp dir");
        Layout {
            tmp,
            cc: "gcc".into(),
            pic: OnceLock::new(),
        }
    }

    /// A layout whose libraries and links use another compiler driver (e.g. a cross gcc).
    pub fn with_cc(cc: &str) -> Self {
        Layout {
            cc: cc.into(),
            ..Self::new()
        }
    }

    pub fn root(&self) -> &Path {
        self.tmp.path()
    }

    /// Absolute path of a relative path inside the layout.
    pub fn p(&self, rel: impl AsRef<OsStr>) -> PathBuf {
        self.root().join(rel.as_ref())
    }

    /// Absolute path bytes of `rel` (for building run paths byte by byte).
    pub fn pb(&self, rel: impl AsRef<OsStr>) -> Vec<u8> {
        self.p(rel).into_os_string().into_vec()
    }

    pub fn mkdir(&self, rel: impl AsRef<OsStr>) -> PathBuf {
        let p = self.p(rel);
        std::fs::create_dir_all(&p).expect("mkdir");
        p
    }

    pub fn write(&self, rel: impl AsRef<OsStr>, data: &[u8]) -> PathBuf {
        let p = self.p(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir parent");
        }
        std::fs::write(&p, data).expect("write");
        p
    }

    pub fn symlink(&self, target: impl AsRef<OsStr>, rel: impl AsRef<OsStr>) -> PathBuf {
        let p = self.p(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir parent");
        }
        std::os::unix::fs::symlink(target.as_ref(), &p).expect("symlink");
        p
    }

    /// One position-independent object shared by every library of the layout (compiled once:
    /// each library is then a separate `gcc -shared` link with its own soname).
    pub fn pic_object(&self) -> &Path {
        self.pic.get_or_init(|| {
            let src = self.write(
                ".build/lib.c",
                b"int ldnote_test_lib_fn(int x) { return x + 1; }\n",
            );
            let obj = self.p(".build/lib.o");
            run_ok(
                Command::new(&self.cc)
                    .args(["-c", "-fPIC", "-O1", "-o"])
                    .arg(&obj)
                    .arg(&src),
            );
            obj
        })
    }

    /// Build a real shared library at `rel` with the given soname (None: no DT_SONAME).
    pub fn lib(&self, rel: impl AsRef<OsStr>, soname: Option<&[u8]>) -> PathBuf {
        let out = self.p(rel);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).expect("mkdir parent");
        }
        let obj = self.pic_object().to_owned();
        let mut c = Command::new(&self.cc);
        c.args(["-shared", "-o"]).arg(&out).arg(&obj);
        if let Some(s) = soname {
            c.arg(cat(&[b"-Wl,-soname,", s]));
        }
        run_ok(&mut c);
        out
    }

    /// Build a library whose soname is its file name, in directory `dir` (relative).
    pub fn lib_in(&self, dir: &str, soname: &str) -> PathBuf {
        self.lib(format!("{dir}/{soname}"), Some(soname.as_bytes()))
    }

    /// Compile a C source (as a file in `.build/`) to an object.
    pub fn object(&self, name: &str, src: &str, extra: &[&str]) -> PathBuf {
        let c = self.write(format!(".build/{name}.c"), src.as_bytes());
        let o = self.p(format!(".build/{name}.o"));
        run_ok(
            Command::new(&self.cc)
                .arg("-c")
                .args(extra)
                .arg("-o")
                .arg(&o)
                .arg(&c),
        );
        o
    }
}

/// How the run path of a linked object is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    Runpath,
    Rpath,
}

/// A link of a program or shared library against libraries, with full control over the
/// DT_NEEDED order (`-Wl,--no-as-needed`, inputs given as paths) and the run path bytes.
pub struct Link<'a> {
    pub layout: &'a Layout,
    pub inputs: Vec<OsString>,
    pub runpath: Option<Vec<u8>>,
    pub tag: Tag,
    pub shared: bool,
    pub extra: Vec<OsString>,
}

pub const MAIN_C: &str = "int main(void) { return 0; }\n";

impl<'a> Link<'a> {
    pub fn program(layout: &'a Layout) -> Self {
        Link {
            layout,
            inputs: vec![],
            runpath: None,
            tag: Tag::Runpath,
            shared: false,
            extra: vec![],
        }
    }

    pub fn shared(layout: &'a Layout) -> Self {
        Link {
            shared: true,
            ..Self::program(layout)
        }
    }

    /// Link against a library file given by path (DT_NEEDED = its soname, or the path if none).
    pub fn input(mut self, p: impl AsRef<OsStr>) -> Self {
        self.inputs.push(p.as_ref().to_owned());
        self
    }

    pub fn inputs<I: IntoIterator<Item = P>, P: AsRef<OsStr>>(mut self, ps: I) -> Self {
        for p in ps {
            self.inputs.push(p.as_ref().to_owned());
        }
        self
    }

    pub fn runpath(mut self, rp: impl AsRef<[u8]>) -> Self {
        self.runpath = Some(rp.as_ref().to_vec());
        self
    }

    pub fn tag(mut self, t: Tag) -> Self {
        self.tag = t;
        self
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.extra.push(a.as_ref().to_owned());
        self
    }

    /// The gcc arguments (after the compiler name) that produce `out`.
    pub fn args(&self, out: &Path) -> Vec<OsString> {
        let l = self.layout;
        let main = if self.shared {
            l.object(
                "shmain",
                "int ldnote_test_shared(void) { return 7; }\n",
                &["-fPIC"],
            )
        } else {
            l.object("main", MAIN_C, &[])
        };
        let mut a: Vec<OsString> = vec![];
        if self.shared {
            a.push("-shared".into());
        }
        a.push("-o".into());
        a.push(out.into());
        a.push(main.into());
        a.push("-Wl,--no-as-needed".into());
        a.extend(self.inputs.iter().cloned());
        if let Some(rp) = &self.runpath {
            a.push(match self.tag {
                Tag::Runpath => "-Wl,--enable-new-dtags".into(),
                Tag::Rpath => "-Wl,--disable-new-dtags".into(),
            });
            // `-Wl,-rpath,X` would split X at commas; `-Wl,-rpath=` + `-Xlinker` keeps bytes intact.
            a.push("-Xlinker".into());
            a.push("-rpath".into());
            a.push("-Xlinker".into());
            a.push(OsString::from_vec(rp.clone()));
        }
        a.extend(self.extra.iter().cloned());
        a
    }

    /// Link with plain gcc (no ldnote) to `rel`.
    pub fn build(&self, rel: &str) -> PathBuf {
        let out = self.layout.p(rel);
        if let Some(parent) = out.parent() {
            std::fs::create_dir_all(parent).expect("mkdir parent");
        }
        run_ok(Command::new(&self.layout.cc).args(self.args(&out)));
        out
    }
}

/// Suffix of the twin that [`Link::build_twins`] links through `ldnote link`.
pub const LINKED_TWIN: &str = ".ldnote-linked";

impl Link<'_> {
    /// Link twice with the same arguments: plainly to `rel` (returned) and through
    /// `ldnote link -- <cc>` to `rel` + [`LINKED_TWIN`], so a test can compare the link-time note
    /// with what patchelf writes on the plain one.
    pub fn build_twins(&self, rel: &str) -> PathBuf {
        let out = self.build(rel);
        let twin = self.layout.p(format!("{rel}{LINKED_TWIN}"));
        let o = run(ldnote_cmd()
            .args(["link", "-v", "--"])
            .arg(&self.layout.cc)
            .args(self.args(&twin)));
        assert!(
            o.status.success(),
            "ldnote link failed ({}):\n{}",
            o.status,
            stderr_of(&o)
        );
        out
    }
}

/// Human-readable form of a descriptor for assertion messages: `soname -> [entries]` per line.
pub fn pretty_desc(desc: Option<&[u8]>) -> String {
    let Some(d) = desc else {
        return "<no note>".into();
    };
    let mut s = String::new();
    let body = d.strip_suffix(b"\0\0").unwrap_or(d);
    let parts: Vec<&[u8]> = body.split(|&b| b == 0).collect();
    for pair in parts.chunks(2) {
        let so = String::from_utf8_lossy(pair[0]);
        let pl = pair
            .get(1)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_default();
        s.push_str(&format!("  {so} -> {pl}\n"));
    }
    s.push_str(&format!("  ({} bytes)", d.len()));
    s
}

/// Run `patchelf --build-resolution-cache` on a file (in place).
pub fn patchelf_cache(file: &Path) -> Output {
    run(Command::new("patchelf")
        .arg("--build-resolution-cache")
        .arg(file))
}

/// Run `ldnote patch` on a file (in place) with extra options.
pub fn ldnote_patch(file: &Path, opts: &[&str]) -> Output {
    run(ldnote_cmd().arg("patch").args(opts).arg(file))
}

/// Copy a file next to itself under a new name and return the copy's path.
pub fn copy_as(src: &Path, name: &str) -> PathBuf {
    let dst = src.with_file_name(name);
    std::fs::copy(src, &dst).expect("copy");
    dst
}

/// The DT_NEEDED list and run path of a file, read with readelf (a third, independent reader),
/// for assertion messages and for checking that a layout is what the test meant to build.
pub fn readelf_dynamic(path: &Path) -> String {
    stdout_of(&run(Command::new("readelf").args(["-dW"]).arg(path)))
        .lines()
        .filter(|l| l.contains("(NEEDED)") || l.contains("PATH)"))
        .map(|l| l.trim().to_string() + "\n")
        .collect()
}
