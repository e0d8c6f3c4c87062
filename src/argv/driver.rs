//! Compiler-driver syntax (gcc, g++, clang, clang++ as far as linking is concerned).
//!
//! gcc (`%o` in its link spec) and clang (`AddLinkerInputs`) put input files, `-l` libraries,
//! `-Wl,` pieces and `-Xlinker` values on the linker line in their command-line order, so all of
//! these are fed, in order, into one [`LdParser`]: a linker option's value may come from a later
//! `-Wl,`, `-Xlinker` or even an input operand, exactly as on the real linker line. `-Wl,a,b,c` is
//! split on every comma (no escaping), `-Xlinker a`/`--for-linker a` is taken whole. An `@file`
//! inside `-Wl,` is expanded the way the linker expands it; a bare `@file` argument, even after
//! `-Xlinker`, was already expanded by the driver (libiberty `expandargv` expands every `@` word).
//! The driver's own `-o`, `-L`, `-shared`, `-pie`, `-r`, `-static*`, clang's `-rpath` are read
//! here directly.
//!
//! Options whose value is a separate argument (`-o X`, `-x c`, `-I dir`, `-include f`, `--param
//! k=v`, `-Xclang X`, ...) are consumed so their value is neither an input nor an option. gcc's
//! `-R X` is accepted and dropped on GNU/Linux targets and clang's `-R...` is a remark flag, so
//! neither is an rpath at driver level. An unknown option is a flag without value.

use super::ld::LdParser;
use super::{ArgvError, Facts};
use crate::rsp;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What a driver option with a value does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Output,
    Lib,
    LibDir,
    /// clang `-rpath X`, forwarded to the linker as `-rpath X` among the linker inputs.
    Rpath,
    Sysroot,
    Target,
    /// `-Xlinker X` / `--for-linker X`: one linker argument.
    Linker,
    Ignore,
}

/// Driver options that take their value as the next argument. Single-letter ones and `-M?` also
/// take it joined (see [`JOINED`]).
const SEPARATE: &[(&str, Val)] = {
    use Val::*;
    &[
        ("-o", Output),
        ("--output", Output),
        ("-l", Lib),
        ("-L", LibDir),
        ("--library-directory", LibDir),
        ("-rpath", Rpath),
        ("--sysroot", Sysroot),
        ("-target", Target),
        ("-Xlinker", Linker),
        ("--for-linker", Linker),
    ]
};

/// Options with an ignored separate value.
#[rustfmt::skip]
const SEPARATE_IGNORED: &[&str] = &[
    "-x", "-I", "-D", "-U", "-A", "-B", "-T", "-e", "-u", "-z", "-R", "-F", "-MF", "-MT", "-MQ",
    "-MJ", "-include", "-imacros", "-isystem", "-idirafter", "-iprefix", "-iwithprefix",
    "-iwithprefixbefore", "-isysroot", "-iquote", "-imultilib", "-imultiarch", "-cxx-isystem",
    "-iframework", "-iframeworkwithsysroot", "-ivfsoverlay", "-isystem-after", "-dumpbase",
    "-dumpdir", "-dumpbase-ext", "-wrapper", "--specs", "-Xassembler", "-Xpreprocessor", "-Xclang",
    "-Xanalyzer", "-Xopenmp-target", "-Xcuda-fatbinary", "-Xcuda-ptxas", "-Xarch_device",
    "-Xarch_host", "-Xoffload-linker", "-mllvm", "--param", "-aux-info", "-arch", "-gcc-toolchain",
    "-resource-dir", "-working-directory", "-serialize-diagnostics", "-framework", "-install_name",
    "-filelist", "-ccc-gcc-name", "-ccc-install-dir", "--include-directory", "--define-macro",
    "--undefine-macro", "--language", "--entry", "--include", "--assert", "--prefix",
    "--force-link", "-exported_symbols_list", "-current_version", "-compatibility_version",
];

/// Options that also take their value joined to the option (`-ofoo`, `-lm`, `-L/x`, `-MFdep`).
/// Checked after the exact-match tables, longest first within a shared first letter.
const JOINED: &[(&str, Val)] = {
    use Val::*;
    &[
        ("--output=", Output),
        ("--library-directory=", LibDir),
        ("--sysroot=", Sysroot),
        ("--target=", Target),
        ("--for-linker=", Linker),
        ("-MF", Ignore),
        ("-MT", Ignore),
        ("-MQ", Ignore),
        ("-MJ", Ignore),
        ("-o", Output),
        ("-l", Lib),
        ("-L", LibDir),
        ("-x", Ignore),
        ("-I", Ignore),
        ("-D", Ignore),
        ("-U", Ignore),
        ("-A", Ignore),
        ("-B", Ignore),
        ("-T", Ignore),
        ("-e", Ignore),
        ("-u", Ignore),
        ("-z", Ignore),
        ("-F", Ignore),
        ("-R", Ignore),
    ]
};

/// Flags that stop the driver before linking.
#[rustfmt::skip]
const COMPILE_ONLY: &[&str] = &[
    "-c", "-S", "-E", "-M", "-MM", "-fsyntax-only", "--precompile", "--analyze",
];

/// Flags that only print information.
#[rustfmt::skip]
const QUERY: &[&str] = &[
    "--version", "--help", "-help", "--target-help", "-###", "-dumpmachine", "-dumpversion",
    "-dumpfullversion", "-dumpspecs",
];

/// Machine flags that select or refine the target (kept for target detection).
#[rustfmt::skip]
const MACHINE_EXACT: &[&str] = &[
    "-m16", "-m31", "-m32", "-m64", "-mx32", "-mhard-float", "-msoft-float", "-mbig-endian",
    "-mlittle-endian", "-mbig", "-mlittle", "-EB", "-EL",
];
const MACHINE_PREFIX: &[&str] = &["-mabi=", "-march=", "-mfloat-abi=", "-mcpu="];

/// Read a driver command line (response files already expanded) into `facts`.
pub(super) fn scan(args: &[OsString], facts: &mut Facts, cwd: &Path) -> Result<(), ArgvError> {
    let mut linker = LdParser::default();
    let mut pending: Option<(Val, &OsStr)> = None;
    let mut after_dashdash = false;
    for arg in args {
        if let Some((val, _)) = pending.take() {
            apply(val, arg, facts, &mut linker, cwd)?;
            continue;
        }
        let bytes = arg.as_bytes();
        if after_dashdash || !bytes.starts_with(b"-") || bytes == b"-" {
            // Sources, objects, archives, shared objects, or `-` (stdin source).
            linker.feed_operand(arg, facts, cwd);
            continue;
        }
        if bytes == b"--" {
            // clang: everything after `--` is an input.
            after_dashdash = true;
            continue;
        }
        if let Some(list) = bytes.strip_prefix(b"-Wl,") {
            for piece in list.split(|&b| b == b',') {
                feed_linker(&mut linker, OsStr::from_bytes(piece), facts, cwd)?;
            }
            continue;
        }
        if let Some(&(_, val)) = SEPARATE.iter().find(|(n, _)| n.as_bytes() == bytes) {
            pending = Some((val, arg));
            continue;
        }
        if SEPARATE_IGNORED.iter().any(|n| n.as_bytes() == bytes) {
            pending = Some((Val::Ignore, arg));
            continue;
        }
        if bytes.starts_with(b"-Xarch_") {
            // `-Xarch_<arch> <arg>`: the next argument belongs to one architecture's compile.
            pending = Some((Val::Ignore, arg));
            continue;
        }
        if flag(bytes, facts) {
            continue;
        }
        if let Some((val, value)) = JOINED
            .iter()
            .find_map(|(n, val)| Some((*val, bytes.strip_prefix(n.as_bytes())?)))
        {
            apply(val, OsStr::from_bytes(value), facts, &mut linker, cwd)?;
        }
        // Anything else is a flag with no value that does not affect linking.
    }
    if let Some((_, option)) = pending {
        return Err(ArgvError::MissingValue {
            option: option.to_owned(),
        });
    }
    linker.finish()
}

/// Handle a value-less driver option; false when `bytes` is none of the ones that matter.
fn flag(bytes: &[u8], facts: &mut Facts) -> bool {
    let is = |list: &[&str]| list.iter().any(|n| n.as_bytes() == bytes);
    match bytes {
        b"-shared" | b"--shared" => facts.shared = true,
        b"-static" | b"--static" => facts.driver_static = true,
        b"-static-pie" => {
            facts.driver_static_pie = true;
            facts.pie = Some(true);
        }
        b"-pie" => facts.pie = Some(true),
        b"-no-pie" | b"-nopie" => facts.pie = Some(false),
        b"-r" => facts.relocatable = true,
        // gcc/clang `-v` with inputs is a verbose build; alone it prints the version.
        b"-v" => facts.query_if_no_inputs = true,
        _ if is(COMPILE_ONLY) => facts.compile_only = true,
        _ if is(QUERY)
            || bytes.starts_with(b"-print-")
            || bytes.starts_with(b"--print-")
            || bytes.starts_with(b"--help=") =>
        {
            facts.query = true
        }
        _ if is(MACHINE_EXACT)
            || MACHINE_PREFIX
                .iter()
                .any(|p| bytes.starts_with(p.as_bytes())) =>
        {
            facts
                .machine_flags
                .push(OsStr::from_bytes(bytes).to_owned())
        }
        // clang flags that would otherwise parse as `-e<entry>`/`-u<sym>`/`-o<file>`.
        b"-emit-llvm" | b"-undef" | b"-objcmt-migrate-all" => {}
        _ => return false,
    }
    true
}

/// Apply a driver option's value.
fn apply(
    val: Val,
    value: &OsStr,
    facts: &mut Facts,
    linker: &mut LdParser,
    cwd: &Path,
) -> Result<(), ArgvError> {
    let owned = || value.to_owned();
    match val {
        Val::Output => facts.driver_output = Some(owned()),
        Val::Lib => {
            // Both `-lm` and `-l m` reach the linker as `-lm`, in place among the inputs.
            let mut joined = OsString::from("-l");
            joined.push(value);
            linker.feed(&joined, facts, cwd);
        }
        Val::LibDir => facts.lib_dirs.push(owned()),
        Val::Rpath => {
            // clang renders `-rpath X` among the linker inputs, in command-line order.
            linker.feed(OsStr::new("-rpath"), facts, cwd);
            linker.feed_operand(value, facts, cwd);
        }
        Val::Sysroot => facts.sysroot = Some(owned()),
        Val::Target => facts.target = Some(owned()),
        Val::Linker => feed_linker(linker, value, facts, cwd)?,
        Val::Ignore => {}
    }
    Ok(())
}

/// Pass one argument to the linker stream, expanding an `@file` as the linker would.
fn feed_linker(
    linker: &mut LdParser,
    arg: &OsStr,
    facts: &mut Facts,
    cwd: &Path,
) -> Result<(), ArgvError> {
    if arg.as_bytes().starts_with(b"@") {
        for inner in rsp::expand(&[arg.to_owned()], cwd)?.iter() {
            linker.feed(inner, facts, cwd);
        }
    } else {
        linker.feed(arg, facts, cwd);
    }
    Ok(())
}
