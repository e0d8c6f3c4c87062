#!/usr/bin/env bash
# docs/recipes.md "CMake, cross (aarch64)", end to end: the toolchain file with
# aarch64-linux-gnu-gcc and the `ldnote link --defer` launcher, install, refresh, then the
# installed notes, the program under qemu-aarch64 with Debian's arm64 loader and with the
# note-aware one.
cd "$(dirname "$0")/../.."
. tests/recipes/lib.sh
need cmake make aarch64-linux-gnu-gcc qemu-aarch64 jq
start cmake-aarch64 c cmake
run_recipe "Refreshing notes after install" "CMake, cross (aarch64)"
L=$PREFIX/lib
check_notes "$PREFIX" "$PREFIX/bin/hello:libgreet.so.1:$L/libgreet.so.1" \
  "$L/libgreet.so.1.0.0:libanswer.so.1:$L/libanswer.so.1"
m=$(od -An -tu2 -j18 -N2 "$PREFIX/bin/hello" | tr -d ' ')
[ "$m" = 183 ] && ok "hello is an aarch64 program" || fail "hello: e_machine $m, not aarch64 (183)"
run_prog "$PREFIX/bin/hello" 42 qemu-aarch64 -L /usr/aarch64-linux-gnu
check_loader LDNOTE_NOTE_LDSO_AARCH64 aarch64-linux-gnu ld-linux-aarch64.so.1 "$PREFIX" \
  "$PREFIX/bin/hello" 42 "$L/libgreet.so.1" "$L/libanswer.so.1" -- \
  qemu-aarch64 -L /usr/aarch64-linux-gnu
rm -rf "$src/build"
run_prog "$PREFIX/bin/hello" 42 qemu-aarch64 -L /usr/aarch64-linux-gnu
finish
