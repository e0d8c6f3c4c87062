//! Environment variables ldnote reads, in one place: their names and [`Env`], the values read
//! once. The driver hands in the process environment ([`Env::read`]); the library only parses.

use std::ffi::OsString;

/// Sysroot for resolution when the link line has no `--sysroot` (before `--sysroot` given to ldnote).
pub const SYSROOT: &str = "LDNOTE_SYSROOT";
/// Yes/no variables ([`flag`]): `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`.
///
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

/// A yes/no variable: unset or empty is off; `1`, `true`, `yes`, `on` are on and `0`, `false`,
/// `no`, `off` off (any case). Anything else is an error to report (the caller then keeps the
/// default): `LDNOTE_STRICT=no` must not switch strict mode on.
pub fn flag(value: Option<&std::ffi::OsStr>) -> Result<bool, String> {
    let Some(v) = value else {
        return Ok(false);
    };
    let v = v.to_string_lossy().trim().to_ascii_lowercase();
    match v.as_str() {
        "" | "0" | "false" | "no" | "off" | "n" => Ok(false),
        "1" | "true" | "yes" | "on" | "y" => Ok(true),
        _ => Err(format!(
            "`{v}` is not a yes/no value (1/0, true/false, yes/no, on/off)"
        )),
    }
}

/// The `LDNOTE_*` settings of one process (the per-tool `LDNOTE_REAL_<NAME>` overrides are
/// looked up by name when a tool is run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Env {
    /// [`LOG`].
    pub log: bool,
    /// [`STRICT`].
    pub strict: bool,
    /// [`DEFER`].
    pub defer: bool,
    /// [`DISABLE`].
    pub disable: bool,
    /// [`SYSROOT`], when set and not empty.
    pub sysroot: Option<OsString>,
    /// [`GLIBC`], when set and valid UTF-8.
    pub glibc: Option<String>,
    /// [`IMMUTABLE`], split on `:`, empty parts dropped.
    pub immutable: Vec<Vec<u8>>,
    /// [`AUDIT`]: `None` off (unset, empty or `0`), `Some(None)` the installed module (`1`),
    /// `Some(Some(path))` that module.
    pub audit: Option<Option<OsString>>,
    /// [`LINKER`], when set and not empty.
    pub linker: Option<OsString>,
    /// How many ldnote processes run this one ([`ACTIVE`] holds the count; any other non-empty
    /// value but `0` counts as one).
    pub depth: u32,
    /// Yes/no variables with a value that is neither, as `NAME=why`: taken as unset and
    /// reported by the driver.
    pub warnings: Vec<String>,
}

impl Env {
    /// Read every variable through `get` (the process environment, or a table in tests).
    pub fn read(get: impl Fn(&str) -> Option<OsString>) -> Env {
        use std::os::unix::ffi::OsStrExt;
        let mut warnings = Vec::new();
        let mut on = |k: &str| {
            flag(get(k).as_deref()).unwrap_or_else(|e| {
                warnings.push(format!("{k}={e}"));
                false
            })
        };
        let (log, strict, defer, disable) = (on(LOG), on(STRICT), on(DEFER), on(DISABLE));
        let audit = get(AUDIT).and_then(|v| match v.as_bytes() {
            b"" | b"0" => None,
            b"1" => Some(None),
            _ => Some(Some(v)),
        });
        let depth = match get(ACTIVE) {
            Some(v) if !v.is_empty() && v != "0" => {
                v.to_str().and_then(|s| s.parse().ok()).unwrap_or(1)
            }
            _ => 0,
        };
        Env {
            log,
            strict,
            defer,
            disable,
            sysroot: get(SYSROOT).filter(|v| !v.is_empty()),
            glibc: get(GLIBC).and_then(|v| v.into_string().ok()),
            immutable: get(IMMUTABLE)
                .map(|v| {
                    v.as_bytes()
                        .split(|b| *b == b':')
                        .filter(|p| !p.is_empty())
                        .map(<[u8]>::to_vec)
                        .collect()
                })
                .unwrap_or_default(),
            audit,
            linker: get(LINKER).filter(|v| !v.is_empty()),
            depth,
            warnings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_read_of_every_variable() {
        let vars = [
            (LOG, "1"),
            (STRICT, "maybe"),
            (IMMUTABLE, "/nix/store::/opt"),
            (AUDIT, "1"),
            (ACTIVE, "3"),
            (SYSROOT, ""),
        ];
        let e = Env::read(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        });
        assert!(e.log && !e.strict && !e.defer);
        assert_eq!(e.warnings.len(), 1, "{:?}", e.warnings);
        assert!(e.warnings[0].starts_with("LDNOTE_STRICT="));
        assert_eq!(e.immutable, vec![b"/nix/store".to_vec(), b"/opt".to_vec()]);
        assert_eq!(e.audit, Some(None));
        assert_eq!(e.depth, 3);
        assert_eq!(e.sysroot, None);
        let e = Env::read(|k| (k == ACTIVE).then(|| OsString::from("yes")));
        assert_eq!(e.depth, 1);
    }

    use std::ffi::OsStr;

    #[test]
    fn yes_and_no_words() {
        for v in ["1", "true", "YES", "on", " y "] {
            assert_eq!(flag(Some(OsStr::new(v))), Ok(true), "{v}");
        }
        for v in ["", "0", "false", "No", "OFF", "n"] {
            assert_eq!(flag(Some(OsStr::new(v))), Ok(false), "{v}");
        }
        assert_eq!(flag(None), Ok(false));
        assert!(flag(Some(OsStr::new("maybe"))).is_err());
        assert!(flag(Some(OsStr::new("2"))).is_err());
    }
}
