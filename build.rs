//! Embeds every `targets/*.toml` so that adding a target needs no code change.
use std::{env, fs, path::Path};

fn main() {
    println!("cargo:rerun-if-changed=targets");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets");
    let mut names: Vec<_> = fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    // Each file is parsed here and embedded as JSON: parsing TOML at run time was the largest
    // part of `ldnote link`'s own CPU on a small link (serde_json reads the same tree ~10x
    // faster). A file that is not valid TOML fails the build, naming the file.
    let mut src = String::from(
        "/// (file name, the target as JSON) of every embedded `targets/*.toml`.\npub const EMBEDDED_JSON: &[(&str, &str)] = &[\n",
    );
    // The header facts of each target, in the same order: a link parses only the description
    // its output's header can match (the full table costs ~60 us of CPU to parse).
    let mut facts = String::from(
        "/// (class, big endian, e_machine) of each `EMBEDDED_JSON` entry.\npub const EMBEDDED_FACTS: &[(u64, bool, u64)] = &[\n",
    );
    for p in names {
        println!("cargo:rerun-if-changed={}", p.display());
        let file = p
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = match fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) => panic!("cannot read {}: {e}", p.display()),
        };
        let value: toml::Value = match toml::from_str(&text) {
            Ok(v) => v,
            Err(e) => panic!("target file `{file}` is not valid TOML: {e}"),
        };
        let json = match serde_json::to_string(&value) {
            Ok(j) => j,
            Err(e) => panic!("target file `{file}`: {e}"),
        };
        src.push_str(&format!("    ({file:?}, {json:?}),\n"));
        let int = |k: &str| value.get(k).and_then(toml::Value::as_integer).unwrap_or(0);
        let big = value.get("endian").and_then(toml::Value::as_str) == Some("big");
        facts.push_str(&format!(
            "    ({}, {big}, {}),\n",
            int("class"),
            int("machine")
        ));
    }
    src.push_str("];\n");
    facts.push_str("];\n");
    src.push_str(&facts);
    let out = Path::new(&env::var("OUT_DIR").unwrap_or_default()).join("targets.rs");
    if let Err(e) = fs::write(&out, src) {
        panic!("cannot write {}: {e}", out.display());
    }
}
