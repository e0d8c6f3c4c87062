//! Real source packages in the Nix-like build: Debian's zlib and libpng upstream sources, built
//! with their own build systems (zlib's `configure`, libpng's autoconf + libtool) into the fake
//! store, libpng depending on zlib, every link through the emulated ld-wrapper and, in the
//! ldnote variant, ldnote below it. Then each variant's fixup, as for the small package set.
//!
//! The sources are the `.orig` tarballs that `apt-get source --download-only zlib libpng1.6`
//! fetches; tests/run-all.sh puts them in `$LDNOTE_DEBIAN_SRC` (default
//! `~/.cache/ldnote/debian-src`).
use super::*;

const ZLIB: (&str, &str) = ("4m8rq2w6xk0z9c3v7n1p5ld8sh2jy6aa", "zlib");
const LIBPNG: (&str, &str) = ("5p1wd9k3zn7q2x6c8m4v0la3rj5hy9bb", "libpng");

fn src_dir() -> PathBuf {
    std::env::var_os("LDNOTE_DEBIAN_SRC")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ldnote/debian-src"))
        })
        .expect("HOME or LDNOTE_DEBIAN_SRC")
}

/// The upstream tarball of Debian source package `pkg`, if downloaded.
fn tarball(pkg: &str) -> Option<PathBuf> {
    let prefix = format!("{pkg}_");
    let mut found: Vec<PathBuf> = std::fs::read_dir(src_dir())
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
            n.is_some_and(|n| n.starts_with(&prefix) && n.contains(".orig.tar."))
        })
        .collect();
    found.sort();
    found.pop()
}

impl World {
    fn store_path(&self, (hash, name): (&str, &str)) -> PathBuf {
        self.store.join(format!("{hash}-{name}"))
    }

    /// Unpack `tarball`, run `configure` with `args`, `make install`, in the build environment
    /// of `out` depending on `deps`.
    fn build_configure(
        &self,
        v: Variant,
        tarball: &Path,
        out: &Path,
        deps: &[PathBuf],
        args: &[String],
    ) -> PathBuf {
        let src = self.root.join(format!(
            "build-{v:?}-{}",
            out.file_name().expect("name").to_string_lossy()
        ));
        let _ = std::fs::remove_dir_all(&src);
        let _ = std::fs::remove_dir_all(out);
        std::fs::create_dir_all(&src).expect("mkdir");
        run_ok(
            Command::new("tar")
                .arg("xf")
                .arg(tarball)
                .arg("--strip-components=1")
                .arg("-C")
                .arg(&src),
        );
        let mut c = Command::new("./configure");
        c.current_dir(&src)
            .arg(format!("--prefix={}", out.display()))
            .args(args)
            .env("CC", self.cc(&NATIVE))
            .env("CFLAGS", "-O1 -g");
        self.nix_env(&mut c, &NATIVE, v, out, deps);
        run_ok(&mut c);
        let mut m = Command::new("make");
        m.current_dir(&src).args(["-s", "-j2", "install"]);
        self.nix_env(&mut m, &NATIVE, v, out, deps);
        run_ok(&mut m);
        src
    }

    /// zlib, then libpng against it, each fixed up before the next is built (as in Nix).
    /// Returns libpng's source directory (for its test image) and the total fixup time.
    fn build_zlib_libpng(&self, v: Variant, zlib: &Path, libpng: &Path) -> (PathBuf, Duration) {
        let fixup = |w: &World, out: &Path| match v {
            Variant::Stock => fixup_stock(&NATIVE, out),
            Variant::Ldnote | Variant::LdnoteEager => fixup_ldnote(w, &NATIVE, out, true),
        };
        let z = self.store_path(ZLIB);
        self.build_configure(v, zlib, &z, &[], &[]);
        let mut t = fixup(self, &z);
        let p = self.store_path(LIBPNG);
        let src = self.build_configure(
            v,
            libpng,
            &p,
            std::slice::from_ref(&z),
            &["--disable-static".into()],
        );
        t += fixup(self, &p);
        (src, t)
    }
}

/// Run the installed `pngfix` on libpng's own test image: it loads libpng16 and libz.
fn run_pngfix(w: &World, src: &Path) {
    let o =
        run_ok(Command::new(w.store_path(LIBPNG).join("bin/pngfix")).arg(src.join("pngtest.png")));
    assert!(o.status.success());
}

#[test]
fn debian_zlib_and_libpng_native() {
    if !have_all(&["gcc", "ld", "strip", "patchelf", "make", "tar"]) {
        return;
    }
    let (Some(zlib), Some(libpng)) = (tarball("zlib"), tarball("libpng1.6")) else {
        let why = format!(
            "Debian sources of zlib and libpng1.6 missing in {} (tests/run-all.sh fetches them)",
            src_dir().display()
        );
        return skip_or_fail("debian_zlib_and_libpng_native", &why);
    };
    let w = World::new();
    let (src, stock_t) = w.build_zlib_libpng(Variant::Stock, &zlib, &libpng);
    run_pngfix(&w, &src);
    let stock = facts(&w);
    std::fs::remove_dir_all(&w.store).expect("rm");
    std::fs::create_dir_all(&w.store).expect("mkdir");
    let (src, ours_t) = w.build_zlib_libpng(Variant::Ldnote, &zlib, &libpng);
    run_pngfix(&w, &src);
    let ours = facts(&w);
    assert_eq!(
        stock.keys().collect::<Vec<_>>(),
        ours.keys().collect::<Vec<_>>()
    );
    for (rel, s) in &stock {
        let o = &ours[rel];
        assert_eq!(s.rpath, o.rpath, "{rel}: run path");
        assert!(s.dynstr == o.dynstr, "{rel}: .dynstr bytes differ");
        assert_eq!(s.note, o.note, "{rel}: note");
    }
    // pngfix and libpng16 record where libz (another package) and libpng16 (their own) are.
    let z = w.store_path(ZLIB).join("lib/libz.so.1");
    let png = w.store_path(LIBPNG).join("lib/libpng16.so.16");
    for (rel, f) in &ours {
        let text = f.note.to_string();
        if rel.ends_with("bin/pngfix") {
            assert!(text.contains(&*png.to_string_lossy()), "{rel}: {text}");
        }
        if rel.ends_with("bin/pngfix") || rel.contains("lib/libpng16.so") {
            assert!(text.contains(&*z.to_string_lossy()), "{rel}: {text}");
        }
    }
    assert!(ours.keys().any(|k| k.ends_with("bin/pngfix")), "{ours:#?}");
    run_ok(w.ldnote().arg("check").args(elf_files(&w.store)));
    println!(
        "zlib + libpng fixup: stock {} ms, ldnote {} ms",
        stock_t.as_millis(),
        ours_t.as_millis()
    );
}
