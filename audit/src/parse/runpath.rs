//! The stale-entry rule (docs/note-format.md, "Stale entries"): an entry is used only when its
//! directory is one of the requesting object's *current* `DT_RUNPATH` elements, so that a note
//! left behind by a run path rewritten after the link (CMake or Meson at install,
//! `patchelf --set-rpath`, `chrpath`) cannot load a library the object no longer searches.
//!
//! The elements are the loader's (glibc 2.36 elf/dl-load.c): `decompose_rpath` uses nothing of
//! an empty `DT_RUNPATH`; `fillin_rpath` splits it at every `:`, keeps an empty component as
//! the current directory, substitutes the dynamic string tokens of any other component
//! (`_dl_dst_substitute`, `is_dst`), drops one that comes out empty or has a token without a
//! value, and removes trailing slashes except for a lone `/`. Comparisons are bytewise.
//!
//! `$LIB` and `$PLATFORM` have values the module cannot know (a build-time directory name; a
//! platform string the x86 loader may replace after probing the CPU), and `$ORIGIN` is unknown
//! for an object whose name is relative (glibc prefixes the working directory). Where a
//! decision depends on such a value the reader answers [`Step::Stock`]: the loader's own search,
//! which is always right.

/// `$ORIGIN` for the requesting object, as glibc substitutes it (`l_origin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    /// The directory.
    Dir(&'a [u8]),
    /// The module cannot tell.
    Unknown,
}

/// `l_origin` of an object whose `l_name` is `name` (glibc 2.36 elf/dl-object.c
/// `_dl_new_object`): the name up to its last `/`, or `/` when that is the first byte. A
/// relative name is resolved against the working directory there: unknown here.
pub fn origin_of_name(name: &[u8]) -> Origin<'_> {
    if name.first() != Some(&b'/') {
        return Origin::Unknown;
    }
    let last = name.iter().rposition(|b| *b == b'/').unwrap_or(0);
    Origin::Dir(&name[..last.max(1)])
}

/// `l_origin` of the main program from `readlink("/proc/self/exe")` (glibc 2.36
/// sysdeps/unix/sysv/linux/dl-origin.c `_dl_get_origin`); `link` is what it returned, `None`
/// when it failed (glibc then uses `LD_ORIGIN_PATH`, which the module does not mirror).
pub fn origin_of_exe(link: Option<&[u8]>) -> Origin<'_> {
    match link {
        Some(l) if l.first() == Some(&b'/') => {
            let last = l.iter().rposition(|b| *b == b'/').unwrap_or(0);
            Origin::Dir(&l[..last.max(1)])
        }
        _ => Origin::Unknown,
    }
}

/// A run-path component (or a `?` hint's directory) after substitution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// The directory: this many bytes of the output buffer (0: the current directory).
    Is(usize),
    /// The loader drops the component: no directory.
    Dropped,
    /// The result depends on a value the module does not know (or does not fit the buffer).
    Unknown,
}

/// glibc 2.36 `is_dst`: the length of the token `name` at the start of `s` (the text after a
/// `$`), braced or not; 0 when it is not that token (an identifier character follows it, or a
/// brace is not closed).
fn token(s: &[u8], name: &[u8]) -> usize {
    let (curly, body) = match s.split_first() {
        Some((b'{', rest)) => (true, rest),
        _ => (false, s),
    };
    if !body.starts_with(name) {
        return 0;
    }
    let next = body.get(name.len()).copied();
    if curly && next != Some(b'}') {
        return 0;
    }
    if next.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return 0;
    }
    if curly {
        name.len() + 2
    } else {
        name.len()
    }
}

/// One component as `fillin_rpath` makes it a search directory, written to `out`.
pub fn expand(comp: &[u8], origin: Origin<'_>, out: &mut [u8]) -> Dir {
    if comp.is_empty() {
        return Dir::Is(0);
    }
    let mut w = 0;
    let mut put = |bytes: &[u8], w: &mut usize| -> bool {
        let Some(dst) = out.get_mut(*w..*w + bytes.len()) else {
            return false;
        };
        dst.copy_from_slice(bytes);
        *w += bytes.len();
        true
    };
    let mut i = 0;
    while i < comp.len() {
        let mut piece = &comp[i..=i];
        let mut adv = 1;
        if comp[i] == b'$' {
            let rest = &comp[i + 1..];
            let n = token(rest, b"ORIGIN");
            if n != 0 {
                let Origin::Dir(o) = origin else {
                    return Dir::Unknown;
                };
                piece = o;
                adv = 1 + n;
            } else if token(rest, b"PLATFORM") != 0 || token(rest, b"LIB") != 0 {
                return Dir::Unknown;
            }
        }
        if !put(piece, &mut w) {
            return Dir::Unknown;
        }
        i += adv;
    }
    if w == 0 {
        return Dir::Dropped;
    }
    while w > 1 && out[w - 1] == b'/' {
        w -= 1;
    }
    Dir::Is(w)
}

/// Trailing slashes removed, except for a lone `/`.
fn trim(d: &[u8]) -> &[u8] {
    let mut n = d.len();
    while n > 1 && d[n - 1] == b'/' {
        n -= 1;
    }
    &d[..n]
}

/// An `=` path's directory: up to and including its last `/`, trailing slashes removed.
pub fn path_dir(p: &[u8]) -> &[u8] {
    match p.iter().rposition(|b| *b == b'/') {
        Some(i) => trim(&p[..=i]),
        None => &[],
    }
}

/// Whether a directory is a current element: yes, no, or it depends on an unknown value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Current {
    /// Byte-equal to an element.
    Yes,
    /// Equal to none.
    No,
    /// Equal to no known element, and some element's value is unknown.
    Unknown,
}

/// The requesting object's current run path: its `DT_RUNPATH` string and `$ORIGIN`.
#[derive(Clone, Copy, Debug)]
pub struct RunPath<'a> {
    /// The `DT_RUNPATH` string (no NUL).
    pub raw: &'a [u8],
    /// `$ORIGIN`'s value.
    pub origin: Origin<'a>,
}

impl RunPath<'_> {
    /// Whether `dir` is one of the elements. The walk starts at the component at byte offset
    /// `*cursor` (0, or one this function left there) and wraps around; after a match the
    /// cursor is left at the next component, where the next name's directory usually is (a
    /// note lists directories in run-path order). `scratch` holds a substituted component.
    pub fn holds(&self, dir: &[u8], cursor: &mut usize, scratch: &mut [u8]) -> Current {
        let raw = self.raw;
        let n = raw.len();
        if n == 0 {
            // decompose_rpath: an empty run path has no elements.
            return Current::No;
        }
        let start = if *cursor <= n && (*cursor == 0 || raw[*cursor - 1] == b':') {
            *cursor
        } else {
            0
        };
        let mut unknown = false;
        let mut p = start;
        loop {
            let e = raw[p..]
                .iter()
                .position(|b| *b == b':')
                .map_or(n, |k| p + k);
            let comp = &raw[p..e];
            let next = if e < n { e + 1 } else { 0 };
            let equal = if comp.contains(&b'$') {
                match expand(comp, self.origin, scratch) {
                    Dir::Is(w) => scratch[..w] == *dir,
                    Dir::Dropped => false,
                    Dir::Unknown => {
                        unknown = true;
                        false
                    }
                }
            } else {
                trim(comp) == dir
            };
            if equal {
                *cursor = next;
                return Current::Yes;
            }
            p = next;
            if p == start {
                break;
            }
        }
        if unknown {
            Current::Unknown
        } else {
            Current::No
        }
    }
}

/// What the reader does with one element of a path list, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step<'d> {
    /// An absolute `=` path in a current directory: hand it to the loader if the file is
    /// loadable, else go on.
    Try(&'d [u8]),
    /// Ignored: empty, a relative `=` path, an unknown tag (as the note-aware loader ignores
    /// them), or a stale entry (its directory is no current run-path element).
    Skip,
    /// Stop and leave the name to the loader's normal search: a current `?` hint (a directory
    /// search the module does not repeat), an `=` path the loader would rewrite (a `$` is
    /// expanded as a dynamic string token in a path returned to it), or an entry whose
    /// currency depends on a value the module does not know.
    Stock,
}

/// Classify one element of a path list against the requester's run path (`cursor` as for
/// [`RunPath::holds`]; `a` and `b` are work buffers for substituted directories).
pub fn step<'d>(
    el: &'d [u8],
    rp: &RunPath<'_>,
    cursor: &mut usize,
    a: &mut [u8],
    b: &mut [u8],
) -> Step<'d> {
    match el.split_first() {
        Some((b'=', p)) if p.first() == Some(&b'/') => match rp.holds(path_dir(p), cursor, a) {
            Current::No => Step::Skip,
            Current::Unknown => Step::Stock,
            Current::Yes if p.contains(&b'$') => Step::Stock,
            Current::Yes => Step::Try(p),
        },
        Some((b'?', d)) => match expand(d, rp.origin, b) {
            Dir::Dropped => Step::Skip,
            Dir::Unknown => Step::Stock,
            Dir::Is(w) => match rp.holds(&b[..w], cursor, a) {
                Current::No => Step::Skip,
                Current::Yes | Current::Unknown => Step::Stock,
            },
        },
        _ => Step::Skip,
    }
}

#[cfg(test)]
mod tests;
