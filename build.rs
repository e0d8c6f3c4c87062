//! Compiles every `targets/*.toml` into the program, so that adding a target needs no code change.
//!
//! Each file is read here into the program's own types (`src/target/schema.rs`, included below)
//! and written out as Rust code that builds that value: a file that does not describe a target
//! fails the build, naming the file, and ldnote parses no description when it runs. Embedded as
//! JSON and parsed at run time, the one description a link needs cost about 0.02 ms of every
//! wrapped link's CPU (TOML at run time had cost ten times that). The generated code is a struct
//! literal per target: a field of `Target` that this script does not write, or writes with the
//! wrong type, is a compile error, so the two cannot drift apart.
use std::fmt::Write as _;
use std::{env, fs, path::Path};

#[path = "src/target/schema.rs"]
#[allow(dead_code)]
mod schema;

use schema::{FlagRule, Target};

fn string(s: &str) -> String {
    format!("String::from({s:?})")
}

fn strings(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| string(s)).collect();
    format!("vec![{}]", items.join(", "))
}

fn rule(r: &FlagRule) -> String {
    format!(
        "FlagRule {{ mask: {:#x}, value: {:#x}, kind: RuleKind::{:?}, action: Action::{:?}, why: {} }}",
        r.mask,
        r.value,
        r.kind,
        r.action,
        string(&r.why)
    )
}

/// Rust code that evaluates to `t`. Every field is named: see the module comment.
fn target(t: &Target) -> String {
    let rules: Vec<String> = t.eflags.iter().map(rule).collect();
    let osabi: Vec<String> = t.osabi.iter().map(u8::to_string).collect();
    format!(
        "Target {{
        name: {name},
        triples: {triples},
        emulations: {emulations},
        class: {class},
        endian: ByteOrder::{endian:?},
        machine: {machine},
        osabi: vec![{osabi}],
        abi_version_max: {abi},
        eflags: vec![{rules}],
        dynamic_loader: {loader},
        lib: {lib},
        platform: {platform},
        glibc_hwcaps: {hwcaps},
        legacy_hwcaps: {legacy},
        default_dirs: {dirs},
        page_size: {page},
        machine_check_before_ident: {mcbi},
        reserve_eflags: {reserve:#x},
        glibc: {glibc},
        qemu: {qemu},
        runs_on: {runs_on},
    }}",
        name = string(&t.name),
        triples = strings(&t.triples),
        emulations = strings(&t.emulations),
        class = t.class,
        endian = t.endian,
        machine = t.machine,
        osabi = osabi.join(", "),
        abi = t.abi_version_max,
        rules = rules.join(", "),
        loader = string(&t.dynamic_loader),
        lib = string(&t.lib),
        platform = string(&t.platform),
        hwcaps = strings(&t.glibc_hwcaps),
        legacy = strings(&t.legacy_hwcaps),
        dirs = strings(&t.default_dirs),
        page = t.page_size,
        mcbi = t.machine_check_before_ident,
        reserve = t.reserve_eflags,
        glibc = string(&t.glibc),
        qemu = string(&t.qemu),
        runs_on = strings(&t.runs_on),
    )
}

fn main() {
    println!("cargo:rerun-if-changed=targets");
    println!("cargo:rerun-if-changed=src/target/schema.rs");
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
    let mut table = String::from(
        "/// Every embedded `targets/*.toml`, in file name order.\n\
         pub(crate) const EMBEDDED: &[Embedded] = &[\n",
    );
    let mut builders = String::new();
    for (i, p) in names.iter().enumerate() {
        println!("cargo:rerun-if-changed={}", p.display());
        let file = p
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = match fs::read_to_string(p) {
            Ok(t) => t,
            Err(e) => panic!("cannot read {}: {e}", p.display()),
        };
        let t: Target = match toml::from_str(&text) {
            Ok(t) => t,
            Err(e) => panic!("target file `{file}` does not describe a target: {e}"),
        };
        let _ = writeln!(
            table,
            "    Embedded {{ file: {file:?}, class: {}, big_endian: {}, machine: {}, make: target_{i} }},",
            t.class,
            t.endian == schema::ByteOrder::Big,
            t.machine
        );
        let _ = writeln!(
            builders,
            "/// `targets/{file}`.\nfn target_{i}() -> Target {{\n    {}\n}}\n",
            target(&t)
        );
    }
    table.push_str("];\n\n");
    table.push_str(&builders);
    let out = Path::new(&env::var("OUT_DIR").unwrap_or_default()).join("targets.rs");
    if let Err(e) = fs::write(&out, table) {
        panic!("cannot write {}: {e}", out.display());
    }
}
