#!/usr/bin/env bash
# Run every fuzz target for a bounded time (default 60 s each, FUZZ_SECONDS to change), one job,
# starting from the committed corpora in fuzz/corpus/<target>. Only stable rustc exists here, so
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the nightly flags it needs. Exit status: non-zero when a
# target crashes (the reproducer is left in fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")"
secs="${FUZZ_SECONDS:-60}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi
export RUSTC_BOOTSTRAP=1
# ldnote forbids unsafe code; AddressSanitizer would only slow the search for panics and
# overflows (debug assertions, including overflow checks, are on in fuzz builds).
flags=(--sanitizer none --debug-assertions)
targets=(elf_embed note_decode rsp_tokenize audit_parse)
cargo fuzz build "${flags[@]}"
status=0
for t in "${targets[@]}"; do
    echo "== fuzz $t for ${secs}s"
    # The run's new inputs go to a scratch directory: the committed corpus stays small.
    scratch="$(mktemp -d)"
    # The minimized corpus of the long runs, too large to keep unpacked (fuzz/corpus-archive).
    if [ -f "corpus-archive/$t.tar.xz" ]; then
        tar -C "$scratch" -xJf "corpus-archive/$t.tar.xz"
    fi
    log="$scratch.log"
    if ! cargo fuzz run "${flags[@]}" "$t" "$scratch" "corpus/$t" -- \
        -max_total_time="$secs" -print_final_stats=1 >"$log" 2>&1; then
        status=1
        grep -E -A20 'panicked|ERROR|SUMMARY' "$log" | head -n 60 >&2 || tail -n 40 "$log" >&2
        echo "fuzz/ci.sh: $t crashed; the reproducer is in fuzz/artifacts/$t" >&2
    fi
    grep -E '^(Done|stat::number_of_executed_units)' "$log" || true
    rm -rf "$scratch" "$log"
done
exit "$status"
