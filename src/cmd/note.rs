//! Noting one linked file: the library's step (`ldnote::noter`: read -> resolve -> encode), then
//! the writes (in place, else the append fallback) and the `-v` lines.
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use ldnote::elf::{self, ElfInfo};
use ldnote::embed::{self, Edit};
use ldnote::fs::RealFs;
use ldnote::noter::{Event, Plan};
use ldnote::shrink;
use object::{ReadCache, ReadRef};

use super::options::NoteOpts;
use super::stream::View;
use super::Failure;

/// What happened to a file.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Not a dynamically linked executable or library: nothing to do.
    NotDynamic,
    /// Nothing to record (and no stale note).
    Nothing,
    /// The note was already what we would write.
    UpToDate,
    /// Written in place into the reserved region.
    InPlace,
    /// Written by appending a segment (the fallback).
    Appended(String),
}

/// The per-file step ([`ldnote::noter`]) with the driver's side: the files it opens, the
/// writes it makes and the lines it prints.
pub struct Noter {
    pub opts: NoteOpts,
    core: ldnote::noter::Noter<RealFs>,
    sysroot: std::ffi::OsString,
    /// `ldnote patch`: a file with several hard links is rewritten in place by the append
    /// fallback, as patchelf does (every name sees the note; not atomic). `ldnote link` always
    /// replaces atomically (temporary file and rename), breaking such links.
    pub keep_links: bool,
}

pub fn say(opts: &NoteOpts, msg: impl AsRef<str>) {
    if opts.verbose {
        errln!("ldnote: {}", msg.as_ref());
    }
}

impl Noter {
    pub fn new(opts: NoteOpts, sysroot: &OsStr) -> Result<Self, Failure> {
        let targets = ldnote::target::builtin().map_err(|e| Failure(e.to_string()))?;
        let core = ldnote::noter::Noter::new(opts.choices(), targets, RealFs::new(sysroot));
        Ok(Noter {
            opts,
            core,
            sysroot: sysroot.to_os_string(),
            keep_links: false,
        })
    }

    /// What the note of `path` should be, and what it is; its events printed under `-v`.
    pub fn plan<'d, R: ReadRef<'d>>(&mut self, data: R, path: &Path) -> Result<Plan, Failure> {
        let show = path.display();
        let plan = self
            .core
            .plan(data)
            .map_err(|e| Failure(format!("`{show}`: {e}")))?;
        super::trace::mark("resolve");
        if self.opts.verbose {
            for e in &plan.events {
                let line = match e {
                    Event::Target(t) => format!(
                        "target {}, sysroot {}",
                        t.as_deref().unwrap_or("unknown"),
                        Path::new(&self.sysroot).display()
                    ),
                    Event::RpathNotConsulted => "has DT_RPATH, not DT_RUNPATH: the loader searches RPATH before the note, so the note is written (as patchelf does) but never consulted".into(),
                    Event::Resolve(e) => describe(e),
                };
                say(&self.opts, format!("{show}: {line}"));
            }
        }
        Ok(plan)
    }

    /// Shrink the run path of `path` in place, as `patchelf --shrink-rpath` would.
    fn shrink_file(&mut self, path: &Path) -> Result<(), Failure> {
        let show = path.display().to_string();
        let file = File::open(path).map_err(|e| Failure(format!("`{show}`: cannot open: {e}")))?;
        let cache = ReadCache::new(&file);
        let info = elf::read(&cache).map_err(|e| Failure(format!("`{show}`: {e}")))?;
        let Some(old) = info
            .search_path()
            .map(<[u8]>::to_vec)
            .filter(|_| info.run_path_string.is_some())
        else {
            return Ok(());
        };
        let machine: [u8; 2] = cache
            .read_bytes_at(18, 2)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Failure(format!("`{show}`: truncated header")))?;
        drop(cache);
        let resolver = self.core.resolver();
        let mut probe = |p: &[u8]| -> std::io::Result<shrink::Probe> {
            match resolver.read_head(p, 64) {
                Ok(head) => Ok(shrink::provides(&head, machine)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(shrink::Probe::Absent),
                Err(e) => Err(e),
            }
        };
        let new = shrink::shrink(&info.needed, &old, &mut probe).map_err(|e| {
            Failure(format!(
                "`{show}`: cannot shrink the run path ({e}); the file is left unchanged"
            ))
        })?;
        let writes = shrink::writes(&info, &old, &new);
        if writes.is_empty() {
            return Ok(());
        }
        say(
            &self.opts,
            format!("{show}: run path `{}` -> `{}`", lossy(&old), lossy(&new)),
        );
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| Failure(format!("`{show}`: cannot open for writing: {e}")))?;
        for w in &writes {
            f.write_all_at(&w.bytes, w.offset)
                .map_err(|e| Failure(format!("`{show}`: write failed: {e}")))?;
        }
        Ok(())
    }

    /// Note `path` in place (or by the append fallback).
    pub fn note_file(&mut self, path: &Path) -> Result<Outcome, Failure> {
        if self.opts.shrink_rpath {
            self.shrink_file(path)?;
        }
        let show = path.display().to_string();
        // Declared first, dropped last: the lock outlives the descriptor open for writing, so
        // the next run never sees this one's writer in its lease check.
        let (_lock, file, write_err) = open_for_noting(path, &show)?;
        let cannot_write = |e: &std::io::Error| {
            Failure(format!(
                "`{show}`: cannot open for writing: {e}; the file is left unchanged"
            ))
        };
        let cache = ReadCache::new(Source::of(&file));
        let plan = self.plan(&cache, path)?;
        if !plan.is_dynamic() {
            say(
                &self.opts,
                format!("{show}: not dynamically linked, nothing to note"),
            );
            return Ok(Outcome::NotDynamic);
        }
        let seg = |s: &elf::NoteSegment| {
            cache
                .read_bytes_at(s.offset, s.filesz)
                .ok()
                .map(<[u8]>::to_vec)
        };
        // Deferred: plan as if there were nothing to record (inert, hidden reservation).
        let edit = plan.edit(self.opts.defer, &seg);
        let note = if self.opts.defer {
            None
        } else {
            plan.note.as_deref()
        };
        drop(cache);
        match edit {
            Edit::UpToDate => {
                say(&self.opts, format!("{show}: note already up to date"));
                Ok(Outcome::UpToDate)
            }
            Edit::Nothing => {
                say(&self.opts, format!("{show}: nothing to record, no note"));
                Ok(Outcome::Nothing)
            }
            Edit::InPlace(writes) => {
                if let Some(e) = &write_err {
                    return Err(cannot_write(e));
                }
                let count = embed::apply(&file, writes)
                    .map_err(|e| Failure(format!("`{show}`: write failed: {e}")))?;
                super::trace::mark("write");
                let what = if note.is_some() {
                    "note written in place"
                } else {
                    "reservation left inert and hidden"
                };
                say(&self.opts, format!("{show}: {what} ({count} writes)"));
                Ok(if note.is_some() {
                    Outcome::InPlace
                } else {
                    Outcome::Nothing
                })
            }
            Edit::Append(why) => {
                let Some(note) = note else {
                    return Ok(Outcome::Nothing);
                };
                if let Some(e) = &write_err {
                    return Err(cannot_write(e));
                }
                say(
                    &self.opts,
                    format!("{show}: appending a note segment: {why}"),
                );
                let keep_links = self.keep_links;
                match append_file(path, &file, &plan.info, note, keep_links) {
                    Ok(()) => {}
                    // Refused before anything was written: the file stays byte for byte.
                    Err(AppendFail::Refused(e)) => return Err(e),
                    Err(AppendFail::Io(e)) => {
                        // Leave no half-used reservation that patchelf would mistake for a note
                        // (only when the file itself was not replaced: written through our fd).
                        embed::apply_best_effort(&file, &embed::neutralize(&plan.info));
                        return Err(e);
                    }
                }
                Ok(Outcome::Appended(why))
            }
        }
    }
}

/// Open `path` for noting: read-only and non-blocking first (a FIFO or device named like the
/// output never blocks, and is refused), then, under an exclusive `flock` that serialises ldnote
/// runs on the same file (a second `patch` then sees the first one's result), refused if
/// another process has it open for writing (its bytes are not final: a linker still writing),
/// and only then opened for writing. Returns the descriptor holding the lock (to be closed
/// last), the descriptor to read and write through, and why the file could not be opened for
/// writing (the second is then the read-only one, holding the lock itself).
type Opened = (Option<File>, File, Option<std::io::Error>);
fn open_for_noting(path: &Path, show: &str) -> Result<Opened, Failure> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let fail = |e: std::io::Error| Failure(format!("`{show}`: cannot open: {e}"));
    // The name may be replaced by a concurrent run while this one waits for the lock: the
    // name is opened again, a few times at most (each replacement is a finished run).
    for _ in 0..8 {
        let ro = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(fail)?;
        let meta = ro.metadata().map_err(fail)?;
        if !meta.is_file() {
            return Err(Failure(format!("`{show}` is not a regular file")));
        }
        let _ = rustix::fs::flock(&ro, rustix::fs::FlockOperation::LockExclusive);
        match std::fs::metadata(path) {
            Ok(m) if m.dev() == meta.dev() && m.ino() == meta.ino() => {}
            _ => continue,
        }
        if super::replace::open_for_writing_elsewhere(&ro) == Some(true) {
            return Err(Failure(format!(
                "`{show}` is open for writing by another process (a linker still writing \
                 it?): its bytes are not final; left unchanged"
            )));
        }
        return match OpenOptions::new().read(true).write(true).open(path) {
            Ok(rw) => match rw.metadata() {
                Ok(m) if m.dev() == meta.dev() && m.ino() == meta.ino() => Ok((Some(ro), rw, None)),
                _ => continue,
            },
            Err(e) => Ok((None, ro, Some(e))),
        };
    }
    Err(Failure(format!(
        "`{show}` keeps being replaced by other processes; left alone"
    )))
}

/// The output as the ELF reader sees it. `object` reads each section name with its own small
/// read (dozens of `lseek` + `read` pairs for a small program): a file up to `WHOLE` bytes is
/// read in one call instead, a larger one through the descriptor.
enum Source<'a> {
    Mem(std::io::Cursor<Vec<u8>>),
    File(&'a File),
}

/// Bigger than the usual program or library this is read whole for.
const WHOLE: u64 = 1 << 20;

impl<'a> Source<'a> {
    fn of(file: &'a File) -> Source<'a> {
        let whole = file
            .metadata()
            .ok()
            .filter(|m| m.len() <= WHOLE)
            .and_then(|m| {
                let mut buf = vec![0u8; usize::try_from(m.len()).ok()?];
                file.read_exact_at(&mut buf, 0).ok()?;
                Some(buf)
            });
        match whole {
            Some(buf) => Source::Mem(std::io::Cursor::new(buf)),
            None => Source::File(file),
        }
    }
}

impl std::io::Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Source::Mem(c) => c.read(buf),
            Source::File(f) => f.read(buf),
        }
    }
}

impl std::io::Seek for Source<'_> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        match self {
            Source::Mem(c) => c.seek(to),
            Source::File(f) => f.seek(to),
        }
    }
}

/// Why the fallback did not complete.
enum AppendFail {
    /// Refused before anything was written (malformed input, no room, too large).
    Refused(Failure),
    /// Failed while writing.
    Io(Failure),
}

/// The fallback: rewrite the file with the note in a new segment, via a temporary file in the
/// same directory and a rename (never a torn output). The bytes come from `file`, the descriptor
/// the output was read through, and the rename happens only if the name still refers to that
/// file. A symlink is followed (the file it names is noted, the link stays); owner, group,
/// extended attributes and mode are kept (`replace::keep_metadata`). With `keep_links` (patch
/// mode) a file with several hard links is rewritten in place instead, so that every name sees
/// the noted file, as with patchelf (`replace::rewrite_in_place`: never shortened, not atomic).
/// Everything is checked before the first byte is written: a refusal leaves the file as it was.
fn append_file(
    path: &Path,
    file: &File,
    info: &ElfInfo,
    note: &[u8],
    keep_links: bool,
) -> Result<(), AppendFail> {
    use std::os::unix::fs::MetadataExt;
    let show = path.display();
    let refuse = |m: String| AppendFail::Refused(Failure(m));
    let io = |m: String| AppendFail::Io(Failure(m));
    let real = std::fs::canonicalize(path).map_err(|e| refuse(format!("`{show}`: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| refuse(format!("`{show}`: {e}")))?;
    let len = meta.len();
    // An unusable reservation or a stale note: made inert and its section name hidden in the
    // bytes the fallback reads (only those writes that lie inside the file).
    let mut base = embed::neutralize(info);
    base.retain(|w| {
        w.offset
            .checked_add(w.bytes.len() as u64)
            .is_some_and(|e| e <= len)
    });
    // Only the headers and the tables the plan touches are read, through a cache that lives
    // as long as the planning: memory does not grow with the file.
    let mut new = {
        let cache = ReadCache::new(View::patched(file, len, &base));
        embed::append::plan_append(&cache, note)
    }
    .map_err(|e| refuse(format!("`{show}`: cannot add the note: {e}")))?;
    new.lay_under(base);
    // The loader must find the note in the planned file: checked before the first byte is
    // written (a refusal leaves nothing behind), and again on the copy as written.
    embed::append::verify(&ReadCache::new(View::rewritten(file, &new)), note)
        .map_err(|e| refuse(format!("`{show}`: cannot add the note: {e}")))?;
    super::replace::within_file_size_limit(new.len())
        .map_err(|e| refuse(format!("`{show}`: {e}; left unchanged")))?;
    let same_file = |m: &std::fs::Metadata| m.dev() == meta.dev() && m.ino() == meta.ino();
    let replaced = || {
        io(format!(
            "`{show}` was replaced by another process while it was being noted; left alone"
        ))
    };
    if keep_links && meta.nlink() > 1 {
        super::replace::rewrite_in_place(file, len, &new).map_err(|e| {
            refuse(format!(
                "`{show}`: cannot rewrite the file: {e}; left unchanged"
            ))
        })?;
        return Ok(());
    }
    let dir = real.parent().unwrap_or(Path::new("/"));
    let name = real.file_name().unwrap_or_default();
    remove_stale_temps(dir, name);
    let tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(name, std::process::id()))
        .tempfile_in(dir)
        .map_err(|e| {
            refuse(format!(
                "`{show}`: cannot create a temporary file beside it: {e}"
            ))
        })?;
    super::stream::write_rewrite(file, tmp.as_file(), &new)
        .map_err(|e| refuse(format!("`{show}`: cannot write the noted copy: {e}")))?;
    // The copy as written, read back from the disk (a short or failed write shows here).
    embed::append::verify(&ReadCache::new(tmp.as_file()), note)
        .map_err(|e| refuse(format!("`{show}`: cannot add the note: {e}")))?;
    let warnings = super::replace::keep_metadata(&meta, file, tmp.as_file())
        .map_err(|e| refuse(format!("`{show}`: {e}; left unchanged")))?;
    // Closed before the rename: a descriptor open for writing on the new file would make a
    // concurrent run take it for a linker still writing it.
    let tmp = tmp.into_temp_path();
    // The name must still be the file that was read (a small window remains between this check
    // and the rename; closing it needs renameat2(RENAME_EXCHANGE)).
    match std::fs::metadata(&real) {
        Ok(m) if same_file(&m) => {}
        _ => return Err(replaced()),
    }
    tmp.persist(&real)
        .map_err(|e| io(format!("`{show}`: cannot replace the file: {}", e.error)))?;
    for w in warnings {
        errln!("ldnote: warning: `{show}`: {w}");
    }
    Ok(())
}

/// Temporary files are `.NAME.ldnote-PID-XXXXXX` beside the output: hidden, never matching
/// `NAME` or a library glob, and attributable to the process that made it.
fn temp_prefix(name: &OsStr, pid: u32) -> std::ffi::OsString {
    let mut p = std::ffi::OsString::from(".");
    p.push(name);
    p.push(format!(".ldnote-{pid}-"));
    p
}

/// A `kill -9` between creating the temporary file and the rename leaves it behind: remove the
/// ones of `name` whose process is gone (checked through /proc; where there is no /proc nothing
/// is removed). Failures are ignored: this is housekeeping.
fn remove_stale_temps(dir: &Path, name: &OsStr) {
    use std::os::unix::ffi::OsStrExt;
    if !Path::new("/proc/self").exists() {
        return;
    }
    let mut head = std::ffi::OsString::from(".");
    head.push(name);
    head.push(".ldnote-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.as_bytes().strip_prefix(head.as_bytes()) else {
            continue;
        };
        let pid = rest.split(|b| *b == b'-').next().unwrap_or_default();
        let Some(pid) = std::str::from_utf8(pid)
            .ok()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        if !alive && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

pub fn describe(e: &ldnote::resolve::Event) -> String {
    use ldnote::resolve::Event;
    match e {
        Event::Hint { dir, why } => format!("run-path component `{dir}` -> `?` hint: {why}"),
        Event::Found { soname, path } => format!("{soname} -> ={path}"),
        Event::Skipped { path, why } => format!("skipping {path}: {why} (the loader skips it too)"),
        Event::Fatal { path, why } => format!(
            "{path}: the loader would fail on it ({why}); recorded as a `?` hint of its directory"
        ),
        Event::Direct { name } => {
            format!("{name} contains `/`: opened directly by the loader, not recorded")
        }
        Event::Unopenable { path, why } => format!("{path}: cannot be opened ({why})"),
        Event::Dropped { soname, entry, why } => format!("{soname}: `{entry}` left out: {why}"),
    }
}

pub use ldnote::bytes::lossy;
