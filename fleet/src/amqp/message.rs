//! Message properties and headers: what every message we publish carries, and reading
//! our headers back.

use std::time::{SystemTime, UNIX_EPOCH};

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::BasicProperties;

/// How many times the job was tried before (the same as the body's `attempt`; a header so
/// that tools can see it without decoding the body).
pub(super) const ATTEMPT: &str = "x-attempt";
/// Why a message was parked.
pub(super) const PARK_REASON: &str = "x-park-reason";
/// When a message was parked (seconds since the Unix epoch).
pub(super) const PARKED_AT: &str = "x-parked-at";

/// Seconds since the Unix epoch.
pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Persistent (delivery mode 2: written to disk, survives a broker restart), JSON,
/// stamped with the time it was published (read back by the history reader).
pub(super) fn json_properties(message_id: &str, headers: FieldTable) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type(ShortString::from("application/json"))
        .with_message_id(ShortString::from(message_id))
        .with_timestamp(now_secs())
        .with_headers(headers)
}

/// Headers of a job message.
pub(super) fn job_headers(attempt: u32) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert(ATTEMPT.into(), AMQPValue::LongLongInt(i64::from(attempt)));
    headers
}

/// Properties of a parked message: the original ones (message id, content type) plus
/// the reason and time, and persistent whatever the original was.
pub(super) fn parked_properties(original: &BasicProperties, reason: &str) -> BasicProperties {
    let mut headers = original.headers().clone().unwrap_or_default();
    headers.insert(
        PARK_REASON.into(),
        AMQPValue::LongString(LongString::from(reason)),
    );
    headers.insert(
        PARKED_AT.into(),
        AMQPValue::LongLongInt(i64::try_from(now_secs()).unwrap_or(i64::MAX)),
    );
    original.clone().with_delivery_mode(2).with_headers(headers)
}

/// A string header (AMQP has two string types; other tools may use either).
pub(super) fn header_str(props: &BasicProperties, name: &str) -> Option<String> {
    match props.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.to_string()),
        _ => None,
    }
}

/// An integer header, whichever integer or timestamp type carries it.
pub(super) fn header_u64(props: &BasicProperties, name: &str) -> Option<u64> {
    let value = props.headers().as_ref()?.inner().get(name)?;
    match value {
        AMQPValue::Timestamp(t) => Some(*t),
        AMQPValue::LongLongInt(i) => u64::try_from(*i).ok(),
        AMQPValue::LongInt(i) => u64::try_from(*i).ok(),
        AMQPValue::LongUInt(i) => Some(u64::from(*i)),
        AMQPValue::ShortInt(i) => u64::try_from(*i).ok(),
        AMQPValue::ShortUInt(i) => Some(u64::from(*i)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn park_headers_are_added_to_the_original_ones_and_read_back() {
        let original = json_properties("id-1", job_headers(2));
        let parked = parked_properties(&original, "gave up");
        assert_eq!(header_str(&parked, PARK_REASON).as_deref(), Some("gave up"));
        assert_eq!(header_u64(&parked, ATTEMPT), Some(2));
        assert!(header_u64(&parked, PARKED_AT).is_some_and(|t| t > 1_600_000_000));
        assert_eq!(
            parked.message_id().as_ref().map(|s| s.as_str()),
            Some("id-1")
        );
        assert_eq!(parked.delivery_mode(), &Some(2));
    }
}
