//! Streaming one blob from a source repository into a destination upload session, with
//! its sha256 and length checked on the way. Nothing is buffered beyond the HTTP chunks in
//! flight and nothing touches disk; a mismatch fails the stream's last chunk, so the
//! registry never commits the blob.

use std::sync::{Arc, Mutex};

use futures::StreamExt;

use crate::digest::StreamVerifier;
use crate::manifest::Descriptor;
use crate::reference::ImageRef;
use crate::registry::{RegistryClient, RegistryError};

/// Copies one blob; retried as a whole (new download, new session) on retryable errors.
/// Returns the number of bytes sent.
pub(crate) async fn transfer_blob(
    client: &RegistryClient,
    source: &ImageRef,
    dst_registry: &str,
    dst_repository: &str,
    blob: &Descriptor,
) -> Result<u64, RegistryError> {
    let policy = client.options().retry.clone();
    let mut attempt = 0;
    loop {
        attempt += 1;
        match transfer_once(client, source, dst_registry, dst_repository, blob).await {
            Ok(n) => return Ok(n),
            Err(e) if e.is_retryable() && attempt < policy.max_attempts => {
                let delay = policy.delay(attempt, None);
                tracing::warn!(digest = %blob.digest, attempt, error = %e, "blob transfer failed; restarting it");
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn transfer_once(
    client: &RegistryClient,
    source: &ImageRef,
    dst_registry: &str,
    dst_repository: &str,
    blob: &Descriptor,
) -> Result<u64, RegistryError> {
    let session = client.start_upload(dst_registry, dst_repository).await?;
    let resp = match client.open_blob(&source.registry, &source.repository, &blob.digest).await {
        Ok(r) => r,
        Err(e) => {
            client.cancel_upload(dst_registry, dst_repository, session).await;
            return Err(e);
        }
    };
    let size = if blob.size > 0 { blob.size } else { resp.content_length().unwrap_or(0) };
    let mismatch: Arc<Mutex<Option<RegistryError>>> = Arc::default();
    let body = verifying_stream(resp, blob.digest.clone(), size, source.to_string(), mismatch.clone());
    let result = client.finish_upload(dst_registry, dst_repository, session, &blob.digest, size, body).await;
    // A verification failure explains the aborted upload better than the transport error.
    if let Some(e) = mismatch.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    result.map(|_| size)
}

/// The response body as a stream that hashes every chunk and, at its end, fails instead
/// of finishing when the bytes are not the expected blob.
fn verifying_stream(
    resp: reqwest::Response,
    digest: String,
    size: u64,
    source: String,
    mismatch: Arc<Mutex<Option<RegistryError>>>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, std::io::Error>> + Send + 'static {
    let state = Some(StreamVerifier::default());
    let body = resp.bytes_stream().map(Some).chain(futures::stream::once(async { None }));
    let stream = body.scan(state, move |state, item| {
        let out = match item {
            Some(Ok(chunk)) => {
                if let Some(v) = state.as_mut() {
                    v.update(&chunk);
                }
                Some(Ok(chunk))
            }
            Some(Err(e)) => Some(Err(std::io::Error::other(format!("reading blob {digest} from {source}: {e}")))),
            None => {
                let v = state.take().unwrap_or_default();
                let (len, actual) = (v.len(), v.finish());
                if actual == digest && len == size {
                    None
                } else {
                    let what = format!("blob {digest} of {source} ({len} of {size} bytes received)");
                    let e = RegistryError::DigestMismatch { what, expected: digest.clone(), actual };
                    let msg = e.to_string();
                    *mismatch.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    Some(Err(std::io::Error::other(msg)))
                }
            }
        };
        futures::future::ready(out.map(Some))
    });
    stream.filter_map(futures::future::ready)
}
