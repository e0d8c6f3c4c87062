#!/usr/bin/env bash
# docs/recipes.md "Autotools and libtool", end to end: autoreconf, configure with
# CC='ldnote link --defer -- gcc', make, `make install` into a prefix that did not exist at link
# time (libtool relinks libgreet), the refresh, then the installed notes, the program, and the
# note-aware loader.
cd "$(dirname "$0")/../.."
. tests/recipes/lib.sh
need autoreconf automake libtoolize make gcc jq
start autotools c autotools
run_recipe "Refreshing notes after install" "Autotools and libtool"
grep -q 'libtool: relink: ldnote link --defer -- gcc' "$work/recipe.log" \
  && ok "libtool relinked libgreet through ldnote at install" \
  || fail "no libtool relink through ldnote in the transcript"
L=$PREFIX/lib
check_installed "$L"
rm -rf "$src"
run_prog "$PREFIX/bin/hello" 42
finish
