//! Chunked uploads: `PATCH` chunks with `Content-Range`, then an empty `PUT ?digest=`, for
//! registries and proxies that refuse large bodies (see `upload.rs` for when). Only the
//! current chunk is held in memory; one that fails on the way is resumed from the offset
//! the registry reports (`GET` on the session), and one refused as too large (413) goes
//! in two halves, with smaller chunks from then on.

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, RANGE};
use reqwest::{Method, Response, StatusCode};

use super::blobs::location;
use super::client::RegistryClient;
use super::error::RegistryError;
use super::failure::{status_error, transport_error};
use super::quirks::Quirks;
use crate::name::Repository;

/// Tries of one chunk (the first send and its resumptions).
const CHUNK_TRIES: u32 = 4;

impl RegistryClient {
    /// `PATCH` chunks of at most `chunk` bytes, each resumed from the registry's offset
    /// when it fails on the way, then the closing `PUT ?digest=`.
    pub(super) async fn upload_chunked<S>(
        &self,
        repository: &Repository,
        session: url::Url,
        digest: &str,
        mut body: S,
        chunk: u64,
    ) -> Result<(), RegistryError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
    {
        let chunk = usize::try_from(chunk.max(1)).unwrap_or(usize::MAX);
        let mut url = session;
        let mut offset: u64 = 0;
        let mut pending = BytesMut::new();
        let mut ended = false;
        while !ended || !pending.is_empty() {
            while !ended && pending.len() < chunk {
                match body.next().await {
                    Some(Ok(bytes)) => pending.extend_from_slice(&bytes),
                    Some(Err(e)) => {
                        return Err(RegistryError::Transport {
                            registry: repository.registry().to_string(),
                            method: "PATCH".into(),
                            path: url.path().to_string(),
                            message: e.to_string(),
                        })
                    }
                    None => ended = true,
                }
            }
            let take = pending.len().min(chunk);
            if take == 0 {
                break;
            }
            let piece = pending.split_to(take).freeze();
            url = self
                .send_chunk(repository, url, offset, piece.clone())
                .await?;
            offset += piece.len() as u64;
        }
        // The closing PUT carries no bytes: they are all in the session.
        self.put_bytes(repository, url, digest, Bytes::new(), offset)
            .await
    }

    /// Sends `piece` (bytes `offset..`) and returns the session's next location. A failed
    /// send asks the registry how much it has (`GET` on the session: `Range: 0-N`) and
    /// resends only the rest of the piece.
    async fn send_chunk(
        &self,
        repository: &Repository,
        mut url: url::Url,
        offset: u64,
        piece: Bytes,
    ) -> Result<url::Url, RegistryError> {
        let registry = repository.registry();
        let mut from = 0usize;
        let mut tries = 0;
        loop {
            tries += 1;
            let end = offset + piece.len() as u64 - 1;
            let sent = self
                .patch(
                    repository,
                    &url,
                    offset + from as u64,
                    end,
                    piece.slice(from..),
                )
                .await?;
            let failure = match sent {
                Ok(resp) if resp.status() == StatusCode::ACCEPTED => {
                    return location(registry, &url, resp.headers())
                }
                Ok(resp) if resp.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return self
                        .send_halves(repository, url, offset, piece, from, resp)
                        .await;
                }
                Ok(resp)
                    if resp.status().is_server_error()
                        || resp.status() == StatusCode::RANGE_NOT_SATISFIABLE =>
                {
                    status_error(registry, &Method::PATCH, &url, resp).await
                }
                Ok(resp) => return Err(status_error(registry, &Method::PATCH, &url, resp).await),
                Err(e) => transport_error(registry, &Method::PATCH, &url, e),
            };
            if tries >= CHUNK_TRIES {
                return Err(failure);
            }
            let (next, have) = self.upload_offset(repository, &url).await?;
            if have < offset || have > offset + piece.len() as u64 {
                // The registry lost more than this chunk: only a new transfer can help.
                return Err(failure);
            }
            tracing::warn!(registry, error = %failure, resume_at = have, "chunk upload failed; resuming from the registry's offset");
            url = next;
            from = usize::try_from(have - offset).unwrap_or(0);
            if from == piece.len() {
                return Ok(url);
            }
        }
    }

    /// One `PATCH` of `part` as bytes `start-end` of the blob, counted.
    async fn patch(
        &self,
        repository: &Repository,
        url: &url::Url,
        start: u64,
        end: u64,
        part: Bytes,
    ) -> Result<Result<Response, reqwest::Error>, RegistryError> {
        let registry = repository.registry();
        let req = self
            .http(registry, url)
            .patch(url.clone())
            .header(CONTENT_TYPE, "application/octet-stream")
            .header(CONTENT_LENGTH, part.len())
            .header("Content-Range", format!("{start}-{end}"))
            .timeout(self.options().timeouts.idle)
            .body(part);
        let req = self.session_request(repository, url, req).await?;
        let sent = req.send().await;
        self.observe(registry, sent.as_ref().ok().map(|r| r.status().as_u16()));
        Ok(sent)
    }

    /// After a 413 for the part of `piece` from `from`: smaller chunks from now on (half
    /// of that part), and this piece in two, unless even that is below the smallest chunk.
    async fn send_halves(
        &self,
        repository: &Repository,
        url: url::Url,
        offset: u64,
        piece: Bytes,
        from: usize,
        refused: Response,
    ) -> Result<url::Url, RegistryError> {
        let registry = repository.registry();
        let part_len = piece.len() - from;
        let half = (part_len as u64 / 2).max(1);
        if half < Quirks::MIN_CHUNK {
            let e = status_error(registry, &Method::PATCH, &url, refused).await;
            return Err(RegistryError::Config(format!(
                "{e}: even a chunk of {part_len} bytes is too large for {registry}; set --chunk-size {registry}=SIZE"
            )));
        }
        self.learn(registry, |q| q.chunk_size = Some(half)).await;
        let mid = from + half as usize;
        let first = piece.slice(..mid);
        let url = Box::pin(self.send_chunk(repository, url, offset, first)).await?;
        let second = piece.slice(mid..);
        Box::pin(self.send_chunk(repository, url, offset + mid as u64, second)).await
    }

    /// How many bytes an upload session holds (`GET`: `Range: 0-<last>`), with its
    /// current location.
    async fn upload_offset(
        &self,
        repository: &Repository,
        url: &url::Url,
    ) -> Result<(url::Url, u64), RegistryError> {
        let registry = repository.registry();
        let req = self
            .http(registry, url)
            .get(url.clone())
            .timeout(self.options().timeouts.request);
        let req = self.session_request(repository, url, req).await?;
        let resp = req
            .send()
            .await
            .map_err(|e| transport_error(registry, &Method::GET, url, e))?;
        self.observe(registry, Some(resp.status().as_u16()));
        if resp.status() != StatusCode::NO_CONTENT && !resp.status().is_success() {
            return Err(status_error(registry, &Method::GET, url, resp).await);
        }
        let have = resp
            .headers()
            .get(RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| r.rsplit('-').next())
            .and_then(|last| last.trim().parse::<u64>().ok())
            .map_or(0, |last| last + 1);
        let next = if resp.headers().contains_key(reqwest::header::LOCATION) {
            location(registry, url, resp.headers())?
        } else {
            url.clone()
        };
        Ok((next, have))
    }
}
