"""Re-lay real Debian packages out Nix-style for bench/corpus.py (stdlib only).

One store directory per Debian package (`STORE/<hash>-<package>/`, the package's files below
`/usr` moved to its top, so `/usr/bin/x` becomes `bin/x` and `$ORIGIN` relations inside a package
survive), every object's run path rewritten to the store directories its `DT_NEEDED` libraries
come from (in `DT_NEEDED` order, then glibc), glibc in its own store directory, whose loader
becomes every program's `PT_INTERP`.

Where each needed library comes from is decided as Debian's stock loader decides it on the
original system: the object's own `DT_RUNPATH` (else `DT_RPATH`) with `$ORIGIN` and `$LIB`
expanded, then `ld.so.cache` (`ldconfig -p` natively; the sysroot's `ld.so.conf.d` directories
for a foreign architecture), then the multiarch and plain default directories. `$ORIGIN`
components are kept verbatim (they still work inside the package's store directory); absolute
ones, e.g. a private directory `/usr/lib/x86_64-linux-gnu/pulseaudio`, are replaced by the store
directory of the library they provided.
"""

import hashlib
import os
import re
import subprocess

import corpus_elf

ARCHES = {
    # arch: (ELF machine, multiarch triplet, loader name, Debian architecture)
    "x86_64": (corpus_elf.EM_X86_64, "x86_64-linux-gnu", "ld-linux-x86-64.so.2", "amd64"),
    "aarch64": (corpus_elf.EM_AARCH64, "aarch64-linux-gnu", "ld-linux-aarch64.so.1", "arm64"),
}
# glibc's own libraries that the note-aware build (loader/build.sh) installs, and those of Debian's
# glibc that need no GLIBC_PRIVATE interface of their libc (so they run with either build's libc).
GLIBC_BUILT = {"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1",
               "libresolv.so.2"}
GLIBC_PORTABLE = {"libutil.so.1", "libanl.so.1", "libBrokenLocale.so.1", "libthread_db.so.1",
                  "libmemusage.so", "libpcprofile.so"}
# The rest of Debian's glibc needs its own libc's private interfaces: objects needing these
# are laid out but not run (the note-aware build does not provide them).
GLIBC_OTHER = {"libnsl.so.1", "libmvec.so.1", "libc_malloc_debug.so.0", "libnss_files.so.2",
               "libnss_dns.so.2", "libnss_compat.so.2", "libnss_hesiod.so.2"}
GLIBC_PACKAGES = {"libc6"}
SKIP_TREES = ("/usr/lib/debug/", "/usr/share/", "/usr/include/", "/usr/src/", "/boot/",
              "/usr/lib/modules/", "/usr/lib/firmware/")
PROGRAM_DIR = re.compile(r"/(s?bin|games)/[^/]+$")


def norm(path):
    """Debian 12 is merged-/usr: /lib, /bin, /sbin, /lib64 are /usr's."""
    path = os.path.normpath(path)
    for top in ("/lib", "/bin", "/sbin", "/lib64", "/libx32", "/lib32"):
        if path == top or path.startswith(top + "/"):
            return "/usr" + path
    return path


def store_rel(path):
    """Path of a package file inside its store directory: /usr/X -> X, /Y -> root/Y."""
    return path[5:] if path.startswith("/usr/") else "root" + path


def store_name(pkg, version):
    h = hashlib.sha256(f"{pkg}-{version}".encode()).hexdigest()[:12]
    return f"{h}-{pkg}-{version.split(':')[-1]}"


class Package:
    def __init__(self, name, version, files):
        self.name, self.version = name, version
        self.files = files  # normpath -> (source path, link target or None)
        self.store = store_name(name, version)


def installed_packages(arch):
    """Native: every installed package of the host architecture (and arch all)."""
    deb_arch = ARCHES[arch][3]
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Architecture}\t${Version}\t"
                          "${db:Status-Abbrev}\n"], capture_output=True, text=True,
                         check=True).stdout
    pkgs = []
    for line in out.splitlines():
        name, a, version, status = line.split("\t")
        if not status.startswith("ii") or a not in (deb_arch, "all"):
            continue
        lst = f"/var/lib/dpkg/info/{name}:{a}.list"
        if not os.path.exists(lst):
            lst = f"/var/lib/dpkg/info/{name}.list"
        if not os.path.exists(lst):
            continue
        files = {}
        for p in open(lst, encoding="utf-8", errors="surrogateescape").read().splitlines():
            if not p.startswith("/") or os.path.isdir(p) and not os.path.islink(p):
                continue
            try:
                link = os.readlink(p) if os.path.islink(p) else None
            except OSError:
                continue
            if link is None and not os.path.isfile(p):
                continue
            files.setdefault(norm(p), (p, link))
        pkgs.append(Package(name, version, files))
    return pkgs


def unpacked_packages(unpack_root):
    """Foreign architecture: UNPACK/<package>_<version>/ trees made by `dpkg-deb -x`."""
    pkgs = []
    for entry in sorted(os.listdir(unpack_root)):
        name, _, version = entry.partition("_")
        top = os.path.join(unpack_root, entry)
        files = {}
        for d, dirs, names in os.walk(top):
            for n in names + [x for x in dirs if os.path.islink(os.path.join(d, x))]:
                src = os.path.join(d, n)
                link = os.readlink(src) if os.path.islink(src) else None
                files.setdefault(norm("/" + os.path.relpath(src, top)), (src, link))
        pkgs.append(Package(name, version, files))
    return pkgs


class Union:
    """All packages' files as one filesystem (what an installed system would look like)."""

    def __init__(self, pkgs):
        self.owner = {}
        for p in pkgs:
            for f in p.files:
                self.owner.setdefault(f, p)

    def entry(self, path):
        p = self.owner.get(path)
        return (p, p.files[path]) if p else (None, None)

    def resolve(self, path):
        """Follow symlinks through the union (parents too, one level): final path or None."""
        for _ in range(40):
            p, ent = self.entry(path)
            if p is None:
                d, base = os.path.split(path)
                pd, ent_d = self.entry(d)
                if pd is None or ent_d[1] is None:
                    return None
                path = norm(os.path.join(os.path.dirname(d), ent_d[1], base))
                continue
            if ent[1] is None:
                return path
            path = norm(os.path.join(os.path.dirname(path), ent[1]))
        return None


def cache_dirs(union, triplet):
    """Directories of ld.so.conf.d (the cache's contents, before the default directories)."""
    dirs = []
    for f in sorted(union.owner):
        src, link = union.owner[f].files[f]
        if f.startswith("/etc/ld.so.conf.d/") and f.endswith(".conf") and link is None:
            for line in open(src, errors="replace"):
                line = line.split("#")[0].strip()
                if line.startswith("/"):
                    dirs.append(norm(line))
    return dirs + [f"/usr/lib/{triplet}", "/usr/lib"]


class Layout:
    """Decides, for every ELF object, its store path, run path and interpreter."""

    def __init__(self, arch, pkgs, store, glibc_dir, host_cache=None):
        self.arch = arch
        self.machine, self.triplet, self.ldso, _ = ARCHES[arch]
        self.pkgs = [p for p in pkgs if p.name not in GLIBC_PACKAGES]
        self.union = Union(pkgs)
        self.store, self.glibc = store, glibc_dir
        self.host_cache = host_cache  # soname -> path (ldconfig -p), native only
        self.dirs = cache_dirs(self.union, self.triplet)
        self.objects = {}  # normpath -> record
        self.elf = {}

    def scan(self, roots=None):
        """Every ELF object of the packages, or (roots: normalised paths) the closure of those."""
        cands = {}
        for p in self.pkgs:
            for f, (src, link) in p.files.items():
                if link is None and not f.startswith(SKIP_TREES):
                    cands[f] = (p, src)
        self.roots = None if roots is None else [self.union.resolve(r) for r in roots]
        queue = sorted(cands) if roots is None else list(self.roots)
        while queue:
            f = queue.pop()
            if f is None or f in self.objects or f not in cands:
                continue
            p, src = cands[f]
            e = corpus_elf.read(src)
            if e is None or e.machine != self.machine or not e.cls64 or not e.dynamic \
                    or e.etype not in (2, 3) or os.path.basename(f) == self.ldso:
                continue
            self.elf[f] = e
            o = self.objects[f] = {
                "path": f, "package": p.name, "store": p.store, "src": src,
                "program": bool(e.interp) and bool(PROGRAM_DIR.search(f)),
                "interp": e.interp, "needed": e.needed, "soname": e.soname,
                "orig_runpath": e.runpath, "orig_rpath": e.rpath,
            }
            if roots is not None:
                for n in e.needed:
                    found, _, _ = self.find(n, o)
                    if found:
                        queue.append(self.union.resolve(found))

    def expand(self, comp, path):
        if "$" not in comp:
            return norm(comp) if comp.startswith("/") else None
        c = re.sub(r"\$(ORIGIN|\{ORIGIN\})", os.path.dirname(path), comp)
        c = re.sub(r"\$(LIB|\{LIB\})", f"lib/{self.triplet}", c)
        return None if "$" in c or not c.startswith("/") else norm(c)

    def is_object(self, path):
        e = self.elf.get(path)
        if e is None:
            _, ent = self.union.entry(path)
            e = corpus_elf.read(ent[0]) if ent else None
        return e is not None and e.machine == self.machine and e.cls64

    def find(self, name, obj):
        """(found path as the loader names it, via, component) or (None, ...)."""
        comps = (obj["orig_runpath"] or obj["orig_rpath"] or "").split(":")
        for c in comps:
            d = self.expand(c, obj["path"]) if c else None
            if d and self._usable(f"{d}/{name}"):
                return f"{d}/{name}", "origin" if "$" in c else "runpath", c
        if self.host_cache and name in self.host_cache:
            f = norm(self.host_cache[name])
            if self._usable(f):
                return f, "cache", None
            # A link made by update-alternatives (libblas.so.3 -> /etc/alternatives/...) belongs
            # to no package: take the file it selects, whose directory holds the same name.
            p = self.host_cache[name]
            for _ in range(10):
                if not os.path.islink(p):
                    break
                p = os.path.join(os.path.dirname(p), os.readlink(p))
                if os.path.basename(p) == name and self._usable(norm(p)):
                    return norm(p), "cache", None
        for d in self.dirs:
            if self._usable(f"{d}/{name}"):
                return f"{d}/{name}", "default", None
        # Not found on its own: on Debian it is then already loaded by the time this object's
        # turn comes (a sibling of its package, e.g. libsystemd-shared for libsystemd-core, found
        # through the program's run path and matched by soname). The layout lists its directory.
        pkg, _ = self.union.entry(obj["path"])
        for f in sorted(pkg.files) if pkg else []:
            if os.path.basename(f) == name and self._usable(f):
                return f, "package", None
        return None, None, None

    def _usable(self, f):
        r = self.union.resolve(f)
        return r is not None and self.is_object(r)

    def plan(self):
        """Fill each object's layout facts; returns the set of store files to create."""
        for path, o in sorted(self.objects.items()):
            o["dst"] = f"{self.store}/{o['store']}/{store_rel(path)}"
            runpath, unresolved, glibc_other = [], [], []
            for c in (o["orig_runpath"] or o["orig_rpath"] or "").split(":"):
                if "$ORIGIN" in c or "${ORIGIN}" in c:
                    runpath.append(c)
            deps = []
            for n in o["needed"]:
                if "/" in n:
                    continue
                if n in GLIBC_BUILT or n in GLIBC_PORTABLE or n == self.ldso:
                    continue
                if n in GLIBC_OTHER:
                    glibc_other.append(n)
                    continue
                f, via, comp = self.find(n, o)
                if f is None:
                    unresolved.append(n)
                    continue
                pkg, _ = self.union.entry(f)
                if pkg is None:  # found through a symlinked parent directory
                    f = self.union.resolve(f)
                    pkg, _ = self.union.entry(f)
                if pkg is None or self.union.resolve(f) not in self.objects:
                    unresolved.append(n)  # e.g. a file no package owns
                    continue
                d = f"{self.store}/{pkg.store}/{os.path.dirname(store_rel(f))}"
                deps.append({"name": n, "path": self.union.resolve(f), "package": pkg.name,
                             "via": via})
                if via == "origin" and pkg.name == o["package"]:
                    continue  # the kept $ORIGIN component finds it
                if d not in runpath:
                    runpath.append(d)
            runpath.append(self.glibc)
            o["runpath"] = ":".join(runpath)
            o["deps"], o["unresolved"], o["glibc_other"] = deps, unresolved, glibc_other
            o["new_interp"] = f"{self.glibc}/{self.ldso}" if o["interp"] else None

    def links(self):
        """Symlinks to recreate: (layout path, relative target) for every package symlink whose
        final target is an object of the layout, so sonames and alternative names resolve."""
        out = []
        for p in self.pkgs:
            for f, (_, link) in p.files.items():
                if link is None:
                    continue
                r = self.union.resolve(f)
                if r is None or r not in self.objects:
                    continue
                dst = f"{self.store}/{p.store}/{store_rel(f)}"
                out.append((dst, self.objects[r]["dst"]))
        return out
