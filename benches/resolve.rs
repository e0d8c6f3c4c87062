//! Resolver scale: N needed sonames x N run-path directories, Nix-style (each
//! library alone in its own directory), resolve + encode the descriptor and the note.
//!
//! `real`: a fresh `Resolver` over real temporary directories each iteration, so every directory
//! is listed and every candidate's header read (what one `ldnote link` does).
//! `fake`: the same layout in the in-memory `FakeFs` (the resolver's own CPU cost).
//!
//! Run: `cargo bench --bench resolve` (or `bench/run.sh`, which records the result).

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ldnote::fs::{FakeFs, Fs, RealFs};
use ldnote::note::{encode_descriptor, encode_note, Layout};
use ldnote::resolve::{Policy, Resolver};
use ldnote::target::{Acceptance, Ident};

/// A minimal x86_64 ELF header (ET_DYN), enough for the loader's `open_verify` checks.
fn elf_head() -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // ELFCLASS64
    h[5] = 1; // little-endian
    h[6] = 1; // EV_CURRENT
    h[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN
    h[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    h[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    h
}

fn acceptance() -> Acceptance {
    let id = Ident {
        is_64: true,
        big_endian: false,
        machine: 62,
        e_flags: 0,
        osabi: 0,
    };
    let targets = ldnote::target::builtin();
    let t = ldnote::target::for_ident(&targets, &id).cloned();
    Acceptance::new(id, t.as_ref())
}

struct Plan {
    needed: Vec<Vec<u8>>,
    runpath: Vec<u8>,
}

fn layout(root: &str, n: usize) -> Plan {
    let needed = (0..n)
        .map(|i| format!("libp{i:04}.so.1").into_bytes())
        .collect();
    let dirs: Vec<String> = (0..n)
        .map(|i| format!("{root}/{i:04}-pkg{i}-1.0/lib"))
        .collect();
    Plan {
        needed,
        runpath: dirs.join(":").into_bytes(),
    }
}

fn run<F: Fs>(fs: F, l: &Plan, acc: &Acceptance) -> usize {
    let mut r = Resolver::new(fs, Policy::default());
    // As `ldnote link` runs it: no events (they are built only to be shown, under `-v`).
    r.record_events(false);
    let res = r.resolve(&l.needed, &l.runpath, acc);
    let desc = encode_descriptor(&res.entries).expect("entries");
    let note = encode_note(
        &desc,
        Layout {
            big_endian: false,
            is_64: true,
        },
    );
    note.len()
}

fn bench(c: &mut Criterion) {
    let acc = acceptance();
    let head = elf_head();
    let mut g = c.benchmark_group("resolve_encode");
    g.sample_size(20);
    for n in [40usize, 100, 1000] {
        // Real directories.
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_str().expect("utf-8 temp path").to_string();
        let l = layout(&root, n);
        for i in 0..n {
            let d = format!("{root}/{i:04}-pkg{i}-1.0/lib");
            std::fs::create_dir_all(&d).expect("mkdir");
            std::fs::write(Path::new(&d).join(format!("libp{i:04}.so.1")), &head).expect("write");
        }
        let expect = run(RealFs::new("/".as_ref()), &l, &acc);
        assert!(expect > 20 * n, "every soname found");
        g.bench_with_input(BenchmarkId::new("real", format!("{n}x{n}")), &l, |b, l| {
            b.iter(|| black_box(run(RealFs::new("/".as_ref()), l, &acc)))
        });
        // In memory.
        let mut fake = FakeFs::new();
        let fl = layout("/nix/store", n);
        for i in 0..n {
            fake.file(
                &format!("/nix/store/{i:04}-pkg{i}-1.0/lib/libp{i:04}.so.1"),
                &head,
            );
        }
        g.bench_with_input(BenchmarkId::new("fake", format!("{n}x{n}")), &fl, |b, l| {
            b.iter(|| black_box(run(fake.clone(), l, &acc)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
