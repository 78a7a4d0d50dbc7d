//! When runs start: the schedule of `run --schedule CRON` and of each group of a groups
//! file (a cron expression in UTC, a nickname, or Prow's `@every DURATION`), and its next
//! start. `run` stays up on it, `status` shows each group's next start by it.

use chrono::Utc;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

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
