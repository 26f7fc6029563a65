//! Writing to standard output the way Unix tools do.
//!
//! `println!` panics when stdout is a pipe whose reader has gone
//! (`trace job status ID | head -1`). The CLI's output goes through
//! [`outln!`](crate::outln) and [`out!`](crate::out) instead, which stop
//! writing once the reader is gone and let the command finish, so that it
//! still exits with its own status (a failed job is still a failure) and
//! `trace dev` still stops its cluster. Any other write error is reported
//! once on stderr, and output stops too.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once stdout cannot be written to.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// Writes `args` (and a newline when `newline`) to stdout, unless an
/// earlier write found it gone.
pub fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    if let Err(err) = written {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if err.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to standard output: {err}; output stops here");
        }
    }
}

/// `println!` to stdout; after a closed pipe, nothing.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*), true)
    };
}

/// `print!` to stdout; after a closed pipe, nothing.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*), false)
    };
}
