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
pub(crate) async fn every<F, Fut>(expr: &str, now: bool, mut run: F) -> Result<ExitCode>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<ExitCode>>,
{
    let schedule = Schedule::parse(expr).map_err(|e| anyhow!("--schedule {e}"))?;
    if now {
        eprintln!("run starts now (--now)");
        say(run().await);
    }
    loop {
        let now = Utc::now();
        let next = schedule
            .next_after(now)
            .map_err(|e| anyhow!("--schedule {e}"))?;
        let wait = (next - now).to_std().unwrap_or_default();
        eprintln!("next run at {next} (in {}s)", wait.as_secs());
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop_signal() => return Ok(ExitCode::SUCCESS),
        }
        say(run().await);
    }
}

/// One line on how a scheduled run ended.
fn say(outcome: Result<ExitCode>) {
    match outcome {
        Ok(code) if code == ExitCode::SUCCESS => {}
        Ok(_) => eprintln!("run finished with failures; the next run starts on schedule"),
        Err(e) => eprintln!("run failed: {e:#}; the next run starts on schedule"),
    }
}

/// When runs start: a five-field cron expression (minute hour day month weekday, UTC), a
/// nickname like `@hourly`, six fields with seconds first, or Prow's `@every DURATION`
/// (`@every 20m`: that long after the previous start).
#[derive(Debug)]
pub(crate) enum Schedule {
    Cron(Box<Cron>),
    Every(std::time::Duration),
}

impl Schedule {
    /// Parses a schedule; the error quotes it and says what is expected.
    pub(crate) fn parse(expr: &str) -> Result<Schedule, String> {
        if let Some(d) = expr.trim().strip_prefix("@every") {
            return match humantime::parse_duration(d.trim()) {
                Ok(d) if !d.is_zero() => Ok(Schedule::Every(d)),
                _ => Err(format!(
                    "\"{expr}\": @every takes a duration above zero, such as @every 20m"
                )),
            };
        }
        CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(expr)
            .map(|c| Schedule::Cron(Box::new(c)))
            .map_err(|e| {
                format!("\"{expr}\": {e}; expected 5 cron fields, @hourly-style, or @every 20m")
            })
    }

    /// The first start after `now`.
    pub(crate) fn next_after(
        &self,
        now: chrono::DateTime<Utc>,
    ) -> Result<chrono::DateTime<Utc>, String> {
        match self {
            Schedule::Cron(c) => c
                .find_next_occurrence(&now, false)
                .map_err(|e| e.to_string()),
            Schedule::Every(d) => chrono::Duration::from_std(*d)
                .map(|d| now + d)
                .map_err(|e| e.to_string()),
        }
    }
}

pub(crate) async fn stop_signal() {
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
    fn hourly_five_field_and_prow_every_expressions_parse() {
        for e in [
            "@hourly",
            "0 * * * *",
            "*/15 * * * *",
            "*/2 * * * * *",
            "15 2 12 */12 *",
        ] {
            assert!(Schedule::parse(e).is_ok(), "{e}");
        }
        let every = Schedule::parse("@every 20m").unwrap();
        let now = Utc::now();
        assert_eq!(
            every.next_after(now).unwrap() - now,
            chrono::Duration::minutes(20)
        );
        assert!(Schedule::parse("every hour")
            .unwrap_err()
            .contains("\"every hour\""));
        assert!(Schedule::parse("@every 0s").is_err());
    }
}
