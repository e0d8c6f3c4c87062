# shellcheck shell=bash
# ldnote's fixup hook (nix/adapter.nix; design and reasons in docs/nix.md).
#
# Links write the note's place (the reservation) but no live note: LDNOTE_DEFER=1, exported
# here, keeps it inert and hidden, so patchelf edits in postInstall see no note (a link-time note
# would be stale anyway: `$out/lib` is empty at link time). Then:
#   1. `patchELF` (fixupOutputHooks) becomes `ldnote patch --shrink-rpath`: the run path is
#      shrunk exactly as `patchelf --shrink-rpath` does (same bytes) and the note for the final
#      run path is written into the reservation, in place, one process per output. Strip keeps
#      it; the generate-ld-cache hook finds it up to date.
#   2. When patchelf will edit the files after that (autoPatchelfHook, `patchelf` in postFixup,
#      or `ldnoteDeferNotes=1`), a live note would make its relayout fail ("cannot normalize
#      PT_NOTE segment"): the shrink keeps the note deferred (`--defer`) and a postFixupHooks
#      entry registered when the fixup starts (after autoPatchelfHook's) writes the notes last.
#      After strip the hidden reservation has lost its full section name, so those notes are
#      appended (patchelf's cost, one process per output), never a second note.

export LDNOTE_IMMUTABLE="${LDNOTE_IMMUTABLE:-${NIX_STORE:-/nix/store}}"
if [ -n "@glibcVersion@" ]; then export LDNOTE_GLIBC="${LDNOTE_GLIBC:-@glibcVersion@}"; fi

if ! "@ldnote@" patch --help 2>/dev/null | grep -q -- '--defer'; then
    # Without the shrink mode, link-time notes could not survive the stock fixup: make every
    # link a pure pass-through and keep the stock fixup.
    echo "ldnote: @ldnote@ has no 'patch --defer'; ldnote disabled for this build" >&2
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

    # The note of every link in this build is deferred to the end of the fixup.
    export LDNOTE_DEFER=1

    # Replaces patchelf's `patchELF` (called from fixupOutputHooks unless dontPatchELF).
    ldnoteShrink() {
        local dir="$1"
        [ -e "$dir" ] || return 0
        local -a files
        mapfile -d '' files < <(_ldnoteElfFiles "$dir")
        [ ${#files[@]} -gt 0 ] || return 0
        local -a defer=()
        if [ -n "${_ldnoteDefer-}" ]; then defer=(--defer); fi
        header "ldnote: shrinking run paths of ${#files[@]} ELF files in $dir"
        # Like `patchelf --shrink-rpath "$i" || true`: a file ldnote cannot handle keeps its
        # run path, and its note is left to the generate-ld-cache hook.
        "@ldnote@" patch --shrink-rpath "${defer[@]}" "${files[@]}" || true
        stopNest
    }

    # The end of the fixup (deferred mode): notes for the finished files of every output.
    ldnoteFill() {
        local output dir
        local -a files
        for output in ${outputs:-out}; do
            dir="${!output-}"
            [ -n "$dir" ] && [ -e "$dir" ] || continue
            mapfile -d '' files < <(_ldnoteElfFiles "$dir")
            [ ${#files[@]} -gt 0 ] || continue
            header "ldnote: noting ${#files[@]} ELF files in $dir"
            LDNOTE_DEFER=0 "@ldnote@" patch "${files[@]}" || true
            stopNest
        done
    }

    # Will patchelf edit the outputs after the fixup's shrink?
    _ldnoteLaterPatchelf() {
        [ -n "${ldnoteDeferNotes-}" ] && return 0
        declare -F autoPatchelf >/dev/null && return 0
        [[ "${postFixup-} ${postFixupHooks[*]-}" == *atchelf* ]]
    }

    # Sourced before or after patchelf's own setup hook: decide when the fixup starts, when
    # every hook has been sourced; the fill goes after every postFixup hook registered at
    # source time (autoPatchelfHook's among them).
    _ldnoteTakeOverFixup() {
        patchELF() { ldnoteShrink "$@"; }
        if _ldnoteLaterPatchelf; then
            _ldnoteDefer=1
            postFixupHooks+=(ldnoteFill)
        else
            # Notes are written by the shrink, with or without dontPatchELF.
            export LDNOTE_DEFER=0
            fixupOutputHooks+=('if [ -n "${dontPatchELF-}" ]; then ldnoteFill; fi')
        fi
    }
    preFixupHooks+=(_ldnoteTakeOverFixup)
fi
