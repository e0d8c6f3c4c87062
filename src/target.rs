//! Targets as data (`targets/*.toml`), and the target loader's acceptance test for a candidate
//! file (glibc `open_verify` in elf/dl-load.c, plus each port's `elf_machine_matches_host`).

mod schema;
pub mod triple;

/// One compiled-in target description (`build.rs` writes the table, [`EMBEDDED`]).
pub(crate) struct Embedded {
    /// Its file in `targets/` (read by the test that holds the table to the files).
    #[cfg_attr(not(test), allow(dead_code))]
    file: &'static str,
    /// The header facts it can match: ELF class (32, 64), byte order, `e_machine`. A link
    /// builds only the descriptions its output's header can match.
    class: u8,
    big_endian: bool,
    machine: u16,
    /// Builds the description.
    make: fn() -> Target,
}

include!(concat!(env!("OUT_DIR"), "/targets.rs"));

pub use schema::{Action, ByteOrder, FlagRule, RuleKind, Target};

impl ByteOrder {
    /// The same byte order as `object` names it.
    pub fn endianness(self) -> object::Endianness {
        match self {
            ByteOrder::Little => object::Endianness::Little,
            ByteOrder::Big => object::Endianness::Big,
        }
    }

    /// Whether this is big-endian (`EI_DATA` = `ELFDATA2MSB`).
    pub fn is_big(self) -> bool {
        self == ByteOrder::Big
    }
}

/// Every embedded target (`targets/*.toml`, compiled in by `build.rs`), built once per process
/// and cached (a link may ask twice: link plan, then noting).
pub fn builtin() -> Vec<Target> {
    BUILT.get_or_init(build_embedded).clone()
}

static BUILT: std::sync::OnceLock<Vec<Target>> = std::sync::OnceLock::new();

fn build_embedded() -> Vec<Target> {
    EMBEDDED.iter().map(|e| (e.make)()).collect()
}

/// The embedded target whose loader accepts objects with header `id` ([`for_ident`] over
/// [`builtin`]), building only the descriptions of that class, byte order and machine unless
/// the whole table is built already: a link needs one target.
pub fn builtin_for_ident(id: &Ident) -> Option<Target> {
    if let Some(all) = BUILT.get() {
        return for_ident(all, id).cloned();
    }
    build_for_ident(id)
}

/// [`builtin_for_ident`] without the cache: builds the candidates of `id`'s header facts.
fn build_for_ident(id: &Ident) -> Option<Target> {
    EMBEDDED
        .iter()
        .filter(|e| {
            (e.class == 64) == id.is_64 && e.big_endian == id.big_endian && e.machine == id.machine
        })
        .map(|e| (e.make)())
        .find(|t| t.matches(id))
}

/// The header facts of the object being noted: the loader that will load its dependencies
/// runs with exactly this class, byte order and machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Ident {
    /// ELFCLASS64.
    pub is_64: bool,
    /// ELFDATA2MSB.
    pub big_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    /// `e_flags`.
    pub e_flags: u32,
    /// `EI_OSABI`.
    pub osabi: u8,
}

impl Ident {
    /// The byte order, as `object` names it.
    pub fn endian(&self) -> object::Endianness {
        crate::header::byte_order(self.big_endian)
    }
}

impl Target {
    /// Whether this target describes objects with `id`'s class, byte order and machine.
    pub fn matches(&self, id: &Ident) -> bool {
        self.machine == id.machine
            && (self.class == 64) == id.is_64
            && self.endian.is_big() == id.big_endian
            && self
                .eflags
                .iter()
                .all(|r| r.action != Action::Skip || !r.fires(id.e_flags))
    }

    /// Whether `(major, minor)` of this target's glibc is at most 2.36 (legacy hwcaps probed).
    pub fn has_legacy_hwcaps(&self) -> bool {
        glibc_has_legacy_hwcaps(&self.glibc)
    }
}

/// Whether a loader of glibc `version` (`X.Y`) still searches legacy hwcaps subdirectories
/// (removed after 2.36).
pub fn glibc_has_legacy_hwcaps(version: &str) -> bool {
    let mut it = version.split('.').map(|x| x.parse::<u32>().unwrap_or(0));
    let (ma, mi) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (ma, mi) <= (2, 36)
}

impl FlagRule {
    fn fires(&self, flags: u32) -> bool {
        let eq = flags & self.mask == self.value;
        match self.kind {
            RuleKind::Reject => eq,
            RuleKind::Require => !eq,
        }
    }
}

/// Find the target for an output's header; `None` when no target file describes it.
pub fn for_ident<'a>(targets: &'a [Target], id: &Ident) -> Option<&'a Target> {
    targets.iter().find(|t| t.matches(id))
}

/// The target a GNU triple names, compared by its parts ([`triple::same`]): nixpkgs'
/// `armv7l-unknown-linux-gnueabihf` is Debian's `arm-linux-gnueabihf`.
pub fn by_triple<'a>(targets: &'a [Target], name: &str) -> Option<&'a Target> {
    let want = triple::parse(name)?;
    targets.iter().find(|t| {
        t.triples
            .iter()
            .any(|x| triple::parse(x).is_some_and(|p| p == want))
    })
}

/// A target by its short name (`armhf`) or by a triple.
pub fn by_name<'a>(targets: &'a [Target], name: &str) -> Option<&'a Target> {
    targets
        .iter()
        .find(|t| t.name == name)
        .or_else(|| by_triple(targets, name))
}

/// The target of a link from its GNU ld emulation (`-m`) and the triple it names (`--target`,
/// or the linker's `<triple>-ld` name). An emulation several targets share (ARM's
/// `armelf_linux_eabi` is both armel's and armhf's: the float ABI is not part of it) decides only
/// together with a triple among them; alone it is not certain, and `None` is returned.
pub fn for_link<'a>(
    targets: &'a [Target],
    emulation: Option<&str>,
    triple: Option<&str>,
) -> Option<&'a Target> {
    let named = triple.and_then(|t| by_triple(targets, t));
    let Some(e) = emulation else {
        return named;
    };
    let mut with_emulation = targets
        .iter()
        .filter(|t| t.emulations.iter().any(|x| x == e));
    let first = with_emulation.next()?;
    match with_emulation.next() {
        None => Some(first),
        Some(_) => named.filter(|n| n.emulations.iter().any(|x| x == e)),
    }
}

/// The loader's rules for a candidate file, derived from the requesting object's header and,
/// when known, its target's extra rules.
#[derive(Clone, Debug)]
pub struct Acceptance {
    /// Header facts of the requesting object.
    pub id: Ident,
    /// Accepted OS ABI values.
    pub osabi: Vec<u8>,
    /// `LIBC_ABI_MAX`.
    pub abi_version_max: u8,
    /// e_flags rules.
    pub eflags: Vec<FlagRule>,
    /// See [`Target::machine_check_before_ident`].
    pub machine_check_before_ident: bool,
}

impl Acceptance {
    /// Rules for objects like `id`, from `target` when one is known (else SYSV/GNU, no flags).
    pub fn new(id: Ident, target: Option<&Target>) -> Self {
        match target {
            Some(t) => Acceptance {
                id,
                osabi: t.osabi.clone(),
                abi_version_max: t.abi_version_max,
                eflags: t.eflags.clone(),
                machine_check_before_ident: t.machine_check_before_ident,
            },
            None => Acceptance {
                id,
                osabi: vec![0, 3],
                abi_version_max: 4,
                eflags: Vec::new(),
                machine_check_before_ident: false,
            },
        }
    }
}

/// The verdict of `open_verify` on a candidate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Verdict {
    /// The loader would load it.
    Accept,
    /// The loader skips it silently and goes on searching.
    Skip(String),
    /// The loader stops with this error.
    Fatal(String),
}

/// Bytes of the header needed by [`verify`] (the loader reads 832; we need the Ehdr).
pub const HEAD_LEN: usize = 64;

/// Decide as glibc 2.36 `open_verify` would, from the first bytes of the candidate.
pub fn verify(head: &[u8], acc: &Acceptance) -> Verdict {
    use object::elf;
    let ehdr_len = if acc.id.is_64 { 64 } else { 52 };
    if head.len() < ehdr_len {
        return Verdict::Fatal("file too short".into());
    }
    // Every class's header starts with the same `e_ident`; 52 bytes (Elf32_Ehdr) are present.
    let Ok((hdr, _)) = object::pod::from_bytes::<elf::FileHeader32<object::Endianness>>(head)
    else {
        return Verdict::Fatal("file too short".into());
    };
    let id = &hdr.e_ident;
    let want_class = if acc.id.is_64 {
        elf::ELFCLASS64
    } else {
        elf::ELFCLASS32
    };
    let want_data = if acc.id.big_endian {
        elf::ELFDATA2MSB
    } else {
        elf::ELFDATA2LSB
    };
    let osabi = id.os_abi;
    let abiv = id.abi_version;
    let abiv_ok = abiv == 0 || (osabi == elf::ELFOSABI_GNU && abiv < acc.abi_version_max);
    if id.magic != elf::ELFMAG {
        return Verdict::Fatal("invalid ELF header".into());
    }
    if id.class != want_class {
        return Verdict::Skip("wrong ELF class".into());
    }
    let Some(f) = crate::header::fields(head, acc.id.is_64, acc.id.endian()) else {
        return Verdict::Fatal("file too short".into());
    };
    let (e_type, e_machine, e_version, e_flags, e_phentsize) =
        (f.e_type, f.e_machine, f.e_version, f.e_flags, f.e_phentsize);
    let ident_ok = id.data == want_data
        && id.version == elf::EV_CURRENT
        && acc.osabi.contains(&osabi)
        && abiv_ok
        && id.padding.iter().all(|b| *b == 0);
    if !ident_ok && acc.machine_check_before_ident {
        if e_machine != acc.id.machine {
            return Verdict::Skip(format!("wrong machine ({e_machine})"));
        }
        if let Some(r) = acc
            .eflags
            .iter()
            .find(|r| r.action == Action::Skip && r.fires(e_flags))
        {
            return Verdict::Skip(r.why.clone());
        }
    }
    if id.data != want_data {
        let which = if acc.id.big_endian { "big" } else { "little" };
        return Verdict::Fatal(format!("ELF file data encoding not {which}-endian"));
    }
    if id.version != elf::EV_CURRENT {
        return Verdict::Fatal("ELF file version ident does not match current one".into());
    }
    if !acc.osabi.contains(&osabi) {
        return Verdict::Fatal("ELF file OS ABI invalid".into());
    }
    if !abiv_ok {
        return Verdict::Fatal("ELF file ABI version invalid".into());
    }
    if id.padding.iter().any(|b| *b != 0) {
        return Verdict::Fatal("nonzero padding in e_ident".into());
    }
    if e_version != u32::from(elf::EV_CURRENT) {
        return Verdict::Fatal("ELF file version does not match current one".into());
    }
    if e_machine != acc.id.machine {
        return Verdict::Skip(format!("wrong machine ({e_machine})"));
    }
    for r in &acc.eflags {
        if r.fires(e_flags) {
            let why = if r.why.is_empty() {
                format!("e_flags {e_flags:#x}")
            } else {
                r.why.clone()
            };
            return match r.action {
                Action::Skip => Verdict::Skip(why),
                Action::Fatal => Verdict::Fatal(why),
            };
        }
    }
    if e_type != elf::ET_DYN && e_type != elf::ET_EXEC {
        return Verdict::Fatal("only ET_DYN and ET_EXEC can be loaded".into());
    }
    let want_phent = if acc.id.is_64 { 56 } else { 32 };
    if e_phentsize != want_phent {
        return Verdict::Fatal("ELF file's phentsize not the expected size".into());
    }
    Verdict::Accept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_targets_are_built() {
        let t = builtin();
        assert!(t.iter().any(|t| t.name == "x86_64"));
    }

    /// The lazy lookup (only the descriptions the header facts allow) picks what the lookup
    /// over the whole table picks, for every target's own header and its `e_flags` variants.
    #[test]
    fn lazy_lookup_equals_the_whole_table() {
        let all = builtin();
        for t in &all {
            for e_flags in [0, t.reserve_eflags, 0x400, 0x5000_0400, 0x0500_0000, 0x4] {
                let id = Ident {
                    is_64: t.class == 64,
                    big_endian: t.endian.is_big(),
                    machine: t.machine,
                    e_flags,
                    osabi: 0,
                };
                let lazy = build_for_ident(&id).map(|t| t.name);
                let whole = for_ident(&all, &id).map(|t| t.name.clone());
                assert_eq!(lazy, whole, "{} e_flags {e_flags:#x}", t.name);
            }
        }
        let none = Ident {
            is_64: true,
            big_endian: false,
            machine: 0xffff,
            e_flags: 0,
            osabi: 0,
        };
        assert_eq!(build_for_ident(&none).map(|t| t.name), None);
    }

    #[test]
    fn embedded_targets_equal_the_toml_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("targets");
        assert!(!EMBEDDED.is_empty());
        for e in EMBEDDED {
            let text = std::fs::read_to_string(dir.join(e.file)).expect("target file");
            let from_toml: Target = toml::from_str(&text).expect("toml");
            let built = (e.make)();
            assert_eq!(format!("{from_toml:?}"), format!("{built:?}"), "{}", e.file);
            assert_eq!(
                (e.class, e.big_endian, e.machine),
                (built.class, built.endian.is_big(), built.machine),
                "{}: header facts",
                e.file
            );
        }
        let on_disk = std::fs::read_dir(&dir)
            .expect("targets/")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "toml"))
            })
            .count();
        assert_eq!(on_disk, EMBEDDED.len());
    }

    #[test]
    fn nixpkgs_triples_name_their_targets() {
        let t = builtin();
        for (triple, want) in [
            ("armv7l-unknown-linux-gnueabihf", "armhf"),
            ("armv6l-unknown-linux-gnueabihf", "armhf"),
            ("armv5tel-unknown-linux-gnueabi", "armel"),
            ("aarch64-unknown-linux-gnu", "aarch64"),
            ("x86_64-unknown-linux-gnu", "x86_64"),
            ("i686-unknown-linux-gnu", "i686"),
            ("riscv64-unknown-linux-gnu", "riscv64"),
            ("powerpc64le-unknown-linux-gnu", "ppc64le"),
            ("s390x-unknown-linux-gnu", "s390x"),
        ] {
            assert_eq!(by_triple(&t, triple).map(|t| t.name.as_str()), Some(want));
        }
        for other in [
            "x86_64-unknown-linux-musl",
            "armv7eb-unknown-linux-gnueabihf",
        ] {
            assert!(by_triple(&t, other).is_none(), "{other}");
        }
        assert_eq!(by_name(&t, "armhf").map(|t| t.name.as_str()), Some("armhf"));
    }

    #[test]
    fn a_shared_emulation_needs_a_triple() {
        let t = builtin();
        let name = |e, tr| for_link(&t, e, tr).map(|t| t.name.clone());
        assert_eq!(name(Some("armelf_linux_eabi"), None), None);
        for (tr, want) in [
            ("arm-linux-gnueabihf", "armhf"),
            ("armv7l-unknown-linux-gnueabihf", "armhf"),
            ("arm-linux-gnueabi", "armel"),
        ] {
            assert_eq!(
                name(Some("armelf_linux_eabi"), Some(tr)).as_deref(),
                Some(want)
            );
        }
        // A triple of another target does not make a shared emulation certain.
        assert_eq!(
            name(Some("armelf_linux_eabi"), Some("aarch64-linux-gnu")),
            None
        );
        // An emulation of one target decides alone, as before.
        assert_eq!(name(Some("aarch64linux"), None).as_deref(), Some("aarch64"));
        assert_eq!(
            name(None, Some("aarch64-unknown-linux-gnu")).as_deref(),
            Some("aarch64")
        );
        assert_eq!(
            name(Some("no_such_emulation"), Some("aarch64-linux-gnu")),
            None
        );
    }

    #[test]
    fn builtin_targets_cached_equal_a_fresh_build() {
        let fresh = build_embedded();
        for _ in 0..2 {
            let cached = builtin();
            assert_eq!(format!("{cached:?}"), format!("{fresh:?}"));
        }
    }
}
