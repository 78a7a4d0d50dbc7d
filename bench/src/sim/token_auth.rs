//! Optional token authentication (`--token-auth`), the Docker token flow most registries
//! use: a request without the token is answered 401 with a `Bearer` challenge naming
//! `/_sim/token` on the same listener, which hands out one fixed token to anyone (no
//! credentials are checked). It is there so a run can include the token round trips and
//! the client's token caching in what it measures, not to protect anything.

use bytes::Bytes;
use hyper::{Request, Response, StatusCode};

use super::answers::{json, reply, Body};
use super::route::Route;

/// The one token handed out and accepted.
pub const TOKEN: &str = "registry-sim-token";

/// Whether `req` carries the token.
pub(super) fn authorized<B>(req: &Request<B>) -> bool {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {TOKEN}"))
}

/// The 401 asking for a token: scope pull on a source, pull and push on a destination.
pub(super) fn challenge<B>(req: &Request<B>, route: &Route, destination: bool) -> Response<Body> {
    let host = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let mut value = format!("Bearer realm=\"http://{host}/_sim/token\",service=\"registry-sim\"");
    if let Some(name) = route.name() {
        let actions = if destination { "pull,push" } else { "pull" };
        value.push_str(&format!(",scope=\"repository:{name}:{actions}\""));
    }
    let body = br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
    let headers = [
        ("WWW-Authenticate", value),
        ("Content-Type", "application/json".to_string()),
    ];
    reply(StatusCode::UNAUTHORIZED, &headers, Bytes::from_static(body))
}

/// The token endpoint's answer, whatever was asked.
pub(super) fn token() -> Response<Body> {
    json(&serde_json::json!({"token": TOKEN, "access_token": TOKEN, "expires_in": 3600}))
}
