#!/usr/bin/env python3
"""Nix-style test layouts for bench/run.sh (stdlib only).

  layout.py libs ROOT N GLIBC_DIR
      ROOT/store/NNNN-pkgN-1.0/lib/libpNNNN.so.1 for N libraries, each alone in its own store
      directory (copies of one template library, soname patched in place), a main.o calling
      into them, and ROOT/link.args: the driver arguments (one per line) linking a program that
      needs all N libraries plus libc, with DT_RUNPATH = the N directories then GLIBC_DIR, and
      GLIBC_DIR/ld-linux-x86-64.so.2 as interpreter (glibc in its own store directory).

  layout.py glibc-copy DEST
      DEST/ with copies of Debian's glibc libraries (the stock side's glibc store directory).

  layout.py closure ROOT PROGRAM GLIBC_DIR
      copy PROGRAM and every library of its closure (ldd) into its own ROOT/store directory,
      rewrite each object's DT_RUNPATH Nix-style (the directories of its direct needed
      libraries, then GLIBC_DIR) and the program's interpreter (patchelf --set-rpath /
      --set-interpreter); glibc's own libraries come from GLIBC_DIR. Prints the new program path.
"""

import os
import re
import shutil
import subprocess
import sys

HOST_LIBDIR = "/lib/x86_64-linux-gnu"
LDSO = "ld-linux-x86-64.so.2"
# Sonames provided by glibc itself: they must come from the same build as the loader.
GLIBC_SONAMES = {
    "libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libresolv.so.2",
    "libutil.so.1", "libanl.so.1", "libmvec.so.1", "libnsl.so.1", "libBrokenLocale.so.1",
    "libthread_db.so.1", "libcrypt.so.1", LDSO,
}
# libcrypt.so.1 is libxcrypt on Debian, not glibc.
GLIBC_SONAMES.discard("libcrypt.so.1")


def sh(*args, **kw):
    return subprocess.run(args, check=True, **kw)


def store_dir(root, i, name):
    return os.path.join(root, "store", f"{i:04d}-{name}", "lib")


def libs(root, n, glibc):
    root = os.path.abspath(root)
    os.makedirs(root, exist_ok=True)
    src = os.path.join(root, "p.c")
    with open(src, "w") as f:
        f.write("int p_fn(void) { return 1; }\n")
    tmpl = os.path.join(root, "libpXXXX.so.1")
    sh("gcc", "-shared", "-fPIC", "-O2", "-o", tmpl, src, "-Wl,-soname,libpXXXX.so.1",
       "-Wl,--enable-new-dtags", "-Wl,-rpath," + glibc)
    data = open(tmpl, "rb").read()
    assert data.count(b"libpXXXX.so.1") == 1, "template soname must occur once"
    dirs = []
    for i in range(n):
        d = store_dir(root, i, f"pkg{i}-1.0")
        os.makedirs(d, exist_ok=True)
        name = f"libp{i:04d}.so.1"
        with open(os.path.join(d, name), "wb") as f:
            f.write(data.replace(b"libpXXXX.so.1", name.encode()))
        os.chmod(os.path.join(d, name), 0o755)
        dirs.append(d)
    main = os.path.join(root, "main.c")
    with open(main, "w") as f:
        f.write("extern int p_fn(void);\nint main(void) { return p_fn() - 1; }\n")
    sh("gcc", "-O2", "-c", "-o", os.path.join(root, "main.o"), main)
    args = [os.path.join(root, "main.o"), "-Wl,--no-as-needed"]
    for i, d in enumerate(dirs):
        args += ["-L" + d, f"-l:libp{i:04d}.so.1"]
    args += ["-Wl,--enable-new-dtags", "-Wl,-rpath," + ":".join(dirs + [glibc]),
             "-Wl,--dynamic-linker=" + os.path.join(glibc, LDSO)]
    with open(os.path.join(root, "link.args"), "w") as f:
        f.write("\n".join(args) + "\n")


def glibc_copy(dest):
    os.makedirs(dest, exist_ok=True)
    for name in sorted(GLIBC_SONAMES):
        p = os.path.join(HOST_LIBDIR, name)
        if os.path.exists(p):
            shutil.copy2(os.path.realpath(p), os.path.join(dest, name))


def ldd(path):
    """soname -> host path of the whole closure (ldd runs the host loader)."""
    out = subprocess.run(["ldd", path], check=True, capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+) \(", line)
        if m:
            found[m.group(1)] = m.group(2)
    return found


def needed(path):
    out = subprocess.run(["readelf", "-dW", path], check=True, capture_output=True,
                         text=True).stdout
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def closure(root, program, glibc):
    root = os.path.abspath(root)
    patchelf = os.environ.get("PATCHELF", "patchelf")
    libsmap = ldd(program)
    where = {s: glibc for s in GLIBC_SONAMES}  # soname -> directory in the layout
    objects = []  # (path in layout, original path)
    i = 0
    for soname, host in sorted(libsmap.items()):
        if soname in GLIBC_SONAMES:
            where[soname] = glibc
            continue
        d = store_dir(root, i, re.sub(r"\.so.*", "", soname))
        i += 1
        os.makedirs(d, exist_ok=True)
        dst = os.path.join(d, soname)
        shutil.copy2(os.path.realpath(host), dst)
        os.chmod(dst, 0o755)
        where[soname] = d
        objects.append(dst)
    bindir = os.path.join(root, "store", f"{i:04d}-{os.path.basename(program)}", "bin")
    os.makedirs(bindir, exist_ok=True)
    prog = os.path.join(bindir, os.path.basename(program))
    shutil.copy2(os.path.realpath(program), prog)
    objects.append(prog)
    for obj in objects:
        dirs = []
        for n in needed(obj):
            d = where.get(n)
            if d is None:
                sys.exit(f"layout.py: {obj} needs {n}, not in the closure")
            if d != glibc and d not in dirs:
                dirs.append(d)
        dirs.append(glibc)
        sh(patchelf, "--remove-rpath", obj)
        sh(patchelf, "--set-rpath", ":".join(dirs), obj)
    sh(patchelf, "--set-interpreter", os.path.join(glibc, LDSO), prog)
    print(prog)


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "libs" and len(sys.argv) == 5:
        libs(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif cmd == "glibc-copy" and len(sys.argv) == 3:
        glibc_copy(sys.argv[2])
    elif cmd == "closure" and len(sys.argv) == 5:
        closure(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
