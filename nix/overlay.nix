# The overlay: ldnote itself, the stdenv adapter and its fixup hook. Applied to every package
# set of a nixpkgs instance, so a cross set's adapter takes ldnote from `buildPackages` (it runs
# on the build machine).
final: prev: {
  ldnote = final.callPackage ./package.nix { };

  # withLdnote :: stdenv -> stdenv. Every link through the stdenv's bintools wrapper runs
  # ldnote (below the wrapper), and the fixup phase shrinks run paths and notes outputs in one
  # in-place pass. See docs/nix.md.
  withLdnote = final.callPackage ./adapter.nix { };

  ldnoteFixupHook = final.callPackage ./fixup-hook.nix { ldnote = final.buildPackages.ldnote; };
}
