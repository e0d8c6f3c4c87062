# shellcheck shell=bash
# ldnote's fixup hook (nix/adapter.nix; design and reasons in docs/nix.md).
#
# Links write the note's place (the reservation) but no live note: LDNOTE_DEFER=1, exported
# here, keeps it inert and hidden, so patchelf edits in postInstall see no note (a link-time note
# would be stale anyway: `$out/lib` is empty at link time). When the fixup starts (preFixup, so
# every setup hook has been sourced, in whatever order), the hook decides:
#   - `patchELF` (patchelf's setup hook, fixupOutputHooks) becomes `ldnote patch --shrink-rpath`
#     on that output only: the run path is shrunk exactly as `patchelf --shrink-rpath` does and
#     the note for the final run path is written into the reservation, in place;
#   - when patchelf will edit the files after that (autoPatchelfHook unless dontAutoPatchelf,
#     `patchelf` in postFixup or a postFixup hook, or `ldnoteDeferNotes=1`), the shrink keeps
#     notes deferred and one pass at the very end of postFixup notes every output;
#   - the stock generate-ld-cache hook's `generateLDCache`, whichever hook list registered it,
#     is postponed to that same final pass and only runs patchelf on files ldnote left without
#     a note (prebuilt binaries, links that bypassed the wrapper): never a second writer of a
#     note ldnote wrote, and the same result whichever setup hook was sourced first;
#   - the stock opt-outs write what the stock hooks would: `dontPatchELF` (no shrink) and
#     `dontGenerateLDCache` (no note) leave every reservation inert; `patchelfFlags` are passed
#     to every patchelf call the hook makes (ldnote's own writes are in place, except the
#     deferred notes after strip).
# Files are passed to ldnote in batches that fit the argument limit (xargs); a batch that could
# not run to its end fails the build, since its files would be left unshrunk.

export LDNOTE_IMMUTABLE="${LDNOTE_IMMUTABLE:-${NIX_STORE:-/nix/store}}"
if [ -n "@glibcVersion@" ]; then export LDNOTE_GLIBC="${LDNOTE_GLIBC:-@glibcVersion@}"; fi

if ! "@ldnote@" patch --help 2>/dev/null | grep -q -- '--defer'; then
    # Without the shrink mode, link-time notes could not survive the stock fixup: make every
    # link a pure pass-through and keep the stock fixup.
    echo "ldnote: @ldnote@ has no 'patch --defer'; ldnote disabled for this build" >&2
    export LDNOTE_DISABLE=1
else
    # The note of every link in this build is deferred to the fixup.
    export LDNOTE_DEFER=1

    # ELF files of an output as patchelf's and the generate-ld-cache hooks select them,
    # NUL-separated on stdout.
    _ldnoteElfFiles() {
        local i
        while IFS= read -r -d $'\0' i; do
            if [[ "$i" =~ .build-id ]]; then continue; fi
            if ! isELF "$i"; then continue; fi
            printf '%s\0' "$i"
        done < <(find "$1" -type f -print0)
    }

    # `ldnote ARGS... FILES...` for the NUL-separated FILES on stdin, in as many processes as
    # the argument limit needs. ldnote goes on past a file it cannot handle (that file keeps
    # its run path, as with `patchelf --shrink-rpath || true`) and exits 1 after the rest: xargs
    # reports that as 123, a warning. Any other failure (ldnote killed, not runnable) leaves
    # files unprocessed: fail the build rather than ship them unshrunk.
    _ldnoteBatch() {
        local status=0
        xargs -0 -r "@ldnote@" "$@" || status=$?
        case $status in
        0) ;;
        123) echo "ldnote: warning: 'ldnote $*' failed on some files (named above); they keep their run path" >&2 ;;
        *)
            echo "ldnote: error: 'ldnote $*' stopped (xargs status $status); files may be left unprocessed" >&2
            return 1
            ;;
        esac
    }

    # Replaces patchelf's `patchELF` (called per output from fixupOutputHooks unless
    # dontPatchELF): shrink and, unless notes wait for the end, note this output's files.
    ldnoteShrink() {
        local dir="$1"
        [ -e "$dir" ] || return 0
        local -a defer=()
        if [ -n "${_ldnoteNotesLater-}" ] || [ -n "${_ldnoteNoNotes-}" ]; then defer=(--defer); fi
        header "ldnote: shrinking run paths of ELF files in $dir"
        _ldnoteElfFiles "$dir" | _ldnoteBatch patch --shrink-rpath "${defer[@]}"
        stopNest
    }

    # Whether ldnote wrote a live note into FILE.
    _ldnoteNoted() {
        local json
        json=$("@ldnote@" show --json "$1" 2>/dev/null) || return 1
        [[ "$json" == *'"status": "noted"'* ]]
    }

    # The end of postFixup, once, after every output's fixup: deferred notes, then the stock
    # generate-ld-cache pass on what ldnote left without a note.
    _ldnoteFinish() {
        local output dir i
        local -a pflags=()
        if [[ "$(declare -p patchelfFlags 2>/dev/null)" == "declare -a"* ]]; then
            pflags=("${patchelfFlags[@]}")
        else
            read -r -a pflags <<<"${patchelfFlags-}"
        fi
        for output in ${outputs:-out}; do
            dir="${!output-}"
            [ -n "$dir" ] && [ -e "$dir" ] || continue
            if [ -n "${_ldnoteNotesLater-}" ] && [ -z "${_ldnoteNoNotes-}" ]; then
                header "ldnote: noting ELF files in $dir"
                # After strip the hidden reservation has lost its section name: these notes
                # are appended (a relayout).
                _ldnoteElfFiles "$dir" | LDNOTE_DEFER=0 _ldnoteBatch patch
                stopNest
            fi
            if [ -n "${_ldnoteLdCacheHook-}" ] && [ -z "${_ldnoteNoNotes-}" ]; then
                while IFS= read -r -d $'\0' i; do
                    _ldnoteNoted "$i" && continue
                    patchelf "${pflags[@]}" --build-resolution-cache "$i" || true
                done < <(_ldnoteElfFiles "$dir")
            fi
        done
    }

    # Will patchelf edit the outputs after the fixup's shrink?
    _ldnoteLaterPatchelf() {
        [ -n "${ldnoteDeferNotes-}" ] && return 0
        if declare -F autoPatchelf >/dev/null && [ -z "${dontAutoPatchelf-}" ]; then return 0; fi
        [[ "${postFixup-} ${postFixupHooks[*]-}" == *atchelf* ]]
    }

    _ldnoteTakeOverFixup() {
        patchELF() { ldnoteShrink "$@"; }
        # The stock hook writes no note under either opt-out.
        if [ -n "${dontPatchELF-}" ] || [ -n "${dontGenerateLDCache-}" ]; then
            _ldnoteNoNotes=1
        elif _ldnoteLaterPatchelf; then
            _ldnoteNotesLater=1
        else
            # The shrink writes the notes.
            export LDNOTE_DEFER=0
        fi
        if declare -F generateLDCache >/dev/null; then
            _ldnoteLdCacheHook=1
            generateLDCache() { :; }
        fi
        postFixupHooks+=(_ldnoteFinish)
    }
    preFixupHooks+=(_ldnoteTakeOverFixup)
fi
