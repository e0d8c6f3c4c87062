//! nix/ldnote-fixup-hook.sh in a bash rendition of stdenv's fixup phase: `runHook preFixup`,
//! then `runHook fixupOutput` per output with `$prefix` set, then `runHook postFixup`, with
//! stand-ins for the stock setup hooks it composes with, each registered as nixpkgs registers
//! it: patchelf's (`patchELF` in fixupOutputHooks unless dontPatchELF; `patchelf --shrink-rpath
//! || true` per ELF file), stdenv's strip (fixupOutputHooks) and the generate-ld-cache hook
//! (`generateLDCache` unless dontGenerateLDCache; here strict, as the newest revision is: a
//! failing `patchelf --build-resolution-cache` fails the build). `patchelf` and ldnote are
//! logging shims around the real programs, so the tests see every call and its order.
use super::*;

/// Where the generate-ld-cache stand-in registers itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LdCache {
    FixupOutput,
    PostFixup,
}

struct Fixup<'a> {
    /// `(output name, directory)`, in `$outputs` order.
    outputs: Vec<(&'a str, PathBuf)>,
    /// Bash lines run before the hooks are sourced (derivation attributes).
    settings: String,
    ld_cache: LdCache,
    /// Source ldnote's hook after the stock ones (else before).
    ldnote_last: bool,
    /// `ulimit -s` (KiB) for the build: a smaller argument limit.
    stack_kib: Option<u32>,
    /// The ldnote the hook runs (default: the real one behind a logging shim).
    ldnote: Option<PathBuf>,
}

impl<'a> Fixup<'a> {
    fn new(outputs: Vec<(&'a str, PathBuf)>) -> Self {
        Fixup {
            outputs,
            settings: String::new(),
            ld_cache: LdCache::FixupOutput,
            ldnote_last: true,
            stack_kib: None,
            ldnote: None,
        }
    }
}

/// The fixup's result: bash's output and the call log (`ldnote ARGS`, `patchelf ARGS`,
/// `strip FILE`, `FIXUP <output>`, `POSTFIXUP`), one line each.
struct Ran {
    out: Output,
    log: String,
}

impl Ran {
    fn ok(&self) -> bool {
        self.out.status.success()
    }
    fn text(&self) -> String {
        format!(
            "status {}\nstdout:\n{}\nstderr:\n{}\nlog:\n{}",
            self.out.status,
            String::from_utf8_lossy(&self.out.stdout),
            String::from_utf8_lossy(&self.out.stderr),
            self.log
        )
    }
}

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

impl World {
    fn fixup_in_bash(&self, f: &Fixup) -> Ran {
        let dir = tempfile::tempdir_in(&self.root).expect("tempdir");
        let d = dir.path();
        let log = d.join("log");
        let bin = d.join("bin");
        std::fs::create_dir(&bin).expect("mkdir");
        write_exec(
            &bin.join("patchelf"),
            &format!(
                "#!/bin/sh\necho \"patchelf $*\" >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                patchelf_bin().display()
            ),
        );
        let ldnote = d.join("ldnote");
        let real = f.ldnote.clone().unwrap_or_else(|| PathBuf::from(LDNOTE));
        write_exec(
            &ldnote,
            &format!(
                "#!/bin/sh\necho \"ldnote $*\" >> '{}'\nexec '{}' \"$@\"\n",
                log.display(),
                real.display()
            ),
        );
        let hook = std::fs::read_to_string(repo().join("nix/ldnote-fixup-hook.sh"))
            .expect("hook")
            .replace("@ldnote@", &ldnote.to_string_lossy())
            .replace("@glibcVersion@", "");
        std::fs::write(d.join("ldnote-hook.sh"), hook).expect("write");
        std::fs::write(
            d.join("patchelf-hook.sh"),
            "fixupOutputHooks+=('if [ -z \"${dontPatchELF-}\" ]; then patchELF \"$prefix\"; fi')
patchELF() {
    local i
    while IFS= read -r -d $'\\0' i; do
        if [[ \"$i\" =~ .build-id ]]; then continue; fi
        if ! isELF \"$i\"; then continue; fi
        patchelf --shrink-rpath \"$i\" || true
    done < <(find \"$1\" -type f -print0)
}
",
        )
        .expect("write");
        // stdenv's strip.sh, reduced: `strip -S -p` on lib/ and bin/ files, failures ignored.
        std::fs::write(
            d.join("strip-hook.sh"),
            format!(
                "fixupOutputHooks+=(_doStrip)
_doStrip() {{
    local f
    while IFS= read -r -d $'\\0' f; do
        echo \"strip $f\" >> '{log}'
        strip -S -p \"$f\" 2>/dev/null || true
    done < <(find \"$prefix\"/lib \"$prefix\"/bin -type f -print0 2>/dev/null)
}}
",
                log = log.display()
            ),
        )
        .expect("write");
        let list = match f.ld_cache {
            LdCache::FixupOutput => Some("fixupOutputHooks"),
            LdCache::PostFixup => Some("postFixupHooks"),
        };
        if let Some(list) = list {
            let reg = if list == "fixupOutputHooks" {
                "fixupOutputHooks+=('if [ -z \"${dontGenerateLDCache-}\" ]; then generateLDCache \"$prefix\"; fi')"
                    .to_string()
            } else {
                "postFixupHooks+=('if [ -z \"${dontGenerateLDCache-}\" ]; then for o in $outputs; do generateLDCache \"${!o}\"; done; fi')"
                    .to_string()
            };
            std::fs::write(
                d.join("ldcache-hook.sh"),
                format!(
                    "{reg}
generateLDCache() {{
    local i
    while IFS= read -r -d $'\\0' i; do
        if [[ \"$i\" =~ .build-id ]]; then continue; fi
        if ! isELF \"$i\"; then continue; fi
        patchelf --build-resolution-cache \"$i\"
    done < <(find \"$1\" -type f -print0)
}}
"
                ),
            )
            .expect("write");
        }
        let mut stock = vec!["patchelf-hook.sh", "strip-hook.sh"];
        if list.is_some() {
            stock.push("ldcache-hook.sh");
        }
        let mut order: Vec<&str> = stock.clone();
        if f.ldnote_last {
            order.push("ldnote-hook.sh");
        } else {
            order.insert(0, "ldnote-hook.sh");
        }
        let sources: String = order
            .iter()
            .map(|s| format!("source '{}'\n", d.join(s).display()))
            .collect();
        let outputs: Vec<&str> = f.outputs.iter().map(|o| o.0).collect();
        let assigns: String = f
            .outputs
            .iter()
            .map(|(n, p)| format!("{n}='{}'\n", p.display()))
            .collect();
        let ulimit = f
            .stack_kib
            .map(|k| format!("ulimit -s {k}\n"))
            .unwrap_or_default();
        let script = format!(
            r#"set -eu -o pipefail
{ulimit}export PATH='{bin}':"$PATH"
isELF() {{ local fn="$1"; local fd; local magic; exec {{fd}}< "$fn"; read -r -n 4 -u "$fd" magic; exec {{fd}}<&-; [ "$magic" = $'\177ELF' ]; }}
header() {{ echo "$*"; }}
stopNest() {{ :; }}
runHook() {{
    local hooks="$1Hooks[@]" h
    for h in ${{!hooks+"${{!hooks}}"}}; do eval "$h"; done
    if [ -n "${{!1-}}" ]; then eval "${{!1}}"; fi
}}
preFixupHooks=(); fixupOutputHooks=(); postFixupHooks=()
outputs='{outputs}'
{assigns}NIX_STORE='{store}'
{settings}
{sources}
runHook preFixup
for output in $outputs; do
    echo "FIXUP $output" >> '{log}'
    prefix="${{!output}}"
    runHook fixupOutput
done
echo POSTFIXUP >> '{log}'
runHook postFixup
"#,
            bin = bin.display(),
            outputs = outputs.join(" "),
            store = self.store.display(),
            settings = f.settings,
            log = log.display(),
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .env_remove("LDNOTE_DEFER")
            .env_remove("LDNOTE_DISABLE")
            .output()
            .expect("spawn bash");
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        Ran { out, log }
    }
}

/// `ldnote show --json` status of `f` ("noted", "none", ...).
fn note_status(w: &World, f: &Path) -> String {
    let o = run_ok(w.ldnote().args(["show", "--json"]).arg(f));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    v["status"].as_str().unwrap_or_default().to_string()
}

fn rpath_of(f: &Path) -> String {
    let o = run_ok(patchelf().arg("--print-rpath").arg(f));
    String::from_utf8_lossy(&o.stdout).trim_end().to_string()
}

fn dynamic_files(out: &Path) -> Vec<PathBuf> {
    elf_files(out)
        .into_iter()
        .filter(|f| is_dynamic(f))
        .collect()
}

fn tools() -> bool {
    have_all(&["gcc", "bash", "make", "patchelf", "strip", "xargs", "find"])
}

/// dontGenerateLDCache and dontPatchELF: the hook writes no note (the stock hooks write none);
/// dontPatchELF also keeps every run path as linked. Fails before the opt-outs were honoured
/// (the hook noted every file in both cases).
#[test]
fn hook_honours_dont_generate_ld_cache_and_dont_patch_elf() {
    if !tools() {
        return;
    }
    let w = World::new();
    for (setting, shrinks) in [("dontGenerateLDCache=1", true), ("dontPatchELF=1", false)] {
        let out = w.build(&NATIVE, Variant::Ldnote, "base");
        let linked: Vec<(PathBuf, String)> = dynamic_files(&out)
            .into_iter()
            .map(|f| {
                let r = rpath_of(&f);
                (f, r)
            })
            .collect();
        let mut fx = Fixup::new(vec![("out", out.clone())]);
        fx.settings = setting.into();
        let r = w.fixup_in_bash(&fx);
        assert!(r.ok(), "{setting}: {}", r.text());
        assert!(
            !r.log.contains("--build-resolution-cache"),
            "{setting}: {}",
            r.text()
        );
        for (f, before) in &linked {
            assert_ne!(note_status(&w, f), "noted", "{setting}: {}", f.display());
            let now = rpath_of(f);
            if shrinks {
                // Shrunk as patchelf would: a second stock shrink changes nothing.
                let copy = w.root.join("copy");
                std::fs::copy(f, &copy).expect("copy");
                run_ok(patchelf().arg("--shrink-rpath").arg(&copy));
                assert_eq!(rpath_of(&copy), now, "{setting}: {}", f.display());
            } else {
                assert_eq!(&now, before, "{setting}: {}", f.display());
            }
        }
        let prog = out.join("bin/basecheck");
        let o = run_ok(&mut Command::new(&prog));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "base 40\n");
    }
}

/// dontAutoPatchelf: autoPatchelfHook is loaded but will not run, so nothing edits the files
/// after the shrink and the shrink writes the notes (no deferral). patchelfFlags (a string or
/// an array): every patchelf call the hook makes gets them. Both fail before.
#[test]
fn hook_honours_dont_auto_patchelf_and_patchelf_flags() {
    if !tools() {
        return;
    }
    let w = World::new();
    let out = w.build(&NATIVE, Variant::Ldnote, "base");
    let mut fx = Fixup::new(vec![("out", out.clone())]);
    fx.settings = "autoPatchelf() { :; }\ndontAutoPatchelf=1".into();
    let r = w.fixup_in_bash(&fx);
    assert!(r.ok(), "{}", r.text());
    assert!(!r.log.contains("--defer"), "{}", r.text());
    for f in dynamic_files(&out) {
        run_ok(w.ldnote().arg("check").arg(&f));
    }
    assert!(
        r.log
            .lines()
            .any(|l| l.starts_with("ldnote patch --shrink-rpath")),
        "{}",
        r.text()
    );

    for flags in [
        "patchelfFlags=--no-clobber-old-sections",
        "patchelfFlags=(--no-clobber-old-sections)",
    ] {
        let out = w.build(&NATIVE, Variant::Ldnote, "base");
        let mut fx = Fixup::new(vec![("out", out.clone())]);
        fx.settings = flags.into();
        let r = w.fixup_in_bash(&fx);
        assert!(r.ok(), "{}", r.text());
        // patchelf runs on the files ldnote left without a note (here the static program),
        // always with the package's flags.
        let with_flags = r
            .log
            .lines()
            .filter(|l| {
                l.starts_with("patchelf --no-clobber-old-sections --build-resolution-cache")
            })
            .count();
        assert!(with_flags >= 1, "{flags}: {}", r.text());
        assert!(
            !r.log.contains("patchelf --build-resolution-cache"),
            "{flags}: {}",
            r.text()
        );
        for f in dynamic_files(&out) {
            run_ok(w.ldnote().arg("check").arg(&f));
        }
    }
}

/// Two outputs: every ldnote call that writes a note touches files of one output only, after
/// that output's fixup began, and no file is written twice; in every mode. Fails before (with
/// dontPatchELF the per-output fill noted every output at each output's fixup).
#[test]
fn hook_notes_each_output_once_after_its_own_fixup() {
    if !tools() {
        return;
    }
    let w = World::new();
    for setting in ["", "ldnoteDeferNotes=1", "dontPatchELF=1"] {
        let out = w.build(&NATIVE, Variant::Ldnote, "base");
        let lib = w.build(&NATIVE, Variant::Ldnote, "extra");
        let mut fx = Fixup::new(vec![("out", out.clone()), ("lib", lib.clone())]);
        fx.settings = setting.into();
        let r = w.fixup_in_bash(&fx);
        assert!(r.ok(), "{setting}: {}", r.text());
        let mut started: Vec<&Path> = Vec::new();
        let mut written: BTreeMap<String, usize> = BTreeMap::new();
        for l in r.log.lines() {
            if let Some(o) = l.strip_prefix("FIXUP ") {
                started.push(if o == "out" { &out } else { &lib });
                continue;
            }
            let Some(args) = l.strip_prefix("ldnote patch ") else {
                continue;
            };
            if args.contains("--defer") {
                continue;
            }
            let files: Vec<&str> = args.split(' ').filter(|a| a.starts_with('/')).collect();
            for f in &files {
                let own = if f.starts_with(&*out.to_string_lossy()) {
                    &out
                } else {
                    &lib
                };
                assert!(
                    started.contains(&own.as_path()),
                    "{setting}: {f} written before its output's fixup\n{}",
                    r.text()
                );
                *written.entry(f.to_string()).or_default() += 1;
            }
            let outs: std::collections::BTreeSet<bool> = files
                .iter()
                .map(|f| f.starts_with(&*out.to_string_lossy()))
                .collect();
            assert!(outs.len() <= 1, "{setting}: {l}");
        }
        for (f, n) in &written {
            assert_eq!(*n, 1, "{setting}: {f} written {n} times\n{}", r.text());
        }
    }
}

/// Argument limit: 1,500 ELF files with long names under `ulimit -s 256` (an argument limit
/// of 128 KiB) are all shrunk and noted. Fails before (one argv per output: E2BIG, hidden by
/// `|| true`, every file left unshrunk). And an ldnote that dies mid-batch fails the build.
#[test]
fn hook_batches_files_and_reports_a_broken_batch() {
    if !tools() {
        return;
    }
    let w = World::new();
    let out = w.build(&NATIVE, Variant::Ldnote, "base");
    let deep = out.join(format!("lib/{}", "d".repeat(150)));
    std::fs::create_dir_all(&deep).expect("mkdir");
    let util = out.join("lib/libbaseutil.so");
    for i in 0..1500 {
        std::fs::copy(
            &util,
            deep.join(format!("libcopy{i:04}-{}.so", "x".repeat(40))),
        )
        .expect("copy");
    }
    let mut fx = Fixup::new(vec![("out", out.clone())]);
    fx.stack_kib = Some(256);
    let r = w.fixup_in_bash(&fx);
    assert!(r.ok(), "{}", r.text());
    let calls = r
        .log
        .lines()
        .filter(|l| l.starts_with("ldnote patch --shrink-rpath"))
        .count();
    assert!(calls > 1, "expected several batches, got {calls}");
    let copies: Vec<PathBuf> = elf_files(&deep);
    assert_eq!(copies.len(), 1500);
    // Spot checks over the whole range, then `ldnote check` on all of them in one go.
    for f in copies.iter().step_by(149) {
        assert_eq!(note_status(&w, f), "noted", "{}", f.display());
    }
    run_ok(w.ldnote().arg("check").args(&copies));

    // An ldnote killed by a signal mid-way: the build fails instead of shipping unshrunk files.
    let out = w.build(&NATIVE, Variant::Ldnote, "base");
    let dying = w.root.join("dying-ldnote");
    write_exec(
        &dying,
        &format!(
            "#!/bin/sh\ncase \"$*\" in *--shrink-rpath*) kill -9 $$ ;; esac\nexec '{LDNOTE}' \"$@\"\n"
        ),
    );
    let mut fx = Fixup::new(vec![("out", out)]);
    fx.ldnote = Some(dying);
    let r = w.fixup_in_bash(&fx);
    assert!(!r.ok(), "{}", r.text());
    assert!(
        String::from_utf8_lossy(&r.out.stderr).contains("files may be left unprocessed"),
        "{}",
        r.text()
    );
}

/// The generate-ld-cache hook registered in fixupOutputHooks or postFixupHooks, sourced before
/// or after ldnote's, with and without deferred notes: the same finished files every time, and
/// the (strict) stock hook never fails. Fails before (the result depended on the order).
#[test]
fn hook_result_does_not_depend_on_sourcing_order() {
    if !tools() {
        return;
    }
    let w = World::new();
    for setting in ["", "ldnoteDeferNotes=1"] {
        let mut results: Vec<(String, BTreeMap<PathBuf, Vec<u8>>)> = Vec::new();
        for ld_cache in [LdCache::FixupOutput, LdCache::PostFixup] {
            for ldnote_last in [true, false] {
                let out = w.build(&NATIVE, Variant::Ldnote, "base");
                let mut fx = Fixup::new(vec![("out", out.clone())]);
                fx.settings = setting.into();
                fx.ld_cache = ld_cache;
                fx.ldnote_last = ldnote_last;
                let r = w.fixup_in_bash(&fx);
                let what = format!("{setting} {ld_cache:?} ldnote_last={ldnote_last}");
                assert!(r.ok(), "{what}: {}", r.text());
                let files: BTreeMap<PathBuf, Vec<u8>> = elf_files(&out)
                    .into_iter()
                    .map(|f| {
                        let b = std::fs::read(&f).expect("read");
                        (f, b)
                    })
                    .collect();
                for f in dynamic_files(&out) {
                    run_ok(w.ldnote().arg("check").arg(&f));
                }
                results.push((what, files));
            }
        }
        let (first, want) = &results[0];
        for (what, got) in &results[1..] {
            assert_eq!(
                want.keys().collect::<Vec<_>>(),
                got.keys().collect::<Vec<_>>()
            );
            for (f, b) in want {
                assert!(
                    *b == got[f],
                    "{}: differs between `{first}` and `{what}`",
                    f.display()
                );
            }
        }
    }
}

/// A run path with a directory outside the store (where ldnote, with LDNOTE_IMMUTABLE = the
/// store, writes a `?` hint and patchelf an `=` entry) and one inside: the strict stock hook
/// accepts the result (it leaves ldnote's notes alone), the note is ldnote's, the program runs.
/// Fails before (patchelf refused ldnote's note: "already present").
#[test]
fn hook_leaves_ldnote_notes_to_ldnote_for_non_store_run_paths() {
    if !tools() {
        return;
    }
    let w = World::new();
    let out = w.build(&NATIVE, Variant::Ldnote, "base");
    let outside = w.root.join("opt/lib");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(w.root.join("ext.c"), "int ext(void){return 2;}\n").expect("write");
    std::fs::write(
        w.root.join("extprog.c"),
        "#include <stdio.h>\nint ext(void);int base_value(void);\nint main(void){printf(\"%d %d\\n\",ext(),base_value());return 0;}\n",
    )
    .expect("write");
    run_ok(
        Command::new("gcc")
            .args(["-shared", "-fPIC", "-o"])
            .arg(outside.join("libext.so"))
            .arg(w.root.join("ext.c")),
    );
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!(
        "{} -o {}/bin/extprog {} -L{} -lext -L{}/lib -lbase -Wl,-rpath,{}",
        w.cc(&NATIVE),
        out.display(),
        w.root.join("extprog.c").display(),
        outside.display(),
        out.display(),
        outside.display()
    ));
    w.nix_env(&mut c, &NATIVE, Variant::Ldnote, &out, &[]);
    run_ok(&mut c);
    let prog = out.join("bin/extprog");
    let r = w.fixup_in_bash(&Fixup::new(vec![("out", out.clone())]));
    assert!(r.ok(), "{}", r.text());
    let show = run_ok(w.ldnote().arg("show").arg(&prog));
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains(&format!("?{}", outside.display())), "{text}");
    assert!(
        text.contains(&format!("={}/lib/libbase.so.1", out.display())),
        "{text}"
    );
    run_ok(w.ldnote().arg("check").arg(&prog));
    // The difference is real: patchelf would refuse this note, so the hook must not ask it.
    let copy = w.root.join("extprog-copy");
    std::fs::copy(&prog, &copy).expect("copy");
    let o = patchelf()
        .arg("--build-resolution-cache")
        .arg(&copy)
        .output()
        .expect("spawn");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already present"),
        "{o:?}"
    );
    assert!(!r
        .log
        .contains(&format!("--build-resolution-cache {}", prog.display())));
    let o = run_ok(&mut Command::new(&prog));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "2 20\n");
}
