#!/usr/bin/env bash
# docs/recipes.md "CMake", end to end: CMake 3.25 with the linker launcher `ldnote link --defer`,
# `cmake --install` into a new prefix (CMake rewrites the run path in place), the refresh, then
# the installed notes, the program, and the note-aware loader; then the same without the refresh
# (the safe failure the doc promises).
cd "$(dirname "$0")/../.."
. tests/recipes/lib.sh
need cmake make gcc jq
start cmake c cmake
run_recipe "Refreshing notes after install" "CMake"
L=$PREFIX/lib
check_installed "$L"
rm -rf "$src/build"
run_prog "$PREFIX/bin/hello" 42

# A forgotten refresh (the same commands without `ldnote_refresh` and `ldnote check`, which
# reports the missing note): the installed files carry no live note, and the note-aware loader
# does the ordinary run-path search and loads the installed libraries.
mkdir "$work/src2"
cp -R tests/recipes/projects/c/. tests/recipes/projects/cmake/. "$work/src2/"
recipe_script "CMake" | grep -v -e '^ldnote_refresh ' -e '^ldnote check ' >"$work/no-refresh.sh"
if (cd "$work/src2" && PREFIX=$work/prefix2 bash -euo pipefail "$work/no-refresh.sh") \
  >"$work/no-refresh.log" 2>&1; then :; else
  cat "$work/no-refresh.log" >&2
  fail "the recipe without the refresh failed"
fi
while IFS= read -r f; do
  st=$(ldnote show --json "$f" | jq -r .status)
  [ "$st" = none ] && ok "no refresh: ${f#"$work"/} has no live note" \
    || fail "no refresh: ${f#"$work"/}: note status $st"
done < <(elf_files "$work/prefix2")
run_prog "$work/prefix2/bin/hello" 42
ldso=${LDNOTE_NOTE_LDSO:-$(cached_ldso fc ld-linux-x86-64.so.2 || true)}
if [ -n "$ldso" ]; then
  out=$(LD_DEBUG=libs "$ldso" "$work/prefix2/bin/hello" 2>"$work/ld-debug2.log") || true
  if [ "$out" = 42 ] && grep -q "trying file=$work/prefix2/lib/libgreet.so.1\$" "$work/ld-debug2.log" \
    && ! grep -q 'trying cached file=' "$work/ld-debug2.log"; then
    ok "no refresh: the note-aware loader searched the run path"
  else
    cat "$work/ld-debug2.log" >&2
    fail "no refresh: the note-aware loader printed [$out] or used a note"
  fi
fi
finish
