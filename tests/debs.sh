# Sourced by tests/install.sh, loader/build.sh and bench/run.sh: one way to get Debian packages.
# need_debs WHO PACKAGE...: installs the missing ones when root (apt-get), otherwise names them and
# fails, so a non-root run never half-installs.
need_debs() {
  local who=$1 p
  shift
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "$who: missing Debian packages (run as root to install): ${missing[*]}" >&2
    return 1
  fi
}

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
