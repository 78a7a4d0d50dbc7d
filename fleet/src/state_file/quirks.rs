//! Registry quirks in a state file (a 413 means chunks, a registry that never mounts), so
//! that the next embedded run does not learn them again with a failed request. Kept a week,
//! as in Redis: registries change their limits rarely, and a stale entry costs one request.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mirror_common::registry::{Quirks, QuirksStore};
use mirror_common::state::tag_age::now_ms;
use rusqlite::{params, OptionalExtension};

use super::db::Db;

/// How long a lesson is kept.
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// The state file's [`QuirksStore`].
pub(crate) struct FileQuirks {
    db: Arc<Db>,
}

impl FileQuirks {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        FileQuirks { db }
    }
}

#[async_trait]
impl QuirksStore for FileQuirks {
    async fn load(&self, registry: &str) -> Option<Quirks> {
        let since = now_ms().saturating_sub(KEEP.as_millis() as u64) as i64;
        let text: String = self
            .db
            .with("read quirks", |c| {
                c.query_row(
                    "SELECT quirks FROM quirks WHERE registry = ?1 AND saved_ms >= ?2",
                    params![registry, since],
                    |r| r.get(0),
                )
                .optional()
            })
            .flatten()?;
        serde_json::from_str(&text).ok()
    }

    async fn save(&self, registry: &str, quirks: &Quirks) {
        let Ok(text) = serde_json::to_string(quirks) else {
            return;
        };
        self.db.with("save quirks", |c| {
            c.execute(
                "INSERT OR REPLACE INTO quirks (registry, quirks, saved_ms) VALUES (?1, ?2, ?3)",
                params![registry, text, now_ms() as i64],
            )
        });
    }
}
