//! What the target loader searches with: the capability-string list (glibc `capstr`, built
//! once by `_dl_important_hwcaps` in elf/dl-hwcaps.c), the system directories, `$LIB`,
//! `$PLATFORM`, and the version-dependent quirks.
//!
//! Best source: the target loader itself (`ld.so --list-diagnostics` and `ld.so --help`, run
//! natively or under qemu-user), because the active glibc-hwcaps subdirectories, the legacy
//! hwcap bits and the platform depend on the CPU. Fallback: `targets/*.toml` data.

use crate::bytes::lossy;
use crate::target::Target;

/// The loader's search facts.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LoaderFacts {
    /// Where these facts came from (for the report).
    pub source: String,
    /// glibc version (major, minor).
    pub version: (u32, u32),
    /// `$PLATFORM` (AT_PLATFORM, or the x86 override); `None` when the loader has none.
    #[serde(serialize_with = "ser_opt")]
    pub platform: Option<Vec<u8>>,
    /// `$LIB`.
    #[serde(serialize_with = "ser_bytes")]
    pub lib: Vec<u8>,
    /// Active glibc-hwcaps subdirectory names, highest priority first.
    #[serde(serialize_with = "ser_list")]
    pub hwcaps_active: Vec<Vec<u8>>,
    /// Legacy hwcap names that are searched (`dl_hwcap & hwcap_mask`), highest bit first.
    #[serde(serialize_with = "ser_list")]
    pub legacy_hwcaps: Vec<Vec<u8>>,
    /// System search directories, each with one trailing `/`.
    #[serde(serialize_with = "ser_list")]
    pub system_dirs: Vec<Vec<u8>>,
    /// `path.sysconfdir` (the cache is `sysconfdir/ld.so.cache`).
    #[serde(serialize_with = "ser_bytes")]
    pub sysconfdir: Vec<u8>,
    /// The loader's own path (PT_INTERP).
    #[serde(serialize_with = "ser_bytes")]
    pub rtld: Vec<u8>,
}

fn ser_bytes<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&lossy(b))
}
fn ser_opt<S: serde::Serializer>(b: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match b {
        Some(b) => s.serialize_some(&lossy(b)),
        None => s.serialize_none(),
    }
}
fn ser_list<S: serde::Serializer>(b: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(b.iter().map(|x| lossy(x)))
}

/// Why the loader's diagnostics could not be used.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    /// A key the simulation needs is missing.
    #[error("`ld.so --list-diagnostics` output lacks `{0}`")]
    Missing(&'static str),
    /// A value does not parse.
    #[error("`ld.so --list-diagnostics`: bad value for `{0}`")]
    Bad(&'static str),
}

/// Undo the quoting of `--list-diagnostics` strings (elf/dl-diagnostics.c `print_quoted_char`:
/// `\\`, `\"` and three-digit octal escapes).
fn unquote(v: &str) -> Option<Vec<u8>> {
    let v = v.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && i + 1 < v.len() {
            if v[i + 1].is_ascii_digit() && i + 4 <= v.len() {
                let oct = std::str::from_utf8(&v[i + 1..i + 4]).ok()?;
                out.push(u8::from_str_radix(oct, 8).ok()?);
                i += 4;
            } else {
                out.push(v[i + 1]);
                i += 2;
            }
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
    Some(out)
}

fn parse_num(v: &str) -> Option<u64> {
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

fn parse_version(v: &str) -> (u32, u32) {
    let mut it = v.split('.').map(|x| {
        x.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .unwrap_or(0)
    });
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

impl LoaderFacts {
    /// Parse `ld.so --list-diagnostics` (2.33+) and, for the legacy hwcap names (the
    /// diagnostics print only the bit mask), the "Legacy HWCAP subdirectories" section of
    /// `ld.so --help` (elf/dl-usage.c prints them highest bit first, marking the searched ones).
    ///
    /// Some loaders stop part-way (Debian's armhf 2.36 asserts in `_dl_debug_vdprintf` right
    /// after `dl_profile_output`); what is missing is then taken from `--help` (system dirs),
    /// `--version` text `version` (the version), PT_INTERP `interp` and `/etc`.
    pub fn from_diagnostics(
        diag: &str,
        help: &str,
        version: &str,
        interp: &[u8],
        source: &str,
    ) -> Result<Self, FactsError> {
        let mut kv: Vec<(&str, &str)> = Vec::new();
        for line in diag.lines() {
            if let Some((k, v)) = line.split_once('=') {
                kv.push((k, v));
            }
        }
        let get = |k: &'static str| kv.iter().find(|(kk, _)| *kk == k).map(|(_, v)| *v);
        let text = |k: &'static str| -> Result<Vec<u8>, FactsError> {
            unquote(get(k).ok_or(FactsError::Missing(k))?).ok_or(FactsError::Bad(k))
        };
        let mut source = source.to_string();
        let mut partial = Vec::new();
        let version = match text("version.version") {
            Ok(v) => parse_version(&String::from_utf8_lossy(&v)),
            Err(_) => {
                partial.push("version from --version");
                // "ld.so (Debian GLIBC 2.36-9+deb12u4) stable release version 2.36."
                let v = version
                    .lines()
                    .next()
                    .and_then(|l| l.rsplit("version ").next())
                    .ok_or(FactsError::Missing("version.version"))?;
                parse_version(v.trim_end_matches('.'))
            }
        };
        if version == (0, 0) {
            return Err(FactsError::Missing("version.version"));
        }
        // `dl_platform` is printed as `0x0` when NULL.
        let platform = match get("dl_platform") {
            Some(v) if v.starts_with('"') => {
                Some(unquote(v).ok_or(FactsError::Bad("dl_platform"))?)
            }
            _ => None,
        };
        let subdirs = text("dl_hwcaps_subdirs")?;
        let active = get("dl_hwcaps_subdirs_active")
            .and_then(parse_num)
            .ok_or(FactsError::Missing("dl_hwcaps_subdirs_active"))?;
        // Bit i of the mask is the i-th name (_dl_hwcaps_subdirs_build_bitmask).
        let hwcaps_active = if subdirs.is_empty() {
            Vec::new()
        } else {
            subdirs
                .split(|b| *b == b':')
                .enumerate()
                .filter(|(i, _)| *i < 64 && active & (1 << i) != 0)
                .map(|(_, n)| n.to_vec())
                .collect()
        };
        let mut system_dirs = Vec::new();
        for i in 0.. {
            let key = format!("path.system_dirs[0x{i:x}]");
            match kv.iter().find(|(k, _)| *k == key) {
                Some((_, v)) => {
                    system_dirs.push(unquote(v).ok_or(FactsError::Bad("path.system_dirs"))?)
                }
                None => break,
            }
        }
        if system_dirs.is_empty() {
            partial.push("system dirs from --help");
            system_dirs = system_dirs_from_help(help);
        }
        if system_dirs.is_empty() {
            return Err(FactsError::Missing("path.system_dirs"));
        }
        let sysconfdir = text("path.sysconfdir").unwrap_or_else(|_| {
            partial.push("sysconfdir /etc assumed");
            b"/etc".to_vec()
        });
        let rtld = text("path.rtld").unwrap_or_else(|_| interp.to_vec());
        if !partial.is_empty() {
            source = format!("{source} (partial output; {})", partial.join(", "));
        }
        Ok(LoaderFacts {
            source,
            version,
            platform,
            lib: text("dl_dst_lib")?,
            hwcaps_active,
            legacy_hwcaps: legacy_from_help(help),
            system_dirs,
            sysconfdir,
            rtld,
        })
    }

    /// Facts from target data alone: every listed glibc-hwcaps name is assumed active, and no
    /// legacy hwcap bit is assumed (only `tls` and the platform), since the CPU is unknown.
    pub fn from_target(t: &Target) -> Self {
        let bytes = |s: &str| s.as_bytes().to_vec();
        LoaderFacts {
            source: format!("targets/{}.toml", t.name),
            version: parse_version(&t.glibc),
            platform: (!t.platform.is_empty()).then(|| bytes(&t.platform)),
            lib: bytes(&t.lib),
            hwcaps_active: t.glibc_hwcaps.iter().map(|s| bytes(s)).collect(),
            legacy_hwcaps: Vec::new(),
            system_dirs: t
                .default_dirs
                .iter()
                .map(|d| {
                    let mut v = bytes(d.trim_end_matches('/'));
                    v.push(b'/');
                    v
                })
                .collect(),
            sysconfdir: b"/etc".to_vec(),
            rtld: bytes(&t.dynamic_loader),
        }
    }

    /// The capstr list in search order. glibc-hwcaps entries come first; on glibc <= 2.36 the
    /// legacy power set of {tls, platform, hwcap names} follows as a binary count down, each
    /// path spelled tls, platform, hwcaps high to low; identical strings keep separate slots.
    /// The list always ends with `""`.
    pub fn capstrs(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = self
            .hwcaps_active
            .iter()
            .map(|n| {
                let mut v = b"glibc-hwcaps/".to_vec();
                v.extend_from_slice(n);
                v.push(b'/');
                v
            })
            .collect();
        if self.version <= (2, 36) {
            let mut temp: Vec<&[u8]> = vec![b"tls"];
            if let Some(p) = &self.platform {
                temp.push(p);
            }
            temp.extend(self.legacy_hwcaps.iter().map(Vec::as_slice));
            let n = temp.len().min(16);
            for mask in (0..(1u32 << n)).rev() {
                let mut s = Vec::new();
                for (i, t) in temp.iter().take(n).enumerate() {
                    if mask & (1 << (n - 1 - i)) != 0 {
                        s.extend_from_slice(t);
                        s.push(b'/');
                    }
                }
                out.push(s);
            }
        } else {
            out.push(Vec::new());
        }
        out
    }

    /// Since 2.38 (BZ 30435) the directory stat keeps the trailing slash.
    pub fn stat_keeps_slash(&self) -> bool {
        self.version >= (2, 38)
    }

    /// Since 2.39 (BZ 31035) ENOTDIR on a candidate no longer aborts the directory list.
    pub fn enotdir_continues(&self) -> bool {
        self.version >= (2, 39)
    }
}

/// `  /lib/x (system search path)` lines of `ld.so --help`, each given one trailing `/`.
fn system_dirs_from_help(help: &str) -> Vec<Vec<u8>> {
    help.lines()
        .filter_map(|l| l.strip_prefix("  ")?.strip_suffix(" (system search path)"))
        .map(|d| {
            let mut v = d.trim_end_matches('/').as_bytes().to_vec();
            v.push(b'/');
            v
        })
        .collect()
}

/// Searched legacy hwcap names from `ld.so --help`, highest bit first (platform and `tls`
/// lines excluded; they are added by [`LoaderFacts::capstrs`]).
fn legacy_from_help(help: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.starts_with("Legacy HWCAP subdirectories") {
            inside = true;
            continue;
        }
        if !inside {
            continue;
        }
        let Some(rest) = line.strip_prefix("  ") else {
            break;
        };
        let (name, notes) = match rest.split_once(" (") {
            Some((n, notes)) => (n, notes),
            None => (rest, ""),
        };
        if name == "tls" || notes.contains("AT_PLATFORM") || !notes.contains("searched") {
            continue;
        }
        out.push(name.as_bytes().to_vec());
    }
    out
}

/// The `ld.so.cache` flags the loader accepts (`_dl_cache_check_flags` in each port's
/// dl-cache.h; values from elf/ldconfig.h), by e_machine, class and (ARM) float ABI.
pub fn cache_flags(machine: u16, is_64: bool, e_flags: u32) -> Option<Vec<i32>> {
    const LIBC6: i32 = 0x0003;
    use object::elf::{EF_ARM_ABI_FLOAT_HARD, EM_386, EM_AARCH64, EM_ARM, EM_PPC64, EM_RISCV};
    use object::elf::{EM_S390, EM_X86_64};
    Some(match (machine, is_64) {
        (EM_X86_64, true) => vec![0x0300 | LIBC6],  // x86-64
        (EM_X86_64, false) => vec![0x0800 | LIBC6], // x32
        (EM_AARCH64, true) => vec![0x0a00 | LIBC6], // aarch64
        // ARM: hard-float (EF_ARM_ABI_FLOAT_HARD) vs soft-float libraries.
        // Unmarked (plain libc6) entries are accepted too (arm/dl-cache.h), so the host's
        // i386 /lib32 libraries in a foreign cache are opened and then skipped.
        (EM_ARM, false) if e_flags & EF_ARM_ABI_FLOAT_HARD != 0 => vec![0x0900 | LIBC6, LIBC6],
        (EM_ARM, false) => vec![0x0b00 | LIBC6, LIBC6],
        (EM_386, false) => vec![1, LIBC6], // i386 (generic: libc5/libc6 both accepted)
        (EM_PPC64, true) => vec![0x0500 | LIBC6], // ppc64
        (EM_S390, true) => vec![0x0400 | LIBC6], // s390x
        (EM_RISCV, true) => vec![0x1000 | LIBC6], // riscv64 lp64d
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(platform: Option<&str>, legacy: &[&str], hw: &[&str]) -> LoaderFacts {
        LoaderFacts {
            source: String::new(),
            version: (2, 36),
            platform: platform.map(|p| p.as_bytes().to_vec()),
            lib: Vec::new(),
            hwcaps_active: hw.iter().map(|s| s.as_bytes().to_vec()).collect(),
            legacy_hwcaps: legacy.iter().map(|s| s.as_bytes().to_vec()).collect(),
            system_dirs: Vec::new(),
            sysconfdir: Vec::new(),
            rtld: Vec::new(),
        }
    }

    fn strs(v: Vec<Vec<u8>>) -> Vec<String> {
        v.into_iter().map(|s| lossy(&s)).collect()
    }

    #[test]
    fn amd_x86_64_list_has_eleven_entries_with_duplicates() {
        let f = facts(
            Some("x86_64"),
            &["x86_64"],
            &["x86-64-v4", "x86-64-v3", "x86-64-v2"],
        );
        assert_eq!(
            strs(f.capstrs()),
            [
                "glibc-hwcaps/x86-64-v4/",
                "glibc-hwcaps/x86-64-v3/",
                "glibc-hwcaps/x86-64-v2/",
                "tls/x86_64/x86_64/",
                "tls/x86_64/",
                "tls/x86_64/",
                "tls/",
                "x86_64/x86_64/",
                "x86_64/",
                "x86_64/",
                ""
            ]
        );
    }

    #[test]
    fn armhf_list_starts_with_all_four() {
        let f = facts(Some("v8l"), &["neon", "vfp"], &[]);
        let c = strs(f.capstrs());
        assert_eq!(c.len(), 16);
        assert_eq!(c[0], "tls/v8l/neon/vfp/");
        assert_eq!(c[15], "");
    }

    #[test]
    fn newer_glibc_has_no_legacy_entries() {
        let mut f = facts(Some("aarch64"), &["atomics"], &[]);
        f.version = (2, 37);
        assert_eq!(strs(f.capstrs()), [""]);
    }

    #[test]
    fn diagnostics_and_help_parse() {
        let diag = "dl_dst_lib=\"lib/x86_64-linux-gnu\"\ndl_hwcaps_subdirs=\"x86-64-v4:x86-64-v3:x86-64-v2\"\n\
            dl_hwcaps_subdirs_active=0x6\ndl_platform=\"haswell\"\npath.rtld=\"/lib64/ld-linux-x86-64.so.2\"\n\
            path.sysconfdir=\"/etc\"\npath.system_dirs[0x0]=\"/lib/x86_64-linux-gnu/\"\n\
            path.system_dirs[0x1]=\"/usr/lib/\"\nversion.version=\"2.36\"\n";
        let help = "Legacy HWCAP subdirectories under library search path directories:\n  \
            haswell (AT_PLATFORM; supported, searched)\n  tls (supported, searched)\n  avx512_1\n  \
            x86_64 (supported, searched)\n";
        let f = LoaderFacts::from_diagnostics(diag, help, "", b"/x", "test").expect("parses");
        assert_eq!(strs(f.hwcaps_active.clone()), ["x86-64-v3", "x86-64-v2"]);
        assert_eq!(strs(f.legacy_hwcaps.clone()), ["x86_64"]);
        assert_eq!(f.platform.as_deref(), Some(&b"haswell"[..]));
        assert_eq!(f.system_dirs.len(), 2);
        assert_eq!(f.capstrs()[2], b"tls/haswell/x86_64/");
    }
}
