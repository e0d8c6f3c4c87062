{
  description = "ldnote: write the .note.nixos.ldcache resolution note at link time";

  # No flake.lock is committed (it could not be generated offline); `nix flake lock` pins it.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAll =
        f:
        nixpkgs.lib.genAttrs systems (
          system:
          f (
            import nixpkgs {
              inherit system;
              overlays = [ self.overlays.default ];
            }
          )
        );
    in
    {
      # pkgs.ldnote, pkgs.withLdnote (stdenv adapter), pkgs.ldnoteFixupHook.
      overlays.default = import ./nix/overlay.nix;

      packages = forAll (pkgs: {
        default = pkgs.ldnote;
        ldnote = pkgs.ldnote;
      });

      devShells = forAll (pkgs: {
        default = import ./nix/shell.nix { inherit pkgs; };
      });

      checks = forAll (pkgs: import ./nix/checks.nix { inherit pkgs; });

      formatter = forAll (pkgs: pkgs.nixfmt-rfc-style);
    };
}
