# Sourced (bash) by the test and benchmark scripts: which ldnote they run.
#
# The shipped ldnote is statically linked (README, "Install"): every wrapped link starts it, and a
# dynamically linked one first loads its own libraries (about 0.2 ms of CPU a link, and in a Nix
# store a search of its own run path). `-C target-feature=+crt-static` must not reach the build
# scripts and proc-macros, which the compiler loads as shared objects: with an explicit
# `--target`, `build.rustflags` applies to the target's artifacts only.
#
#   ldnote_static_args   the cargo arguments of that build (an array: LDNOTE_STATIC_ARGS)
#   ldnote_bin           the binary to run: $LDNOTE_BIN when set, else the static release build
#                        (brought up to date first); its directory holds the audit module
#                        (audit/build.sh installs it there)

ldnote_host() { rustc -vV | sed -n 's/^host: //p'; }

ldnote_static_args() {
  LDNOTE_STATIC_ARGS=(--target "$(ldnote_host)" --config 'build.rustflags=["-C", "target-feature=+crt-static", "-C", "relocation-model=static"]')
}

# ldnote_bin ROOT: prints the path, after building the static release binary in ROOT when it is
# the one wanted (cargo does nothing when it is up to date; a binary left from older sources would
# otherwise be tested or measured in place of the current ones).
ldnote_bin() {
  local root=$1
  if [ -n "${LDNOTE_BIN:-}" ]; then
    echo "$LDNOTE_BIN"
    return
  fi
  ldnote_static_args
  (cd "$root" && cargo build --release --locked -q "${LDNOTE_STATIC_ARGS[@]}") >&2 || return 1
  echo "$root/target/$(ldnote_host)/release/ldnote"
}
