//! Link-line parsing: an `OsString` argv becomes a [`LinkPlan`] (what will be linked, where, with
//! which run paths), or the reason this invocation produces nothing worth a note.
//!
//! The plan is for analysis only: [`plan`] never changes the arguments, and the caller forwards the
//! original argv to the real tool byte for byte. Response files are expanded (see [`crate::rsp`])
//! the way gcc and GNU ld expand them themselves. In driver mode, `-Wl,a,b` is split on every comma
//! and `-Xlinker a` is taken whole, and the resulting linker arguments are read with the same GNU ld
//! rules as a direct linker invocation (`argv/ld.rs`); the driver's own options are read by
//! `argv/driver.rs`.
//!
//! Arguments are bytes throughout; nothing is assumed to be UTF-8.

pub mod decide;
mod driver;
mod ld;
mod ld_table;
mod tool;

pub use tool::{classify_tool, ToolKind, ToolName};

use crate::rsp::{self, RspError};
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Why an invocation produces no dynamically linked ELF file to annotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// The driver stops before linking: `-c`, `-S`, `-E`, `-M`, `-MM`, `-fsyntax-only`,
    /// clang `--precompile`/`--analyze`.
    CompileOnly,
    /// A relocatable link (`-r`, `-i`, `--relocatable`, `-Ur`, also through `-Wl,`).
    Relocatable,
    /// A driver `-static` link (not `-static-pie`, not `-shared`): no dynamic section.
    Static,
    /// Only prints information: `--version`, `--help`, `-###`, `-print-*`, `-dump{machine,version,
    /// fullversion,specs}`, or `-v`/`-V`/`--verbose` with no inputs.
    Query,
    /// The output is not ELF: `--oformat` other than `elf*`, a PE emulation (`-m i386pep`), a
    /// non-ELF `--target` (Darwin, Windows, wasm, UEFI) or an lld `-flavor` other than `gnu`.
    NonElfOutput,
    /// The output is not a regular file (`-o /dev/null`, `-o -`, or an existing non-file).
    NotAFile,
    /// No input files or libraries at all: the tool will only report an error.
    NoInputs,
    /// An abbreviated long option that may or may not name the output (`--o=x`: GNU ld refuses
    /// it as ambiguous, another linker may take it): the output is not known for certain.
    AmbiguousOutput,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::CompileOnly => "compile only, no link",
            SkipReason::Relocatable => "relocatable link",
            SkipReason::Static => "static link",
            SkipReason::Query => "information query, no link",
            SkipReason::NonElfOutput => "output format is not ELF",
            SkipReason::NotAFile => "output is not a regular file",
            SkipReason::NoInputs => "no input files",
            SkipReason::AmbiguousOutput => {
                "an abbreviated option may name the output: the output is not known for certain"
            }
        })
    }
}

/// What one linker or driver invocation will do, as far as the note writer cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPlan {
    /// Linker or driver syntax.
    pub kind: ToolKind,
    /// Last `-o`/`--output`/`-o<x>`/`--output=<x>`; a linker-level `-Wl,-o,X` beats the driver's
    /// `-o` because drivers put their own `-o` first on the linker line. Default `a.out`.
    pub output: OsString,
    /// `None` when this run should produce a dynamically linked ELF to annotate.
    pub skip: Option<SkipReason>,
    /// `-shared`/`--shared`/`-Bshareable`.
    pub shared: bool,
    /// Last `-pie`/`-no-pie` (and long forms); `None` = the toolchain default.
    pub pie: Option<bool>,
    /// Driver `-static-pie`, or a linker line with `-pie` and `--no-dynamic-linker`.
    pub static_pie: bool,
    /// Every run-path entry in command-line order, as written (an entry may hold `:`-separated
    /// dirs, exactly as the linker copies it into DT_RUNPATH).
    pub rpaths: Vec<OsString>,
    /// Last `--enable-new-dtags` (true) / `--disable-new-dtags` (false).
    pub new_dtags: Option<bool>,
    /// Last `--sysroot=X`/`--sysroot X` (driver or linker form).
    pub sysroot: Option<OsString>,
    /// Last linker emulation (`-m EMU`, `-mEMU`, driver `-Wl,-m,EMU`).
    pub emulation: Option<OsString>,
    /// Last clang `--target=T`/`-target T`.
    pub target: Option<OsString>,
    /// Driver machine flags that select the target (`-m32`, `-m64`, `-mx32`, `-mabi=`, `-march=`,
    /// `-mfloat-abi=`, `-mcpu=`, endianness and float flags), in order.
    pub machine_flags: Vec<OsString>,
    /// Input operands in order (objects, archives, shared objects, driver sources); not `-l`.
    pub inputs: Vec<OsString>,
    /// `-l` names in order, without the `-l` (`foo`, `:libfoo.so.1`).
    pub libs: Vec<OsString>,
    /// `-L` dirs in order.
    pub lib_dirs: Vec<OsString>,
    /// Number of leading arguments that must stay first (lld's `-flavor X` = 2), else 0.
    pub flavor_prefix: usize,
}

impl LinkPlan {
    /// Whether the output can get a run path, and so a note: only from the line's `-rpath`/`-R`
    /// (driver `-Wl,` forms included) or, when the line has none, GNU ld's `LD_RUN_PATH`
    /// (`ldelf_before_allocation` in ld/ldelf.c reads it only then). Without one there is
    /// nothing to record, so no reservation is worth its bytes. A driver whose specs add a run
    /// path still gets its note, appended after the link.
    pub fn may_have_run_path(&self, ld_run_path_set: bool) -> bool {
        !self.rpaths.is_empty() || ld_run_path_set
    }
}

/// Why a command line could not be analysed. The real tool should still be run unchanged; it will
/// report its own error (or succeed where the analysis is stricter), but no note can be planned.
#[derive(Debug, thiserror::Error)]
pub enum ArgvError {
    /// A response file could not be expanded.
    #[error(transparent)]
    Rsp(#[from] RspError),
    /// An option that takes a separate value was the last argument.
    #[error("option `{}` is missing its value", .option.to_string_lossy())]
    MissingValue {
        /// The option as written.
        option: OsString,
    },
}

/// Facts gathered by the linker and driver scanners, before defaults and skip rules.
#[derive(Debug, Default)]
struct Facts {
    linker_output: Option<OsString>,
    driver_output: Option<OsString>,
    shared: bool,
    pie: Option<bool>,
    driver_static: bool,
    driver_static_pie: bool,
    no_dynamic_linker: bool,
    relocatable: bool,
    compile_only: bool,
    /// Always a query (`--version`, `--help`, ...).
    query: bool,
    /// A query only when there is nothing to link (`-v`, `-V`, `--verbose`, ...).
    query_if_no_inputs: bool,
    oformat: Option<OsString>,
    rpaths: Vec<OsString>,
    new_dtags: Option<bool>,
    sysroot: Option<OsString>,
    emulation: Option<OsString>,
    target: Option<OsString>,
    machine_flags: Vec<OsString>,
    inputs: Vec<OsString>,
    libs: Vec<OsString>,
    lib_dirs: Vec<OsString>,
    /// An ambiguous abbreviation that could be `--output`.
    output_ambiguous: bool,
}

/// Analyse one invocation. `args` excludes `argv[0]`; `cwd` resolves relative `@file`s, `-R`
/// paths and the output path. Reads the file system only to expand response files, to tell a
/// `-R` directory from a `-R` file (as GNU ld does) and to stat the output.
pub fn plan(kind: ToolKind, args: &[OsString], cwd: &Path) -> Result<LinkPlan, ArgvError> {
    // lld only honours `-flavor X` as the very first arguments; it decides the whole syntax.
    let (flavor_prefix, flavor, rest) = match (kind, args) {
        (ToolKind::Linker, [first, value, rest @ ..]) if first.as_bytes() == b"-flavor" => {
            (2, Some(value.as_os_str()), rest)
        }
        _ => (0, None, args),
    };
    let expanded = rsp::expand(rest, cwd)?;
    let mut facts = Facts::default();
    match kind {
        ToolKind::Linker => {
            let mut parser = ld::LdParser::default();
            for arg in expanded.iter() {
                parser.feed(arg, &mut facts, cwd);
            }
            parser.finish()?;
        }
        ToolKind::Driver => driver::scan(&expanded, &mut facts, cwd)?,
    }
    let non_elf_flavor = flavor.is_some_and(|f| !matches!(f.as_bytes(), b"gnu" | b"ld.lld"));
    let output = facts
        .linker_output
        .take()
        .or_else(|| facts.driver_output.take())
        .unwrap_or_else(|| OsString::from("a.out"));
    let static_pie =
        facts.driver_static_pie || (facts.no_dynamic_linker && facts.pie == Some(true));
    let skip = skip_reason(&facts, non_elf_flavor, &output, cwd);
    Ok(LinkPlan {
        kind,
        output,
        skip,
        shared: facts.shared,
        pie: facts.pie,
        static_pie,
        rpaths: facts.rpaths,
        new_dtags: facts.new_dtags,
        sysroot: facts.sysroot,
        emulation: facts.emulation,
        target: facts.target,
        machine_flags: facts.machine_flags,
        inputs: facts.inputs,
        libs: facts.libs,
        lib_dirs: facts.lib_dirs,
        flavor_prefix,
    })
}

/// The first applicable reason, most decisive first: a query or compile-only run never links, a
/// non-ELF or relocatable output is never annotated whatever else holds.
fn skip_reason(f: &Facts, non_elf_flavor: bool, output: &OsStr, cwd: &Path) -> Option<SkipReason> {
    let nothing_to_link = f.inputs.is_empty() && f.libs.is_empty();
    if f.query || (f.query_if_no_inputs && nothing_to_link) {
        return Some(SkipReason::Query);
    }
    if f.compile_only {
        return Some(SkipReason::CompileOnly);
    }
    if f.output_ambiguous {
        return Some(SkipReason::AmbiguousOutput);
    }
    let non_elf = non_elf_flavor
        || f.oformat
            .as_deref()
            .is_some_and(|o| !o.as_bytes().starts_with(b"elf"))
        || f.emulation.as_deref().is_some_and(is_pe_emulation)
        || f.target.as_deref().is_some_and(is_non_elf_target);
    if non_elf {
        return Some(SkipReason::NonElfOutput);
    }
    if f.relocatable {
        return Some(SkipReason::Relocatable);
    }
    // `-static-pie` keeps a dynamic section (no DT_NEEDED, but harmless to look at); `-shared
    // -static` still makes a shared object.
    if f.driver_static && !f.driver_static_pie && !f.shared {
        return Some(SkipReason::Static);
    }
    if !is_regular_output(output, cwd) {
        return Some(SkipReason::NotAFile);
    }
    if nothing_to_link {
        return Some(SkipReason::NoInputs);
    }
    None
}

/// GNU ld's PE emulations (`i386pe`, `i386pep`, `arm64pe`, ...) write COFF/PE images.
fn is_pe_emulation(emulation: &OsStr) -> bool {
    let e = emulation.as_bytes();
    e.ends_with(b"pe") || e.ends_with(b"pep")
}

/// Target triples whose object format is not ELF (Mach-O, COFF/PE, wasm).
fn is_non_elf_target(triple: &OsStr) -> bool {
    triple
        .as_bytes()
        .split(|&b| b == b'-')
        .enumerate()
        .any(|(i, part)| {
            (i == 0 && part.starts_with(b"wasm"))
                || part == b"apple"
                || part == b"windows"
                || part == b"uefi"
                || part == b"msvc"
                || part.starts_with(b"cygwin")
                || part.starts_with(b"mingw")
                || ["darwin", "macos", "ios", "tvos", "watchos", "xros"]
                    .iter()
                    .any(|os| part.starts_with(os.as_bytes()))
        })
}

/// False for `-`, `/dev/null` and any existing path that is not a regular file (device, FIFO,
/// directory, also through a symlink); a missing output is fine, the linker creates it.
fn is_regular_output(output: &OsStr, cwd: &Path) -> bool {
    if matches!(output.as_bytes(), b"-" | b"/dev/null") {
        return false;
    }
    match std::fs::metadata(cwd.join(output)) {
        Ok(meta) => meta.is_file(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_elf_targets() {
        for t in [
            "x86_64-apple-darwin",
            "arm64-apple-ios17",
            "x86_64-pc-windows-msvc",
            "x86_64-w64-mingw32",
            "wasm32-unknown-unknown",
            "wasm32-wasi",
            "x86_64-unknown-uefi",
            "i686-pc-cygwin",
        ] {
            assert!(is_non_elf_target(OsStr::new(t)), "{t}");
        }
        for t in [
            "x86_64-unknown-linux-gnu",
            "aarch64-linux-gnu",
            "riscv64-unknown-linux-musl",
            "arm-none-eabi",
            "x86_64-unknown-freebsd",
        ] {
            assert!(!is_non_elf_target(OsStr::new(t)), "{t}");
        }
    }

    #[test]
    fn pe_emulations() {
        assert!(is_pe_emulation(OsStr::new("i386pep")));
        assert!(is_pe_emulation(OsStr::new("i386pe")));
        assert!(!is_pe_emulation(OsStr::new("elf_x86_64")));
        assert!(!is_pe_emulation(OsStr::new("aarch64linux")));
    }
}
