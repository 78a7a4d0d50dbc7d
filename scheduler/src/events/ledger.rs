//! Which destination tags events already published, so that a scheduled run can say how
//! many tags it had to repair that no event announced (a missed notification, a registry
//! without them, a tag changed behind the mirror's back).
//!
//! Per tag, not per run: the publisher notes a tag, with the digest its event's job
//! copies, when the job goes out; a run takes the note off each tag it gets a result for
//! (pushed or up to date), and a tag it pushed without a note of that digest is a repair
//! (a note of another digest means the tag moved again after its event, unannounced).
//! So runs of different groups, and a run with events arriving while it goes, need no
//! shared notion of "since the previous run". Process-wide (like the metrics): one
//! listener per process, and the run report finds it without every run's code passing it
//! along (the report of a test is given its own). Notes older than [`NOTE_FOR`] no longer count (a tag
//! the tag cache kept out of runs for that long is checked again anyway), and the notes
//! are bounded in number.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// How long a note counts.
pub(crate) const NOTE_FOR: Duration = Duration::from_secs(24 * 3600);

/// Notes kept at most (the oldest go first past this).
const MAX_NOTES: usize = 200_000;

/// The notes of the process.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    /// Destination tag -> (the digest its event's job copies, when it went out).
    notes: Mutex<HashMap<String, (String, Instant)>>,
}

static LEDGER: OnceLock<Ledger> = OnceLock::new();

/// Turns the ledger on (the listener starts): from now on runs count repairs.
pub(crate) fn activate() -> &'static Ledger {
    LEDGER.get_or_init(Ledger::default)
}

/// The ledger, when this process listens for events.
pub(crate) fn active() -> Option<&'static Ledger> {
    LEDGER.get()
}

impl Ledger {
    /// An event's job for `destination` (`registry/repository:tag`) at `digest` went out.
    pub(crate) fn note(&self, destination: &str, digest: &str) {
        let mut notes = self.notes.lock();
        if notes.len() >= MAX_NOTES {
            let now = Instant::now();
            notes.retain(|_, (_, at)| now.duration_since(*at) < NOTE_FOR);
            if notes.len() >= MAX_NOTES {
                if let Some(oldest) = notes
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(k, _)| k.clone())
                {
                    notes.remove(&oldest);
                }
            }
        }
        notes.insert(
            destination.to_string(),
            (digest.to_string(), Instant::now()),
        );
    }

    /// A run got a result for `destination` at `digest`: whether an event had announced
    /// that (the note is taken off either way). A result without a digest is matched on
    /// the tag alone.
    pub(crate) fn take(&self, destination: &str, digest: Option<&str>) -> bool {
        self.notes
            .lock()
            .remove(destination)
            .is_some_and(|(noted, at)| at.elapsed() < NOTE_FOR && digest.is_none_or(|d| d == noted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_covers_one_result_of_its_tag_at_its_digest() {
        let l = Ledger::default();
        l.note("dst.io/m/app:1", "sha256:a");
        assert!(l.take("dst.io/m/app:1", Some("sha256:a")));
        assert!(
            !l.take("dst.io/m/app:1", Some("sha256:a")),
            "taken off by the first result"
        );
        assert!(!l.take("dst.io/m/app:2", None));
        // The tag moved again after its event: the run's push of the new digest is a repair.
        l.note("dst.io/m/app:1", "sha256:a");
        assert!(!l.take("dst.io/m/app:1", Some("sha256:b")));
    }
}
