//! Embedding the note into a linked output.
pub mod append;
