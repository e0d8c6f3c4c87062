//! `ldnote link -- LINKER ARGS` and the multicall entry: run the real tool, then note.
use object::Endian as _;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use ldnote::argv::{self, LinkPlan, ToolKind};
use ldnote::target::{self, Ident, Target};
use ldnote::{env, reserve};

use super::note::{say, Noter, Outcome};
use super::options::NoteOpts;
use super::Failure;

/// Exit status of a finished child as a shell reports it (128+n for a signal).
fn code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Run `tool args` with stdio inherited (the linker's output passes through untouched).
fn run(tool: &OsStr, args: &[OsString]) -> Result<i32, Failure> {
    let status = Command::new(tool)
        .args(args)
        .env(env::ACTIVE, (depth() + 1).to_string())
        .status()
        .map_err(|e| Failure(format!("cannot run `{}`: {e}", Path::new(tool).display())))?;
    Ok(code(status))
}

/// Become `tool args` when there is nothing to note afterwards (a compile, `--version`, a nested
/// ldnote): one process fewer between the build tool and the tool, and the tool's exit status and
/// signals are its own. Returns only when the tool cannot be run.
fn exec(tool: &OsStr, args: &[OsString]) -> i32 {
    use std::os::unix::process::CommandExt;
    let e = Command::new(tool)
        .args(args)
        .env(env::ACTIVE, (depth() + 1).to_string())
        .exec();
    fail(&Failure(format!(
        "cannot run `{}`: {e}",
        Path::new(tool).display()
    )))
}

/// How many ldnote processes run this one (`LDNOTE_ACTIVE` holds the count; any other
/// non-empty value counts as one).
fn depth() -> u32 {
    match std::env::var_os(env::ACTIVE) {
        Some(v) if !v.is_empty() && v != "0" => {
            v.to_str().and_then(|s| s.parse().ok()).unwrap_or(1)
        }
        _ => 0,
    }
}

/// A driver runs our `ld` (two levels); more nested ldnote runs than this can only be ldnote
/// running itself under names that do not resolve to it (a copy of another version on PATH).
const MAX_DEPTH: u32 = 8;

fn on(k: &str) -> bool {
    super::options::env_on(k)
}

/// `ldnote link`: returns the exit code.
pub fn link(opts: NoteOpts, tool: &OsStr, args: &[OsString], kind: Option<ToolKind>) -> i32 {
    let opts = opts.with_env();
    if on(env::DISABLE) || depth() > 0 {
        // A nested ldnote (our `ld` run by a driver we are already wrapping): the outer one notes.
        return exec(tool, args);
    }
    let base = Path::new(tool).file_name().unwrap_or(tool);
    let name = argv::classify_tool(base);
    let kind = kind
        .or(name.as_ref().map(|n| n.kind))
        .unwrap_or(ToolKind::Driver);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let plan = match argv::plan(kind, args, &cwd) {
        Ok(p) => p,
        Err(e) => {
            say(
                &opts,
                format!("cannot analyse the link line ({e}); running the linker without noting"),
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
        say(
            &opts,
            format!("no dynamically linked output to note ({why:?}); passing through"),
        );
        return exec(tool, args);
    }
    let targets = target::builtin().unwrap_or_default();
    let triple = name.as_ref().and_then(|n| n.triple.clone());
    let mut final_args: Vec<OsString> = args.to_vec();
    // Every linker gets the reservation: whether the note can be written in place is decided
    // from the output's layout (the PT_NOTE holding the region and its p_align), whatever the
    // linker is called (mold merges every note into one 8-aligned PT_NOTE).
    if !opts.no_reserve {
        match reservation(&plan, kind, triple.as_deref(), &targets, &opts) {
            Some(path) => {
                final_args.insert(
                    plan.flavor_prefix.min(final_args.len()),
                    path.into_os_string(),
                );
            }
            None => say(
                &opts,
                "target not certain before the link: no reservation, the note will be appended",
            ),
        }
    }
    match audit_args(&plan, tool, args, &opts) {
        Ok(extra) => final_args.extend(extra),
        Err(code) => return code,
    }
    let output = cwd.join(&plan.output);
    let before = stamp(&output);
    super::trace::mark("reserve");
    let status = match run(tool, &final_args) {
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
    let result = Noter::new(opts.clone(), &sysroot).and_then(|mut n| n.note_file(&output));
    match result {
        Ok(Outcome::Appended(why)) => say(
            &opts,
            format!("{}: noted by the fallback ({why})", output.display()),
        ),
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
        say(
            opts,
            "--audit: a shared library's DT_AUDIT is never read; not added",
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
            say(opts, format!("DT_AUDIT: {}", Path::new(&path).display()));
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
        .or_else(super::options::env_sysroot)
        .or_else(|| opts.sysroot.clone())
        .unwrap_or_else(|| OsString::from("/"))
}

/// The header an input object must have for the linker to accept it, when it can be known for
/// certain before the link; `None` otherwise (then no reservation is added: a wrong guess would
/// break a link that would have succeeded).
fn reservation_ident(
    plan: &LinkPlan,
    kind: ToolKind,
    triple: Option<&OsStr>,
    targets: &[Target],
) -> Option<Ident> {
    // 1. An ELF relocatable object among the inputs: exactly what the linker will see.
    for input in &plan.inputs {
        if let Some(id) = object_ident(Path::new(input)) {
            return Some(id);
        }
    }
    let from_target = |t: &Target| Ident {
        is_64: t.class == 64,
        big_endian: t.endian.is_big(),
        machine: t.machine,
        e_flags: t.reserve_eflags,
        osabi: 0,
    };
    let emulation = plan.emulation.as_deref().map(OsStr::to_string_lossy);
    let named = plan
        .target
        .as_deref()
        .or(triple)
        .map(OsStr::to_string_lossy);
    if emulation.is_some() || named.is_some() {
        return target::for_link(targets, emulation.as_deref(), named.as_deref()).map(from_target);
    }
    if kind == ToolKind::Linker {
        return None;
    }
    // A native driver: the host's own target, unless -m32/-m64/-mx32 switch it.
    let host = object_ident(Path::new("/proc/self/exe"))?;
    let host_t = target::for_ident(targets, &host)?;
    for f in plan.machine_flags.iter().rev() {
        match f.as_bytes() {
            b"-m32" => {
                let want = if host.machine == object::elf::EM_X86_64 {
                    object::elf::EM_386
                } else {
                    return None;
                };
                return targets
                    .iter()
                    .find(|t| t.machine == want && t.class == 32)
                    .map(from_target);
            }
            b"-m64" => return Some(from_target(host_t)),
            b"-mx32" => return None,
            _ => {}
        }
    }
    Some(from_target(host_t))
}

/// Header facts of an ELF relocatable object (or of an executable, for `/proc/self/exe`).
fn object_ident(path: &Path) -> Option<Ident> {
    let mut head = [0u8; 64];
    let mut f = std::fs::File::open(path).ok()?;
    std::io::Read::read_exact(&mut f, &mut head).ok()?;
    if head[..4] != object::elf::ELFMAG {
        return None;
    }
    let is_64 = head[4] == object::elf::ELFCLASS64;
    let be = head[5] == object::elf::ELFDATA2MSB;
    let order = ldnote::elf::byte_order(be);
    let rd16 = |o: usize| order.read_u16_bytes([head[o], head[o + 1]]);
    let rd32 = |o: usize| order.read_u32_bytes([head[o], head[o + 1], head[o + 2], head[o + 3]]);
    let e_type = rd16(16);
    if path != Path::new("/proc/self/exe") && e_type != object::elf::ET_REL {
        return None;
    }
    Some(Ident {
        is_64,
        big_endian: be,
        machine: rd16(18),
        e_flags: rd32(if is_64 { 48 } else { 36 }),
        osabi: 0,
    })
}

fn reservation(
    plan: &LinkPlan,
    kind: ToolKind,
    triple: Option<&OsStr>,
    targets: &[Target],
    opts: &NoteOpts,
) -> Option<PathBuf> {
    let id = reservation_ident(plan, kind, triple, targets)?;
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
            say(opts, format!("no reservation: {e}"));
            return None;
        }
    };
    let path = match super::cache::object_path(&bytes) {
        Ok(p) => p,
        Err(e) => {
            say(
                opts,
                format!("no reservation: no cache directory for it ({e})"),
            );
            return None;
        }
    };
    say(
        opts,
        format!("reserved {size} bytes for the note ({})", path.display()),
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
    let explicit = std::env::var_os(real_var(name))
        .or_else(|| {
            (kind == ToolKind::Linker)
                .then(|| std::env::var_os(env::LINKER))
                .flatten()
        })
        .filter(|v| !v.is_empty());
    if let Some(p) = explicit {
        let p = PathBuf::from(p);
        let p = if p.components().count() == 1 {
            which::which(&p).unwrap_or(p)
        } else {
            p
        };
        if is_me(&p) {
            return Err(Failure(format!(
                "`{}` is ldnote itself; set it to the real tool",
                p.display()
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
    match find_real(name, kind) {
        Ok(real) => link(NoteOpts::default(), real.as_os_str(), args, Some(kind)),
        Err(e) => fail(&e),
    }
}
