//! `ldnote check`: whether each file's note is what would be written now, and whether the file
//! is whole (a zeroed note or a cut-off file is damage, whatever the resolution note says).
use ldnote::note::{self, Entry};
use ldnote::noter::Current;

use super::note::Noter;
use super::options::NoteOpts;
use super::show::{is_elf, open_regular, printable};
use super::Failure;

/// `check`: 0 when every file's note equals what would be written now, 1 when one differs or the
/// file is damaged, 2 when one is not an ELF file (missing, not regular, not ELF) or an option
/// is invalid (README, "Exit status").
pub fn check(files: &[std::path::PathBuf], opts: NoteOpts) -> i32 {
    let mut noter = match Noter::for_files(opts) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let opts = noter.opts.clone();
    let sysroot = opts.file_sysroot();
    let mut code = 0;
    let mut host_warned = false;
    for f in files {
        let name = f.display();
        let file = match open_regular(f).and_then(|file| match is_elf(f) {
            Ok(true) => Ok(file),
            Ok(false) => Err(Failure(format!("`{name}`: not an ELF file"))),
            Err(e) => Err(e),
        }) {
            Ok(file) => file,
            Err(e) => {
                code = 2;
                outln!("{name}: error: {e}");
                continue;
            }
        };
        let data = object::ReadCache::new(&file);
        if !host_warned && opts.sysroot.is_none() && sysroot == "/" {
            if let Some(m) = foreign_machine(&data) {
                host_warned = true;
                errln!(
                    "ldnote: warning: {name} is for {m}, not this host, and no sysroot is \
                     given (--sysroot or {}): resolving against the host's `/`",
                    ldnote::env::SYSROOT
                );
            }
        }
        let verdict = noter.plan(&data, f);
        let damage = ldnote::verify::problems(&data);
        let msg = match verdict {
            Err(e) => Some(format!("error: {e}")),
            Ok(_) if !damage.is_empty() => Some(format!("damaged: {}", damage.join("; "))),
            Ok(p) => match (&p.current, &p.desired) {
                (Current::Absent, None) => None,
                (Current::Note(cur), Some(want)) if cur == want => None,
                (Current::Malformed(e), _) => Some(format!("malformed note: {e}")),
                (Current::Absent, Some(_)) => Some("missing: a note should be written".into()),
                (Current::Note(_), None) => {
                    Some("extra: the file has a note but nothing should be recorded".into())
                }
                (Current::Note(cur), Some(want)) => Some(format!("stale: {}", diff(cur, want))),
            },
        };
        match msg {
            None => outln!("{name}: ok"),
            Some(m) => {
                code = code.max(1);
                outln!("{name}: {m}");
            }
        }
    }
    code
}

/// The machine of an ELF file when it is not the host's (a file for another target checked
/// without a sysroot is resolved against the wrong tree).
fn foreign_machine<'d, R: object::ReadRef<'d>>(data: R) -> Option<String> {
    let info = ldnote::elf::read(data).ok()?;
    let host = std::env::consts::ARCH;
    match ldnote::target::builtin_for_ident(&info.ident) {
        Some(t) => (!t.runs_on.iter().any(|a| a == host)).then(|| t.name.clone()),
        None => Some(format!("ELF machine {}", info.ident.machine)),
    }
}

fn diff(cur: &[u8], want: &[u8]) -> String {
    let (Ok(c), Ok(w)) = (note::decode_descriptor(cur), note::decode_descriptor(want)) else {
        return "the note cannot be decoded".into();
    };
    let mut out = Vec::new();
    for (s, v) in &w {
        match c.get(s) {
            None => out.push(format!("{} not recorded", printable(s))),
            Some(x) if x != v => out.push(format!(
                "{} differs (has {}, wants {})",
                printable(s),
                join(x),
                join(v)
            )),
            _ => {}
        }
    }
    for s in c.keys().filter(|s| !w.contains_key(*s)) {
        out.push(format!("{} recorded but should not be", printable(s)));
    }
    out.join("; ")
}

fn join(v: &[Entry]) -> String {
    v.iter()
        .map(|e| printable(&e.encode()))
        .collect::<Vec<_>>()
        .join(":")
}
