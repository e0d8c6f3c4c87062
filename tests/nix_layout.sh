# Sourced by tests/loader_e2e.sh and tests/audit_e2e.sh: their common start, and the Nix-style
# layout of their end-to-end tests. N libraries, each alone in its own directory (as each store
# path is), all in the program's DT_RUNPATH in order, the C library's directory last, so that
# the stock loader probes every earlier directory for every later library. Uses the caller's N.

# e2e_start: what both tests set up first, from the repository root ($root): N
# (LDNOTE_E2E_LIBS, default 40, at least 10: the cases use libl5 and libl7), ci (CI=true makes
# a missing tool an error), the shipped ldnote (tests/ldnote_bin.sh), and the failure count.
e2e_start() {
  N=${LDNOTE_E2E_LIBS:-40}
  [ "$N" -ge 10 ] || { echo "LDNOTE_E2E_LIBS must be at least 10" >&2; exit 2; }
  ci=false
  [ "${CI:-}" = true ] && ci=true
  . "$root/tests/ldnote_bin.sh"
  ldnote=$(ldnote_bin "$root")
  failures=0
}

# make_libs DIR CC: N libraries DIR/d$i/libl$i.so (soname libl$i.so), and main.c printing the
# sum of their values.
make_libs() {
  local t=$1 cc=$2 i
  {
    for i in $(seq 0 $((N - 1))); do echo "int f$i(void);"; done
    echo '#include <stdio.h>'
    echo 'int main(void) { long s = 0;'
    for i in $(seq 0 $((N - 1))); do echo "  s += f$i();"; done
    echo '  printf("%ld\n", s); return 0; }'
  } >"$t/main.c"
  for i in $(seq 0 $((N - 1))); do
    mkdir -p "$t/d$i"
    echo "int f$i(void) { return $i; }" >"$t/l$i.c"
    "$cc" -shared -fPIC -o "$t/d$i/libl$i.so" -Wl,-soname,libl$i.so "$t/l$i.c"
  done
}

# link_args DIR LIBDIR [LDSO]: the compiler arguments after the compiler (no -o); LDSO, when
# given, becomes PT_INTERP.
link_args() {
  local t=$1 libdir=$2 ldso=${3:-} i rp=
  echo "$t/main.c"
  echo "-Wl,--no-as-needed"
  for i in $(seq 0 $((N - 1))); do
    echo "-L$t/d$i"
    echo "-l:libl$i.so"
    rp+="$t/d$i:"
  done
  echo "-Wl,--enable-new-dtags,-rpath,$rp$libdir"
  [ -z "$ldso" ] || echo "-Wl,--dynamic-linker=$ldso"
}

# What main prints.
expected_sum() { echo $((N * (N - 1) / 2)); }
