//! Bad input: failing or killed linkers, missing or non-ELF outputs, truncated and corrupt ELF
//! files, unusable run-path components, outputs that cannot be written, and `--strict`.
//! The rule under test: a clear error naming the file, the linker's status kept, nothing lost.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// A fake "linker": a shell script in the layout. `$out` is the `-o` argument.
fn fake_linker(l: &Layout, name: &str, body: &str) -> PathBuf {
    let script = format!(
        "#!/bin/sh\nout=a.out\nfor a in \"$@\"; do if [ \"$prev\" = -o ]; then out=\"$a\"; fi; prev=\"$a\"; done\n{body}\n"
    );
    let p = l.write(format!("tools/{name}"), script.as_bytes());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// An input object for fake linkers (ldnote passes a link without inputs straight through).
fn input(l: &Layout) -> PathBuf {
    l.object("input", "int ldnote_test_input;\n", &[])
}

/// `ldnote link OPTS -- LD INPUT -o OUT`, run.
fn link_through(l: &Layout, ld: &Path, opts: &[&str], out: &Path) -> std::process::Output {
    run(ldnote_cmd()
        .arg("link")
        .args(opts)
        .arg("--")
        .arg(ld)
        .arg(input(l))
        .arg("-o")
        .arg(out))
}

/// A real, linked, un-noted program with a run path (the raw material of several cases).
fn linked_program(l: &Layout) -> PathBuf {
    let a = l.lib_in("d1", "liba.so");
    Link::program(l).input(&a).runpath(l.pb("d1")).build("prog")
}

fn assert_names_file(o: &std::process::Output, file: &Path) {
    let err = stderr_of(o);
    let name = file.to_string_lossy();
    assert!(
        err.contains(&*name),
        "stderr does not name `{name}`:\n{err}"
    );
}

#[test]
fn linker_failure_passes_through_unchanged() {
    let l = Layout::new();
    let main = l.object(
        "main",
        "int missing_fn(void);\nint main(void) { return missing_fn(); }\n",
        &[],
    );
    let bare = run(Command::new("gcc")
        .arg(&main)
        .arg("-o")
        .arg(l.p("bare"))
        .current_dir(l.root()));
    assert!(!bare.status.success());
    let o = run(ldnote_cmd()
        .args(["link", "--", "gcc"])
        .arg(&main)
        .arg("-o")
        .arg(l.p("out"))
        .current_dir(l.root()));
    assert_eq!(o.status.code(), bare.status.code());
    assert_eq!(
        stderr_of(&o),
        stderr_of(&bare),
        "stderr must pass through byte for byte"
    );
    assert_eq!(o.stdout, bare.stdout);
    assert!(stderr_of(&o).contains("undefined reference to `missing_fn'"));
    assert!(
        !l.p("out").exists(),
        "an output appeared after a failed link"
    );
}

#[test]
fn linker_stdout_stderr_and_status_pass_through() {
    let l = Layout::new();
    let ld = fake_linker(
        &l,
        "ld",
        "echo out-line; echo err-line >&2; printf 'x' > \"$out\"; exit 3",
    );
    let o = link_through(&l, &ld, &[], &l.p("out"));
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(stdout_of(&o), "out-line\n");
    assert_eq!(stderr_of(&o), "err-line\n");
    assert_eq!(
        std::fs::read(l.p("out")).expect("read"),
        b"x",
        "output of a failed link was touched"
    );
}

#[test]
fn linker_killed_by_signal() {
    let l = Layout::new();
    let ld = fake_linker(&l, "ld", "kill -TERM $$");
    let o = link_through(&l, &ld, &[], &l.p("out"));
    assert_eq!(o.status.code(), Some(128 + 15), "stderr: {}", stderr_of(&o));
    assert!(!l.p("out").exists());
}

#[test]
fn linker_not_found() {
    let l = Layout::new();
    let o = run(ldnote_cmd()
        .args(["link", "--"])
        .arg(l.p("no-such-linker"))
        .arg("-o")
        .arg(l.p("out")));
    assert!(!o.status.success());
    assert_names_file(&o, &l.p("no-such-linker"));
}

#[test]
fn output_missing() {
    // The linker claims success but writes nothing: the status is kept, with a warning naming
    // the file; --strict turns that into a failure.
    let l = Layout::new();
    let ld = fake_linker(&l, "ld", "exit 0");
    let out = l.p("out");
    let o = link_through(&l, &ld, &[], &out);
    assert_eq!(o.status.code(), Some(0), "{}", stderr_of(&o));
    assert_names_file(&o, &out);
    let o = link_through(&l, &ld, &["--strict"], &out);
    assert_ne!(o.status.code(), Some(0));
    assert_names_file(&o, &out);
    assert!(!out.exists());
}

#[test]
fn output_not_elf_default_and_strict() {
    let l = Layout::new();
    let text = b"this is not an ELF file\n";
    let ld = fake_linker(&l, "ld", "echo 'this is not an ELF file' > \"$out\"");
    let out = l.p("out");
    for (opts, env_strict, strict) in [
        (&[][..], false, false),
        (&["--strict"][..], false, true),
        (&[][..], true, true),
    ] {
        let mut c = ldnote_cmd();
        c.arg("link").args(opts);
        if env_strict {
            c.env("LDNOTE_STRICT", "1");
        }
        let o = run(c.arg("--").arg(&ld).arg(input(&l)).arg("-o").arg(&out));
        if strict {
            assert_ne!(
                o.status.code(),
                Some(0),
                "{opts:?} env={env_strict}: a failure to note must fail"
            );
        } else {
            assert_eq!(
                o.status.code(),
                Some(0),
                "default: the linker's status is kept\n{}",
                stderr_of(&o)
            );
        }
        assert_names_file(&o, &out);
        assert_eq!(
            std::fs::read(&out).expect("read"),
            text,
            "the output was changed"
        );
    }
}

/// Make a file impossible to write even for root (`chattr +i`); undone on drop.
struct Immutable(PathBuf);
impl Immutable {
    fn new(p: &Path) -> Option<Self> {
        if !is_root() {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o444)).expect("chmod");
            return Some(Immutable(p.to_owned()));
        }
        let o = run(Command::new("chattr").arg("+i").arg(p));
        if o.status.success() {
            Some(Immutable(p.to_owned()))
        } else {
            eprintln!(
                "SKIP: running as root and `chattr +i` failed ({}); cannot make a read-only file",
                stderr_of(&o)
            );
            None
        }
    }
}
impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    run(Command::new("id").arg("-u")).stdout == b"0\n"
}

fn is_immutable(p: &Path) -> bool {
    let o = run(Command::new("lsattr").arg("-d").arg(p));
    o.status.success()
        && o.stdout
            .split(|&b| b == b' ')
            .next()
            .is_some_and(|a| a.contains(&b'i'))
}

#[test]
fn read_only_output_file() {
    // A real link (with ldnote's reservation) whose output the "linker" then makes unwritable.
    // Tests run as root, where chmod 0444 does not stop writes: the file is made immutable with
    // `chattr +i` instead (chmod 0444 when not root).
    let l = Layout::new();
    let a = l.lib_in("d1", "liba.so");
    let main = l.object("main", MAIN_C, &[]);
    let ld = fake_linker(
        &l,
        "cc",
        "gcc \"$@\" || exit $?\ncp \"$out\" \"$out.linked\"\nchattr +i \"$out\" 2>/dev/null || chmod 0444 \"$out\"",
    );
    for strict in [false, true] {
        let out = l.p(format!("out-{strict}"));
        let mut c = ldnote_link(strict);
        c.arg("--").arg(&ld).arg(&main).arg(&a).args([
            "-Wl,--enable-new-dtags",
            "-Xlinker",
            "-rpath",
            "-Xlinker",
        ]);
        let o = run(c.arg(l.p("d1")).arg("-o").arg(&out));
        let _guard = Immutable(out.clone());
        if is_root() && !is_immutable(&out) {
            let msg =
                "running as root and `chattr +i` is not available: cannot make a read-only file";
            return skip_or_fail("read_only_output_file", msg);
        }
        if strict {
            assert_ne!(o.status.code(), Some(0), "--strict: {}", stderr_of(&o));
        } else {
            assert_eq!(
                o.status.code(),
                Some(0),
                "default keeps the linker's status: {}",
                stderr_of(&o)
            );
            assert!(stderr_of(&o).contains("warning"), "{}", stderr_of(&o));
        }
        assert_names_file(&o, &out);
        let linked = std::fs::read(l.p(format!("out-{strict}.linked"))).expect("read");
        assert!(
            std::fs::read(&out).expect("read") == linked,
            "the linker's output was changed"
        );
    }
}

#[test]
fn read_only_file_given_to_patch() {
    let l = Layout::new();
    let prog = linked_program(&l);
    let before = std::fs::read(&prog).expect("read");
    let Some(guard) = Immutable::new(&prog) else {
        return;
    };
    let o = ldnote_patch(&prog, &[]);
    assert_ne!(o.status.code(), Some(0));
    assert_names_file(&o, &prog);
    drop(guard);
    assert_eq!(std::fs::read(&prog).expect("read"), before);
}

// ---- Truncated and corrupt ELF files given to `patch` ----

fn expect_patch_error(file: &Path) {
    let before = std::fs::read(file).expect("read");
    let o = ldnote_patch(file, &[]);
    assert!(
        !o.status.success(),
        "{}: patch succeeded on bad input: {}",
        file.display(),
        stderr_of(&o)
    );
    assert_names_file(&o, file);
    assert!(
        !stderr_of(&o).contains("panicked"),
        "{}: ldnote panicked: {}",
        file.display(),
        stderr_of(&o)
    );
    assert!(
        std::fs::read(file).expect("read") == before,
        "{}: bytes changed",
        file.display()
    );
    // And `show` reports it without crashing: exit 1 for a malformed ELF file, 2 when there is
    // no ELF file to read (missing, or no ELF magic): README, "Exit status".
    let elf = before.starts_with(b"\x7fELF");
    let o = run(ldnote_cmd().arg("show").arg(file));
    assert_eq!(
        o.status.code(),
        Some(if elf { 1 } else { 2 }),
        "show on {}: {}{}",
        file.display(),
        stdout_of(&o),
        stderr_of(&o)
    );
}

#[test]
fn truncated_elf() {
    let l = Layout::new();
    let prog = linked_program(&l);
    let data = std::fs::read(&prog).expect("read");
    for len in [0, 3, 10, 63, 64, 200, data.len() / 2] {
        let p = l.write(format!("trunc-{len}"), &data[..len]);
        expect_patch_error(&p);
    }
}

#[test]
fn not_elf_and_missing_files() {
    let l = Layout::new();
    let t = l.write("text", b"#!/bin/sh\necho hi\n");
    expect_patch_error(&t);
    let o = ldnote_patch(&l.p("does-not-exist"), &[]);
    assert!(!o.status.success());
    assert_names_file(&o, &l.p("does-not-exist"));
    let d = l.mkdir("a-directory");
    let o = ldnote_patch(&d, &[]);
    assert!(!o.status.success());
    assert_names_file(&o, &d);
}

/// Offsets of interesting fields of a little-endian ELF64 file, read with `object`.
struct Fields {
    phoff: usize,
    dynamic_phdr: usize,
    dynamic_off: usize,
    runpath_entry: usize,
}

fn fields(data: &[u8]) -> Fields {
    use object::read::elf::{FileHeader, ProgramHeader};
    let h = object::elf::FileHeader64::<object::Endianness>::parse(data).expect("parse");
    let e = h.endian().expect("endian");
    let phoff = h.e_phoff(e) as usize;
    let phdrs = h.program_headers(e, data).expect("phdrs");
    let (i, dynp) = phdrs
        .iter()
        .enumerate()
        .find(|(_, p)| p.p_type(e) == object::elf::PT_DYNAMIC)
        .expect("PT_DYNAMIC");
    let dynamic_off = dynp.p_offset(e) as usize;
    let mut runpath_entry = 0;
    for k in 0.. {
        let o = dynamic_off + 16 * k;
        let tag = u64::from_le_bytes(data[o..o + 8].try_into().expect("8"));
        if tag == 0 {
            break;
        }
        if tag == u64::from(object::elf::DT_RUNPATH) {
            runpath_entry = o;
        }
    }
    assert_ne!(runpath_entry, 0);
    Fields {
        phoff,
        dynamic_phdr: phoff + 56 * i,
        dynamic_off,
        runpath_entry,
    }
}

#[test]
fn corrupt_elf() {
    let l = Layout::new();
    let prog = linked_program(&l);
    let data = std::fs::read(&prog).expect("read");
    let f = fields(&data);
    let put = |name: &str, at: usize, bytes: &[u8]| {
        let mut d = data.clone();
        d[at..at + bytes.len()].copy_from_slice(bytes);
        l.write(format!("corrupt-{name}"), &d)
    };
    let cases = [
        // Program headers beyond EOF.
        put("phoff", 0x20, &(1u64 << 40).to_le_bytes()),
        // A program header entry size the loader would reject.
        put("phentsize", 0x36, &7u16.to_le_bytes()),
        // An ELF class that does not exist.
        put("class", 4, &[9]),
        // PT_DYNAMIC beyond EOF.
        put(
            "dynamic-offset",
            f.dynamic_phdr + 8,
            &(1u64 << 40).to_le_bytes(),
        ),
        // DT_RUNPATH pointing far outside the string table.
        put(
            "runpath-strtab-offset",
            f.runpath_entry + 8,
            &(1u64 << 40).to_le_bytes(),
        ),
    ];
    let _ = f.phoff + f.dynamic_off;
    for c in &cases {
        expect_patch_error(c);
    }
}

#[test]
fn one_bad_file_does_not_stop_the_others() {
    let l = Layout::new();
    let good = linked_program(&l);
    let bad = l.write("bad", b"garbage");
    let o = run(ldnote_cmd().arg("patch").arg(&bad).arg(&good));
    assert!(!o.status.success());
    assert_names_file(&o, &bad);
    assert!(
        note_desc(&good).is_some(),
        "the good file after the bad one was not noted: {}",
        stderr_of(&o)
    );
}

#[test]
fn unusable_run_path_components_become_hints() {
    // Tests run as root, where chmod 000 does not make a directory unreadable; an absent
    // directory and a regular file stand in for "not a searchable directory".
    let l = Layout::new();
    let a = l.lib_in("d1", "liba.so");
    l.write("file", b"x");
    let rp = [&l.pb("absent")[..], b":", &l.pb("file"), b":", &l.pb("d1")].concat();
    let main = l.object("main", MAIN_C, &[]);
    let out = l.p("prog");
    let o = run(ldnote_cmd()
        .args([
            "link",
            "--",
            "gcc",
            "-Wl,--no-as-needed",
            "-Wl,--enable-new-dtags",
            "-Xlinker",
            "-rpath",
            "-Xlinker",
        ])
        .arg(std::ffi::OsStr::from_bytes(&rp))
        .arg(&main)
        .arg(&a)
        .arg("-o")
        .arg(&out));
    assert!(o.status.success(), "{}", stderr_of(&o));
    let d = note_desc(&out).expect("note");
    let want = [
        b"liba.so\0?",
        &l.pb("absent")[..],
        b":?",
        &l.pb("file"),
        b":=",
        &l.pb("d1"),
        b"/liba.so\0",
    ]
    .concat();
    assert!(
        d.windows(want.len()).any(|w| w == want),
        "{}",
        pretty_desc(Some(&d))
    );
    run_ok(&mut Command::new(&out));
}

#[test]
fn file_without_section_headers() {
    // Valid for the loader (it needs only program headers), but patch needs the section header
    // table to add a segment: a clear error naming the file, and the file is left as it was.
    let l = Layout::new();
    let prog = linked_program(&l);
    let mut data = std::fs::read(&prog).expect("read");
    data[0x28..0x30].copy_from_slice(&0u64.to_le_bytes());
    data[0x3c..0x40].copy_from_slice(&[0, 0, 0, 0]);
    let p = l.write("no-section-headers", &data);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    run_ok(&mut Command::new(&p));
    let o = ldnote_patch(&p, &[]);
    if o.status.success() {
        // Noting it is fine too, as long as the loader finds the note and the program runs.
        assert!(note_desc(&p).is_some());
    } else {
        assert_names_file(&o, &p);
        assert!(std::fs::read(&p).expect("read") == data, "bytes changed");
    }
    run_ok(&mut Command::new(&p));
}

#[test]
fn output_is_a_character_device() {
    // `-o /dev/null` (configure-style probes): nothing to note, the device stays a device, even
    // with --strict. A private device node stands in for /dev/null (mknod needs root).
    use std::os::unix::fs::FileTypeExt;
    if !is_root() {
        eprintln!("SKIP: mknod needs root");
        return;
    }
    let l = Layout::new();
    let dev = l.p("null");
    run_ok(Command::new("mknod").arg(&dev).args(["c", "1", "3"]));
    let a = l.lib_in("d1", "liba.so");
    let main = l.object("main", MAIN_C, &[]);
    for strict in [false, true] {
        let mut c = ldnote_link(strict);
        let o = run(c
            .args(["--", "gcc", "-Wl,--no-as-needed", "-Wl,--enable-new-dtags"])
            .arg(cat(&[b"-Wl,-rpath,", &l.pb("d1")]))
            .arg(&main)
            .arg(&a)
            .arg("-o")
            .arg(&dev));
        assert!(o.status.success(), "strict={strict}: {}", stderr_of(&o));
        let ft = std::fs::symlink_metadata(&dev).expect("stat").file_type();
        assert!(ft.is_char_device(), "the device node was replaced");
    }
}

#[test]
fn static_link_is_left_alone() {
    // Nothing to note in a static executable: no reservation either, the output is the bare one.
    let l = Layout::new();
    let main = l.object("main", MAIN_C, &[]);
    let bare = l.p("bare");
    let o = run(Command::new("gcc")
        .arg("-static")
        .arg(&main)
        .arg("-o")
        .arg(&bare));
    if !o.status.success() {
        return skip_or_fail("static_link_is_left_alone", "static libc missing");
    }
    let out = l.p("out");
    run_ok(
        ldnote_cmd()
            .args(["link", "--", "gcc", "-static"])
            .arg(&main)
            .arg("-o")
            .arg(&out),
    );
    assert!(std::fs::read(&bare).expect("read") == std::fs::read(&out).expect("read"));
}

#[test]
fn fifo_named_like_a_library_does_not_hang() {
    // A FIFO where a library is expected: opening it to read the ELF header blocks forever.
    // patchelf (access(R_OK) only) records `=fifo/liba.so`; ldnote must not hang, and must not
    // send the loader to the FIFO with an `=` entry.
    let l = Layout::new();
    let a = l.lib_in("d2", "liba.so");
    l.mkdir("fifo");
    run_ok(Command::new("mkfifo").arg(l.p("fifo/liba.so")));
    let prog = Link::program(&l)
        .input(&a)
        .runpath([&l.pb("fifo")[..], b":", &l.pb("d2")].concat())
        .build("prog");
    let limit = std::time::Duration::from_secs(10);
    let o = run_timeout(ldnote_cmd().arg("patch").arg(&prog), limit)
        .expect("`ldnote patch` hung on a FIFO in a run-path directory");
    assert!(o.status.success(), "{}", stderr_of(&o));
    let d = note_desc(&prog).expect("note");
    let bad = [b"=", &l.pb("fifo")[..], b"/liba.so"].concat();
    assert!(
        !d.windows(bad.len()).any(|w| w == bad),
        "{}",
        pretty_desc(Some(&d))
    );
    let good = [b"=", &l.pb("d2")[..], b"/liba.so"].concat();
    assert!(
        d.windows(good.len()).any(|w| w == good),
        "{}",
        pretty_desc(Some(&d))
    );
}

#[test]
fn patch_through_symlink_keeps_links() {
    // `ldnote patch libfoo.so` where libfoo.so -> libfoo.so.1.2.3 (the usual layout), with a
    // second hard link to the file: like patchelf, the file itself must be noted; the symlink
    // must stay a symlink, the hard link must keep sharing the (noted) file, and mode and owner
    // are kept. Exercises the append path (a plain link has no reservation).
    use std::os::unix::fs::MetadataExt;
    let l = Layout::new();
    let prog = linked_program(&l);
    let real = l.p("v/prog.1.2.3");
    std::fs::create_dir_all(l.p("v")).expect("mkdir");
    std::fs::rename(&prog, &real).expect("mv");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o750)).expect("chmod");
    if is_root() {
        std::os::unix::fs::chown(&real, Some(1234), Some(1234)).expect("chown");
    }
    let link = l.symlink("prog.1.2.3", "v/prog");
    let hard = l.p("v/hard");
    std::fs::hard_link(&real, &hard).expect("ln");
    let o = ldnote_patch(&link, &[]);
    assert!(o.status.success(), "{}", stderr_of(&o));
    let lm = std::fs::symlink_metadata(&link).expect("stat");
    assert!(
        lm.file_type().is_symlink(),
        "the symlink was replaced by a regular file"
    );
    assert!(
        note_desc(&real).is_some(),
        "the symlink's target was not noted"
    );
    let (rm, hm) = (
        std::fs::metadata(&real).expect("stat"),
        std::fs::metadata(&hard).expect("stat"),
    );
    assert_eq!(rm.ino(), hm.ino(), "the hard link was broken");
    assert_eq!(rm.mode() & 0o7777, 0o750, "mode not preserved");
    if is_root() {
        assert_eq!((rm.uid(), rm.gid()), (1234, 1234), "owner not preserved");
    }
    run_ok(&mut Command::new(&real));
}

#[test]
fn immutable_prefix_is_not_escaped_by_dotdot() {
    // `--immutable-prefix S`: `=` entries only for directories under S. `S/../mutable` is not
    // under S (the loader resolves `..` as the kernel does), so it must stay a `?` hint: were a
    // library to appear there later, the stock loader would take it, and an `=` entry for a
    // later directory would load a different library. `S` + `X` is not under S either.
    let l = Layout::new();
    let a = l.lib_in("store/p1/lib", "liba.so");
    l.lib_in("mutable", "liba.so");
    l.mkdir("storeX");
    let store = l.pb("store");
    let escape = [&store[..], b"/../mutable"].concat();
    let rp = join(&[&escape, &l.pb("store/p1/lib"), &l.pb("storeX")]);
    let out = Link::program(&l).input(&a).runpath(&rp).build("prog");
    let o = run(ldnote_cmd()
        .args(["patch", "--immutable-prefix"])
        .arg(l.p("store"))
        .arg(&out));
    assert!(o.status.success(), "{}", stderr_of(&o));
    let d = note_desc(&out).expect("note");
    let has = |e: &[u8]| d.windows(e.len()).any(|w| w == e);
    assert!(
        has(&[b"=", &l.pb("store/p1/lib")[..], b"/liba.so"].concat()),
        "{}",
        pretty_desc(Some(&d))
    );
    assert!(
        has(&[b"?", &l.pb("storeX")[..]].concat()),
        "{}",
        pretty_desc(Some(&d))
    );
    assert!(
        !has(&[b"=", &escape[..], b"/liba.so"].concat()),
        "`..` escaped the immutable prefix:\n{}",
        pretty_desc(Some(&d))
    );
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b':')
}
