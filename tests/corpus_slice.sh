#!/usr/bin/env bash
# A slice of the distribution-scale proof (bench/corpus.sh --quick): 20 real Debian x86_64
# programs (tests/corpus/native.txt: C++, Python, Perl, $ORIGIN, private library directories,
# programs with dozens of libraries) and 6 real Debian arm64 programs under qemu-aarch64
# (tests/corpus/aarch64.txt), each re-laid out Nix-style with its library closure, noted by
# `ldnote patch`, and run with Debian's stock loader and the note-aware loader. It fails on any
# unexplained difference: loaded objects, output, exit status, `ldnote explain`'s exact
# prediction of every start-up call, patchelf 0.19.3's descriptor, `ldnote check`, and bytes
# changed by a second `ldnote patch` (bench/corpus.py lists the checks).
# Packages: tests/install.sh (the arm64 .debs are downloaded, not installed). Loaders as in
# tests/loader_e2e.sh; with CI=true anything missing is an error.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d /tmp/ldnote-corpus-slice.XXXXXX)
chmod 755 "$out"
if bash bench/corpus.sh --quick --out "$out"; then
  for f in "$out"/corpus-*.md; do [ -e "$f" ] && sed -n '1,12p' "$f"; done
  rm -rf "$out"
  echo "corpus slice: all passed"
else
  for f in "$out"/corpus-*.md; do [ -e "$f" ] && cat "$f"; done
  echo "corpus slice: FAILED (layout and runs kept in $out)" >&2
  exit 1
fi
