//! Time flags in one style: `10s`, `500ms`, `2m`, `1h30m` (humantime) on every flag of both
//! binaries. The spellings they replace (`--retry-delay-ms 250`, `--grace 30`) keep
//! working and say once how to write them now: a warning logged as soon as logging is set
//! up ([`crate::init_logging`]), so it is a JSON line where logs are JSON (a bare line on
//! stderr would break a log collector reading a container's output).

use parking_lot::Mutex;
use std::time::Duration;

/// Deprecation notes of the flags parsed, until logging can say them.
static NOTES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn note(text: String) {
    NOTES.lock().push(text);
}

/// The deprecation notes of the flags parsed so far, emptied.
pub(crate) fn take_notes() -> Vec<String> {
    std::mem::take(&mut *NOTES.lock())
}

/// A duration as people write it; the error shows the expected form.
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value.trim()).map_err(|e| {
        format!("\"{value}\": {e}; expected a number with a unit, e.g. 10s, 500ms, 2m")
    })
}

/// The parser of an old flag that took milliseconds (`old 250`): the value, with a
/// deprecation note naming the flag that replaces it (`new 250ms`).
pub fn deprecated_millis(
    old: &'static str,
    new: &'static str,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |value: &str| {
        let ms: u64 = value
            .trim()
            .parse()
            .map_err(|_| format!("\"{value}\" is not a number of milliseconds"))?;
        note(format!("{old} is deprecated; use {new} {ms}ms"));
        Ok(Duration::from_millis(ms))
    }
}

/// The parser of a flag that took whole seconds and now takes a duration (`--grace`): a
/// bare number is still read as seconds, with a deprecation note.
pub fn duration_or_seconds(
    flag: &'static str,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |value: &str| match value.trim().parse::<u64>() {
        Ok(secs) => {
            note(format!(
                "{flag} {secs} (seconds without a unit) is deprecated; write {flag} {secs}s"
            ));
            Ok(Duration::from_secs(secs))
        }
        Err(_) => parse_duration(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_a_bare_number_is_refused() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        let e = parse_duration("250").unwrap_err();
        assert!(e.contains("\"250\"") && e.contains("10s"), "{e}");
    }

    #[test]
    fn old_spellings_still_read_as_before() {
        let ms = deprecated_millis("--retry-delay-ms", "--retry-delay");
        assert_eq!(ms("250"), Ok(Duration::from_millis(250)));
        assert!(ms("1s").is_err());
        let grace = duration_or_seconds("--grace");
        assert_eq!(grace("30"), Ok(Duration::from_secs(30)));
        let notes = take_notes();
        let expected = "--grace 30 (seconds without a unit) is deprecated; write --grace 30s";
        assert!(notes.iter().any(|n| n == expected), "{notes:?}");
        assert_eq!(grace("1m"), Ok(Duration::from_secs(60)));
        assert!(grace("soon").is_err());
    }
}
