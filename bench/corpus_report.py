"""Totals, causes and the Markdown report of a corpus run (bench/corpus.py)."""

import collections
import os

# Causes of a difference between the stock and the note-aware run that are not the note's doing.
CAUSES = {
    "escape": "a library found outside the layout through Debian's `ld.so.cache` or multiarch "
              "default directories (a `dlopen` by name, or NSS): the note-aware glibc is built "
              "Nix-style (`--prefix`), so its only default directory is its own `lib` and it "
              "reads no host cache; the note plays no part (no object of the layout asks for "
              "that name)",
    "nondeterministic": "the program's output (or, for programs that start others, the set of "
                        "files they open) differs between two runs with the same (stock) loader "
                        "(times, PIDs, process scheduling)",
    "glibc-prefix": "after start-up the program uses glibc's compiled-in data paths (locales such "
                    "as `C.UTF-8`, gconv modules): Debian's glibc has them under `/usr`, the "
                    "note-aware build under its `--prefix`, where `loader/build.sh` installs only "
                    "the libraries; the run shows the calls into that prefix",
    "unexplained": "UNEXPLAINED: a bug to report",
}


def cause(cfg, v, kind, detail):
    store = cfg["store"]
    if kind == "elf-opens" and v.get("nondeterministic_opens"):
        return "nondeterministic"
    if kind in ("loaded-list", "elf-opens"):
        # Only a file the stock run found outside the layout, and nothing the note-aware run
        # found instead.
        return "escape" if store not in detail and detail.endswith("note only []") \
            else "unexplained"
    if kind == "output":
        if v.get("nondeterministic"):
            return "nondeterministic"
        if any(k in ("loaded-list", "elf-opens") and cause(cfg, v, k, d) == "escape"
               for k, d in v["mismatch"] if k != "output"):
            return "escape"
        if v.get("glibc_prefix_calls"):
            return "glibc-prefix"
    return "unexplained"


def origin_in_closure(objs, dst):
    """Whether the program or a library of its closure keeps an `$ORIGIN` run-path component."""
    by_path = {o["path"]: o for o in objs}
    todo = [o["path"] for o in objs if o["dst"] == dst]
    seen = set()
    while todo:
        o = by_path.get(todo.pop())
        if o is None or o["path"] in seen:
            continue
        seen.add(o["path"])
        if "$ORIGIN" in o.get("runpath", ""):
            return True
        todo += [d["path"] for d in o.get("deps", [])]
    return False


def pct(a, b):
    return f"{100.0 * a / b:.2f}%" if b else "n/a"


def summarise(cfg, objs, verdicts, skipped, notes):
    started = [v for v in verdicts if v["starts"]]
    t = collections.Counter()
    t["packages"] = len({o["package"] for o in objs})
    t["objects"] = len(objs)
    t["noted_objects"] = sum(1 for o in objs if o.get("ldnote_note"))
    t["programs"] = len(verdicts) + len(skipped)
    t["programs_run"] = len(verdicts)
    t["programs_not_runnable"] = len(skipped)
    t["programs_started"] = len(started)
    for v in started:
        t["same_loaded"] += v["same_loaded"]
        t["same_opens"] += v["same_opens"]
        t["same_output"] += v["same_output"]
        t["same_all"] += v["same_loaded"] and v["same_opens"]
        for side in ("stock", "note"):
            t[f"startup_fail_{side}"] += v.get(f"startup_fail_{side}", 0)
            t[f"explain_fail_{side}"] += v.get(f"explain_fail_{side}", 0)
            t[f"explain_exact_{side}"] += bool(v.get(f"explain_exact_{side}"))
        t["run_fail_stock"] += v["run_fail"][0]
        t["run_fail_note"] += v["run_fail"][1]
        v["causes"] = [cause(cfg, v, k, d) for k, d in v["mismatch"]]
        for c in v["causes"]:
            t[f"mismatch_{c}"] += 1
    # Which programs still fail calls with the note, and whether all keep `$ORIGIN` components
    # (written as `?` hints: the loader searches them as it searches DT_RUNPATH directories).
    left = [v for v in started if v.get("startup_fail_note")]
    t["note_fail_programs"] = len(left)
    t["note_fail_programs_origin"] = sum(1 for v in left if origin_in_closure(objs, v["program"]))
    t["unexplained"] = t["mismatch_unexplained"]
    kinds = collections.Counter()
    for o, ks in notes:
        for k in ks:
            kinds[k] += 1
        if any(k.startswith("other") or k.startswith("same entries") for k in ks):
            t["unexplained"] += 1
    t["patchelf_compared"] = len(notes)
    t["patchelf_identical"] = kinds["identical"]
    t["check_failed"] = sum(1 for o in objs if o.get("check_error"))
    t["patch_failed"] = sum(1 for o in objs if o.get("patch_error"))
    t["repatch_changed"] = sum(1 for o in objs if o.get("repatch_changed"))
    t["unexplained"] += t["check_failed"] + t["patch_failed"] + t["repatch_changed"]
    per_pkg = collections.defaultdict(collections.Counter)
    for v in started:
        p = per_pkg[v["package"]]
        p["programs"] += 1
        p["same"] += v["same_loaded"] and v["same_opens"]
        p["same_output"] += v["same_output"]
        p["stock"] += v.get("startup_fail_stock", 0)
        p["note"] += v.get("startup_fail_note", 0)
        p["exact"] += bool(v.get("explain_exact_stock")) and bool(v.get("explain_exact_note"))
    for o in objs:
        per_pkg[o["package"]]["objects"] += 1
    return {"totals": dict(t), "patchelf_kinds": dict(kinds),
            "per_package": {k: dict(v) for k, v in sorted(per_pkg.items())},
            "bad_objects": [{"path": o["path"], "check": o.get("check_error"),
                             "patch": o.get("patch_error"),
                             "repatch_changed": o.get("repatch_changed")}
                            for o in objs if o.get("check_error") or o.get("patch_error")
                            or o.get("repatch_changed")]}


def markdown(cfg, res, verdicts, skipped):
    t, arch = res["totals"], cfg["arch"]
    g = t.get
    lines = [f"## {arch}", ""]
    lines += [
        f"- Packages laid out: {g('packages', 0)}; ELF objects: {g('objects', 0)} "
        f"({g('noted_objects', 0)} noted); programs: {g('programs', 0)} "
        f"({g('programs_not_runnable', 0)} not runnable in the layout, "
        f"{g('programs_run', 0)} run, {g('programs_started', 0)} start with the stock loader).",
        f"- Identical loaded object list (`LD_TRACE_LOADED_OBJECTS`, path by path): "
        f"{g('same_loaded', 0)} of {g('programs_started', 0)} "
        f"({pct(g('same_loaded', 0), g('programs_started', 0))}); identical ELF files opened "
        f"during the whole `--version` run (incl. `dlopen`): {g('same_opens', 0)} "
        f"({pct(g('same_opens', 0), g('programs_started', 0))}); same output and exit status: "
        f"{g('same_output', 0)} ({pct(g('same_output', 0), g('programs_started', 0))}).",
        f"- Failing start-up `openat`/`newfstatat` (sum over programs): stock "
        f"{g('startup_fail_stock', 0):,} -> note-aware {g('startup_fail_note', 0):,} "
        f"({pct(g('startup_fail_stock', 0) - g('startup_fail_note', 0), g('startup_fail_stock', 0))}"
        f" fewer); whole `--version` run: {g('run_fail_stock', 0):,} -> "
        f"{g('run_fail_note', 0):,}." + (
            f" The note-aware start-up failures are in {g('note_fail_programs', 0)} programs, "
            f"{g('note_fail_programs_origin', 0)} of them with `$ORIGIN` run-path components in "
            f"their closure (their own or a library's), which the note records as `?` hints "
            f"(note-format.md, writer rule 3), so the loader searches them, hwcaps "
            f"subdirectories included, as it searches `DT_RUNPATH` directories."
            if g("note_fail_programs") else ""),
        f"- `ldnote explain` exact (whole start-up call sequence and every `trying` line): stock "
        f"{g('explain_exact_stock', 0)} of {g('programs_started', 0)}, note-aware "
        f"{g('explain_exact_note', 0)} of {g('programs_started', 0)}; predicted failing calls "
        f"{g('explain_fail_stock', 0):,} -> {g('explain_fail_note', 0):,}.",
    ]
    if g("patchelf_compared"):
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(res["patchelf_kinds"].items(),
                                                         key=lambda x: -x[1]))
        lines.append(f"- patchelf 0.19.3 differential ({g('patchelf_compared', 0)} objects): "
                     f"{kinds}.")
    else:
        lines.append("- patchelf differential: not applicable (patchelf cannot resolve inside "
                     "a sysroot).")
    lines.append(f"- `ldnote check` failed on {g('check_failed', 0)} objects; `ldnote patch` "
                 f"failed on {g('patch_failed', 0)}; a second `ldnote patch` changed "
                 f"{g('repatch_changed', 0)} files.")
    lines.append(f"- Unexplained mismatches: **{g('unexplained', 0)}**.")
    lines += ["", "### Mismatches", ""]
    mm = [(v, k, d, c) for v in verdicts if v["starts"]
          for (k, d), c in zip(v["mismatch"], v.get("causes", []))]
    if mm:
        lines += ["| program | check | detail | cause |", "|---|---|---|---|"]
        for v, k, d, c in mm:
            if k == "output" and c == "glibc-prefix":
                d = f"note run: {v['glibc_prefix_calls'][:2]}; " + d
            d = d.replace("|", "\\|").replace(cfg["sysroot"] + cfg["store"], "$STORE")
            d = d.replace(cfg["store"], "$STORE")[:300]
            lines.append(f"| `{os.path.basename(v['program'])}` ({v['package']}) | {k} | {d} "
                         f"| {c} |")
        lines += [""] + [f"- **{c}**: {CAUSES[c]}" for c in sorted({x[3] for x in mm})]
    else:
        lines.append("None.")
    for b in res["bad_objects"]:
        lines.append(f"- object `{b['path']}`: check {b['check']!r}, patch {b['patch']!r}, "
                     f"second patch changed bytes: {b['repatch_changed']}")
    nstart = [v for v in verdicts if not v["starts"]]
    lines += ["", "### Programs that do not start with the stock loader in the layout", ""]
    lines.append(f"{len(nstart)} (not compared)." + (" " + "; ".join(
        f"`{os.path.basename(v['program'])}`: {v['why_not'][0][:120]}" for v in nstart[:30])
        if nstart else ""))
    if skipped:
        lines += ["", f"Not runnable in the layout (not run): {len(skipped)}: " + "; ".join(
            f"`{os.path.basename(p)}`: {why}" for p, why in skipped[:20])
            + (" ..." if len(skipped) > 20 else "")]
    lines += ["", "### Per package", "",
              "| package | objects | programs started | same loaded files | same output "
              "| failing start-up calls stock -> note | explain exact |",
              "|---|---|---|---|---|---|---|"]
    for name, p in res["per_package"].items():
        if not p.get("programs"):
            continue
        lines.append(f"| {name} | {p.get('objects', 0)} | {p['programs']} | {p['same']} | "
                     f"{p['same_output']} | {p['stock']:,} -> {p['note']:,} | {p['exact']} |")
    return "\n".join(lines) + "\n"
