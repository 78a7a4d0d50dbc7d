//! Registry behaviours that docker-registry (distribution 2.8) lacks and real registries
//! have, shaped by the test [`Proxy`](crate::Proxy) in front of the real registry. Each
//! says what is real and what the proxy changes:
//!
//! - [`Shape::BodyLimit`]: requests with a body over the limit get `413` without reaching
//!   the registry, as a proxy with a body size limit (Cloudflare: 100 MB) answers.
//! - [`Shape::DeclineMounts`]: a mount request reaches the registry without its `mount` and
//!   `from` parameters, so the real registry opens a real upload session (`202`), as ECR
//!   answers every mount.
//! - [`Shape::CompleteSinglePost`]: `POST .../blobs/uploads/?digest=` with the blob as body
//!   is completed in that one request (`201`), as the distribution spec allows and some
//!   registries do: the proxy opens a session at the registry and `PUT`s the body there.
//! - [`Shape::RedirectBlobs`]: blob `GET`s are answered with `307` to object storage (an
//!   [`ObjectStore`](crate::object_store::ObjectStore) serving the registry's own bytes),
//!   with a fresh signature each time, as quay.io, Docker Hub, ECR and GAR do.
//! - [`Shape::PullQuota`]: manifest `GET`s are counted against a quota and answered with
//!   `ratelimit-limit` / `ratelimit-remaining` headers, and with `429` once it is used up,
//!   as Docker Hub does for anonymous and free accounts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hyper::header::HeaderMap;

use crate::proxy::Answer;

/// A behaviour shaped in front of the registry; see the module documentation.
#[derive(Debug, Clone)]
pub enum Shape {
    /// Bodies over this many bytes (by `Content-Length`) get `413`.
    BodyLimit(u64),
    /// Mounts are declined (the registry opens a session instead).
    DeclineMounts,
    /// `POST ?digest=` with a body completes the upload (`201`).
    CompleteSinglePost,
    /// Manifest GETs are counted against a pull quota of this many.
    PullQuota {
        /// Pulls left.
        left: Arc<std::sync::atomic::AtomicI64>,
    },
    /// Blob downloads are redirected to this object store base URL.
    RedirectBlobs {
        /// `http://127.0.0.1:PORT` of the object store.
        base: String,
        /// Signatures handed out so far (each redirect gets the next).
        signed: Arc<AtomicU64>,
    },
}

impl Shape {
    /// A pull quota of `pulls` manifest GETs.
    pub fn pull_quota(pulls: i64) -> Shape {
        Shape::PullQuota {
            left: Arc::new(std::sync::atomic::AtomicI64::new(pulls)),
        }
    }

    /// Blob downloads redirected to the object store at `base`.
    pub fn redirect_blobs(base: impl Into<String>) -> Shape {
        Shape::RedirectBlobs {
            base: base.into(),
            signed: Arc::default(),
        }
    }
}

/// What the proxy does with one request under the shapes in force.
pub(crate) enum Decision {
    /// Forwarded unchanged.
    Pass,
    /// Forwarded with this path and query instead.
    Rewrite(String),
    /// Answered by the proxy (the body is read and dropped first).
    Answer(Answer),
    /// A single-request upload the proxy completes itself.
    SinglePost,
}

/// The first shape that applies to the request decides.
pub(crate) fn decide(shapes: &[Shape], method: &str, path: &str, headers: &HeaderMap) -> Decision {
    for shape in shapes {
        match shape {
            Shape::BodyLimit(limit) => {
                let length = headers
                    .get(hyper::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
                if length > *limit {
                    return Decision::Answer(Answer {
                        path_contains: path.to_string(),
                        status: 413,
                        headers: vec![("Content-Type".into(), "text/html".into())],
                        body: Bytes::from_static(b"<html>413 Request Entity Too Large</html>"),
                    });
                }
            }
            Shape::DeclineMounts if method == "POST" && path.contains("mount=") => {
                let bare = path.split('?').next().unwrap_or(path).to_string();
                return Decision::Rewrite(bare);
            }
            Shape::CompleteSinglePost
                if method == "POST"
                    && path.contains("/blobs/uploads/")
                    && path.contains("digest=")
                    && !path.contains("mount=") =>
            {
                return Decision::SinglePost;
            }
            Shape::PullQuota { left }
                if method == "GET"
                    && path.contains("/manifests/")
                    && left.fetch_sub(1, Ordering::SeqCst) <= 0 =>
            {
                return Decision::Answer(Answer {
                    path_contains: path.to_string(),
                    status: 429,
                    headers: vec![("ratelimit-remaining".into(), "0;w=21600".into())],
                    body: Bytes::from_static(
                        br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}"#,
                    ),
                });
            }
            Shape::RedirectBlobs { base, signed }
                if method == "GET" && path.contains("/blobs/sha256:") =>
            {
                let (repo, digest) = path
                    .trim_start_matches("/v2/")
                    .split_once("/blobs/")
                    .unwrap_or(("", ""));
                let n = signed.fetch_add(1, Ordering::SeqCst) + 1;
                return Decision::Answer(Answer {
                    path_contains: path.to_string(),
                    status: 307,
                    headers: vec![("Location".into(), format!("{base}/{repo}/{digest}?sig={n}"))],
                    body: Bytes::new(),
                });
            }
            _ => {}
        }
    }
    Decision::Pass
}

/// Headers the shapes add to a forwarded answer (the quota left after a counted pull).
pub(crate) fn added_headers(shapes: &[Shape], method: &str, path: &str) -> Vec<(String, String)> {
    shapes
        .iter()
        .filter_map(|shape| match shape {
            Shape::PullQuota { left } if method == "GET" && path.contains("/manifests/") => {
                let n = left.load(Ordering::SeqCst).max(0);
                Some(("ratelimit-remaining".to_string(), format!("{n};w=21600")))
            }
            _ => None,
        })
        .collect()
}

/// Completes `POST ?digest=` with `body`: a session opened at the upstream, the body
/// `PUT` there; the registry's answer to the `PUT` is the answer (201 on success).
pub(crate) async fn complete_single_post(
    upstream_host: &str,
    path: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Answer {
    let failed = |why: String| Answer {
        path_contains: path.to_string(),
        status: 502,
        headers: vec![],
        body: Bytes::from(why),
    };
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let client = reqwest::Client::new();
    let auth = headers.get(hyper::header::AUTHORIZATION).cloned();
    let with_auth = |r: reqwest::RequestBuilder| match &auth {
        Some(a) => r.header("Authorization", a.as_bytes()),
        None => r,
    };
    let opened = with_auth(client.post(format!("http://{upstream_host}{route}")))
        .header("Content-Length", "0")
        .send()
        .await;
    let location = match opened {
        Ok(r) if r.status().as_u16() == 202 => r
            .headers()
            .get("Location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        Ok(r) => return failed(format!("opening a session: HTTP {}", r.status())),
        Err(e) => return failed(format!("opening a session: {e}")),
    };
    let Some(location) = location else {
        return failed("no Location".into());
    };
    let sep = if location.contains('?') { '&' } else { '?' };
    let put = with_auth(client.put(format!("{location}{sep}{query}")))
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .await;
    match put {
        Ok(r) => Answer {
            path_contains: path.to_string(),
            status: r.status().as_u16(),
            headers: r
                .headers()
                .iter()
                .filter(|(k, _)| {
                    k.as_str().eq_ignore_ascii_case("docker-content-digest")
                        || k.as_str().eq_ignore_ascii_case("location")
                })
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
                .collect(),
            body: r.bytes().await.unwrap_or_default(),
        },
        Err(e) => failed(format!("PUT: {e}")),
    }
}
