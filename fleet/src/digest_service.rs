//! Answering source-digest requests (see `mirror_common::source_digests`): a warm hourly
//! run is almost nothing but one HEAD per source image, and answered by every worker and
//! by the asking scheduler itself, they add up with every worker instead of waiting on one
//! process's connections. The broker hands a request to whichever answerer has room (each
//! holds at most its prefetch), so a faster one takes more.
//!
//! Each request is answered in a task of its own, its HEADs [`HEADS_PER_REQUEST`] at a
//! time through the answerer's own client (its credentials, `-a`; per-registry bounds and
//! the fleet's pauses apply as to any request). A source that cannot be resolved here is
//! answered `None`: the asking scheduler resolves it itself and reports its own error, so
//! a worker that sees less than the scheduler costs a HEAD, never a wrong answer.

use std::sync::Arc;

use crate::amqp::AmqpQueue;
use futures::StreamExt;
use mirror_common::reference::ImageRef;
use mirror_common::registry::Registries;
use mirror_common::source_digests::DigestRequest;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// HEADs of one request in flight at once (a worker holding 4 requests has 256 in flight).
pub const HEADS_PER_REQUEST: usize = 64;

/// Answers requests on `queue`'s connection until `stop` (or the connection ends); the
/// requests being answered then are dropped unacknowledged (the broker hands them to
/// another worker, or their asker resolves them itself).
pub async fn serve(
    queue: Arc<AmqpQueue>,
    registries: Arc<dyn Registries>,
    prefetch: u16,
    stop: CancellationToken,
) {
    let mut requests = match queue.digest_requests(prefetch).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot take digest requests on this connection");
            return;
        }
    };
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            next = requests.next() => match next {
                Ok(asked) => {
                    let registries = registries.clone();
                    tasks.spawn(async move {
                        let digests = resolve(registries, &asked.request).await;
                        if let Err(e) = asked.reply(digests).await {
                            tracing::warn!(error = %e, "could not answer a digest request");
                        }
                    });
                }
                Err(e) => {
                    tracing::debug!(error = %e, "digest requests ended");
                    break;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.abort_all();
}

/// One digest or `None` per source of the request, in order.
async fn resolve(registries: Arc<dyn Registries>, request: &DigestRequest) -> Vec<Option<String>> {
    let started = std::time::Instant::now();
    let digests: Vec<Option<String>> = futures::stream::iter(request.sources.clone())
        .map(|source| {
            let registries = registries.clone();
            async move { head(registries.as_ref(), &source).await }
        })
        .buffered(HEADS_PER_REQUEST)
        .collect()
        .await;
    tracing::debug!(
        run_id = %request.run_id,
        sources = request.sources.len(),
        resolved = digests.iter().filter(|d| d.is_some()).count(),
        seconds = started.elapsed().as_secs_f64(),
        "answered a digest request"
    );
    digests
}

/// The digest `source` has now, if this worker can tell.
async fn head(registries: &dyn Registries, source: &str) -> Option<String> {
    let source = ImageRef::parse(source).ok()?;
    if let Some(d) = &source.digest {
        return Some(d.clone());
    }
    registries
        .head_manifest(&source.repository(), &source.reference(), false)
        .await
        .ok()
        .flatten()
}
