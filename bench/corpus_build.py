"""Build and note a corpus tree for bench/corpus.py (stdlib only).

build(cfg): lays the packages out (corpus_layout), edits run paths and interpreters with patchelf
(standing in for the build that would have produced them), notes every object with
`ldnote patch`, and records per object: patchelf 0.19.3's descriptor for the same file (native
only: patchelf cannot resolve inside a sysroot), ldnote's, `ldnote check`, and whether a second
`ldnote patch` changed any byte.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys

import corpus_elf
import corpus_layout as L


def log(msg):
    print(f"corpus: {msg}", file=sys.stderr, flush=True)


def phys(cfg, target_path):
    return cfg["sysroot"] + target_path if cfg["sysroot"] else target_path


def glibc_dirs(cfg, debian_glibc_lib):
    """ROOT/glibc/{stock,note}: Debian's glibc, and the note-aware build plus the Debian
    libraries that need no private libc interface. The glibc store directory's `lib` is a
    relative symlink to one of them (swapped between runs), so both runs see the same paths."""
    _, _, ldso, _ = L.ARCHES[cfg["arch"]]
    base = phys(cfg, cfg["glibc_base"])
    for kind in ("stock", "note"):
        d = os.path.join(base, kind)
        os.makedirs(d, exist_ok=True)
        # The same names on both sides: a name only one side has would change what a `dlopen`
        # finds (Debian's stub libnss_dns.so.2, say) for reasons unrelated to the note.
        names = L.GLIBC_BUILT | L.GLIBC_PORTABLE | {ldso}
        for n in sorted(names):
            src = os.path.join(debian_glibc_lib, n)
            if kind == "note" and (n in L.GLIBC_BUILT or n == ldso):
                src = os.path.join(cfg["note_libdir"], n)
            if os.path.exists(src):
                shutil.copyfile(os.path.realpath(src), os.path.join(d, n))
                os.chmod(os.path.join(d, n), 0o755)


def select(cfg, which):
    """Point the glibc store directory at `stock` or `note`."""
    g = phys(cfg, cfg["glibc"])
    os.makedirs(os.path.dirname(g), exist_ok=True)
    tgt = os.path.relpath(os.path.join(phys(cfg, cfg["glibc_base"]), which), os.path.dirname(g))
    if os.path.islink(g) and os.readlink(g) == tgt:
        return
    tmp = g + ".new"
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(tgt, tmp)
    os.replace(tmp, g)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def batches(items, n=100):
    for i in range(0, len(items), n):
        yield items[i:i + n]


def ldnote(cfg, *args):
    cmd = [cfg["ldnote"], *args[:1]]
    if cfg["sysroot"]:
        cmd += ["--sysroot", cfg["sysroot"]]
    return subprocess.run(cmd + list(args[1:]), capture_output=True, text=True,
                          errors="replace")


def build(cfg, pkgs, roots, debian_glibc_lib, host_cache):
    state = os.path.join(cfg["root"], "objects.json")
    if os.path.exists(state):
        log(f"layout already built ({state})")
        return json.load(open(state))
    lay = L.Layout(cfg["arch"], pkgs, cfg["store"], cfg["glibc"], host_cache)
    lay.scan(roots)
    lay.plan()
    objs = lay.objects
    log(f"{len(objs)} objects from {len({o['package'] for o in objs.values()})} packages, "
        f"{sum(o['program'] for o in objs.values())} programs")
    glibc_dirs(cfg, debian_glibc_lib)
    select(cfg, "note")
    for o in sorted(objs.values(), key=lambda o: o["dst"]):
        dst = phys(cfg, o["dst"])
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(o["src"], dst)
        os.chmod(dst, 0o755)
    for dst, tgt in lay.links():
        p, t = phys(cfg, dst), phys(cfg, tgt)
        if not os.path.lexists(p):
            os.makedirs(os.path.dirname(p), exist_ok=True)
            os.symlink(os.path.relpath(t, os.path.dirname(p)), p)
    todo = [o for o in objs.values() if o["needed"]]
    log(f"patchelf: run paths and interpreters of {len(todo)} objects")
    for i, o in enumerate(todo):
        args = ["patchelf", "--set-rpath", o["runpath"]]
        if o["new_interp"]:
            args += ["--set-interpreter", o["new_interp"]]
        subprocess.run(args + [phys(cfg, o["dst"])], check=True)
        progress("patchelf", i + 1, len(todo))
    if not cfg["sysroot"]:
        differential(cfg, todo)
    log(f"ldnote patch: {len(todo)} objects")
    files = [phys(cfg, o["dst"]) for o in todo]
    for b in batches(files):
        r = ldnote(cfg, "patch", "--strict", *b)
        if r.returncode != 0:
            for f in b:  # find the failing file(s); the others are noted by the retry
                r1 = ldnote(cfg, "patch", "--strict", f)
                if r1.returncode != 0:
                    objs_by_dst(objs, cfg, f)["patch_error"] = r1.stderr.strip()
    for o in todo:
        e = corpus_elf.read(phys(cfg, o["dst"]))
        o["ldnote_note"] = e.note.hex() if e and e.note is not None else None
    log("ldnote check, and a second ldnote patch")
    before = {f: sha(f) for f in files}
    for b in batches(files):
        r = ldnote(cfg, "check", *b)
        if r.returncode != 0:
            for f in b:
                r1 = ldnote(cfg, "check", f)
                if r1.returncode != 0:
                    objs_by_dst(objs, cfg, f)["check_error"] = (r1.stdout + r1.stderr).strip()
        ldnote(cfg, "patch", *b)
    for o, f in zip(todo, files):
        o["repatch_changed"] = sha(f) != before[f]
    out = {"objects": sorted(objs.values(), key=lambda o: o["path"]), "roots": lay.roots}
    with open(state + ".tmp", "w") as f:
        json.dump(out, f)
    os.replace(state + ".tmp", state)
    return out


def objs_by_dst(objs, cfg, f):
    for o in objs.values():
        if phys(cfg, o["dst"]) == f:
            return o
    raise KeyError(f)


def progress(what, i, n):
    if i == n or i % 200 == 0:
        log(f"{what}: {i}/{n}")


def differential(cfg, todo):
    """patchelf --build-resolution-cache on a copy beside each object (same directory, so
    `$ORIGIN` and every run-path component mean the same), before ldnote notes the original."""
    log(f"patchelf --build-resolution-cache: {len(todo)} objects (differential)")
    for i, o in enumerate(todo):
        dst = phys(cfg, o["dst"])
        tmp = os.path.join(os.path.dirname(dst), ".pe-" + os.path.basename(dst))
        shutil.copyfile(dst, tmp)
        r = subprocess.run(["patchelf", "--build-resolution-cache", tmp], capture_output=True,
                           text=True, errors="replace")
        e = corpus_elf.read(tmp)
        os.unlink(tmp)
        if r.returncode != 0:
            o["patchelf_error"] = r.stderr.strip()[:300]
        o["patchelf_note"] = e.note.hex() if e and e.note is not None else None
        progress("patchelf differential", i + 1, len(todo))
