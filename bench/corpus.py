#!/usr/bin/env python3
"""The distribution-scale proof: real Debian binaries re-laid out Nix-style, noted by ldnote, run
with the stock loader and with the note-aware loader (stdlib only). Driven by bench/corpus.sh.

  corpus.py --arch x86_64|aarch64 --root DIR --ldnote PATH --note-ldso PATH
            [--debs DIR] [--programs FILE] [--json OUT] [--markdown OUT] [--min-programs N]

--programs: run only these programs (one original path per line, e.g. /usr/bin/jq) and lay out
only their closures; otherwise every program and library of every installed package (x86_64) or
of every package in --debs (aarch64). Resumable: the layout is kept in DIR and each program's
runs are recorded as they finish. Exit status 1 when any check fails (a mismatch, a failed
`ldnote check`, a byte changed by a second `ldnote patch`, a patchelf difference of no known kind).
"""

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import corpus_build as B  # noqa: E402
import corpus_compare as C  # noqa: E402
import corpus_layout as L  # noqa: E402
import corpus_report as R  # noqa: E402
import corpus_run as X  # noqa: E402


def host_cache():
    out = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    cache = {}
    for m in re.finditer(r"^\s+(\S+) \(libc6,x86-64[^)]*\) => (\S+)$", out, re.M):
        cache.setdefault(m.group(1), m.group(2))
    return cache


def unpack(debs, dest):
    os.makedirs(dest, exist_ok=True)
    for deb in sorted(glob.glob(os.path.join(debs, "*.deb"))):
        name = os.path.basename(deb)[:-4]
        pkg, ver = name.split("_")[:2]
        ver = urllib.parse.unquote(ver)  # apt-get download writes the epoch's ':' as %3a
        d = os.path.join(dest, f"{pkg}_{ver}")
        if not os.path.exists(d + ".done"):
            subprocess.run(["dpkg-deb", "-x", deb, d], check=True)
            open(d + ".done", "w").close()
    return dest


def closure_ok(objs, prog):
    """(runnable, reason): a program runs only if its whole closure was laid out and needs no
    glibc library that the note-aware build lacks."""
    by_path = {o["path"]: o for o in objs}
    seen, todo = set(), [prog]
    while todo:
        o = by_path.get(todo.pop())
        if o is None or o["path"] in seen:
            continue
        seen.add(o["path"])
        if o.get("unresolved"):
            return False, f"{os.path.basename(o['path'])} needs {', '.join(o['unresolved'])}, " \
                "which no package provides"
        if o.get("glibc_other"):
            return False, f"{os.path.basename(o['path'])} needs {', '.join(o['glibc_other'])} " \
                "(Debian glibc, not in the note-aware build)"
        todo += [d["path"] for d in o["deps"]]
    return True, None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True, choices=sorted(L.ARCHES))
    ap.add_argument("--root", required=True)
    ap.add_argument("--ldnote", required=True)
    ap.add_argument("--note-ldso", required=True)
    ap.add_argument("--debs")
    ap.add_argument("--programs")
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    ap.add_argument("--min-programs", type=int, default=1)
    ap.add_argument("--build-only", action="store_true")
    a = ap.parse_args()
    root = os.path.abspath(a.root)
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o755)
    cfg = {"arch": a.arch, "root": root, "ldnote": os.path.abspath(a.ldnote),
           "note_libdir": os.path.dirname(os.path.abspath(a.note_ldso))}
    if a.arch == "x86_64":
        cfg.update(sysroot="", store=f"{root}/store", glibc_base=f"{root}/glibc")
        pkgs = L.installed_packages("x86_64")
        cache, glibc_lib = host_cache(), "/usr/lib/x86_64-linux-gnu"
    else:
        sysroot = os.path.join(root, "sysroot")
        cfg.update(sysroot=sysroot, store="/store", glibc_base="/glibc")
        pkgs = L.unpacked_packages(unpack(a.debs, os.path.join(root, "unpacked")))
        libc = [p for p in pkgs if p.name == "libc6"]
        if not libc:
            sys.exit("corpus.py: no libc6 among the arm64 packages")
        glibc_lib = os.path.dirname(libc[0].files["/usr/lib/aarch64-linux-gnu/libc.so.6"][0])
        cache = None
    glibc_ver = next((p.version for p in pkgs if p.name == "libc6"), "2.36")
    cfg["glibc"] = f"{cfg['store']}/{L.store_name('glibc', glibc_ver)}/lib"
    roots = None
    if a.programs:
        roots = [L.norm(x.strip()) for x in open(a.programs) if x.strip()
                 and not x.startswith("#")]
    state = B.build(cfg, pkgs, roots, glibc_lib, cache)
    # Refreshed on every run: the loaders may have been rebuilt since the layout was made.
    B.glibc_dirs(cfg, glibc_lib)
    if a.build_only:
        return
    objs = state["objects"]
    roots = state["roots"]
    progs, skipped = [], []
    for o in objs:
        if not o["program"] or roots is not None and o["path"] not in roots:
            continue
        ok, why = closure_ok(objs, o["path"])
        (progs if ok else skipped).append(o["dst"] if ok else (o["dst"], why))
    B.log(f"{len(progs)} programs to run, {len(skipped)} not runnable")
    recs = {}
    for phase in ("stock", "note"):
        recs[phase] = X.run_all(cfg, progs, phase, B.select)
    B.select(cfg, "note")
    prefix = os.path.dirname(os.path.realpath(cfg["note_libdir"])) + "/"
    verdicts = [C.program(recs["stock"][p], recs["note"][p], prefix) for p in progs]
    recheck(cfg, verdicts, recs)
    by_dst = {o["dst"]: o for o in objs}
    for v in verdicts:
        v["package"] = by_dst[v["program"]]["package"]
    notes = [(o, C.classify_note(o, cfg["sysroot"], a.arch)) for o in objs
             if o["needed"] and "patchelf_note" in o]
    result = R.summarise(cfg, objs, verdicts, skipped, notes)
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"summary": result, "verdicts": verdicts,
                       "skipped": skipped}, f, indent=1)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(R.markdown(cfg, result, verdicts, skipped))
    print(json.dumps(result["totals"], indent=1))
    bad = result["totals"]["unexplained"]
    if result["totals"]["programs_started"] < a.min_programs:
        print(f"corpus: only {result['totals']['programs_started']} programs started "
              f"(expected at least {a.min_programs})", file=sys.stderr)
        bad += 1
    sys.exit(1 if bad else 0)


def recheck(cfg, verdicts, recs):
    """A program whose output or opened files differ is rerun: twice more with the stock loader
    and once with the note-aware one. The difference is not deterministic (times, PIDs, process
    scheduling) if the stock runs differ among themselves or the note-aware rerun matches stock."""
    work = os.path.join(cfg["root"], "work")

    def out(r):
        return r["exit"], r["stdout"], r["stderr"]

    for v in verdicts:
        if not any(k in ("output", "elf-opens") for k, _ in v["mismatch"]):
            continue
        s = recs["stock"][v["program"]]
        B.select(cfg, "stock")
        again = [X.run_program(cfg, v["program"], "stock", work) for _ in range(2)]
        B.select(cfg, "note")
        n = X.run_program(cfg, v["program"], "note", work)
        v["nondeterministic"] = any(out(a) != out(s) for a in again) or out(n) == out(s)
        v["nondeterministic_opens"] = any(
            sorted(a["elf_opens"]) != sorted(s["elf_opens"]) for a in again) or \
            sorted(n["elf_opens"]) == sorted(s["elf_opens"])


if __name__ == "__main__":
    main()
