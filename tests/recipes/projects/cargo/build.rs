//! Links the C library libgreet from GREET_LIBDIR, with that directory as the run path.
fn main() {
    println!("cargo:rerun-if-env-changed=GREET_LIBDIR");
    let lib = std::env::var("GREET_LIBDIR").expect("set GREET_LIBDIR to libgreet's directory");
    println!("cargo:rustc-link-search=native={lib}");
    println!("cargo:rustc-link-lib=dylib=greet");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
}
