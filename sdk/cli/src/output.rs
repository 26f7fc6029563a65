//! Writing to standard output the way Unix tools do.
//!
//! `println!` panics when stdout is a pipe whose reader has gone
//! (`trace job status ID | head -1`). The CLI's output goes through
//! [`outln!`](crate::outln) and [`out!`](crate::out) instead, which end the
//! process quietly with success when the reader is gone, and with a failure
//! for any other write error.

use std::io::Write;

/// Writes `args` (and a newline when `newline`) to stdout.
pub fn write(args: std::fmt::Arguments<'_>, newline: bool) {
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
    match written {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(err) => {
            eprintln!("error: cannot write to standard output: {err}");
            std::process::exit(1);
        }
    }
}

/// `println!` to stdout, ending the process quietly on a closed pipe.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*), true)
    };
}

/// `print!` to stdout, ending the process quietly on a closed pipe.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*), false)
    };
}
