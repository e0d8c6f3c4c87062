#!/usr/bin/env bash
# End-to-end test of the note-aware loader (loader/): a program needing N libraries (default 40)
# from N RUNPATH directories, plus the loader's own libc in its run path (Nix layout), linked
# through `ldnote link`, run with the loader built by loader/build.sh.
#   (a) it loads the same files as without the note (stock behaviour), as PT_INTERP and as
#       `ld.so PROGRAM`, and as Debian's stock loader;
#   (b) LD_LIBRARY_PATH still overrides the note;
#   (c) a removed library falls back to the RUNPATH walk (found in a later directory), and a
#       library gone everywhere fails with the stock message;
#   (d) the failing openat/newfstatat counts equal `ldnote explain` (stock and note);
#   (e) notes made stale by run-path rewrites are not acted on (tests/loader_stale.sh).
# Then the same for aarch64 under qemu-aarch64 (qemu -strace counts, LD_DEBUG `trying` lines).
#
# Loaders: LDNOTE_NOTE_LDSO / LDNOTE_NOTE_LDSO_AARCH64, else a finished loader/build.sh output in
# ${LDNOTE_GLIBC_CACHE:-$HOME/.cache/ldnote}. With CI=true a missing loader or tool is an error;
# locally the missing part is skipped with a message. LDNOTE_E2E_AARCH64=0 skips aarch64.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. tests/nix_layout.sh
. tests/loader_stale.sh
e2e_start

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
check_eq() { # what expected actual
  if [ "$2" = "$3" ]; then echo "ok: $1"; else fail "$1: expected [$2], got [$3]"; fi
}
need() { # tool...: missing is an error in CI, a skip locally (returns 1)
  for t in "$@"; do
    if ! command -v "$t" >/dev/null; then
      if $ci; then
        echo "FAIL: CI: $t missing" >&2
        exit 1
      fi
      echo "SKIP: $t missing" >&2
      return 1
    fi
  done
}
# The finished loader/build.sh output for the current patch and script (the hash build.sh
# computes): an older build, without the current reader rules, must not be picked up.
# $1 = "" (native) or "aarch64-linux-gnu-", $2 = loader name.
cached_ldso() {
  local cache=${LDNOTE_GLIBC_CACHE:-$HOME/.cache/ldnote} hash d
  hash=$(cat loader/glibc-2.36-ldcache.patch loader/build.sh tests/debs.sh | sha256sum | cut -c1-12)
  d=$cache/glibc-2.36-note-$1$hash
  [ -e "$d/.ldnote-build-complete" ] && [ -x "$d/lib/$2" ] && echo "$d/lib/$2"
}
# Failing openat/newfstatat after the first execve in an `strace -f -o` log.
strace_fails() {
  awk '/execve\(/ { on = 1 } on && /(openat|newfstatat)\(/ && / = -1 E/ { n++ } END { print n + 0 }' "$1"
}
# Failing access() calls (the loader's one /etc/ld.so.preload probe), reported beside them.
access_fails() {
  awk '/execve\(/ { on = 1 } on && /access\(/ && / = -1 E/ { n++ } END { print n + 0 }' "$1"
}
# Same for `qemu-aarch64 -strace` output (guest calls: `PID openat(...) = -1 errno=2 (...)`).
qemu_strace_fails() {
  grep -Ec '^[0-9]+ (openat|newfstatat)\(.* = -1 ' "$1" || true
}
json_fails() { # explain JSON file, run (stock|note)
  jq -r ".$2.totals | .openat_fail + .stat_fail" "$1"
}
json_cached() { # the `=` entries the prediction opens (`trying cached file=` lines)
  jq -r ".$2.trace[] | select(.stage == \"note_exact\" and .call == \"openat\") | .path" "$1"
}
json_resolved() { # name => path of every loaded library
  jq -r ".$2.searches[] | select(.result == \"loaded\") | \"\(.name) => \(.path)\"" "$1"
}
# From LD_DEBUG=libs output: the `trying file=` paths, the `trying cached file=` paths, the
# libraries initialised (`calling init:`, sorted).
dbg_trying() { sed -n 's/^ *[0-9]*:\t  trying file=//p' "$1"; }
dbg_cached() { sed -n 's/^ *[0-9]*:\t  trying cached file=//p' "$1"; }
dbg_init() { sed -n 's/^ *[0-9]*:\t\{1,\}calling init: //p' "$1" | sort; }
# The same without the loader itself (Debian's and ours have different paths).
dbg_libs() { dbg_init "$1" | grep -v '/ld-linux-'; }

native() {
  local ldso=${LDNOTE_NOTE_LDSO:-}
  [ -n "$ldso" ] || ldso=$(cached_ldso '' ld-linux-x86-64.so.2) || true
  if [ -z "$ldso" ]; then
    $ci && { echo "FAIL: CI: no note-aware loader (LDNOTE_NOTE_LDSO unset, no finished loader/build.sh output)" >&2; exit 1; }
    echo "SKIP x86_64: no note-aware loader (run loader/build.sh)" >&2
    return 0
  fi
  need gcc strace jq || return 0
  local libdir t
  libdir=$(dirname "$ldso")
  t=$(mktemp -d /tmp/ldnote-loader-e2e.XXXXXX)
  echo "== x86_64: $N libraries in $N RUNPATH dirs, loader $ldso, scratch $t"
  make_libs "$t" gcc
  mapfile -t args < <(link_args "$t" "$libdir" "$ldso")
  "$ldnote" link -- gcc -o "$t/prog" "${args[@]}"
  # The same program without the note: what the loader does without it (stock glibc 2.36).
  gcc -o "$t/prog-plain" "${args[@]}"
  # grep reads a captured string: `cmd | grep -q` under pipefail fails when cmd gets SIGPIPE.
  grep -q 'NixOS' <<<"$(readelf -n "$t/prog")" || fail "prog carries no note"
  grep -q 'NixOS' <<<"$(readelf -n "$t/prog-plain")" && fail "prog-plain carries a note"
  cd "$t"

  # (a) Same files: note-aware loader as PT_INTERP, as `ld.so PROGRAM`, the plain program, and
  # Debian's stock loader (same glibc version; libc comes from the run path).
  LD_DEBUG=libs ./prog >out.note 2>dbg.note || fail "prog failed"
  LD_DEBUG=libs "$ldso" ./prog >out.ldso 2>dbg.ldso || fail "ld.so prog failed"
  LD_DEBUG=libs ./prog-plain >out.plain 2>dbg.plain || fail "prog-plain failed"
  LD_DEBUG=libs /lib64/ld-linux-x86-64.so.2 ./prog >out.debian 2>dbg.debian || fail "Debian ld.so prog failed"
  check_eq "program output" "$(expected_sum)" "$(cat out.note)"
  check_eq "libraries initialised: $((N + 1)) (N + libc)" "$((N + 1))" "$(dbg_libs dbg.note | wc -l)"
  check_eq "(a) same files, note vs no note" "$(dbg_init dbg.plain)" "$(dbg_init dbg.note)"
  check_eq "(a) same files, note as PT_INTERP vs ld.so PROGRAM" "$(dbg_init dbg.note)" "$(dbg_init dbg.ldso)"
  check_eq "(a) same files, note-aware vs Debian's stock ld.so" "$(dbg_libs dbg.debian)" "$(dbg_libs dbg.note)"
  check_eq "(a) the note-aware loader tries no RUNPATH file" "0" "$(dbg_trying dbg.note | wc -l)"
  check_eq "(a) one trying cached file= line per library" "$((N + 1))" "$(dbg_cached dbg.note | wc -l)"

  # (d) Failing openat/newfstatat: strace vs explain.
  strace -f -qq -e trace=execve,openat,newfstatat,access -o st.note ./prog >/dev/null
  strace -f -qq -e trace=execve,openat,newfstatat -o st.ldso "$ldso" ./prog >/dev/null
  strace -f -qq -e trace=execve,openat,newfstatat,access -o st.plain ./prog-plain >/dev/null
  strace -f -qq -e trace=execve,openat,newfstatat -o st.debian /lib64/ld-linux-x86-64.so.2 ./prog >/dev/null
  "$ldnote" explain --json --loader note ./prog >ex.note.json || true
  "$ldnote" explain --json ./prog-plain >ex.plain.json || true
  local sn sp sl sd pn ps pp
  sn=$(strace_fails st.note) sl=$(strace_fails st.ldso) sp=$(strace_fails st.plain) sd=$(strace_fails st.debian)
  pn=$(json_fails ex.note.json note) ps=$(json_fails ex.note.json stock) pp=$(json_fails ex.plain.json stock)
  echo "x86_64 $N/$N failing openat+newfstatat: stock (no note) strace $sp / explain $pp; Debian ld.so $sd;" \
    "note-aware strace $sn (ld.so PROGRAM: $sl) / explain --loader note $pn; explain stock on the noted program $ps"
  echo "x86_64 $N/$N failing calls including access(/etc/ld.so.preload): stock $((sp + $(access_fails st.plain)))," \
    "note-aware $((sn + $(access_fails st.note)))"
  echo "x86_64 prediction error: stock $(( sp > pp ? sp - pp : pp - sp )), note $(( sn > pn ? sn - pn : pn - sn ))"
  check_eq "(d) note-aware failing calls = explain --loader note" "$pn" "$sn"
  check_eq "(d) ld.so PROGRAM failing calls = PT_INTERP" "$sn" "$sl"
  check_eq "(d) stock failing calls = explain stock" "$pp" "$sp"
  check_eq "(d) explain stock is the same with and without the note" "$pp" "$ps"
  check_eq "(d) Debian's ld.so fails as often as the stock prediction" "$pp" "$sd"
  check_eq "(d) trying cached file= lines = explain" "$(json_cached ex.note.json note)" "$(dbg_cached dbg.note)"
  [ "$sn" -lt "$sp" ] || fail "(d) the note saves nothing ($sn vs $sp)"

  # (e) mold: one PT_NOTE with p_align 8 for every note; the note goes in place, laid out for
  # the loader's walk in steps of 8, and the note-aware loader uses it as with the other linkers.
  # Where that walk arrives in the reservation depends on the notes before it: 12 bytes in with
  # Debian's mold 1.10 (build-id before the ABI tag), at its start without a build-id, 4 bytes in
  # with mold 2.x (ABI tag before build-id: a current mold, bench/mold-build.sh, when built;
  # LDNOTE_MOLD_CURRENT=DIR names its bin directory). Building one takes most of an hour on two
  # cores, so CI runs the first two.
  if ! command -v mold >/dev/null; then
    if $ci; then fail "(e) CI: mold missing"; else echo "SKIP: (e) mold missing" >&2; fi
  else
    molds=("mold||" "mold-nobid||-Wl,--build-id=none")
    current=${LDNOTE_MOLD_CURRENT:-}
    if [ -z "$current" ]; then
      for d in "${LDNOTE_MOLD_CACHE:-$HOME/.cache/ldnote}"/mold-[0-9]*/bin; do
        [ -x "$d/ld.mold" ] && current=$d
      done
    fi
    if [ -n "$current" ]; then
      molds+=("mold-current|-B$current|")
      echo "(e) current mold: $("$current/ld.mold" --version)"
    else
      echo "SKIP: (e) no current mold (bench/mold-build.sh); Debian's only" >&2
    fi
    for m in "${molds[@]}"; do
      IFS='|' read -r name bdir extra <<<"$m"
      # shellcheck disable=SC2086 # $bdir and $extra are one word or none
      "$ldnote" link -v -- gcc -fuse-ld=mold $bdir $extra -o "prog-$name" "${args[@]}" 2>"$name.log"
      grep -q 'note written in place' "$name.log" || fail "(e) $name: not noted in place: $(cat "$name.log")"
      grep -q 'p_align 8' <<<"$("$ldnote" show "prog-$name")" || fail "(e) $name: the note is not in an 8-aligned PT_NOTE"
      LD_DEBUG=libs "./prog-$name" >"out.$name" 2>"dbg.$name" || fail "(e) $name prog failed"
      check_eq "(e) $name: program output" "$(expected_sum)" "$(cat "out.$name")"
      check_eq "(e) $name: the note-aware loader tries no RUNPATH file" "0" "$(dbg_trying "dbg.$name" | wc -l)"
      check_eq "(e) $name: one trying cached file= line per library" "$((N + 1))" "$(dbg_cached "dbg.$name" | wc -l)"
      strace -f -qq -e trace=execve,openat,newfstatat -o "st.$name" "./prog-$name" >/dev/null
      check_eq "(e) $name: failing calls as with GNU ld" "$sn" "$(strace_fails "st.$name")"
    done
  fi

  # (b) LD_LIBRARY_PATH overrides the note: another libl5.so returning 105.
  mkdir -p override
  echo "int f5(void) { return 105; }" >l5x.c
  gcc -shared -fPIC -o override/libl5.so -Wl,-soname,libl5.so l5x.c
  LD_DEBUG=libs LD_LIBRARY_PATH=$t/override ./prog >out.llp 2>dbg.llp || fail "prog with LD_LIBRARY_PATH failed"
  check_eq "(b) LD_LIBRARY_PATH wins: output" "$(( $(expected_sum) + 100 ))" "$(cat out.llp)"
  grep -qx "$t/override/libl5.so" <<<"$(dbg_init dbg.llp)" && echo "ok: (b) override/libl5.so loaded" \
    || fail "(b) override/libl5.so not loaded"
  "$ldnote" explain --json --loader note --env "LD_LIBRARY_PATH=$t/override" ./prog >ex.llp.json || true
  strace -f -qq -e trace=execve,openat,newfstatat -o st.llp env LD_LIBRARY_PATH="$t/override" ./prog >/dev/null
  # env(1) is exec'd first: count from the program's execve (the last one).
  check_eq "(b,d) failing calls = explain" "$(json_fails ex.llp.json note)" \
    "$(awk '/execve\(/ { n = 0; on = 1 } on && /(openat|newfstatat)\(/ && / = -1 E/ { n++ } END { print n + 0 }' st.llp)"

  # (c) A recorded library moved to a later RUNPATH directory: the `=` entry fails, the walk
  # finds it, as the stock loader does.
  local m=7 later=$((N - 3))
  mv "d$m/libl$m.so" "d$later/libl$m.so"
  LD_DEBUG=libs ./prog >out.mv 2>dbg.mv || fail "(c) prog failed after the move"
  LD_DEBUG=libs ./prog-plain >out.mvp 2>dbg.mvp || fail "(c) prog-plain failed after the move"
  check_eq "(c) moved library found in the later dir" "$t/d$later/libl$m.so" \
    "$(dbg_init dbg.mv | grep "/libl$m.so\$")"
  check_eq "(c) same files as stock after the move" "$(dbg_init dbg.mvp)" "$(dbg_init dbg.mv)"
  grep -qx "$t/d$m/libl$m.so" <<<"$(dbg_cached dbg.mv)" && echo "ok: (c) the stale = entry was tried" \
    || fail "(c) stale = entry not tried"
  strace -f -qq -e trace=execve,openat,newfstatat -o st.mv ./prog >/dev/null
  "$ldnote" explain --json --loader note ./prog >ex.mv.json || true
  check_eq "(c,d) failing calls after the move = explain" "$(json_fails ex.mv.json note)" "$(strace_fails st.mv)"
  echo "x86_64 moved library: note-aware $(strace_fails st.mv) failing calls (explain $(json_fails ex.mv.json note))"
  # Gone everywhere: both fail with the same message.
  rm "d$later/libl$m.so"
  local en ep
  en=$(./prog 2>&1 >/dev/null | sed 's/^[^:]*: //') && fail "(c) prog ran without libl$m.so"
  ep=$(./prog-plain 2>&1 >/dev/null | sed 's/^[^:]*: //') && fail "(c) prog-plain ran without libl$m.so"
  check_eq "(c) missing library: same error as stock" "$ep" "$en"
  "$ldnote" explain --json --loader note ./prog >ex.rm.json || true
  check_eq "(c) missing library: explain predicts the error" \
    "error while loading shared libraries: $(jq -r .note.error ex.rm.json)" "$en"
  strace -f -qq -e trace=execve,openat,newfstatat -o st.rm ./prog >/dev/null 2>&1 || true
  check_eq "(c,d) failing calls, missing library = explain" "$(json_fails ex.rm.json note)" "$(strace_fails st.rm)"
  echo "x86_64 removed library: note-aware $(strace_fails st.rm) failing calls (explain $(json_fails ex.rm.json note))"
  cd "$root"
  [ "$failures" = 0 ] && rm -rf "$t"
  stale_native "$ldso"
}

aarch64() {
  [ "${LDNOTE_E2E_AARCH64:-1}" = 0 ] && { echo "SKIP aarch64 (LDNOTE_E2E_AARCH64=0)"; return 0; }
  local ldso=${LDNOTE_NOTE_LDSO_AARCH64:-}
  [ -n "$ldso" ] || ldso=$(cached_ldso aarch64-linux-gnu- ld-linux-aarch64.so.1) || true
  if [ -z "$ldso" ]; then
    # CI builds it only when LDNOTE_CI_AARCH64_LOADER=1 (see .ci/run).
    if $ci && [ "${LDNOTE_CI_AARCH64_LOADER:-}" = 1 ]; then
      echo "FAIL: CI: the aarch64 note-aware loader was to be built but is missing" >&2
      exit 1
    fi
    echo "SKIP aarch64: no note-aware loader (run loader/build.sh --target aarch64-linux-gnu)" >&2
    return 0
  fi
  need aarch64-linux-gnu-gcc qemu-aarch64 jq || return 0
  local sysroot=/usr/aarch64-linux-gnu libdir t
  libdir=$(dirname "$ldso")
  t=$(mktemp -d /tmp/ldnote-loader-e2e-a64.XXXXXX)
  echo "== aarch64 under qemu-aarch64: $N libraries, loader $ldso, scratch $t"
  make_libs "$t" aarch64-linux-gnu-gcc
  mapfile -t args < <(link_args "$t" "$libdir" "$ldso")
  "$ldnote" link -- aarch64-linux-gnu-gcc -o "$t/prog" "${args[@]}"
  aarch64-linux-gnu-gcc -o "$t/prog-plain" "${args[@]}"
  cd "$t"
  # LD_DEBUG through -E: in the environment it would also debug the host loader running qemu.
  local q=(qemu-aarch64 -L "$sysroot")
  "${q[@]}" -E LD_DEBUG=libs ./prog >out.note 2>dbg.note || fail "aarch64 prog failed"
  "${q[@]}" -E LD_DEBUG=libs ./prog-plain >out.plain 2>dbg.plain || fail "aarch64 prog-plain failed"
  "${q[@]}" -E LD_DEBUG=libs "$ldso" ./prog >out.ldso 2>dbg.ldso || fail "aarch64 ld.so prog failed"
  check_eq "aarch64 program output" "$(expected_sum)" "$(cat out.note)"
  check_eq "aarch64 (a) same files, note vs no note" "$(dbg_init dbg.plain)" "$(dbg_init dbg.note)"
  check_eq "aarch64 (a) same files, ld.so PROGRAM" "$(dbg_init dbg.note)" "$(dbg_init dbg.ldso)"
  check_eq "aarch64 libraries initialised" "$((N + 1))" "$(dbg_libs dbg.note | wc -l)"
  check_eq "aarch64 (a) no trying file= line with the note" "0" "$(dbg_trying dbg.note | wc -l)"
  check_eq "aarch64 (a) one trying cached file= line per library" "$((N + 1))" "$(dbg_cached dbg.note | wc -l)"
  "$ldnote" explain --json --sysroot "$sysroot" --qemu --loader note ./prog >ex.note.json || true
  "$ldnote" explain --json --sysroot "$sysroot" --qemu ./prog-plain >ex.plain.json || true
  # strace cannot follow qemu-user's guest: compare LD_DEBUG lines and qemu's own -strace.
  check_eq "aarch64 (d) trying file= sequence = explain (note)" \
    "$(jq -r '.note.trying[]' ex.note.json)" "$(dbg_trying dbg.note)"
  check_eq "aarch64 (d) trying cached file= = explain (note)" \
    "$(json_cached ex.note.json note)" "$(dbg_cached dbg.note)"
  check_eq "aarch64 (d) trying file= sequence = explain (stock)" \
    "$(jq -r '.stock.trying[]' ex.plain.json)" "$(dbg_trying dbg.plain)"
  "${q[@]}" -strace ./prog >/dev/null 2>qs.note || true
  "${q[@]}" -strace ./prog-plain >/dev/null 2>qs.plain || true
  local sn sp pn pp
  sn=$(qemu_strace_fails qs.note) sp=$(qemu_strace_fails qs.plain)
  pn=$(json_fails ex.note.json note) pp=$(json_fails ex.plain.json stock)
  echo "aarch64 $N/$N failing openat+newfstatat (qemu -strace): stock (no note) $sp / explain $pp;" \
    "note-aware $sn / explain $pn; trying file= lines stock $(dbg_trying dbg.plain | wc -l), note $(dbg_trying dbg.note | wc -l)"
  echo "aarch64 $N/$N failing calls including faccessat(/etc/ld.so.preload): stock" \
    "$((sp + $(grep -Ec '^[0-9]+ faccessat\(.* = -1 ' qs.plain || true)))," \
    "note-aware $((sn + $(grep -Ec '^[0-9]+ faccessat\(.* = -1 ' qs.note || true)))"
  echo "aarch64 prediction error: stock $(( sp > pp ? sp - pp : pp - sp )), note $(( sn > pn ? sn - pn : pn - sn ))"
  check_eq "aarch64 (d) note-aware failing calls = explain" "$pn" "$sn"
  check_eq "aarch64 (d) stock failing calls = explain" "$pp" "$sp"
  # (b) LD_LIBRARY_PATH still wins.
  mkdir -p override
  echo "int f5(void) { return 105; }" >l5x.c
  aarch64-linux-gnu-gcc -shared -fPIC -o override/libl5.so -Wl,-soname,libl5.so l5x.c
  check_eq "aarch64 (b) LD_LIBRARY_PATH wins" "$(( $(expected_sum) + 100 ))" \
    "$("${q[@]}" -E LD_LIBRARY_PATH="$t/override" ./prog)"
  # (c) A moved library falls back to the walk.
  local m=7 later=$((N - 3))
  mv "d$m/libl$m.so" "d$later/libl$m.so"
  "${q[@]}" -E LD_DEBUG=libs ./prog >out.mv 2>dbg.mv || fail "aarch64 (c) prog failed after the move"
  check_eq "aarch64 (c) moved library found in the later dir" "$t/d$later/libl$m.so" \
    "$(dbg_init dbg.mv | grep "/libl$m.so\$")"
  "$ldnote" explain --json --sysroot "$sysroot" --qemu --loader note ./prog >ex.mv.json || true
  check_eq "aarch64 (c) trying file= sequence after the move = explain" \
    "$(jq -r '.note.trying[]' ex.mv.json)" "$(dbg_trying dbg.mv)"
  cd "$root"
  [ "$failures" = 0 ] && rm -rf "$t"
}

native
aarch64
if [ "$failures" != 0 ]; then
  echo "loader e2e: $failures failure(s)" >&2
  exit 1
fi
echo "loader e2e: all passed"
