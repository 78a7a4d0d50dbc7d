//! The fleet's [`StateStore`]: the tag cache, blob index and quirks in Redis, read by the
//! scheduler before publishing and written by the workers after each job.

use std::sync::Arc;

use async_trait::async_trait;
use mirror_common::index::BlobIndex;
use mirror_common::job::JobResult;
use mirror_common::reference::ImageRef;
use mirror_common::registry::SharedQuirks;
use mirror_common::state::{StateStore, TagKey};

use super::Redis;

#[async_trait]
impl StateStore for Redis {
    async fn dest_digests(&self, tags: &[TagKey<'_>]) -> Vec<Option<String>> {
        self.tags().dest_digests(tags).await
    }

    async fn record_result(&self, destinations: &[ImageRef], result: &JobResult) {
        Redis::record_result(self, destinations, result).await;
    }

    fn blob_index(&self) -> Arc<dyn BlobIndex> {
        Arc::new(self.index())
    }

    fn quirks(&self) -> SharedQuirks {
        SharedQuirks(Arc::new(Redis::quirks(self)))
    }
}
