"""Compare the stock and note-aware runs of a corpus and classify every difference
(bench/corpus.py). Pure functions over the records of corpus_build and corpus_run."""

import os

import corpus_elf

HWCAPS_X86 = {"tls", "x86_64", "haswell", "xeon_phi", "avx512_1", "i686", "sse2"}
HWCAPS_A64 = {"tls", "aarch64", "atomics", "asimd"}


# Paths that differed in the last program() call (for the cause: inside the layout or not).
DIFF_PATHS = []


def window(rec, pred):
    """The start-up part of the traced calls: as many as the prediction has."""
    return rec["calls"][:len(pred)]


def fails(calls):
    return sum(1 for c in calls if not c[2])


def program(stock, note, glibc_prefix):
    """One program's verdict: a dict of facts and a list of mismatches (kind, detail)."""
    v = {"program": stock["program"], "mismatch": []}
    DIFF_PATHS.clear()
    v["starts"] = stock["trace_exit"] == 0 and bool(stock["loaded"])
    if not v["starts"]:
        v["why_not"] = (stock["stderr"] or "").strip().splitlines()[-1:] or ["(no output)"]
        return v
    mm = v["mismatch"]
    v["loaded"] = len(stock["loaded"])
    v["same_loaded"] = stock["loaded"] == note["loaded"]
    if not v["same_loaded"]:
        mm.append(("loaded-list", diff(stock["loaded"], note["loaded"])))
    # As a multiset: programs that start several processes (groff) interleave their opens
    # differently from run to run; each process's load order is the loaded list's.
    v["same_opens"] = sorted(stock["elf_opens"]) == sorted(note["elf_opens"])
    if not v["same_opens"]:
        mm.append(("elf-opens", diff(stock["elf_opens"], note["elf_opens"])))
    v["same_output"] = (stock["exit"], stock["stdout"], stock["stderr"]) == \
        (note["exit"], note["stdout"], note["stderr"])
    if not v["same_output"]:
        mm.append(("output", f"exit {stock['exit']} vs {note['exit']}; "
                   + diff(stock["stdout"].splitlines() + stock["stderr"].splitlines(),
                          note["stdout"].splitlines() + note["stderr"].splitlines())))
    v["run_fail"] = [fails(stock["calls"]), fails(note["calls"])]
    # After start-up, calls into the note-aware glibc's own prefix (its locales, gconv modules):
    # that build's compiled-in paths, which Debian's glibc has under /usr.
    n_start = len(note["explain"].get("calls", []))
    v["glibc_prefix_calls"] = [c[1] for c in note["calls"][n_start:]
                               if c[1].startswith(glibc_prefix)][:3]
    for side, rec in (("stock", stock), ("note", note)):
        ex = rec["explain"]
        if "failed" in ex:
            mm.append((f"explain-{side}", ex["failed"]))
            continue
        w = window(rec, ex["calls"])
        v[f"startup_fail_{side}"] = fails(w)
        v[f"startup_calls_{side}"] = len(w)
        v[f"explain_fail_{side}"] = ex["totals"]["openat_fail"] + ex["totals"]["stat_fail"]
        exact = [tuple(c) for c in w] == [tuple(c) for c in ex["calls"]]
        exact_trying = rec["trying"] == ex["trying"] and rec["cached"] == ex["cached"]
        v[f"explain_exact_{side}"] = exact and exact_trying
        if not exact:
            mm.append((f"explain-{side}-calls", first_diff(w, ex["calls"])))
        if not exact_trying:
            mm.append((f"explain-{side}-trying", diff(rec["trying"] + rec["cached"],
                                                      ex["trying"] + ex["cached"])))
    v["diff_paths"] = list(DIFF_PATHS)
    return v


def diff(a, b, n=3):
    a_only = [x for x in a if x not in b][:n]
    b_only = [x for x in b if x not in a][:n]
    DIFF_PATHS.extend(a_only + b_only)
    if not a_only and not b_only:
        return "same elements, other order"
    return f"stock only {a_only}; note only {b_only}"


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if tuple(x) != tuple(y):
            return f"call {i}: real {x} vs predicted {y}"
    return f"lengths {len(a)} vs {len(b)}"


def dir_form(comp):
    """A run-path component as glibc's fillin_rpath keeps it (src/stale.rs dir_form)."""
    if comp == "":
        return ""
    d = comp
    while len(d) > 1 and d.endswith("/"):
        d = d[:-1]
    return d if d.endswith("/") else d + "/"


def exact_dir(path):
    """The directory of an `=` entry, one trailing slash kept (src/stale.rs exact_dir)."""
    if "/" not in path:
        return None
    d = path[: path.rindex("/") + 1]
    while len(d) > 1 and d.endswith("//"):
        d = d[:-1]
    return d


def prune(lst, walk):
    """ldnote's walk-order pruning of one path list (src/resolve.rs prune), as an independent
    restatement: each directory once, no cwd-relative hints after the last `=` entry, no pair
    for hints of the run path's first directories in order."""
    out, seen = [], []
    for e in lst:
        d = dir_form(e[1:]) if e.startswith("?") else exact_dir(e[1:])
        if d is not None and d in seen:
            continue
        if d is not None:
            seen.append(d)
        out.append(e)
    while out and out[-1].startswith("?") and not out[-1][1:].startswith("/") and "$" not in out[-1]:
        out.pop()
    if len(out) <= len(walk) and all(
        e.startswith("?") and dir_form(e[1:]) == w for e, w in zip(out, walk)
    ):
        out = []
    return out


def classify_note(o, sysroot, arch):
    """patchelf 0.19.3 vs ldnote on one object: 'identical', or the kind of each difference."""
    pe, ln = o.get("patchelf_note"), o.get("ldnote_note")
    if pe == ln:
        return ["identical"]
    a = dict(corpus_elf.decode(bytes.fromhex(pe)) if pe else [])
    b = dict(corpus_elf.decode(bytes.fromhex(ln)) if ln else [])
    walk = []
    for c in (o.get("runpath") or "").split(":"):
        d = dir_form(c)
        if d not in walk:
            walk.append(d)
    kinds = []
    for name in sorted(set(a) | set(b)):
        x, y = a.get(name, []), b.get(name, [])
        if x == y:
            continue
        if prune(x, walk) == y:
            kinds.append("walk order: a directory once, no trailing cwd hints, no first-directories-only hints")
            continue
        kinds.append(element_kind(x, y, sysroot, arch))
    return kinds or ["same entries, other bytes"]


def element_kind(pe, ln, sysroot, arch):
    hw = HWCAPS_X86 if arch == "x86_64" else HWCAPS_A64
    for e in pe:
        if e in ln:
            continue
        if e.startswith("="):
            f = e[1:]
            d = os.path.dirname(f)
            if "?" + d in ln:
                if any(os.path.isdir(os.path.join(sysroot + d, h)) for h in hw):
                    return "legacy hwcaps subdirectory: ?DIR hint"
                el = corpus_elf.read(sysroot + f)
                if el is None or os.path.isdir(sysroot + f):
                    return "candidate the loader rejects fatally: ?DIR hint"
                return "other (=FILE vs ?DIR)"
            el = corpus_elf.read(sysroot + f)
            machine = corpus_elf.EM_X86_64 if arch == "x86_64" else corpus_elf.EM_AARCH64
            if el is not None and (el.machine != machine or not el.cls64):
                return "candidate of another class/machine: not recorded"
        return f"other ({pe} vs {ln})"
    return f"other ({pe} vs {ln})"
