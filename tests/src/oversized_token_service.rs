//! A token service that answers every request with one enormous token: `{"token":"aaa…"}`
//! of a chosen size, streamed in 64 KiB chunks without `Content-Length` (so a client cannot
//! refuse it from the head alone), and counts the bytes it got to send before the client
//! hung up.
//!
//! Why: a registry's token service is trusted input for nothing. A client without a bound
//! reads such an answer whole and sends it back as the `Authorization` header of every
//! request; a bounded one stops reading at its limit, which the count shows (what the
//! kernel's socket buffers took is all that is sent beyond the limit).
//!
//! Real: the HTTP server on loopback, the streaming. Shaped: the answer, which no real
//! token service gives.

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Size of each chunk sent.
const CHUNK: usize = 64 * 1024;

/// A running oversized token service on `127.0.0.1:<free port>`; stops when dropped.
pub struct OversizedTokenService {
    port: u16,
    sent: Arc<AtomicU64>,
    accept: JoinHandle<()>,
}

impl OversizedTokenService {
    /// Starts a service whose token is `token_bytes` long.
    pub async fn start(token_bytes: u64) -> Result<OversizedTokenService> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the oversized token service's port")?;
        let port = listener.local_addr().context("its port")?.port();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| {
                        let counter = counter.clone();
                        async move { Ok::<_, Infallible>(answer(token_bytes, counter)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(OversizedTokenService { port, sent, accept })
    }

    /// The realm to put in a registry's challenge: `http://127.0.0.1:PORT/token`.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Bytes of answers handed to the connection so far (over every request).
    pub fn bytes_sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }
}

impl Drop for OversizedTokenService {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

type Chunk = Result<Frame<Bytes>, Infallible>;

/// `{"token":"` + `token_bytes` of `a` + `"}`, chunk by chunk, each counted once the
/// connection takes it.
fn answer(
    token_bytes: u64,
    sent: Arc<AtomicU64>,
) -> Response<StreamBody<futures::stream::BoxStream<'static, Chunk>>> {
    use futures::StreamExt;
    let head = futures::stream::once(async { Bytes::from_static(b"{\"token\":\"") });
    let chunks = (token_bytes as usize).div_ceil(CHUNK);
    let body = futures::stream::iter(0..chunks).map(move |i| {
        let len = CHUNK.min(token_bytes as usize - i * CHUNK);
        Bytes::from(vec![b'a'; len])
    });
    let tail = futures::stream::once(async { Bytes::from_static(b"\"}") });
    let frames = head
        .chain(body)
        .chain(tail)
        .map(move |b| {
            sent.fetch_add(b.len() as u64, Ordering::SeqCst);
            Ok(Frame::data(b))
        })
        .boxed();
    let mut resp = Response::new(StreamBody::new(frames));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}
