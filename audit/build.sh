#!/usr/bin/env bash
# Build the rtld-audit module (audit/) and install it where `ldnote link --audit` looks for it:
#   audit/build.sh                        -> target/release/libldnote-audit.so (beside ldnote)
#   audit/build.sh --target aarch64-linux-gnu
#                                         -> target/audit/aarch64-linux-gnu/libldnote-audit.so
# Cross builds link with Debian's cross compiler (<triple>-gcc) and need the Rust target's
# standard library (`rustup target add aarch64-unknown-linux-gnu`, done by tests/install.sh).
# The last stdout line is `module=PATH`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
triple=
[ "${1:-}" = --target ] && triple=${2:?--target TRIPLE}
args=(--release --locked --manifest-path audit/Cargo.toml)
if [ -z "$triple" ]; then
  cargo build "${args[@]}" >&2
  src=audit/target/release/libldnote_audit.so
  dest=target/release/libldnote-audit.so
else
  case "$triple" in
    aarch64-linux-gnu) rt=aarch64-unknown-linux-gnu ;;
    x86_64-linux-gnu) rt=x86_64-unknown-linux-gnu ;;
    *) echo "audit/build.sh: the module's system calls exist for x86_64 and aarch64 only" >&2; exit 2 ;;
  esac
  cc=$triple-gcc
  command -v "$cc" >/dev/null || { echo "audit/build.sh: $cc missing" >&2; exit 1; }
  cargo build "${args[@]}" --target "$rt" --config "target.$rt.linker=\"$cc\"" >&2
  src=audit/target/$rt/release/libldnote_audit.so
  dest=target/audit/$triple/libldnote-audit.so
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
echo "module=$root/$dest"
