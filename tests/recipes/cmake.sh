#!/usr/bin/env bash
# docs/recipes.md "CMake", end to end: CMake 3.25 with the linker launcher `ldnote link --defer`,
# `cmake --install` into a new prefix (CMake rewrites the run path in place), the refresh, then
# the installed notes, the program, and the note-aware loader.
cd "$(dirname "$0")/../.."
. tests/recipes/lib.sh
need cmake make gcc jq
start cmake c cmake
run_recipe "Refreshing notes after install" "CMake"
L=$PREFIX/lib
check_notes "$PREFIX" "$PREFIX/bin/hello:libgreet.so.1:$L/libgreet.so.1" \
  "$L/libgreet.so.1.0.0:libanswer.so.1:$L/libanswer.so.1"
run_prog "$PREFIX/bin/hello" 42
check_loader LDNOTE_NOTE_LDSO fc ld-linux-x86-64.so.2 "$PREFIX" "$PREFIX/bin/hello" 42 \
  "$L/libgreet.so.1" "$L/libanswer.so.1"
rm -rf "$src/build"
run_prog "$PREFIX/bin/hello" 42
finish
