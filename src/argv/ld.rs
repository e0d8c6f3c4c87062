//! GNU ld option syntax (shared by ld.bfd, gold, lld and mold for everything read here).
//!
//! Rules mirrored from binutils 2.40 `ld/lexsup.c` (getopt_long_only) and checked against the real
//! `ld`:
//! - long options take one or two dashes (`-rpath X`, `--rpath=X`, `-soname=X`); a long option with
//!   a required value takes it joined with `=` or as the next argument;
//! - `-lX` is always the short option (ld rewrites it to `--library=X`: `-lib` links `libib`);
//!   `-o...` is the short option unless it is a one-dash long option or an abbreviation of one
//!   (`-omagic` writes the file `magic`, `-oformat binary` writes `format` and reads input `binary`,
//!   since `--omagic`/`--oformat` need two dashes; `-ou=x` is `--out-implib`); other short options
//!   with values take them joined or separate (`-melf_i386`, `-m elf_i386`, `-znow`,
//!   `-Tscript.ld`), unless the word is a long option or its abbreviation (`-Map`, `-Ttext`, `-M=x`);
//! - `-R X` is `--just-symbols` when X is an existing non-directory and `-rpath` otherwise;
//! - `-v`/`-V`/`--verbose`/`--print-output-format` print and then link if there are inputs, while
//!   `--version`/`--help` exit at once.
//!
//! - long options may be abbreviated to any unambiguous prefix, as `getopt_long` allows: GNU ld
//!   first tries every option except the `EXACTLY_TWO_DASHES` ones with `getopt_long_only` (so
//!   `--ou=x` and `-ou=x` are `--out-implib`), and when that fails (no match or an ambiguous
//!   one) tries those with `getopt_long`: `--outpu=x` is `--output` (`argv/ld_table.rs`). An
//!   abbreviation whose meaning could be the output but is ambiguous makes the output unknown.
//!
//! Names only gold, lld or mold know are matched exactly first; an unknown option is taken to be
//! a flag without value.

use super::ld_table::{Arg, GNU_LD_LONG};
use super::{ArgvError, Facts};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// What an option with a value does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    Output,
    Lib,
    LibDir,
    Rpath,
    /// `-R`: rpath for a directory or a missing path, `--just-symbols` for an existing file.
    RpathOrSymbols,
    Emulation,
    Sysroot,
    Oformat,
    /// Consumed so it is not mistaken for an input; meaning irrelevant here.
    Ignore,
}

/// What a flag does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    Shared,
    Pie(bool),
    Relocatable,
    NewDtags(bool),
    NoDynamicLinker,
    Query,
    QueryIfNoInputs,
    /// Listed only so it is not read as a short option with a joined value (`-mmap-output-file`
    /// is not emulation `map-output-file`).
    Inert,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt {
    /// Required value: `--x=V` or `--x V`.
    Value(Val),
    /// Optional value, only ever joined with `=` (`--build-id[=style]`).
    Optional,
    Flag(Flag),
}

/// Long options (one or two dashes). Flags that do not matter here are not listed: an unknown
/// option is a flag. Every option with a *required* value must be here so its value is skipped.
const LONG: &[(&str, Opt)] = {
    use Flag::*;
    use Opt::{Flag as F, Optional as O, Value as V};
    use Val::*;
    &[
        ("output", V(Output)),
        ("library", V(Lib)),
        ("library-path", V(LibDir)),
        ("rpath", V(Rpath)),
        ("sysroot", V(Sysroot)),
        ("oformat", V(Oformat)),
        ("shared", F(Shared)),
        ("Bshareable", F(Shared)),
        ("pie", F(Pie(true))),
        ("pic-executable", F(Pie(true))),
        ("no-pie", F(Pie(false))),
        ("relocatable", F(Relocatable)),
        ("Ur", F(Relocatable)),
        ("enable-new-dtags", F(NewDtags(true))),
        ("disable-new-dtags", F(NewDtags(false))),
        ("no-dynamic-linker", F(NoDynamicLinker)),
        ("version", F(Query)),
        ("help", F(Query)),
        ("target-help", F(Query)),
        ("verbose", F(QueryIfNoInputs)),
        ("print-output-format", F(QueryIfNoInputs)),
        ("build-id", O),
        ("color-diagnostics", O),
        ("threads", O),
        ("unique", O),
        ("sort-common", O),
        ("separate-debug-file", O),
        ("shuffle-sections", O),
        ("merge-exidx-entries", F(Inert)),
        ("mmap-output-file", F(Inert)),
        ("map-whole-files", F(Inert)),
    ]
};

/// Long options whose required value is irrelevant here but must not be read as an input.
#[rustfmt::skip]
const LONG_IGNORED_VALUE: &[&str] = &[
    // GNU ld
    "architecture", "format", "mri-script", "entry", "auxiliary", "filter", "gpsize", "soname",
    "dynamic-linker", "script", "undefined", "trace-symbol", "rpath-link", "Map", "plugin",
    "plugin-opt", "defsym", "wrap", "exclude-libs", "version-script", "dynamic-list",
    "section-start", "sort-section", "retain-symbols-file", "require-defined", "dependency-file",
    "out-implib", "image-base", "Tbss", "Tdata", "Ttext", "Ttext-segment", "Trodata-segment",
    "Tldata-segment", "export-dynamic-symbol", "export-dynamic-symbol-list", "package-metadata",
    "error-handling-script", "section-ordering-file", "default-script", "dT", "hash-style",
    "task-link", "assert", "audit", "depaudit", "orphan-handling", "unresolved-symbols", "init",
    "fini", "just-symbols", "compress-debug-sections", "hash-size", "spare-dynamic-tags", "wrap",
    "heap", "stack", "subsystem", "file-alignment", "section-alignment", "major-image-version",
    "minor-image-version", "major-os-version", "minor-os-version", "major-subsystem-version",
    "minor-subsystem-version", "ctf-share-types", "error-limit",
    // gold
    "thread-count", "thread-count-initial", "thread-count-middle", "thread-count-final",
    "incremental-base", "icf", "icf-iterations", "print-symbol-counts", "section-ordering-file",
    "plugin-opt", "keep-unique", "sort-section", "version-exports-section", "rosegment-gap",
    // lld
    "mllvm", "reproduce", "chroot", "symbol-ordering-file", "call-graph-ordering-file",
    "pack-dyn-relocs", "undefined-glob", "lto-partitions", "thinlto-cache-dir",
    "thinlto-cache-policy", "thinlto-jobs", "lto-obj-path", "opt-remarks-filename",
    "opt-remarks-passes", "opt-remarks-format", "target2", "remap-inputs", "remap-inputs-file",
    "print-archive-stats", "why-extract", "time-trace-file", "time-trace-granularity",
    // mold
    "spare-program-headers", "package-metadata",
];

/// Short options (single letter) that take a value, joined or separate.
fn short_value(letter: u8) -> Option<Val> {
    Some(match letter {
        b'o' => Val::Output,
        b'l' => Val::Lib,
        b'L' => Val::LibDir,
        b'R' => Val::RpathOrSymbols,
        b'm' => Val::Emulation,
        // -a keyword, -A arch, -b format, -c mri-script, -e entry, -f/-F aux/filter, -G gpsize,
        // -h soname, -I dynamic-linker, -O level, -P depaudit, -T script, -u undefined,
        // -y trace-symbol, -Y default path, -z keyword
        b'a' | b'A' | b'b' | b'c' | b'e' | b'f' | b'F' | b'G' | b'h' | b'I' | b'O' | b'P'
        | b'T' | b'u' | b'y' | b'Y' | b'z' => Val::Ignore,
        _ => return None,
    })
}

/// Short flags that matter (`-r`, `-i`, `-v`, `-V`); other letters are inert.
fn short_flag(letter: u8) -> Option<Flag> {
    match letter {
        b'r' | b'i' => Some(Flag::Relocatable),
        b'v' | b'V' => Some(Flag::QueryIfNoInputs),
        _ => None,
    }
}

fn long_opt(name: &[u8]) -> Option<Opt> {
    LONG.iter()
        .find(|(n, _)| n.as_bytes() == name)
        .map(|&(_, opt)| opt)
        .or_else(|| {
            LONG_IGNORED_VALUE
                .iter()
                .any(|n| n.as_bytes() == name)
                .then_some(Opt::Value(Val::Ignore))
        })
}

/// GNU ld's options that `-NAME` (one dash) never means: `-omagic` is `-o magic`.
fn gnu_two_dashes_only(name: &[u8]) -> bool {
    GNU_LD_LONG
        .iter()
        .any(|&(n, _, two)| two && n.as_bytes() == name)
}

/// What GNU ld makes of a long option name that is not spelled out in full.
#[derive(Debug, PartialEq, Eq)]
enum Abbrev {
    /// No option has this name or prefix.
    Unknown,
    /// `getopt_long` finds it (exactly, or as the only option with this prefix).
    Option(&'static str, Arg),
    /// More than one option has this prefix: GNU ld stops with an error. `output`: one of the
    /// candidates is `--output`.
    Ambiguous { output: bool },
}

/// GNU ld's two passes over its long options (`ld/lexsup.c` `parse_args`): `getopt_long_only`
/// over all but the two-dash-only ones, then, when that fails, `getopt_long` over those (only for
/// `--` arguments: `getopt_long` reads `-x` as short options). In each pass an exact name wins;
/// otherwise a prefix must be unique (`getopt_long_only` treats any two matches as ambiguous; in
/// the second pass the options differ, so two matches are ambiguous too).
fn gnu_abbreviation(name: &[u8], two: bool) -> Abbrev {
    if name.is_empty() {
        return Abbrev::Unknown;
    }
    let pass = |second: bool| {
        let mut hits = GNU_LD_LONG
            .iter()
            .filter(|&&(n, _, t)| t == second && n.as_bytes().starts_with(name));
        let all: Vec<_> = hits.clone().collect();
        if let Some(&(n, a, _)) = all.iter().find(|(n, _, _)| n.as_bytes() == name) {
            return Abbrev::Option(n, *a);
        }
        match (hits.next(), hits.next()) {
            (None, _) => Abbrev::Unknown,
            (Some(&(n, a, _)), None) => Abbrev::Option(n, a),
            _ => Abbrev::Ambiguous {
                output: all.iter().any(|(n, _, _)| *n == "output"),
            },
        }
    };
    let first = pass(false);
    if matches!(first, Abbrev::Option(..)) || !two {
        return first;
    }
    match (pass(true), first) {
        (Abbrev::Unknown, first) => first,
        (second, _) => second,
    }
}

/// Stateful reader of a GNU ld argument stream. Values may come in a later call (as with
/// `-Wl,-rpath -Wl,/dir` or `-Xlinker -rpath -Xlinker /dir`).
#[derive(Debug, Default)]
pub(super) struct LdParser {
    /// An option whose separate value is the next argument, with its spelling for errors.
    pending: Option<(Val, OsString)>,
}

impl LdParser {
    /// Read one linker argument (response files already expanded).
    pub(super) fn feed(&mut self, arg: &OsStr, facts: &mut Facts, cwd: &Path) {
        if let Some((val, _)) = self.pending.take() {
            apply_value(val, arg, facts, cwd);
            return;
        }
        let bytes = arg.as_bytes();
        let Some(body) = bytes.strip_prefix(b"-").filter(|b| !b.is_empty()) else {
            // Operands, including a lone `-`, are inputs to the linker.
            facts.inputs.push(arg.to_owned());
            return;
        };
        if let Some(long) = body.strip_prefix(b"-") {
            self.long(long, true, arg, facts, cwd);
            return;
        }
        let first = body[0];
        // GNU ld rewrites `-lNAME` to `--library=NAME` before parsing; `getopt_long_only` reads a
        // lone short letter as the short option without trying the long ones.
        let short_only = first == b'l' || body.len() == 1;
        if !short_only && self.long(body, false, arg, facts, cwd) {
            return;
        }
        if let Some(val) = short_value(first) {
            match &body[1..] {
                [] => self.pending = Some((val, arg.to_owned())),
                joined => apply_value(val, OsStr::from_bytes(joined), facts, cwd),
            }
        } else if body.len() == 1 {
            if let Some(flag) = short_flag(first) {
                apply_flag(flag, facts);
            }
        }
    }

    /// Read an argument that is an input file whatever it looks like (a driver operand such as
    /// `-` or one after `--`); it still fills a pending option's value, as it would on the real
    /// linker line.
    pub(super) fn feed_operand(&mut self, arg: &OsStr, facts: &mut Facts, cwd: &Path) {
        match self.pending.take() {
            Some((val, _)) => apply_value(val, arg, facts, cwd),
            None => facts.inputs.push(arg.to_owned()),
        }
    }

    /// Try `name` or `name=value` as a long option; false when it is not a known one.
    /// `two`: written with two dashes (GNU ld's `EXACTLY_TWO_DASHES` options need them).
    fn long(&mut self, body: &[u8], two: bool, arg: &OsStr, facts: &mut Facts, cwd: &Path) -> bool {
        let (name, value) = match body.iter().position(|&b| b == b'=') {
            Some(eq) => (&body[..eq], Some(OsStr::from_bytes(&body[eq + 1..]))),
            None => (body, None),
        };
        let exact = long_opt(name).filter(|_| two || !gnu_two_dashes_only(name));
        let opt = match exact {
            Some(opt) => opt,
            None => match gnu_abbreviation(name, two) {
                Abbrev::Unknown => return false,
                Abbrev::Ambiguous { output } => {
                    // GNU ld refuses the argument; another linker may not. Either way the
                    // output cannot be told for certain.
                    facts.output_ambiguous |= output;
                    return true;
                }
                Abbrev::Option(full, arg) => {
                    let base = full.split('=').next().unwrap_or(full);
                    long_opt(base.as_bytes()).unwrap_or(match arg {
                        Arg::R => Opt::Value(Val::Ignore),
                        Arg::O => Opt::Optional,
                        Arg::N => Opt::Flag(Flag::Inert),
                    })
                }
            },
        };
        match (opt, value) {
            (Opt::Value(val), Some(v)) => apply_value(val, v, facts, cwd),
            (Opt::Value(val), None) => self.pending = Some((val, arg.to_owned())),
            (Opt::Flag(flag), None) => apply_flag(flag, facts),
            // `--flag=x` is an error for the linker; nothing to learn from it.
            (Opt::Flag(_), Some(_)) | (Opt::Optional, _) => {}
        }
        true
    }

    /// End of the argument stream: a dangling option is an error the linker will report too.
    pub(super) fn finish(self) -> Result<(), ArgvError> {
        match self.pending {
            Some((_, option)) => Err(ArgvError::MissingValue { option }),
            None => Ok(()),
        }
    }
}

fn apply_flag(flag: Flag, facts: &mut Facts) {
    match flag {
        Flag::Shared => facts.shared = true,
        Flag::Pie(on) => facts.pie = Some(on),
        Flag::Relocatable => facts.relocatable = true,
        Flag::NewDtags(on) => facts.new_dtags = Some(on),
        Flag::NoDynamicLinker => facts.no_dynamic_linker = true,
        Flag::Query => facts.query = true,
        Flag::QueryIfNoInputs => facts.query_if_no_inputs = true,
        Flag::Inert => {}
    }
}

fn apply_value(val: Val, value: &OsStr, facts: &mut Facts, cwd: &Path) {
    let value = value.to_owned();
    match val {
        Val::Output => facts.linker_output = Some(value),
        Val::Lib => facts.libs.push(value),
        Val::LibDir => facts.lib_dirs.push(value),
        Val::Rpath => facts.rpaths.push(value),
        Val::RpathOrSymbols => {
            // ld/lexsup.c: `stat (optarg) >= 0 && !S_ISDIR` -> symbols-only input, else -rpath.
            match std::fs::metadata(cwd.join(&value)) {
                Ok(meta) if !meta.is_dir() => {}
                _ => facts.rpaths.push(value),
            }
        }
        Val::Emulation => facts.emulation = Some(value),
        Val::Sysroot => facts.sysroot = Some(value),
        Val::Oformat => facts.oformat = Some(value),
        Val::Ignore => {}
    }
}
