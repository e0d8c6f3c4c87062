# The adapter's setup hook (nix/ldnote-fixup-hook.sh) with ldnote's path baked in. The hook
# runs on the build machine: pass a build-platform ldnote.
{
  lib,
  makeSetupHook,
  ldnote,
  # Target glibc "X.Y" (<= 2.36: legacy hwcaps subdirectories turn directories into hints).
  glibcVersion ? "",
}:

makeSetupHook {
  name = "ldnote-fixup-hook";
  substitutions = {
    ldnote = lib.getExe ldnote;
    inherit glibcVersion;
  };
} ./ldnote-fixup-hook.sh
