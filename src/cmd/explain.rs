//! `ldnote explain`: predict what glibc's loader does when it starts FILE — which file each
//! DT_NEEDED resolves to and why, and every `openat`/`newfstatat` of the search — for the
//! stock loader and for the note-aware one. The library does the simulation; this file finds
//! the loader's facts (by running the target loader, natively or under qemu-user), prints
//! the tree or the JSON (docs/explain-json.md).
use ldnote::bytes::lossy;
use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, ValueEnum};
use ldnote::elf;
use ldnote::explain::{
    self, facts, Counts, HostProbe, Input, LoaderFacts, MapKind, NoteState, Outcome, Run,
};
use ldnote::fs::RealFs;
use ldnote::target;

use super::Failure;

/// Which loader the tree shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LoaderKind {
    /// Stock glibc 2.36.
    Stock,
    /// The note-aware loader (see --dialect).
    Note,
    /// The stock loader with the rtld-audit module (audit/); shown and counted as the
    /// note run (JSON `note`).
    Audit,
}

/// `--dialect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NoteDialectArg {
    /// This project's loader patch.
    Ldnote,
    /// nixpkgs' ldcache.patch.
    Nixpkgs,
}

/// Options of `explain`.
#[derive(Args, Clone, Debug)]
pub struct ExplainArgs {
    /// Root of the target filesystem (default: LDNOTE_SYSROOT, else `/`).
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<PathBuf>,
    /// Treat --sysroot as `qemu-user -L` does: absolute paths missing there fall through to the host.
    #[arg(long)]
    pub qemu: bool,
    /// Target name from targets/ (fallback facts when the loader cannot be run).
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// Process environment: LD_LIBRARY_PATH=...; LD_HWCAP_MASK and GLIBC_TUNABLES are passed
    /// to the loader whose diagnostics are read (repeatable).
    #[arg(long = "env", value_name = "VAR=VALUE")]
    pub env: Vec<OsString>,
    /// The loader whose tree is shown (both are counted).
    #[arg(long, value_enum, default_value = "stock")]
    pub loader: LoaderKind,
    /// Which note-aware loader: this project's patch (ldnote) or nixpkgs' ldcache.patch.
    #[arg(long, value_enum, default_value = "ldnote")]
    pub dialect: NoteDialectArg,
    /// The process's current directory, for relative run-path elements (default: ldnote's own).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// In the note-aware run, give each object without a note the note `ldnote patch` would
    /// write now (same resolution rules and options), to preview its effect.
    #[arg(long)]
    pub plan: bool,
    /// Do not run the target loader; take the facts from targets/ data.
    #[arg(long)]
    pub no_run_loader: bool,
    /// Also print every predicted system call.
    #[arg(long)]
    pub trace: bool,
    /// Machine-readable output (docs/explain-json.md).
    #[arg(long)]
    pub json: bool,
    /// The executable (or shared library) whose loading is predicted.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

/// Entry point: 0 when the program would start, 1 when loading would fail, 2 on bad input.
pub fn explain(a: ExplainArgs) -> i32 {
    match run(&a) {
        Ok(code) => code,
        Err(e) => {
            errln!("ldnote explain: {e}");
            2
        }
    }
}

/// The target root: `--sysroot`, then `LDNOTE_SYSROOT` (as for `patch` and `check`), else `/`.
fn root_of(a: &ExplainArgs) -> PathBuf {
    a.sysroot
        .clone()
        .or_else(|| super::options::env().sysroot.clone().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// qemu-user program for a machine, when it is not the host's.
/// With `--qemu` the loader always runs under qemu-user (its emulated CPU sets the hwcaps and
/// platform the program will see); otherwise natively when the host can run it.
fn qemu_for(target: Option<&target::Target>, force: bool) -> Option<String> {
    let Some(t) = target else {
        // No target file describes the object: run its loader as it is (with `--qemu`, the
        // missing program makes the run fail and target data is used instead).
        return force.then(|| "qemu-unknown".into());
    };
    if !force && t.runs_on.iter().any(|a| a == std::env::consts::ARCH) {
        return None;
    }
    Some(if t.qemu.is_empty() {
        "qemu-unknown".into()
    } else {
        t.qemu.clone()
    })
}

/// Run the target loader with `arg`, natively or under qemu-user.
fn run_loader(
    loader: &Path,
    root: &Path,
    qemu: Option<&str>,
    env: &[(OsString, OsString)],
    arg: &str,
) -> Option<String> {
    let mut cmd = match qemu {
        None => {
            let mut c = Command::new(loader);
            c.env_clear();
            for (k, v) in env {
                c.env(k, v);
            }
            c
        }
        Some(q) => {
            let mut c = Command::new(q);
            c.arg("-L").arg(root);
            for (k, v) in env {
                let mut kv = k.clone();
                kv.push("=");
                kv.push(v);
                c.arg("-E").arg(kv);
            }
            c.arg(loader);
            c
        }
    };
    let out = cmd.arg(arg).output().ok()?;
    // Success is judged by the parse: some loaders die part-way through the diagnostics.
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (!text.is_empty()).then_some(text)
}

fn get_facts(
    a: &ExplainArgs,
    id: &target::Ident,
    interp: Option<&[u8]>,
    env: &[(OsString, OsString)],
) -> Result<LoaderFacts, Failure> {
    let root = root_of(a);
    let targets = target::builtin();
    let tdata = match &a.target {
        Some(n) => Some(
            target::by_name(&targets, n).ok_or_else(|| Failure(format!("unknown target `{n}`")))?,
        ),
        None => target::for_ident(&targets, id),
    };
    if !a.no_run_loader {
        if let Some(interp) = interp.or(tdata.map(|t| t.dynamic_loader.as_bytes())) {
            let qemu = qemu_for(tdata, a.qemu);
            let qemu = qemu.as_deref();
            // The sysroot's loader is run by its host path, natively or under qemu-user.
            let mut p = root.as_os_str().as_bytes().to_vec();
            while p.ends_with(b"/") {
                p.pop();
            }
            p.extend_from_slice(interp);
            let mut host_path = PathBuf::from(OsString::from_vec(p));
            // qemu-user's view: a path missing under the sysroot is the host's.
            if a.qemu && !host_path.exists() {
                host_path = PathBuf::from(OsString::from_vec(interp.to_vec()));
            }
            let pass: Vec<_> = env
                .iter()
                .filter(|(k, _)| k == "LD_HWCAP_MASK" || k == "GLIBC_TUNABLES")
                .cloned()
                .collect();
            let diag = run_loader(&host_path, &root, qemu, &pass, "--list-diagnostics");
            let help = run_loader(&host_path, &root, qemu, &pass, "--help");
            let version =
                run_loader(&host_path, &root, qemu, &pass, "--version").unwrap_or_default();
            if let (Some(d), Some(h)) = (diag, help) {
                let how = match qemu {
                    Some(q) => format!(
                        "{q} -L {} {} --list-diagnostics",
                        root.display(),
                        host_path.display()
                    ),
                    None => format!("{} --list-diagnostics", host_path.display()),
                };
                return LoaderFacts::from_diagnostics(&d, &h, &version, interp, &how)
                    .map_err(|e| Failure(e.to_string()));
            }
        }
    }
    tdata.map(LoaderFacts::from_target).ok_or_else(|| {
        Failure(
            "cannot run the target loader and no targets/ data describes this file; pass --target"
                .into(),
        )
    })
}

fn run(a: &ExplainArgs) -> Result<i32, Failure> {
    // A FIFO or device is refused before anything is read (it would block or never end).
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut super::show::open_regular(&a.file)?, &mut data)
        .map_err(|e| Failure(format!("`{}`: {e}", a.file.display())))?;
    let info = elf::read(&data[..]).map_err(|e| Failure(format!("`{}`: {e}", a.file.display())))?;
    let mut env = Vec::new();
    for kv in &a.env {
        let b = kv.as_bytes();
        let Some(eq) = b.iter().position(|c| *c == b'=') else {
            return Err(Failure(format!(
                "--env `{}`: expected VAR=VALUE",
                kv.to_string_lossy()
            )));
        };
        env.push((
            OsString::from_vec(b[..eq].to_vec()),
            OsString::from_vec(b[eq + 1..].to_vec()),
        ));
    }
    let facts = get_facts(a, &info.ident, info.interp.as_deref(), &env)?;
    let targets = target::builtin();
    let tdata = target::for_ident(&targets, &info.ident);
    let cache_flags = facts::cache_flags(info.ident.machine, info.ident.is_64, info.ident.e_flags)
        .ok_or_else(|| {
            Failure(format!(
                "no ld.so.cache flags known for e_machine {}",
                info.ident.machine
            ))
        })?;
    let cwd = match &a.cwd {
        Some(c) => c.clone(),
        None => std::env::current_dir().map_err(|e| Failure(format!("current directory: {e}")))?,
    };
    let root = root_of(a);
    let rootb = root.as_os_str().as_bytes();
    let native = rootb.iter().all(|c| *c == b'/');
    // $ORIGIN of the executable: the directory of /proc/self/exe (symlinks resolved); in a
    // plain sysroot, the target view of it.
    let canon = std::fs::canonicalize(&a.file)
        .map_err(|e| Failure(format!("`{}`: {e}", a.file.display())))?;
    let mut origin = canon
        .parent()
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .unwrap_or_default();
    if !native && !a.qemu {
        let r = std::fs::canonicalize(&root).map_err(|e| Failure(format!("--sysroot: {e}")))?;
        if let Some(rest) = origin.strip_prefix(r.as_os_str().as_bytes()) {
            origin = if rest.is_empty() {
                b"/".to_vec()
            } else {
                rest.to_vec()
            };
        }
    }
    let llp = env
        .iter()
        .rev()
        .find(|(k, _)| k == "LD_LIBRARY_PATH")
        .map(|(_, v)| v.as_bytes().to_vec());
    // The planner resolves like `ldnote patch --sysroot ROOT --target T` would.
    let choices = super::options::NoteOpts {
        sysroot: Some(root.clone().into_os_string()),
        target: a.target.clone(),
        ..Default::default()
    }
    .with_env()
    .choices();
    let noter = std::cell::RefCell::new(ldnote::noter::Noter::new(
        choices,
        targets.clone(),
        ldnote::fs::RealFs::new(root.as_os_str()),
    ));
    let planner = |data: &[u8], _name: &[u8]| -> Option<Vec<u8>> {
        noter.borrow_mut().plan(data).ok()?.desired
    };
    let mk = |use_notes| Input {
        plan: a.plan.then_some(&planner as explain::Planner),
        facts: &facts,
        ident: info.ident,
        target: tdata,
        cache_flags: cache_flags.clone(),
        ld_library_path: llp.clone(),
        cwd: cwd.as_os_str().as_bytes().to_vec(),
        use_notes,
        dialect: match a.dialect {
            _ if a.loader == LoaderKind::Audit => explain::NoteDialect::Audit,
            NoteDialectArg::Ldnote => explain::NoteDialect::Ldnote,
            NoteDialectArg::Nixpkgs => explain::NoteDialect::Nixpkgs,
        },
    };
    let simulate = |inp: &Input| -> Result<Run, Failure> {
        let r = if native || a.qemu {
            let p = HostProbe::new((!native).then_some(rootb), cwd.as_os_str().as_bytes());
            explain::simulate(&p, inp, &data, &origin)
        } else {
            let p =
                explain::FsProbe::new(RealFs::new(root.as_os_str()), cwd.as_os_str().as_bytes());
            explain::simulate(&p, inp, &data, &origin)
        };
        r.map_err(|e| Failure(format!("`{}`: {e}", a.file.display())))
    };
    let stock = simulate(&mk(false))?;
    let note = simulate(&mk(true))?;
    let shown = if a.loader != LoaderKind::Stock {
        &note
    } else {
        &stock
    };
    let name = a.file.display().to_string();
    let mut out = std::io::stdout().lock();
    let text = if a.json {
        explain::json::render(&name, &facts, a.loader != LoaderKind::Stock, &stock, &note)
    } else {
        render_text(&name, &facts, a, shown, &stock, &note)
    };
    let _ = out.write_all(text.as_bytes());
    Ok(i32::from(shown.error.is_some()))
}

fn fmt_counts(c: &Counts) -> String {
    format!(
        "openat {}+{}✗, stat {}+{}✗",
        c.openat_ok, c.openat_fail, c.stat_ok, c.stat_fail
    )
}

fn render_text(
    name: &str,
    f: &LoaderFacts,
    a: &ExplainArgs,
    shown: &Run,
    stock: &Run,
    note: &Run,
) -> String {
    let mut s = String::new();
    let caps = f.capstrs();
    s.push_str(&format!(
        "loader facts: {} (glibc {}.{}, {} capstrs per directory)\n\n",
        f.source,
        f.version.0,
        f.version.1,
        caps.len()
    ));
    let main = &shown.maps[0];
    let mut head = name.to_string();
    if let Some(r) = &main.runpath {
        head.push_str(&format!(" [RUNPATH {}]", lossy(r)));
    }
    if let Some(r) = &main.rpath {
        head.push_str(&format!(" [RPATH {}]", lossy(r)));
    }
    s.push_str(&head);
    s.push('\n');
    tree(shown, 0, "", &mut s);
    if let Some(e) = &shown.error {
        s.push_str(&format!("\nerror while loading shared libraries: {e}\n"));
    }
    s.push_str("\nper object (the searches of its DT_NEEDED; ✗ = failed calls):\n");
    let per = |run: &Run, path: &[u8]| -> Option<Counts> {
        let i = run.maps.iter().position(|m| m.name == path)?;
        let mut c = Counts::default();
        for srch in run.searches.iter().filter(|x| x.requester == i) {
            c.add(&run.search_counts(srch));
        }
        Some(c)
    };
    for m in shown.maps.iter().filter(|m| !m.needed.is_empty()) {
        let n = if m.kind == MapKind::Main {
            name.to_string()
        } else {
            lossy(&m.name)
        };
        let noted = match &m.note {
            NoteState::None => "",
            NoteState::Ok(_) => " [noted]",
            NoteState::Bad(_) => " [note ignored]",
            NoteState::Planned(_) => " [planned note]",
        };
        let show =
            |c: Option<Counts>| c.map_or_else(|| "not loaded".to_string(), |c| fmt_counts(&c));
        s.push_str(&format!(
            "  {n}{noted}\n      stock: {}\n      note:  {}\n",
            show(per(stock, &m.name)),
            show(per(note, &m.name))
        ));
    }
    s.push_str("\ntotals:\n");
    s.push_str(&format!(
        "  stock loader:      {}\n",
        fmt_counts(&stock.counts())
    ));
    s.push_str(&format!(
        "  note-aware loader: {}\n",
        fmt_counts(&note.counts())
    ));
    if a.trace {
        s.push_str("\ntrace:\n");
        for e in &shown.trace {
            let call = match e.call {
                Some(c) => format!("{c:?}").to_lowercase(),
                None => "(trying only)".into(),
            };
            let res = match e.errno {
                Some(n) => format!("= -1 ({})", std::io::Error::from_raw_os_error(n)),
                None => "= ok".into(),
            };
            s.push_str(&format!(
                "  {call} {:?} {res}  [{}]\n",
                lossy(&e.path),
                e.stage.label()
            ));
        }
    }
    s
}

fn tree(run: &Run, map: usize, prefix: &str, s: &mut String) {
    let kids: Vec<_> = run.searches.iter().filter(|x| x.requester == map).collect();
    for (k, srch) in kids.iter().enumerate() {
        let last = k + 1 == kids.len();
        let (branch, cont) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let target = match &srch.outcome {
            Outcome::Loaded { map, .. }
            | Outcome::AlreadyLoaded { map }
            | Outcome::SameFile { map, .. } => {
                format!(" => {}", run.display_name(*map))
            }
            Outcome::Failed(_) => " => not found".into(),
        };
        let c = run.search_counts(srch);
        s.push_str(&format!(
            "{prefix}{branch}{}{target}  ({})  {}\n",
            lossy(&srch.name),
            run.why(&srch.outcome),
            fmt_counts(&c)
        ));
        if let Outcome::Loaded { map: child, .. } = srch.outcome {
            tree(run, child, &format!("{prefix}{cont}"), s);
        }
    }
}
