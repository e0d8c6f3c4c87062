# shellcheck shell=bash
# ldnote's fixup hook (nix/adapter.nix; design and reasons in docs/nix.md).
#
# At link time ldnote already wrote a note, but against the unfinished output: `$out/lib` was
# empty, and the run path still holds every directory the wrapper added. nixpkgs' fixup then
# runs `patchelf --shrink-rpath`, which deletes a note whenever the run path changes (and
# leaves a hole in the shared PT_NOTE that later patchelf relayouts refuse), or keeps a stale
# one that the generate-ld-cache hook refuses ("already present"). So this hook takes over the
# shrink: `ldnote patch --shrink-rpath` shrinks exactly as patchelf does (same bytes) and
# rewrites the note for the final run path, in place, in one process per output. Strip keeps
# the note; the generate-ld-cache hook, when present, finds it up to date.

export LDNOTE_IMMUTABLE="${LDNOTE_IMMUTABLE:-${NIX_STORE:-/nix/store}}"
if [ -n "@glibcVersion@" ]; then export LDNOTE_GLIBC="${LDNOTE_GLIBC:-@glibcVersion@}"; fi

if ! "@ldnote@" patch --help 2>/dev/null | grep -q -- '--shrink-rpath'; then
    # Without the shrink mode, link-time notes could not survive the stock fixup: make every
    # link a pure pass-through and keep the stock fixup.
    echo "ldnote: @ldnote@ has no 'patch --shrink-rpath'; ldnote disabled for this build" >&2
    export LDNOTE_DISABLE=1
else
    # ELF files of an output as patchelf's and the generate-ld-cache hooks select them.
    _ldnoteElfFiles() {
        local i
        while IFS= read -r -d $'\0' i; do
            if [[ "$i" =~ .build-id ]]; then continue; fi
            if ! isELF "$i"; then continue; fi
            printf '%s\0' "$i"
        done < <(find "$1" -type f -print0)
    }

    # Replaces patchelf's `patchELF` (called from fixupOutputHooks unless dontPatchELF).
    ldnoteShrinkAndNote() {
        local dir="$1"
        [ -e "$dir" ] || return 0
        local -a files
        mapfile -d '' files < <(_ldnoteElfFiles "$dir")
        [ ${#files[@]} -gt 0 ] || return 0
        header "ldnote: shrinking run paths and noting ${#files[@]} ELF files in $dir"
        # Like `patchelf --shrink-rpath "$i" || true`: a file ldnote cannot handle keeps its
        # run path, and its note is left to the generate-ld-cache hook.
        "@ldnote@" patch --shrink-rpath "${files[@]}" || true
        stopNest
    }

    # dontPatchELF: no shrink, but the link-time notes are stale all the same.
    ldnoteNoteOnly() {
        local dir="$1"
        [ -e "$dir" ] || return 0
        local -a files
        mapfile -d '' files < <(_ldnoteElfFiles "$dir")
        [ ${#files[@]} -gt 0 ] || return 0
        "@ldnote@" patch "${files[@]}" || true
    }

    # Sourced before or after patchelf's own setup hook: redefine patchELF when the fixup
    # starts, when every hook has been sourced.
    _ldnoteTakeOverFixup() {
        patchELF() { ldnoteShrinkAndNote "$@"; }
    }
    preFixupHooks+=(_ldnoteTakeOverFixup)
    fixupOutputHooks+=('if [ -n "${dontPatchELF-}" ]; then ldnoteNoteOnly "$prefix"; fi')
fi
