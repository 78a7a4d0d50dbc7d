//! Measuring helpers for the benchmarks: run a command under `/usr/bin/time -v` and read
//! its wall time and peak resident set size.

use std::process::Command;
use std::time::Instant;

/// What one measured command took.
#[derive(Debug, Clone)]
pub struct Measured {
    pub seconds: f64,
    pub peak_rss_kib: u64,
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Measured {
    /// Peak RSS in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }
}

/// Runs `program args` under `/usr/bin/time -v`. An embedded run remembers nothing
/// (`MIRROR_STATE=none`) unless `args` name a `--state` file: a tag cache left by another
/// benchmark's run would turn a cold figure into a warm one.
pub fn measure(program: &str, args: &[String]) -> anyhow::Result<Measured> {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(program)
        .args(args)
        .env_remove("XDG_STATE_HOME")
        .env("MIRROR_STATE", "none")
        .output()
        .map_err(|e| {
            anyhow::anyhow!("running /usr/bin/time -v {program}: {e} (apt-get install time)")
        })?;
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let peak_rss_kib = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    Ok(Measured {
        seconds,
        peak_rss_kib,
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr,
    })
}
