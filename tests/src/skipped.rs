//! Tests that cannot run on this machine say so where it is read.
//!
//! Why: `cargo test` shows a test that returned early as passed and hides what it printed.
//! A skipped test therefore writes its name and reason to stderr and appends them to
//! `target/skipped-tests.txt`, which `.ci/run` empties before the suite and prints after it,
//! so a machine without podman or kubectl is visible in the CI log.

use std::io::Write;
use std::path::PathBuf;

/// `target/skipped-tests.txt` of the running test executable (`target/<profile>/deps/x`).
pub fn skipped_file() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let mut dir = exe.parent()?;
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent()?;
    }
    Some(dir.parent()?.join("skipped-tests.txt"))
}

/// Records that `test` did not run because of `reason`.
pub fn skip(test: &str, reason: &str) {
    let line = format!("skipped {test}: {reason}");
    eprintln!("{line}");
    if let Some(path) = skipped_file() {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}
