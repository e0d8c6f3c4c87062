# Sourced by tests/loader_e2e.sh (uses its fail, check_eq, need, strace_fails, json_fails,
# dbg_cached, dbg_init): the stale-entry rule (docs/note-format.md, "Stale entries") on real
# programs run with the note-aware loader. Every program prints answer() of the libanswer.so.1
# it loaded: 1 for the build tree's copy (the decoy once the run path moved), 2 for the
# installed one.
#   fresh notes, ldnote's and patchelf's (plain, trailing slashes, CMake's padding, $ORIGIN):
#     no entry is skipped and the `=` entries are opened;
#   a run path rewritten in place (chrpath -r, CMake's install): the build-tree entries are
#     skipped, the installed library is loaded, as without a note, call for call;
#   a run path removed in place (chrpath -d): the note is not read;
#   patchelf --set-rpath: drops the note (so it never leaves a stale one);
# and `ldnote explain --loader note` predicts each run (failing calls, the file loaded).

stale_count() { grep -c 'skipping stale note entry=' "$1" || true; }
answer_of() { grep '/libanswer\.so\.1$' <<<"$(dbg_init "$1")" || true; }

# stale_run LABEL PROG OUTPUT LIBRARY SKIPS [PLAIN]: run PROG (with LD_DEBUG=libs and under
# strace), expect OUTPUT, libanswer.so.1 loaded from LIBRARY and SKIPS skipped entries
# ("any" for at least one); explain must predict the failing calls and the file. PLAIN, a copy
# without a note, must then search libanswer.so.1 exactly as PROG does (the stale entries are
# as if absent; entries that are still current, e.g. libc's, keep saving their walk).
stale_run() {
  local label=$1 prog=$2 want=$3 lib=$4 skips=$5 plain=${6:-} b
  b=$(basename "$prog")
  LD_DEBUG=libs "$prog" >"$b.out" 2>"$b.dbg" || fail "$label: $prog failed"
  check_eq "$label: output" "$want" "$(cat "$b.out")"
  check_eq "$label: libanswer.so.1 loaded from" "$lib" "$(answer_of "$b.dbg")"
  local n
  n=$(stale_count "$b.dbg")
  if [ "$skips" = any ]; then
    [ "$n" -gt 0 ] && echo "ok: $label: $n stale entries skipped" || fail "$label: no entry skipped"
  else
    check_eq "$label: entries skipped" "$skips" "$n"
  fi
  strace -f -qq -e trace=execve,openat,newfstatat -o "$b.st" "$prog" >/dev/null
  "$ldnote" explain --json --loader note "$prog" >"$b.json" || true
  local real pred
  real=$(strace_fails "$b.st") pred=$(json_fails "$b.json" note)
  check_eq "$label: failing calls = explain --loader note" "$pred" "$real"
  check_eq "$label: explain loads libanswer.so.1 from" "libanswer.so.1 => $lib" \
    "$(jq -r '.note.searches[] | select(.name == "libanswer.so.1" and .result == "loaded") | "\(.name) => \(.path)"' "$b.json")"
  check_eq "$label: trying cached file= lines = explain" "$(json_cached "$b.json" note)" "$(dbg_cached "$b.dbg")"
  local line="$label: failing openat+newfstatat $real (explain $pred)"
  if [ -n "$plain" ]; then
    local p
    strace -f -qq -e trace=execve,openat,newfstatat -o "$b.plain.st" "$plain" >/dev/null
    LD_DEBUG=libs "$plain" >/dev/null 2>"$b.plain.dbg"
    p=$(strace_fails "$b.plain.st")
    check_eq "$label: libanswer.so.1 is searched as without a note" \
      "$(dbg_trying "$b.plain.dbg" | grep libanswer)" "$(dbg_trying "$b.dbg" | grep libanswer)"
    line+=", without a note $p"
  fi
  echo "$line"
}

# pad_vs_stock NOTED STOCK: CMake's padding (empty run-path components, each the current
# directory) must not make the noted program's start-up cost more failing calls than the same
# program without a note (docs/note-format.md: a directory once per soname, no trailing cwd
# hints). patchelf's note of the stock program (one `?` per component) is measured beside it,
# and explain must predict all three.
pad_vs_stock() {
  local noted=$1 stock=$2 pe=$2-pe n s p f
  cp "$stock" "$pe" && patchelf --build-resolution-cache "$pe"
  for f in "$noted" "$stock" "$pe"; do
    strace -f -qq -e trace=execve,openat,newfstatat -o pad.st "$f" >/dev/null
    "$ldnote" explain --json --loader note "$f" >pad.json || true
    check_eq "padded $f: failing calls = explain --loader note" \
      "$(json_fails pad.json note)" "$(strace_fails pad.st)"
    case $f in "$noted") n=$(strace_fails pad.st) ;; "$stock") s=$(strace_fails pad.st) ;;
      *) p=$(strace_fails pad.st) ;; esac
  done
  [ "$n" -le "$s" ] && echo "ok: CMake padded run path: failing calls with ldnote's note $n <= without a note $s (patchelf's note: $p)" \
    || fail "CMake padded run path: ldnote's note costs $n failing calls, without a note $s (patchelf's note: $p)"
}

stale_native() {
  local ldso=$1 libdir t
  need gcc strace jq chrpath cmake patchelf || return 0
  libdir=$(dirname "$ldso")
  t=$(mktemp -d /tmp/ldnote-loader-stale.XXXXXX)
  echo "== x86_64 stale notes: loader $ldso, scratch $t"
  cd "$t"
  mkdir build inst
  echo 'int answer(void) { return 1; }' >a1.c
  echo 'int answer(void) { return 2; }' >a2.c
  printf '#include <stdio.h>\nint answer(void);\nint main(void) { printf("%%d\\n", answer()); return 0; }\n' >main.c
  gcc -shared -fPIC -o build/libanswer.so.1 -Wl,-soname,libanswer.so.1 a1.c
  gcc -shared -fPIC -o inst/libanswer.so.1 -Wl,-soname,libanswer.so.1 a2.c
  # A run path with trailing slashes: writers copy the component (`=DIR//libanswer.so.1`).
  local rp rps args=(main.c -L"$t/build" -l:libanswer.so.1 -Wl,--dynamic-linker="$ldso")
  rp="$t/build:$libdir" rps="$t/build//:$libdir/"
  "$ldnote" link -- gcc -o prog "${args[@]}" -Wl,--enable-new-dtags,-rpath,"$rp"
  "$ldnote" link -- gcc -o prog-slash "${args[@]}" -Wl,--enable-new-dtags,-rpath,"$rps"
  gcc -o plain "${args[@]}" -Wl,--enable-new-dtags,-rpath,"$rp"
  gcc -o plain-slash "${args[@]}" -Wl,--enable-new-dtags,-rpath,"$rps"
  cp plain pe && patchelf --build-resolution-cache pe
  cp plain-slash pe-slash && patchelf --build-resolution-cache pe-slash
  grep -q "=$t/build///libanswer.so.1" <<<"$("$ldnote" show pe-slash)" \
    && echo "ok: patchelf writes =DIR//NAME for DIR/" || fail "patchelf's entry for a trailing slash changed"

  # Fresh notes: nothing skipped, every `=` entry opened (libanswer and libc).
  local p
  for p in prog prog-slash pe pe-slash; do
    local lib=$t/build/libanswer.so.1
    [ "${p%-slash}" = "$p" ] || lib=$t/build///libanswer.so.1
    stale_run "fresh $p" "./$p" 1 "$lib" 0
    check_eq "fresh $p: trying cached file= lines" 2 "$(dbg_cached "$p.dbg" | wc -l)"
  done

  # chrpath -r rewrites DT_RUNPATH in place and keeps the note: the decoy stays in build/.
  # chrpath misreads patchelf's relocated string table, so patchelf's noted copy is rewritten
  # by CMake's own in-place editor (what `cmake --install` uses), file(RPATH_CHANGE).
  for p in prog plain; do cp "$p" "$p-moved" && chrpath -r "$t/inst:$libdir" "$p-moved" >/dev/null; done
  echo 'file(RPATH_CHANGE FILE "${F}" OLD_RPATH "${OLD}" NEW_RPATH "${NEW}")' >rpath-change.cmake
  cp pe pe-moved
  cmake -DF=pe-moved -DOLD="$rp" -DNEW="$t/inst:$libdir" -P rpath-change.cmake >/dev/null
  grep -q "=$t/build/libanswer.so.1" <<<"$("$ldnote" show prog-moved)" || fail "chrpath dropped the note"
  stale_run "chrpath -r (ldnote's note)" ./prog-moved 2 "$t/inst/libanswer.so.1" 1 ./plain-moved
  stale_run "chrpath -r (patchelf's note)" ./pe-moved 2 "$t/inst/libanswer.so.1" 1 ./plain-moved
  grep -qx "$libdir/libc.so.6" <<<"$(dbg_cached prog-moved.dbg)" \
    && echo "ok: chrpath -r: the current libc entry is still used" || fail "chrpath -r: libc entry not used"

  # chrpath -d removes DT_RUNPATH in place: the note is not read; libanswer is not found.
  for p in prog plain; do cp "$p" "$p-norp" && chrpath -d "$p-norp" >/dev/null; done
  local en ep
  en=$(./prog-norp 2>&1 >/dev/null | sed 's/^[^:]*: //') && fail "prog-norp ran without a run path"
  ep=$(./plain-norp 2>&1 >/dev/null | sed 's/^[^:]*: //') && fail "plain-norp ran without a run path"
  check_eq "chrpath -d: same error as without a note" "$ep" "$en"
  "$ldnote" explain --json --loader note ./prog-norp >norp.json || true
  check_eq "chrpath -d: explain predicts the error" \
    "error while loading shared libraries: $(jq -r .note.error norp.json)" "$en"
  check_eq "chrpath -d + LD_LIBRARY_PATH" 2 "$(LD_LIBRARY_PATH=$t/inst ./prog-norp)"

  # patchelf --set-rpath drops the note: it cannot leave a stale one.
  cp pe pe-set && patchelf --set-rpath "$t/inst:$libdir" pe-set
  grep -q NixOS <<<"$(readelf -n pe-set)" && fail "patchelf --set-rpath kept the note" \
    || echo "ok: patchelf --set-rpath drops the note"
  check_eq "patchelf --set-rpath: output" 2 "$(./pe-set)"

  # $ORIGIN: hints `?$ORIGIN/../lib` stay current (and `=` entries after them are used).
  mkdir -p o/bin o/lib
  cp inst/libanswer.so.1 o/lib/
  # shellcheck disable=SC2016 # $ORIGIN is for the loader
  local orp='$ORIGIN/../lib:'"$libdir"
  "$ldnote" link -- gcc -o o/bin/prog main.c -Lo/lib -l:libanswer.so.1 \
    -Wl,--dynamic-linker="$ldso" -Wl,--enable-new-dtags,-rpath,"$orp"
  gcc -o o/bin/pe main.c -Lo/lib -l:libanswer.so.1 -Wl,--dynamic-linker="$ldso" \
    -Wl,--enable-new-dtags,-rpath,"$orp"
  patchelf --build-resolution-cache o/bin/pe
  for p in prog pe; do
    stale_run "\$ORIGIN $p" "./o/bin/$p" 2 "$t/o/bin/../lib/libanswer.so.1" 0
    grep -qx "$libdir/libc.so.6" <<<"$(dbg_cached "$p.dbg")" \
      && echo "ok: \$ORIGIN $p: the libc entry after the hint is used" || fail "\$ORIGIN $p: libc entry not used"
  done

  # CMake: the build tree's run path padded with `:` and rewritten in place at install
  # (CMAKE_INSTALL_RPATH); the linker runs through ldnote (CMAKE_C_LINKER_LAUNCHER). A second
  # tree without ldnote is the stock comparison. The build tree's library then becomes a decoy.
  mkdir -p cm/src
  cp main.c cm/src/ && cp a2.c cm/src/answer.c
  cat >cm/src/CMakeLists.txt <<'EOF'
cmake_minimum_required(VERSION 3.21)
project(answer C)
add_library(answer SHARED answer.c)
set_target_properties(answer PROPERTIES SOVERSION 1)
add_executable(prog main.c)
target_link_libraries(prog answer)
install(TARGETS answer prog)
EOF
  local cm_args=(-DCMAKE_INSTALL_RPATH="$t/cm/inst/lib"
    -DCMAKE_EXE_LINKER_FLAGS="-Wl,--enable-new-dtags -Wl,--dynamic-linker=$ldso")
  cmake -S cm/src -B cm/b -DCMAKE_C_LINKER_LAUNCHER="$ldnote;link;--" \
    -DCMAKE_INSTALL_PREFIX="$t/cm/inst" "${cm_args[@]}" >cm.log
  cmake -S cm/src -B cm/bp -DCMAKE_INSTALL_PREFIX="$t/cm/instp" "${cm_args[@]}" >>cm.log
  cmake --build cm/b >>cm.log && cmake --build cm/bp >>cm.log
  grep -q ':::' <<<"$(readelf -d cm/b/prog)" && echo "ok: CMake padded the build run path" \
    || fail "CMake's build run path is not padded"
  stale_run "CMake build tree (padded, fresh)" ./cm/b/prog 2 "$t/cm/b/libanswer.so.1" 0
  pad_vs_stock ./cm/b/prog ./cm/bp/prog
  cmake --install cm/b >>cm.log && cmake --install cm/bp >>cm.log
  gcc -shared -fPIC -o cm/b/libanswer.so.1.tmp -Wl,-soname,libanswer.so.1 a1.c
  mv cm/b/libanswer.so.1.tmp "$(readlink -f cm/b/libanswer.so.1)"
  grep -q "=$t/cm/b/libanswer.so.1" <<<"$("$ldnote" show cm/inst/bin/prog)" || fail "cmake --install dropped the note"
  stale_run "CMake installed (run path rewritten in place)" ./cm/inst/bin/prog 2 \
    "$t/cm/inst/lib/libanswer.so.1" any ./cm/instp/bin/prog
  cd "$root"
  [ "$failures" = 0 ] && rm -rf "$t"
}
