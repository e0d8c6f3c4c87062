//! GNU target triples, compared by their parts rather than as whole strings: the same target is
//! spelled `arm-linux-gnueabihf` (Debian), `armv7l-unknown-linux-gnueabihf` (nixpkgs) or
//! `armv7-unknown-linux-gnueabihf` (Rust). What decides the ELF ABI the target loader accepts is
//! the architecture family (class, byte order, machine), the OS and the environment field
//! (`gnueabi` vs `gnueabihf`: the ARM float ABI; `gnuabi64`: MIPS n64; `gnuabielfv2`: PowerPC
//! ELFv2); the vendor field (`unknown`, `pc`, `ibm`) and the architecture revision
//! (`armv5tel`, `armv7l`, `i586`) never change it.

/// The parts of a triple that decide the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parts {
    /// Architecture with aliases and revisions folded (`armv7l` -> `arm`, `i586` -> `i686`).
    pub arch: String,
    /// Operating system (`linux`).
    pub os: String,
    /// Environment / ABI field; `gnu` when absent (`x86_64-linux` is glibc's default ABI).
    pub env: String,
}

/// Split `triple` into its deciding parts: `arch[-vendor]-os[-env]`. `None` when it has no
/// recognised OS field or an empty part.
pub fn parse(triple: &str) -> Option<Parts> {
    let parts: Vec<&str> = triple.split('-').collect();
    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    // The OS is the second field, or the third after a vendor.
    let os_at = (1..parts.len().min(3)).find(|&i| is_os(parts[i]))?;
    let env = match &parts[os_at + 1..] {
        [] => "gnu",
        [e] => e,
        _ => return None,
    };
    Some(Parts {
        arch: fold_arch(parts[0]),
        os: parts[os_at].to_string(),
        env: env.to_string(),
    })
}

fn is_os(p: &str) -> bool {
    matches!(
        p,
        "linux" | "freebsd" | "netbsd" | "openbsd" | "none" | "elf"
    )
}

/// Architecture names that denote the same ELF machine, class and byte order.
fn fold_arch(a: &str) -> String {
    let folded = match a {
        "amd64" => "x86_64",
        "i386" | "i486" | "i586" | "i686" => "i686",
        "arm64" => "aarch64",
        "ppc64le" => "powerpc64le",
        "ppc64" => "powerpc64",
        "riscv64gc" => "riscv64",
        // armv5tel, armv6l, armv7l, armv7a, armv7: little-endian 32-bit ARM; `eb` spellings
        // are big-endian and stay distinct.
        a if a == "arm" || (a.starts_with("armv") && !a.contains("eb")) => "arm",
        a => a,
    };
    folded.to_string()
}

/// Whether two triples name the same target.
pub fn same(a: &str, b: &str) -> bool {
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nixpkgs_debian_and_rust_spellings_agree() {
        for (a, b) in [
            ("armv7l-unknown-linux-gnueabihf", "arm-linux-gnueabihf"),
            ("armv6l-unknown-linux-gnueabihf", "arm-linux-gnueabihf"),
            ("armv5tel-unknown-linux-gnueabi", "arm-linux-gnueabi"),
            ("aarch64-unknown-linux-gnu", "aarch64-linux-gnu"),
            ("x86_64-linux", "x86_64-pc-linux-gnu"),
            ("i586-linux-gnu", "i686-unknown-linux-gnu"),
            ("riscv64gc-unknown-linux-gnu", "riscv64-linux-gnu"),
            ("ppc64le-linux-gnu", "powerpc64le-unknown-linux-gnu"),
            ("s390x-ibm-linux-gnu", "s390x-linux-gnu"),
        ] {
            assert!(same(a, b), "{a} {b}");
        }
    }

    #[test]
    fn the_abi_field_and_byte_order_still_differ() {
        for (a, b) in [
            ("arm-linux-gnueabi", "arm-linux-gnueabihf"),
            (
                "armv7l-unknown-linux-gnueabihf",
                "armv7eb-unknown-linux-gnueabihf",
            ),
            ("x86_64-unknown-linux-musl", "x86_64-unknown-linux-gnu"),
            ("powerpc64-unknown-linux-gnuabielfv2", "powerpc64-linux-gnu"),
            ("powerpc64le-linux-gnu", "powerpc64-linux-gnu"),
            ("x86_64-linux-gnux32", "x86_64-linux-gnu"),
        ] {
            assert!(!same(a, b), "{a} {b}");
        }
    }

    #[test]
    fn malformed_triples_do_not_parse() {
        for t in [
            "",
            "x86_64",
            "x86_64--linux-gnu",
            "x86_64-a-b-linux-gnu",
            "ld",
        ] {
            assert_eq!(parse(t), None, "{t}");
        }
    }
}
