//! The case-file format of the patchelf differential cases (`tests/cases/patchelf/*.toml`); see
//! TESTING.md "Differential cases against patchelf" for every key with examples.
//!
//! Every table refuses keys it does not know (`deny_unknown_fields`), so a misspelt directive is
//! an error naming the file, line and key, never a check silently left out.
//!
//! Strings are bytes: after TOML has read them, `\0`, `\xHH` and `\\` are decoded (so write them
//! in single-quoted TOML strings), and `<root>` is the layout's absolute directory. In an item
//! with `for = [A, B]` (inclusive, counting down when A > B), `<i>`, `<i:03>` (zero-padded to
//! that width) and `<i%7>` (remainder) are the counter. `<x*5000>` repeats `x` 5000 times.
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// Compiler drivers, the case is run once with each (default: `gcc`, the host).
    #[serde(default)]
    pub cc: Vec<String>,
    /// Empty directories of the layout (root-relative).
    #[serde(default)]
    pub dirs: Vec<Item>,
    #[serde(default)]
    pub lib: Vec<Lib>,
    #[serde(default)]
    pub file: Vec<File>,
    #[serde(default)]
    pub symlink: Vec<Symlink>,
    pub link: Link,
    #[serde(default)]
    pub readelf: Readelf,
    pub expect: Expect,
}

/// A string, or one string per value of a counter.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Item {
    One(String),
    Each(Each),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Each {
    #[serde(rename = "for")]
    pub range: [i64; 2],
    pub each: String,
}

/// A real shared library (`gcc -shared` of one tiny object) at a root-relative path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lib {
    pub path: String,
    /// DT_SONAME; default: the file name. `false`: none (DT_NEEDED is then the path).
    #[serde(default)]
    pub soname: Option<Soname>,
    /// Built with another compiler driver and copied in (a wrong-class candidate).
    #[serde(default)]
    pub cc: Option<String>,
    #[serde(default, rename = "for")]
    pub range: Option<[i64; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Soname {
    Name(String),
    Has(bool),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub path: String,
    pub text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Symlink {
    pub path: String,
    /// The link's target, as written (`<root>` for an absolute one).
    pub to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// `-shared` (a library as the noted object) instead of a program.
    #[serde(default)]
    pub shared: bool,
    /// Root-relative output path (default `prog`).
    #[serde(default)]
    pub output: Option<String>,
    /// Libraries given by path, in DT_NEEDED order (root-relative).
    #[serde(default)]
    pub inputs: Vec<Item>,
    /// Run-path components, joined with `:`; absent: no run path.
    #[serde(default)]
    pub runpath: Option<Vec<Item>>,
    /// `runpath` (default) or `rpath`.
    #[serde(default)]
    pub tag: Option<String>,
    /// More gcc arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Also link through `ldnote link` and hold that note to patchelf's (default true).
    #[serde(default = "yes")]
    pub twin: bool,
    /// `patchelf --add-needed` on the output before the check (needs `twin = false`).
    #[serde(default)]
    pub add_needed: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Facts about the linked output (`readelf -dW`, NEEDED and PATH lines), so that a case cannot
/// pass because the linker built something else than the case meant.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Readelf {
    #[serde(default)]
    pub has: Vec<String>,
    #[serde(default)]
    pub lacks: Vec<String>,
    /// Exact number of occurrences.
    #[serde(default)]
    pub count: std::collections::BTreeMap<String, usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `same` (default): `ldnote patch` and the link-time twin write exactly patchelf's note,
    /// and each accepts the other's. `differs`: ldnote deliberately writes another note.
    #[serde(default)]
    pub relation: Relation,
    /// Whether patchelf writes a note at all (default true).
    #[serde(default = "yes")]
    pub note: bool,
    /// Byte strings patchelf's descriptor contains / lacks.
    #[serde(default)]
    pub contains: Vec<String>,
    #[serde(default)]
    pub lacks: Vec<String>,
    /// Options of `ldnote patch` (and `ldnote check`), e.g. `["--glibc", "2.37"]`.
    #[serde(default)]
    pub ldnote_args: Vec<String>,
    /// With `differs`: ldnote's whole descriptor, and byte strings it contains / lacks.
    #[serde(default)]
    pub ldnote_equals: Option<String>,
    #[serde(default)]
    pub ldnote_contains: Vec<String>,
    #[serde(default)]
    pub ldnote_lacks: Vec<String>,
    /// Run the program ldnote noted: the loader must load it.
    #[serde(default)]
    pub run: bool,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Relation {
    #[default]
    Same,
    Differs,
}

impl Case {
    /// Read a case file: TOML, then the rules serde cannot express.
    pub fn parse(text: &str) -> Result<Case, String> {
        let c: Case = toml::from_str(text).map_err(|e| e.to_string())?;
        let e = &c.expect;
        let differs = e.relation == Relation::Differs;
        let for_differs = e.ldnote_equals.is_some()
            || !e.ldnote_contains.is_empty()
            || !e.ldnote_lacks.is_empty();
        if for_differs && !differs {
            return Err("ldnote_equals/contains/lacks need relation = \"differs\"".into());
        }
        if differs && (c.link.twin || !e.note) {
            return Err("relation = \"differs\" needs twin = false and a note".into());
        }
        if differs && !for_differs {
            return Err("relation = \"differs\": say what ldnote writes (ldnote_*)".into());
        }
        if e.note && e.contains.is_empty() {
            // A note without a stated content could be a layout the case did not mean.
            return Err("say what patchelf's note contains (expect.contains)".into());
        }
        let states_content = !e.contains.is_empty() || !e.lacks.is_empty();
        if !e.note && states_content {
            return Err("note = false takes no contains/lacks".into());
        }
        if !c.link.add_needed.is_empty() && c.link.twin {
            return Err("add_needed changes the output after the link: set twin = false".into());
        }
        if let Some(t) = &c.link.tag {
            if t != "runpath" && t != "rpath" {
                return Err(format!("tag = {t:?}: runpath or rpath"));
            }
        }
        Ok(c)
    }
}

/// Decode a case string to bytes: escapes, then placeholders (`i` is the `for` counter).
pub fn bytes(s: &str, root: &[u8], i: Option<i64>) -> Result<Vec<u8>, String> {
    let mut out = vec![];
    let b = s.as_bytes();
    let mut k = 0;
    while k < b.len() {
        match b[k] {
            b'\\' => {
                let (byte, len) = match b.get(k + 1) {
                    Some(b'0') => (0, 2),
                    Some(b'\\') => (b'\\', 2),
                    Some(b'x') => {
                        let hex = s.get(k + 2..k + 4).ok_or(format!("short \\x in {s:?}"))?;
                        let v = u8::from_str_radix(hex, 16)
                            .map_err(|_| format!("bad \\x{hex} in {s:?}"))?;
                        (v, 4)
                    }
                    _ => return Err(format!("unknown escape in {s:?} (\\0, \\xHH, \\\\)")),
                };
                out.push(byte);
                k += len;
            }
            b'<' => {
                let end = s[k..].find('>').ok_or(format!("unclosed < in {s:?}"))?;
                out.extend(placeholder(&s[k + 1..k + end], root, i)?);
                k += end + 1;
            }
            c => {
                out.push(c);
                k += 1;
            }
        }
    }
    Ok(out)
}

fn placeholder(name: &str, root: &[u8], i: Option<i64>) -> Result<Vec<u8>, String> {
    if name == "root" {
        return Ok(root.to_vec());
    }
    if let Some((text, n)) = name.split_once('*') {
        let n: usize = n.parse().map_err(|_| format!("<{name}>: count"))?;
        return Ok(text.repeat(n).into_bytes());
    }
    let rest = name
        .strip_prefix('i')
        .ok_or(format!("unknown placeholder <{name}>"))?;
    let i = i.ok_or(format!("<{name}> outside an item with `for`"))?;
    let v = if rest.is_empty() {
        i.to_string()
    } else if let Some(w) = rest.strip_prefix(':') {
        let w: usize = w.parse().map_err(|_| format!("<{name}>: width"))?;
        format!("{i:0w$}")
    } else if let Some(m) = rest.strip_prefix('%') {
        let m: i64 = m.parse().map_err(|_| format!("<{name}>: modulus"))?;
        (i % m).to_string()
    } else {
        return Err(format!("unknown placeholder <{name}>"));
    };
    Ok(v.into_bytes())
}

/// The counter values of `for = [a, b]`, inclusive, counting down when `a > b`.
pub fn range(r: [i64; 2]) -> Vec<i64> {
    if r[0] <= r[1] {
        (r[0]..=r[1]).collect()
    } else {
        (r[1]..=r[0]).rev().collect()
    }
}

/// Expand a list of items to byte strings.
pub fn items(list: &[Item], root: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = vec![];
    for it in list {
        match it {
            Item::One(s) => out.push(bytes(s, root, None)?),
            Item::Each(e) => {
                for i in range(e.range) {
                    out.push(bytes(&e.each, root, Some(i))?);
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "[link]\nrunpath = ['<root>/d1']\n[expect]\nnote = false\n";

    #[test]
    fn unknown_directives_are_errors() {
        assert!(Case::parse(MINIMAL).is_ok());
        for bad in [
            format!("{MINIMAL}colour = 1\n"),
            MINIMAL.replace("runpath", "run_path"),
            MINIMAL.replace("note = false", "note = false\nldnote_contain = ['x']"),
            format!("[[lib]]\npath = 'd1/liba.so'\nsoname_ = 'x'\n{MINIMAL}"),
            format!("[[symlink]]\npath = 'a'\nto = 'b'\nfrom = 'c'\n{MINIMAL}"),
        ] {
            let e = Case::parse(&bad).expect_err(&bad);
            assert!(e.contains("unknown field"), "{bad}\n{e}");
        }
    }

    #[test]
    fn strings_are_bytes_with_placeholders() {
        let root = b"/t\xff";
        let b = |s, i| bytes(s, root, i);
        let ok = |s, i| b(s, i).expect(s);
        assert_eq!(ok(r"a\0b\xfe\\", None), b"a\0b\xfe\\");
        assert_eq!(ok("=<root>/d<i:03>.<i%7>", Some(9)), b"=/t\xff/d009.2");
        assert_eq!(ok("${ORIGIN}/<x*3>", None), b"${ORIGIN}/xxx");
        for bad in ["<rooot>", r"\n", "<i>", "<root", r"\xg0"] {
            assert!(b(bad, None).is_err(), "{bad}");
        }
        assert_eq!(range([3, 1]), [3, 2, 1]);
        assert_eq!(range([0, 2]), [0, 1, 2]);
    }
}
