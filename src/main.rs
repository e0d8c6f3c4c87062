//! `ldnote`: see README.md. Multicall: invoked as `ld`, `gcc`, ... it wraps that tool.
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use ldnote::argv;

mod cmd;
use cmd::options::NoteOpts;

#[derive(Parser)]
#[command(
    name = "ldnote",
    version,
    about = "Write the .note.nixos.ldcache resolution note at link time"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run LINKER with ARGS, then note the output it produced.
    Link {
        #[command(flatten)]
        opts: NoteOpts,
        /// The real linker or compiler driver.
        linker: OsString,
        /// Its arguments, forwarded byte for byte.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Note already-linked files in place (patchelf --build-resolution-cache compatible).
    Patch {
        #[command(flatten)]
        opts: NoteOpts,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the note of FILE as the loader reads it.
    Show {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        file: PathBuf,
    },
    /// Exit 0 when each file's note equals what would be written now.
    Check {
        #[command(flatten)]
        opts: NoteOpts,
        #[arg(required = true)]
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
    // `ldnote link -- TOOL ARGS...` without options, the shape build systems use: parsed by hand,
    // as clap would parse it (everything after `--` is positional). Building clap's command tree
    // is the largest CPU cost of a wrapped link after the process start (~0.2 ms a run).
    let rest: Vec<OsString> = args.collect();
    if let [sub, dashes, tool, tool_args @ ..] = rest.as_slice() {
        if sub == "link" && dashes == "--" {
            let code = cmd::link::link(NoteOpts::default(), tool, tool_args, None);
            cmd::trace::mark("exit");
            std::process::exit(code);
        }
    }
    let cli = Cli::parse_from(std::iter::once(argv0).chain(rest));
    let code = match cli.cmd {
        Cmd::Link { opts, linker, args } => cmd::link::link(opts, &linker, &args, None),
        Cmd::Patch { opts, files } => cmd::patch::patch(opts, &files),
        Cmd::Show { json, file } => cmd::show::show(&file, json),
        Cmd::Check { opts, files } => cmd::check::check(&files, opts),
        Cmd::Demo => cmd::demo::demo(),
        Cmd::Explain(a) => cmd::explain::explain(a),
    };
    cmd::trace::mark("exit");
    std::process::exit(code);
}
