//! Options shared by the noting commands, and the resolution settings derived from them.
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use clap::Args;
use ldnote::env;
use ldnote::target;

/// How files are resolved: the options of every noting command (`link`, `patch`, `check`).
#[derive(Args, Clone, Debug, Default)]
pub struct ResolveArgs {
    /// Root of the target filesystem used for resolution (default `/`; in link mode the link
    /// line's --sysroot and LDNOTE_SYSROOT come first; for patch and check, LDNOTE_SYSROOT is
    /// used when this is not given). Must be an existing directory.
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<OsString>,
    /// Trace decisions on stderr (also LDNOTE_LOG=1).
    #[arg(short, long)]
    pub verbose: bool,
    /// Target name from targets/ or a GNU triple (default: from the object's ELF header).
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// glibc version of the target, `X.Y` (also LDNOTE_GLIBC; <= 2.36: legacy hwcaps
    /// subdirectories make a directory a hint). Give `check` the value the link used.
    #[arg(long, value_name = "X.Y")]
    pub glibc: Option<String>,
    /// Write `=` entries only under these directories (repeatable; also LDNOTE_IMMUTABLE).
    #[arg(long = "immutable-prefix", value_name = "DIR")]
    pub immutable: Vec<OsString>,
}

/// `ldnote link`'s own options (before LINKER).
#[derive(Args, Clone, Debug, Default)]
pub struct LinkArgs {
    #[command(flatten)]
    pub resolve: ResolveArgs,
    /// A failure to note fails the command (default: warn and keep the linker's output; also
    /// LDNOTE_STRICT=1).
    #[arg(long)]
    pub strict: bool,
    /// Write no live note now: keep the reservation inert and its section hidden (`.ldcache`)
    /// for a later `ldnote patch` (also LDNOTE_DEFER=1).
    #[arg(long)]
    pub defer: bool,
    /// Do not add a reservation object to the link (the note is then appended after the link).
    #[arg(long)]
    pub no_reserve: bool,
    /// Name the rtld-audit module in the program's DT_AUDIT (GNU ld), so a stock glibc honours
    /// the note; PATH defaults to the module installed beside ldnote (also LDNOTE_AUDIT=1 or
    /// LDNOTE_AUDIT=PATH). PATH must be absolute and writable by no one else.
    #[arg(long, value_name = "PATH", num_args = 0..=1, require_equals = true)]
    pub audit: Option<Option<OsString>>,
}

/// `ldnote patch`'s options.
#[derive(Args, Clone, Debug, Default)]
pub struct PatchArgs {
    #[command(flatten)]
    pub resolve: ResolveArgs,
    /// Before noting, shrink the run path as `patchelf --shrink-rpath` does, in place (replaces
    /// patchelf's pass in the Nix fixup phase).
    #[arg(long)]
    pub shrink_rpath: bool,
    /// Write no live note: make a stale note inert and keep a reservation hidden, so that later
    /// tools (patchelf relayouts) see no note; a later `ldnote patch` writes it (also
    /// LDNOTE_DEFER=1).
    #[arg(long)]
    pub defer: bool,
    /// Accepted so that link and patch take one option set: patch always reports a file it
    /// could not note (status 1) and never leaves a file half-written.
    #[arg(long)]
    pub strict: bool,
    /// Pass over FILEs that are not ELF (scripts, data, directories) instead of failing on
    /// them, as in `find DIR -type f | xargs ldnote patch --skip-non-elf`.
    #[arg(long)]
    pub skip_non_elf: bool,
}

/// The settings of one noting command, from its options (and, by [`NoteOpts::with_env`], the
/// environment).
#[derive(Clone, Debug, Default)]
pub struct NoteOpts {
    pub sysroot: Option<OsString>,
    pub strict: bool,
    pub verbose: bool,
    pub target: Option<String>,
    pub glibc: Option<String>,
    pub immutable: Vec<OsString>,
    pub shrink_rpath: bool,
    pub defer: bool,
    pub no_reserve: bool,
    pub audit: Option<Option<OsString>>,
}

impl From<ResolveArgs> for NoteOpts {
    fn from(r: ResolveArgs) -> Self {
        NoteOpts {
            sysroot: r.sysroot,
            verbose: r.verbose,
            target: r.target,
            glibc: r.glibc,
            immutable: r.immutable,
            ..NoteOpts::default()
        }
    }
}

impl From<LinkArgs> for NoteOpts {
    fn from(l: LinkArgs) -> Self {
        NoteOpts {
            strict: l.strict,
            defer: l.defer,
            no_reserve: l.no_reserve,
            audit: l.audit,
            ..l.resolve.into()
        }
    }
}

impl From<PatchArgs> for NoteOpts {
    fn from(p: PatchArgs) -> Self {
        NoteOpts {
            strict: p.strict,
            shrink_rpath: p.shrink_rpath,
            defer: p.defer,
            ..p.resolve.into()
        }
    }
}

/// The `LDNOTE_*` settings, read from the process environment once; a yes/no variable with
/// another value is reported (once) and taken as unset.
pub fn env() -> &'static env::Env {
    static ENV: std::sync::OnceLock<env::Env> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        let e = env::Env::read(|k| std::env::var_os(k));
        for w in &e.warnings {
            errln!("ldnote: warning: {w}; taken as unset");
        }
        e
    })
}

impl NoteOpts {
    /// The sysroot of `patch` and `check` (no link line to name one): `--sysroot`, then
    /// `LDNOTE_SYSROOT`, else the host's `/`.
    pub fn file_sysroot(&self) -> OsString {
        self.sysroot
            .clone()
            .or_else(|| env().sysroot.clone())
            .unwrap_or_else(|| OsString::from("/"))
    }

    /// Fold in the environment.
    pub fn with_env(mut self) -> Self {
        let e = env();
        self.verbose |= e.log;
        self.strict |= e.strict;
        self.defer |= e.defer;
        if self.glibc.is_none() {
            self.glibc.clone_from(&e.glibc);
        }
        self.immutable.extend(
            e.immutable
                .iter()
                .map(|p| OsStr::from_bytes(p).to_os_string()),
        );
        self
    }

    /// Values that mean nothing are errors, not silence: an unknown `--target`, a `--glibc`
    /// that is not `X.Y`, a `--sysroot` (or LDNOTE_SYSROOT) that is not a directory. Call after
    /// [`NoteOpts::with_env`].
    pub fn validate(&self) -> Result<(), String> {
        if let Some(name) = &self.target {
            let targets = target::builtin();
            if target::by_name(&targets, name).is_none() {
                let known: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
                return Err(format!(
                    "--target {name}: unknown target (known: {}, or their GNU triples)",
                    known.join(", ")
                ));
            }
        }
        if let Some(g) = &self.glibc {
            if !is_version(g) {
                return Err(format!(
                    "glibc version `{g}` (--glibc or {}) is not MAJOR.MINOR, e.g. 2.36",
                    env::GLIBC
                ));
            }
        }
        let roots = [
            ("--sysroot", self.sysroot.clone()),
            (env::SYSROOT, env().sysroot.clone()),
        ];
        for (what, root) in roots {
            if let Some(r) = root {
                if !std::path::Path::new(&r).is_dir() {
                    return Err(format!(
                        "{what} {}: not a directory",
                        std::path::Path::new(&r).display()
                    ));
                }
            }
        }
        Ok(())
    }

    /// The choices that shape a note, for the library's per-file step.
    pub fn choices(&self) -> ldnote::noter::Choices {
        ldnote::noter::Choices {
            target: self.target.clone(),
            glibc: self.glibc.clone(),
            immutable: self
                .immutable
                .iter()
                .map(|p| p.as_bytes().to_vec())
                .collect(),
        }
    }
}

/// `MAJOR.MINOR` in decimal (`2.36`), as glibc numbers its releases.
fn is_version(v: &str) -> bool {
    let mut parts = v.split('.');
    let num =
        |p: Option<&str>| p.is_some_and(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()));
    num(parts.next()) && num(parts.next()) && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in ["2.36", "2.4", "10.0"] {
            assert!(is_version(ok), "{ok}");
        }
        for bad in ["banana", "2", "2.", ".36", "2.36.1", "2.x", ""] {
            assert!(!is_version(bad), "{bad}");
        }
    }

    #[test]
    fn unknown_targets_and_versions_are_errors() {
        let with = |t: Option<&str>, g: Option<&str>| NoteOpts {
            target: t.map(str::to_string),
            glibc: g.map(str::to_string),
            ..NoteOpts::default()
        };
        assert!(with(Some("aarch64"), Some("2.36")).validate().is_ok());
        assert!(with(Some("aarch64-linux-gnu"), None).validate().is_ok());
        let e = with(Some("banana"), None).validate().expect_err("banana");
        assert!(e.contains("unknown target") && e.contains("aarch64"), "{e}");
        assert!(with(Some("arm64"), None).validate().is_err());
        assert!(with(None, Some("banana")).validate().is_err());
        let missing = NoteOpts {
            sysroot: Some("/nonexistent/sysroot".into()),
            ..NoteOpts::default()
        };
        assert!(missing
            .validate()
            .expect_err("missing sysroot")
            .contains("not a directory"));
    }
}
