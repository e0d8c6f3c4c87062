#!/usr/bin/env bash
# Build glibc 2.36 (Debian's glibc-source tarball, upstream code) with ldnote's note reader
# (loader/glibc-2.36-ldcache.patch) into a cache directory, Nix-style: prefix = the build's own
# directory, so ld.so, libc.so.6 and the loader's only system search directory are <dir>/lib.
#
#   loader/build.sh [--target aarch64-linux-gnu]
#
# Output: ${LDNOTE_GLIBC_CACHE:-$HOME/.cache/ldnote}/glibc-2.36-note-<hash> (native x86_64) or
# .../glibc-2.36-note-aarch64-linux-gnu-<hash>; <hash> covers this script and the patch, so a
# changed patch builds a new directory. A finished build (marked by .ldnote-build-complete) is
# reused. The last line on stdout is `ldso=<path of the loader>`. Jobs: LDNOTE_JOBS (default 2).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
target=
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=${2:?--target needs a value}; shift 2 ;;
    --target=*) target=${1#--target=}; shift ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

case "$target" in
  "" | x86_64-linux-gnu)
    [ "$(uname -m)" = x86_64 ] || { echo "build.sh: the native build is for x86_64 hosts" >&2; exit 2; }
    target= ; ldso_name=ld-linux-x86-64.so.2 ;;
  aarch64-linux-gnu) ldso_name=ld-linux-aarch64.so.1 ;;
  *) echo "build.sh: unsupported target $target (x86_64-linux-gnu, aarch64-linux-gnu)" >&2; exit 2 ;;
esac

patch_file=$here/glibc-2.36-ldcache.patch
hash=$(cat "$patch_file" "$0" "$here/../tests/debs.sh" | sha256sum | cut -c1-12)
cache=${LDNOTE_GLIBC_CACHE:-$HOME/.cache/ldnote}
# The native name must not contain "-linux-gnu": tests tell the two apart by that.
out=$cache/glibc-2.36-note-${target:+$target-}$hash
ldso=$out/lib/$ldso_name

if [ -e "$out/.ldnote-build-complete" ] && [ -x "$ldso" ]; then
  echo "build.sh: reusing $out" >&2
  echo "ldso=$ldso"
  exit 0
fi

# Build dependencies (Debian 12). Installed when root; otherwise they must be present.
deps=(build-essential gawk bison texinfo python3 xz-utils patch glibc-source)
if [ -n "$target" ]; then
  deps+=(gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu linux-libc-dev-arm64-cross)
fi
. "$here/../tests/debs.sh"
need_debs build.sh "${deps[@]}"

tarball=/usr/src/glibc/glibc-2.36.tar.xz
[ -r "$tarball" ] || { echo "build.sh: $tarball missing (package glibc-source)" >&2; exit 1; }

work=$out.build
rm -rf "$work" "$out"
mkdir -p "$work"
log=$work/build.log
echo "build.sh: building into $out (log: $log)" >&2
start=$(date +%s)
tar -C "$work" -xf "$tarball"
src=$work/glibc-2.36
patch -d "$src" -p1 --quiet <"$patch_file"

# Only the kernel headers of the target (glibc provides its own headers; the cross
# toolchain's include dir also holds Debian's glibc headers, which must not be picked up).
headers=$work/kernel-headers
mkdir -p "$headers"
if [ -n "$target" ]; then
  kinc=/usr/$target/include
  host_args=(--host="$target" --build=x86_64-linux-gnu CC="$target-gcc" CXX="$target-g++"
    AR="$target-ar" RANLIB="$target-ranlib")
else
  kinc=/usr/include
  host_args=()
  # Debian keeps the arch-specific asm headers in the multiarch directory.
  if [ -d /usr/include/x86_64-linux-gnu/asm ]; then
    ln -s /usr/include/x86_64-linux-gnu/asm "$headers/asm"
  fi
fi
for d in linux asm asm-generic mtd rdma sound video xen; do
  if [ ! -e "$headers/$d" ] && [ -d "$kinc/$d" ]; then ln -s "$kinc/$d" "$headers/$d"; fi
done

mkdir -p "$work/build"
cd "$work/build"
# Minimal: no nscd, profiling, tests, libmvec, libcrypt or timezone tools; -g0 saves time.
"$src/configure" --prefix="$out" "${host_args[@]}" \
  --with-headers="$headers" \
  --enable-kernel=3.2 \
  --disable-werror --disable-nscd --disable-build-nscd --disable-profile \
  --disable-mathvec --disable-crypt --disable-timezone-tools --without-selinux \
  CFLAGS="-O2 -g0" >"$log" 2>&1 || { tail -40 "$log" >&2; exit 1; }
make -j"${LDNOTE_JOBS:-2}" >>"$log" 2>&1 || { tail -60 "$log" >&2; exit 1; }

# Install only what a program needs at run time, Nix-style: <dir>/lib holds the loader and the
# libraries, and is the loader's system search directory (slibdir = libdir = <prefix>/lib).
mkdir -p "$out/lib"
install -m 755 elf/ld.so "$ldso"
install -m 755 libc.so "$out/lib/libc.so.6"
for pair in math/libm.so:libm.so.6 dlfcn/libdl.so:libdl.so.2 nptl/libpthread.so:libpthread.so.0 \
  rt/librt.so:librt.so.1 resolv/libresolv.so:libresolv.so.2; do
  install -m 755 "${pair%%:*}" "$out/lib/${pair#*:}"
done
end=$(date +%s)
echo "build.sh: built in $((end - start)) s (make -j${LDNOTE_JOBS:-2})" >&2
echo "$((end - start))" >"$out/.build-seconds"
cd /
mv "$log" "$out/build.log"
rm -rf "$work"
touch "$out/.ldnote-build-complete"
echo "ldso=$ldso"
