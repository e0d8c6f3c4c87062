//! The command-line driver: the only code that prints, spawns and exits.
pub mod audit;
pub mod demo;
pub mod explain;
pub mod link;
pub mod note;
pub mod options;
pub mod show;

/// An error with its context, printed at the edge.
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
