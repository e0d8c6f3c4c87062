//! Multicall program-name classification (`aarch64-linux-gnu-gcc-12` -> driver, triple, `gcc`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// Which command-line language the invoked program speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ToolKind {
    /// A linker (`ld`, `ld.bfd`, `ld.gold`, `ld.lld`, `ld.mold`): GNU ld options.
    Linker,
    /// A compiler driver (`cc`, `gcc`, `g++`, `c++`, `clang`, `clang++`): linker options arrive
    /// through `-Wl,`/`-Xlinker` and a few driver flags.
    Driver,
}

/// A classified program name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ToolName {
    /// Linker or compiler driver.
    pub kind: ToolKind,
    /// The `<triple>` of a `<triple>-<tool>` name (e.g. `aarch64-linux-gnu`), as written.
    pub triple: Option<OsString>,
    /// The tool without triple prefix and version suffix (e.g. `gcc`, `ld.lld`).
    pub base: OsString,
}

/// Tools we stand in for, longest first within a suffix family so `-ld.lld` wins over `-ld`.
const TOOLS: &[(&[u8], ToolKind)] = &[
    (b"ld.bfd", ToolKind::Linker),
    (b"ld.gold", ToolKind::Linker),
    (b"ld.lld", ToolKind::Linker),
    (b"ld.mold", ToolKind::Linker),
    (b"ld", ToolKind::Linker),
    (b"clang++", ToolKind::Driver),
    (b"clang", ToolKind::Driver),
    (b"g++", ToolKind::Driver),
    (b"c++", ToolKind::Driver),
    (b"gcc", ToolKind::Driver),
    (b"cc", ToolKind::Driver),
];

/// Classify an invoked program name (the basename of `argv[0]` is taken if a path is given).
///
/// Accepts `ld`, `ld.bfd`, `ld.gold`, `ld.lld`, `ld.mold`, `cc`, `gcc`, `g++`, `c++`, `clang` and
/// `clang++`, each with an optional `<triple>-` prefix and an optional numeric
/// version suffix (`gcc-12`, `clang++-14`, `x86_64-linux-gnu-gcc-12.2`). Anything else, including
/// look-alikes such as `gcc-ar`, `clang-cl` or `collect2`, is `None`.
pub fn classify_tool(argv0: &OsStr) -> Option<ToolName> {
    let bytes = argv0.as_bytes();
    let name = match bytes.iter().rposition(|&b| b == b'/') {
        Some(slash) => &bytes[slash + 1..],
        None => bytes,
    };
    classify_exact(name).or_else(|| classify_exact(strip_version(name)?))
}

/// `gcc-12` -> `gcc`; `None` when there is no `-<digits>[.<digits>...]` suffix.
fn strip_version(name: &[u8]) -> Option<&[u8]> {
    let dash = name.iter().rposition(|&b| b == b'-')?;
    let version = &name[dash + 1..];
    let numeric = version.first().is_some_and(u8::is_ascii_digit)
        && version.iter().all(|&b| b.is_ascii_digit() || b == b'.');
    numeric.then_some(&name[..dash])
}

/// Match `tool` or `<triple>-tool` exactly.
fn classify_exact(name: &[u8]) -> Option<ToolName> {
    for &(tool, kind) in TOOLS {
        if name == tool {
            return Some(ToolName {
                kind,
                triple: None,
                base: OsStr::from_bytes(tool).to_owned(),
            });
        }
        if let Some(prefix) = name.strip_suffix(tool) {
            if let Some(triple) = prefix.strip_suffix(b"-") {
                if !triple.is_empty() {
                    return Some(ToolName {
                        kind,
                        triple: Some(OsStr::from_bytes(triple).to_owned()),
                        base: OsStr::from_bytes(tool).to_owned(),
                    });
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<(ToolKind, Option<String>, String)> {
        classify_tool(OsStr::new(s)).map(|t| {
            (
                t.kind,
                t.triple.map(|x| x.to_string_lossy().into_owned()),
                t.base.to_string_lossy().into_owned(),
            )
        })
    }

    #[test]
    fn names() {
        use ToolKind::*;
        let s = |x: &str| x.to_owned();
        assert_eq!(c("ld"), Some((Linker, None, s("ld"))));
        assert_eq!(c("/usr/bin/ld.lld"), Some((Linker, None, s("ld.lld"))));
        assert_eq!(
            c("x86_64-unknown-linux-gnu-ld.lld"),
            Some((Linker, Some(s("x86_64-unknown-linux-gnu")), s("ld.lld")))
        );
        assert_eq!(
            c("aarch64-linux-gnu-gcc"),
            Some((Driver, Some(s("aarch64-linux-gnu")), s("gcc")))
        );
        assert_eq!(
            c("x86_64-linux-gnu-g++-12"),
            Some((Driver, Some(s("x86_64-linux-gnu")), s("g++")))
        );
        assert_eq!(c("gcc-12"), Some((Driver, None, s("gcc"))));
        assert_eq!(c("clang++-14"), Some((Driver, None, s("clang++"))));
        assert_eq!(c("clang-14.0"), Some((Driver, None, s("clang"))));
        assert_eq!(c("cc"), Some((Driver, None, s("cc"))));
        assert_eq!(c("c++"), Some((Driver, None, s("c++"))));
        assert_eq!(c("avr-gcc"), Some((Driver, Some(s("avr")), s("gcc"))));
        for none in [
            "ldnote",
            "gcc-ar",
            "clang-cl",
            "collect2",
            "lld",
            "-gcc",
            "cc1",
            "ld.",
            "gold",
            "",
            "x86_64-linux-gnu-gcc-ar-12",
            "clang-cpp-14",
            "ld-",
        ] {
            assert_eq!(c(none), None, "{none}");
        }
    }
}
