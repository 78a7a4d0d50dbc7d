//! Streaming one blob from a source repository into a destination upload session, with
//! its sha256 and length checked on the way. Nothing is buffered beyond the HTTP chunks in
//! flight and nothing touches disk; a mismatch fails the stream's last chunk, so the
//! registry never commits the blob.

use parking_lot::Mutex;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};

use crate::digest::StreamVerifier;
use crate::manifest::Descriptor;
use crate::name::Repository;
use crate::reference::ImageRef;
use crate::registry::upload::SINGLE_REQUEST_MAX;
use crate::registry::{ByteStream, Registries, RegistryError};

/// Copies one blob. The opening requests (upload session, download) are retried by the
/// client like any request; the streamed PUT cannot be replayed, so when it fails with a
/// retryable error, or its session was lost (and the client found the blob absent), the
/// whole transfer restarts (new download, new session), up to the client's attempt
/// limit. Returns the number of bytes sent.
pub(crate) async fn transfer_blob(
    client: &dyn Registries,
    source: &ImageRef,
    dst_registry: &str,
    dst_repository: &str,
    blob: &Descriptor,
) -> Result<u64, RegistryError> {
    let policy = client.retry_policy();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match transfer_once(client, source, dst_registry, dst_repository, blob).await {
            Ok(n) => return Ok(n),
            // A 413: the client now knows to send this registry chunks; go again at once.
            Err(Failure::Stream(RegistryError::Status { status: 413, .. })) if attempt == 1 => {
                tracing::info!(digest = %blob.digest, "blob refused as too large; sending it in chunks");
            }
            Err(Failure::Stream(e))
                if (e.is_retryable() || e.is_upload_session_lost())
                    && attempt < policy.max_attempts =>
            {
                let delay = policy.delay(attempt, None);
                tracing::warn!(digest = %blob.digest, attempt, error = %e, "blob upload failed; restarting it");
                tokio::time::sleep(delay).await;
            }
            Err(Failure::Stream(e)) | Err(Failure::Opening(e)) => return Err(e),
        }
    }
}

/// Where a transfer failed: opening it (already retried) or streaming (restartable).
enum Failure {
    Opening(RegistryError),
    Stream(RegistryError),
}

async fn transfer_once(
    client: &dyn Registries,
    source: &ImageRef,
    dst_registry: &str,
    dst_repository: &str,
    blob: &Descriptor,
) -> Result<u64, Failure> {
    if blob.size > 0 && blob.size <= SINGLE_REQUEST_MAX {
        return transfer_small(client, source, dst_registry, dst_repository, blob).await;
    }
    let session = client
        .start_upload(&Repository::new(dst_registry, dst_repository))
        .await
        .map_err(Failure::Opening)?;
    let resp = match client.open_blob(&source.repository(), &blob.digest).await {
        Ok(r) => r,
        Err(e) => {
            client
                .cancel_upload(&Repository::new(dst_registry, dst_repository), session)
                .await;
            return Err(Failure::Opening(e));
        }
    };
    let size = if blob.size > 0 {
        blob.size
    } else {
        resp.size.unwrap_or(0)
    };
    let failure: Arc<Mutex<Option<RegistryError>>> = Arc::default();
    let body = verifying_stream(resp.stream, blob, size, source, failure.clone());
    let result = client
        .finish_upload(
            &Repository::new(dst_registry, dst_repository),
            session,
            &blob.digest,
            size,
            Box::pin(body),
        )
        .await;
    // A verification failure or a failed source read explains the aborted upload better
    // than the destination's transport error: it names the side that failed.
    if let Some(e) = failure.lock().take() {
        return Err(Failure::Stream(e));
    }
    result.map(|_| size).map_err(Failure::Stream)
}

/// A small blob: read whole (verified on the way), then sent in one request where the
/// registry takes it (`POST ?digest=`), saving the session round trip.
async fn transfer_small(
    client: &dyn Registries,
    source: &ImageRef,
    dst_registry: &str,
    dst_repository: &str,
    blob: &Descriptor,
) -> Result<u64, Failure> {
    let bytes = read_small(client, source, blob).await?;
    let size = bytes.len() as u64;
    // Retried inside (the bytes are in memory): not restarted as a whole.
    client
        .upload_small(
            &Repository::new(dst_registry, dst_repository),
            &blob.digest,
            bytes,
        )
        .await
        .map_err(Failure::Opening)?;
    Ok(size)
}

/// A small blob read whole from the source, verified.
async fn read_small(
    client: &dyn Registries,
    source: &ImageRef,
    blob: &Descriptor,
) -> Result<bytes::Bytes, Failure> {
    let resp = client
        .open_blob(&source.repository(), &blob.digest)
        .await
        .map_err(Failure::Opening)?;
    let failure: Arc<Mutex<Option<RegistryError>>> = Arc::default();
    let body = verifying_stream(resp.stream, blob, blob.size, source, failure.clone());
    let read: Result<Vec<bytes::Bytes>, std::io::Error> = body.try_collect().await;
    if let Some(e) = failure.lock().take() {
        return Err(Failure::Stream(e));
    }
    let chunks = read.map_err(|e| {
        Failure::Stream(RegistryError::Transport {
            registry: source.registry.clone(),
            method: "GET".into(),
            path: format!("/v2/{}/blobs/{}", source.repository, blob.digest),
            message: e.to_string(),
        })
    })?;
    Ok(bytes::Bytes::from(chunks.concat()))
}

/// Copies a small blob into an upload session already open (the one a mount probe
/// opened), in one PUT. On any failure the session is dropped and the blob goes the
/// usual way ([`transfer_blob`]): a new session, restarted as often as the policy allows.
pub(crate) async fn transfer_into_session(
    client: &dyn Registries,
    source: &ImageRef,
    dst_registry: &str,
    dst_repository: &str,
    blob: &Descriptor,
    session: url::Url,
) -> Result<u64, RegistryError> {
    let bytes = match read_small(client, source, blob).await {
        Ok(b) => b,
        Err(Failure::Opening(e) | Failure::Stream(e)) => {
            client
                .cancel_upload(&Repository::new(dst_registry, dst_repository), session)
                .await;
            return match e.is_retryable() {
                // A read cut short is restarted the usual way.
                true => transfer_blob(client, source, dst_registry, dst_repository, blob).await,
                false => Err(e),
            };
        }
    };
    let size = bytes.len() as u64;
    let body = futures::stream::iter([Ok::<_, std::io::Error>(bytes)]);
    let sent = client
        .finish_upload(
            &Repository::new(dst_registry, dst_repository),
            session,
            &blob.digest,
            size,
            Box::pin(body),
        )
        .await;
    match sent {
        Ok(()) => Ok(size),
        Err(e)
            if e.is_retryable()
                || e.is_upload_session_lost()
                || matches!(e, RegistryError::Status { status: 413, .. }) =>
        {
            tracing::debug!(digest = %blob.digest, error = %e, "upload into the probe's session failed; uploading anew");
            transfer_blob(client, source, dst_registry, dst_repository, blob).await
        }
        Err(e) => Err(e),
    }
}

/// The response body as a stream that hashes every chunk and fails, instead of yielding
/// the last chunk, when the bytes are not the expected blob. The check runs when the
/// announced size is reached (an HTTP client stops reading a body at its Content-Length,
/// so an end-of-stream check alone would come too late) and again at the end of the stream.
/// A mismatch, or a failed read of the source, is also left in `failure` as the error of
/// the transfer.
fn verifying_stream(
    body: ByteStream,
    blob: &Descriptor,
    size: u64,
    source: &ImageRef,
    failure: Arc<Mutex<Option<RegistryError>>>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    let digest = blob.digest.clone();
    let (source_registry, source_path) = (
        source.registry.clone(),
        format!("/v2/{}/blobs/{digest}", source.repository),
    );
    let source = source.to_string();
    // The digest check and the read-error branch below each own a handle on the slot.
    let checked = failure.clone();
    let body = body.map(Some).chain(futures::stream::once(async { None }));
    let mut verifier = Some(StreamVerifier::default());
    let (name, origin) = (digest.clone(), source.clone());
    let mut check = move |v: StreamVerifier| -> Option<std::io::Error> {
        let (len, actual) = (v.len(), v.finish());
        if actual == digest && len == size {
            return None;
        }
        let what = format!("blob {digest} of {source} ({len} of {size} bytes received)");
        let e = RegistryError::DigestMismatch {
            what,
            expected: digest.clone(),
            actual,
        };
        let io = std::io::Error::other(e.to_string());
        *checked.lock() = Some(e);
        Some(io)
    };
    body.filter_map(move |item| {
        let out = match item {
            // HTTP/2 may end a body with an empty DATA frame: nothing to verify or send.
            Some(Ok(chunk)) if chunk.is_empty() => None,
            Some(Ok(chunk)) => match verifier.as_mut() {
                Some(v) => {
                    v.update(&chunk);
                    if size > 0 && v.len() >= size {
                        match verifier.take().and_then(&mut check) {
                            Some(e) => Some(Err(e)),
                            None => Some(Ok(chunk)),
                        }
                    } else {
                        Some(Ok(chunk))
                    }
                }
                // Bytes after the verified end: more than the descriptor's size.
                None => Some(Err(std::io::Error::other(format!(
                    "blob {name} is longer than {size} bytes"
                )))),
            },
            Some(Err(e)) => {
                let message = format!("reading blob {name} from {origin}: {e}");
                let mut slot = failure.lock();
                slot.get_or_insert(RegistryError::Transport {
                    registry: source_registry.clone(),
                    method: "GET".into(),
                    path: source_path.clone(),
                    message: e.to_string(),
                });
                Some(Err(std::io::Error::other(message)))
            }
            None => verifier.take().and_then(&mut check).map(Err),
        };
        futures::future::ready(out)
    })
}
