#!/bin/sh
# make-inner-linkers.sh OUT LDNOTE BINDIR PREFIX SHELL STORE [GLIBC]
#
# The adapter's inner linkers (nix/adapter.nix): for every BINDIR/PREFIXld and
# BINDIR/PREFIXld.* of the unwrapped bintools, OUT/bin/<same name> is a script, run by SHELL,
# that runs `LDNOTE link -- <real linker> ARGS`. ldnote reads the target from the real linker's
# name (`aarch64-unknown-linux-gnu-ld`) and the link line; nothing is looked up on PATH, where the
# wrapped `ld` would be found again.
#
# Scripts rather than compiled wrappers: the inner linker runs on the build machine, and a script
# cannot be built for the wrong one. A compiled wrapper made with the package set's own
# compiler would, in a cross set, be a target-machine binary (exec format error at the first
# link). SHELL must be a build-machine shell.
set -eu

[ $# -ge 6 ] || {
    echo "usage: $0 OUT LDNOTE BINDIR PREFIX SHELL STORE [GLIBC]" >&2
    exit 2
}
out=$1 ldnote=$2 bindir=$3 prefix=$4 shell=$5 store=$6 glibc=${7-}

# Single-quote VALUE for the generated script.
quote() {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

mkdir -p "$out/bin"
n=0
for real in "$bindir/${prefix}ld" "$bindir/${prefix}ld".*; do
    [ -x "$real" ] || continue
    name=${real##*/}
    {
        printf '#!%s\n' "$shell"
        printf 'LDNOTE_IMMUTABLE=${LDNOTE_IMMUTABLE:-%s}\n' "$(quote "$store")"
        printf 'export LDNOTE_IMMUTABLE\n'
        if [ -n "$glibc" ]; then
            printf 'LDNOTE_GLIBC=${LDNOTE_GLIBC:-%s}\n' "$(quote "$glibc")"
            printf 'export LDNOTE_GLIBC\n'
        fi
        printf 'exec %s link -- %s "$@"\n' "$(quote "$ldnote")" "$(quote "$real")"
    } >"$out/bin/$name"
    chmod 755 "$out/bin/$name"
    n=$((n + 1))
done
if [ ! -e "$out/bin/${prefix}ld" ]; then
    echo "$0: no executable ${prefix}ld in $bindir" >&2
    exit 1
fi
echo "$n inner linkers in $out/bin"
