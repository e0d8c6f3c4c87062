//! `ldnote link -- LINKER ARGS` and the multicall entry: run the real tool, then note.
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ldnote::argv::{self, LinkPlan, ToolKind};
use ldnote::target::{self, Ident};
use ldnote::{env, reserve};

use super::note::{Noter, Outcome};
use super::options::NoteOpts;
use super::Failure;

/// Exit status of a finished child as a shell reports it (128+n for a signal).
fn code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Mark the tools ldnote runs as run by it: `LDNOTE_ACTIVE` one above this process's depth, in
/// ldnote's own environment, which every child inherits. Setting it per command instead makes
/// the standard library copy the whole environment into a map and a new `envp` on every spawn
/// (about 230 allocations with a build's environment, measured), for one variable.
fn mark_children() {
    // `set_var` is unsound only while another thread reads the environment: ldnote starts no
    // thread, and its own settings were read from the environment before (`options::env`).
    std::env::set_var(env::ACTIVE, (depth() + 1).to_string());
}

/// Run `tool args` with stdio inherited (the linker's output passes through untouched).
fn run<'a>(tool: &OsStr, args: impl IntoIterator<Item = &'a OsString>) -> Result<i32, Failure> {
    mark_children();
    let status = Command::new(tool)
        .args(args)
        .status()
        .map_err(|e| Failure(format!("cannot run `{}`: {e}", Path::new(tool).display())))?;
    Ok(code(status))
}

/// Become `tool args` when there is nothing to note afterwards (a compile, `--version`, a nested
/// ldnote): one process fewer between the build tool and the tool, and the tool's exit status and
/// signals are its own. Returns only when the tool cannot be run.
fn exec(tool: &OsStr, args: &[OsString]) -> i32 {
    use std::os::unix::process::CommandExt;
    mark_children();
    let e = Command::new(tool).args(args).exec();
    fail(&Failure(format!(
        "cannot run `{}`: {e}",
        Path::new(tool).display()
    )))
}

/// How many ldnote processes run this one (`LDNOTE_ACTIVE`).
fn depth() -> u32 {
    super::options::env().depth
}

/// A driver runs our `ld` (two levels); more nested ldnote runs than this can only be ldnote
/// running itself under names that do not resolve to it (a copy of another version on PATH).
const MAX_DEPTH: u32 = 8;

/// `ldnote link`: returns the exit code.
pub fn link(opts: NoteOpts, tool: &OsStr, args: &[OsString], kind: Option<ToolKind>) -> i32 {
    let opts = opts.with_env();
    if super::options::env().disable || depth() > 0 {
        // A nested ldnote (our `ld` run by a driver we are already wrapping): the outer one notes.
        return exec(tool, args);
    }
    say!(opts, "real tool: {}", Path::new(tool).display());
    let base = Path::new(tool).file_name().unwrap_or(tool);
    let name = argv::classify_tool(base);
    let kind = kind
        .or(name.as_ref().map(|n| n.kind))
        .unwrap_or(ToolKind::Driver);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let plan = match argv::plan(kind, args, &cwd) {
        Ok(p) => p,
        Err(e) => {
            say!(
                opts,
                "cannot analyse the link line ({e}); running the linker without noting"
            );
            return run(tool, args).unwrap_or_else(|e| fail(&e));
        }
    };
    if plan.skip == Some(argv::SkipReason::AmbiguousOutput) {
        errln!(
            "ldnote: warning: {}; running the linker without noting",
            argv::SkipReason::AmbiguousOutput
        );
        return run(tool, args).unwrap_or_else(|e| fail(&e));
    }
    super::trace::mark("plan");
    if let Some(why) = &plan.skip {
        say!(
            opts,
            "no dynamically linked output to note ({why:?}); passing through"
        );
        return exec(tool, args);
    }
    if let Err(e) = opts.validate() {
        if opts.strict {
            errln!("ldnote: error: {e}");
            return 2;
        }
        errln!("ldnote: warning: {e}; running the linker without noting");
        return run(tool, args).unwrap_or_else(|e| fail(&e));
    }
    let triple = name.as_ref().and_then(|n| n.triple.clone());
    // The linker's line: `args` with the reservation inserted after a `-flavor` prefix and the
    // audit options appended, built as the command's arguments without copying `args`.
    let mut reserved: Option<OsString> = None;
    // Every linker gets the reservation: whether the note can be written in place is decided
    // from the output's layout (the PT_NOTE holding the region and its p_align), whatever the
    // linker is called (mold merges every note into one 8-aligned PT_NOTE).
    let ld_run_path = std::env::var_os("LD_RUN_PATH").is_some_and(|v| !v.is_empty());
    if !plan.may_have_run_path(ld_run_path) {
        say!(
            opts,
            "no run path on the link line: nothing to record, no reservation"
        );
    } else if !opts.no_reserve {
        match reservation(&plan, kind, triple.as_deref(), &opts) {
            Some(path) => {
                reserved = Some(path.into_os_string());
            }
            None => say!(
                opts,
                "target not certain before the link: no reservation, the note will be appended"
            ),
        }
    }
    let extra = match audit_args(&plan, tool, args, &opts) {
        Ok(extra) => extra,
        Err(code) => return code,
    };
    let (head, tail) = args.split_at(plan.flavor_prefix.min(args.len()));
    let line = head
        .iter()
        .chain(reserved.as_ref())
        .chain(tail)
        .chain(extra.iter());
    let output = cwd.join(&plan.output);
    let before = stamp(&output);
    super::trace::mark("reserve");
    let status = match run(tool, line) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    super::trace::mark("linker");
    if status != 0 {
        return status;
    }
    if before.is_some() && stamp(&output) == before {
        // The link succeeded but did not write this file (the line names the output in a way the
        // analysis missed, or a wrapper wrote elsewhere): a stale file is never noted.
        let msg = format!(
            "`{}` is unchanged since before the link (same inode and times): the linker did not write it",
            output.display()
        );
        if opts.strict {
            errln!("ldnote: error: {msg}");
            return 1;
        }
        errln!("ldnote: warning: {msg}; not noted");
        return status;
    }
    let sysroot = sysroot(&plan, &opts);
    let result = Noter::new(opts.clone(), &sysroot).and_then(|mut n| {
        let noted = n.note_file(&output);
        // The process ends after this one file: the resolver's listings and maps are left to
        // the exit instead of being freed one by one (measured: part of a 0.02 ms exit step).
        std::mem::forget(n);
        noted
    });
    match result {
        Ok(Outcome::Appended(why)) => {
            say!(opts, "{}: noted by the fallback ({why})", output.display())
        }
        Ok(_) => {}
        Err(e) if opts.strict => {
            errln!("ldnote: error: {e}");
            return 1;
        }
        Err(e) => errln!("ldnote: warning: {e}; the linker's output is kept without a note"),
    }
    status
}

/// `--audit` / `LDNOTE_AUDIT`: the arguments naming the audit module (none when not asked or,
/// with a linker that cannot write DT_AUDIT, a warning; `--strict` makes that an error). An
/// unsafe module path is always refused: Err(exit code), the linker is not run.
fn audit_args(
    plan: &LinkPlan,
    tool: &OsStr,
    args: &[OsString],
    opts: &NoteOpts,
) -> Result<Vec<OsString>, i32> {
    let Some(want) = super::audit::requested(opts.audit.as_ref()) else {
        return Ok(Vec::new());
    };
    if plan.shared {
        // glibc reads DT_AUDIT (and DT_DEPAUDIT) of the main program only (rtld.c).
        say!(
            opts,
            "--audit: a shared library's DT_AUDIT is never read; not added"
        );
        return Ok(Vec::new());
    }
    let path = match want {
        Some(p) => p,
        None => super::audit::installed()
            .map_err(|e| fail(&e))?
            .into_os_string(),
    };
    let root = sysroot(plan, opts);
    if let Some(why) =
        super::audit::unsafe_reason(path.as_bytes(), Path::new(&root), &opts.immutable)
    {
        errln!(
            "ldnote: error: --audit {}: refused: {why}",
            Path::new(&path).display()
        );
        return Err(1);
    }
    match super::audit::args(plan, tool, args, &path) {
        Ok(a) => {
            say!(opts, "DT_AUDIT: {}", Path::new(&path).display());
            Ok(a)
        }
        Err(e) if opts.strict => Err(fail(&e)),
        Err(e) => {
            errln!("ldnote: warning: {e}");
            Ok(Vec::new())
        }
    }
}

/// What identifies one version of a file: a linker that writes the output replaces the inode
/// (GNU ld, gold and lld unlink it first) or at least changes its modification and change times.
fn stamp(path: &Path) -> Option<(u64, u64, u64, i64, i64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    ))
}

/// Report a failure of ldnote itself; 127, as a shell reports a command it could not run.
pub(super) fn fail(e: &Failure) -> i32 {
    errln!("ldnote: error: {e}");
    127
}

/// Sysroot for resolution: the link line's `--sysroot`, then LDNOTE_SYSROOT, then `--sysroot`
/// given to ldnote, then `/`.
fn sysroot(plan: &LinkPlan, opts: &NoteOpts) -> OsString {
    plan.sysroot
        .clone()
        .or_else(|| super::options::env().sysroot.clone())
        .or_else(|| opts.sysroot.clone())
        .unwrap_or_else(|| OsString::from("/"))
}

/// The headers the link plan may read: input objects and ldnote's own executable.
struct Files;

impl argv::decide::Headers for Files {
    fn object(&mut self, path: &Path) -> Option<Ident> {
        object_ident(path)
    }
    fn host(&mut self) -> Option<Ident> {
        object_ident(Path::new("/proc/self/exe"))
    }
}

/// Header facts of an ELF relocatable object (or of an executable, for `/proc/self/exe`).
fn object_ident(path: &Path) -> Option<Ident> {
    let mut head = [0u8; 64];
    let mut f = std::fs::File::open(path).ok()?;
    std::io::Read::read_exact(&mut f, &mut head).ok()?;
    let (is_64, order) = ldnote::header::ident(&head)?;
    let h = ldnote::header::fields(&head, is_64, order)?;
    if path != Path::new("/proc/self/exe") && h.e_type != object::elf::ET_REL {
        return None;
    }
    Some(Ident {
        is_64,
        big_endian: order == object::Endianness::Big,
        machine: h.e_machine,
        e_flags: h.e_flags,
        osabi: 0,
    })
}

fn reservation(
    plan: &LinkPlan,
    kind: ToolKind,
    triple: Option<&OsStr>,
    opts: &NoteOpts,
) -> Option<PathBuf> {
    let targets = target::builtin;
    let id = argv::decide::reservation_ident(plan, kind, triple, &targets, &mut Files)?;
    let comps: Vec<&[u8]> = plan
        .rpaths
        .iter()
        .flat_map(|r| r.as_bytes().split(|b| *b == b':'))
        .collect();
    let so_inputs = plan
        .inputs
        .iter()
        .filter(|i| i.as_bytes().windows(3).any(|w| w == b".so"))
        .count();
    let size = reserve::estimate(plan.libs.len() + so_inputs, &comps);
    let bytes = match reserve::object(&id, size) {
        Ok(b) => b,
        Err(e) => {
            say!(opts, "no reservation: {e}");
            return None;
        }
    };
    let path = match super::cache::object_path(&bytes) {
        Ok(p) => p,
        Err(e) => {
            say!(opts, "no reservation: no cache directory for it ({e})");
            return None;
        }
    };
    say!(
        opts,
        "reserved {size} bytes for the note ({})",
        path.display()
    );
    Some(path)
}

/// The environment variable naming the real tool for an invoked name: `LDNOTE_REAL_LD_LLD`.
pub fn real_var(name: &OsStr) -> String {
    let up: String = name
        .to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{}{up}", env::REAL_PREFIX)
}

/// Find the real tool for a multicall name: `LDNOTE_REAL_<NAME>`, then `LDNOTE_LINKER` for
/// linkers, then the first program of that name on PATH that is not ldnote itself (so a
/// directory of ldnote symlinks early in PATH cannot make ldnote call itself).
pub fn find_real(name: &OsStr, kind: ToolKind) -> Result<PathBuf, Failure> {
    let me = std::env::current_exe().and_then(std::fs::canonicalize).ok();
    // A link, or a copy with the same bytes (two ldnote directories on PATH, each with an `ld`
    // that is a copy: by path alone each would run the other, without end).
    let is_me = |p: &Path| {
        std::fs::canonicalize(p).ok().is_some_and(|c| {
            Some(&c) == me.as_ref() || me.as_deref().is_some_and(|m| same_content(m, &c))
        })
    };
    let own = real_var(name);
    let explicit = std::env::var_os(&own)
        .filter(|v| !v.is_empty())
        .map(|v| (own.clone(), v))
        .or_else(|| {
            (kind == ToolKind::Linker)
                .then(|| super::options::env().linker.clone())
                .flatten()
                .filter(|v| !v.is_empty())
                .map(|v| (env::LINKER.to_string(), v))
        });
    if let Some((var, p)) = explicit {
        let p = PathBuf::from(p);
        let p = if p.components().count() == 1 {
            which::which(&p).unwrap_or(p)
        } else {
            p
        };
        if is_me(&p) {
            return Err(Failure(format!(
                "{var}=`{}` is ldnote itself; set {var} to the real `{}`",
                p.display(),
                name.to_string_lossy()
            )));
        }
        return Ok(p);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let path = std::env::var_os("PATH").unwrap_or_default();
    which::which_in_all(name, Some(path), cwd)
        .map_err(|e| {
            Failure(format!(
                "cannot look up `{}` on PATH: {e}",
                name.to_string_lossy()
            ))
        })?
        .find(|p| !is_me(p))
        .ok_or_else(|| {
            Failure(format!(
                "no real `{}` on PATH besides ldnote itself (set {})",
                name.to_string_lossy(),
                real_var(name)
            ))
        })
}

/// Two files with the same bytes (sizes first: comparing is rare and cheap).
fn same_content(a: &Path, b: &Path) -> bool {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).ok();
    match (size(a), size(b)) {
        (Some(x), Some(y)) if x == y => matches!(
            (std::fs::read(a), std::fs::read(b)),
            (Ok(x), Ok(y)) if x == y
        ),
        _ => false,
    }
}

/// `ldnote` run by its own name with a linker's command line (`-m64 ... -o OUT ...`, as
/// `rustc -C linker=ldnote` runs its linker): the caller meant ldnote to be the linker, but only
/// the name ldnote is run as says which tool to wrap (a driver or a linker, and which one), so
/// nothing is run. A linker's line: a first argument that is an option but none of ldnote's, and
/// an output option (`-o`, `-oOUT`, `--output`) somewhere; anything else is left to clap (a
/// mistyped ldnote option stays a usage error). Returns the exit status (2, a usage error) after
/// saying what to do.
pub fn run_as_linker_by_own_name(args: &[OsString]) -> Option<i32> {
    let first = args.first()?.as_bytes();
    let own = [&b"-h"[..], b"--help", b"-V", b"--version"];
    if !first.starts_with(b"-") || own.contains(&first) {
        return None;
    }
    let output = |a: &&OsString| {
        let a = a.as_bytes();
        a.starts_with(b"-o") || a.starts_with(b"--output")
    };
    if !args.iter().any(|a| output(&a)) {
        return None;
    }
    errln!(
        "ldnote: error: run as `ldnote` with a linker's arguments (`{}` ...): ldnote wraps the \
         tool it is named after, and `ldnote` names none. Run it through a symlink to ldnote \
         named like the tool (`cc`, `gcc`, `clang`, `ld`, `ld.lld`, optionally \
         `<triple>-`prefixed; for rustc `-C linker=DIR/cc`), or as `ldnote link -- cc ARGS...`",
        Path::new(args[0].as_os_str()).display()
    );
    Some(2)
}

/// Invoked through a symlink named like a tool.
pub fn multicall(name: &OsStr, kind: ToolKind, args: &[OsString]) -> i32 {
    if depth() >= MAX_DEPTH {
        errln!(
            "ldnote: error: `{}` ran ldnote again {} times in a row: another copy of ldnote is on \
             PATH under this name; set {} to the real tool",
            name.to_string_lossy(),
            depth(),
            real_var(name)
        );
        return 127;
    }
    let opts = NoteOpts::default().with_env();
    // A `<triple>-ld` name already names the target's linker.
    let unprefixed = argv::classify_tool(name).is_some_and(|n| n.triple.is_none());
    let cross = (kind == ToolKind::Linker && unprefixed && !explicit_real(name))
        .then(|| cross_linker(name, args, &opts))
        .flatten();
    match cross.map_or_else(|| find_real(name, kind), Ok) {
        // `link` names the real tool chosen (`-v`, LDNOTE_LOG).
        Ok(real) => link(opts, real.as_os_str(), args, Some(kind)),
        Err(e) => fail(&e),
    }
}

/// Whether the real tool for `name` is named by the environment (`LDNOTE_REAL_<NAME>`, or
/// `LDNOTE_LINKER` for a linker): then that is what runs, cross or not.
fn explicit_real(name: &OsStr) -> bool {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    set(&real_var(name)) || set(env::LINKER)
}

/// The target's own linker for a cross link run under an unprefixed linker name. A cross gcc's
/// collect2 runs the plain `ld` of a `-B` directory, where `ld` on PATH is the host's linker,
/// which rejects the target's emulation (`unrecognised emulation mode: aarch64linux`). When the
/// line's `-m` emulation belongs to a target this host does not run natively, the first
/// `<triple>-<name>` on PATH for the target's triples is the real linker; with none, a warning
/// names the variable to set and the plain name runs (its error then passes through).
fn cross_linker(name: &OsStr, args: &[OsString], opts: &NoteOpts) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    let plan = argv::plan(ToolKind::Linker, args, &cwd).ok()?;
    let emulation = plan.emulation.as_deref()?.to_string_lossy().into_owned();
    let targets = target::builtin();
    let t = target::for_link(&targets, Some(&emulation), None)?;
    if t.runs_on.iter().any(|a| a == std::env::consts::ARCH) {
        return None;
    }
    let found = t.triples.iter().find_map(|triple| {
        let mut prefixed = OsString::from(triple);
        prefixed.push("-");
        prefixed.push(name);
        find_real(&prefixed, ToolKind::Linker).ok()
    });
    if found.is_none() {
        errln!(
            "ldnote: warning: `{}` links for {} (-m{emulation}) but no {}-{} is on PATH; \
             running the host's; set {} to the target's linker",
            name.to_string_lossy(),
            t.name,
            t.triples.first().map_or("<triple>", String::as_str),
            name.to_string_lossy(),
            real_var(name)
        );
    } else {
        say!(
            opts,
            "-m{emulation} is {}: the target's linker, not the host's",
            t.name
        );
    }
    found
}
