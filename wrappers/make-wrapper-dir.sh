#!/bin/sh
# make-wrapper-dir.sh [-t TRIPLE]... DIR [LDNOTE]
#
# Create DIR holding symlinks named like linkers and compiler drivers, all pointing at the
# ldnote binary (LDNOTE, default: `ldnote` on PATH). ldnote looks at the name it was invoked
# by (multicall) and behaves like `ldnote link -- <real tool> ARGS`; the real tool is
# $LDNOTE_REAL_<NAME>, else $LDNOTE_LINKER for linker names, else the first program of that
# name on PATH that is not ldnote. See wrappers/README.md for the three ways to use DIR.
#
# -t TRIPLE (repeatable) also creates TRIPLE-ld, TRIPLE-gcc, ... for cross toolchains.
# Existing entries of DIR with these names are replaced; nothing else in DIR is touched.
set -eu

usage() {
    echo "usage: $0 [-t TRIPLE]... DIR [LDNOTE]" >&2
    exit 2
}

triples=""
while [ $# -gt 0 ]; do
    case "$1" in
    -t)
        [ $# -ge 2 ] || usage
        case "$2" in
        "" | */* | *[!A-Za-z0-9_.-]*)
            echo "$0: not a target triple: '$2'" >&2
            exit 2
            ;;
        esac
        triples="$triples $2"
        shift 2
        ;;
    -h | --help) usage ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] && [ $# -le 2 ] || usage
dir=$1

if [ $# -eq 2 ]; then
    ldnote=$2
else
    ldnote=$(command -v ldnote) || {
        echo "$0: no ldnote on PATH; pass its path as the second argument" >&2
        exit 1
    }
fi
[ -f "$ldnote" ] && [ -x "$ldnote" ] || {
    echo "$0: '$ldnote' is not an executable file" >&2
    exit 1
}
# Absolute target: the links must keep working when DIR is used from another directory.
case "$ldnote" in
/*) ;;
*) ldnote=$(cd "$(dirname "$ldnote")" && pwd -P)/$(basename "$ldnote") ;;
esac
# Refuse a binary that is not ldnote: every link would silently run the wrong program.
"$ldnote" --version 2>/dev/null | grep -q '^ldnote ' || {
    echo "$0: '$ldnote' does not answer --version like ldnote" >&2
    exit 1
}

mkdir -p "$dir"
names="ld ld.bfd ld.gold ld.lld ld.mold cc gcc g++ c++ clang clang++"
for prefix in "" $triples; do
    for n in $names; do
        [ -n "$prefix" ] && n="$prefix-$n"
        ln -sfn "$ldnote" "$dir/$n"
    done
done
