//! How log lines are written: the `--log-format` flag of both binaries and the setup
//! both start with.

use clap::Args;

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON otherwise (a container, a file, a pipe).
    #[default]
    Auto,
    /// Human-readable lines.
    Text,
    /// One JSON object per line, the fields of the enclosing spans (a job's `run_id`,
    /// `job_id`, `image`) included, for log collectors.
    Json,
}

/// The logging flag of both binaries. Global, so it may follow a subcommand.
#[derive(Args, Clone, Debug)]
pub struct LogArgs {
    /// Log line format: text, json, or auto (text on a terminal, json otherwise).
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
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
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
