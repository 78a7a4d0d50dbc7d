//! `--listen ADDR`: `/metrics` (OpenMetrics to a scraper whose `Accept` asks for it, the
//! Prometheus text format 0.0.4 otherwise: see [`super::text_format`]), `/healthz` (the process is up and
//! answering) and `/readyz` (it can do its work: connected to the broker).
//!
//! A liveness probe must not depend on the broker, or a broker outage would get every
//! worker restarted for nothing; readiness does, so that an orchestrator and dashboards see
//! which processes are actually consuming. Plain HTTP/1 on hyper, which is already in the
//! dependency tree through reqwest: three fixed GET routes do not need a framework.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// Says whether the process is ready (asked on every `/readyz`).
pub type Readiness = Arc<dyn Fn() -> bool + Send + Sync>;

/// Binds `addr` and serves the three endpoints in a background task for the life of the
/// process. Binding happens here so that a taken port fails the start, not later. Returns
/// the bound address (useful with port 0).
pub async fn serve(addr: SocketAddr, ready: Readiness) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "serving /metrics, /healthz and /readyz");
    accept_each(listener, "metrics", move |stream| {
        let ready = ready.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let ready = ready.clone();
                async move { Ok::<_, Infallible>(route(&req, &ready)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    });
    Ok(bound)
}

/// Hands every connection `listener` accepts to `serve`, in a background task for the life
/// of the process; a failed accept (out of file descriptors, say) is logged as `what`'s and
/// tried again after 100 ms instead of ending the listener. Shared by `--listen` and the
/// scheduler's `--listen-events`.
pub fn accept_each(
    listener: TcpListener,
    what: &'static str,
    mut serve: impl FnMut(TcpStream) + Send + 'static,
) {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => serve(stream),
                Err(e) => {
                    tracing::warn!(error = %e, listener = what, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    });
}

fn route(req: &Request<Incoming>, ready: &Readiness) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            use super::text_format::{wants_openmetrics, OPENMETRICS, TEXT_0_0_4};
            let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
            let m = super::metrics::global();
            let (body, kind) = match accept.is_some_and(wants_openmetrics) {
                true => (m.encode(), OPENMETRICS),
                false => (m.encode_text(), TEXT_0_0_4),
            };
            let mut resp = text(StatusCode::OK, body);
            resp.headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
            resp
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" if ready() => text(StatusCode::OK, "ready\n".into()),
        "/readyz" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not connected to the broker\n".into(),
        ),
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
        let resp = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    #[tokio::test]
    async fn health_readiness_and_metrics_answer() {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let addr = serve(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(move || f.load(Ordering::SeqCst)),
        )
        .await
        .unwrap();
        assert_eq!(get(addr, "/healthz").await.0, 200);
        assert_eq!(get(addr, "/readyz").await.0, 503);
        flag.store(true, Ordering::SeqCst);
        assert_eq!(get(addr, "/readyz").await.0, 200);
        let (status, body) = get(addr, "/metrics").await;
        assert_eq!(status, 200);
        assert!(body.contains("mirror_jobs_in_flight"), "{body}");
        assert_eq!(get(addr, "/nope").await.0, 404);
    }
}
