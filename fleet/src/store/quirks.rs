//! What workers learnt about registries (a 413 means chunks, a registry that never mounts,
//! whether `POST ?digest=` completes an upload), shared so that one worker's lesson spares
//! every other worker the same failed request: `<p>:{<registry>}:quirks`, JSON, kept a
//! week (registries change their limits rarely; a stale entry costs one request).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mirror_common::registry::{Quirks, QuirksStore};

use super::conn::{millis, Shared};

/// How long a lesson is kept.
const KEEP: Duration = Duration::from_secs(7 * 24 * 3600);

/// The fleet's [`QuirksStore`].
#[derive(Clone)]
pub struct RedisQuirks {
    shared: Arc<Shared>,
}

impl RedisQuirks {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        RedisQuirks { shared }
    }
}

#[async_trait]
impl QuirksStore for RedisQuirks {
    async fn load(&self, registry: &str) -> Option<Quirks> {
        let key = self.shared.keys.quirks(registry);
        let text = self
            .shared
            .call("GET quirks", |mut c| async move {
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<String>>(&mut c)
                    .await
            })
            .await
            .flatten()?;
        serde_json::from_str(&text).ok()
    }

    async fn save(&self, registry: &str, quirks: &Quirks) {
        let key = self.shared.keys.quirks(registry);
        let Ok(text) = serde_json::to_string(quirks) else {
            return;
        };
        let _: Option<()> = self
            .shared
            .call("SET quirks", |mut c| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&text)
                    .arg("PX")
                    .arg(millis(KEEP))
                    .query_async(&mut c)
                    .await
            })
            .await;
    }
}
