//! Progress of a run: a bar on a terminal, plain log lines (one every few seconds and at
//! the end) when stderr is a file or a pipe, as under cron or Kubernetes.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How often a plain progress line is written.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Jobs done out of a total, shown the way the output device suits.
pub(crate) enum Progress {
    Bar(ProgressBar),
    Log {
        total: u64,
        done: u64,
        failed: u64,
        last: Instant,
    },
}

impl Progress {
    /// A bar when stderr is a terminal, log lines otherwise.
    pub(crate) fn new(total: usize) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total as u64);
            let style =
                ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} jobs {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
            bar.set_style(style);
            Progress::Bar(bar)
        } else {
            Progress::Log {
                total: total as u64,
                done: 0,
                failed: 0,
                last: Instant::now(),
            }
        }
    }

    /// One job finished.
    pub(crate) fn job_done(&mut self, failed: bool) {
        match self {
            Progress::Bar(bar) => {
                bar.inc(1);
                if failed {
                    bar.set_message("(failures)");
                }
            }
            Progress::Log {
                total,
                done,
                failed: f,
                last,
            } => {
                *done += 1;
                *f += u64::from(failed);
                if last.elapsed() >= LOG_EVERY || done == total {
                    eprintln!("progress: {done}/{total} jobs done, {f} with failures");
                    *last = Instant::now();
                }
            }
        }
    }

    /// Prints a result line on stdout without tearing the bar.
    pub(crate) fn println(&self, line: &str) {
        match self {
            Progress::Bar(bar) => bar.suspend(|| println!("{line}")),
            Progress::Log { .. } => println!("{line}"),
        }
    }

    /// Prints a message on stderr without tearing the bar.
    pub(crate) fn eprintln(&self, line: &str) {
        match self {
            Progress::Bar(bar) => bar.suspend(|| eprintln!("{line}")),
            Progress::Log { .. } => eprintln!("{line}"),
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
