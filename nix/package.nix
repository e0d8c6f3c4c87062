{
  lib,
  rustPlatform,
}:

rustPlatform.buildRustPackage {
  pname = "ldnote";
  version = (lib.importTOML ../Cargo.toml).package.version;

  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../build.rs
      ../src
      ../targets
      ../wrappers
    ];
  };

  cargoLock.lockFile = ../Cargo.lock;

  # Unit tests only. The integration tests (tests/) drive Debian's cross compilers, qemu-user,
  # GNU/gold/lld/mold and patchelf 0.19.3 by name, which the sandbox does not provide; they are
  # not part of the source set above.
  cargoTestFlags = [
    "--lib"
    "--bins"
  ];

  postInstall = ''
    install -Dm755 wrappers/make-wrapper-dir.sh $out/share/ldnote/make-wrapper-dir.sh
    install -Dm644 wrappers/README.md $out/share/doc/ldnote/wrappers.md
  '';

  meta = {
    description = "Link-time writer of the .note.nixos.ldcache resolution note";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
    mainProgram = "ldnote";
  };
}
