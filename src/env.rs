//! Environment variables ldnote reads, in one place. The driver reads them; the library only
//! names them.

/// Sysroot for resolution when the link line has no `--sysroot` (before `--sysroot` given to ldnote).
pub const SYSROOT: &str = "LDNOTE_SYSROOT";
/// `1`: trace decisions on stderr (like `-v`).
pub const LOG: &str = "LDNOTE_LOG";
/// `1`: failures to note fail the command (like `--strict`).
pub const STRICT: &str = "LDNOTE_STRICT";
/// `1`: defer the note (like `--defer`): leave the reservation inert and hidden, for a later
/// `ldnote patch` after every other edit of the file (the Nix fixup's end).
pub const DEFER: &str = "LDNOTE_DEFER";
/// `1`: pure pass-through, ldnote does nothing but run the real tool.
pub const DISABLE: &str = "LDNOTE_DISABLE";
/// `1` (the module installed beside ldnote) or an absolute path: like `ldnote link --audit`,
/// name the rtld-audit module in the program's DT_AUDIT. `0` or empty: off.
pub const AUDIT: &str = "LDNOTE_AUDIT";
/// Colon-separated immutable prefixes (e.g. the Nix store): `=` entries only below them.
pub const IMMUTABLE: &str = "LDNOTE_IMMUTABLE";
/// Target glibc version (`2.36`): decides whether legacy hwcaps subdirectories count.
pub const GLIBC: &str = "LDNOTE_GLIBC";
/// The real linker for ld-kind multicall names, when no `LDNOTE_REAL_<NAME>` is set.
pub const LINKER: &str = "LDNOTE_LINKER";
/// Prefix of per-tool overrides: `LDNOTE_REAL_GCC`, `LDNOTE_REAL_LD_LLD`, ...
pub const REAL_PREFIX: &str = "LDNOTE_REAL_";
/// Set by ldnote in the environment of the tool it runs: a nested ldnote (the driver running
/// our `ld` through `-B`) passes through instead of noting twice.
pub const ACTIVE: &str = "LDNOTE_ACTIVE";
