//! Environment variables ldnote reads, in one place. The driver reads them; the library only
//! names them.

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

#[cfg(test)]
mod tests {
    use super::flag;
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
