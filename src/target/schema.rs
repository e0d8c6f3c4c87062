//! The shape of a target description (`targets/*.toml`): data only, shared with `build.rs`,
//! which reads every file into these types at build time and compiles them into the program as
//! Rust values (no description is parsed when ldnote runs).

use serde::Deserialize;

/// What `open_verify` does with a candidate when a rule fires.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Skipped silently; the search goes on (wrong class or machine).
    Skip,
    /// Loading stops with an error (`_dl_signal_error`); later directories are not tried.
    Fatal,
}

/// An `e_flags` rule: it fires when `(e_flags & mask) == value` (for `reject`) or `!=` (for
/// `require`). Mirrors e.g. Debian's armhf float-ABI check or riscv's float-ABI match.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct FlagRule {
    /// Bits looked at.
    pub mask: u32,
    /// Value compared with.
    pub value: u32,
    /// `reject` (fires on equality) or `require` (fires on inequality).
    pub kind: RuleKind,
    /// What the loader does when it fires.
    pub action: Action,
    /// Why, for messages.
    #[serde(default)]
    pub why: String,
}

/// Sense of a [`FlagRule`].
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// Fires when the masked flags equal `value`.
    Reject,
    /// Fires when the masked flags differ from `value`.
    Require,
}

/// A target's byte order, as `targets/*.toml` spells it (`endian = "little"` or `"big"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ByteOrder {
    /// `ELFDATA2LSB`.
    Little,
    /// `ELFDATA2MSB`.
    Big,
}

/// One target, as described by a file in `targets/`.
#[derive(Clone, Debug, Deserialize)]
pub struct Target {
    /// Short name (`x86_64`, `aarch64`, ...).
    pub name: String,
    /// GNU triples and aliases.
    #[serde(default)]
    pub triples: Vec<String>,
    /// GNU ld emulation names (`-m`).
    #[serde(default)]
    pub emulations: Vec<String>,
    /// 32 or 64.
    pub class: u8,
    /// Byte order (a file with any other value fails the build: `build.rs` and the JSON test).
    pub endian: ByteOrder,
    /// `e_machine`.
    pub machine: u16,
    /// Accepted `EI_OSABI` values.
    pub osabi: Vec<u8>,
    /// `EI_ABIVERSION` must be below this for ELFOSABI_GNU (LIBC_ABI_MAX); 0 for others.
    #[serde(default = "default_abi_max")]
    pub abi_version_max: u8,
    /// `e_flags` rules.
    #[serde(default)]
    pub eflags: Vec<FlagRule>,
    /// The dynamic loader's path.
    #[serde(default)]
    pub dynamic_loader: String,
    /// `$LIB`.
    #[serde(default)]
    pub lib: String,
    /// `$PLATFORM` (empty: none).
    #[serde(default)]
    pub platform: String,
    /// glibc-hwcaps subdirectory names, highest priority first.
    #[serde(default)]
    pub glibc_hwcaps: Vec<String>,
    /// Legacy hwcaps subdirectory names (glibc <= 2.36).
    #[serde(default)]
    pub legacy_hwcaps: Vec<String>,
    /// Default library directories.
    #[serde(default)]
    pub default_dirs: Vec<String>,
    /// Largest page size.
    #[serde(default = "default_page")]
    pub page_size: u64,
    /// Debian's `unsubmitted-ldso-machine-mismatch` patch: when `e_ident` is wrong but the class
    /// is right, a file for another machine is skipped *before* the byte-order/OS-ABI checks
    /// would make it fatal (verified under qemu for every shipped target).
    #[serde(default)]
    pub machine_check_before_ident: bool,
    /// `e_flags` an input object must carry for the target's linker to accept it (ARM EABI
    /// version and float ABI, RISC-V float ABI); used for ldnote's reservation object.
    #[serde(default)]
    pub reserve_eflags: u32,
    /// glibc version of the target image (`major.minor`).
    #[serde(default = "default_glibc")]
    pub glibc: String,
    /// The qemu-user program that runs this target's programs on another machine.
    #[serde(default)]
    pub qemu: String,
    /// Host architectures (as `std::env::consts::ARCH` names them) that run this target's
    /// programs natively (an x86_64 kernel runs i686 programs).
    #[serde(default)]
    pub runs_on: Vec<String>,
}

fn default_abi_max() -> u8 {
    4
}
fn default_page() -> u64 {
    4096
}
fn default_glibc() -> String {
    "2.36".into()
}
