#!/usr/bin/env bash
# docs/recipes.md "CMake, staged install", end to end: `cmake --install` with DESTDIR, the refresh
# with the staging directory as sysroot, then the staged tree copied to its prefix (what a
# package install does) and checked there: the installed notes, the program, the note-aware
# loader.
cd "$(dirname "$0")/../.."
. tests/recipes/lib.sh
need cmake make gcc jq
start cmake-destdir c cmake
run_recipe "Refreshing notes after install" "CMake, staged install"
[ ! -e "$PREFIX" ] && ok "nothing installed outside the staging directory" \
  || fail "$PREFIX exists before the staged tree is copied there"
cp -a "$src/stage$PREFIX" "$PREFIX"
L=$PREFIX/lib
check_installed "$L"
rm -rf "$src"
run_prog "$PREFIX/bin/hello" 42
finish
