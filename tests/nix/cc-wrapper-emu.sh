#!/usr/bin/env bash
# cc-wrapper-emu.sh ARGS...: what nixpkgs' cc-wrapper (cc-wrapper/cc-wrapper.sh) adds to
# a compiler driver's argv when the driver will link, for tests/nix_fixup.rs (written from
# reading that script): a run links unless it has -c, -S, -E, -M or -MM, or no non-flag
# argument. Then, before the arguments, each word of $NIX_LDFLAGS_BEFORE as `-Wl,<word>` and,
# for a dynamic link, `-Wl,-dynamic-linker=$NIX_DYNAMIC_LINKER`; after them each word of
# $NIX_LDFLAGS, `-L/...` as it is and anything else as `-Wl,<word>` (static-pie drops the
# -rpath pairs). The link type is handed to the ld-wrapper (NIX_EMU_LINK_TYPE, the cc-wrapper's
# link continuation), which then adds neither those flags nor its own -dynamic-linker again.
# The compiler is $NIX_EMU_CC (words: `gcc -B<dir>/ ...`).
# Not modelled: compile flags, hardening compile flags, response files, the prepared mode.
set -eu -o pipefail

params=("$@")
dontLink=0
nonFlag=0
for p in ${params[@]+"${params[@]}"}; do
    case "$p" in
    -c | -S | -E | -M | -MM) dontLink=1 ;;
    -?*) ;;
    *) nonFlag=1 ;;
    esac
done
[ "$nonFlag" = 1 ] || dontLink=1

before=()
after=()
if [ "$dontLink" = 0 ]; then
    linkType=dynamic
    # shellcheck disable=SC2086 # word lists, as in the cc-wrapper
    for p in ${NIX_LDFLAGS_BEFORE-} ${params[@]+"${params[@]}"} ${NIX_LDFLAGS-}; do
        case "$p" in
        -static) linkType=static ;;
        -static-pie) linkType=static-pie ;;
        esac
    done
    # Words of a flag list, without -rpath pairs for static-pie.
    words() {
        local -a w
        read -r -a w <<<"$1"
        local i
        for ((i = 0; i < ${#w[@]}; i++)); do
            if [ "$linkType" = static-pie ] && [ "${w[i]}" = -rpath ]; then
                i=$((i + 1))
                continue
            fi
            printf '%s\n' "${w[i]}"
        done
    }
    while IFS= read -r i; do before+=("-Wl,$i"); done < <(words "${NIX_LDFLAGS_BEFORE-}")
    if [ "$linkType" = dynamic ] && [ -n "${NIX_DYNAMIC_LINKER-}" ]; then
        before+=("-Wl,-dynamic-linker=$NIX_DYNAMIC_LINKER")
    fi
    while IFS= read -r i; do
        if [ "${i:0:3}" = -L/ ]; then after+=("$i"); else after+=("-Wl,$i"); fi
    done < <(words "${NIX_LDFLAGS-}")
    export NIX_EMU_LINK_TYPE=$linkType
fi
# shellcheck disable=SC2086 # the compiler may carry its own flags (`gcc -B dir/`)
exec $NIX_EMU_CC ${before[@]+"${before[@]}"} ${params[@]+"${params[@]}"} ${after[@]+"${after[@]}"}
