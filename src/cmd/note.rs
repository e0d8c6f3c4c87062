//! Noting one linked file: the library's step (`ldnote::noter`: read -> resolve -> encode), then
//! the writes (in place, else the append fallback) and the `-v` lines.
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use ldnote::elf;
use ldnote::embed::append::file::{append_file, AppendError};
use ldnote::embed::{self, Edit};
use ldnote::fs::RealFs;
use ldnote::noter::{Event, Plan};
use ldnote::shrink;
use object::{ReadCache, ReadRef};

use super::options::NoteOpts;
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

impl Noter {
    /// The noter of `patch` and `check`: options with the environment folded in and validated,
    /// the sysroot from `--sysroot`, then `LDNOTE_SYSROOT`. Err is the exit status (2), the
    /// error already printed.
    pub fn for_files(opts: NoteOpts) -> Result<Noter, i32> {
        let opts = opts.with_env();
        let made = opts
            .validate()
            .map_err(Failure)
            .and_then(|()| Noter::new(opts.clone(), &opts.file_sysroot()));
        made.map_err(|e| {
            errln!("ldnote: error: {e}");
            2
        })
    }

    pub fn new(opts: NoteOpts, sysroot: &OsStr) -> Result<Self, Failure> {
        let mut core =
            ldnote::noter::Noter::with_builtin_targets(opts.choices(), RealFs::new(sysroot));
        // The events are only printed under `-v`.
        core.record_events(opts.verbose);
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
        let info = ldnote::elf::read(data).map_err(|e| Failure(format!("`{show}`: {e}")))?;
        super::trace::mark("read");
        let plan = self.core.plan_read(info, data);
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
                say!(self.opts, "{show}: {line}");
            }
        }
        Ok(plan)
    }

    /// [`Noter::plan`] of the file `data` holds and the in-place edit that notes it; `None`
    /// when the file is not dynamically linked (nothing to note).
    fn plan_edit<'d, R: ReadRef<'d>>(
        &mut self,
        data: R,
        path: &Path,
    ) -> Result<Option<(Plan, Edit)>, Failure> {
        let plan = self.plan(data, path)?;
        if !plan.is_dynamic() {
            return Ok(None);
        }
        let seg = |s: &elf::NoteSegment| {
            data.read_bytes_at(s.offset, s.filesz)
                .ok()
                .map(<[u8]>::to_vec)
        };
        // Deferred: plan as if there were nothing to record (inert, hidden reservation).
        let edit = plan.edit(self.opts.defer, &seg);
        Ok(Some((plan, edit)))
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
        say!(
            self.opts,
            "{show}: run path `{}` -> `{}`",
            lossy(&old),
            lossy(&new)
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
        let show = path.display();
        // Declared first, dropped last: the lock outlives the descriptor open for writing, so
        // the next run never sees this one's writer in its lease check.
        let (_lock, file, write_err, len) = open_for_noting(path, &show)?;
        let cannot_write = |e: &std::io::Error| {
            Failure(format!(
                "`{show}`: cannot open for writing: {e}; the file is left unchanged"
            ))
        };
        // `object` reads each section name with its own small read (dozens of `lseek` + `read`
        // pairs, and as many buffers, for a small program): a file up to `WHOLE` bytes is read
        // in one call and parsed in place, a larger one through the descriptor.
        let planned = match read_whole(&file, len) {
            Some(bytes) => self.plan_edit(bytes.as_slice(), path)?,
            None => self.plan_edit(&ReadCache::new(&file), path)?,
        };
        let Some((plan, edit)) = planned else {
            say!(self.opts, "{show}: not dynamically linked, nothing to note");
            return Ok(Outcome::NotDynamic);
        };
        let note = if self.opts.defer {
            None
        } else {
            plan.note.as_deref()
        };
        match edit {
            Edit::UpToDate => {
                say!(self.opts, "{show}: note already up to date");
                Ok(Outcome::UpToDate)
            }
            Edit::Nothing => {
                say!(self.opts, "{show}: nothing to record, no note");
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
                say!(self.opts, "{show}: {what} ({count} writes)");
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
                say!(self.opts, "{show}: appending a note segment: {why}");
                let keep_links = self.keep_links;
                match append_file(path, &file, &plan.info, note, keep_links) {
                    Ok(warnings) => {
                        for w in warnings {
                            errln!("ldnote: warning: {w}");
                        }
                    }
                    // Refused before anything was written: the file stays byte for byte.
                    Err(AppendError::Refused(e)) => return Err(Failure(e)),
                    Err(AppendError::Io(e)) => {
                        // Leave no half-used reservation that patchelf would mistake for a note
                        // (only when the file itself was not replaced: written through our fd).
                        embed::apply_best_effort(&file, &embed::neutralize(&plan.info));
                        return Err(Failure(e));
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
/// writing (the second is then the read-only one, holding the lock itself), and the file's size.
type Opened = (Option<File>, File, Option<std::io::Error>, u64);
fn open_for_noting(path: &Path, show: &impl std::fmt::Display) -> Result<Opened, Failure> {
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
        // Whether the name still refers to the file locked: checked on the descriptor opened
        // for writing, or, when it cannot be opened so or another process writes the file
        // locked, by the name's own `stat` (a replaced name is opened again).
        let same = |m: &std::fs::Metadata| m.dev() == meta.dev() && m.ino() == meta.ino();
        let name_kept = || std::fs::metadata(path).is_ok_and(|m| same(&m));
        if ldnote::embed::append::replace::open_for_writing_elsewhere(&ro) == Some(true) {
            if !name_kept() {
                continue;
            }
            return Err(Failure(format!(
                "`{show}` is open for writing by another process (a linker still writing \
                 it?): its bytes are not final; left unchanged"
            )));
        }
        return match OpenOptions::new().read(true).write(true).open(path) {
            Ok(rw) => match rw.metadata() {
                Ok(m) if same(&m) => Ok((Some(ro), rw, None, m.len())),
                _ => continue,
            },
            Err(_) if !name_kept() => continue,
            Err(e) => Ok((None, ro, Some(e), meta.len())),
        };
    }
    Err(Failure(format!(
        "`{show}` keeps being replaced by other processes; left alone"
    )))
}

/// Bigger than the usual program or library this is read whole for.
const WHOLE: u64 = 1 << 20;

/// The whole of `file`, `len` bytes, when that is at most [`WHOLE`] bytes (one read), else `None`.
fn read_whole(file: &File, len: u64) -> Option<Vec<u8>> {
    if len > WHOLE {
        return None;
    }
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    file.read_exact_at(&mut buf, 0).ok()?;
    Some(buf)
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
