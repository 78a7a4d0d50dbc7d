//! `run --schedule CRON`: stay up and start a run at every occurrence of a cron expression
//! (UTC), for installations without a Kubernetes CronJob. A failed run is logged and the
//! next one still starts; SIGTERM/SIGINT ends the loop between runs.

use std::future::Future;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use chrono::Utc;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

/// Calls `run` at every occurrence of `expr` until a signal arrives.
pub(crate) async fn every<F, Fut>(expr: &str, mut run: F) -> Result<ExitCode>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<ExitCode>>,
{
    let cron = parse(expr)?;
    loop {
        let now = Utc::now();
        let next = cron
            .find_next_occurrence(&now, false)
            .map_err(|e| anyhow!("--schedule \"{expr}\": {e}"))?;
        let wait = (next - now).to_std().unwrap_or_default();
        eprintln!("next run at {next} (in {}s)", wait.as_secs());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop_signal() => return Ok(ExitCode::SUCCESS),
        }
        match run().await {
            Ok(code) if code == ExitCode::SUCCESS => {}
            Ok(_) => eprintln!("run finished with failures; the next run starts on schedule"),
            Err(e) => eprintln!("run failed: {e:#}; the next run starts on schedule"),
        }
    }
}

/// A five-field cron expression (minute hour day month weekday), a nickname like
/// `@hourly`, or six fields with seconds first.
fn parse(expr: &str) -> Result<Cron> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| anyhow!("--schedule \"{expr}\": {e}"))
}

async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hourly_and_five_field_expressions_parse() {
        for e in ["@hourly", "0 * * * *", "*/15 * * * *", "*/2 * * * * *"] {
            assert!(parse(e).is_ok(), "{e}");
        }
        assert!(parse("every hour")
            .unwrap_err()
            .to_string()
            .contains("--schedule \"every hour\""));
    }
}
