#!/usr/bin/env bash
# Builds a current mold from Debian's newer source package (the next suite's, as bookworm ships
# 1.10), cached like the loader build: prints `mold=PATH` (the cached binary) as its last line.
#
#   bench/mold-build.sh [SUITE]     (default: trixie)
#
# The source comes through apt from the machine's own Debian mirror (the URIs of its apt sources,
# with the suite replaced), with a private apt state directory: the system's apt configuration is
# not changed. The upstream tarball (third-party libraries included) is all that is needed; the
# build is upstream's cmake build, the binary kept in $LDNOTE_MOLD_CACHE (~/.cache/ldnote).
set -euo pipefail
suite=${1:-trixie}
cache=${LDNOTE_MOLD_CACHE:-$HOME/.cache/ldnote}
work=$cache/mold-src-$suite
mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial"
# The first non-security Debian mirror of the machine's own sources (deb822 or one-line format).
uri=$({ cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } |
  awk '/^URIs:/ && !/security/ {print $2; exit} /^deb / && !/security/ {print $2; exit}')
[ -n "$uri" ] || { echo "mold-build.sh: no Debian mirror in the apt sources" >&2; exit 1; }
echo "deb-src $uri $suite main" >"$work/apt/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$work/apt/sources.list" -o Dir::Etc::sourceparts=/nonexistent
  -o "Dir::State::Lists=$work/apt/lists" -o "Dir::Cache=$work/apt/cache")
apt-get "${apt_opts[@]}" -qq update >&2
version=$(apt-cache "${apt_opts[@]}" showsrc mold | sed -n 's/^Version: //p' | sort -V | tail -1)
[ -n "$version" ] || { echo "mold-build.sh: no mold source package in $suite" >&2; exit 1; }
upstream=${version%%-*}
upstream=${upstream#*:}
prefix=$cache/mold-$upstream
if [ -x "$prefix/bin/mold" ] && [ -e "$prefix/.ldnote-build-complete" ]; then
  echo "mold=$prefix/bin/mold"
  exit 0
fi
cd "$work"
tarball=mold_$upstream.orig.tar.xz
if [ ! -s "$tarball" ]; then
  # Only the upstream tarball is needed: a mirror missing the packaging files (.dsc, .debian)
  # of a just-updated suite still serves it, so apt's failure on those is not fatal here.
  apt-get "${apt_opts[@]}" source --download-only "mold=$version" >&2 || true
  [ -s "$tarball" ] || { echo "mold-build.sh: could not fetch $tarball" >&2; exit 1; }
fi
# An interrupted build resumes: the tree is extracted once (stamped with the tarball's name), and
# cmake rebuilds only what is missing.
if [ "$(cat "$work/build/.ldnote-extracted" 2>/dev/null)" != "$tarball" ]; then
  rm -rf "$work/build" && mkdir -p "$work/build"
  tar -xf "$tarball" -C "$work/build" --strip-components=1
  echo "$tarball" >"$work/build/.ldnote-extracted"
fi
cmake -S "$work/build" -B "$work/build/out" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$prefix" -DMOLD_USE_SYSTEM_MIMALLOC=OFF -DMOLD_USE_SYSTEM_TBB=OFF \
  -DBUILD_TESTING=OFF >&2
cmake --build "$work/build/out" -j"$(nproc)" >&2
cmake --install "$work/build/out" >&2
"$prefix/bin/mold" --version >&2
touch "$prefix/.ldnote-build-complete"
rm -rf "$work/build"
echo "mold=$prefix/bin/mold"
