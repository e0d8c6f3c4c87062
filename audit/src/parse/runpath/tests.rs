//! The stale-entry rule: token substitution as glibc 2.36 does it, entry directories, the
//! cursor walk, and the step each kind of entry gives.
use super::*;

fn ex(comp: &[u8], origin: Origin<'_>) -> Result<Vec<u8>, Dir> {
    let mut out = [0u8; 64];
    match expand(comp, origin, &mut out) {
        Dir::Is(w) => Ok(out[..w].to_vec()),
        d => Err(d),
    }
}

const O: Origin<'static> = Origin::Dir(b"/o/bin");

#[test]
fn tokens_are_substituted_as_the_loader_does() {
    assert_eq!(ex(b"$ORIGIN/../lib", O), Ok(b"/o/bin/../lib".to_vec()));
    assert_eq!(ex(b"${ORIGIN}/lib/", O), Ok(b"/o/bin/lib".to_vec()));
    assert_eq!(ex(b"$ORIGIN", O), Ok(b"/o/bin".to_vec()));
    // Not tokens: an identifier character follows, an unclosed brace, unknown names.
    assert_eq!(ex(b"/x/$ORIGINAL", O), Ok(b"/x/$ORIGINAL".to_vec()));
    assert_eq!(ex(b"/x/$ORIGIN_", O), Ok(b"/x/$ORIGIN_".to_vec()));
    assert_eq!(ex(b"/x/${ORIGIN", O), Ok(b"/x/${ORIGIN".to_vec()));
    assert_eq!(ex(b"/x/$HOME/y", O), Ok(b"/x/$HOME/y".to_vec()));
    assert_eq!(ex(b"/x/$", O), Ok(b"/x/$".to_vec()));
    // Values the module does not know.
    assert_eq!(ex(b"/usr/$LIB", O), Err(Dir::Unknown));
    assert_eq!(ex(b"/usr/${PLATFORM}/x", O), Err(Dir::Unknown));
    assert_eq!(ex(b"$ORIGIN/x", Origin::Unknown), Err(Dir::Unknown));
    // An empty component is the current directory; trailing slashes go, a lone `/` stays.
    assert_eq!(ex(b"", O), Ok(Vec::new()));
    assert_eq!(ex(b"/a/lib//", O), Ok(b"/a/lib".to_vec()));
    assert_eq!(ex(b"///", O), Ok(b"/".to_vec()));
    assert_eq!(ex(b"rel/", O), Ok(b"rel".to_vec()));
    // A result that does not fit the buffer: unknown, never cut short.
    assert_eq!(ex(&[b'a'; 100], O), Err(Dir::Unknown));
}

#[test]
fn origins() {
    assert_eq!(origin_of_name(b"/a/b/libx.so"), Origin::Dir(b"/a/b"));
    assert_eq!(origin_of_name(b"/libx.so"), Origin::Dir(b"/"));
    assert_eq!(origin_of_name(b"lib/libx.so"), Origin::Unknown);
    assert_eq!(origin_of_name(b""), Origin::Unknown);
    assert_eq!(
        origin_of_exe(Some(b"/usr/bin/prog")),
        Origin::Dir(b"/usr/bin")
    );
    assert_eq!(origin_of_exe(Some(b"/prog")), Origin::Dir(b"/"));
    assert_eq!(origin_of_exe(Some(b"[vdso]")), Origin::Unknown);
    assert_eq!(origin_of_exe(None), Origin::Unknown);
}

#[test]
fn entry_directories() {
    assert_eq!(path_dir(b"/opt/a/lib/libx.so.1"), b"/opt/a/lib");
    assert_eq!(path_dir(b"/opt/a/lib//libx.so.1"), b"/opt/a/lib");
    assert_eq!(path_dir(b"/libx.so.1"), b"/");
}

fn holds(raw: &[u8], dir: &[u8], cursor: &mut usize) -> Current {
    let rp = RunPath { raw, origin: O };
    rp.holds(dir, cursor, &mut [0u8; 64])
}

#[test]
fn the_walk_starts_at_the_cursor_and_wraps() {
    let raw = b"/a:/b/:$ORIGIN/../lib::/c";
    let mut at = 0;
    assert_eq!(holds(raw, b"/b", &mut at), Current::Yes);
    assert_eq!(at, 7, "left at the component after /b/");
    assert_eq!(holds(raw, b"/o/bin/../lib", &mut at), Current::Yes);
    assert_eq!(
        holds(raw, b"", &mut at),
        Current::Yes,
        "the empty component"
    );
    assert_eq!(
        holds(raw, b"/a", &mut at),
        Current::Yes,
        "found after wrapping"
    );
    assert_eq!(at, 3);
    assert_eq!(holds(raw, b"/d", &mut at), Current::No);
    assert_eq!(at, 3, "unchanged when nothing matched");
    // A cursor that is not at a component start is not trusted.
    let mut odd = 1;
    assert_eq!(holds(raw, b"/a", &mut odd), Current::Yes);
    let mut past = 999;
    assert_eq!(holds(raw, b"/c", &mut past), Current::Yes);
    // decompose_rpath: an empty run path has no elements, not the current directory.
    assert_eq!(holds(b"", b"", &mut 0), Current::No);
    // A trailing `:` is an empty last component.
    assert_eq!(holds(b"/a:", b"", &mut 0), Current::Yes);
    // An unknown value decides nothing it is not equal to.
    assert_eq!(holds(b"/usr/$LIB:/a", b"/a", &mut 0), Current::Yes);
    assert_eq!(holds(b"/usr/$LIB:/a", b"/b", &mut 0), Current::Unknown);
}

fn st<'d>(el: &'d [u8], raw: &[u8], origin: Origin<'_>) -> Step<'d> {
    let rp = RunPath { raw, origin };
    step(el, &rp, &mut 0, &mut [0u8; 64], &mut [0u8; 64])
}

#[test]
fn steps() {
    let rp = b"/s/a:/s/b/:$ORIGIN/../lib";
    assert_eq!(st(b"=/s/a/liba.so", rp, O), Step::Try(b"/s/a/liba.so"));
    assert_eq!(st(b"=/s/b//liba.so", rp, O), Step::Try(b"/s/b//liba.so"));
    // Stale: the directory is no longer in the run path.
    assert_eq!(st(b"=/build/liba.so", rp, O), Step::Skip);
    assert_eq!(st(b"?/build", rp, O), Step::Skip);
    // Current hints leave the name to the loader's search.
    assert_eq!(st(b"?/s/b", rp, O), Step::Stock);
    assert_eq!(st(b"?$ORIGIN/../lib/", rp, O), Step::Stock);
    assert_eq!(st(b"?${ORIGIN}/../lib", rp, O), Step::Stock);
    // $ORIGIN's expansion is also a current directory for an `=` entry.
    assert_eq!(
        st(b"=/o/bin/../lib/libz.so", rp, O),
        Step::Try(b"/o/bin/../lib/libz.so")
    );
    // Unknown origin: a decision that needs it is the loader's.
    assert_eq!(st(b"=/x/libz.so", rp, Origin::Unknown), Step::Stock);
    assert_eq!(
        st(b"=/s/a/liba.so", rp, Origin::Unknown),
        Step::Try(b"/s/a/liba.so")
    );
    assert_eq!(st(b"?$ORIGIN/x", b"/s/a", Origin::Unknown), Step::Stock);
    // A hint the loader would drop names no directory.
    assert_eq!(st(b"?$ORIGIN", b"/s/a", Origin::Dir(b"")), Step::Skip);
    // Ignored as before: empty, relative, unknown tags; `$` in a current `=` path is stock.
    assert_eq!(st(b"=rel/liba.so", rp, O), Step::Skip);
    assert_eq!(st(b"", rp, O), Step::Skip);
    assert_eq!(st(b"!x", rp, O), Step::Skip);
    assert_eq!(st(b"=/s/a/$x.so", rp, O), Step::Stock);
    // No run path at all: nothing is current.
    assert_eq!(st(b"=/s/a/liba.so", b"", O), Step::Skip);
}
