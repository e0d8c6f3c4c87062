//! ldnote: write the `.note.nixos.ldcache` resolution note at link time.
//!
//! The pipeline is `argv -> link plan -> run linker -> read output -> resolve -> encode note ->
//! embed`; each step lives in its own module (see DESIGN.md). Everything here is pure or goes
//! through a small trait; spawning processes and touching the user's files is done by the driver.
#![deny(missing_docs)]

pub mod argv;
pub mod bytes;
pub mod elf;
pub mod embed;
pub mod env;
pub mod explain;
pub mod fnv;
pub mod fs;
pub mod header;
pub mod note;
pub mod noter;
pub mod reserve;
pub mod resolve;
pub mod rsp;
pub mod shrink;
pub mod stale;
pub mod target;
pub mod verify;
