#!/usr/bin/env bash
# What nixpkgs' bintools wrapper (bintools-wrapper/ld-wrapper.sh with wrapper-common/utils.bash
# and add-hardening.sh) does to a link line, for tests/nix_fixup.rs, which has no Nix. Written
# from reading those scripts; the test's linker (NIX_EMU_LD: ldnote's `ld` as the stdenv
# adapter places it, or the plain linker) gets the argv Nix gives it:
#   1. link type: `static` when -static is an argument, `static-pie` for -static-pie, else
#      `dynamic`;
#   2. purity filter (NIX_ENFORCE_PURITY=1): -L DIR, -rpath DIR and -dynamic-linker PATH
#      outside $NIX_STORE, $NIX_BUILD_TOP and the temp directories are dropped, any other such
#      absolute argument fails the link, --sysroot* is dropped;
#   3. before the arguments: the hardening flags (`-z relro`, `-z now` unless disabled in
#      NIX_HARDENING_ENABLE), $NIX_LDFLAGS_BEFORE, and `-dynamic-linker $NIX_DYNAMIC_LINKER`
#      for a dynamic link; after them: $NIX_LDFLAGS and $NIX_LDFLAGS_AFTER (a static-pie link
#      drops their -rpath pairs). Run by the cc-wrapper (NIX_EMU_LINK_TYPE set, its link
#      continuation: tests/nix/cc-wrapper-emu.sh), the link type is the cc-wrapper's and only
#      the hardening flags and $NIX_LDFLAGS_AFTER are added: the rest came as -Wl, flags;
#   4. unless NIX_DONT_SET_RPATH=1 or static-pie: for each -L directory (`-L DIR`, `-LDIR`),
#      canonicalised without resolving symlinks (`realpath -s`) before the store test, and each
#      directory of a store `.so` given as an argument, in order: if it is in the store and
#      holds a file named like a needed library (`lib<x>.so` for `-l<x>` / `-l <x>`, the base
#      name of a direct `.so` argument), append `-rpath DIR` once; the argument after
#      -dynamic-linker or -plugin is never looked at;
#   5. NIX_SET_BUILD_ID=1 and not -r/-i/--relocatable: append --build-id=$NIX_BUILD_ID_STYLE
#      (sha1);
#   6. $NIX_EMU_SUPPORT/ld-wrapper-hook is sourced (with $linker), then the linker runs: with
#      NIX_LD_USE_RESPONSE_FILE=1 (and no empty argument), through a response file, one
#      argument a line in GNU quoting (`"..."`, backslash and double quote escaped); then
#      $NIX_EMU_SUPPORT/post-link-hook is sourced (with $linkerOutput).
# Not modelled: response files given *to* the wrapper (expand-response-params), the 32-bit
# dynamic linker of multilib, Darwin, the prepared entry point (nix-support/linker).
set -eu -o pipefail

params=("$@")

# Called by the cc-wrapper (tests/nix/cc-wrapper-emu.sh), the link type is the one it chose.
if [ -n "${NIX_EMU_LINK_TYPE-}" ]; then
    linkType=$NIX_EMU_LINK_TYPE
else
    linkType=dynamic
    for p in ${params[@]+"${params[@]}"}; do
        case "$p" in
        -static) linkType=static ;;
        -static-pie) linkType=static-pie ;;
        esac
    done
fi

# A path the purity filter lets through: relative, /dev/null, or under the store, the build
# directory or a temp directory.
pure() {
    local p=$1 d
    [ "${p:0:1}" = / ] || return 0
    [ "$p" = /dev/null ] && return 0
    for d in "${NIX_STORE-}" "${NIX_BUILD_TOP-}" /tmp "${TMP-}" "${TMPDIR-}" "${TEMP-}" "${TEMPDIR-}"; do
        [ -n "$d" ] && [ "${p#"$d"}" != "$p" ] && return 0
    done
    return 1
}

if [ "${NIX_ENFORCE_PURITY-}" = 1 ] && [ -n "${NIX_STORE-}" ]; then
    kept=()
    for ((i = 0; i < ${#params[@]}; i++)); do
        p=${params[i]}
        next=${params[i + 1]-}
        if [ "${p:0:3}" = -L/ ] && ! pure "${p:2}"; then
            continue
        elif { [ "$p" = -L ] || [ "$p" = -rpath ] || [ "$p" = -dynamic-linker ]; } && ! pure "$next"; then
            i=$((i + 1))
        elif [[ "$p" =~ ^/[^:]*/ ]] && ! pure "$p"; then
            echo "impure path \`$p' used in link" >&2
            exit 1
        elif [ "${p:0:9}" = --sysroot ]; then
            :
        else
            kept+=("$p")
        fi
    done
    params=(${kept[@]+"${kept[@]}"})
fi

# Word lists without the -rpath pairs, for static-pie (glibc wants no run path there).
words() {
    local -a w out=()
    read -r -a w <<<"$1"
    local i
    for ((i = 0; i < ${#w[@]}; i++)); do
        if [ "$linkType" = static-pie ] && [ "${w[i]}" = -rpath ]; then
            i=$((i + 1))
            continue
        fi
        out+=("${w[i]}")
    done
    if [ ${#out[@]} -gt 0 ]; then printf '%s\n' "${out[@]}"; fi
}

before=()
case " ${NIX_HARDENING_ENABLE-relro bindnow} " in *" relro "*) before+=(-z relro) ;; esac
case " ${NIX_HARDENING_ENABLE-relro bindnow} " in *" bindnow "*) before+=(-z now) ;; esac
after=()
# Through the cc-wrapper these came as -Wl, flags already.
if [ -z "${NIX_EMU_LINK_TYPE-}" ]; then
    mapfile -t w < <(words "${NIX_LDFLAGS_BEFORE-}")
    before+=(${w[@]+"${w[@]}"})
    if [ "$linkType" = dynamic ] && [ -n "${NIX_DYNAMIC_LINKER-}" ]; then
        before+=(-dynamic-linker "$NIX_DYNAMIC_LINKER")
    fi
    mapfile -t w < <(words "${NIX_LDFLAGS-}")
    after+=(${w[@]+"${w[@]}"})
fi
mapfile -t w < <(words "${NIX_LDFLAGS_AFTER-}")
after+=(${w[@]+"${w[@]}"})

all=(${before[@]+"${before[@]}"} ${params[@]+"${params[@]}"} ${after[@]+"${after[@]}"})
libDirs=()
declare -A libs=()
relocatable=0
linkerOutput=a.out
prev=
for p in ${all[@]+"${all[@]}"}; do
    case "$prev" in
    -L) libDirs+=("$p") ;;
    -l) libs["lib$p.so"]=1 ;;
    -o) linkerOutput=$p ;;
    -dynamic-linker | -plugin) ;;
    *)
        case "$p" in
        -L/*) libDirs+=("${p:2}") ;;
        -l?*) libs["lib${p:2}.so"]=1 ;;
        "${NIX_STORE-}"/*.so | "${NIX_STORE-}"/*.so.*)
            libDirs+=("${p%/*}")
            libs["${p##*/}"]=1
            ;;
        -r | --relocatable | -i) relocatable=1 ;;
        esac
        ;;
    esac
    prev=$p
done

if [ "${NIX_DONT_SET_RPATH-}" != 1 ] && [ "$linkType" != static-pie ]; then
    declare -A added=()
    for dir in ${libDirs[@]+"${libDirs[@]}"}; do
        dir=$(realpath -s "$dir") || continue
        [ -z "${added[$dir]-}" ] || continue
        [[ "$dir" == "${NIX_STORE-}"/* ]] || continue
        for f in "$dir"/*; do
            if [ -n "${libs[${f##*/}]-}" ]; then
                added[$dir]=1
                after+=(-rpath "$dir")
                break
            fi
        done
    done
fi

if [ "${NIX_SET_BUILD_ID-}" = 1 ] && [ "$relocatable" = 0 ]; then
    after+=("--build-id=${NIX_BUILD_ID_STYLE:-sha1}")
fi

linker=$NIX_EMU_LD
if [ -n "${NIX_EMU_SUPPORT-}" ] && [ -e "$NIX_EMU_SUPPORT/ld-wrapper-hook" ]; then
    # shellcheck disable=SC1091
    source "$NIX_EMU_SUPPORT/ld-wrapper-hook"
fi
final=(${before[@]+"${before[@]}"} ${params[@]+"${params[@]}"} ${after[@]+"${after[@]}"})
empty=0
for a in ${final[@]+"${final[@]}"}; do [ -n "$a" ] || empty=1; done
if [ "${NIX_LD_USE_RESPONSE_FILE:-0}" -ge 1 ] && [ "$empty" = 0 ]; then
    rsp=$(mktemp "${TMPDIR:-/tmp}/ld-params.XXXXXX")
    trap 'rm -f -- "$rsp"' EXIT
    for a in "${final[@]}"; do
        a=${a//\\/\\\\}
        a=${a//\"/\\\"}
        printf '"%s"\n' "$a"
    done >"$rsp"
    ("$NIX_EMU_LD" "@$rsp")
else
    ("$NIX_EMU_LD" ${final[@]+"${final[@]}"})
fi
if [ -n "${NIX_EMU_SUPPORT-}" ] && [ -e "$NIX_EMU_SUPPORT/post-link-hook" ]; then
    # shellcheck disable=SC1091
    source "$NIX_EMU_SUPPORT/post-link-hook"
fi
