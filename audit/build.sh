#!/usr/bin/env bash
# Build the rtld-audit module (audit/) and install it where `ldnote link --audit` looks for it:
#   audit/build.sh                        -> beside the shipped ldnote (tests/ldnote_bin.sh:
#                                            target/HOST/release/, or beside $LDNOTE_BIN)
#   audit/build.sh --target aarch64-linux-gnu
#                                         -> target/audit/aarch64-linux-gnu/libldnote-audit.so
# TRIPLE is Debian's cross-compiler triple (aarch64-linux-gnu, i686-linux-gnu,
# arm-linux-gnueabihf, arm-linux-gnueabi, riscv64-linux-gnu, powerpc64le-linux-gnu,
# s390x-linux-gnu, mips64el-linux-gnuabi64). Cross builds link with <triple>-gcc and need the
# Rust target's `core` (`rustup target add`, done by tests/install.sh), else a nightly
# toolchain with rust-src. Exit 3: no `core` for the target. The last stdout line is
# `module=PATH`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
triple=
[ "${1:-}" = --target ] && triple=${2:?--target TRIPLE}
args=(--release --locked --manifest-path audit/Cargo.toml)
if [ -z "$triple" ]; then
  cargo build "${args[@]}" >&2
  src=audit/target/release/libldnote_audit.so
  . tests/ldnote_bin.sh
  dest=$(dirname "$(ldnote_bin "$root")")/libldnote-audit.so
else
  # Debian's cross-compiler triple -> the Rust target built with it.
  case "$triple" in
    x86_64-linux-gnu) rt=x86_64-unknown-linux-gnu ;;
    aarch64-linux-gnu) rt=aarch64-unknown-linux-gnu ;;
    i686-linux-gnu) rt=i686-unknown-linux-gnu ;;
    arm-linux-gnueabihf) rt=armv7-unknown-linux-gnueabihf ;;
    arm-linux-gnueabi) rt=arm-unknown-linux-gnueabi ;;
    riscv64-linux-gnu) rt=riscv64gc-unknown-linux-gnu ;;
    powerpc64le-linux-gnu) rt=powerpc64le-unknown-linux-gnu ;;
    s390x-linux-gnu) rt=s390x-unknown-linux-gnu ;;
    mips64el-linux-gnuabi64) rt=mips64el-unknown-linux-gnuabi64 ;;
    *) echo "audit/build.sh: no Rust target known for $triple" >&2; exit 2 ;;
  esac
  cc=$triple-gcc
  command -v "$cc" >/dev/null || { echo "audit/build.sh: $cc missing" >&2; exit 1; }
  # The module needs only `core`. Without a prebuilt one for the target (mips64el is tier 3:
  # rustup has none), it is compiled from source with a nightly toolchain's rust-src.
  tc=() zs=()
  if ! rustup target list --installed 2>/dev/null | grep -qx "$rt"; then
    if rustup +nightly component list --installed 2>/dev/null | grep -q '^rust-src'; then
      tc=(+nightly) zs=(-Zbuild-std=core)
    else
      echo "audit/build.sh: no standard library for $rt: \`rustup target add $rt\`, or a nightly" \
        "toolchain with rust-src to build core from source" >&2
      exit 3
    fi
  fi
  cargo "${tc[@]}" build "${args[@]}" "${zs[@]}" --target "$rt" --config "target.$rt.linker=\"$cc\"" >&2
  src=audit/target/$rt/release/libldnote_audit.so
  dest=$root/target/audit/$triple/libldnote-audit.so
fi
mkdir -p "$(dirname "$dest")"
# A new inode each time: a running program keeps the module it mapped.
install -m 0755 "$src" "$dest.tmp.$$" && mv -f "$dest.tmp.$$" "$dest"
# The module must load nothing of its own (a DT_NEEDED would load a second libc into the audit
# namespace, searched through the program's whole run path).
if readelf -d "$dest" | grep -q NEEDED; then
  echo "audit/build.sh: $dest has DT_NEEDED entries" >&2
  exit 1
fi
echo "module=$dest"
