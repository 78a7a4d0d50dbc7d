//! The HTTP/1.1 side of the simulator: the accept loop, the injected latency, the stats
//! endpoint, and each request handed to its role's answers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use hyper::StatusCode;

use super::answers::{error, json, no_route, query_value, Body};
use super::destination::Destination;
use super::generator::Generator;
use super::route::Route;
use super::stats::Stats;
use super::{destination_api, source_api, token_auth};

/// Which registry a listener plays.
pub enum Role {
    /// Read-only, everything generated.
    Source(Arc<Generator>),
    /// Generated at first, then what is pushed.
    Destination(Arc<Destination>),
}

/// How a listener behaves, beyond its role.
#[derive(Debug, Clone, Copy, Default)]
pub struct Behaviour {
    /// Waited before each answer.
    pub latency: Duration,
    /// Every registry request needs the token of `/_sim/token` (see `token_auth`).
    pub token_auth: bool,
    /// `tags/list` ignores `n` and `last` and answers every tag, as distribution 2.8 (the
    /// test bed's docker-registry) does; off, it pages as the OCI distribution spec says.
    pub whole_tag_lists: bool,
}

/// One listener's registry.
pub struct Server {
    /// What it serves.
    pub role: Role,
    /// Latency, authentication, tag lists.
    pub behaviour: Behaviour,
    /// Its requests by kind.
    pub stats: Stats,
}

/// Serves `server` on `listener` until the task is aborted, one task per connection.
pub async fn serve(listener: TcpListener, server: Arc<Server>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let server = server.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(handle(&server, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Answers one request, after the injected latency.
async fn handle(server: &Server, req: Request<Incoming>) -> Response<Body> {
    let route = Route::parse(req.uri().path());
    let query = req.uri().query().unwrap_or("").to_string();
    // The benchmark's own calls (stats, controls) are not the mirror's requests: not counted,
    // so a run's difference of two stats readings is the mirror's alone.
    let control = matches!(route, Route::Stats | Route::ChangeSources);
    if !control {
        server.stats.count(route.kind(req.method(), &query));
    }
    let behaviour = server.behaviour;
    if !behaviour.latency.is_zero() && !control {
        tokio::time::sleep(behaviour.latency).await;
    }
    let destination = matches!(server.role, Role::Destination(_));
    let open = control || matches!(route, Route::Token);
    if behaviour.token_auth && !open && !token_auth::authorized(&req) {
        return token_auth::challenge(&req, &route, destination);
    }
    match (&route, &server.role) {
        (Route::Token, _) => token_auth::token(),
        (Route::Stats, Role::Source(_)) => json(&server.stats.json("source")),
        (Route::Stats, Role::Destination(_)) => json(&server.stats.json("destination")),
        (Route::ChangeSources, Role::Source(generator)) if req.method() == hyper::Method::POST => {
            change_sources(generator, &query)
        }
        (Route::ChangeSources, _) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "POST /_sim/change-sources?percent=P at the source",
        ),
        (Route::Ping, _) => json(&serde_json::json!({})),
        (Route::Unknown, _) => no_route(),
        (_, Role::Source(generator)) => {
            source_api::answer(generator, route, &req, &query, behaviour.whole_tag_lists)
        }
        (_, Role::Destination(dest)) => {
            let whole = behaviour.whole_tag_lists;
            destination_api::answer(dest, route, req, &query, whole).await
        }
    }
}

/// `POST /_sim/change-sources?percent=P`: changes P % of the source images (see
/// [`Generator::change_sources`]) and answers `{"changed": N, "round": R}`.
fn change_sources(generator: &Generator, query: &str) -> Response<Body> {
    let Some(percent) = query_value(query, "percent").and_then(|p| p.parse::<f64>().ok()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "UNSUPPORTED",
            "percent=P is needed",
        );
    };
    let (changed, round) = generator.change_sources(percent);
    json(&serde_json::json!({"changed": changed, "round": round}))
}
