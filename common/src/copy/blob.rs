//! Getting one blob into a destination repository the cheapest way the spec allows:
//! already there (index, then HEAD) -> skip; in another repository of the same registry ->
//! cross-repository mount; else stream it from the source, once per registry (the upload
//! lock), so concurrent copies needing the same blob mount it after the first upload.
//! Small blobs at a registry that takes single-request uploads as sessions skip the HEAD:
//! a mount from their own repository says "there" or opens the session.

use crate::index::BlobIndex;
use crate::manifest::Descriptor;
use crate::name::Repository;
use crate::reference::ImageRef;
use crate::registry::{MountOutcome, Registries, RegistryError};
use crate::report::Counters;

use super::target::Target;
use super::transfer::{transfer_blob, transfer_into_session};
use crate::registry::upload::SINGLE_REQUEST_MAX;

/// How many repositories a blob is tried to be mounted from before uploading it.
const MOUNT_CANDIDATES: usize = 3;

/// What the engine would do (dry run) or did with one blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlobPlan {
    /// Already in the destination repository.
    Present,
    /// Can be mounted from these repositories of the destination registry.
    Mount(Vec<String>),
    /// Must be uploaded.
    Upload,
}

/// Decides what a blob needs without changing anything at the destination.
pub(crate) async fn plan_blob(
    client: &dyn Registries,
    index: &dyn BlobIndex,
    source: &ImageRef,
    target: &Target<'_>,
    blob: &Descriptor,
) -> Result<BlobPlan, RegistryError> {
    let known = index.repositories(target.registry, &blob.digest).await;
    if known.iter().any(|r| r == target.repository) {
        return Ok(BlobPlan::Present);
    }
    if client
        .head_blob(
            &Repository::new(target.registry, target.repository),
            &blob.digest,
            true,
        )
        .await?
        .is_some()
    {
        index
            .record(target.registry, target.repository, &blob.digest)
            .await;
        return Ok(BlobPlan::Present);
    }
    if !client.mounts(target.registry).await {
        return Ok(BlobPlan::Upload);
    }
    Ok(mount_candidates(known, source, target))
}

/// What the index's repositories for a blob make of it: present in the target, or
/// mountable from some of them (or the source's), else to upload.
fn placed(known: Vec<String>, source: &ImageRef, target: &Target<'_>) -> BlobPlan {
    if known.iter().any(|r| r == target.repository) {
        BlobPlan::Present
    } else {
        mount_candidates(known, source, target)
    }
}

fn mount_candidates(known: Vec<String>, source: &ImageRef, target: &Target<'_>) -> BlobPlan {
    let mut from: Vec<String> = known
        .into_iter()
        .filter(|r| r != target.repository)
        .collect();
    // A source in the same registry is a mount candidate the index need not know about.
    if source.registry == target.registry
        && source.repository != target.repository
        && !from.contains(&source.repository)
    {
        from.push(source.repository.clone());
    }
    from.truncate(MOUNT_CANDIDATES);
    if from.is_empty() {
        BlobPlan::Upload
    } else {
        BlobPlan::Mount(from)
    }
}

/// Makes sure the destination repository has the blob, counting what it took.
pub(crate) async fn ensure_blob(
    client: &dyn Registries,
    index: &dyn BlobIndex,
    counters: &Counters,
    source: &ImageRef,
    target: &Target<'_>,
    blob: &Descriptor,
) -> Result<(), RegistryError> {
    // A small blob at a registry that takes single-request uploads as sessions is not
    // HEADed: what the index does not place is probed by a mount from its own repository
    // (one request if present; if not, the session its one PUT goes to: two requests
    // where a HEAD, a session and a PUT were three).
    let small = blob.size > 0 && blob.size <= SINGLE_REQUEST_MAX;
    let probe = small && client.probes_small_blobs(target.registry).await;
    let plan = match probe {
        true => placed(
            index.repositories(target.registry, &blob.digest).await,
            source,
            target,
        ),
        false => plan_blob(client, index, source, target, blob).await?,
    };
    if finish_without_upload(client, index, counters, target, blob, plan).await? {
        return Ok(());
    }
    let lock = index.lock_upload(target.registry, &blob.digest).await;
    if lock.waited {
        // Another uploader of this blob went first and has most likely made it mountable:
        // look again while holding the lock, so that waiters do not take turns uploading.
        let known = index.repositories(target.registry, &blob.digest).await;
        let plan = match placed(known, source, target) {
            BlobPlan::Mount(_) if !client.mounts(target.registry).await => BlobPlan::Upload,
            plan => plan,
        };
        if finish_without_upload(client, index, counters, target, blob, plan).await? {
            return Ok(());
        }
    }
    let (registry, repository) = (target.registry, target.repository);
    let sent = match probe {
        false => Some(transfer_blob(client, source, registry, repository, blob).await?),
        true => match client
            .mount_or_start(&Repository::new(registry, repository), &blob.digest)
            .await?
        {
            MountOutcome::Mounted => None,
            MountOutcome::Declined(session) => Some(
                transfer_into_session(client, source, registry, repository, blob, session).await?,
            ),
        },
    };
    index.record(registry, repository, &blob.digest).await;
    match sent {
        Some(bytes) => {
            Counters::bump(&counters.uploaded, 1);
            Counters::bump(&counters.bytes_uploaded, bytes);
        }
        None => Counters::bump(&counters.skipped, 1),
    }
    drop(lock);
    Ok(())
}

/// Skips a present blob or mounts a mountable one; false when it still needs an upload.
async fn finish_without_upload(
    client: &dyn Registries,
    index: &dyn BlobIndex,
    counters: &Counters,
    target: &Target<'_>,
    blob: &Descriptor,
    plan: BlobPlan,
) -> Result<bool, RegistryError> {
    match plan {
        BlobPlan::Present => {
            Counters::bump(&counters.skipped, 1);
            Ok(true)
        }
        BlobPlan::Mount(from) => {
            let mounted = try_mount(client, index, target, blob, &from).await?;
            if mounted {
                Counters::bump(&counters.mounted, 1);
                Counters::bump(&counters.bytes_mounted, blob.size);
            }
            Ok(mounted)
        }
        BlobPlan::Upload => Ok(false),
    }
}

/// Tries each candidate; a declined mount removes the stale index entry.
async fn try_mount(
    client: &dyn Registries,
    index: &dyn BlobIndex,
    target: &Target<'_>,
    blob: &Descriptor,
    from: &[String],
) -> Result<bool, RegistryError> {
    for repo in from {
        match client
            .mount_blob(
                &Repository::new(target.registry, target.repository),
                &blob.digest,
                repo,
            )
            .await?
        {
            MountOutcome::Mounted => {
                index
                    .record(target.registry, target.repository, &blob.digest)
                    .await;
                return Ok(true);
            }
            MountOutcome::Declined(session) => {
                tracing::debug!(registry = target.registry, digest = %blob.digest, from = %repo, "mount declined");
                index.forget(target.registry, repo, &blob.digest).await;
                client
                    .cancel_upload(
                        &Repository::new(target.registry, target.repository),
                        session,
                    )
                    .await;
            }
        }
    }
    Ok(false)
}

impl Counters {
    /// Counts what a dry run would do with one blob.
    pub(crate) fn count_plan(&self, plan: &BlobPlan, size: u64) {
        match plan {
            BlobPlan::Present => Counters::bump(&self.skipped, 1),
            BlobPlan::Mount(_) => {
                Counters::bump(&self.mounted, 1);
                Counters::bump(&self.bytes_mounted, size);
            }
            BlobPlan::Upload => {
                Counters::bump(&self.uploaded, 1);
                Counters::bump(&self.bytes_uploaded, size);
            }
        }
    }
}
