//! Hand-written tricky command lines, run in a temp dir holding `libdir/` (a directory),
//! `syms.o` (a file) and some response files.

use super::plan_checked;
use ldnote::argv::{plan, ArgvError, LinkPlan, SkipReason, ToolKind};
use ldnote::rsp::RspError;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

use SkipReason::*;
use ToolKind::{Driver as D, Linker as L};

/// Expected facts; `None` fields are not checked, `skip` always is.
#[derive(Default)]
struct Exp {
    skip: Option<SkipReason>,
    output: Option<&'static str>,
    rpaths: Option<&'static [&'static str]>,
    new_dtags: Option<Option<bool>>,
    sysroot: Option<&'static str>,
    emulation: Option<&'static str>,
    target: Option<&'static str>,
    shared: Option<bool>,
    pie: Option<Option<bool>>,
    static_pie: Option<bool>,
    inputs: Option<&'static [&'static str]>,
    libs: Option<&'static [&'static str]>,
    lib_dirs: Option<&'static [&'static str]>,
    machine_flags: Option<&'static [&'static str]>,
    flavor_prefix: Option<usize>,
}

fn strs(v: &[OsString]) -> Vec<&str> {
    v.iter()
        .map(|s| s.to_str().expect("utf-8 in table"))
        .collect()
}

fn check(name: &str, p: &LinkPlan, e: &Exp) {
    let opt = |o: &Option<OsString>| o.as_deref().map(|s| s.to_str().expect("utf-8").to_owned());
    assert_eq!(p.skip, e.skip, "{name}: skip ({p:?})");
    if let Some(o) = e.output {
        assert_eq!(p.output, OsStr::new(o), "{name}: output");
    }
    if let Some(r) = e.rpaths {
        assert_eq!(strs(&p.rpaths), r, "{name}: rpaths");
    }
    if let Some(d) = e.new_dtags {
        assert_eq!(p.new_dtags, d, "{name}: new_dtags");
    }
    if let Some(s) = e.sysroot {
        assert_eq!(opt(&p.sysroot).as_deref(), Some(s), "{name}: sysroot");
    }
    if let Some(m) = e.emulation {
        assert_eq!(opt(&p.emulation).as_deref(), Some(m), "{name}: emulation");
    }
    if let Some(t) = e.target {
        assert_eq!(opt(&p.target).as_deref(), Some(t), "{name}: target");
    }
    if let Some(s) = e.shared {
        assert_eq!(p.shared, s, "{name}: shared");
    }
    if let Some(pie) = e.pie {
        assert_eq!(p.pie, pie, "{name}: pie");
    }
    if let Some(s) = e.static_pie {
        assert_eq!(p.static_pie, s, "{name}: static_pie");
    }
    if let Some(i) = e.inputs {
        assert_eq!(strs(&p.inputs), i, "{name}: inputs");
    }
    if let Some(l) = e.libs {
        assert_eq!(strs(&p.libs), l, "{name}: libs");
    }
    if let Some(l) = e.lib_dirs {
        assert_eq!(strs(&p.lib_dirs), l, "{name}: lib_dirs");
    }
    if let Some(m) = e.machine_flags {
        assert_eq!(strs(&p.machine_flags), m, "{name}: machine_flags");
    }
    if let Some(f) = e.flavor_prefix {
        assert_eq!(p.flavor_prefix, f, "{name}: flavor_prefix");
    }
}

/// A temp dir with the files the table refers to.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let w = |name: &str, body: &[u8]| std::fs::write(d.join(name), body).expect("write");
    std::fs::create_dir(d.join("libdir")).expect("mkdir");
    std::fs::create_dir(d.join("sub")).expect("mkdir");
    w("syms.o", b"");
    w("a.o", b"");
    // Nested, quoted, escaped; the nested name is relative to cwd, not to sub/.
    w(
        "sub/outer.rsp",
        b"-o \"out put\" '-Wl,-rpath,/has space' @inner.rsp\n",
    );
    w(
        "inner.rsp",
        b"back\\\\slash.o \"q\\\"uote.o\" -Wl,-rpath,/r2\n",
    );
    w("self.rsp", b"a.o @self.rsp");
    w("c1.rsp", b"@c2.rsp");
    w("c2.rsp", b"@./c1.rsp");
    w("empty.rsp", b" \n\t");
    w("ld.rsp", b"-rpath /ld/r -o 'ld out' a.o");
    w("wl.rsp", b"-rpath\n/from/wl/rsp\n--enable-new-dtags");
    dir
}

type Case = (&'static str, ToolKind, &'static [&'static str], Exp);

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    vec![
        // --- run paths, every spelling, in command-line order
        ("wl rpath list", D, &["a.o", "-Wl,-rpath,/a,-rpath,/b"], Exp { rpaths: Some(&["/a", "/b"]), ..Exp::default() }),
        ("wl rpath=", D, &["a.o", "-Wl,-rpath=/a", "-Wl,--rpath=/b", "-Wl,--rpath,/c"], Exp { rpaths: Some(&["/a", "/b", "/c"]), ..Exp::default() }),
        ("xlinker rpath", D, &["a.o", "-Xlinker", "-rpath", "-Xlinker", "/x"], Exp { rpaths: Some(&["/x"]), inputs: Some(&["a.o"]), ..Exp::default() }),
        ("rpath value in later -Wl", D, &["-Wl,-rpath", "-Wl,/y", "a.o"], Exp { rpaths: Some(&["/y"]), inputs: Some(&["a.o"]), ..Exp::default() }),
        ("rpath value from next operand", D, &["-Wl,-rpath", "/d", "a.o"], Exp { rpaths: Some(&["/d"]), inputs: Some(&["a.o"]), ..Exp::default() }),
        ("-l in linker order", D, &["-Wl,-rpath", "-lm", "a.o", "-l", "z"], Exp { rpaths: Some(&["-lm"]), libs: Some(&["z"]), ..Exp::default() }),
        ("clang driver -rpath", D, &["a.o", "-rpath", "/z"], Exp { rpaths: Some(&["/z"]), inputs: Some(&["a.o"]), ..Exp::default() }),
        ("driver -R is not rpath", D, &["a.o", "-R", "/z", "-R/w"], Exp { rpaths: Some(&[]), inputs: Some(&["a.o"]), ..Exp::default() }),
        ("ld -R dir / file / missing", L, &["-R", "libdir", "-Rsyms.o", "-R/does/not/exist", "-R", "syms.o", "a.o",], Exp { rpaths: Some(&["libdir", "/does/not/exist"]), inputs: Some(&["a.o"]), ..Exp::default() }),
        ("wl -R dir", D, &["a.o", "-Wl,-R,libdir", "-Wl,-R,syms.o"], Exp { rpaths: Some(&["libdir"]), ..Exp::default() }),
        ("ld rpath forms", L, &["-rpath", "/1", "-rpath=/2", "--rpath", "/3", "--rpath=/4", "a.o", "-rpath-link", "/no", "--rpath-link=/no",], Exp { rpaths: Some(&["/1", "/2", "/3", "/4"]), inputs: Some(&["a.o"]), ..Exp::default() }),
        ("new dtags last wins", L, &["--enable-new-dtags", "a.o", "--disable-new-dtags"], Exp { new_dtags: Some(Some(false)), ..Exp::default() }),
        ("new dtags single dash", D, &["a.o", "-Wl,-enable-new-dtags"], Exp { new_dtags: Some(Some(true)), ..Exp::default() }),
        // --- output forms
        ("-o x", D, &["a.o", "-o", "x"], Exp { output: Some("x"), ..Exp::default() }),
        ("-ox", D, &["a.o", "-ofoo"], Exp { output: Some("foo"), ..Exp::default() }),
        ("--output=", D, &["a.o", "--output=foo"], Exp { output: Some("foo"), ..Exp::default() }),
        ("--output x", D, &["a.o", "--output", "foo", "-o", "bar"], Exp { output: Some("bar"), ..Exp::default() }),
        ("-Wl,-o beats driver -o", D, &["a.o", "-Wl,-o,y", "-o", "x"], Exp { output: Some("y"), ..Exp::default() }),
        ("default a.out", D, &["a.o"], Exp { output: Some("a.out"), ..Exp::default() }),
        ("ld output forms", L, &["a.o", "-o", "1", "-o2", "--output", "3", "--output=4"], Exp { output: Some("4"), inputs: Some(&["a.o"]), ..Exp::default() }),
        ("ld -omagic is -o magic", L, &["a.o", "-omagic"], Exp { output: Some("magic"), ..Exp::default() }),
        ("ld -oformat is -o format", L, &["-oformat", "binary", "a.o"], Exp { output: Some("format"), inputs: Some(&["binary", "a.o"]), ..Exp::default() }),
        ("shared lib", D, &["-shared", "-fPIC", "x.c", "-o", "libx.so"], Exp { output: Some("libx.so"), shared: Some(true), ..Exp::default() }),
        ("ld -Bshareable", L, &["-Bshareable", "a.o"], Exp { shared: Some(true), ..Exp::default() }),
        // --- values never mistaken for inputs or options
        ("driver separate values", D, &["-x", "c", "-I", "inc", "-D", "X", "-U", "Y", "-include", "f.h", "-isystem", "/s", "-MF", "dep.d", "-MT", "t", "-MQ", "q", "--param", "k=1", "-Xassembler", "--noexecstack", "-Xpreprocessor", "-P", "-Xclang", "-foo", "-arch", "x86_64", "-L", "/l", "-l", "m", "-T", "s.ld", "-e", "main", "-u", "sym", "-z", "now", "-B", "/b", "-idirafter", "/i", "-iquote", "q", "-imacros", "m.h", "-dumpbase", "d", "-dumpdir", "dd", "-mllvm", "-x", "-Xarch_x86_64", "-y", "hello.c",], Exp { inputs: Some(&["hello.c"]), libs: Some(&["m"]), lib_dirs: Some(&["/l"]), machine_flags: Some(&[]), ..Exp::default() }),
        ("driver joined values", D, &["-xc", "-Iinc", "-DX=1", "-MFdep.d", "-L/l", "-lm", "-Tsc.ld", "-B/b", "hello.c", "-Wl,-L/wl,-lwl",], Exp { inputs: Some(&["hello.c"]), libs: Some(&["m", "wl"]), lib_dirs: Some(&["/l", "/wl"]), ..Exp::default() }),
        ("ld separate values", L, &["-soname", "libx.so.1", "-h", "libx.so.1", "-z", "now", "-m", "elf_x86_64", "-y", "sym", "-Map", "out.map", "--dynamic-linker", "/lib/ld.so", "-dynamic-linker", "/lib/ld.so", "-I", "/lib/ld.so", "-T", "s.ld", "-e", "_start", "-plugin", "/p.so", "-plugin-opt=-x", "-L", "/l", "-l", "c", "--version-script", "v.map", "-u", "u", "--defsym", "a=1", "--hash-style=gnu", "--build-id", "-mllvm", "-opt", "a.o",], Exp { inputs: Some(&["a.o"]), libs: Some(&["c"]), lib_dirs: Some(&["/l"]), emulation: Some("elf_x86_64"), ..Exp::default() }),
        ("ld libs", L, &["-lfoo", "-l", "bar", "-l:libbaz.so.1", "--library=qux", "--library", "quux", "-L/a", "--library-path=/b", "-L", "/c",], Exp { libs: Some(&["foo", "bar", ":libbaz.so.1", "qux", "quux"]), lib_dirs: Some(&["/a", "/b", "/c"]), inputs: Some(&[]), ..Exp::default() }),
        ("ld -lib is -l ib", L, &["-lib"], Exp { libs: Some(&["ib"]), ..Exp::default() }),
        // --- sysroot, emulation, target, machine flags
        ("sysroot forms", D, &["--sysroot=/a", "a.o", "--sysroot", "/b"], Exp { sysroot: Some("/b"), ..Exp::default() }),
        ("sysroot via -Wl last", D, &["--sysroot=/a", "a.o", "-Wl,--sysroot=/c"], Exp { sysroot: Some("/c"), ..Exp::default() }),
        ("ld sysroot", L, &["--sysroot", "/s", "a.o"], Exp { sysroot: Some("/s"), inputs: Some(&["a.o"]), ..Exp::default() }),
        ("ld -mEMU", L, &["-melf_i386", "a.o"], Exp { emulation: Some("elf_i386"), ..Exp::default() }),
        ("wl -m EMU", D, &["a.o", "-Wl,-m,elf32_x86_64"], Exp { emulation: Some("elf32_x86_64"), ..Exp::default() }),
        ("clang target", D, &["--target=aarch64-linux-gnu", "a.o"], Exp { target: Some("aarch64-linux-gnu"), ..Exp::default() }),
        ("clang -target", D, &["-target", "riscv64-linux-gnu", "a.o"], Exp { target: Some("riscv64-linux-gnu"), inputs: Some(&["a.o"]), ..Exp::default() }),
        ("machine flags", D, &["-m32", "-march=armv8-a", "-mabi=lp64", "-mfloat-abi=hard", "-mtune=generic", "-mx32", "a.o",], Exp { machine_flags: Some(&["-m32", "-march=armv8-a", "-mabi=lp64", "-mfloat-abi=hard", "-mx32",]), ..Exp::default() }),
        // --- pie / static
        ("pie last wins", D, &["-pie", "a.o", "-no-pie"], Exp { pie: Some(Some(false)), ..Exp::default() }),
        ("static-pie not skipped", D, &["-static-pie", "a.o"], Exp { static_pie: Some(true), pie: Some(Some(true)), ..Exp::default() }),
        ("ld static-pie line", L, &["-static", "-pie", "--no-dynamic-linker", "-z", "text", "a.o",], Exp { static_pie: Some(true), ..Exp::default() }),
        ("ld -static is -Bstatic", L, &["-static", "a.o"], Exp { static_pie: Some(false), ..Exp::default() }),
        ("static-libgcc is not static", D, &["-static-libgcc", "-static-libstdc++", "a.o"], Exp::default()),
        ("shared -static still shared", D, &["-shared", "-static", "a.o"], Exp { shared: Some(true), ..Exp::default() }),
        // --- every skip reason
        ("-c", D, &["-c", "hello.c", "-o", "hello.o"], Exp { skip: Some(CompileOnly), ..Exp::default() }),
        ("-S", D, &["-S", "hello.c"], Exp { skip: Some(CompileOnly), ..Exp::default() }),
        ("-E", D, &["-E", "hello.c"], Exp { skip: Some(CompileOnly), ..Exp::default() }),
        ("-M", D, &["-M", "hello.c"], Exp { skip: Some(CompileOnly), ..Exp::default() }),
        ("-MM", D, &["-MM", "hello.c"], Exp { skip: Some(CompileOnly), ..Exp::default() }),
        ("-MD links", D, &["-MD", "-MMD", "-MP", "hello.c"], Exp::default()),
        ("-fsyntax-only", D, &["-fsyntax-only", "hello.c"], Exp { skip: Some(CompileOnly), ..Exp::default() }),
        ("driver -r", D, &["-r", "a.o", "-o", "b.o"], Exp { skip: Some(Relocatable), ..Exp::default() }),
        ("-Wl,-r", D, &["-nostdlib", "-Wl,-r", "a.o"], Exp { skip: Some(Relocatable), ..Exp::default() }),
        ("ld -r", L, &["-r", "a.o"], Exp { skip: Some(Relocatable), ..Exp::default() }),
        ("ld -i", L, &["-i", "a.o"], Exp { skip: Some(Relocatable), ..Exp::default() }),
        ("ld --relocatable", L, &["--relocatable", "a.o"], Exp { skip: Some(Relocatable), ..Exp::default() }),
        ("ld -Ur", L, &["-Ur", "a.o"], Exp { skip: Some(Relocatable), ..Exp::default() }),
        ("rdynamic is not -r", D, &["-rdynamic", "a.o"], Exp::default()),
        ("-static", D, &["-static", "hello.c"], Exp { skip: Some(Static), ..Exp::default() }),
        ("--version", D, &["--version"], Exp { skip: Some(Query), ..Exp::default() }),
        ("--version with inputs", D, &["--version", "a.o"], Exp { skip: Some(Query), ..Exp::default() }),
        ("driver -v alone", D, &["-v"], Exp { skip: Some(Query), ..Exp::default() }),
        ("driver -v with input", D, &["-v", "hello.c"], Exp::default()),
        ("driver -v with lib only", D, &["-v", "-lm"], Exp::default()),
        ("--help", D, &["--help"], Exp { skip: Some(Query), ..Exp::default() }),
        ("--help=", D, &["-Q", "--help=target"], Exp { skip: Some(Query), ..Exp::default() }),
        ("-###", D, &["-###", "hello.c"], Exp { skip: Some(Query), ..Exp::default() }),
        ("-print-search-dirs", D, &["-print-search-dirs"], Exp { skip: Some(Query), ..Exp::default() }),
        ("-print-prog-name", D, &["-print-prog-name=ld"], Exp { skip: Some(Query), ..Exp::default() }),
        ("--print-file-name", D, &["--print-file-name=libc.so"], Exp { skip: Some(Query), ..Exp::default() }),
        ("-dumpmachine", D, &["-dumpmachine"], Exp { skip: Some(Query), ..Exp::default() }),
        ("-dumpversion", D, &["-dumpversion"], Exp { skip: Some(Query), ..Exp::default() }),
        ("-dumpspecs", D, &["-dumpspecs"], Exp { skip: Some(Query), ..Exp::default() }),
        ("-dumpdir is not a query", D, &["-dumpdir", "x", "hello.c"], Exp::default()),
        ("-Wl,--version", D, &["a.o", "-Wl,--version"], Exp { skip: Some(Query), ..Exp::default() }),
        ("ld --version", L, &["--version"], Exp { skip: Some(Query), ..Exp::default() }),
        ("ld -version", L, &["-version", "a.o"], Exp { skip: Some(Query), ..Exp::default() }),
        ("ld -v alone is version", L, &["-v"], Exp { skip: Some(Query), ..Exp::default() }),
        ("ld -V alone is version", L, &["-V"], Exp { skip: Some(Query), ..Exp::default() }),
        ("ld -v with inputs links", L, &["-v", "a.o", "-o", "x"], Exp { output: Some("x"), ..Exp::default() }),
        ("ld --help", L, &["--help"], Exp { skip: Some(Query), ..Exp::default() }),
        ("ld --oformat=binary", L, &["--oformat=binary", "a.o"], Exp { skip: Some(NonElfOutput), ..Exp::default() }),
        ("ld --oformat binary", L, &["--oformat", "binary", "a.o"], Exp { skip: Some(NonElfOutput), inputs: Some(&["a.o"]), ..Exp::default() }),
        ("wl oformat binary", D, &["a.o", "-Wl,--oformat,binary"], Exp { skip: Some(NonElfOutput), ..Exp::default() }),
        ("wl oformat elf", D, &["a.o", "-Wl,--oformat=elf64-x86-64"], Exp::default()),
        ("ld PE emulation", L, &["-m", "i386pep", "a.o"], Exp { skip: Some(NonElfOutput), ..Exp::default() }),
        ("clang darwin target", D, &["--target=arm64-apple-macos14", "a.o"], Exp { skip: Some(NonElfOutput), ..Exp::default() }),
        ("clang wasm target", D, &["-target", "wasm32-unknown-unknown", "a.o"], Exp { skip: Some(NonElfOutput), ..Exp::default() }),
        ("lld -flavor gnu", L, &["-flavor", "gnu", "a.o", "-rpath", "/f"], Exp { flavor_prefix: Some(2), rpaths: Some(&["/f"]), inputs: Some(&["a.o"]), ..Exp::default() }),
        ("lld -flavor link", L, &["-flavor", "link", "a.o"], Exp { skip: Some(NonElfOutput), flavor_prefix: Some(2), ..Exp::default() }),
        ("-flavor only first", L, &["a.o", "-flavor", "gnu"], Exp { flavor_prefix: Some(0), ..Exp::default() }),
        ("-o /dev/null", D, &["hello.c", "-o", "/dev/null"], Exp { skip: Some(NotAFile), ..Exp::default() }),
        ("ld -o /dev/null", L, &["a.o", "-o", "/dev/null"], Exp { skip: Some(NotAFile), ..Exp::default() }),
        ("-o -", D, &["hello.c", "-o", "-"], Exp { skip: Some(NotAFile), ..Exp::default() }),
        ("-o a directory", D, &["hello.c", "-o", "libdir"], Exp { skip: Some(NotAFile), ..Exp::default() }),
        ("-o existing file", D, &["hello.c", "-o", "syms.o"], Exp::default()),
        ("driver no inputs", D, &["-o", "x"], Exp { skip: Some(NoInputs), ..Exp::default() }),
        ("ld no inputs", L, &["-o", "x", "-rpath", "/r"], Exp { skip: Some(NoInputs), ..Exp::default() }),
        ("ld lib only is input", L, &["-lc"], Exp::default()),
        ("wl input only", D, &["-Wl,a.o"], Exp { inputs: Some(&["a.o"]), ..Exp::default() }),
        ("clang -- inputs", D, &["--", "-weird.c"], Exp { inputs: Some(&["-weird.c"]), ..Exp::default() }),
        ("stdin source", D, &["-x", "c", "-"], Exp { inputs: Some(&["-"]), ..Exp::default() }),
        // --- response files
        ("rsp nested, quoted, escaped", D, &["@sub/outer.rsp"], Exp { output: Some("out put"), rpaths: Some(&["/has space", "/r2"]), inputs: Some(&["back\\slash.o", "q\"uote.o"]), ..Exp::default() }),
        ("rsp missing kept literal", D, &["@nope.rsp", "a.o"], Exp { inputs: Some(&["@nope.rsp", "a.o"]), ..Exp::default() }),
        ("rsp directory kept literal", D, &["@libdir", "a.o"], Exp { inputs: Some(&["@libdir", "a.o"]), ..Exp::default() }),
        ("rsp empty", D, &["@empty.rsp", "a.o"], Exp { inputs: Some(&["a.o"]), ..Exp::default() }),
        ("ld rsp", L, &["@ld.rsp"], Exp { output: Some("ld out"), rpaths: Some(&["/ld/r"]), inputs: Some(&["a.o"]), ..Exp::default() }),
        ("-Wl,@file", D, &["a.o", "-Wl,@wl.rsp"], Exp { rpaths: Some(&["/from/wl/rsp"]), new_dtags: Some(Some(true)), inputs: Some(&["a.o"]), ..Exp::default() }),
        // The driver expands every `@` word first, so only `-rpath` follows -Xlinker; its value
        // is the next operand on the linker line, and `--enable-new-dtags` is a driver option.
        ("-Xlinker @file", D, &["a.o", "-Xlinker", "@wl.rsp"], Exp { rpaths: Some(&["/from/wl/rsp"]), new_dtags: Some(None), inputs: Some(&["a.o"]), ..Exp::default() }),
    ]
}

#[test]
fn table() {
    let dir = workdir();
    let mut names = std::collections::HashSet::new();
    for (name, kind, args, exp) in cases() {
        assert!(names.insert(name), "duplicate case name {name}");
        let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
        let p = plan_checked(kind, &argv, dir.path());
        check(name, &p, &exp);
    }
}

fn plan_err(kind: ToolKind, args: &[&str], cwd: &Path) -> ArgvError {
    let argv: Vec<OsString> = args.iter().map(OsString::from).collect();
    match plan(kind, &argv, cwd) {
        Ok(p) => panic!("expected an error for {args:?}, got {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn errors() {
    let dir = workdir();
    let d = dir.path();
    match plan_err(D, &["a.o", "@self.rsp"], d) {
        ArgvError::Rsp(RspError::Cycle { path, .. }) => assert!(path.ends_with("self.rsp")),
        e => panic!("wrong error {e:?}"),
    }
    let e = plan_err(L, &["@c1.rsp"], d);
    assert!(matches!(e, ArgvError::Rsp(RspError::Cycle { .. })), "{e:?}");
    assert!(
        e.to_string().contains("c1.rsp") && e.to_string().contains("includes itself"),
        "{e}"
    );
    let e = plan_err(D, &["a.o", "-Wl,@self.rsp"], d);
    assert!(matches!(e, ArgvError::Rsp(RspError::Cycle { .. })), "{e:?}");
    for (kind, args, opt) in [
        (D, &["a.o", "-o"][..], "-o"),
        (D, &["a.o", "-Wl,-rpath"], "-rpath"),
        (D, &["a.o", "-Xlinker"], "-Xlinker"),
        (D, &["a.o", "-Xlinker", "-rpath"], "-rpath"),
        (L, &["a.o", "-rpath"], "-rpath"),
        (L, &["a.o", "-L"], "-L"),
    ] {
        match plan_err(kind, args, d) {
            ArgvError::MissingValue { option } => assert_eq!(option, OsStr::new(opt), "{args:?}"),
            e => panic!("wrong error {e:?}"),
        }
    }
}

/// A pipe (`@/dev/fd/63` from nixpkgs' `@<(printf ...)`) or FIFO must not be read: that would
/// consume the real tool's arguments. It is reported without ever being opened.
#[test]
fn pipe_response_file_is_left_unread() {
    let dir = workdir();
    let fifo = dir.path().join("fifo.rsp");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo")
        .success();
    assert!(ok, "mkfifo failed");
    // Opening a FIFO for reading with no writer would block: finishing at all shows it was not.
    for kind in [D, L] {
        match plan_err(kind, &["a.o", "@fifo.rsp"], dir.path()) {
            ArgvError::Rsp(RspError::NotRegularFile { path }) => assert_eq!(path, fifo),
            e => panic!("wrong error {e:?}"),
        }
    }
    // Also through `-Wl,@file`, which the linker would read.
    let e = plan_err(D, &["a.o", "-Wl,@fifo.rsp"], dir.path());
    assert!(
        matches!(e, ArgvError::Rsp(RspError::NotRegularFile { .. })),
        "{e:?}"
    );
    // A real pipe, as bash's process substitution passes it.
    let mut child = std::process::Command::new("cat")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn cat");
    let pid = child.id();
    let pipe = format!("@/proc/{pid}/fd/0");
    let e = plan_err(D, &["a.o", &pipe], dir.path());
    assert!(
        matches!(e, ArgvError::Rsp(RspError::NotRegularFile { .. })),
        "{e:?}"
    );
    assert!(e.to_string().contains("would consume"), "{e}");
    drop(child.stdin.take());
    child.wait().expect("wait cat");
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let depth = ldnote::rsp::MAX_DEPTH + 1;
    for i in 0..depth {
        std::fs::write(
            dir.path().join(format!("{i}.rsp")),
            format!("@{}.rsp", i + 1),
        )
        .expect("write");
    }
    std::fs::write(dir.path().join(format!("{depth}.rsp")), "a.o").expect("write");
    let e = plan_err(D, &["@0.rsp"], dir.path());
    assert!(
        matches!(e, ArgvError::Rsp(RspError::TooDeep { .. })),
        "{e:?}"
    );
    // Exactly MAX_DEPTH files deep is the limit: from `@1` one file too many, from `@2` fine.
    let e = plan_err(D, &["@1.rsp"], dir.path());
    assert!(
        matches!(e, ArgvError::Rsp(RspError::TooDeep { .. })),
        "{e:?}"
    );
    let ok = plan_checked(D, &[OsString::from("@2.rsp")], dir.path());
    assert_eq!(ok.inputs, [OsString::from("a.o")]);
}

#[test]
fn non_utf8_bytes_survive() {
    let dir = workdir();
    let b = |s: &[u8]| OsString::from_vec(s.to_vec());
    std::fs::write(
        dir.path().join("nu.rsp"),
        b"-Wl,-rpath,/rsp/\xfe 'in\xffput.o'",
    )
    .expect("write");
    let argv = vec![
        b(b"m\xe9in.c"),
        b(b"-o"),
        b(b"out\xff"),
        b(b"-Wl,-rpath,/opt/\x80,--sysroot=/sys\xc3"),
        b(b"-L/l\xfe"),
        b(b"-l\xfa"),
        b(b"@nu.rsp"),
    ];
    let p = plan_checked(D, &argv, dir.path());
    assert_eq!(p.skip, None);
    assert_eq!(p.output.as_bytes(), b"out\xff");
    assert_eq!(p.rpaths, [b(b"/opt/\x80"), b(b"/rsp/\xfe")]);
    assert_eq!(
        p.sysroot.as_deref().map(OsStrExt::as_bytes),
        Some(&b"/sys\xc3"[..])
    );
    assert_eq!(p.inputs, [b(b"m\xe9in.c"), b(b"in\xffput.o")]);
    assert_eq!(p.lib_dirs, [b(b"/l\xfe")]);
    assert_eq!(p.libs, [b(b"\xfa")]);
    // And in linker syntax.
    let argv = vec![b(b"-rpath"), b(b"/\xff"), b(b"-o\xfe"), b(b"x\x80.o")];
    let p = plan_checked(L, &argv, dir.path());
    assert_eq!(
        (p.rpaths, p.output, p.inputs),
        (vec![b(b"/\xff")], b(b"\xfe"), vec![b(b"x\x80.o")])
    );
}

/// Pseudo-random argv from a pool of troublesome tokens: `plan` never panics, is deterministic,
/// and never plans a note for a run with nothing to link or no output name.
#[test]
fn random_argv_never_panics() {
    let dir = workdir();
    #[rustfmt::skip]
    let pool: &[&[u8]] = &[
        b"-o", b"-Wl,", b"-Wl,-rpath", b"-Xlinker", b"-R", b"libdir", b"syms.o", b"@self.rsp",
        b"@sub/outer.rsp", b"@nope", b"-", b"--", b"-l", b"-L", b"-m", b"-shared", b"-static",
        b"-r", b"-v", b"-c", b"--oformat", b"binary", b"a.o", b"\xff", b"", b"=", b"-rpath=",
        b"--sysroot", b"-flavor", b"gnu", b",", b"-Wl,,,", b"-o/dev/null", b"--output=", b"-x",
        b"-target", b"-static-pie", b"-pie", b"-print-", b"-M", b"-T", b"@", b"-Wl,@wl.rsp",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % bound as u64).expect("small")
    };
    for _ in 0..3000 {
        let n = next(8);
        let argv: Vec<OsString> = (0..n)
            .map(|_| {
                let mut arg = pool[next(pool.len())].to_vec();
                if next(3) == 0 {
                    arg.extend_from_slice(pool[next(pool.len())]);
                }
                OsString::from_vec(arg)
            })
            .collect();
        for kind in [D, L] {
            let first = plan(kind, &argv, dir.path());
            let second = plan(kind, &argv, dir.path());
            match (&first, &second) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "{argv:?}");
                    if a.skip.is_none() {
                        assert!(
                            !(a.inputs.is_empty() && a.libs.is_empty()),
                            "{argv:?}: {a:?}"
                        );
                        assert!(!a.output.is_empty(), "{argv:?}: {a:?}");
                    }
                }
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                _ => panic!("nondeterministic for {argv:?}: {first:?} vs {second:?}"),
            }
        }
    }
}
