//! The last events the listener handled, for `GET /events` on the listener (what an
//! operator checks first when a push was not mirrored: did the event come, and what
//! became of it). Repository and tag names and outcomes only: never a token or a URL's
//! query.

use std::collections::VecDeque;

use parking_lot::Mutex;
use serde::Serialize;

/// Events kept.
const KEEP: usize = 100;

/// One event and what became of it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Seen {
    /// When it was handled (RFC 3339, UTC).
    pub at: String,
    /// The sender's name (`unknown` for a path naming none).
    pub sender: String,
    /// `accepted`, `ignored: <reason>`, `rejected: <reason>`, `delete (not done)`,
    /// `published`, `unmapped`, ...
    pub outcome: String,
    /// The image it was about, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// The last [`KEEP`] events, newest last.
#[derive(Default)]
pub(crate) struct Recent {
    seen: Mutex<VecDeque<Seen>>,
}

impl Recent {
    /// Records one event.
    pub(crate) fn add(&self, sender: &str, outcome: impl Into<String>, image: Option<String>) {
        let mut seen = self.seen.lock();
        if seen.len() >= KEEP {
            seen.pop_front();
        }
        seen.push_back(Seen {
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            sender: sender.to_string(),
            outcome: outcome.into(),
            image,
        });
    }

    /// The events kept, oldest first.
    pub(crate) fn list(&self) -> Vec<Seen> {
        self.seen.lock().iter().cloned().collect()
    }
}
