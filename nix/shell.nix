# `nix develop`: the toolchain and the tools the test suite drives.
{ pkgs }:

pkgs.mkShell {
  inputsFrom = [ pkgs.ldnote ];
  packages = with pkgs; [
    cargo
    rustc
    clippy
    rustfmt
    gcc
    clang
    lld
    mold
    binutils
    gnumake
    patchelf
    qemu
    hyperfine
    nix
    pkgsCross.aarch64-multiplatform.stdenv.cc
    pkgsCross.riscv64.stdenv.cc
  ];
}
