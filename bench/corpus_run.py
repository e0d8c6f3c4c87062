"""Run each corpus program with one loader and record what it did (bench/corpus.py).

Per program and loader (`stock`: Debian's glibc in the glibc store directory; `note`: the
note-aware build), as the unprivileged user `nobody`, with a small fixed environment (`LC_ALL=C`)
and stdin from /dev/null:

- trace: `LD_TRACE_LOADED_OBJECTS=1 LD_DEBUG=libs`: the loaded object list as the loader reports
  it, and every `trying file=` / `trying cached file=` line of the start-up search;
- the `--version` run under `strace -f` (natively) or `qemu-aarch64 -strace`: output, exit
  status, and every openat/newfstatat with its result;
- `ldnote explain --json --loader stock|note` on the same file.

Each result is one JSON file, written when complete, so an interrupted run resumes.
"""

import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile

ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "HOME": "/nonexistent", "TERM": "dumb"}
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
TIMEOUT = 10
OUT_LIMIT = 16384
# strace: `PID call(args) = result`; qemu -strace: `PID call(args) = result` without spaces.
STRACE_RE = re.compile(r'^(\d+) +(openat|newfstatat|execve)\((.*)\) += (-?\d+|0x[0-9a-f]+)')
QSTRACE_RE = re.compile(r'^(\d+) (openat|newfstatat|execve)\((.*)\) = (-?\d+|0x[0-9a-f]+)')
PATH_RE = re.compile(r'"((?:[^"\\]|\\.)*)"')


def run_id(path):
    return hashlib.sha256(path.encode()).hexdigest()[:16]


def limit():
    # Caps what a runaway program (one that ignores --version and prints forever) can write.
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))


def sh(cmd, cwd):
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT,
                           cwd=cwd, preexec_fn=limit)
        return r.returncode, r.stdout, r.stderr
    except subprocess.TimeoutExpired as e:
        return "timeout", e.stdout or b"", e.stderr or b""


def text(b):
    return b[:OUT_LIMIT].decode("utf-8", "replace")


def unescape(s):
    return s.encode("latin-1", "backslashreplace").decode("unicode_escape").encode(
        "latin-1", "surrogateescape").decode("utf-8", "surrogateescape")


def parse_calls(lines, regex, first_exec):
    """Calls of the traced program from its execve of `first_exec` on: [(pid, call, path, ok)];
    `fstat` for a newfstatat on a descriptor with an empty path (the loader's fstat)."""
    calls, on = [], first_exec is None
    for line in lines:
        m = regex.match(line)
        if not m:
            continue
        pid, call, args, res = m.groups()
        pm = PATH_RE.search(args)
        path = unescape(pm.group(1)) if pm else ""
        ok = not res.startswith("-")
        if call == "execve":
            if not on and ok and path == first_exec:
                on = True
            continue
        if not on:
            continue
        if call == "newfstatat":
            call = "fstat" if path == "" else "stat"
        calls.append((int(pid), call, path, ok))
    return calls


def parse_ldd(out):
    """LD_TRACE_LOADED_OBJECTS output -> ["name => path", ...] without load addresses."""
    res = []
    for line in out.splitlines():
        line = re.sub(r" \(0x[0-9a-f]+\)$", "", line.strip())
        if line and not line.startswith("linux-vdso"):
            res.append(line)
    return res


def dbg_lines(err, key):
    return [m.group(1) for m in re.finditer(r"^ *\d+:\t  " + key + r"=(.*)$", err, re.M)]


def run_program(cfg, prog, phase, workdir):
    """One program with the currently selected loader; returns the record."""
    host = cfg["sysroot"] + prog if cfg["sysroot"] else prog
    env = [f"{k}={v}" for k, v in ENV.items()]
    rec = {"program": prog, "phase": phase}
    with tempfile.TemporaryDirectory(dir=workdir) as t:
        os.chmod(t, 0o777)
        if cfg["sysroot"]:
            q = ["qemu-aarch64", "-L", cfg["sysroot"]]
            tr = NOBODY + ["env", "-i"] + env + q + ["-E", "LD_TRACE_LOADED_OBJECTS=1", "-E",
                                                     "LD_DEBUG=libs", host]
        else:
            tr = NOBODY + ["env", "-i"] + env + ["LD_TRACE_LOADED_OBJECTS=1", "LD_DEBUG=libs",
                                                 host]
        code, out, err = sh(tr, t)
        e = err.decode("utf-8", "replace")
        rec["trace_exit"] = code
        rec["loaded"] = parse_ldd(out.decode("utf-8", "replace"))
        rec["trying"] = dbg_lines(e, "trying file")
        rec["cached"] = dbg_lines(e, "trying cached file")
        log = os.path.join(t, "calls")
        if cfg["sysroot"]:
            cmd = NOBODY + ["env", "-i"] + env + q + ["-strace", "-D", log, host, "--version"]
            regex = QSTRACE_RE
        else:
            cmd = ["env", "-i"] + env + ["strace", "-f", "-qq", "-u", "nobody", "-o", log,
                                         "-e", "trace=execve,openat,newfstatat", host,
                                         "--version"]
            regex = STRACE_RE
        code, out, err = sh(cmd, t)
        rec["exit"], rec["stdout"], rec["stderr"] = code, text(out), text(err)
        try:
            lines = open(log, encoding="utf-8", errors="surrogateescape").read().splitlines()
        except OSError:
            lines = []
        # qemu -strace shows the guest's calls only: it starts after the exec.
        calls = parse_calls(lines, regex, None if cfg["sysroot"] else host)
        main_pid = calls[0][0] if calls else None
        rec["calls"] = [[c, p, ok] for pid, c, p, ok in calls if pid == main_pid]
        rec["elf_opens"] = [p for pid, c, p, ok in calls if c == "openat" and ok
                            and is_elf(cfg, p, t)]
    ex = [cfg["ldnote"], "explain", "--json", "--loader", phase]
    if cfg["sysroot"]:
        ex += ["--sysroot", cfg["sysroot"], "--qemu"]
    r = subprocess.run(ex + [host], capture_output=True, text=True, errors="replace")
    try:
        j = json.loads(r.stdout)
        run = j[phase]
        rec["explain"] = {
            "error": run["error"],
            "totals": run["totals"],
            "trying": run["trying"],
            "cached": [x["path"] for x in run["trace"]
                       if x["stage"] == "note_exact" and x["call"] == "openat"],
            "calls": [[x["call"], x["path"], x["errno"] is None] for x in run["trace"]
                      if x["call"] is not None],
        }
    except (ValueError, KeyError) as err:
        rec["explain"] = {"failed": f"{err}: {r.stderr.strip()[:300]}"}
    return rec


def is_elf(cfg, path, cwd):
    p = path if path.startswith("/") else os.path.join(cwd, path)
    if cfg["sysroot"] and os.path.exists(cfg["sysroot"] + p):
        p = cfg["sysroot"] + p
    try:
        with open(p, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def run_all(cfg, programs, phase, select):
    """Runs every program not yet recorded for this phase; returns the records."""
    d = os.path.join(cfg["root"], "runs", phase)
    os.makedirs(d, exist_ok=True)
    work = os.path.join(cfg["root"], "work")
    os.makedirs(work, exist_ok=True)
    os.chmod(work, 0o755)
    select(cfg, phase)
    todo = [p for p in programs if not os.path.exists(os.path.join(d, run_id(p) + ".json"))]
    done = len(programs) - len(todo)
    for i, p in enumerate(todo):
        rec = run_program(cfg, p, phase, work)
        f = os.path.join(d, run_id(p) + ".json")
        with open(f + ".tmp", "w") as fh:
            json.dump(rec, fh)
        os.replace(f + ".tmp", f)
        n = done + i + 1
        if n % 10 == 0 or n == len(programs):
            print(f"corpus: {cfg['arch']} {phase}: {n}/{len(programs)} programs ({p})",
                  flush=True, file=sys.stderr)
    return {p: json.load(open(os.path.join(d, run_id(p) + ".json"))) for p in programs}
