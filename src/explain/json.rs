//! The stable JSON form of `ldnote explain --json` (documented in docs/explain-json.md).
//! Field names and meanings only ever grow; paths are printed lossily as UTF-8.

use crate::bytes::lossy;
use serde::Serialize;

use super::model::{Call, Counts, MapKind, NoteState, Outcome, Run, Stage};
use super::LoaderFacts;

#[derive(Serialize)]
struct Doc<'a> {
    version: u32,
    file: &'a str,
    loader: &'static str,
    facts: Facts<'a>,
    stock: RunJ,
    note: RunJ,
}

#[derive(Serialize)]
struct Facts<'a> {
    #[serde(flatten)]
    facts: &'a LoaderFacts,
    capstrs: Vec<String>,
}

#[derive(Serialize)]
struct RunJ {
    error: Option<String>,
    totals: Counts,
    objects: Vec<ObjJ>,
    searches: Vec<SearchJ>,
    trying: Vec<String>,
    trace: Vec<EventJ>,
}

#[derive(Serialize)]
struct ObjJ {
    index: usize,
    path: String,
    kind: MapKind,
    soname: Option<String>,
    loader: Option<usize>,
    needed: Vec<String>,
    rpath: Option<String>,
    runpath: Option<String>,
    nodeflib: bool,
    note: &'static str,
    note_error: Option<String>,
    counts: Counts,
}

#[derive(Serialize)]
struct SearchJ {
    requester: usize,
    name: String,
    result: &'static str,
    object: Option<usize>,
    path: Option<String>,
    via: Option<Stage>,
    owner: Option<usize>,
    why: String,
    error: Option<String>,
    counts: Counts,
}

#[derive(Serialize)]
struct EventJ {
    call: Option<Call>,
    path: String,
    errno: Option<i32>,
    trying: bool,
    stage: Stage,
}

fn run_json(run: &Run) -> RunJ {
    let objects = run
        .maps
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut counts = Counts::default();
            for s in run.searches.iter().filter(|s| s.requester == i) {
                counts.add(&run.search_counts(s));
            }
            let (note, note_error) = match &m.note {
                NoteState::None => ("none", None),
                NoteState::Ok(_) => ("noted", None),
                NoteState::Planned(_) => ("planned", None),
                NoteState::Bad(e) => ("ignored", Some(e.clone())),
            };
            ObjJ {
                index: i,
                path: lossy(&m.name),
                kind: m.kind,
                soname: m.soname.as_deref().map(lossy),
                loader: m.loader,
                needed: m.needed.iter().map(|n| lossy(n)).collect(),
                rpath: m.rpath.as_deref().map(lossy),
                runpath: m.runpath.as_deref().map(lossy),
                nodeflib: m.nodeflib,
                note,
                note_error,
                counts,
            }
        })
        .collect();
    let searches = run
        .searches
        .iter()
        .map(|s| {
            let (result, object, via, owner, error) = match &s.outcome {
                Outcome::Loaded { map, stage, owner } => {
                    ("loaded", Some(*map), Some(*stage), *owner, None)
                }
                Outcome::AlreadyLoaded { map } => ("already_loaded", Some(*map), None, None, None),
                Outcome::SameFile { map, stage, owner } => {
                    ("same_file", Some(*map), Some(*stage), *owner, None)
                }
                Outcome::Failed(e) => ("failed", None, None, None, Some(e.clone())),
            };
            SearchJ {
                requester: s.requester,
                name: lossy(&s.name),
                result,
                object,
                path: object.map(|o| lossy(&run.maps[o].name)),
                via,
                owner,
                why: run.why(&s.outcome),
                error,
                counts: run.search_counts(s),
            }
        })
        .collect();
    RunJ {
        error: run.error.clone(),
        totals: run.counts(),
        objects,
        searches,
        trying: run.trying().iter().map(|p| lossy(p)).collect(),
        trace: run
            .trace
            .iter()
            .map(|e| EventJ {
                call: e.call,
                path: lossy(&e.path),
                errno: e.errno,
                trying: e.trying,
                stage: e.stage,
            })
            .collect(),
    }
}

/// The whole document, pretty-printed, with a final newline.
pub fn render(
    file: &str,
    facts: &LoaderFacts,
    note_shown: bool,
    stock: &Run,
    note: &Run,
) -> String {
    let doc = Doc {
        version: 1,
        file,
        loader: if note_shown { "note" } else { "stock" },
        facts: Facts {
            facts,
            capstrs: facts.capstrs().iter().map(|c| lossy(c)).collect(),
        },
        stock: run_json(stock),
        note: run_json(note),
    };
    let mut s =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}
