//! The command-line driver: the only code that prints, spawns and exits.

/// `eprintln!` that cannot panic: a closed or full stderr (`ldnote link ... 2>&1 | head -0`) must
/// never change the linker's exit status or stop it from running, so write errors are ignored.
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

/// `ldnote: MESSAGE` on stderr under `-v`. The message is formatted only then: a wrapped link
/// shows nothing, and formatting what nobody reads cost allocations on every link.
macro_rules! say {
    ($opts:expr, $($t:tt)*) => {{
        if $opts.verbose {
            errln!("ldnote: {}", format_args!($($t)*));
        }
    }};
}

/// `println!` that cannot panic (a closed stdout, as in `ldnote check f | head -1`).
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

pub mod audit;
mod cache;
pub mod check;
pub mod demo;
pub mod explain;
pub mod link;
pub mod note;
pub mod options;
pub mod patch;
pub mod show;
pub mod trace;

/// An error with its context, printed at the edge.
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
