//! `ldnote demo`: the README's main job on an embedded example.
use std::path::Path;
use std::process::Command;

const LIBS: [(&str, &str, &str); 3] = [
    ("zlib-1.3", "z", "int z_ver(void) { return 13; }"),
    ("libpng-1.6", "png", "int png_ver(void) { return 16; }"),
    ("openssl-3.0", "ssl", "int ssl_ver(void) { return 30; }"),
];

const MAIN: &str = r#"#include <stdio.h>
int z_ver(void); int png_ver(void); int ssl_ver(void);
int main(void) { printf("demo: zlib %d, png %d, ssl %d\n", z_ver(), png_ver(), ssl_ver()); return 0; }
"#;

fn sh(cmd: &mut Command) -> Result<(), String> {
    let st = cmd
        .status()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    if st.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {st}"))
    }
}

fn go(dir: &Path) -> Result<(), String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let store = dir.join("store");
    let mut rpath = Vec::new();
    let mut link_flags = Vec::new();
    for (i, (name, short, src)) in LIBS.iter().enumerate() {
        let lib = store.join(format!("{i}abc{i}def-{name}")).join("lib");
        std::fs::create_dir_all(&lib).map_err(|e| e.to_string())?;
        let c = dir.join(format!("{name}.c"));
        std::fs::write(&c, src).map_err(|e| e.to_string())?;
        let so = lib.join(format!("lib{short}.so"));
        sh(Command::new(&cc)
            .args(["-shared", "-fPIC", "-o"])
            .arg(&so)
            .arg(&c)
            .arg(format!("-Wl,-soname,lib{short}.so")))?;
        rpath.push(lib.display().to_string());
        link_flags.push(format!("-L{}", lib.display()));
        link_flags.push(format!("-l{short}"));
    }
    let main_c = dir.join("main.c");
    std::fs::write(&main_c, MAIN).map_err(|e| e.to_string())?;
    let prog = dir.join("bin/demo");
    std::fs::create_dir_all(dir.join("bin")).map_err(|e| e.to_string())?;
    outln!(
        "$ ldnote link -- {cc} main.c -o bin/demo -Wl,--enable-new-dtags,-rpath,<3 store dirs> ..."
    );
    sh(Command::new(&me)
        .args(["link", "-v", "--", &cc])
        .arg(&main_c)
        .arg("-o")
        .arg(&prog)
        .arg(format!("-Wl,--enable-new-dtags,-rpath,{}", rpath.join(":")))
        .args(&link_flags))?;
    outln!("$ bin/demo");
    sh(&mut Command::new(&prog))?;
    outln!("$ ldnote show bin/demo");
    sh(Command::new(&me).arg("show").arg(&prog))?;
    outln!("$ ldnote check bin/demo");
    sh(Command::new(&me).arg("check").arg(&prog))
}

/// Returns the exit code.
pub fn demo() -> i32 {
    let dir = match tempfile::Builder::new().prefix("ldnote-demo").tempdir() {
        Ok(d) => d,
        Err(e) => {
            errln!("ldnote: error: cannot create a temporary directory: {e}");
            return 1;
        }
    };
    match go(dir.path()) {
        Ok(()) => 0,
        Err(e) => {
            errln!("ldnote: error: demo: {e}");
            1
        }
    }
}
