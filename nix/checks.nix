# flake checks: ldnote builds (with its unit tests), and a small multi-library package set
# (tests/nix/pkgs: base <- mid <- app, plus extra) built with `withLdnote stdenv` natively and
# for aarch64 (pkgsCross.aarch64-multiplatform), whose finished outputs must pass `ldnote check`
# (and, natively, run). The same sources are built without Nix by tests/nix_fixup.rs.
{ pkgs }:

let
  inherit (pkgs) lib;
  src = name: ../tests/nix/pkgs + "/${name}";

  packageSet =
    set:
    let
      stdenv = set.withLdnote set.stdenv;
      mk =
        name: deps:
        stdenv.mkDerivation {
          pname = "ldnote-check-${name}";
          version = "0";
          src = src name;
          buildInputs = deps;
          makeFlags = [
            "PREFIX=${placeholder "out"}"
            "AR=${stdenv.cc.targetPrefix}ar"
            # glibc's static libraries are a separate output.
            "STATIC_PROGS="
          ];
        };
    in
    rec {
      base = mk "base" [ ];
      extra = mk "extra" [ ];
      mid = mk "mid" [ base ];
      app = mk "app" [
        mid
        extra
        base
      ];
    };

  # Runs on the build machine: `ldnote check` on every ELF file of the outputs.
  check =
    name: set: runPrograms:
    pkgs.runCommand "ldnote-check-${name}"
      {
        nativeBuildInputs = [ pkgs.ldnote ];
      }
      ''
        export LDNOTE_IMMUTABLE=${builtins.storeDir}
        n=0
        for o in ${lib.concatMapStringsSep " " toString (lib.attrValues set)}; do
          while IFS= read -r -d "" f; do
            head -c4 "$f" | grep -q ELF || continue
            ldnote show "$f"
            ldnote check "$f"
            n=$((n + 1))
          done < <(find "$o" -type f -print0)
        done
        echo "$n ELF files checked"
        [ "$n" -ge 8 ]
        ${lib.optionalString runPrograms ''
          [ "$(${set.base}/bin/basecheck)" = "base 40" ]
          [ "$(${set.mid}/bin/midtool)" = "mid 41 20" ]
          [ "$(${set.app}/bin/app)" = "app 410 41 2 1" ]
          [ "$(${set.app}/bin/app2)" = "app2 41 20 1" ]
          [ "$(${set.app}/bin/hello)" = "hello" ]
        ''}
        touch $out
      '';

  native = packageSet pkgs;
  cross = packageSet pkgs.pkgsCross.aarch64-multiplatform;
in
{
  ldnote = pkgs.ldnote;
  native = check "native" native true;
  aarch64 = check "aarch64" cross false;
}
