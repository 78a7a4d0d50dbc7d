//! Object storage behind a registry's blob redirects, as S3, GCS or a CDN serve them: a
//! plain HTTP server on loopback that answers `GET /<repo>/blobs/<digest>?sig=N` (the
//! address [`Shape::RedirectBlobs`](crate::Shape) hands out) with the blob's bytes.
//!
//! What is real: the bytes, read from the real registry behind the proxy. What is shaped:
//! the rules of signed URLs. A request carrying `Authorization` is refused (`400`, as S3
//! refuses a second authentication mechanism): the registry's credentials must not travel
//! here. A signature is good for one download (`403` once used: it "expired"), so a client
//! that retries a failed download must go back to the registry for a new URL. And the first
//! `cut` downloads of 64 KiB or more stop half way (the connection drops), to make a client
//! retry.

use parking_lot::Mutex;
use std::convert::Infallible;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::registry::Registry;

/// One request the store answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreRequest {
    /// Path and query.
    pub path: String,
    /// Whether it carried an `Authorization` header.
    pub authorization: bool,
    /// The status answered.
    pub status: u16,
}

struct State {
    registry_url: String,
    registry_auth: Option<(String, String)>,
    used: Mutex<Vec<String>>,
    seen: Mutex<Vec<StoreRequest>>,
    cut: Mutex<usize>,
}

/// A running object store on `127.0.0.1:<free port>`; dropping it stops it.
pub struct ObjectStore {
    state: Arc<State>,
    port: u16,
    accept: JoinHandle<()>,
}

/// Only downloads of at least this many bytes are cut (layers, not configs).
const CUT_OVER: usize = 64 * 1024;

type StoreBody = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

impl ObjectStore {
    /// Serves the blobs of `registry`; the first `cut` downloads of 64 KiB or more drop
    /// half way.
    pub async fn start(registry: &Registry, cut: usize) -> Result<ObjectStore> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the object store's port")?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(State {
            registry_url: registry.url(),
            registry_auth: registry
                .credentials()
                .map(|(u, p)| (u.to_string(), p.to_string())),
            used: Mutex::default(),
            seen: Mutex::default(),
            cut: Mutex::new(cut),
        });
        let s = state.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let s = s.clone();
                        async move { Ok::<_, Infallible>(serve(&s, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(ObjectStore {
            state,
            port,
            accept,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<StoreRequest> {
        self.state.seen.lock().clone()
    }
}

impl Drop for ObjectStore {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(state: &State, req: Request<Incoming>) -> Response<StoreBody> {
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(String::new, |p| p.as_str().to_string());
    let authorization = req.headers().contains_key(hyper::header::AUTHORIZATION);
    let (status, body) = answer(state, &path, authorization).await;
    state.seen.lock().push(StoreRequest {
        path,
        authorization,
        status: status.as_u16(),
    });
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp
}

async fn answer(state: &State, path: &str, authorization: bool) -> (StatusCode, StoreBody) {
    let text = |s: &'static str| {
        Full::new(Bytes::from_static(s.as_bytes()))
            .map_err(|never| match never {})
            .boxed()
    };
    if authorization {
        return (
            StatusCode::BAD_REQUEST,
            text("Only one auth mechanism allowed"),
        );
    }
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    {
        let mut used = state.used.lock();
        if used.iter().any(|q| q == query) {
            return (StatusCode::FORBIDDEN, text("Request has expired"));
        }
        used.push(query.to_string());
    }
    let Some((repo, digest)) = route.trim_start_matches('/').rsplit_once('/') else {
        return (StatusCode::NOT_FOUND, text("no such object"));
    };
    let mut get =
        reqwest::Client::new().get(format!("{}/v2/{repo}/blobs/{digest}", state.registry_url));
    if let Some((user, pass)) = &state.registry_auth {
        get = get.basic_auth(user, Some(pass));
    }
    let bytes = match get.send().await {
        Ok(r) if r.status().is_success() => r.bytes().await.unwrap_or_default(),
        _ => return (StatusCode::NOT_FOUND, text("no such object")),
    };
    let cut = bytes.len() >= CUT_OVER && {
        let mut left = state.cut.lock();
        let cut = *left > 0;
        *left = left.saturating_sub(1);
        cut
    };
    if !cut {
        return (
            StatusCode::OK,
            Full::new(bytes).map_err(|never| match never {}).boxed(),
        );
    }
    let half = bytes.slice(..bytes.len() / 2);
    let frames = futures::stream::iter(vec![
        Ok(Frame::data(half)),
        Err(std::io::Error::other(
            "connection dropped by the object store",
        )),
    ]);
    (StatusCode::OK, StreamBody::new(frames).boxed())
}
