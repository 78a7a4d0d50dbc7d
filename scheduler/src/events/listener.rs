//! `--listen-events ADDR`: the notification endpoint. `POST /events/<sender>` with the
//! sender's token; `GET /events` lists the last events and what became of them.
//!
//! Fast and bounded by design: a body is checked (sender 404, token 401, size 413, shape
//! 400, each with its reason, each counted) and its pushes put on the bounded queue to the
//! publisher, and the answer is 202 at once: distribution keeps its queue in memory and
//! retries anything not 2xx, so a slow answer would back up every push. When the queue
//! cannot take the whole body, the answer is 503 (counted) and the sender retries later;
//! nothing of that body was taken, so a retry does not double it. The URL's query (which
//! may hold a token) is never logged, nor are headers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use mirror_common::reference::ImageRef;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::bodies::{self, Notice, Pushed};
use super::publisher::Arrival;
use super::recent::Recent;
use super::senders::{Kind, Sender};

/// Bodies larger than this are refused (413): a distribution envelope holds a few
/// hundred events at most.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// How long a request's head, and then its body, may take to arrive: a client that sends
/// slowly must not hold a connection for ever.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the listener checks requests against and hands pushes to.
pub(crate) struct Intake {
    pub senders: HashMap<String, Sender>,
    pub queue: mpsc::Sender<Arrival>,
    pub recent: Arc<Recent>,
    /// The run id the event jobs carry (shown by `GET /events`, found in `status`).
    pub run_id: uuid::Uuid,
}

/// Binds `addr` (a taken port fails the start) and serves in a background task; returns
/// the bound address.
pub(crate) async fn serve(addr: SocketAddr, intake: Arc<Intake>) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    eprintln!("events: listening on {bound} (POST /events/<sender>)");
    mirror_fleet::observe::server::accept_each(listener, "events", move |stream| {
        let intake = intake.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let intake = intake.clone();
                async move { Ok::<_, Infallible>(route(&intake, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    });
    Ok(bound)
}

/// One request's answer.
pub(crate) async fn route(intake: &Intake, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if path == "/events" && req.method() == Method::GET {
        return answer(
            StatusCode::OK,
            "application/json",
            overview(intake).to_string(),
        );
    }
    let Some(name) = path.strip_prefix("/events/") else {
        return text(StatusCode::NOT_FOUND, "not found: POST /events/<sender>");
    };
    let metrics = &mirror_fleet::observe::metrics::global().events;
    let Some(sender) = intake.senders.get(name) else {
        metrics.reject("unknown", "unknown_sender");
        intake
            .recent
            .add("unknown", "rejected: unknown sender", None);
        return text(
            StatusCode::NOT_FOUND,
            "no such sender (see --event-senders)",
        );
    };
    match accept(intake, sender, req).await {
        Ok(resp) => resp,
        Err((status, reason, why)) => {
            metrics.reject(&sender.name, reason);
            intake
                .recent
                .add(&sender.name, format!("rejected: {reason}"), None);
            tracing::info!(sender = %sender.name, status = status.as_u16(), reason = %why, "events: request refused");
            text(status, &why)
        }
    }
}

/// `GET /events`: the senders (names, kinds, registries; never their tokens), the pushes
/// waiting for the publisher, and the last events with what became of them.
fn overview(intake: &Intake) -> serde_json::Value {
    let mut senders: Vec<_> = intake
        .senders
        .values()
        .map(|s| serde_json::json!({"name": s.name, "kind": s.kind.as_str(), "registry": s.registry}))
        .collect();
    senders.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let waiting = intake.queue.max_capacity() - intake.queue.capacity();
    serde_json::json!({
        "senders": senders,
        "run_id": intake.run_id,
        "waiting": waiting,
        "events": intake.recent.list(),
    })
}

/// Why a request is refused: its status, the metrics reason, the text said.
type Refusal = (StatusCode, &'static str, String);

/// A request of a known sender, checked and taken.
async fn accept(
    intake: &Intake,
    sender: &Sender,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Refusal> {
    if req.method() != Method::POST {
        return Err((StatusCode::METHOD_NOT_ALLOWED, "method", "POST only".into()));
    }
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let given = super::auth::presented(authorization, req.uri().query());
    if !given.is_some_and(|t| super::auth::matches(&sender.token, t)) {
        return Err((
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the sender's token is missing or wrong".into(),
        ));
    }
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is larger than {MAX_BODY} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let read = tokio::time::timeout(
        READ_TIMEOUT,
        Limited::new(req.into_body(), MAX_BODY).collect(),
    );
    let Ok(read) = read.await else {
        return Err((
            StatusCode::REQUEST_TIMEOUT,
            "malformed",
            "the body came too slowly".into(),
        ));
    };
    let body = match read {
        Ok(b) => b.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large())
        }
        Err(e) => {
            return Err((
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("reading the body: {e}"),
            ))
        }
    };
    let notices = bodies::parse(sender.kind, &body)
        .map_err(|why| (StatusCode::BAD_REQUEST, "malformed", why))?;
    take(intake, sender, notices)
}

/// Counts a body's events and queues its pushes, all or none.
fn take(
    intake: &Intake,
    sender: &Sender,
    notices: Vec<Notice>,
) -> Result<Response<Full<Bytes>>, Refusal> {
    let metrics = &mirror_fleet::observe::metrics::global().events;
    let now = SystemTime::now();
    let mut arrivals = Vec::new();
    let mut ignored: Vec<&'static str> = Vec::new();
    let mut deletes = Vec::new();
    for n in &notices {
        match n {
            Notice::Push(p) => match image_of(sender, p) {
                Ok(image) => arrivals.push(Arrival {
                    sender: sender.name.clone(),
                    image,
                    at: p.at.filter(|t| *t <= now).unwrap_or(now),
                    hint: p.digest.clone(),
                }),
                // One event of an envelope: ignored, the others taken (see bodies.rs).
                Err(_) if sender.kind == Kind::Distribution => ignored.push("invalid"),
                Err(why) => return Err((StatusCode::BAD_REQUEST, "malformed", why)),
            },
            Notice::Delete(repo, what) => {
                deletes.push(format!("{}/{repo} {what}", sender.registry))
            }
            Notice::Ignored(reason) => ignored.push(reason),
        }
    }
    if arrivals.len() > intake.queue.max_capacity() {
        // Never room for it, however long the sender retries: say so instead of 503.
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the body holds {} pushes, more than the queue takes (--events-queue {})",
                arrivals.len(),
                intake.queue.max_capacity()
            ),
        ));
    }
    let permits = match arrivals.len() {
        0 => Vec::new(),
        n => match intake.queue.try_reserve_many(n) {
            Ok(p) => p.collect(),
            Err(_) => {
                return Err((
                    StatusCode::SERVICE_UNAVAILABLE,
                    "queue_full",
                    "too many pushes are waiting; try again later".into(),
                ))
            }
        },
    };
    metrics.receive(&sender.name, notices.len() as u64);
    for reason in &ignored {
        metrics.ignore(&sender.name, reason);
    }
    for d in &deletes {
        metrics.ignore(&sender.name, "delete");
        eprintln!(
            "event ({}): delete of {d} announced; the mirror deletes nothing",
            sender.name
        );
        intake
            .recent
            .add(&sender.name, "delete (not done)", Some(d.clone()));
    }
    for (permit, a) in permits.into_iter().zip(arrivals.iter().cloned()) {
        intake
            .recent
            .add(&sender.name, "accepted", Some(a.image.to_string()));
        permit.send(a);
    }
    let body = serde_json::json!({
        "accepted": arrivals.len(),
        "ignored": ignored.len(),
        "deletes_not_done": deletes.len(),
    });
    Ok(answer(
        StatusCode::ACCEPTED,
        "application/json",
        body.to_string(),
    ))
}

/// The pushed tag as the mapping files name it: the sender's registry, the body's
/// repository and tag, checked as a reference. The plain form names its host itself,
/// which must be the sender's.
fn image_of(sender: &Sender, p: &Pushed) -> Result<ImageRef, String> {
    if sender.kind == Kind::Plain && p.host.as_deref() != Some(sender.registry.as_str()) {
        return Err(format!(
            "sender \"{}\" announces images of {} only; the body names {}",
            sender.name,
            sender.registry,
            p.host.as_deref().unwrap_or("no registry")
        ));
    }
    let text = format!("{}/{}:{}", sender.registry, p.repository, p.tag);
    ImageRef::parse(&text).map_err(|e| e.to_string())
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    answer(status, "text/plain; charset=utf-8", format!("{body}\n"))
}

fn answer(status: StatusCode, kind: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    resp
}

#[cfg(test)]
#[path = "listener_tests.rs"]
mod tests;
