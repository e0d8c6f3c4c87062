# Shared part of the recipe tests (tests/recipes/*.sh), sourced from the repository root.
#
# A recipe test copies a small real project (tests/recipes/projects/) into a fresh directory, runs
# the ```sh blocks of one section of docs/recipes.md there verbatim (with PREFIX set to an install
# prefix that does not exist yet), then checks what was installed: `ldnote check` and
# `ldnote show` on every installed ELF file, every exact entry inside the prefix, the program's
# output, the note-aware loader's `LD_DEBUG=libs` trace (when a loader built by loader/build.sh is
# available), and the program again after the build tree is gone.
#
# With CI=true a missing tool or loader is an error; otherwise the test is skipped (exit 77) or
# the loader part is, with a message.
set -euo pipefail

root=$PWD
ci=false
[ "${CI:-}" = true ] && ci=true
. "$root/tests/ldnote_bin.sh"
bin=$(ldnote_bin "$root")
# The recipes call `ldnote` by name, as a user who installed it would.
PATH=$(dirname "$bin"):$PATH
export PATH
# Variables that would change ldnote's behaviour in the recipes.
unset LDNOTE_SYSROOT LDNOTE_STRICT LDNOTE_DISABLE LDNOTE_LOG LDNOTE_IMMUTABLE LDNOTE_LINKER \
  LDNOTE_GLIBC LDNOTE_ACTIVE LDNOTE_DEFER LDNOTE_AUDIT

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
ok() { echo "ok: $*"; }

# need TOOL...: every tool on PATH, else exit (an error under CI=true, a skip otherwise).
need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null && continue
    if $ci; then
      echo "FAIL: CI: $t missing (tests/install.sh installs it)" >&2
      exit 1
    fi
    echo "SKIP: $t missing" >&2
    exit 77
  done
}

# recipe_script HEADING...: the ```sh blocks of the docs/recipes.md sections with these `## `
# headings, in document order, as one script.
recipe_script() {
  local h
  for h in "$@"; do
    grep -qxF "## $h" "$root/docs/recipes.md" || {
      echo "no section '## $h' in docs/recipes.md" >&2
      exit 2
    }
  done
  awk -v want="$(printf '%s\n' "$@")" '
    BEGIN { n = split(want, w, "\n"); for (i = 1; i <= n; i++) if (w[i] != "") keep["## " w[i]] = 1 }
    /^## / { on = ($0 in keep) }
    on && /^```sh$/ { code = 1; next }
    code && /^```$/ { code = 0; print ""; next }
    on && code { print }
  ' "$root/docs/recipes.md"
}

# start NAME PROJECT...: a fresh work directory $work holding the projects' files (later ones
# win), $src (where the recipe runs) and $PREFIX (not created).
start() {
  local name=$1 p
  shift
  work=$(mktemp -d "${TMPDIR:-/tmp}/ldnote-recipe-$name.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  src=$work/src
  mkdir -p "$src"
  for p in "$@"; do cp -R "$root/tests/recipes/projects/$p/." "$src/"; done
  export PREFIX=$work/prefix
  # The recipes keep their wrapper directory here (cargo); the reservation cache stays the user's.
  export XDG_DATA_HOME=$work/xdg
  echo "== recipe $name in $src, PREFIX=$PREFIX"
}

# run_recipe HEADING...: run the sections' blocks in $src under `bash -euo pipefail`, with a
# transcript in $work/recipe.log (printed on failure).
run_recipe() {
  recipe_script "$@" >"$work/recipe.sh"
  if (cd "$src" && bash -euo pipefail -x "$work/recipe.sh") >"$work/recipe.log" 2>&1; then
    ok "the recipe ran: $*"
  else
    cat "$work/recipe.log" >&2
    fail "the recipe failed: $*"
    finish
  fi
}

is_elf() { [ "$(od -An -tx1 -N4 "$1" | tr -d ' \n')" = 7f454c46 ]; }

# elf_files DIR: regular ELF files under DIR (not symlinks), one per line.
elf_files() {
  local f
  find "$1" -type f | sort | while IFS= read -r f; do is_elf "$f" && echo "$f"; done
}

# check_notes PREFIX FILE:SONAME:WANT...: `ldnote check` on every installed ELF file; every exact
# (`=`) entry inside PREFIX; FILE's note maps SONAME to exactly `=WANT`.
check_notes() {
  local prefix=$1 f n=0 spec file soname want got
  shift
  while IFS= read -r f; do
    n=$((n + 1))
    if ldnote check "$f" >/dev/null; then ok "ldnote check ${f#"$prefix"/}"; else
      ldnote check "$f" >&2 || true
      fail "ldnote check ${f#"$prefix"/}"
    fi
    ldnote show "$f"
    while IFS= read -r got; do
      case "$got" in
        "=$prefix"/*) ;;
        *) fail "${f#"$prefix"/}: exact entry outside the prefix: $got" ;;
      esac
    done < <(ldnote show --json "$f" | jq -r '.entries[].paths[] | select(startswith("="))')
  done < <(elf_files "$prefix")
  [ "$n" -gt 0 ] || fail "no ELF file installed under $prefix"
  for spec in "$@"; do
    IFS=: read -r file soname want <<<"$spec"
    got=$(ldnote show --json "$file" | jq -r --arg s "$soname" \
      '[.entries[] | select(.soname == $s) | .paths[]] | join(":")')
    if [ "$got" = "=$want" ]; then ok "${file#"$prefix"/}: $soname => =$want"; else
      fail "${file#"$prefix"/}: $soname: expected [=$want], got [$got]"
    fi
  done
}

# cached_ldso SUFFIX LOADER: a finished loader/build.sh output (glibc-2.36-note-SUFFIX*).
cached_ldso() {
  local d found=
  for d in "${LDNOTE_GLIBC_CACHE:-$HOME/.cache/ldnote}"/glibc-2.36-note-$1*; do
    [ -e "$d/.ldnote-build-complete" ] && [ -x "$d/lib/$2" ] && found=$d/lib/$2
  done
  [ -n "$found" ] && echo "$found"
}

# check_loader LDSO_VAR SUFFIX LOADER PREFIX PROG WANT_OUTPUT LIB... [-- RUNNER...]: run PROG with
# the note-aware loader ($LDSO_VAR, else a cached build) under LD_DEBUG=libs: it prints
# WANT_OUTPUT and opens each LIB (a path) from the note (`trying cached file=LIB`), with no
# run-path walk for it. Arguments for the loader itself go in the array loader_args.
loader_args=()
check_loader() {
  local var=$1 suffix=$2 name=$3 prefix=$4 prog=$5 want=$6 ldso lib out
  shift 6
  local libs=() runner=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do libs+=("$1"); shift; done
  [ $# -gt 0 ] && { shift; runner=("$@"); }
  ldso=${!var:-$(cached_ldso "$suffix" "$name" || true)}
  if [ -z "$ldso" ]; then
    if $ci; then fail "CI: no note-aware loader ($var, or loader/build.sh)"; return; fi
    echo "SKIP: no note-aware loader for $name (loader/build.sh; or set $var)" >&2
    return
  fi
  out=$(LD_DEBUG=libs "${runner[@]}" "$ldso" "${loader_args[@]}" "$prog" 2>"$work/ld-debug.log") || true
  if [ "$out" = "$want" ]; then ok "note-aware loader runs ${prog#"$prefix"/}"; else
    cat "$work/ld-debug.log" >&2
    fail "note-aware loader: ${prog#"$prefix"/} printed [$out], expected [$want]"
  fi
  for lib in "${libs[@]}"; do
    if grep -qF "trying cached file=$lib" "$work/ld-debug.log" \
      && ! grep -qE "trying file=.*/$(basename "$lib")\$" "$work/ld-debug.log"; then
      ok "note-aware loader opened $lib from the note"
    else
      grep -F "$(basename "$lib")" "$work/ld-debug.log" >&2 || true
      fail "note-aware loader did not open $lib from the note"
    fi
  done
}

# run_prog PROG WANT [RUNNER...]: PROG prints WANT.
run_prog() {
  local prog=$1 want=$2 out
  shift 2
  out=$("$@" "$prog") || true
  if [ "$out" = "$want" ]; then ok "$prog prints $want"; else
    fail "$prog printed [$out], expected [$want]"
  fi
}

# check_installed LIBDIR: what every native recipe checks of its installed project: the notes
# (bin/hello -> libgreet.so.1, libgreet -> libanswer.so.1, both in LIBDIR), the program's output
# and the note-aware loader taking both libraries from the notes.
check_installed() {
  local L=$1
  check_notes "$PREFIX" "$PREFIX/bin/hello:libgreet.so.1:$L/libgreet.so.1" \
    "$L/libgreet.so.1.0.0:libanswer.so.1:$L/libanswer.so.1"
  run_prog "$PREFIX/bin/hello" 42
  check_loader LDNOTE_NOTE_LDSO fc ld-linux-x86-64.so.2 "$PREFIX" "$PREFIX/bin/hello" 42 \
    "$L/libgreet.so.1" "$L/libanswer.so.1"
}

finish() {
  if [ "$failures" -gt 0 ]; then
    echo "recipe test: $failures failure(s)" >&2
    exit 1
  fi
  echo "recipe test: all checks passed"
  exit 0
}
