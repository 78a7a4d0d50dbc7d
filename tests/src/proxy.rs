//! An HTTP/1.1 reverse proxy in front of one test [`Registry`] that adds
//! latency, injects faults and counts requests.
//!
//! Why: a loopback registry answers in microseconds and never fails, so on its
//! own it can neither show how the mirror behaves against a remote registry
//! (benchmarks add 20 ms each way) nor exercise retries. The proxy sits
//! between the code under test and the real `docker-registry`, delays each
//! request and response independently, answers matching requests itself with
//! 503 or 429 (and `Retry-After`) for a while or forever, and records every
//! request with the status it answered.
//!
//! Bodies are streamed both ways frame by frame (hyper server in, hyper
//! client out), never buffered whole, so 512 MiB blobs pass through in
//! benchmarks. Status, headers and body pass through unchanged except for
//! hop-by-hop headers, `Host` (the upstream's, so distribution builds its
//! URLs for the upstream) and `Location`, which is rewritten from the upstream
//! to the proxy: upload sessions are absolute URLs, and a client following
//! them unchanged would bypass the proxy from the second request of an upload
//! on.

use parking_lot::Mutex;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONNECTION, CONTENT_TYPE, HOST, LOCATION};
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::registry::Registry;
use crate::registry_shapes::{Decision, Shape};

/// The body of every answer: the upstream's streamed body or one of ours.
type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// The message of injected errors, so a failure seen by the code under test
/// can be told apart from a real registry error.
const INJECTED_MESSAGE: &str = "injected by test proxy";

/// Headers that describe one connection rather than the message (RFC 9110
/// 7.6.1), dropped in both directions. `Transfer-Encoding` is among them
/// because hyper frames each side itself from the body's known length.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Requests matching this rule are answered by the proxy with `status`,
/// without contacting the upstream; or, with `after_upstream`, after the
/// upstream has handled them (its answer dropped): the lost reply of a load
/// balancer that failed after the registry committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// Only requests with this method (case-insensitive); `None` for any.
    pub method: Option<String>,
    /// A substring of the request's path and query, e.g. `/blobs/uploads/`;
    /// empty matches every request.
    pub path_contains: String,
    /// The status to answer, e.g. 503 or 429.
    pub status: u16,
    /// Sent as `Retry-After: <secs>` when set.
    pub retry_after_secs: Option<u64>,
    /// Fail only the first `n` matching requests, then pass them through;
    /// `None` fails them forever (until [`Proxy::clear_faults`]).
    pub times: Option<usize>,
    /// Let this many matching requests through before failing any.
    pub skip: usize,
    /// The distribution error code answered; by default `TOOMANYREQUESTS` for 429 and
    /// `UNAVAILABLE` for any other status.
    pub code: Option<String>,
    /// Forward the request to the upstream first (it does what it asks), then answer
    /// `status` in place of the upstream's answer.
    pub after_upstream: bool,
    /// The body answered, as given (not distribution's error format), when set.
    pub body: Option<String>,
}

impl FaultRule {
    /// Answers `status` forever to every method whose path contains `path_contains`.
    pub fn new(status: u16, path_contains: impl Into<String>) -> FaultRule {
        FaultRule {
            method: None,
            path_contains: path_contains.into(),
            status,
            retry_after_secs: None,
            times: None,
            skip: 0,
            code: None,
            after_upstream: false,
            body: None,
        }
    }

    /// The same rule, answering only once the upstream has handled the request (its
    /// answer is read and dropped): a reply lost after the registry did the work.
    pub fn after_upstream(mut self) -> FaultRule {
        self.after_upstream = true;
        self
    }

    /// The same rule, answering `body` as it is (e.g. a registry's own error JSON with a
    /// `detail`, or a proxy's HTML page).
    pub fn body(mut self, body: impl Into<String>) -> FaultRule {
        self.body = Some(body.into());
        self
    }

    /// The same rule, letting the first `n` matching requests through.
    pub fn after(mut self, n: usize) -> FaultRule {
        self.skip = n;
        self
    }

    /// The same rule, only for `method`.
    pub fn method(mut self, method: impl Into<String>) -> FaultRule {
        self.method = Some(method.into());
        self
    }

    /// The same rule, answering the error code `code` (`DIGEST_INVALID`).
    pub fn code(mut self, code: impl Into<String>) -> FaultRule {
        self.code = Some(code.into());
        self
    }

    /// The same rule, with `Retry-After: secs`.
    pub fn retry_after(mut self, secs: u64) -> FaultRule {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The same rule, failing only the first `n` matching requests.
    pub fn times(mut self, n: usize) -> FaultRule {
        self.times = Some(n);
        self
    }

    /// Whether the rule is still active and applies to this request.
    fn matches(&self, method: &str, path: &str) -> bool {
        self.times != Some(0)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.contains(&self.path_contains)
    }
}

/// An answer the proxy gives itself, in place of the upstream's: what a hostile or broken
/// registry would send (a huge manifest, a `Link` header pointing back at its own page).
#[derive(Debug, Clone)]
pub struct Answer {
    /// A substring of the request's path and query.
    pub path_contains: String,
    /// The status, e.g. 200.
    pub status: u16,
    /// Response headers (`Content-Length` is set from the body).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

/// One request the proxy answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// Path and query as the client sent them, e.g. `/v2/app/blobs/uploads/`.
    pub path: String,
    /// The status the proxy answered: the upstream's, an injected fault's, or
    /// 502 when the upstream could not be reached.
    pub status: u16,
    /// When the answer was sent (after the request's latency, before the response's).
    pub at: std::time::Instant,
}

/// A running proxy on `127.0.0.1:<free port>`. Dropping it stops accepting
/// and aborts every open connection.
pub struct Proxy {
    state: Arc<State>,
    accept: JoinHandle<()>,
}

/// What the accept loop and every connection share with the [`Proxy`] handle.
struct State {
    /// `127.0.0.1:PORT` of the proxy.
    host: String,
    /// `127.0.0.1:PORT` of the upstream registry.
    upstream_host: String,
    client: Client<HttpConnector, Incoming>,
    latency: Mutex<Duration>,
    /// Active rules in the order added; the first match wins.
    rules: Mutex<Vec<FaultRule>>,
    /// Requests whose path and query contain an answer's `path_contains` get that answer,
    /// not the upstream's (first match wins, before fault rules).
    answers: Mutex<Vec<Answer>>,
    /// Response bodies of requests whose path contains the first part are sent at the
    /// second's bytes per second (0: nothing after the head).
    paces: Mutex<Vec<(String, u64)>>,
    seen: Mutex<Vec<SeenRequest>>,
    /// Answer the Referrers API from the upstream's tag schema indexes.
    referrers_api: std::sync::atomic::AtomicBool,
    /// Registry behaviours shaped in front of the upstream (see `shapes.rs`).
    shapes: Mutex<Vec<Shape>>,
}

impl Proxy {
    /// Starts a proxy forwarding to `upstream`, which must serve plain HTTP.
    pub async fn start(upstream: &Registry) -> Result<Proxy> {
        let url = upstream.url();
        let Some(upstream_host) = url.strip_prefix("http://") else {
            bail!("the test proxy forwards to plain-HTTP registries only, not {url}");
        };
        // Binding port 0 ourselves (unlike the registry, which binds in a child
        // process) leaves no window for another process to take the port.
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the proxy's port")?;
        let port = listener
            .local_addr()
            .context("reading the proxy's port")?
            .port();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let state = Arc::new(State {
            host: format!("127.0.0.1:{port}"),
            upstream_host: upstream_host.to_string(),
            client: Client::builder(TokioExecutor::new()).build(connector),
            latency: Mutex::new(Duration::ZERO),
            rules: Mutex::new(Vec::new()),
            paces: Mutex::new(Vec::new()),
            answers: Mutex::new(Vec::new()),
            seen: Mutex::new(Vec::new()),
            referrers_api: std::sync::atomic::AtomicBool::new(false),
            shapes: Mutex::new(Vec::new()),
        });
        let accept = tokio::spawn(accept_loop(listener, state.clone()));
        Ok(Proxy { state, accept })
    }

    /// `127.0.0.1:PORT`, the host to put in image references.
    pub fn host(&self) -> String {
        self.state.host.clone()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.state.host)
    }

    /// The port the proxy listens on.
    pub fn port(&self) -> u16 {
        self.state
            .host
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or_default()
    }

    /// Delays every later request by `each_way` before it is forwarded (or
    /// faulted) and again before its response head is returned, so a request
    /// costs at least one round trip of `2 * each_way`. Concurrent requests
    /// sleep independently; only the head is delayed, the body then streams
    /// at full speed.
    pub fn set_latency(&self, each_way: Duration) {
        *self.state.latency.lock() = each_way;
    }

    /// Adds a fault rule after the existing ones.
    pub fn fail(&self, rule: FaultRule) {
        self.state.rules.lock().push(rule);
    }

    /// Sends the response bodies of requests whose path and query contain `path_contains`
    /// at `bytes_per_sec` (in tenth-of-a-second slices), like a slow but steady link; 0
    /// sends the response head and then nothing, like a stalled one. The bytes are the
    /// upstream's; only their timing is shaped.
    pub fn pace(&self, path_contains: impl Into<String>, bytes_per_sec: u64) {
        self.state
            .paces
            .lock()
            .push((path_contains.into(), bytes_per_sec));
    }

    /// Serves the OCI 1.1 Referrers API, which docker-registry lacks, from the registry's
    /// own referrers tag schema indexes (see `referrers_front.rs` for what is shaped).
    pub fn serve_referrers_api(&self) {
        self.state
            .referrers_api
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Shapes a registry behaviour from now on (see [`Shape`]).
    pub fn shape(&self, shape: Shape) {
        self.state.shapes.lock().push(shape);
    }

    /// Answers matching requests with `answer` from now on.
    pub fn answer(&self, answer: Answer) {
        self.state.answers.lock().push(answer);
    }

    /// Removes every fault rule, so all requests pass through again.
    pub fn clear_faults(&self) {
        self.state.rules.lock().clear();
    }

    /// Every request answered so far, in the order the answers were sent. A
    /// request is recorded just before its response head goes out, so one
    /// whose client gave up during the latency is missing.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state.seen.lock().clone()
    }

    /// How many answered requests have this method (case-insensitive) and a
    /// path and query containing `path_contains`.
    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        self.state
            .seen
            .lock()
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.contains(path_contains))
            .count()
    }

    /// Forgets the requests seen so far, e.g. after a test's setup.
    pub fn clear_requests(&self) {
        self.state.seen.lock().clear();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The accept task owns the JoinSet of connections, so aborting it
        // aborts them too.
        self.accept.abort();
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.state.host)
            .field("upstream", &self.state.upstream_host)
            .field("latency", &*self.state.latency.lock())
            .field("rules", &*self.state.rules.lock())
            .finish()
    }
}

impl State {
    /// The first active rule matching the request, with one of its `times` used up.
    fn take_fault(&self, method: &str, path: &str) -> Option<FaultRule> {
        let mut rules = self.rules.lock();
        let rule = rules.iter_mut().find(|r| r.matches(method, path))?;
        if rule.skip > 0 {
            rule.skip -= 1;
            return None;
        }
        if let Some(n) = rule.times.as_mut() {
            *n -= 1;
        }
        Some(rule.clone())
    }

    fn latency(&self) -> Duration {
        *self.latency.lock()
    }

    /// Sends the request to the upstream and returns its answer with the
    /// body still streaming, or a 502 when it cannot be reached.
    async fn forward(&self, req: Request<Incoming>, path: &str) -> Response<ProxyBody> {
        let (mut parts, body) = req.into_parts();
        let uri = format!("http://{}{path}", self.upstream_host);
        parts.uri = match uri.parse::<Uri>() {
            Ok(uri) => uri,
            Err(err) => return error_response(StatusCode::BAD_REQUEST, &format!("{uri}: {err}")),
        };
        parts.version = Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        if let Ok(host) = HeaderValue::from_str(&self.upstream_host) {
            parts.headers.insert(HOST, host);
        }
        let resp = match self.client.request(Request::from_parts(parts, body)).await {
            Ok(resp) => resp,
            Err(err) => {
                return error_response(
                    StatusCode::BAD_GATEWAY,
                    &format!("test proxy could not reach {}: {err:#}", self.upstream_host),
                )
            }
        };
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let rewritten = parts
            .headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| rewrite_location(v, &self.upstream_host, &self.host))
            .and_then(|v| HeaderValue::from_str(&v).ok());
        if let Some(location) = rewritten {
            parts.headers.insert(LOCATION, location);
        }
        Response::from_parts(parts, body.boxed())
    }

    fn record(&self, method: String, path: String, status: StatusCode) {
        self.seen.lock().push(SeenRequest {
            method,
            path,
            status: status.as_u16(),
            at: std::time::Instant::now(),
        });
    }
}

/// Accepts connections until aborted, each served in its own task so slow or
/// delayed connections never hold up others.
async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, state.clone()));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow for ever.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Serves one client connection (HTTP/1.1, keep-alive) until it closes.
async fn serve(stream: TcpStream, state: Arc<State>) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(&state, req).await) }
    });
    // No timer is configured, so hyper applies no header-read timeout: idle
    // keep-alive connections stay open for as long as the client keeps them,
    // instead of being closed under a client that is about to reuse them.
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// One request: latency, then our own answer, a fault or the upstream's answer, then
/// latency.
async fn handle(state: &State, req: Request<Incoming>) -> Response<ProxyBody> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    sleep(state.latency()).await;
    let mut answer = state
        .answers
        .lock()
        .iter()
        .find(|a| path.contains(a.path_contains.as_str()))
        .cloned();
    if answer.is_none()
        && method == "GET"
        && state
            .referrers_api
            .load(std::sync::atomic::Ordering::SeqCst)
    {
        answer = crate::referrers_front::answer(&state.upstream_host, &path).await;
    }
    let shapes = state.shapes.lock().clone();
    let mut forward_path = path.clone();
    match crate::registry_shapes::decide(&shapes, &method, &path, req.headers()) {
        Decision::Pass => {}
        Decision::Rewrite(p) => forward_path = p,
        Decision::Answer(a) => answer = Some(a),
        Decision::SinglePost => {
            let headers = req.headers().clone();
            let body = req.into_body().collect().await.map(|b| b.to_bytes());
            let resp = match body {
                Ok(body) => answer_response(
                    crate::registry_shapes::complete_single_post(
                        &state.upstream_host,
                        &path,
                        &headers,
                        body,
                    )
                    .await,
                ),
                Err(e) => error_response(StatusCode::BAD_REQUEST, &e.to_string()),
            };
            sleep(state.latency()).await;
            state.record(method, path, resp.status());
            return resp;
        }
    }
    let resp = match (answer, state.take_fault(&method, &path)) {
        (Some(answer), _) => {
            drain(req.into_body()).await;
            answer_response(answer)
        }
        (None, Some(rule)) if rule.after_upstream => {
            // The registry does the work; its answer is lost on the way back.
            let upstream = state.forward(req, &forward_path).await;
            let _ = upstream.into_body().collect().await;
            fault_response(&rule)
        }
        (None, Some(rule)) => {
            // Read the body to its end so the connection stays usable for the
            // client's retry instead of being closed under its feet.
            drain(req.into_body()).await;
            fault_response(&rule)
        }
        (None, None) => {
            let mut resp = state.forward(req, &forward_path).await;
            for (name, value) in crate::registry_shapes::added_headers(&shapes, &method, &path) {
                if let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(name.as_bytes()),
                    HeaderValue::from_str(&value),
                ) {
                    resp.headers_mut().insert(n, v);
                }
            }
            resp
        }
    };
    let pace = state
        .paces
        .lock()
        .iter()
        .find(|(p, _)| path.contains(p.as_str()))
        .map(|(_, rate)| *rate);
    let resp = match pace {
        Some(rate) => resp.map(|body| paced(body, rate)),
        None => resp,
    };
    sleep(state.latency()).await;
    state.record(method, path, resp.status());
    resp
}

/// `body` at `rate` bytes per second: slices of a tenth of that, one every 100 ms; with a
/// rate of 0, nothing at all (the connection stays open, the body never ends).
fn paced(body: ProxyBody, rate: u64) -> ProxyBody {
    use futures::StreamExt;
    if rate == 0 {
        let never = futures::stream::pending::<Result<hyper::body::Frame<Bytes>, hyper::Error>>();
        return BodyExt::boxed(http_body_util::StreamBody::new(never));
    }
    let slice = usize::try_from(rate / 10).unwrap_or(usize::MAX).max(1);
    let frames = http_body_util::BodyStream::new(body).flat_map(move |frame| {
        let pieces: Vec<Result<hyper::body::Frame<Bytes>, hyper::Error>> = match frame {
            Ok(frame) => match frame.into_data() {
                Ok(mut data) => {
                    let mut out = Vec::new();
                    while !data.is_empty() {
                        let n = slice.min(data.len());
                        out.push(Ok(hyper::body::Frame::data(data.split_to(n))));
                    }
                    out
                }
                Err(frame) => vec![Ok(frame)],
            },
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(pieces).then(|piece| async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            piece
        })
    });
    BodyExt::boxed(http_body_util::StreamBody::new(frames))
}

/// Reads and discards a request body frame by frame.
async fn drain(mut body: Incoming) {
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
}

async fn sleep(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}

/// The proxy's own answer for a faulted request: distribution's error format, with the
/// rule's code, else `TOOMANYREQUESTS` for 429 and `UNAVAILABLE` for any other status.
fn fault_response(rule: &FaultRule) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(rule.status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    if let Some(body) = &rule.body {
        let mut resp = Response::new(
            Full::new(Bytes::from(body.clone()))
                .map_err(|never| match never {})
                .boxed(),
        );
        *resp.status_mut() = status;
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return resp;
    }
    let code = match &rule.code {
        Some(code) => code.as_str(),
        None if status == StatusCode::TOO_MANY_REQUESTS => "TOOMANYREQUESTS",
        None => "UNAVAILABLE",
    };
    let mut resp = json_error(status, code, INJECTED_MESSAGE);
    if let Some(secs) = rule.retry_after_secs {
        resp.headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    resp
}

/// An [`Answer`] as a response.
fn answer_response(answer: Answer) -> Response<ProxyBody> {
    let mut resp = Response::new(
        Full::new(answer.body)
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    for (name, value) in answer.headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
    resp
}

/// A distribution-style error answered by the proxy itself.
fn error_response(status: StatusCode, message: &str) -> Response<ProxyBody> {
    json_error(status, "UNAVAILABLE", message)
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "errors": [{ "code": code, "message": message }] });
    let body = Full::new(Bytes::from(body.to_string()))
        .map_err(|never| match never {})
        .boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// Removes hop-by-hop headers, including any the `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// `http://<upstream>/rest` becomes `http://<proxy>/rest`; relative or other
/// hosts' locations are left alone (`None`).
fn rewrite_location(location: &str, upstream_host: &str, proxy_host: &str) -> Option<String> {
    let rest = location
        .strip_prefix("http://")?
        .strip_prefix(upstream_host)?;
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
        Some(format!("http://{proxy_host}{rest}"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_moves_from_upstream_to_proxy_only_for_the_upstream_host() {
        let up = "127.0.0.1:5000";
        let px = "127.0.0.1:6000";
        assert_eq!(
            rewrite_location(
                "http://127.0.0.1:5000/v2/a/blobs/uploads/x?_state=s",
                up,
                px
            )
            .as_deref(),
            Some("http://127.0.0.1:6000/v2/a/blobs/uploads/x?_state=s")
        );
        assert_eq!(rewrite_location("/v2/a/blobs/uploads/x", up, px), None);
        assert_eq!(rewrite_location("http://127.0.0.1:50001/v2/", up, px), None);
        assert_eq!(rewrite_location("https://127.0.0.1:5000/v2/", up, px), None);
    }

    #[test]
    fn a_counted_rule_stops_matching_when_used_up() {
        let rule = FaultRule::new(503, "/manifests/").method("get").times(0);
        assert!(!rule.matches("GET", "/v2/a/manifests/v1"));
        let rule = rule.times(1);
        assert!(rule.matches("GET", "/v2/a/manifests/v1"));
        assert!(!rule.matches("PUT", "/v2/a/manifests/v1"));
        assert!(!rule.matches("GET", "/v2/a/blobs/sha256:00"));
    }

    #[test]
    fn hop_by_hop_headers_and_those_named_by_connection_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
        headers.insert(
            "docker-content-digest",
            HeaderValue::from_static("sha256:00"),
        );
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("docker-content-digest"));
    }
}
