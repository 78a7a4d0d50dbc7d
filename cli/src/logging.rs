//! How log lines are written: the `--log-format` flag of both binaries and the setup
//! both start with.
//!
//! Text unless JSON is asked for: a CronJob's or a pipe's reader is usually a person, and
//! the binaries' own lines (a run's summary, `error: ...`) are text, so guessing JSON from
//! "stderr is not a terminal" interleaved JSON log events with plain lines. Asked for
//! (`--log-format json`, `LOG_FORMAT=json`: the shipped worker Deployment), JSON is used
//! for the log events and for the line a binary ends on when it fails ([`fatal`]), so that
//! a collector reads one object per line. Colour codes only when stderr is a terminal:
//! never in a file or a pod's log.

use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, coloured on a terminal only (the default; kept as a name
    /// for scripts that pass it).
    #[default]
    Auto,
    /// Human-readable lines, coloured on a terminal only.
    Text,
    /// One JSON object per line, the fields of the enclosing spans (a job's `run_id`,
    /// `job_id`, `image`) included, for log collectors.
    Json,
}

/// The logging flag of both binaries. Global, so it may follow a subcommand.
#[derive(Args, Clone, Debug)]
pub struct LogArgs {
    /// Log line format: text (auto, the default, is text too; colour on a terminal only),
    /// or json (one object per line, the final error line included).
    #[arg(
        long = "log-format",
        env = "LOG_FORMAT",
        global = true,
        value_enum,
        default_value_t = LogFormat::Auto,
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,
}

/// Whether [`init_logging`] chose JSON (read by [`fatal`]).
static JSON: AtomicBool = AtomicBool::new(false);

/// Writes the line a binary ends on when it fails (`error: ...`): a plain line in text, an
/// `ERROR` event in JSON, so that a JSON log is JSON to its last line.
pub fn fatal(message: &str) {
    if JSON.load(Ordering::Relaxed) {
        tracing::error!("{message}");
    } else {
        eprintln!("{message}");
    }
}

/// Crates whose debug and trace output shows protocol frames, secrets included.
const WIRE_LOGGERS: [&str; 4] = ["lapin", "amq_protocol", "amq_protocol_tcp", "tcp_stream"];

/// Logs go to stderr (stdout carries oc's result lines); `RUST_LOG` sets the level
/// (default `warn`). Both binaries start with this. A job's lines are emitted inside its
/// `job` span; the JSON format writes that span's fields on every line (`span` and
/// `spans`), so a collector can filter one run, job or image without parsing messages.
/// The deprecation notes of the flags given are its first lines.
pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // The AMQP client logs whole frames at debug and trace, the connection's credentials
    // included: whatever RUST_LOG asks, those crates say no more than info.
    for target in WIRE_LOGGERS {
        if let Ok(d) = format!("{target}=info").parse() {
            filter = filter.add_directive(d);
        }
    }
    let json = format == LogFormat::Json;
    JSON.store(json, Ordering::Relaxed);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(true)
            .init();
    } else {
        builder.init();
    }
    for note in crate::durations::take_notes() {
        tracing::warn!("{note}");
    }
}
