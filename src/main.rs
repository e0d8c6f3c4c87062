//! `ldnote`: see README.md. Multicall: invoked as `ld`, `gcc`, ... it wraps that tool.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use ldnote::argv;

mod cmd;
use cmd::options::{LinkArgs, NoteOpts, PatchArgs, ResolveArgs};

/// The environment and the exit statuses, shown by `ldnote --help` (README has the same list).
const AFTER_HELP: &str = "\
Environment:
  LDNOTE_SYSROOT=DIR      target root when the link line names none (link, patch, check, explain)
  LDNOTE_LOG=1            like -v: trace decisions on stderr
  LDNOTE_STRICT=1         like link --strict: a failure to note fails the link
  LDNOTE_DEFER=1          like --defer: leave the note for a later `ldnote patch`
  LDNOTE_GLIBC=X.Y        like --glibc
  LDNOTE_IMMUTABLE=D1:D2  like --immutable-prefix (repeated)
  LDNOTE_AUDIT=1|PATH     like link --audit[=PATH]; 0 or empty: off
  LDNOTE_DISABLE=1        run the real tool and do nothing else
  LDNOTE_REAL_<NAME>=P    the real tool for a multicall name (LDNOTE_REAL_LD, LDNOTE_REAL_GCC,
                          LDNOTE_REAL_LD_LLD: upper case, `-` and `.` as `_`)
  LDNOTE_LINKER=P         the real linker for linker names without LDNOTE_REAL_<NAME>
  (LDNOTE_ACTIVE is set by ldnote for the tool it runs; do not set it.)
  Yes/no values: 1/0, true/false, yes/no, on/off.

Exit status:
  link      the linker's own status; 127 when the real tool cannot be run; 2 for an invalid
            option with --strict (without it: a warning, and the link runs unnoted)
  patch, check, show, explain
            0 done / all good; 1 a negative answer (a file not noted, a stale or damaged note,
            a malformed note, a program that would not start); 2 nothing to work on (a missing,
            non-regular or non-ELF file) or invalid options";

#[derive(Parser)]
#[command(
    name = "ldnote",
    version,
    about = "Write the .note.nixos.ldcache resolution note at link time",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run LINKER with ARGS, then note the output it produced.
    ///
    /// ldnote's options come before LINKER; everything after LINKER is the linker's, with or
    /// without `--`, and is forwarded byte for byte (`ldnote link gcc -v ...` gives `-v` to gcc).
    Link {
        #[command(flatten)]
        opts: LinkArgs,
        /// The real linker or compiler driver (e.g. `gcc`, `ld.lld`), then its arguments.
        #[arg(
            required = true,
            value_name = "LINKER [ARGS]",
            num_args = 1..,
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        command: Vec<OsString>,
    },
    /// Note already-linked files in place (patchelf --build-resolution-cache compatible).
    Patch {
        #[command(flatten)]
        opts: PatchArgs,
        /// ELF files to note in place (executables and shared libraries).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print the note of FILE as the loader reads it.
    Show {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// An ELF file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// Exit 0 when each file's note equals what would be written now.
    Check {
        #[command(flatten)]
        opts: ResolveArgs,
        /// ELF files whose notes are compared with what would be written now.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Build a small Nix-like layout, link a program through ldnote, run it, show its note.
    Demo,
    /// Predict glibc's library search for FILE: resolved files, probes, syscall counts.
    Explain(cmd::explain::ExplainArgs),
}

fn main() {
    cmd::trace::mark("start");
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let base = Path::new(&argv0)
        .file_name()
        .map(|f| f.to_os_string())
        .unwrap_or_default();
    if base != "ldnote" {
        if let Some(name) = argv::classify_tool(&base) {
            let rest: Vec<OsString> = args.collect();
            let code = cmd::link::multicall(&base, name.kind, &rest);
            cmd::trace::mark("exit");
            std::process::exit(code);
        }
    }
    let rest: Vec<OsString> = args.collect();
    if let Some(code) = cmd::link::run_as_linker_by_own_name(&rest) {
        std::process::exit(code);
    }
    // `ldnote link [--] TOOL ARGS...` without ldnote options, the shape build systems use:
    // parsed by hand exactly as clap parses it (everything after TOOL is positional). Building
    // clap's command tree is the largest CPU cost of a wrapped link after the process start
    // (~0.2 ms a run).
    let fast = match rest.as_slice() {
        [sub, dashes, tool, tool_args @ ..] if sub == "link" && dashes == "--" => {
            Some((tool, tool_args))
        }
        [sub, tool, tool_args @ ..]
            if sub == "link" && !tool.as_encoded_bytes().starts_with(b"-") =>
        {
            Some((tool, tool_args))
        }
        _ => None,
    };
    if let Some((tool, tool_args)) = fast {
        let code = cmd::link::link(NoteOpts::default(), tool, tool_args, None);
        cmd::trace::mark("exit");
        std::process::exit(code);
    }
    let cli = Cli::parse_from(std::iter::once(argv0).chain(rest));
    let code = match cli.cmd {
        Cmd::Link { opts, command } => match command.split_first() {
            Some((linker, args)) => cmd::link::link(opts.into(), linker, args, None),
            None => 2,
        },
        Cmd::Patch { opts, files } => cmd::patch::patch(opts, &files),
        Cmd::Show { json, file } => cmd::show::show(&file, json),
        Cmd::Check { opts, files } => cmd::check::check(&files, opts.into()),
        Cmd::Demo => cmd::demo::demo(),
        Cmd::Explain(a) => cmd::explain::explain(a),
    };
    cmd::trace::mark("exit");
    std::process::exit(code);
}
