//! `ldnote check`: whether each file's note is what would be written now, and whether the file
//! is whole (a zeroed note or a cut-off file is damage, whatever the resolution note says).
use ldnote::note::{self, Entry};
use ldnote::noter::Current;

use super::note::Noter;
use super::options::NoteOpts;
use super::show::{open_regular, printable};

/// `check`: 0 when every file's note equals what would be written now.
pub fn check(files: &[std::path::PathBuf], opts: NoteOpts) -> i32 {
    let opts = opts.with_env();
    let sysroot = opts.file_sysroot();
    let mut noter = match Noter::new(opts, &sysroot) {
        Ok(n) => n,
        Err(e) => {
            errln!("ldnote: error: {e}");
            return 2;
        }
    };
    let mut bad = 0;
    for f in files {
        let name = f.display();
        let file = match open_regular(f) {
            Ok(file) => file,
            Err(e) => {
                bad += 1;
                outln!("{name}: error: {e}");
                continue;
            }
        };
        let data = object::ReadCache::new(&file);
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
                bad += 1;
                outln!("{name}: {m}");
            }
        }
    }
    i32::from(bad > 0)
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
