//! The stale-entry rule of this project's note readers (docs/note-format.md, "Stale entries"):
//! a note entry is used only if its directory is one of the object's current `DT_RUNPATH`
//! elements as glibc's `decompose_rpath` makes them. Tools rewrite run paths after the link
//! (CMake and Meson at install, `patchelf --set-rpath`) and leave the note; an entry into a
//! directory the object no longer searches could load a library the stock loader never would.
//!
//! Directories are compared in `fillin_rpath`'s form: tokens expanded, trailing slashes reduced
//! to one (a lone `/` stays), the empty string for the current directory. Expanding `?` hints
//! and the run path needs the loader's state (the object's origin, the platform), so callers
//! do that; this module holds the part that needs none.

/// The directory of an `=PATH` entry in `fillin_rpath`'s form: `PATH` up to and including its
/// last `/`, with the trailing slashes reduced to one. Writers build `=COMPONENT/NAME` from the
/// raw component, so `/a/lib/` gives `=/a/lib//x.so`, whose directory must still be `/a/lib/`.
/// No tokens are expanded: the reader opens `=` paths as they are. `None` for a path without
/// `/` (the readers never open a relative `=` path).
pub fn exact_dir(path: &[u8]) -> Option<&[u8]> {
    let last = path.iter().rposition(|b| *b == b'/')?;
    let mut len = last + 1;
    while len > 1 && path[len - 2] == b'/' {
        len -= 1;
    }
    Some(&path[..len])
}

/// A run-path component (or `?` hint) in `fillin_rpath`'s form, tokens left unexpanded: the
/// empty component stays empty (the current directory; `.` is `./`, another element), trailing slashes are reduced to one and one is added (`/a` and
/// `/a//` give `/a/`, `/` stays). Two components with the same form are the same directory
/// for the loader; the same unexpanded token text expands the same way within one object.
pub fn dir_form(comp: &[u8]) -> Vec<u8> {
    if comp.is_empty() {
        return Vec::new();
    }
    let mut len = comp.len();
    while len > 1 && comp[len - 1] == b'/' {
        len -= 1;
    }
    let mut d = comp[..len].to_vec();
    if d.last() != Some(&b'/') {
        d.push(b'/');
    }
    d
}

/// Whether `dir` (in `fillin_rpath`'s form) is one of `current`, the object's run-path elements
/// in the same form: the rule itself, a bytewise comparison.
pub fn is_current<'a>(dir: &[u8], mut current: impl Iterator<Item = &'a [u8]>) -> bool {
    current.any(|c| c == dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_dir_keeps_one_trailing_slash() {
        assert_eq!(exact_dir(b"/a/lib/libx.so.1"), Some(&b"/a/lib/"[..]));
        assert_eq!(exact_dir(b"/a/lib//libx.so.1"), Some(&b"/a/lib/"[..]));
        assert_eq!(exact_dir(b"/a/lib///libx.so.1"), Some(&b"/a/lib/"[..]));
        assert_eq!(exact_dir(b"/libx.so.1"), Some(&b"/"[..]));
        assert_eq!(exact_dir(b"//libx.so.1"), Some(&b"/"[..]));
        // Inner doubled slashes, `.` and `..` are not normalised (nor are they by glibc).
        assert_eq!(exact_dir(b"/a//b/./x.so"), Some(&b"/a//b/./"[..]));
        assert_eq!(exact_dir(b"/a/../b/x.so"), Some(&b"/a/../b/"[..]));
        // No token expansion: `=` paths are opened as they are.
        assert_eq!(exact_dir(b"$ORIGIN/x.so"), Some(&b"$ORIGIN/"[..]));
        assert_eq!(exact_dir(b"libx.so.1"), None);
    }

    #[test]
    fn dir_form_is_fillin_rpaths() {
        assert_eq!(dir_form(b""), b"");
        assert_eq!(dir_form(b"."), b"./");
        assert_eq!(dir_form(b"./"), b"./");
        assert_eq!(dir_form(b"/"), b"/");
        assert_eq!(dir_form(b"//"), b"/");
        assert_eq!(dir_form(b"/a/lib"), b"/a/lib/");
        assert_eq!(dir_form(b"/a/lib//"), b"/a/lib/");
        assert_eq!(dir_form(b"$ORIGIN"), b"$ORIGIN/");
    }

    #[test]
    fn is_current_is_bytewise() {
        let cur: [&[u8]; 3] = [b"/a/lib/", b"", b"/"];
        let has = |d: &[u8]| is_current(d, cur.iter().copied());
        assert!(has(b"/a/lib/"));
        assert!(has(b""));
        assert!(has(b"/"));
        assert!(!has(b"/a/lib"));
        assert!(!has(b"/a/./lib/"));
        assert!(!has(b"/b/lib/"));
        assert!(!is_current(b"/a/lib/", std::iter::empty()));
    }
}
