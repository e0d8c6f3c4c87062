//! `@file` response-file expansion, for *analysis* only.
//!
//! The real tool still receives the original argv byte for byte; this module just lets the link
//! plan see what gcc, GNU ld and lld will see after they expand response files themselves.
//! Semantics mirror libiberty's `expandargv`/`buildargv` (used by gcc, collect2 and GNU ld; LLVM's
//! GNU tokenizer agrees on everything handled here):
//! - an argument `@name` whose file cannot be opened (missing, unreadable, a directory) stays a
//!   literal argument, exactly as gcc passes it on; one naming a pipe or device is an error
//!   ([`RspError::NotRegularFile`]), since reading it would steal it from the real tool;
//! - whitespace (space, `\t`, `\n`, `\v`, `\f`, `\r`) separates arguments; single and double quotes
//!   group; a backslash escapes the next byte *everywhere*, even inside quotes (a libiberty quirk);
//!   an unterminated quote runs to the end of the file; `""` is an empty argument;
//! - the file is a C string to libiberty, so a NUL byte ends it;
//! - a file holding only whitespace expands to no arguments;
//! - arguments read from a file are rescanned, so response files nest; a relative name is relative
//!   to the process working directory (`cwd`), not to the including file, as with `fopen`.
//!
//! libiberty only stops runaway nesting after 2000 files with "too many @-files encountered";
//! we report a cycle as soon as a file includes itself (directly or not) and cap depth and total
//! count, each with an error naming the file.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// Maximum nesting depth of response files.
pub const MAX_DEPTH: usize = 64;
/// Maximum number of response files read for one command line (libiberty's limit).
pub const MAX_FILES: usize = 2000;

/// Why a command line's response files could not be expanded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RspError {
    /// A response file includes itself, directly or through other response files.
    #[error("response file `{}` includes itself (cycle through {} file(s))", .path.display(), .depth)]
    Cycle {
        /// The file that was about to be read a second time.
        path: PathBuf,
        /// How many response files were open at that point.
        depth: usize,
    },
    /// Response files nest deeper than [`MAX_DEPTH`].
    #[error("response files nested deeper than {MAX_DEPTH} at `{}`", .path.display())]
    TooDeep {
        /// The file that would exceed the limit.
        path: PathBuf,
    },
    /// More than [`MAX_FILES`] response files were read for one command line.
    #[error("too many @-files encountered (more than {MAX_FILES})")]
    TooMany,
    /// The response file is a pipe, FIFO, socket or device. Reading it for analysis would consume
    /// what the real tool must read (nixpkgs' cc-wrapper passes `@<(printf ...)`, i.e.
    /// `@/dev/fd/63`), so it is left unread and the command line cannot be analysed.
    #[error("response file `{}` is not a regular file; reading it would consume it", .path.display())]
    NotRegularFile {
        /// The response file as named on the command line, relative to cwd.
        path: PathBuf,
    },
}

/// Expand every `@file` argument of `args` (recursively), resolving relative names against `cwd`.
///
/// Arguments that are not response files are kept unchanged; without any `@` argument (most
/// link lines) `args` itself is returned, not a copy.
pub fn expand<'a>(args: &'a [OsString], cwd: &Path) -> Result<Cow<'a, [OsString]>, RspError> {
    if !args.iter().any(|a| a.as_bytes().starts_with(b"@")) {
        return Ok(Cow::Borrowed(args));
    }
    let mut out = Vec::with_capacity(args.len());
    let mut stack = Vec::new();
    let mut files = 0usize;
    for arg in args {
        expand_one(arg, cwd, &mut stack, &mut files, &mut out)?;
    }
    Ok(Cow::Owned(out))
}

/// Expand one argument into `out`. `stack` holds the identities of the files being read.
fn expand_one(
    arg: &OsStr,
    cwd: &Path,
    stack: &mut Vec<(PathBuf, FileId)>,
    files: &mut usize,
    out: &mut Vec<OsString>,
) -> Result<(), RspError> {
    let Some(name) = arg.as_bytes().strip_prefix(b"@") else {
        out.push(arg.to_owned());
        return Ok(());
    };
    let path = cwd.join(OsStr::from_bytes(name));
    let Some((id, contents)) = read_response_file(&path)? else {
        // libiberty: "If we cannot open the file, then it is not a response file."
        out.push(arg.to_owned());
        return Ok(());
    };
    if stack.iter().any(|(_, open)| *open == id) {
        return Err(RspError::Cycle {
            path,
            depth: stack.len(),
        });
    }
    if stack.len() >= MAX_DEPTH {
        return Err(RspError::TooDeep { path });
    }
    *files += 1;
    if *files > MAX_FILES {
        return Err(RspError::TooMany);
    }
    stack.push((path, id));
    for inner in tokenize(&contents) {
        expand_one(&inner, cwd, stack, files, out)?;
    }
    stack.pop();
    Ok(())
}

/// Identity of an open response file (device, inode), so that `@a` and `@./a` are one file.
type FileId = (u64, u64);

/// Read a response file; `None` when it cannot be used as one (libiberty then keeps `@name`).
/// Only `stat` is used before deciding, so a FIFO is never opened (opening one blocks).
fn read_response_file(path: &Path) -> Result<Option<(FileId, Vec<u8>)>, RspError> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(None);
    };
    // Newer libiberty skips directories explicitly; reading one fails anyway.
    if meta.is_dir() {
        return Ok(None);
    }
    if !meta.is_file() {
        return Err(RspError::NotRegularFile {
            path: path.to_owned(),
        });
    }
    Ok(std::fs::read(path)
        .ok()
        .map(|contents| ((meta.dev(), meta.ino()), contents)))
}

/// Split response-file contents into arguments with libiberty `buildargv` rules.
pub fn tokenize(contents: &[u8]) -> Vec<OsString> {
    // The buffer is a C string for libiberty: anything after a NUL is invisible.
    let text = match contents.iter().position(|&b| b == 0) {
        Some(nul) => &contents[..nul],
        None => contents,
    };
    let is_space = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r');
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < text.len() && is_space(text[i]) {
            i += 1;
        }
        if i >= text.len() {
            break;
        }
        let mut arg = Vec::new();
        let (mut squote, mut dquote, mut escaped) = (false, false, false);
        while i < text.len() {
            let b = text[i];
            if is_space(b) && !squote && !dquote && !escaped {
                break;
            }
            if escaped {
                escaped = false;
                arg.push(b);
            } else if b == b'\\' {
                escaped = true;
            } else if squote {
                if b == b'\'' {
                    squote = false;
                } else {
                    arg.push(b);
                }
            } else if dquote {
                if b == b'"' {
                    dquote = false;
                } else {
                    arg.push(b);
                }
            } else if b == b'\'' {
                squote = true;
            } else if b == b'"' {
                dquote = true;
            } else {
                arg.push(b);
            }
            i += 1;
        }
        args.push(OsString::from_vec(arg));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &[u8]) -> Vec<Vec<u8>> {
        tokenize(s).into_iter().map(OsStringExt::into_vec).collect()
    }

    #[test]
    fn whitespace_and_quotes() {
        assert_eq!(
            toks(b"  a\tb\n\"c d\" 'e f'  "),
            [&b"a"[..], b"b", b"c d", b"e f"]
        );
        assert_eq!(toks(b"x\"y z\"w"), [&b"xy zw"[..]]);
        assert_eq!(toks(b"\"\" ''"), [&b""[..], b""]);
        assert!(toks(b" \n\t ").is_empty());
    }

    #[test]
    fn backslash_escapes_everywhere() {
        assert_eq!(toks(b"a\\ b"), [&b"a b"[..]]);
        assert_eq!(toks(b"'a\\'b'"), [&b"a'b"[..]]);
        assert_eq!(toks(b"\"a\\\"b\\\\\""), [&b"a\"b\\"[..]]);
        // A trailing backslash escapes nothing and is dropped.
        assert_eq!(toks(b"a\\"), [&b"a"[..]]);
    }

    #[test]
    fn unterminated_quote_and_nul() {
        assert_eq!(toks(b"'a b"), [&b"a b"[..]]);
        assert_eq!(toks(b"a\0b c"), [&b"a"[..]]);
    }

    #[test]
    fn non_utf8_bytes_survive() {
        assert_eq!(toks(b"\xff\xfe 'x\x80'"), [&b"\xff\xfe"[..], b"x\x80"]);
    }
}
