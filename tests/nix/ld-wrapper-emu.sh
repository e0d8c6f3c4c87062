#!/usr/bin/env bash
# A reduced copy of what nixpkgs' ld-wrapper (bintools-wrapper/ld-wrapper.sh, classic layout)
# does to a link line, for tests/nix_fixup.rs, which has no Nix:
#   - append $NIX_LDFLAGS (stdenv puts `-rpath $out/lib` first, then `-L<dep>/lib` per dep),
#   - for each -L directory under $NIX_STORE, in order, holding `lib<x>.so` for some `-l<x>`
#     of the link, append `-rpath <dir>` once,
#   - run the "real" linker $NIX_EMU_LD, which is the ldnote `ld` (the stdenv adapter's
#     position: below the wrapper, seeing the final argv) or the plain linker.
# Not reproduced: purity filtering, hardening flags, dynamic-linker, build-id, response files.
set -eu
params=("$@")
# shellcheck disable=SC2206 # NIX_LDFLAGS is a word list, as in ld-wrapper
extraAfter=(${NIX_LDFLAGS-})
all=("${params[@]}" "${extraAfter[@]}")
libDirs=()
libs=()
n=${#all[@]}
for ((i = 0; i < n; i++)); do
    a=${all[i]}
    case "$a" in
    -L) i=$((i + 1)); libDirs+=("${all[i]}") ;;
    -L?*) libDirs+=("${a#-L}") ;;
    -l) i=$((i + 1)); libs+=("lib${all[i]}.so") ;;
    -l:*) ;;
    -l?*) libs+=("lib${a#-l}.so") ;;
    esac
done
seen=" "
for dir in ${libDirs[@]+"${libDirs[@]}"}; do
    case "$dir" in "$NIX_STORE"/*) ;; *) continue ;; esac
    case "$seen" in *" $dir "*) continue ;; esac
    for lib in ${libs[@]+"${libs[@]}"}; do
        if [ -f "$dir/$lib" ]; then
            extraAfter+=(-rpath "$dir")
            seen="$seen$dir "
            break
        fi
    done
done
exec "$NIX_EMU_LD" "${params[@]}" ${extraAfter[@]+"${extraAfter[@]}"}
