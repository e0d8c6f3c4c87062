#!/usr/bin/env bash
# docs/recipes.md "Cargo and rustc", end to end: a C library (libgreet, needing libanswer)
# installed in a prefix, a cargo project linking it from its build script, `cargo install` with
# rustc's linker set to a `cc` symlink to ldnote, then the installed notes, the program, and the
# note-aware loader. (`-C linker=ldnote` itself: tests/wrappers.rs
# rustc_linker_ldnote_is_explained_and_a_cc_symlink_works.)
cd "$(dirname "$0")/../.."
. tests/recipes/lib.sh
need cargo rustc gcc jq
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
rm -rf "$src" "$CARGO_TARGET_DIR"
run_prog "$PREFIX/bin/hello" 42
finish
