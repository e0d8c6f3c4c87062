//! Decisions about a link line that come before the link, pure so that they are tested without
//! spawning anything: which linker the line runs (mold, GNU ld), and the header an input object
//! must have when the target is certain (the reservation is added only then).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::{LinkPlan, ToolKind};
use crate::target::{self, Ident, Target};

/// Whether the line runs GNU ld (BFD): a linker named `ld`, `ld.bfd` (with a triple prefix), or
/// a driver whose last `-fuse-ld=`/`--ld-path=` names it, or that has none (GCC's default).
/// Only GNU ld writes DT_AUDIT (gold, lld and mold have no such option).
pub fn runs_gnu_ld(tool: &OsStr, args: &[OsString], kind: ToolKind) -> bool {
    let base = Path::new(tool).file_name().unwrap_or(tool).as_bytes();
    let base = base.rsplit(|b| *b == b'-').next().unwrap_or(base);
    match kind {
        ToolKind::Linker => matches!(base, b"ld" | b"ld.bfd") || base.ends_with(b"ld.bfd"),
        ToolKind::Driver => {
            let mut fuse = None;
            for a in args {
                let a = a.as_bytes();
                if let Some(v) = a.strip_prefix(b"-fuse-ld=") {
                    fuse = Some(v.to_vec());
                } else if let Some(v) = a.strip_prefix(b"--ld-path=") {
                    let n = v.rsplit(|b| *b == b'/').next().unwrap_or(v).to_vec();
                    fuse = Some(n);
                }
            }
            match fuse {
                None => true,
                Some(f) => matches!(f.as_slice(), b"bfd" | b"ld" | b"ld.bfd"),
            }
        }
    }
}

/// What [`reservation_ident`] may look at besides the line: the header of an input file (an
/// ELF relocatable object, else `None`) and the host's own (ldnote's executable).
pub trait Headers {
    /// The header facts of the ELF relocatable object at `path`, if it is one.
    fn object(&mut self, path: &Path) -> Option<Ident>;
    /// The host's header facts.
    fn host(&mut self) -> Option<Ident>;
}

/// The header an input object must have for the linker to accept it, when it can be known for
/// certain before the link; `None` otherwise (then no reservation is added: a wrong guess would
/// break a link that would have succeeded). In order: an ELF relocatable input (exactly what
/// the linker will see), `-m EMULATION` or a target triple (`--target`, the tool's prefix),
/// and for a native driver the host, switched by `-m32`/`-m64`/`-mx32`. `targets` is asked for
/// the target descriptions only when no input object decides (the usual link has one).
pub fn reservation_ident(
    plan: &LinkPlan,
    kind: ToolKind,
    triple: Option<&OsStr>,
    targets: &dyn Fn() -> Vec<Target>,
    headers: &mut dyn Headers,
) -> Option<Ident> {
    for input in &plan.inputs {
        if let Some(id) = headers.object(Path::new(input)) {
            return Some(id);
        }
    }
    let targets = &targets();
    let from_target = |t: &Target| Ident {
        is_64: t.class == 64,
        big_endian: t.endian.is_big(),
        machine: t.machine,
        e_flags: t.reserve_eflags,
        osabi: 0,
    };
    let emulation = plan.emulation.as_deref().map(OsStr::to_string_lossy);
    let named = plan
        .target
        .as_deref()
        .or(triple)
        .map(OsStr::to_string_lossy);
    if emulation.is_some() || named.is_some() {
        return target::for_link(targets, emulation.as_deref(), named.as_deref()).map(from_target);
    }
    if kind == ToolKind::Linker {
        return None;
    }
    let host = headers.host()?;
    let host_t = target::for_ident(targets, &host)?;
    for f in plan.machine_flags.iter().rev() {
        match f.as_bytes() {
            b"-m32" => {
                let want = if host.machine == object::elf::EM_X86_64 {
                    object::elf::EM_386
                } else {
                    return None;
                };
                return targets
                    .iter()
                    .find(|t| t.machine == want && t.class == 32)
                    .map(from_target);
            }
            b"-m64" => return Some(from_target(host_t)),
            b"-mx32" => return None,
            _ => {}
        }
    }
    Some(from_target(host_t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::elf::{EM_386, EM_AARCH64, EM_X86_64};

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn gnu_ld_is_the_default_and_the_last_choice_wins() {
        let d = ToolKind::Driver;
        assert!(runs_gnu_ld(OsStr::new("gcc"), &[], d));
        assert!(runs_gnu_ld(
            OsStr::new("gcc"),
            &os(&["-fuse-ld=lld", "-fuse-ld=bfd"]),
            d
        ));
        assert!(!runs_gnu_ld(OsStr::new("gcc"), &os(&["-fuse-ld=gold"]), d));
        assert!(!runs_gnu_ld(
            OsStr::new("cc"),
            &os(&["--ld-path=/usr/bin/ld.lld"]),
            d
        ));
        let l = ToolKind::Linker;
        assert!(runs_gnu_ld(
            OsStr::new("/usr/bin/aarch64-linux-gnu-ld"),
            &[],
            l
        ));
        assert!(runs_gnu_ld(OsStr::new("ld.bfd"), &[], l));
        assert!(!runs_gnu_ld(OsStr::new("ld.gold"), &[], l));
    }

    struct Fake {
        object: Option<(&'static str, Ident)>,
        host: Option<Ident>,
    }

    impl Headers for Fake {
        fn object(&mut self, path: &Path) -> Option<Ident> {
            self.object
                .filter(|(p, _)| Path::new(p) == path)
                .map(|(_, id)| id)
        }
        fn host(&mut self) -> Option<Ident> {
            self.host
        }
    }

    fn ident(machine: u16, is_64: bool) -> Ident {
        Ident {
            is_64,
            big_endian: false,
            machine,
            e_flags: 0,
            osabi: 0,
        }
    }

    fn plan(kind: ToolKind, args: &[&str]) -> LinkPlan {
        super::super::plan(kind, &os(args), Path::new("/")).expect("plan")
    }

    #[test]
    fn the_target_is_certain_only_from_an_object_a_name_or_the_native_driver() {
        let targets = target::builtin();
        let all = || targets.clone();
        let host = Some(ident(EM_X86_64, true));
        let mut none = Fake { object: None, host };
        let d = ToolKind::Driver;
        // An input object decides, whatever else the line says.
        let obj = ident(EM_AARCH64, true);
        let mut with_obj = Fake {
            object: Some(("/w/main.o", obj)),
            host,
        };
        let p = plan(d, &["-m32", "/w/main.o", "-o", "/w/a"]);
        assert_eq!(
            reservation_ident(&p, d, None, &all, &mut with_obj),
            Some(obj)
        );
        // The native driver: the host, or its 32-bit sibling under -m32.
        let p = plan(d, &["main.c", "-o", "/w/a"]);
        let got = reservation_ident(&p, d, None, &all, &mut none).expect("host");
        assert_eq!((got.machine, got.is_64), (EM_X86_64, true));
        let p = plan(d, &["-m32", "main.c", "-o", "/w/a"]);
        let got = reservation_ident(&p, d, None, &all, &mut none).expect("-m32");
        assert_eq!((got.machine, got.is_64), (EM_386, false));
        let p = plan(d, &["-mx32", "main.c", "-o", "/w/a"]);
        assert_eq!(reservation_ident(&p, d, None, &all, &mut none), None);
        // A triple prefix names the target.
        let p = plan(d, &["main.c", "-o", "/w/a"]);
        let got = reservation_ident(
            &p,
            d,
            Some(OsStr::new("aarch64-linux-gnu")),
            &all,
            &mut none,
        )
        .expect("triple");
        assert_eq!(got.machine, EM_AARCH64);
        // A bare linker with nothing to go on is never guessed.
        let l = ToolKind::Linker;
        let p = plan(l, &["main.o", "-o", "/w/a"]);
        assert_eq!(reservation_ident(&p, l, None, &all, &mut none), None);
    }
}
