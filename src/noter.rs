//! The per-file step of `link`, `patch`, `check` and `explain --plan`: read the linked file,
//! resolve its DT_NEEDED through its run path, encode the note, and say what the file holds
//! now. Pure over the file's bytes (the sysroot is read through [`crate::fs::Fs`]); the driver
//! does the writing ([`crate::embed::apply`], the append fallback) and prints the [`Event`]s.

use crate::elf::{self, ElfError, ElfInfo, NoteSegment};
use crate::embed::{self, Edit};
use crate::fs::Fs;
use crate::note::{self, Layout};
use crate::resolve::{self, Policy, Resolution, Resolver};
use crate::target::{self, Acceptance, Target};
use object::ReadRef;

/// The user's choices that shape a note (command line and environment).
#[derive(Clone, Debug, Default)]
pub struct Choices {
    /// `--target NAME`: the target description to use instead of the one the header names.
    pub target: Option<String>,
    /// `--glibc VERSION`: the target glibc (legacy hwcaps directories count up to 2.36).
    pub glibc: Option<String>,
    /// `--immutable-prefix`: `=` entries only below these.
    pub immutable: Vec<Vec<u8>>,
}

impl Choices {
    /// The target description to use for an object (an explicit `--target` wins).
    pub fn target<'a>(&self, all: &'a [Target], id: &target::Ident) -> Option<&'a Target> {
        match &self.target {
            Some(name) => target::by_name(all, name),
            None => target::for_ident(all, id),
        }
    }

    /// The resolution policy for `target`.
    pub fn policy(&self, target: Option<&Target>) -> Policy {
        let mut legacy = Vec::new();
        if let Some(t) = target {
            let glibc = self.glibc.as_deref().unwrap_or(&t.glibc);
            if target::glibc_has_legacy_hwcaps(glibc) {
                legacy = t
                    .legacy_hwcaps
                    .iter()
                    .map(|s| s.as_bytes().to_vec())
                    .collect();
            }
        }
        Policy {
            legacy_hwcaps: legacy,
            immutable_prefixes: (!self.immutable.is_empty()).then(|| self.immutable.clone()),
        }
    }
}

/// The resolution note the file carries now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Current {
    /// No live resolution note.
    Absent,
    /// A live note with this descriptor.
    Note(Vec<u8>),
    /// A live note the loader cannot read (why).
    Malformed(String),
}

impl Current {
    /// The descriptor, when the note is readable.
    pub fn descriptor(&self) -> Option<&[u8]> {
        match self {
            Current::Note(d) => Some(d),
            _ => None,
        }
    }
}

/// What the step noticed, in order, for the driver to print under `-v`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The target description in use (`None`: unknown target).
    Target(Option<String>),
    /// The object has DT_RPATH and no DT_RUNPATH: the loader searches it before the note.
    RpathNotConsulted,
    /// A resolution decision.
    Resolve(resolve::Event),
}

/// One file's plan: what is there, what should be there.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The file as read.
    pub info: ElfInfo,
    /// The note it carries now.
    pub current: Current,
    /// The descriptor it should carry (`None`: nothing to record).
    pub desired: Option<Vec<u8>>,
    /// That descriptor as a whole note in the file's byte order.
    pub note: Option<Vec<u8>>,
    /// What was noticed on the way.
    pub events: Vec<Event>,
}

impl Plan {
    /// Whether the loader resolves this file's DT_NEEDED at all (a dynamically linked
    /// executable or shared object).
    pub fn is_dynamic(&self) -> bool {
        self.info.dynamic && matches!(self.info.e_type, object::elf::ET_EXEC | object::elf::ET_DYN)
    }

    /// The in-place edit that gives the file its note ([`embed::plan_in_place`]); `defer`
    /// plans as if there were nothing to record (the reservation stays inert and hidden).
    /// `segment_bytes` reads a PT_NOTE segment's current bytes.
    pub fn edit(
        &self,
        defer: bool,
        segment_bytes: &dyn Fn(&NoteSegment) -> Option<Vec<u8>>,
    ) -> Edit {
        let note = if defer { None } else { self.note.as_deref() };
        embed::plan_in_place(&self.info, note, self.current.descriptor(), segment_bytes)
    }
}

/// The step, for one sysroot: directory listings are cached across files.
pub struct Noter<F: Fs> {
    choices: Choices,
    /// `None`: the embedded targets, looked up per file ([`target::builtin_for_ident`]).
    targets: Option<Vec<Target>>,
    resolver: Resolver<F>,
}

impl<F: Fs> Noter<F> {
    /// A noter resolving through `fs` (the sysroot) among `targets`.
    pub fn new(choices: Choices, targets: Vec<Target>, fs: F) -> Self {
        Self::among(choices, Some(targets), fs)
    }

    /// A noter among the embedded targets, parsing only the one each file needs.
    pub fn with_builtin_targets(choices: Choices, fs: F) -> Self {
        Self::among(choices, None, fs)
    }

    fn among(choices: Choices, targets: Option<Vec<Target>>, fs: F) -> Self {
        // The policy depends on the target, known per file; start with an empty one.
        Noter {
            choices,
            targets,
            resolver: Resolver::new(fs, Policy::default()),
        }
    }

    /// The target description for a file with header `id`.
    fn target_for(&self, id: &target::Ident) -> Option<Target> {
        match (&self.targets, &self.choices.target) {
            (Some(all), _) => self.choices.target(all, id).cloned(),
            (None, None) => target::builtin_for_ident(id),
            (None, Some(_)) => self.choices.target(&target::builtin(), id).cloned(),
        }
    }

    /// Whether plans carry the resolver's events (on by default; see
    /// [`Resolver::record_events`]).
    pub fn record_events(&mut self, on: bool) {
        self.resolver.record_events(on);
    }

    /// The resolver, for reading candidates the way resolution does (`--shrink-rpath`).
    pub fn resolver(&self) -> &Resolver<F> {
        &self.resolver
    }

    /// Plan the note of one file: `data` is its bytes, or a `ReadCache` over it.
    pub fn plan<'d, R: ReadRef<'d>>(&mut self, data: R) -> Result<Plan, ElfError> {
        Ok(self.plan_read(elf::read(data)?, data))
    }

    /// [`Noter::plan`] of a file already read: `info` is [`elf::read`] of `data`.
    pub fn plan_read<'d, R: ReadRef<'d>>(&mut self, info: ElfInfo, data: R) -> Plan {
        let target = self.target_for(&info.ident);
        self.resolver
            .set_policy(self.choices.policy(target.as_ref()));
        let acc = Acceptance::new(info.ident, target.as_ref());
        let resolution = match info.search_path() {
            Some(sp) if info.dynamic => self.resolver.resolve(&info.needed, sp, &acc),
            _ => Resolution::default(),
        };
        let mut events = vec![Event::Target(target.map(|t| t.name))];
        if info.runpath.is_none() && info.rpath.is_some() {
            events.push(Event::RpathNotConsulted);
        }
        events.extend(resolution.events.into_iter().map(Event::Resolve));
        let desired = note::encode_descriptor(&resolution.entries);
        let layout = Layout {
            big_endian: info.ident.big_endian,
            is_64: info.ident.is_64,
        };
        let note = desired.as_ref().map(|d| note::encode_note(d, layout));
        let current = match info.live_note() {
            None => Current::Absent,
            Some(n) => {
                let d = elf::note_desc(data, n);
                if n.in_bounds && !d.is_empty() {
                    Current::Note(d.to_vec())
                } else {
                    Current::Malformed(
                        "the note's descriptor lies outside its PT_NOTE segment".into(),
                    )
                }
            }
        };
        Plan {
            info,
            current,
            desired,
            note,
            events,
        }
    }
}
