#!/usr/bin/env bash
# docs/recipes.md "Meson", end to end: Meson 1.0 with ldnote in front of the compiler (native
# file), `meson install` into a new prefix (Meson rewrites its padded run path in place), the
# refresh, then the installed notes, the program, and the note-aware loader.
cd "$(dirname "$0")/../.."
. tests/recipes/lib.sh
need meson ninja gcc python3 jq
start meson c meson
run_recipe "Refreshing notes after install" "Meson"
# Meson picks the library directory (lib/<multiarch triple> on Debian).
L=$(dirname "$(find "$PREFIX" -name libanswer.so.1.0.0)")
check_installed "$L"
rm -rf "$src/build"
run_prog "$PREFIX/bin/hello" 42
finish
