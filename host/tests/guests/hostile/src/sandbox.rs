//! Cases against the sandbox itself: stacks, output, handles, files and the
//! environment.

use std::hint::black_box;

use crate::trace::udf::log::{self, Level};
use crate::{Summary, UdfError, summary};

/// Recursion whose frames live in wasm locals, so that the engine's own
/// call stack is what runs out.
pub fn recurse() -> Result<Summary, UdfError> {
    summary(format!("depth {}", depth(black_box(u64::MAX))))
}

#[inline(never)]
fn depth(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    // `black_box` keeps the compiler from turning the recursion into a loop.
    black_box(depth(black_box(n - 1))) + 1
}

/// Recursion with a 4 KiB buffer per frame, which the compiler puts on the
/// shadow stack in linear memory: that stack runs out long before the
/// engine's.
pub fn recurse_frames() -> Result<Summary, UdfError> {
    summary(format!("sum {}", framed(black_box(u64::MAX))))
}

#[inline(never)]
fn framed(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let mut frame = [0u8; 4096];
    frame[(n % 4096) as usize] = n as u8;
    black_box(&mut frame);
    black_box(framed(black_box(n - 1))) + u64::from(frame[(n % 4096) as usize])
}

/// Writes log lines until something stops it.
pub fn log_flood() -> Result<Summary, UdfError> {
    let mut n = 0u64;
    loop {
        n += 1;
        log::write(Level::Info, "flood", &[("n".into(), n.to_string())]);
    }
}

/// Prints to standard output until something stops it.
pub fn stdout_flood() -> Result<Summary, UdfError> {
    let mut n = 0u64;
    loop {
        n += 1;
        println!("flood {n}");
    }
}

/// Prints to standard output until something stops it, in one endless line.
pub fn stdout_one_line() -> Result<Summary, UdfError> {
    loop {
        print!("flood ");
    }
}

/// Opens handles to standard output and never drops them, so that each one
/// stays in the host's resource table.
pub fn handles() -> Result<Summary, UdfError> {
    loop {
        std::mem::forget(wasip2::cli::stdout::get_stdout());
    }
}

/// Sleeps for ever, in a host call where epochs cannot interrupt it.
pub fn sleep() -> Result<Summary, UdfError> {
    loop {
        std::thread::sleep(std::time::Duration::MAX);
    }
}

/// Tries to read, write and list files, inside and outside any directory.
pub fn files() -> Result<Summary, UdfError> {
    let count = |n: usize| n.to_string();
    let attempts = [
        (
            "read /etc/passwd",
            std::fs::read("/etc/passwd").map(|b| count(b.len())),
        ),
        (
            "read data.txt",
            std::fs::read("data.txt").map(|b| count(b.len())),
        ),
        (
            "write out.txt",
            std::fs::write("out.txt", b"x").map(|()| "written".into()),
        ),
        ("list /", std::fs::read_dir("/").map(|d| count(d.count()))),
        ("list .", std::fs::read_dir(".").map(|d| count(d.count()))),
    ];
    refused_or_escaped(
        attempts
            .into_iter()
            .map(|(what, got)| (what, got.map_err(|e| e.to_string()))),
    )
}

/// Reads the environment and the arguments.
pub fn env() -> Result<Summary, UdfError> {
    let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
    let args: Vec<String> = std::env::args().collect();
    let attempts = [
        ("vars", list_or_none(vars)),
        ("args", list_or_none(args)),
        ("HOME", std::env::var("HOME").map_err(|e| e.to_string())),
        ("PATH", std::env::var("PATH").map_err(|e| e.to_string())),
    ];
    refused_or_escaped(attempts.into_iter())
}

/// `Err("none")` for an empty list, else the list joined.
fn list_or_none(items: Vec<String>) -> Result<String, String> {
    if items.is_empty() {
        Err("none".into())
    } else {
        Ok(items.join(","))
    }
}

/// Fails with every refusal when all attempts were refused; succeeds with
/// what was reached when any was not.
pub fn refused_or_escaped<'a>(
    attempts: impl Iterator<Item = (&'a str, Result<String, String>)>,
) -> Result<Summary, UdfError> {
    let mut refusals = Vec::new();
    let mut reached = Vec::new();
    for (what, got) in attempts {
        match got {
            Ok(value) => reached.push(format!("{what}: {value}")),
            Err(err) => refusals.push(format!("{what}: {err}")),
        }
    }
    if reached.is_empty() {
        Err(UdfError::Other(refusals.join("; ")))
    } else {
        summary(format!("reached {}", reached.join("; ")))
    }
}
