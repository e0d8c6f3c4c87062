# withLdnote :: stdenv -> stdenv
#
# Routes every link of the stdenv through ldnote, natively and cross, and composes ldnote with
# the fixup phase (docs/nix.md):
#
# - Linking: ldnote sits *below* the bintools wrapper, as the real linker the wrapper runs
#   (`wrap <name> ld-wrapper.sh <prog>`, the same mechanism as stdenvAdapters.useMoldLinker).
#   ld-wrapper keeps doing everything it does (purity filter, hardening, `-rpath` per store
#   `-L` dir, response files, the post-link hook) and ldnote sees the final argv. For each
#   `<targetPrefix>ld*` of the unwrapped bintools, a small binary wrapper named exactly like
#   it runs ldnote with that name as argv[0] and the real linker baked in
#   `LDNOTE_REAL_<NAME>`, so nothing is looked up on PATH (where the wrapped `ld` would be
#   found again). ldnote reserves the note inside the link and fills it right after.
# - Fixup: nix/ldnote-fixup-hook.sh replaces patchelf's `--shrink-rpath` pass with
#   `ldnote patch --shrink-rpath` (shrink + note, in place, one process per output). The stock
#   generate-ld-cache hook, if the stdenv has it, then finds every note up to date.
{
  lib,
  buildPackages,
  path,
}:

stdenv:

let
  bintools = stdenv.cc.bintools;
  unwrapped = bintools.bintools;
  prefix = bintools.targetPrefix;
  ldnote = buildPackages.ldnote;
  libc = stdenv.cc.libc or null;
  glibcVersion =
    if libc != null && (libc.pname or "") == "glibc" then lib.versions.majorMinor libc.version else "";
  ldWrapper = path + "/pkgs/build-support/bintools-wrapper/ld-wrapper.sh";

  # bin/<prefix>ld, bin/<prefix>ld.bfd, ... : ldnote under the linker's own name.
  innerLinkers =
    buildPackages.runCommand "ldnote-linkers-${stdenv.targetPlatform.config}"
      { nativeBuildInputs = [ buildPackages.makeBinaryWrapper ]; }
      ''
        mkdir -p $out/bin
        for real in ${unwrapped}/bin/${prefix}ld ${unwrapped}/bin/${prefix}ld.*; do
          [ -x "$real" ] || continue
          name=''${real##*/}
          var=LDNOTE_REAL_$(printf '%s' "$name" | tr 'a-z' 'A-Z' | tr -c 'A-Z0-9' '_')
          makeBinaryWrapper ${lib.getExe ldnote} "$out/bin/$name" \
            --argv0 "$name" \
            --set "$var" "$real" \
            --set-default LDNOTE_IMMUTABLE ${builtins.storeDir} \
            ${lib.optionalString (glibcVersion != "") "--set-default LDNOTE_GLIBC ${glibcVersion}"}
        done
        [ -e "$out/bin/${prefix}ld" ] || { echo "no ${prefix}ld in ${unwrapped}/bin" >&2; exit 1; }
      '';

  ldnoteBintools = bintools.override (old: {
    extraBuildCommands = (old.extraBuildCommands or "") + ''
      for inner in ${innerLinkers}/bin/*; do
        wrap "''${inner##*/}" ${ldWrapper} "$inner"
      done
    '';
  });

  hook = buildPackages.callPackage ./fixup-hook.nix { inherit ldnote glibcVersion; };
in
if !stdenv.targetPlatform.isElf then
  throw "withLdnote: ${stdenv.targetPlatform.config} does not produce ELF objects"
else
  stdenv.override (old: {
    cc = stdenv.cc.override { bintools = ldnoteBintools; };
    extraNativeBuildInputs = (old.extraNativeBuildInputs or [ ]) ++ [ hook ];
    # The wrapped linkers and the hook are new build-time references.
    allowedRequisites = null;
  })
