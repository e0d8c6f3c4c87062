//! `ldnote show`: the note as the loader reads it (PT_NOTE walk), for people or as JSON.
use std::io::Write as _;
use std::path::Path;

use ldnote::elf;
use ldnote::note::{self, Entries, Entry};

use super::note::lossy;
use super::Failure;

/// What `show` found; serialised as `"none"`, `"noted"`, `"malformed"` or `"error"` (the
/// `--json` format).
#[derive(Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    /// No resolution note.
    None,
    /// A note the loader would use.
    Noted,
    /// An ELF file whose headers or note the loader would reject or ignore.
    Malformed,
    /// Nothing to inspect: a missing or unreadable file, not a regular file, or not ELF.
    Error,
}

#[derive(serde::Serialize)]
struct Json {
    file: String,
    status: Status,
    error: Option<String>,
    segment_align: Option<u64>,
    entries: Vec<JsonEntry>,
}

#[derive(serde::Serialize)]
struct JsonEntry {
    soname: String,
    paths: Vec<String>,
}

fn entries_json(e: &Entries) -> Vec<JsonEntry> {
    e.iter()
        .map(|(s, v)| JsonEntry {
            soname: lossy(s),
            paths: v.iter().map(|x| lossy(&x.encode())).collect(),
        })
        .collect()
}

/// A note as read: its segment's `p_align`, and its entries or why they cannot be decoded.
type ReadNote = (u64, Result<Entries, String>);

/// Open a file to inspect: non-blocking (a FIFO has no writer to wait for), and only a regular
/// file (a FIFO, `/dev/zero` or a directory is refused with a message, never read to the end).
/// Only the headers and the parts needed are then read, whatever the file's (apparent) size.
pub fn open_regular(path: &Path) -> Result<std::fs::File, Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    let show = path.display();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| Failure(format!("`{show}`: {e}")))?;
    let meta = f
        .metadata()
        .map_err(|e| Failure(format!("`{show}`: {e}")))?;
    if !meta.is_file() {
        return Err(Failure(format!("`{show}` is not a regular file")));
    }
    Ok(f)
}

/// Whether `path` is a regular file that starts with the ELF magic; Err when it cannot be
/// opened or is not a regular file.
pub fn is_elf(path: &Path) -> Result<bool, Failure> {
    use std::io::Read as _;
    let mut magic = [0u8; 4];
    let mut f = open_regular(path)?;
    match f.read_exact(&mut magic) {
        Ok(()) => Ok(magic == object::elf::ELFMAG),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(Failure(format!("`{}`: {e}", path.display()))),
    }
}

/// Why a file's note could not be read: the file itself (missing, not ELF: [`Status::Error`]) or
/// its ELF structure ([`Status::Malformed`]).
enum Unreadable {
    File(Failure),
    Elf(Failure),
}

/// Read the note of `path` as the loader would: Ok(None) when there is none.
fn read_note(path: &Path) -> Result<Option<ReadNote>, Unreadable> {
    let file = open_regular(path).map_err(Unreadable::File)?;
    let data = object::ReadCache::new(&file);
    let data = &data;
    let info = elf::read(data).map_err(|e| {
        let msg = Failure(format!("`{}`: {e}", path.display()));
        match e {
            elf::ElfError::NotElf => Unreadable::File(msg),
            _ => Unreadable::Elf(msg),
        }
    })?;
    let Some(n) = info.live_note() else {
        return Ok(None);
    };
    let align = info
        .note_segments
        .iter()
        .find(|s| s.index == n.segment)
        .map_or(4, |s| s.align);
    if !n.in_bounds {
        return Ok(Some((
            align,
            Err("the descriptor lies outside its PT_NOTE segment".into()),
        )));
    }
    let decoded = note::decode_descriptor(elf::note_desc(data, n)).map_err(|e| e.to_string());
    Ok(Some((align, decoded)))
}

/// `show`: exit 0 when noted or without note, 1 when malformed, 2 when there is no ELF file to
/// read (the scheme of every command: README, "Exit status").
pub fn show(file: &Path, json: bool) -> i32 {
    let name = file.display().to_string();
    let (status, error, align, entries) = match read_note(file) {
        Err(Unreadable::File(e)) => (Status::Error, Some(e.to_string()), None, Entries::new()),
        Err(Unreadable::Elf(e)) => (Status::Malformed, Some(e.to_string()), None, Entries::new()),
        Ok(None) => (Status::None, None, None, Entries::new()),
        Ok(Some((a, Err(e)))) => (Status::Malformed, Some(e), Some(a), Entries::new()),
        Ok(Some((a, Ok(e)))) => (Status::Noted, None, Some(a), e),
    };
    // A closed pipe (`ldnote show f | head`) is not an error worth a panic.
    let mut out = std::io::stdout().lock();
    if json {
        let j = Json {
            file: name,
            status,
            error: error.clone(),
            segment_align: align,
            entries: entries_json(&entries),
        };
        match serde_json::to_string_pretty(&j) {
            Ok(s) => {
                let _ = writeln!(out, "{s}");
            }
            Err(e) => errln!("ldnote: error: {e}"),
        }
    } else {
        match status {
            Status::None => {
                let _ = writeln!(out, "{name}: no .note.nixos.ldcache note");
            }
            Status::Malformed => {
                let _ = writeln!(
                    out,
                    "{name}: malformed: {}",
                    error.clone().unwrap_or_default()
                );
            }
            Status::Error => {
                let _ = writeln!(out, "{name}: error: {}", error.clone().unwrap_or_default());
            }
            Status::Noted => {
                let _ = writeln!(
                    out,
                    "{name}: {} sonames (PT_NOTE p_align {})",
                    entries.len(),
                    align.unwrap_or(4)
                );
                for (soname, list) in &entries {
                    let _ = writeln!(out, "  {}", printable(soname));
                    for e in list {
                        let kind = if matches!(e, Entry::Exact(_)) {
                            "open exactly"
                        } else {
                            "search dir  "
                        };
                        // An empty hint is an empty run-path element: glibc searches the
                        // process's current directory there.
                        let cwd = if matches!(e, Entry::Hint(d) if d.is_empty()) {
                            "  (empty: the current directory)"
                        } else {
                            ""
                        };
                        let _ = writeln!(out, "    {kind}  {}{cwd}", printable(&e.encode()));
                    }
                }
            }
        }
    }
    match status {
        Status::None | Status::Noted => 0,
        Status::Malformed => 1,
        Status::Error => 2,
    }
}

/// Bytes from a file, made safe for a terminal as readelf prints names: a control character
/// becomes `^X` (`^[` for ESC, `^?` for DEL), a byte that is not UTF-8 becomes `\xNN`, so a
/// soname cannot move the cursor or change colours.
pub fn printable(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\u{7f}' => out.push_str("^?"),
                c if (c as u32) < 0x20 => {
                    out.push('^');
                    out.push(char::from(c as u8 + 0x40));
                }
                // C1 controls (U+0080..U+009F) act as escapes on some terminals.
                c if ('\u{80}'..='\u{9f}').contains(&c) => {
                    out.push_str(&format!("\\u{{{:x}}}", c as u32))
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_bytes_are_escaped() {
        assert_eq!(printable(b"libc.so.6"), "libc.so.6");
        assert_eq!(printable(b"lib\x1b[31mred.so"), "lib^[[31mred.so");
        assert_eq!(printable(b"a\x7fb\x00\xff"), "a^?b^@\\xff");
        assert_eq!(printable("caf\u{e9}".as_bytes()), "caf\u{e9}");
    }
}
