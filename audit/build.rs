//! Link the module freestanding: no C start files, no libc, so that it has no DT_NEEDED (an
//! audit module's dependencies are loaded into its own namespace and searched through the
//! program's run path). With feature `host` only the parsing code is wanted, linked normally.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_HOST").is_none() {
        for a in [
            "-nostartfiles",
            "-nostdlib",
            "-Wl,--no-undefined",
            "-Wl,-z,now",
            "-Wl,--gc-sections",
            "-Wl,-Bsymbolic",
        ] {
            println!("cargo:rustc-cdylib-link-arg={a}");
        }
        // 32-bit ARM: rustc puts its generated `symbols.o` (e_flags 0) first on the command line;
        // with no C start files before it, GNU ld takes the output's EABI version from it and
        // then rejects every EABI5 object. gold takes the flags from the objects that have them.
        if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("arm") {
            println!("cargo:rustc-cdylib-link-arg=-fuse-ld=gold");
        }
    }
}
