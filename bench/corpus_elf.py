"""Minimal ELF reader for bench/corpus.py (stdlib only; independent of ldnote's own parser).

read(path) -> Elf or None (not an ELF file). It reads what the corpus needs to lay files out and
to compare notes: class, machine, type, PT_INTERP, the dynamic section's DT_NEEDED, DT_SONAME,
DT_RPATH and DT_RUNPATH, and the `.note.nixos.ldcache` descriptor found the way the note-aware
loader finds it (PT_NOTE segments covered by a PT_LOAD, walked note by note with the segment's
alignment, at least 4; the first note named `NixOS` of type 0x63a86cb6).
"""

import struct

PT_LOAD, PT_DYNAMIC, PT_INTERP, PT_NOTE = 1, 2, 3, 4
DT_NEEDED, DT_STRTAB, DT_SONAME, DT_RPATH, DT_RUNPATH = 1, 5, 14, 15, 29
NOTE_TYPE = 0x63A86CB6
EM_X86_64, EM_AARCH64 = 62, 183


class Elf:
    __slots__ = ("cls64", "machine", "etype", "interp", "needed", "soname", "rpath", "runpath",
                 "dynamic", "note")


def _align(x, a):
    return (x + a - 1) & ~(a - 1)


def read(path):
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                return None
            data = b"\x7fELF" + f.read()
    except OSError:
        return None
    return parse(data)


def parse(data):
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[5] != 1 or data[4] not in (1, 2):
        return None  # only little-endian: both corpora (x86_64, aarch64) are
    e = Elf()
    e.cls64 = data[4] == 2
    if e.cls64:
        etype, machine, _, _, phoff = struct.unpack_from("<HHIQQ", data, 16)
        phentsize, phnum = struct.unpack_from("<HH", data, 54)
        ph_fmt, dyn_fmt = "<IIQQQQQQ", "<qQ"
    else:
        etype, machine, _, _, phoff = struct.unpack_from("<HHIII", data, 16)
        phentsize, phnum = struct.unpack_from("<HH", data, 42)
        ph_fmt, dyn_fmt = "<IIIIIIII", "<iI"
    e.etype, e.machine = etype, machine
    e.interp, e.needed, e.soname, e.rpath, e.runpath = None, [], None, None, None
    e.dynamic, e.note = False, None
    phs = []
    for i in range(phnum):
        off = phoff + i * phentsize
        if off + struct.calcsize(ph_fmt) > len(data):
            return e
        v = struct.unpack_from(ph_fmt, data, off)
        if e.cls64:
            p_type, _, p_offset, p_vaddr, _, p_filesz, _, p_align = v
        else:
            p_type, p_offset, p_vaddr, _, p_filesz, _, _, p_align = v
        phs.append((p_type, p_offset, p_vaddr, p_filesz, p_align))
    loads = [p for p in phs if p[0] == PT_LOAD]

    def v2o(vaddr):
        for _, off, va, sz, _ in loads:
            if va <= vaddr < va + sz:
                return off + vaddr - va
        return None

    for p_type, off, va, sz, al in phs:
        if p_type == PT_INTERP:
            e.interp = data[off:off + sz].split(b"\0", 1)[0].decode("utf-8", "replace")
        elif p_type == PT_DYNAMIC:
            e.dynamic = True
            ents = []
            step = struct.calcsize(dyn_fmt)
            for o in range(off, min(off + sz, len(data)) - step + 1, step):
                tag, val = struct.unpack_from(dyn_fmt, data, o)
                if tag == 0:
                    break
                ents.append((tag, val))
            strtab = next((v2o(v) for t, v in ents if t == DT_STRTAB), None)
            if strtab is None:
                continue

            def s(x):
                end = data.find(b"\0", strtab + x)
                return data[strtab + x:end].decode("utf-8", "surrogateescape")

            for t, v in ents:
                if t == DT_NEEDED:
                    e.needed.append(s(v))
                elif t == DT_SONAME:
                    e.soname = s(v)
                elif t == DT_RPATH:
                    e.rpath = s(v)
                elif t == DT_RUNPATH:
                    e.runpath = s(v)
        elif p_type == PT_NOTE and e.note is None:
            # The loader only sees notes a PT_LOAD maps.
            if not any(lo <= off and off + sz <= lo + lsz for _, lo, _, lsz, _ in loads):
                continue
            a = max(al, 4)
            o, end = off, min(off + sz, len(data))
            while o + 12 <= end:
                namesz, descsz, ntype = struct.unpack_from("<III", data, o)
                name = data[o + 12:o + 12 + namesz]
                d = o + 12 + _align(namesz, a)
                if name == b"NixOS\0" and ntype == NOTE_TYPE:
                    e.note = data[d:d + descsz]
                    break
                o = d + _align(descsz, a)
    return e


def decode(desc):
    """Descriptor -> [(soname, [element, ...])] (pairs of NUL-terminated strings, elements split
    on ':' as the writers join them)."""
    if desc is None:
        return None
    parts = desc.split(b"\0")
    out = []
    for i in range(0, len(parts) - 1, 2):
        if parts[i] == b"" and (i + 1 >= len(parts) or parts[i + 1] == b""):
            break
        out.append((parts[i].decode("utf-8", "surrogateescape"),
                    parts[i + 1].decode("utf-8", "surrogateescape").split(":")))
    return out
