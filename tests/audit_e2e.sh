#!/usr/bin/env bash
# End-to-end test of the rtld-audit module (audit/) on Debian's stock glibc 2.36: no patched
# loader anywhere. A program needing N libraries (default 40) from N DT_RUNPATH directories plus
# the glibc directory (Nix layout), linked through `ldnote link`:
#   (a) with the module (LD_AUDIT, and DT_AUDIT from `ldnote link --audit`) it loads the same
#       files as without it, and the failing openat/newfstatat calls drop to 0 (plus the one
#       access(/etc/ld.so.preload)); every count equals `ldnote explain --loader audit`;
#   (b) LD_LIBRARY_PATH still overrides the note;
#   (c) a moved library is found by the normal search after the stale entry, a library gone
#       everywhere fails with the stock message; an entry of the wrong machine or class is
#       skipped and the normal search finds the right file;
#   (d) a program without a note, with a malformed note, or without the module behaves as stock;
#   (e) dlopen from a noted library uses that library's note;
#   (f) a program linked with `ldnote link --audit` runs with and without the module file;
#   (g) ImageMagick's convert closure re-laid out Nix-style: same files, no failing search call;
#   (h) stale notes (docs/note-format.md): a run path moved in place (as CMake and chrpath do;
#       and by `patchelf --set-rpath`) with a decoy of the same soname left at the noted path:
#       the decoy is never loaded (program and library requesters); a run path removed: exactly
#       stock; `$ORIGIN` run-path elements are
#       substituted as the loader does (the main program's from /proc/self/exe, a library's
#       from its name), so a current `?$ORIGIN` hint still leaves the name to the loader's search.
# Then the main cases for every cross target under qemu-user with Debian's stock loader:
# aarch64, i686, armhf, armel, riscv64, ppc64le, s390x, mips64el (`cross_targets` below), and
# (h) on aarch64, riscv64 and mips64el (qemu-user has no process_vm_readv: there only the
# program's note is read).
# With CI=true a missing tool is an error; locally it is a skip. LDNOTE_E2E_NATIVE=0 leaves out
# the x86_64 part, LDNOTE_E2E_CROSS="i686 armhf ..." runs only the named cross targets,
# LDNOTE_E2E_AARCH64=0 leaves out aarch64.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
. tests/nix_layout.sh
e2e_start
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
check_eq() { if [ "$2" = "$3" ]; then echo "ok: $1"; else fail "$1: expected [$2], got [$3]"; fi; }
need() {
  local tool
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      $ci && { echo "FAIL: CI: $tool missing" >&2; exit 1; }
      echo "SKIP: $tool missing" >&2
      return 1
    fi
  done
}
# Failing openat/newfstatat after the last execve in an `strace -f -o` log (env(1) runs first).
strace_fails() {
  awk '/execve\(/ { n = 0; on = 1 } on && /(openat|newfstatat)\(/ && / = -1 E/ { n++ } END { print n + 0 }' "$1"
}
access_fails() {
  awk '/execve\(/ { n = 0; on = 1 } on && /access\(/ && / = -1 E/ { n++ } END { print n + 0 }' "$1"
}
# The loader's stat of a directory is newfstatat on 64-bit targets, statx on 32-bit ones (glibc
# 2.36's fstatat64 with 64-bit time), fstatat64 on older kernels' paths.
qemu_strace_fails() { grep -Ec '^[0-9]+ (openat|newfstatat|statx|fstatat64)\(.* = -1 ' "$1" || true; }
json_fails() { jq -r ".$2.totals | .openat_fail + .stat_fail" "$1"; }
# Libraries initialised (LD_DEBUG=libs `calling init:`), sorted, without the module itself.
# The loader appears twice with a module (its copy in the audit namespace): loaders dropped.
# Loaders by target: ld-linux-<arch>.so.N, ld-linux.so.N (i686, armel), ld64.so.N (ppc64le,
# s390x), ld.so.1 (mips64el).
dbg_init() { sed -n 's/^ *[0-9]*:\t\{1,\}calling init: //p' "$1" | grep -v -e 'libldnote-audit' -e '/mod.so$' \
  | grep -Ev '/ld(64)?(-linux[^/]*)?\.so\.[0-9]+$' | sort; }

sum() { expected_sum; }

# trun VAR=VALUE... PROGRAM ARGS...: run a target program with those variables, natively or,
# when the array qrun is set (qemu -L SYSROOT), under qemu-user (-E VAR=VALUE).
trun() {
  local e=()
  while [[ "$1" == *=* ]]; do
    if [ ${#qrun[@]} -gt 0 ]; then e+=(-E "$1"); else e+=("$1"); fi
    shift
  done
  if [ ${#qrun[@]} -gt 0 ]; then "${qrun[@]}" "${e[@]}" "$@"; else env "${e[@]}" "$@"; fi
}

# set_rpath_in_place FILE OLD NEW: overwrite FILE's run path string OLD with NEW (not longer),
# NUL-padded, as CMake's install-time `file(RPATH_CHANGE)` and chrpath do.
set_rpath_in_place() {
  python3 - "$@" <<'PY'
import sys
f, old, new = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
b = bytearray(open(f, 'rb').read())
assert len(new) <= len(old) and b.count(old + b'\0') == 1, 'run path not found once'
i = b.find(old + b'\0')
b[i:i + len(old)] = new + b'\0' * (len(old) - len(new))
open(f, 'wb').write(b)
PY
}

# drop_runpath_in_place FILE: FILE's DT_RUNPATH entry becomes DT_CHECKSUM (ignored by the
# loader): the object has no run path, its note stays. ELF64 little-endian (x86_64, aarch64).
drop_runpath_in_place() {
  python3 - "$1" <<'PY'
import struct, sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
assert b[4] == 2 and b[5] == 1, 'ELF64 little-endian only'
shoff, = struct.unpack_from('<Q', b, 0x28); shentsize, shnum = struct.unpack_from('<HH', b, 0x3a)
n = 0
for i in range(shnum):
    ty, = struct.unpack_from('<I', b, shoff + i * shentsize + 4)
    if ty == 6:  # SHT_DYNAMIC
        off, size = struct.unpack_from('<QQ', b, shoff + i * shentsize + 0x18)
        for e in range(off, off + size, 16):
            if struct.unpack_from('<q', b, e)[0] == 29:  # DT_RUNPATH
                struct.pack_into('<q', b, e, 0x6ffffdf8)
                n += 1
assert n == 1, 'no DT_RUNPATH'
open(p, 'wb').write(b)
PY
}

# (h) The stale-entry rule, in DIR (made), with CC, the C library's directory LIBC and MODULE
# (qrun as for trun). Values: a decoy returns 666, the right copies 1 (libst), 2 (libsh1), 4
# (libsh2); prog-o prints sh1() * 10 + mid(), mid() = sh2().
stale_rule() { # LABEL DIR CC LIBC MODULE
  local label=$1 s=$2 cc=$3 libc=$4 module=$5 out
  mkdir -p "$s"/{old,new,mold,mnew,olib,dA,mid,bin}
  cd "$s"
  lib() { # DIR SONAME FUNCTION VALUE
    echo "int $3(void) { return $4; }" >"$1/$2.c"
    "$cc" -shared -fPIC -o "$1/$2" -Wl,-soname,"$2" "$1/$2.c"
  }
  lib old libst.so st 666
  lib new libst.so st 1
  lib mold libst2.so st2 666
  lib mnew libst2.so st2 1
  # A noted library whose run path will move too (it asks for libst2.so).
  echo 'int st2(void); int m(void) { return st2(); }' >m.c
  "$ldnote" link -- "$cc" -shared -fPIC -o mid/libmv.so -Wl,-soname,libmv.so m.c -Lmold -lst2 \
    -Wl,--enable-new-dtags,-rpath,"$s/mold:$libc"
  printf '#include <stdio.h>\nint st(void); int m(void);\nint main(void) { printf("%%d\\n", st() * 10 + m()); return 0; }\n' >st.c
  "$ldnote" link -- "$cc" -o prog-st st.c -Lold -lst -Lmid -lmv -Wl,-rpath-link,"$s/mold" \
    -Wl,--enable-new-dtags,-rpath,"$s/old:$s/mid:$libc"
  check_eq "$label (h) fresh note: the noted copies" "7326" "$(trun LD_AUDIT="$module" ./prog-st)"
  # Move both run paths in place, as CMake (`file(RPATH_CHANGE)`) and chrpath do: the string
  # is overwritten, the note is left alone and now names the old directories.
  # (patchelf 0.19.3 never leaves such a note: it drops the note when it rewrites the run path
  # in place and refuses to grow it, "cannot normalize PT_NOTE segment"; tested below too.)
  cp prog-st prog-pe
  set_rpath_in_place mid/libmv.so "$s/mold:$libc" "$s/mnew:$libc"
  set_rpath_in_place prog-st "$s/old:$s/mid:$libc" "$s/new:$s/mid:$libc"
  grep -q "=$s/old/libst.so" <<<"$("$ldnote" show prog-st)" || fail "$label (h) prog-st lost its note"
  grep -q "=$s/mold/libst2.so" <<<"$("$ldnote" show mid/libmv.so)" || fail "$label (h) libmv.so lost its note"
  check_eq "$label (h) run path moved: stock loads the new copies" "11" "$(trun ./prog-st)"
  out=$(trun LD_AUDIT="$module" LD_DEBUG=files ./prog-st 2>dbg.st) || fail "$label (h) prog-st failed"
  check_eq "$label (h) run path moved: the module loads the new copies, not the decoys" "11" "$out"
  check_eq "$label (h) no decoy opened (LD_DEBUG=files)" "0" "$(grep -c -e "$s/old/" -e "$s/mold/" dbg.st || true)"
  patchelf --set-rpath "$s/new:$s/mid:$libc" prog-pe
  echo "$label (h) patchelf --set-rpath: $("$ldnote" show prog-pe | head -n 1)"
  check_eq "$label (h) patchelf --set-rpath: the module loads the new copies" "11" "$(trun LD_AUDIT="$module" ./prog-pe)"
  # Run path removed (the DT_RUNPATH entry made an ignored tag in place, as for a note written
  # before; and patchelf --remove-rpath): exactly stock, here libst.so found nowhere.
  cp prog-st prog-norp
  cp prog-st prog-norp-pe
  drop_runpath_in_place prog-norp
  patchelf --remove-rpath prog-norp-pe
  grep -q "=$s/old/libst.so" <<<"$("$ldnote" show prog-norp)" || fail "$label (h) prog-norp lost its note"
  local es em p
  for p in prog-norp prog-norp-pe; do
    es=$(trun ./$p 2>&1 | sed 's/^[^:]*: //') && fail "$label (h) $p ran stock"
    em=$(trun LD_AUDIT="$module" ./$p 2>&1 | sed 's/^[^:]*: //') && fail "$label (h) $p ran with the module"
    check_eq "$label (h) run path removed ($p): the stock error, no decoy" "$es" "$em"
  done
  # $ORIGIN: `?$ORIGIN/../olib` comes first for libsh1.so and libsh2.so, then an `=` entry for a
  # copy in dA that the stock search never reaches. The hint is current (its substitution is a
  # run-path element), so the loader searches: olib's copies (2, 4), never dA's (3, 5).
  lib olib libsh1.so sh1 2
  lib dA libsh1.so sh1 3
  lib olib libsh2.so sh2 4
  lib dA libsh2.so sh2 5
  echo 'int sh2(void); int mid(void) { return sh2(); }' >mid.c
  "$ldnote" link -- "$cc" -shared -fPIC -o olib/libmid.so -Wl,-soname,libmid.so mid.c -LdA -lsh2 \
    -Wl,--enable-new-dtags,-rpath,'$ORIGIN:'"$s/dA:$libc"
  printf '#include <stdio.h>\nint sh1(void); int mid(void);\nint main(void) { printf("%%d\\n", sh1() * 10 + mid()); return 0; }\n' >o.c
  "$ldnote" link -- "$cc" -o bin/prog-o o.c -LdA -lsh1 -Lolib -lmid -Wl,-rpath-link,"$s/olib" \
    -Wl,--enable-new-dtags,-rpath,'$ORIGIN/../olib:'"$s/dA:$libc"
  grep -qF "libsh1.so search dir ?\$ORIGIN/../olib open exactly =$s/dA/libsh1.so" \
    <<<"$("$ldnote" show bin/prog-o | tr -s ' \n' ' ')" \
    || fail "$label (h) prog-o's note is not as expected: $("$ldnote" show bin/prog-o | tr -s ' \n' ' ')"
  check_eq "$label (h) \$ORIGIN hints: stock" "24" "$(trun ./bin/prog-o)"
  check_eq "$label (h) \$ORIGIN hints: the module leaves them to the loader" "24" "$(trun LD_AUDIT="$module" ./bin/prog-o)"
  cd - >/dev/null
}

native() {
  need gcc strace jq readelf i686-linux-gnu-gcc aarch64-linux-gnu-gcc python3 || return 0
  local module t
  module=$(bash audit/build.sh | tail -n 1) && module=${module#module=}
  check_eq "the module has no DT_NEEDED" "" "$(readelf -d "$module" | grep NEEDED || true)"
  check_eq "the module defines no PLT hooks" "" "$(nm -D --defined-only "$module" | grep -E 'la_(symbind|pltenter|pltexit)' || true)"
  t=$(mktemp -d /tmp/ldnote-audit-e2e.XXXXXX)
  chmod 755 "$t"
  echo "== x86_64, stock Debian glibc: $N libraries in $N RUNPATH dirs, module $module, scratch $t"
  make_libs "$t" gcc
  mapfile -t args < <(link_args "$t" /lib/x86_64-linux-gnu)
  "$ldnote" link -- gcc -o "$t/prog" "${args[@]}"
  gcc -o "$t/prog-plain" "${args[@]}"
  cp "$module" "$t/mod.so"
  "$ldnote" link --audit="$t/mod.so" -- gcc -o "$t/prog-dt" "${args[@]}"
  check_eq "(f) DT_AUDIT names the module" "1" "$(readelf -d "$t/prog-dt" | grep -c "Audit library: \[$t/mod.so\]")"
  # The module installed beside ldnote (LDNOTE_AUDIT=1), and the path rules: refused paths fail
  # the command before the linker runs (no output).
  LDNOTE_AUDIT=1 "$ldnote" link -- gcc -o "$t/prog-env" "${args[@]}"
  check_eq "(f) LDNOTE_AUDIT=1 names the module beside ldnote" "1" \
    "$(readelf -d "$t/prog-env" | grep -c "Audit library: \[$(dirname "$ldnote")/libldnote-audit.so\]")"
  mkdir -p "$t/ww" && chmod 777 "$t/ww" && cp "$module" "$t/ww/mod.so"
  local bad
  for bad in rel/mod.so "$t/ww/mod.so" "$t/none.so"; do
    if "$ldnote" link --audit="$bad" -- gcc -o "$t/prog-bad-audit" "${args[@]}" 2>"$t/err.audit"; then
      fail "(f) --audit=$bad accepted"
    else
      check_eq "(f) --audit=$bad refused, nothing linked: $(head -c 120 "$t/err.audit")" "no" \
        "$([ -e "$t/prog-bad-audit" ] && echo yes || echo no)"
    fi
  done
  cd "$t"
  # env(1) for strace runs (counted from the last execve); a function where LD_DEBUG output is
  # read (env would print its own).
  local A=(env LD_AUDIT="$module")
  aud() { LD_AUDIT="$module" "$@"; }

  # (a) Same files and output; failing calls.
  LD_DEBUG=libs ./prog >out.stock 2>dbg.stock || fail "prog failed"
  LD_DEBUG=libs aud ./prog >out.aud 2>dbg.aud || fail "prog with LD_AUDIT failed"
  LD_DEBUG=libs ./prog-dt >out.dt 2>dbg.dt || fail "prog-dt failed"
  check_eq "(a) output with the module" "$(sum)" "$(cat out.aud)"
  check_eq "(a) output with DT_AUDIT" "$(sum)" "$(cat out.dt)"
  check_eq "(a) libraries initialised: N + libc" "$((N + 1))" "$(dbg_init dbg.aud | wc -l)"
  check_eq "(a) same files with LD_AUDIT as stock" "$(dbg_init dbg.stock)" "$(dbg_init dbg.aud)"
  check_eq "(a) same files with DT_AUDIT as stock" "$(dbg_init dbg.stock)" "$(dbg_init dbg.dt)"
  grep -q "calling init: $module" dbg.aud && echo "ok: (a) the module was loaded" || fail "(a) module not loaded"
  strace -f -qq -e trace=execve,openat,newfstatat,access -o st.stock ./prog >/dev/null
  strace -f -qq -e trace=execve,openat,newfstatat,access -o st.aud "${A[@]}" ./prog >/dev/null
  strace -f -qq -e trace=execve,openat,newfstatat,access -o st.dt ./prog-dt >/dev/null
  "$ldnote" explain --json --loader audit ./prog >ex.json || true
  local ss sa sd
  ss=$(strace_fails st.stock) sa=$(strace_fails st.aud) sd=$(strace_fails st.dt)
  echo "x86_64 $N/$N failing openat+newfstatat: stock $ss (explain $(json_fails ex.json stock));" \
    "LD_AUDIT $sa, DT_AUDIT $sd (explain --loader audit $(json_fails ex.json note));" \
    "with access(): stock $((ss + $(access_fails st.stock))), module $((sa + $(access_fails st.aud)))"
  check_eq "(a) stock failing calls = explain" "$(json_fails ex.json stock)" "$ss"
  check_eq "(a) LD_AUDIT failing calls = explain --loader audit" "$(json_fails ex.json note)" "$sa"
  check_eq "(a) DT_AUDIT failing calls = LD_AUDIT" "$sa" "$sd"
  [ $((sa + $(access_fails st.aud))) -le 2 ] && echo "ok: (a) at most 2 failing start-up calls" \
    || fail "(a) $sa failing calls with the module"

  # (b) LD_LIBRARY_PATH wins.
  mkdir -p override
  echo "int f5(void) { return 105; }" >l5x.c
  gcc -shared -fPIC -o override/libl5.so -Wl,-soname,libl5.so l5x.c
  check_eq "(b) LD_LIBRARY_PATH wins over the note" "$(( $(sum) + 100 ))" \
    "$(env LD_LIBRARY_PATH="$t/override" LD_AUDIT="$module" ./prog)"
  check_eq "(b) LD_LIBRARY_PATH wins over the note (DT_AUDIT)" "$(( $(sum) + 100 ))" \
    "$(env LD_LIBRARY_PATH="$t/override" ./prog-dt)"
  # ld.so PROGRAM: the module reads `--library-path` from the command line.
  check_eq "(b) ld.so --library-path wins over the note" "$(( $(sum) + 100 ))" \
    "$(/lib64/ld-linux-x86-64.so.2 --audit "$module" --library-path "$t/override" ./prog)"
  strace -f -qq -e trace=execve,openat,newfstatat -o st.ldso /lib64/ld-linux-x86-64.so.2 --audit "$module" ./prog >/dev/null
  check_eq "(a) ld.so --audit MODULE PROGRAM: failing calls as with LD_AUDIT" "$sa" "$(strace_fails st.ldso)"
  strace -f -qq -e trace=execve,openat,newfstatat -o st.llp env LD_LIBRARY_PATH="$t/override" LD_AUDIT="$module" ./prog >/dev/null
  "$ldnote" explain --json --loader audit --env "LD_LIBRARY_PATH=$t/override" ./prog >ex.llp.json || true
  check_eq "(b) failing calls with LD_LIBRARY_PATH = explain" "$(json_fails ex.llp.json note)" "$(strace_fails st.llp)"

  # (d) No note, a malformed note, no module: stock.
  strace -f -qq -e trace=execve,openat,newfstatat -o st.plain "${A[@]}" ./prog-plain >/dev/null
  check_eq "(d) a program without a note: stock failing calls" "$ss" "$(strace_fails st.plain)"
  cp prog prog-bad
  # An empty path list poisons the whole note (loader/README.md): libc.so.6's list becomes empty.
  python3 - prog-bad <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
i = b.find(b'libc.so.6\x00=/')
assert i >= 0, 'no libc.so.6 entry'
b[i + 10] = 0
open(p, 'wb').write(b)
PY
  LD_DEBUG=libs aud ./prog-bad >out.bad 2>dbg.bad || fail "(d) prog-bad failed"
  check_eq "(d) malformed note: same files" "$(dbg_init dbg.stock)" "$(dbg_init dbg.bad)"
  strace -f -qq -e trace=execve,openat,newfstatat -o st.bad "${A[@]}" ./prog-bad >/dev/null
  check_eq "(d) malformed note: stock failing calls" "$ss" "$(strace_fails st.bad)"
  "$ldnote" explain --json --loader audit ./prog-bad >ex.bad.json || true
  check_eq "(d) malformed note: explain agrees" "$(json_fails ex.bad.json note)" "$(strace_fails st.bad)"

  # (f) The DT_AUDIT program without its module file: glibc warns, the program runs stock.
  mv mod.so mod.so.away
  ./prog-dt >out.nomod 2>err.nomod || fail "(f) prog-dt failed without its module"
  check_eq "(f) runs without the module file" "$(sum)" "$(cat out.nomod)"
  grep -q "cannot be loaded as audit interface" err.nomod && echo "ok: (f) glibc warned" || fail "(f) no warning"
  strace -f -qq -e trace=execve,openat,newfstatat -o st.nomod ./prog-dt >/dev/null 2>&1
  check_eq "(f) without the module: stock failing calls + the module's open" "$((ss + 1))" "$(strace_fails st.nomod)"
  mv mod.so.away mod.so

  # (c) Moved library: stale entry, then the normal search.
  local m=7 later=$((N - 3))
  mv "d$m/libl$m.so" "d$later/libl$m.so"
  LD_DEBUG=libs aud ./prog >out.mv 2>dbg.mv || fail "(c) prog failed after the move"
  check_eq "(c) moved library found in the later dir" "$t/d$later/libl$m.so" "$(dbg_init dbg.mv | grep "/libl$m.so\$")"
  strace -f -qq -e trace=execve,openat,newfstatat -o st.mv "${A[@]}" ./prog >/dev/null
  "$ldnote" explain --json --loader audit ./prog >ex.mv.json || true
  check_eq "(c) moved library: failing calls = explain" "$(json_fails ex.mv.json note)" "$(strace_fails st.mv)"
  echo "x86_64 moved library: module $(strace_fails st.mv) failing calls"
  rm "d$later/libl$m.so"
  local en ep
  en=$("${A[@]}" ./prog 2>&1 >/dev/null | sed 's/^[^:]*: //') && fail "(c) prog ran without libl$m.so"
  ep=$(./prog 2>&1 >/dev/null | sed 's/^[^:]*: //') && fail "(c) stock prog ran without libl$m.so"
  check_eq "(c) missing library: same error as stock" "$ep" "$en"
  "${CC:-gcc}" -shared -fPIC -o "d$m/libl$m.so" -Wl,-soname,libl$m.so "l$m.c"

  # (c) Wrong machine and wrong class at the recorded path, the right file later: skipped.
  local w
  for w in aarch64 i686; do
    mv d3/libl3.so "d$later/libl3.so"
    "$w-linux-gnu-gcc" -shared -fPIC -o d3/libl3.so -Wl,-soname,libl3.so l3.c
    LD_DEBUG=libs aud ./prog >out.w 2>dbg.w || fail "(c) $w entry: prog failed"
    check_eq "(c) $w file at the recorded path: the right file is loaded" "$t/d$later/libl3.so" \
      "$(dbg_init dbg.w | grep '/libl3.so$')"
    check_eq "(c) $w entry: output" "$(sum)" "$(cat out.w)"
    rm d3/libl3.so
    mv "d$later/libl3.so" d3/libl3.so
  done

  # (e) dlopen from a noted library: libopen.so dlopens libx.so, which its note records (its
  # DT_NEEDED entry is turned into an ignored DT_CHECKSUM after noting, so only dlopen asks for
  # it; patchelf --remove-needed would drop the note).
  mkdir -p dx dopen
  echo 'int x(void) { return 7; }' >x.c
  gcc -shared -fPIC -o dx/libx.so -Wl,-soname,libx.so x.c
  cat >open.c <<'C'
#include <dlfcn.h>
int opener(void) { void *h = dlopen("libx.so", RTLD_NOW); int (*f)(void) = h ? (int (*)(void))dlsym(h, "x") : 0; return f ? f() : -1; }
C
  local orp="" i
  for i in $(seq 0 $((N - 1))); do orp+="$t/d$i:"; done
  "$ldnote" link -- gcc -shared -fPIC -o dopen/libopen.so -Wl,-soname,libopen.so open.c -Wl,--no-as-needed -Ldx -lx \
    -Wl,--enable-new-dtags,-rpath,$orp$t/dx
  python3 - dopen/libopen.so <<'PY'
import struct, sys
p = sys.argv[1]; b = bytearray(open(p, 'rb').read())
shoff, = struct.unpack_from('<Q', b, 0x28); shentsize, shnum = struct.unpack_from('<HH', b, 0x3a)
for i in range(shnum):
    ty, = struct.unpack_from('<I', b, shoff + i * shentsize + 4)
    if ty == 6:  # SHT_DYNAMIC
        off, size = struct.unpack_from('<QQ', b, shoff + i * shentsize + 0x18)
        for e in range(off, off + size, 16):
            if struct.unpack_from('<q', b, e)[0] == 1:  # the first DT_NEEDED: libx.so
                struct.pack_into('<q', b, e, 0x6ffffdf8)
                break
open(p, 'wb').write(b)
PY
  check_eq "(e) libopen.so no longer needs libx.so" "0" "$(readelf -d dopen/libopen.so | grep -c 'libx.so')"
  grep -q libx.so <<<"$("$ldnote" show dopen/libopen.so)" || fail "(e) libopen.so's note lost libx.so"
  echo 'int opener(void); int main(void) { return opener() == 7 ? 0 : 1; }' >om.c
  "$ldnote" link -- gcc -o oprog om.c -Ldopen -lopen -Wl,--enable-new-dtags,-rpath,$t/dopen:/lib/x86_64-linux-gnu
  "${A[@]}" ./oprog && echo "ok: (e) dlopen from a noted library works" || fail "(e) oprog failed"
  strace -f -qq -e trace=execve,openat,newfstatat -o st.o ./oprog >/dev/null
  strace -f -qq -e trace=execve,openat,newfstatat -o st.oa "${A[@]}" ./oprog >/dev/null
  echo "x86_64 dlopen: failing calls stock $(strace_fails st.o), module $(strace_fails st.oa)"
  check_eq "(e) dlopen through the note: no failing call" "0" "$(strace_fails st.oa)"
  [ "$(strace_fails st.o)" -gt "$N" ] || fail "(e) stock dlopen search was expected to probe every dir"

  # (h) Stale notes and $ORIGIN; the $ORIGIN program's failing calls as before the rule (the
  # simulator's audit reader, for which a fresh note has nothing stale).
  qrun=()
  need patchelf && stale_rule x86_64 "$t/stale" gcc /lib/x86_64-linux-gnu "$module"
  if [ -x "$t/stale/bin/prog-o" ]; then
    strace -f -qq -e trace=execve,openat,newfstatat -o st.o0 "$t/stale/bin/prog-o" >/dev/null
    strace -f -qq -e trace=execve,openat,newfstatat -o st.o1 "${A[@]}" "$t/stale/bin/prog-o" >/dev/null
    "$ldnote" explain --json --loader audit "$t/stale/bin/prog-o" >ex.o.json || true
    echo "x86_64 \$ORIGIN program: failing calls stock $(strace_fails st.o0), module $(strace_fails st.o1) (explain --loader audit $(json_fails ex.o.json note))"
    check_eq "(h) \$ORIGIN program: failing calls = explain --loader audit" "$(json_fails ex.o.json note)" "$(strace_fails st.o1)"
  fi
  cd "$root"
  [ "$failures" = 0 ] && rm -rf "$t"
}

# One cross target under qemu-user with Debian's stock loader and libc (libc6-*-cross): the
# module built for it by audit/build.sh, the layout with NX libraries built by the cross compiler.
# Same output and files with the module (LD_AUDIT and DT_AUDIT), the failing search calls
# (qemu -strace) as `ldnote explain --qemu` predicts, LD_LIBRARY_PATH wins, a moved library is
# found by the normal search, a DT_AUDIT program runs without its module file.
cross() { # NAME TRIPLE QEMU NX
  local name=$1 triple=$2 qemu=$3 N=$4
  local sysroot=/usr/$triple cc=$triple-gcc module t out rc
  need "$cc" "$qemu" jq readelf || return 0
  if [ ! -e "$sysroot/lib/libc.so.6" ]; then
    $ci && { echo "FAIL: CI: $sysroot/lib/libc.so.6 missing (libc6-*-cross)" >&2; exit 1; }
    echo "SKIP $name: $sysroot/lib/libc.so.6 missing" >&2
    return 0
  fi
  rc=0
  out=$(bash audit/build.sh --target "$triple" 2>"/tmp/ldnote-audit-build.$$") || rc=$?
  if [ "$rc" = 3 ]; then
    # No `core` for the Rust target (tests/install.sh adds the tier-2 ones, and a nightly
    # toolchain with rust-src for armel and mips64el, whose `core` is built from source).
    if $ci; then
      cat "/tmp/ldnote-audit-build.$$" >&2
      echo "FAIL: CI: no Rust core for $name" >&2
      exit 1
    fi
    echo "SKIP $name: $(tail -n 1 "/tmp/ldnote-audit-build.$$")" >&2
    rm -f "/tmp/ldnote-audit-build.$$"
    return 0
  fi
  [ "$rc" = 0 ] || { cat "/tmp/ldnote-audit-build.$$" >&2; rm -f "/tmp/ldnote-audit-build.$$"; fail "$name: audit/build.sh failed"; return 0; }
  rm -f "/tmp/ldnote-audit-build.$$"
  module=$(tail -n 1 <<<"$out") && module=${module#module=}
  check_eq "$name module has no DT_NEEDED" "" "$(readelf -d "$module" | grep NEEDED || true)"
  t=$(mktemp -d "/tmp/ldnote-audit-e2e-$name.XXXXXX")
  chmod 755 "$t"
  echo "== $name under $qemu, Debian's stock loader in $sysroot: $N libraries, scratch $t"
  make_libs "$t" "$cc"
  mapfile -t args < <(link_args "$t" "$sysroot/lib")
  "$ldnote" link -- "$cc" -o "$t/prog" "${args[@]}"
  cp "$module" "$t/mod.so"
  "$ldnote" link --audit="$t/mod.so" -- "$cc" -o "$t/prog-dt" "${args[@]}"
  cd "$t"
  local q=("$qemu" -L "$sysroot")
  "${q[@]}" -E LD_DEBUG=libs ./prog >out.stock 2>dbg.stock || fail "$name prog failed"
  "${q[@]}" -E LD_DEBUG=libs -E LD_AUDIT="$module" ./prog >out.aud 2>dbg.aud || fail "$name LD_AUDIT failed"
  "${q[@]}" -E LD_DEBUG=libs ./prog-dt >out.dt 2>dbg.dt || fail "$name prog-dt failed"
  check_eq "$name output stock" "$(sum)" "$(cat out.stock)"
  check_eq "$name output with the module" "$(sum)" "$(cat out.aud)"
  check_eq "$name output with DT_AUDIT" "$(sum)" "$(cat out.dt)"
  check_eq "$name (a) libraries initialised: N + libc" "$((N + 1))" "$(dbg_init dbg.aud | wc -l)"
  check_eq "$name (a) same files with the module" "$(dbg_init dbg.stock)" "$(dbg_init dbg.aud)"
  check_eq "$name (a) same files with DT_AUDIT" "$(dbg_init dbg.stock)" "$(dbg_init dbg.dt)"
  grep -q "calling init: $module" dbg.aud && echo "ok: $name (a) the module was loaded" || fail "$name (a) module not loaded"
  "${q[@]}" -strace ./prog >/dev/null 2>qs.stock || true
  "${q[@]}" -E LD_AUDIT="$module" -strace ./prog >/dev/null 2>qs.aud || true
  "$ldnote" explain --json --sysroot "$sysroot" --qemu --loader audit ./prog >ex.json || true
  local ss sa
  ss=$(qemu_strace_fails qs.stock) sa=$(qemu_strace_fails qs.aud)
  echo "$name $N/$N failing openat+stat (qemu -strace): stock $ss (explain $(json_fails ex.json stock)), module $sa (explain $(json_fails ex.json note))"
  if [ -s ex.json ]; then
    check_eq "$name (a) stock = explain" "$(json_fails ex.json stock)" "$ss"
    check_eq "$name (a) module = explain --loader audit" "$(json_fails ex.json note)" "$sa"
  else
    # `ldnote explain` has no ld.so.cache model for this target (mips64el): every library is
    # noted and present, so the module leaves no failing search call.
    echo "$name: no \`ldnote explain\` prediction; the module must leave no failing call"
    check_eq "$name (a) module: no failing openat/stat" "0" "$sa"
  fi
  [ "$ss" -gt "$N" ] || fail "$name (a) the stock search was expected to probe every directory"
  mkdir -p override
  echo "int f5(void) { return 105; }" >l5x.c
  "$cc" -shared -fPIC -o override/libl5.so -Wl,-soname,libl5.so l5x.c
  check_eq "$name (b) LD_LIBRARY_PATH wins" "$(( $(sum) + 100 ))" \
    "$("${q[@]}" -E LD_LIBRARY_PATH="$t/override" -E LD_AUDIT="$module" ./prog)"
  local m=7 later=$((N - 1))
  mv "d$m/libl$m.so" "d$later/libl$m.so"
  "${q[@]}" -E LD_DEBUG=libs -E LD_AUDIT="$module" ./prog >out.mv 2>dbg.mv || fail "$name (c) failed after the move"
  check_eq "$name (c) moved library found in the later dir" "$t/d$later/libl$m.so" "$(dbg_init dbg.mv | grep "/libl$m.so\$")"
  mv "d$later/libl$m.so" "d$m/libl$m.so"
  mv mod.so mod.so.away
  check_eq "$name (f) DT_AUDIT program runs without its module" "$(sum)" "$("${q[@]}" ./prog-dt 2>/dev/null)"
  # (h) where the loader relocates the dynamic section in memory (aarch64) and where it keeps it
  # read-only (riscv64, mips64el: DT_STRTAB stays an address relative to l_addr).
  if [ "$name" = aarch64 ] || [ "$name" = riscv64 ] || [ "$name" = mips64el ]; then
    qrun=("${q[@]}")
    need patchelf && stale_rule "$name" "$t/stale" "$cc" "$sysroot/lib" "$module"
    qrun=()
  fi
  cd "$root"
  [ "$failures" = 0 ] && rm -rf "$t"
}

# ImageMagick's convert closure re-laid out Nix-style (bench/layout.py: every library in its own
# store directory, each object's DT_RUNPATH the directories of its direct needs, then a copy of
# Debian's glibc), every object noted by `ldnote patch`; the module from LD_AUDIT.
magick() {
  need convert-im6.q16 patchelf strace jq python3 || return 0
  local module t im sprog mprog
  module=$(bash audit/build.sh | tail -n 1) && module=${module#module=}
  im=$(command -v convert-im6.q16)
  t=$(mktemp -d /tmp/ldnote-audit-magick.XXXXXX)
  chmod 755 "$t"
  echo "== ImageMagick convert closure, Nix-style, stock Debian glibc copy: scratch $t"
  python3 bench/layout.py glibc-copy "$t/glibc"
  sprog=$(python3 bench/layout.py closure "$t/stock" "$im" "$t/glibc")
  mprog=$(python3 bench/layout.py closure "$t/noted" "$im" "$t/glibc")
  find "$t/noted/store" -type f -print0 | xargs -0 "$ldnote" patch
  cd "$t"
  LD_DEBUG=libs "$sprog" -version >out.stock 2>dbg.stock || fail "convert (stock layout) failed"
  LD_DEBUG=libs LD_AUDIT="$module" "$mprog" -version >out.aud 2>dbg.aud || fail "convert with the module failed"
  check_eq "magick: same output" "$(cat out.stock)" "$(cat out.aud)"
  # The same libraries (their store paths differ only in the layout's root).
  check_eq "magick: same files loaded" "$(dbg_init dbg.stock | sed "s|^$t/stock/||")" \
    "$(dbg_init dbg.aud | sed "s|^$t/noted/||")"
  check_eq "magick: no search with the module (no trying file= line)" "0" "$(grep -c 'trying file=' dbg.aud || true)"
  # Failing calls of the library search: under the layout, or a name ending in .so*.
  lib_fails() {
    awk '/execve\(/ { n = 0 } /(openat|newfstatat)\(/ && / = -1 E/ && ($0 ~ "\"'"$t"'/" || $0 ~ /\.so(\.[0-9]+)*"/) { n++ } END { print n + 0 }' "$1"
  }
  strace -f -qq -e trace=execve,openat,newfstatat -o st.stock "$sprog" -version >/dev/null
  strace -f -qq -e trace=execve,openat,newfstatat -o st.aud env LD_AUDIT="$module" "$mprog" -version >/dev/null
  "$ldnote" explain --json --loader audit "$mprog" >ex.json || true
  "$ldnote" explain --json "$sprog" >ex.stock.json || true
  local ls la
  ls=$(lib_fails st.stock) la=$(lib_fails st.aud)
  echo "magick: failing library-search openat+newfstatat: stock $ls (explain $(json_fails ex.stock.json stock)), module $la (explain $(json_fails ex.json note));" \
    "all failing calls: stock $(strace_fails st.stock), module $(strace_fails st.aud)"
  check_eq "magick: stock library search = explain" "$(json_fails ex.stock.json stock)" "$ls"
  check_eq "magick: module library search = explain --loader audit" "$(json_fails ex.json note)" "$la"
  check_eq "magick: no failing library-search call with the module" "0" "$la"
  cd "$root"
  [ "$failures" = 0 ] && rm -rf "$t"
}

# name, Debian's triple, qemu-user binary, libraries in the layout (aarch64 the full N; the
# others 10, to keep the run short). LDNOTE_E2E_CROSS lists the names to run (default all);
# LDNOTE_E2E_AARCH64=0 leaves out aarch64.
cross_targets=(
  "aarch64 aarch64-linux-gnu qemu-aarch64 $N"
  "i686 i686-linux-gnu qemu-i386 10"
  "armhf arm-linux-gnueabihf qemu-arm 10"
  "armel arm-linux-gnueabi qemu-arm 10"
  "riscv64 riscv64-linux-gnu qemu-riscv64 10"
  "ppc64le powerpc64le-linux-gnu qemu-ppc64le 10"
  "s390x s390x-linux-gnu qemu-s390x 10"
  "mips64el mips64el-linux-gnuabi64 qemu-mips64el 10"
)
if [ "${LDNOTE_E2E_NATIVE:-1}" != 0 ]; then
  native
  magick
fi
for spec in "${cross_targets[@]}"; do
  read -r name triple qemu nx <<<"$spec"
  [ "$name" = aarch64 ] && [ "${LDNOTE_E2E_AARCH64:-1}" = 0 ] && { echo "SKIP aarch64 (LDNOTE_E2E_AARCH64=0)"; continue; }
  [ -n "${LDNOTE_E2E_CROSS:-}" ] && ! grep -qw "$name" <<<"$LDNOTE_E2E_CROSS" && continue
  cross "$name" "$triple" "$qemu" "$nx"
done
if [ "$failures" != 0 ]; then
  echo "audit e2e: $failures failure(s)" >&2
  exit 1
fi
echo "audit e2e: all passed"
