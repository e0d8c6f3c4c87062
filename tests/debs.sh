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
