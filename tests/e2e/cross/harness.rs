//! Machinery for `cross/mod.rs`: target images (sysroots) built with Debian's cross compilers,
//! `ldnote link` through the cross gcc, and the ground truth from the target's own glibc loader
//! under qemu-user (`LD_DEBUG=libs`: glibc prints `find library=`, `search path=` and `trying file=` lines).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{ldnote, run_ok};

/// One target as the tests drive it (the loader facts live in targets/*.toml).
pub struct Arch {
    /// Name of the targets/*.toml entry.
    pub name: &'static str,
    /// GNU triple: `<triple>-gcc`, `/usr/<triple>/lib`.
    pub triple: &'static str,
    /// `qemu-<qemu>`.
    pub qemu: &'static str,
    /// Directory of the cross libc and loader on this machine.
    pub libc_dir: &'static str,
    /// Loader file name, and the image directory PT_INTERP names.
    pub ldso: &'static str,
    pub interp_dir: &'static str,
    /// Extra link flags (the native x86_64 gcc needs its crt files named; see `Image::link`).
    pub link_extra: &'static [&'static str],
    /// Compiler and flags for a library of the other ELF class (loader: skip, found_other_class).
    pub other_class: (&'static str, &'static [&'static str]),
    /// Compiler for a library of another machine (host decoys).
    pub foreign: &'static str,
    /// Compiler and flags for a library of another byte order (and machine).
    pub other_endian: (&'static str, &'static [&'static str]),
    /// Compiler and flags for a library of the wrong float ABI / ELF ABI (e_flags rule).
    pub flags_decoy: Option<(&'static str, &'static [&'static str])>,
    /// A legacy hwcaps subdirectory the loader probes under qemu (glibc 2.36).
    pub legacy_subdir: &'static str,
    /// Other linkers that support this target (`-fuse-ld=`): Debian's gold has no riscv64,
    /// lld 14 no s390x and no riscv64 relaxation.
    pub linkers: &'static [&'static str],
    /// Compiler flags for the one-step compile+link (riscv64: rv64g, no RVC flag in e_flags).
    pub one_step_cflags: &'static [&'static str],
    pub big_endian: bool,
    /// Whether `ldnote patch` can append a note to a file linked without a reservation. On
    /// mips64el it cannot make room ("a section in the way cannot be moved"): it must then fail
    /// cleanly and leave the file unchanged.
    pub append: bool,
}

/// Image path `p` (absolute, as the target sees it) inside the sysroot `s`.
pub fn host(s: &Path, p: &str) -> PathBuf {
    s.join(p.trim_start_matches('/'))
}

/// A target image under construction: a sysroot holding the cross loader and libc, plus a
/// scratch directory for sources and objects.
pub struct Image<'a> {
    pub arch: &'a Arch,
    pub root: PathBuf,
    pub work: PathBuf,
    _tmp: tempfile::TempDir,
}

impl<'a> Image<'a> {
    /// `$S/lib` gets the loader and libc.so.6 (copied: an absolute symlink to /usr/<triple>
    /// would point outside the image); `$S/etc/ld.so.cache` is an empty file so that the guest
    /// loader does not read the host's cache (qemu -L falls back to host paths).
    pub fn new(arch: &'a Arch) -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("ldnote-cross-")
            .tempdir()
            .expect("tempdir");
        let root = tmp.path().join("sysroot");
        let work = tmp.path().join("work");
        for d in ["lib", "etc", arch.interp_dir] {
            fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        fs::create_dir_all(&work).expect("mkdir");
        let src = Path::new(arch.libc_dir);
        // The loader is next to libc.so.6, or (mips64el) in the cross tree's own lib64.
        let ldso = [
            src.join(arch.ldso),
            src.join("..").join(arch.interp_dir).join(arch.ldso),
        ]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| src.join(arch.ldso));
        copy(&ldso, &root.join(arch.interp_dir).join(arch.ldso));
        copy(&src.join("libc.so.6"), &root.join("lib/libc.so.6"));
        fs::write(root.join("etc/ld.so.cache"), b"").expect("write");
        Image {
            arch,
            root,
            work,
            _tmp: tmp,
        }
    }

    pub fn gcc(&self) -> String {
        format!("{}-gcc", self.arch.triple)
    }

    /// Compile C `src` (named `stem`) with `cc flags` into an object in the work dir.
    pub fn object(&self, stem: &str, src: &str, cc: &str, flags: &[&str]) -> PathBuf {
        let c = self.work.join(format!("{stem}.c"));
        let o = self.work.join(format!("{stem}.o"));
        fs::write(&c, src).expect("write source");
        run_ok(
            Command::new(cc)
                .args(flags)
                .args(["-c", "-fPIC", "-O1", "-o"])
                .arg(&o)
                .arg(&c),
        );
        o
    }

    /// A shared library `soname` at image path `at` with `int <sym>(void)` returning `val`,
    /// built by plain `<triple>-gcc` (no ldnote: it has no run path).
    pub fn lib(&self, at: &str, soname: &str, sym: &str, val: i32) -> PathBuf {
        let src = format!("int {sym}(void) {{ return {val}; }}\n");
        let stem = format!("{sym}_{val}");
        let o = self.object(&stem, &src, &self.gcc(), &[]);
        let out = host(&self.root, at);
        fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
        run_ok(
            Command::new(self.gcc())
                .args(["-shared", "-o"])
                .arg(&out)
                .arg(&o)
                .arg(format!("-Wl,-soname,{soname}")),
        );
        out
    }

    /// A decoy library built by another compiler without libc (`-nostdlib`): only its header
    /// matters to the loader, which must skip it.
    pub fn decoy(&self, out: &Path, soname: &str, sym: &str, cc: &str, flags: &[&str]) {
        let src = format!("int {sym}(void) {{ return -1; }}\n");
        let c = self.work.join(format!("decoy_{sym}.c"));
        fs::write(&c, src).expect("write");
        fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
        run_ok(
            Command::new(cc)
                .args(flags)
                .args(["-nostdlib", "-shared", "-fPIC", "-o"])
                .arg(out)
                .arg(&c)
                .arg(format!("-Wl,-soname,{soname}")),
        );
    }

    /// Link through `ldnote link -- <triple>-gcc --sysroot=$S ...`.
    ///
    /// What works with Debian's cross gcc (configured `--with-sysroot=/`): `--sysroot=$S` alone.
    /// Its crt files, libc.so script and libgcc come from the compiler's own tooldir
    /// (`/usr/lib/gcc-cross/<triple>/12/../../../../<triple>/lib`), which the sysroot does not
    /// prefix; only `/lib`, `/usr/lib` and `=`-paths move under `$S`. Objects are compiled
    /// without `--sysroot` (headers from /usr/<triple>/include). The native x86_64 gcc has no
    /// tooldir: it needs `-B/usr/lib/x86_64-linux-gnu/ -L/usr/lib/x86_64-linux-gnu` (`link_extra`).
    pub fn link(&self, out: &str, objs: &[&Path], args: &[String]) -> Output {
        self.ldnote_link(out, objs, args, true)
    }

    /// The same, with the sysroot given to ldnote as `LDNOTE_SYSROOT` instead of on the link
    /// line (Debian's cross gcc finds its crt files and libc without `--sysroot`).
    pub fn link_env_sysroot(&self, out: &str, objs: &[&Path], args: &[String]) -> Output {
        self.ldnote_link(out, objs, args, false)
    }

    fn ldnote_link(&self, out: &str, objs: &[&Path], args: &[String], on_line: bool) -> Output {
        let out = host(&self.root, out);
        fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
        let mut cmd = Command::new(ldnote());
        cmd.arg("link").arg("--").arg(self.gcc());
        cmd.env_remove("LDNOTE_SYSROOT")
            .env_remove("LDNOTE_DISABLE");
        if on_line {
            cmd.arg(format!("--sysroot={}", self.root.display()));
        } else {
            cmd.env("LDNOTE_SYSROOT", &self.root);
        }
        cmd.args(self.arch.link_extra)
            .arg("-o")
            .arg(&out)
            .args(objs);
        cmd.args(args).arg("-Wl,--enable-new-dtags");
        run_ok(&mut cmd)
    }

    /// `ldnote patch --sysroot $S FILE` (post-link noting); the caller judges the outcome.
    pub fn patch(&self, file: &Path) -> Output {
        let mut cmd = Command::new(ldnote());
        cmd.arg("patch").arg("--sysroot").arg(&self.root).arg(file);
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
    }

    /// The same link without ldnote (for the patchelf oracle).
    pub fn link_plain(&self, out: &Path, objs: &[&Path], args: &[String]) {
        let mut cmd = Command::new(self.gcc());
        cmd.arg(format!("--sysroot={}", self.root.display()));
        cmd.args(self.arch.link_extra).arg("-o").arg(out).args(objs);
        run_ok(cmd.args(args).arg("-Wl,--enable-new-dtags"));
    }
}

fn copy(from: &Path, to: &Path) {
    fs::copy(from, to)
        .unwrap_or_else(|e| panic!("copy {} -> {}: {e}", from.display(), to.display()));
}

/// The note as `ldnote show --json` reports it: soname -> path list.
pub fn show(file: &Path) -> BTreeMap<String, Vec<String>> {
    let out = run_ok(Command::new(ldnote()).args(["show", "--json"]).arg(file));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("show --json output");
    let mut m = BTreeMap::new();
    if let Some(es) = v["entries"].as_array() {
        for e in es {
            let paths = e["paths"].as_array().expect("paths");
            let paths = paths
                .iter()
                .map(|p| p.as_str().expect("path").to_string())
                .collect();
            m.insert(e["soname"].as_str().expect("soname").to_string(), paths);
        }
    }
    m
}

/// DT_RUNPATH (else DT_RPATH) components of an ELF file, as written.
pub fn run_path(file: &Path) -> Vec<String> {
    use object::read::elf::{Dyn, FileHeader};
    let data = fs::read(file).expect("read elf");
    let kind = object::FileKind::parse(&*data).expect("file kind");
    fn walk<H: FileHeader<Endian = object::Endianness>>(data: &[u8]) -> Option<Vec<String>> {
        let hdr = H::parse(data).ok()?;
        let e = hdr.endian().ok()?;
        let secs = hdr.sections(e, data).ok()?;
        let (dyns, link) = secs.dynamic(e, data).ok()??;
        let strs = secs.strings(e, data, link).ok()?;
        let mut rpath = None;
        for d in dyns {
            let tag = d.d_tag(e).into();
            if tag == u64::from(object::elf::DT_RUNPATH)
                || (tag == u64::from(object::elf::DT_RPATH) && rpath.is_none())
            {
                rpath = Some(d.string(e, strs).ok()?.to_vec());
            }
        }
        let r = rpath?;
        Some(
            r.split(|b| *b == b':')
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect(),
        )
    }
    match kind {
        object::FileKind::Elf64 => walk::<object::elf::FileHeader64<object::Endianness>>(&data),
        object::FileKind::Elf32 => walk::<object::elf::FileHeader32<object::Endianness>>(&data),
        _ => None,
    }
    .unwrap_or_default()
}

/// The raw bytes of each `NixOS` note header found through PT_NOTE segments (walked with the
/// segment's p_align, minimum 4, as the loader does): `(namesz, descsz, type)` bytes as stored.
pub fn raw_note_headers(file: &Path) -> Vec<[u8; 12]> {
    use object::read::elf::{FileHeader, ProgramHeader};
    let data = fs::read(file).expect("read elf");
    fn walk<H: FileHeader<Endian = object::Endianness>>(data: &[u8]) -> Vec<[u8; 12]> {
        let mut found = Vec::new();
        let Ok(hdr) = H::parse(data) else {
            return found;
        };
        let Ok(e) = hdr.endian() else { return found };
        let Ok(phdrs) = hdr.program_headers(e, data) else {
            return found;
        };
        for ph in phdrs {
            if ph.p_type(e) != object::elf::PT_NOTE {
                continue;
            }
            let off: u64 = ph.p_offset(e).into();
            let size: u64 = ph.p_filesz(e).into();
            let align = u64::max(ph.p_align(e).into(), 4) as usize;
            let seg = &data[off as usize..(off + size) as usize];
            let mut i = 0;
            while i + 12 <= seg.len() {
                let rd = |o: usize| {
                    object::Endian::read_u32_bytes(e, seg[o..o + 4].try_into().expect("4"))
                };
                let (nsz, dsz) = (rd(i) as usize, rd(i + 4) as usize);
                let name = seg.get(i + 12..i + 12 + nsz).unwrap_or(&[]);
                if name == b"NixOS\0" {
                    found.push(seg[i..i + 12].try_into().expect("12"));
                }
                i += 12 + nsz.div_ceil(align) * align + dsz.div_ceil(align) * align;
            }
        }
        found
    }
    match object::FileKind::parse(&*data).expect("kind") {
        object::FileKind::Elf64 => walk::<object::elf::FileHeader64<object::Endianness>>(&data),
        object::FileKind::Elf32 => walk::<object::elf::FileHeader32<object::Endianness>>(&data),
        _ => Vec::new(),
    }
}

/// One run of a program under qemu with the target loader's `LD_DEBUG=libs` trace.
pub struct Trace {
    pub stdout: String,
    pub ok: bool,
    /// soname -> files tried, in order (one `find library=` block each).
    pub tries: BTreeMap<String, Vec<String>>,
    /// sonames the loader reported it could not load.
    pub failed: Vec<String>,
    pub raw: String,
}

impl Trace {
    /// The file the loader settled on for `soname`: the last `trying file=` of its block
    /// (the search stops at the first usable file), unless loading it failed.
    pub fn loaded(&self, soname: &str) -> Option<&str> {
        if self.failed.iter().any(|f| f == soname) {
            return None;
        }
        self.tries.get(soname)?.last().map(String::as_str)
    }
}

/// Run `prog` (image path) under `qemu-<arch> -L $S`. `mount` = (image dir, host mount point):
/// run inside a private mount namespace where the host path is the image's directory, so that
/// absolute symlinks inside the image resolve as they would on the target (qemu's -L only
/// redirects paths that exist under the sysroot, and the host kernel resolves symlink targets).
pub fn trace(img: &Image, prog: &str, mount: Option<(&Path, &Path)>) -> Trace {
    let qemu = format!("qemu-{}", img.arch.qemu);
    let mut cmd;
    match mount {
        Some((dir, at)) => {
            cmd = Command::new("unshare");
            cmd.args([
                "-m",
                "sh",
                "-c",
                "mount --bind \"$1\" \"$2\" && shift 2 && exec \"$@\"",
                "sh",
            ]);
            cmd.arg(dir).arg(at).arg(&qemu);
        }
        None => cmd = Command::new(&qemu),
    }
    cmd.arg("-L")
        .arg(&img.root)
        .args(["-E", "LD_DEBUG=libs"])
        .arg(host(&img.root, prog));
    cmd.current_dir(&img.work);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut tries: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failed = Vec::new();
    let mut cur: Option<String> = None;
    for line in err.lines() {
        if let Some(i) = line.find("error while loading shared libraries: ") {
            let rest = &line[i + "error while loading shared libraries: ".len()..];
            failed.push(rest.split(':').next().unwrap_or("").to_string());
            continue;
        }
        // `   PID:\tTEXT`
        let Some((pid, text)) = line.split_once(":\t") else {
            continue;
        };
        if pid.trim().parse::<u32>().is_err() {
            continue;
        }
        if let Some(r) = text.strip_prefix("find library=") {
            let name = r.split(" [").next().unwrap_or("").to_string();
            tries.entry(name.clone()).or_default();
            cur = Some(name);
        } else if let Some(f) = text.trim_start().strip_prefix("trying file=") {
            if let Some(n) = &cur {
                tries.entry(n.clone()).or_default().push(f.to_string());
            }
        } else if text.trim().is_empty() {
            cur = None;
        }
    }
    Trace {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        ok: out.status.success(),
        tries,
        failed,
        raw: err,
    }
}

/// Whether image path `file` lies in run-path directory `dir` or one of its hwcaps
/// subdirectories (the loader's `dir/<capstr>/name`).
pub fn under(file: &str, dir: &str) -> bool {
    let d = dir.trim_end_matches('/');
    file.len() > d.len() + 1 && file.starts_with(d) && file.as_bytes()[d.len()] == b'/'
}

/// Ground truth for one (object, soname): the files the stock loader loads from the object's
/// run path, in order, obtained by "peeling": run, note the file loaded, rename it away, run
/// again, until the loader takes the soname from outside the run path or fails. Renames are
/// undone before returning.
pub fn peel(
    img: &Image,
    prog: &str,
    first: &Trace,
    soname: &str,
    rpath: &[String],
    mount: Option<(&Path, &Path)>,
) -> Vec<String> {
    let in_rpath = |f: &str| rpath.iter().any(|d| d.starts_with('/') && under(f, d));
    let mut seq = Vec::new();
    let mut moved = Vec::new();
    let mut next = first.loaded(soname).map(str::to_string);
    while let Some(f) = next.take() {
        if !in_rpath(&f) || seq.contains(&f) {
            break;
        }
        let p = host(&img.root, &f);
        let away = PathBuf::from(format!("{}.peeled", p.display()));
        fs::rename(&p, &away).unwrap_or_else(|e| panic!("rename {}: {e}", p.display()));
        moved.push((p, away));
        seq.push(f);
        next = trace(img, prog, mount).loaded(soname).map(str::to_string);
    }
    for (p, away) in moved.into_iter().rev() {
        fs::rename(&away, &p).expect("undo rename");
    }
    seq
}

/// Match a note path list against the loader's peel sequence. `=P` must be the next file the
/// loader loads; `?D` stands for whatever the loader finds in D (and its hwcaps subdirs).
/// Returns the number of `=` entries checked and the mismatches found.
pub fn check_against_loader(list: &[String], seq: &[String]) -> (usize, Vec<String>) {
    let (mut i, mut checked, mut bad) = (0, 0, Vec::new());
    for e in list {
        if let Some(p) = e.strip_prefix('=') {
            checked += 1;
            match seq.get(i) {
                Some(f) if f == p => i += 1,
                Some(f) => bad.push(format!("note has ={p} where the loader loads {f}")),
                None => bad.push(format!(
                    "note has ={p}, the loader loads nothing more from the run path"
                )),
            }
        } else if let Some(d) = e.strip_prefix('?') {
            while seq.get(i).is_some_and(|f| under(f, d)) {
                i += 1;
            }
        }
    }
    if let Some(f) = seq.get(i) {
        bad.push(format!(
            "the loader loads {f}, which the note does not lead to (note: {list:?})"
        ));
    }
    (checked, bad)
}

/// `patchelf --build-resolution-cache` on a copy (the oracle reads the host filesystem).
pub fn patchelf_note(file: &Path) -> BTreeMap<String, Vec<String>> {
    run_ok(
        Command::new("patchelf")
            .arg("--build-resolution-cache")
            .arg(file),
    );
    show(file)
}

/// Whether `patchelf` is the 0.19 series (the first with `--build-resolution-cache`).
pub fn patchelf_ok() -> bool {
    Command::new("patchelf")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.stdout.windows(6).any(|w| w == b" 0.19."))
}

/// A relative or absolute symlink (no check that the target exists).
pub fn symlink(target: &str, at: &Path) {
    fs::create_dir_all(at.parent().expect("parent")).expect("mkdir");
    std::os::unix::fs::symlink(OsStr::from_bytes(target.as_bytes()), at).expect("symlink");
}

/// `e_flags` of an ELF file.
pub fn e_flags(file: &Path) -> u32 {
    let data = fs::read(file).expect("read elf");
    let is_64 = data[4] == object::elf::ELFCLASS64;
    let be = data[5] == object::elf::ELFDATA2MSB;
    let o = if is_64 { 48 } else { 36 };
    let b: [u8; 4] = data[o..o + 4].try_into().expect("4");
    if be {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}
