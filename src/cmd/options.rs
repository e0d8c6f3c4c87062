//! Options shared by the noting commands, and the resolution settings derived from them.
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use clap::Args;
use ldnote::env;

/// Options of `link`, `patch` and `check`.
#[derive(Args, Clone, Debug, Default)]
pub struct NoteOpts {
    /// Root of the target filesystem used for resolution (default `/`; in link mode the link
    /// line's --sysroot and LDNOTE_SYSROOT come first; for patch and check, LDNOTE_SYSROOT is
    /// used when this is not given).
    #[arg(long, value_name = "DIR")]
    pub sysroot: Option<OsString>,
    /// A failure to note fails the command (default: warn and keep the linker's output).
    #[arg(long)]
    pub strict: bool,
    /// Trace decisions on stderr (also LDNOTE_LOG=1).
    #[arg(short, long)]
    pub verbose: bool,
    /// Target name from targets/ (default: from the object's ELF header).
    #[arg(long, value_name = "NAME")]
    pub target: Option<String>,
    /// glibc version of the target (<= 2.36: legacy hwcaps subdirectories make a directory a hint).
    #[arg(long, value_name = "X.Y")]
    pub glibc: Option<String>,
    /// Write `=` entries only under these directories (repeatable; also LDNOTE_IMMUTABLE).
    #[arg(long = "immutable-prefix", value_name = "DIR")]
    pub immutable: Vec<OsString>,
    /// Before noting, shrink the run path as `patchelf --shrink-rpath` does, in place (patch mode;
    /// replaces patchelf's pass in the Nix fixup phase).
    #[arg(long)]
    pub shrink_rpath: bool,
    /// Write no live note now: keep the reservation inert and its section hidden (`.ldcache`),
    /// and make a stale note inert, so that later tools (patchelf relayouts) see no note; a
    /// later `ldnote patch` fills the reservation (also LDNOTE_DEFER=1).
    #[arg(long)]
    pub defer: bool,
    /// Do not add a reservation object to the link (the note is then appended after the link).
    #[arg(long)]
    pub no_reserve: bool,
    /// Link mode: name the rtld-audit module in the program's DT_AUDIT (GNU ld), so a stock
    /// glibc honours the note; PATH defaults to the module installed beside ldnote (also
    /// LDNOTE_AUDIT=1 or LDNOTE_AUDIT=PATH). PATH must be absolute and writable by no one else.
    #[arg(long, value_name = "PATH", num_args = 0..=1, require_equals = true)]
    pub audit: Option<Option<OsString>>,
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
