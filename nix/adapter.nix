# withLdnote :: stdenv -> stdenv
#
# Routes every link of the stdenv through ldnote, natively and cross, and composes ldnote with
# the fixup phase (docs/nix.md):
#
# - Linking: ldnote sits *below* the bintools wrapper, as the real linker the wrapper runs
#   (`wrap <name> ld-wrapper.sh <prog>` in `extraBuildCommands`, the mechanism
#   stdenvAdapters.useMoldLinker uses to put mold there). ld-wrapper keeps doing everything it
#   does (purity filter, hardening, `-rpath` per store `-L` dir, response files, its hooks) and
#   ldnote sees the final argv. For each `<targetPrefix>ld*` of the unwrapped bintools, a
#   small script named exactly like it runs `ldnote link -- <real linker>`, so nothing is
#   looked up on PATH (where the wrapped `ld` would be found again). ldnote reserves the note
#   inside the link and fills it at the fixup.
# - Fixup: nix/ldnote-fixup-hook.sh replaces patchelf's `--shrink-rpath` pass with
#   `ldnote patch --shrink-rpath` (shrink + note, in place) and runs the stock generate-ld-cache
#   hook last, on the files ldnote did not note.
{
  lib,
  buildPackages,
  path,
}:

stdenv:

let
  bintools = stdenv.cc.bintools;
  # The unwrapped bintools' binaries, as the wrapper takes its own `ldPath` (`getBin`).
  unwrapped =
    if (bintools.bintools or null) == null then
      throw "withLdnote: the stdenv's bintools wrapper has no unwrapped bintools (nativeTools)"
    else
      lib.getBin bintools.bintools;
  prefix = bintools.targetPrefix;
  ldnote = buildPackages.ldnote;
  libc = stdenv.cc.libc or null;
  glibcVersion =
    if libc != null && (libc.pname or "") == "glibc" then lib.versions.majorMinor libc.version else "";
  ldWrapper = path + "/pkgs/build-support/bintools-wrapper/ld-wrapper.sh";

  # bin/<prefix>ld, bin/<prefix>ld.bfd, ... : scripts running `ldnote link -- <real linker>`.
  # They run on the build machine, so they are scripts for its shell (`buildPackages`), never
  # binaries from a compiler: `buildPackages.makeBinaryWrapper` compiles with
  # `targetPackages.stdenv.cc`, which in a cross package set targets the host (exec format
  # error on the builder). tests/nix_fixup.rs runs this builder for a cross prefix.
  innerLinkers = buildPackages.runCommand "ldnote-linkers-${stdenv.targetPlatform.config}" { } ''
    ${buildPackages.runtimeShell} ${./make-inner-linkers.sh} "$out" ${lib.getExe ldnote} \
      ${unwrapped}/bin "${prefix}" ${buildPackages.runtimeShell} ${builtins.storeDir} "${glibcVersion}"
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
