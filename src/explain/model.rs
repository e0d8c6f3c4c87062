//! Types of a simulated run: the objects loaded, each DT_NEEDED search, and the system calls.

use crate::bytes::lossy;
use crate::note::Entry;

/// Where a search step looked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// DT_RPATH of an object in the loader chain (or of the executable).
    Rpath,
    /// LD_LIBRARY_PATH.
    LdLibraryPath,
    /// An `=` entry of the requesting object's note.
    NoteExact,
    /// A `?` entry of the requesting object's note (a normal search of that directory).
    NoteHint,
    /// DT_RUNPATH of the requesting object.
    Runpath,
    /// Reading `/etc/ld.so.cache` itself (once per process).
    CacheFile,
    /// The path chosen from `/etc/ld.so.cache`.
    Cache,
    /// The system (default) directories.
    Default,
    /// A DT_NEEDED name containing `/`, opened as is.
    Direct,
    /// `fstat` of a successfully opened object (`_dl_map_object_from_fd`).
    Map,
}

impl Stage {
    /// Human label used in the tree.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Rpath => "RPATH",
            Stage::LdLibraryPath => "LD_LIBRARY_PATH",
            Stage::NoteExact => "note =",
            Stage::NoteHint => "note ?",
            Stage::Runpath => "RUNPATH",
            Stage::CacheFile => "ld.so.cache file",
            Stage::Cache => "ld.so.cache",
            Stage::Default => "default dir",
            Stage::Direct => "direct path",
            Stage::Map => "map",
        }
    }
}

/// A system call the loader makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// `openat(AT_FDCWD, path, O_RDONLY|O_CLOEXEC)`.
    Openat,
    /// `newfstatat(AT_FDCWD, dir, .., 0)` of a search directory (statx on armhf/i386).
    Stat,
    /// `newfstatat(fd, "", .., AT_EMPTY_PATH)` of an opened file.
    Fstat,
}

/// One step: a system call, and/or an LD_DEBUG `trying file=` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The system call, if any (`None`: only a `trying file=` line, e.g. a cache hit
    /// rejected by DF_1_NODEFLIB before it is opened).
    pub call: Option<Call>,
    /// Path argument (empty for `Fstat`).
    pub path: Vec<u8>,
    /// errno when it fails.
    pub errno: Option<i32>,
    /// Whether LD_DEBUG=libs prints `  trying file=PATH` for it.
    pub trying: bool,
    /// Which search step.
    pub stage: Stage,
}

/// Syscall counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Successful `openat`.
    pub openat_ok: u64,
    /// Failed `openat`.
    pub openat_fail: u64,
    /// Successful `newfstatat` (directory stats and fstat of opened files).
    pub stat_ok: u64,
    /// Failed `newfstatat`.
    pub stat_fail: u64,
}

impl Counts {
    /// Count `events`.
    pub fn of(events: &[Event]) -> Self {
        let mut c = Counts::default();
        for e in events {
            match (e.call, e.errno.is_none()) {
                (Some(Call::Openat), true) => c.openat_ok += 1,
                (Some(Call::Openat), false) => c.openat_fail += 1,
                (Some(_), true) => c.stat_ok += 1,
                (Some(_), false) => c.stat_fail += 1,
                (None, _) => {}
            }
        }
        c
    }

    /// Sum.
    pub fn add(&mut self, o: &Counts) {
        self.openat_ok += o.openat_ok;
        self.openat_fail += o.openat_fail;
        self.stat_ok += o.stat_ok;
        self.stat_fail += o.stat_fail;
    }
}

/// A note as the loader reads it: (soname, elements) pairs in descriptor order.
pub type NotePairs = Vec<(Vec<u8>, Vec<Entry>)>;

/// The requesting object's note as the note-aware loader sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NoteState {
    /// No live note.
    #[default]
    None,
    /// A usable note: (soname, elements) pairs in descriptor order; the loader uses the first
    /// pair whose soname matches. Elements the loader ignores are already left out.
    Ok(NotePairs),
    /// A note the loader distrusts (and so ignores), with why.
    Bad(String),
    /// No note in the file; this is the note ldnote would write (`explain --plan`).
    Planned(NotePairs),
}

/// Which note-aware loader is simulated; they differ in small points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteDialect {
    /// This project's glibc 2.36 patch (loader/): an empty `?` element is the CWD, a relative
    /// `=` element is ignored, and only objects with DT_RUNPATH have their note read.
    #[default]
    Ldnote,
    /// nixpkgs' ldcache.patch: `decompose_rpath("")` drops an empty `?` element, and `=`
    /// paths are opened as given.
    Nixpkgs,
    /// The stock loader with the rtld-audit module (audit/): the note answers before the
    /// search, for DT_RUNPATH requesters without LD_LIBRARY_PATH, `=` entries only.
    Audit,
}

/// Kind of a loaded object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapKind {
    /// The executable.
    Main,
    /// The dynamic loader (pre-registered, never searched for).
    Rtld,
    /// A library loaded by the search.
    Lib,
}

/// One loaded object (`struct link_map`).
#[derive(Clone, Debug)]
pub struct Map {
    /// `l_name`: the path it was found under.
    pub name: Vec<u8>,
    /// Names it answers to besides `l_name` (requested names, DT_SONAME once matched).
    pub names: Vec<Vec<u8>>,
    /// DT_SONAME.
    pub soname: Option<Vec<u8>>,
    /// `l_loader`: the object whose DT_NEEDED caused the load.
    pub loader: Option<usize>,
    /// Kind.
    pub kind: MapKind,
    /// `$ORIGIN` (None when unknown).
    pub origin: Option<Vec<u8>>,
    /// DT_NEEDED.
    pub needed: Vec<Vec<u8>>,
    /// DT_RPATH (dropped when DT_RUNPATH is present, as get-dynamic-info.h does).
    pub rpath: Option<Vec<u8>>,
    /// DT_RUNPATH.
    pub runpath: Option<Vec<u8>>,
    /// DF_1_NODEFLIB.
    pub nodeflib: bool,
    /// The note.
    pub note: NoteState,
    /// File identity (stand-in for st_dev/st_ino).
    pub id: Vec<u8>,
}

/// How a search ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Newly loaded object `map`, found at `stage` (in the list of object `owner`, if any).
    Loaded {
        /// Index into [`Run::maps`].
        map: usize,
        /// Step that found it.
        stage: Stage,
        /// Object whose RPATH/RUNPATH/note found it.
        owner: Option<usize>,
    },
    /// Already loaded under this name or soname: no search at all.
    AlreadyLoaded {
        /// Index into [`Run::maps`].
        map: usize,
    },
    /// Found on disk, but the same file is already loaded (st_dev/st_ino match).
    SameFile {
        /// Index into [`Run::maps`].
        map: usize,
        /// Step that found it.
        stage: Stage,
        /// Object whose list found it.
        owner: Option<usize>,
    },
    /// Loading stops with this error.
    Failed(String),
}

/// One DT_NEEDED request.
#[derive(Clone, Debug)]
pub struct Search {
    /// Requesting object.
    pub requester: usize,
    /// Name searched (after DST expansion).
    pub name: Vec<u8>,
    /// Result.
    pub outcome: Outcome,
    /// Range of [`Run::trace`] this search produced.
    pub events: std::ops::Range<usize>,
}

/// A whole simulated process start.
#[derive(Clone, Debug, Default)]
pub struct Run {
    /// Loaded objects in load order (0 = executable, 1 = the loader).
    pub maps: Vec<Map>,
    /// Every DT_NEEDED request in breadth-first order.
    pub searches: Vec<Search>,
    /// Every system call / LD_DEBUG trying line, in order.
    pub trace: Vec<Event>,
    /// The error that stops loading, if any.
    pub error: Option<String>,
}

impl Run {
    /// Totals over the whole trace.
    pub fn counts(&self) -> Counts {
        Counts::of(&self.trace)
    }

    /// Counts of one search.
    pub fn search_counts(&self, s: &Search) -> Counts {
        Counts::of(&self.trace[s.events.clone()])
    }

    /// Paths of every `trying file=` line, in order.
    pub fn trying(&self) -> Vec<Vec<u8>> {
        self.trace
            .iter()
            .filter(|e| e.trying)
            .map(|e| e.path.clone())
            .collect()
    }
}

impl Run {
    /// A map's name for people: the executable has an empty `l_name`.
    pub fn display_name(&self, i: usize) -> String {
        match self.maps.get(i) {
            Some(m) if m.kind == MapKind::Main => "the executable".into(),
            Some(m) => lossy(&m.name),
            None => String::new(),
        }
    }

    /// Why a search ended where it did: "RUNPATH of X", "ld.so.cache", "already loaded", ...
    pub fn why(&self, o: &Outcome) -> String {
        let via = |stage: &Stage, own: &Option<usize>| match (stage, own) {
            (Stage::Rpath | Stage::Runpath | Stage::NoteExact | Stage::NoteHint, Some(i)) => {
                format!("{} of {}", stage.label(), self.display_name(*i))
            }
            (s, _) => s.label().to_string(),
        };
        match o {
            Outcome::Loaded { stage, owner, .. } => via(stage, owner),
            Outcome::AlreadyLoaded { .. } => "already loaded".into(),
            Outcome::SameFile { stage, owner, map } => {
                format!(
                    "{}, same file as {}",
                    via(stage, owner),
                    self.display_name(*map)
                )
            }
            Outcome::Failed(e) => e.clone(),
        }
    }
}
