#!/usr/bin/env bash
# The README's test command: installs what the tests need (Debian packages, the patchelf oracle),
# then runs every test. Run as root (apt-get), or with the tools already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/install.sh
hash -r

# Real source packages for tests/nix_fixup.rs (zlib and libpng built with their own build
# systems): Debian's upstream tarballs, fetched once into a cache.
src_cache=${LDNOTE_DEBIAN_SRC:-$HOME/.cache/ldnote/debian-src}
if ! ls "$src_cache"/zlib_*.orig.tar.* "$src_cache"/libpng1.6_*.orig.tar.* >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] || { echo "no zlib/libpng sources in $src_cache (run as root to fetch them)" >&2; exit 1; }
  if ! grep -rqs 'deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    cat >/etc/apt/sources.list.d/ldnote-debian-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update -qq
  fi
  mkdir -p "$src_cache"
  (cd "$src_cache" && apt-get source -qq --download-only zlib libpng1.6 >/dev/null 2>&1)
  ls "$src_cache"/zlib_*.orig.tar.* "$src_cache"/libpng1.6_*.orig.tar.* >/dev/null
fi

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo build --release --locked
cargo test --release --locked -- --test-threads=2
# The note-aware loader end to end (loader/): a missing loader is an error under CI=true, a skip
# otherwise; .ci/run builds it first.
bash tests/loader_e2e.sh
