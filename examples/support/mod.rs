//! What the side-by-side harnesses share: locating the forkless binary next to
//! the example and running a child process with bounded time. Each example
//! includes this file as a module and uses what it needs.
#![allow(dead_code)]

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, BoxError>;

/// `target/<profile>/forkless`, beside `target/<profile>/examples/<this>`.
pub fn forkless_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("forkless"))
        .ok_or("cannot locate the target directory")?;
    if !bin.exists() {
        return Err(format!(
            "{} is missing: run `cargo build --release --bin forkless` first",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

/// Runs a command with its output in a temporary file, killing it after `limit`.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Result<String> {
    let mut out = tempfile::tempfile()?;
    let mut child = cmd
        .stdout(out.try_clone()?)
        .stderr(out.try_clone()?)
        .stdin(Stdio::null())
        .spawn()?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{cmd:?} still running after {limit:?}: killed").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    out.rewind()?;
    let mut text = String::new();
    out.read_to_string(&mut text)?;
    // Progress lines end in '\r'.
    let text = text.replace('\r', "\n");
    if !status.success() {
        return Err(format!("{cmd:?} failed ({status}):\n{text}").into());
    }
    if text.contains("ERR") || text.contains("Error") {
        return Err(format!("{cmd:?} saw errors:\n{text}").into());
    }
    Ok(text)
}
