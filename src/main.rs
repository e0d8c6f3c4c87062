//! `ldnote`: see README.md. Multicall: invoked as `ld`, `gcc`, ... it wraps that tool.
// No Rust runtime start (`main` below is the C entry point): every wrapped link pays the start.
// The unit tests of this crate keep the test harness's own `main`.
#![cfg_attr(not(test), no_main)]
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

/// The C entry point, called by the C library's start code, in place of the Rust runtime's
/// start. That start costs every wrapped link CPU on work ldnote does not need (measured:
/// 0.08-0.1 ms of ldnote's 1.2-1.3 ms on a 40-library link): it reads `/proc/self/maps` to find
/// the main thread's stack guard, maps an alternate signal stack and installs SIGSEGV/SIGBUS
/// handlers for a stack overflow message. What ldnote does need from it is
/// done here: the standard descriptors are made valid first ([`std_fds`]), SIGPIPE is ignored
/// ([`ignore_sigpipe`]), a panic still ends the process with status 101 and its message, and
/// `std::process::exit` flushes stdout. The arguments come from `std::env::args_os`, which
/// the standard library fills on glibc before `main` runs.
// `no_mangle` makes this the program's `main` symbol, the one thing it does: the name must not
// collide with another `main` (there is none: the crate has no Rust `fn main`, `#![no_main]`).
#[cfg(not(test))]
#[allow(unsafe_code)]
#[no_mangle]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    std_fds();
    ignore_sigpipe();
    match std::panic::catch_unwind(run) {
        Ok(code) => std::process::exit(code),
        // The panic hook has printed the message; 101 is the status the Rust runtime gives.
        Err(_) => std::process::exit(101),
    }
}

/// Standard input, output and error must be open before ldnote opens anything: with one closed,
/// the output being noted could be given its number and an error message written into it. As
/// the Rust runtime does, a closed one is opened on `/dev/null` (the lowest free number, so in
/// order: 0, 1, 2). One `poll` when all are open.
#[cfg_attr(test, allow(dead_code))]
fn std_fds() {
    use rustix::event::{poll, PollFd, PollFlags};
    // The descriptors themselves: `std::io::stdin()` would allocate its 8 KiB buffer here.
    let (i, o, e) = (
        rustix::stdio::stdin(),
        rustix::stdio::stdout(),
        rustix::stdio::stderr(),
    );
    let mut fds = [
        PollFd::new(&i, PollFlags::empty()),
        PollFd::new(&o, PollFlags::empty()),
        PollFd::new(&e, PollFlags::empty()),
    ];
    let zero = rustix::time::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if poll(&mut fds, Some(&zero)).is_err() {
        return;
    }
    let closed = fds
        .iter()
        .filter(|f| f.revents().contains(PollFlags::NVAL))
        .count();
    for _ in 0..closed {
        // Kept open for the life of the process, as the runtime keeps it.
        if let Ok(fd) = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDWR,
            rustix::fs::Mode::empty(),
        ) {
            std::mem::forget(fd);
        }
    }
}

/// SIGPIPE ignored, as the Rust runtime does: a write to a closed pipe (the stderr of a build
/// tool that went away, `ldnote patch --help | grep -q`) then fails with EPIPE instead of
/// killing ldnote before it reports the linker's status. The tools ldnote runs get the default
/// back: the standard library's spawn and exec reset SIGPIPE in the child.
#[cfg_attr(test, allow(dead_code))]
fn ignore_sigpipe() {
    // SAFETY: `signal` with `SIG_IGN` installs no handler (no code of ours ever runs on the
    // signal), and this runs first in `main`, before any other thread exists. There is no safe
    // interface to a signal's disposition in std or rustix.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

#[cfg_attr(test, allow(dead_code))]
fn run() -> i32 {
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
            return code;
        }
    }
    let rest: Vec<OsString> = args.collect();
    if let Some(code) = cmd::link::run_as_linker_by_own_name(&rest) {
        return code;
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
        // The process exits next: the arguments are not freed one by one.
        std::mem::forget(rest);
        cmd::trace::mark("exit");
        return code;
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
    code
}
