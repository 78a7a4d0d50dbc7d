//! All the blobs of one copy into a destination repository: gotten there (`blob.rs` for
//! each) at most [`blob_concurrency`](super::options::CopyOptions::blob_concurrency) at
//! once and within the destination registry's limit, or, in a dry run, planned and counted.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use tokio::sync::Semaphore;

use super::blob::{ensure_blob, plan_blob, BlobPlan};
use super::dry_run::Earlier;
use super::engine::CopyEngine;
use super::resolve::Resolved;
use super::target::Target;
use crate::manifest::Descriptor;
use crate::reference::ImageRef;
use crate::registry::RegistryError;
use crate::report::Counters;

impl CopyEngine {
    /// Gets every blob into the destination repository (skip, mount or upload), at most
    /// [`blob_concurrency`](super::options::CopyOptions::blob_concurrency) at once and
    /// within the registry's limit.
    pub(super) async fn ensure_blobs<'b>(
        &self,
        source: &ImageRef,
        target: &Target<'_>,
        blobs: impl Iterator<Item = &'b Descriptor>,
        counters: &Counters,
    ) -> Result<(), RegistryError> {
        let limit = self.limit(target.registry);
        let copies: Vec<_> = blobs
            .map(|b| {
                let limit = limit.clone();
                async move {
                    let _permit = limit
                        .acquire_owned()
                        .await
                        .map_err(|_| RegistryError::Config("engine shut down".into()))?;
                    ensure_blob(
                        self.registries.as_ref(),
                        self.index.as_ref(),
                        counters,
                        source,
                        target,
                        b,
                    )
                    .await
                }
            })
            .collect();
        futures::stream::iter(copies)
            .buffer_unordered(self.opts.blob_concurrency.max(1))
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Dry run: what every blob would need, counted as if it were done.
    pub(super) async fn plan_blobs(
        &self,
        source: &ImageRef,
        resolved: &Resolved,
        target: &Target<'_>,
        counters: &Counters,
    ) -> Result<(), RegistryError> {
        for b in &resolved.blobs {
            self.plan_one(source, target, b, counters).await?;
        }
        Counters::bump(&counters.manifests, (resolved.children.len() + 1) as u64);
        self.plan_referrers(source, &resolved.referrers, target, counters)
            .await
    }

    /// The blob operations a destination registry may have in flight, over all copies.
    fn limit(&self, registry: &str) -> Arc<Semaphore> {
        self.limits
            .lock()
            .entry(registry.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.opts.max_per_registry.max(1))))
            .clone()
    }

    /// Dry run: counts what one blob would need in the target, given what the run's other
    /// plans already count (see `dry_run.rs`).
    pub(super) async fn plan_one(
        &self,
        source: &ImageRef,
        target: &Target<'_>,
        blob: &Descriptor,
        counters: &Counters,
    ) -> Result<(), RegistryError> {
        let earlier = self.planned.claim(self.run, target, &blob.digest);
        let plan = match earlier {
            Earlier::HereAlready => BlobPlan::Present,
            earlier => {
                let plan = plan_blob(
                    self.registries.as_ref(),
                    self.index.as_ref(),
                    source,
                    target,
                    blob,
                )
                .await?;
                match (plan, earlier) {
                    (BlobPlan::Upload, Earlier::Elsewhere(from))
                        if self.registries.mounts(target.registry).await =>
                    {
                        BlobPlan::Mount(from)
                    }
                    (plan, _) => plan,
                }
            }
        };
        counters.count_plan(&plan, blob.size);
        Ok(())
    }
}
