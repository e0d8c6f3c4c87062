# Sourced by tests/install.sh and bench/corpus.sh.
# fetch_arm64_closure DIR PACKAGE...: downloads (never installs) the arm64 .debs of PACKAGE... and
# of their whole Depends/Pre-Depends closure into DIR, for the aarch64 corpus (bench/corpus.sh).
# As root it enables the arm64 architecture in dpkg first; otherwise it must already be enabled.
fetch_arm64_closure() {
  local dir=$1 p
  shift
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    [ "$(id -u)" = 0 ] || { echo "arm64 is not a dpkg architecture (run as root)" >&2; return 1; }
    dpkg --add-architecture arm64
    apt-get update -qq
  fi
  mkdir -p "$dir"
  local want=()
  while read -r p; do
    case "$p" in *:arm64) ls "$dir/${p%:arm64}"_*_arm64.deb >/dev/null 2>&1 || want+=("$p") ;; esac
  done < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "${@/%/:arm64}" 2>/dev/null | grep -v '^[ <]' | sort -u)
  [ ${#want[@]} -gt 0 ] || return 0
  # apt's sandbox user may not write DIR: download in a directory it can, then move.
  local tmp
  tmp=$(mktemp -d)
  chmod 777 "$tmp"
  (cd "$tmp" && apt-get download -qq "${want[@]}" 2>/dev/null) || { rm -rf "$tmp"; return 1; }
  mv "$tmp"/*.deb "$dir"/
  rm -rf "$tmp"
}
