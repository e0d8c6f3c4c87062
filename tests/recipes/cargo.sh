#!/usr/bin/env bash
# docs/recipes.md "Cargo and rustc", end to end: a C library (libgreet, needing libanswer)
# installed in a prefix, a cargo project linking it from its build script, `cargo install` with
# rustc's linker set to a `cc` symlink to ldnote, then the installed notes, the program, and the
# note-aware loader. (`-C linker=ldnote` itself: tests/wrappers.rs
# rustc_linker_ldnote_is_explained_and_a_cc_symlink_works.)
cd "$(dirname "$0")/../.."
. tests/recipes/lib.sh
need cargo rustc gcc jq readelf
start cargo c cargo
L=$PREFIX/lib
mkdir -p "$L"
# The C library the Rust program uses, installed first (plain gcc links noted by ldnote).
gcc -shared -fPIC -Wl,-soname,libanswer.so.1 -o "$L/libanswer.so.1" "$src/answer.c"
ldnote link -- gcc -shared -fPIC -Wl,-soname,libgreet.so.1 -o "$L/libgreet.so.1" "$src/greet.c" \
  -L"$L" -l:libanswer.so.1 -Wl,-rpath,"$L"
ln -s libgreet.so.1 "$L/libgreet.so"
export CARGO_TARGET_DIR=$work/target
run_recipe "Cargo and rustc"
check_notes "$PREFIX" "$PREFIX/bin/hello:libgreet.so.1:$L/libgreet.so.1" \
  "$L/libgreet.so.1:libanswer.so.1:$L/libanswer.so.1"
run_prog "$PREFIX/bin/hello" 42
# The note-aware glibc's default directories are its own prefix's and /lib, /usr/lib, without
# Debian's multiarch directory: give it the libgcc_s every Rust program needs, by path.
loader_args=(--preload "$(gcc -print-file-name=libgcc_s.so.1)")
check_loader LDNOTE_NOTE_LDSO fc ld-linux-x86-64.so.2 "$PREFIX" "$PREFIX/bin/hello" 42 \
  "$L/libgreet.so.1" "$L/libanswer.so.1"

# The prose of the section: `-C link-arg=-B$W` alone links with rustc's own rust-lld (no note);
# with `-C linker-features=-lld` the `ld` of $W (ldnote) runs and notes the program.
W=$XDG_DATA_HOME/ldnote/wrap
ln -sfn "$(command -v ldnote)" "$W/ld"
b_link() { # OUT RUSTC-OPTION...
  local out=$1
  shift
  rustc "$@" -C "link-arg=-B$W" -L "$L" -l dylib=greet -C "link-arg=-Wl,-rpath,$L" \
    -o "$out" "$src/src/main.rs"
}
b_link "$work/b-only"
if [ "$(ldnote show --json "$work/b-only" | jq -r .status)" = none ] \
  && readelf -p .comment "$work/b-only" | grep -q 'Linker: LLD'; then
  ok "-C link-arg=-B\$W alone: rust-lld linked, no note"
else
  fail "-C link-arg=-B\$W alone: expected rust-lld and no note"
fi
b_link "$work/b-nolld" -C linker-features=-lld
got=$(ldnote show --json "$work/b-nolld" | jq -r '.entries[] | select(.soname == "libgreet.so.1") | .paths[]')
[ "$got" = "=$L/libgreet.so.1" ] && ok "-C linker-features=-lld -C link-arg=-B\$W: noted" \
  || fail "-C linker-features=-lld -C link-arg=-B\$W: libgreet.so.1 entry [$got]"
run_prog "$work/b-nolld" 42

rm -rf "$src" "$CARGO_TARGET_DIR"
run_prog "$PREFIX/bin/hello" 42
finish
