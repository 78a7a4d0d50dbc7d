//! The registry client: its options, its connection pools, credentials and
//! authentication state, and what every request uses of them (URLs, the gate, the
//! observer, authorization). The retry loop requests go through is `execute.rs`; the
//! operations are in `manifests.rs`, `blobs.rs`, `upload.rs`, `tags.rs`, `referrers.rs`.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::auth::AuthState;
use super::credentials::CredentialStore;
use super::error::RegistryError;
use super::gate::Gate;
use super::insecure::{HttpClients, HttpFallback, PlainHttp};
use super::observer::Observer;
use super::quirks::Quirks;
use super::request::{Operation, Request};
use super::retry::RetryPolicy;
use super::scope::Scope;
use super::timeouts::Timeouts;
use super::token::TokenPolicy;
use crate::name::{api_host, Repository};

/// Everything that configures how registries are reached; one struct passed down.
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Credentials by registry host.
    pub credentials: CredentialStore,
    /// Insecure registries (`--insecure-registry`): `host:port` as written in references for
    /// that port, `host` for every port of it. Tried over HTTPS without certificate checks,
    /// over plain HTTP once they answer in it; trusted with credentials over plain HTTP
    /// (see `insecure.rs`).
    pub insecure_registries: HashSet<String>,
    /// Registries reached as those of `insecure_registries` (no certificate checks, plain
    /// HTTP when they answer in it), but not trusted with credentials over plain HTTP.
    /// Loopback ones not named fall back to plain HTTP too, certificates checked.
    pub http_fallback: HttpFallback,
    /// Extra PEM CA bundles trusted on top of the system's roots.
    pub ca_files: Vec<PathBuf>,
    /// Retries of failed requests.
    pub retry: RetryPolicy,
    /// Rate limits and pauses shared with other workers, when there is a fleet.
    pub gate: Option<Gate>,
    /// Sees every request attempt (a process's metrics), when there is one.
    pub observer: Option<Observer>,
    /// Time limits: connecting, small requests in total, blob transfers by progress.
    pub timeouts: Timeouts,
    /// Registries whose blobs go up in chunks of at most this many bytes
    /// (`--chunk-size REGISTRY=SIZE`); others send whole blobs until one answers 413.
    pub chunk_sizes: std::collections::HashMap<String, u64>,
    /// Where what is learnt about registries (413s, mounts, single-request uploads) is
    /// shared with other processes, when there is a fleet.
    pub quirks_store: Option<super::quirks::SharedQuirks>,
    /// Requests to one registry awaiting their answer at once (`None`:
    /// [`REQUESTS_PER_REGISTRY`]); the scheduler's planner, which resolves every source
    /// of a run, asks for more (`run --plan-concurrency`).
    pub requests_per_registry: Option<usize>,
}

/// A client for OCI distribution registries, cheap to share behind an `Arc`.
pub struct RegistryClient {
    /// Two pools: certificates checked, and not (hosts named insecure only).
    pub(super) http: HttpClients,
    pub(super) opts: ClientOptions,
    /// Which registries are insecure, and which were found to speak plain HTTP.
    pub(super) plain_http: PlainHttp,
    pub(super) auth: AuthState,
    /// Registries found without the Referrers API (see `referrers.rs`).
    pub(crate) no_referrers_api: parking_lot::Mutex<HashSet<String>>,
    /// What was learnt about each registry (see `quirks.rs`).
    pub(crate) quirks: super::quirks::QuirksMemory,
    /// Registries whose pull quota is used up (see `ratelimit.rs`).
    pub(super) quotas: super::ratelimit::Quotas,
    /// Requests awaiting their answer, per registry: see [`REQUESTS_PER_REGISTRY`].
    waiting: parking_lot::Mutex<std::collections::HashMap<String, Arc<Semaphore>>>,
}

/// Requests to one registry awaiting their answer at once (a blob body streaming after its
/// answer's head is not counted). Past this they queue in the client instead of opening
/// more connections: what a registry is asked to take from one client, and what bounds a
/// process's connections (and memory) when hundreds of jobs check their destinations.
pub(crate) const REQUESTS_PER_REGISTRY: usize = 128;

impl RegistryClient {
    /// Builds a client; fails when a CA file cannot be read.
    pub fn new(opts: ClientOptions) -> Result<Self, RegistryError> {
        let plain_http = PlainHttp::new(&opts.insecure_registries, &opts.http_fallback);
        let builder = || {
            reqwest::Client::builder()
                .user_agent(concat!("image-mirror/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(opts.timeouts.connect)
                // As many idle connections kept as requests may wait at once: fewer, and
                // every burst past them opens (and closes) connections again.
                .pool_max_idle_per_host(opts.requests_per_registry.unwrap_or(REQUESTS_PER_REGISTRY))
        };
        let mut extra = Vec::new();
        for path in &opts.ca_files {
            let pem = std::fs::read(path)
                .map_err(|e| RegistryError::Config(format!("CA file {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RegistryError::Config(format!(
                    "CA file {}: not PEM certificates: {e}",
                    path.display()
                ))
            })?;
            extra.extend(certs);
        }
        let mut verifying = builder();
        if !extra.is_empty() {
            verifying = verifying.tls_certs_merge(extra);
        }
        let build = |b: reqwest::ClientBuilder| {
            b.build()
                .map_err(|e| RegistryError::Config(format!("HTTP client: {e}")))
        };
        let verifying = build(verifying)?;
        let http = if plain_http.any_insecure() {
            HttpClients {
                verifying,
                unverified: build(
                    builder()
                        .tls_danger_accept_invalid_certs(true)
                        .redirect(plain_http.unverified_redirects()),
                )?,
            }
        } else {
            HttpClients::verifying_only(verifying)
        };
        Ok(RegistryClient {
            http,
            plain_http,
            opts,
            auth: AuthState::default(),
            no_referrers_api: parking_lot::Mutex::default(),
            quirks: super::quirks::QuirksMemory::default(),
            quotas: super::ratelimit::Quotas::default(),
            waiting: parking_lot::Mutex::default(),
        })
    }

    /// The connection pool for a request to `url` on behalf of `registry`: the one not
    /// checking certificates when the registry (or the URL's host) is insecure.
    pub(crate) fn http(&self, registry: &str, url: &url::Url) -> &reqwest::Client {
        self.plain_http.client(&self.http, registry, url)
    }

    /// The options this client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// `http(s)://host/v2/<path>` for a registry as written in references.
    pub(crate) fn url(&self, registry: &str, path: &str) -> Result<url::Url, RegistryError> {
        let scheme = self.plain_http.scheme(registry);
        let s = format!("{scheme}://{}{path}", api_host(registry));
        url::Url::parse(&s).map_err(|e| RegistryError::Protocol {
            registry: registry.into(),
            message: format!("bad URL {s}: {e}"),
        })
    }

    /// `op` on `repository` at `/v2/<path>/<tail>` (`manifests/latest`, `blobs/uploads/`).
    pub(crate) fn request<'a>(
        &self,
        op: Operation,
        repository: &'a Repository,
        tail: &str,
    ) -> Result<Request<'a>, RegistryError> {
        let path = format!("/v2/{}/{tail}", repository.path());
        Ok(Request::new(
            op,
            repository,
            self.url(repository.registry(), &path)?,
        ))
    }

    /// Slots for requests awaiting their answer from `registry`.
    pub(super) fn waiting_slots(&self, registry: &str) -> Arc<Semaphore> {
        self.waiting
            .lock()
            .entry(registry.to_string())
            .or_insert_with(|| {
                let n = self
                    .opts
                    .requests_per_registry
                    .unwrap_or(REQUESTS_PER_REGISTRY);
                Arc::new(Semaphore::new(n.max(1)))
            })
            .clone()
    }

    /// Tells the observer, when there is one, how an attempt ended.
    pub(crate) fn observe(&self, registry: &str, status: Option<u16>) {
        if let Some(o) = &self.opts.observer {
            o.0.answered(registry, status);
        }
    }

    /// Waits for the gate (fleet-wide pause or rate limit), when there is one.
    pub(crate) async fn admit(&self, registry: &str) {
        if let Some(gate) = &self.opts.gate {
            gate.0.before(registry).await;
        }
    }

    /// The `Authorization` header for `scope` at `registry`, when it needs one.
    pub(crate) async fn authorization(
        &self,
        registry: &str,
        scope: &Scope,
    ) -> Result<Option<reqwest::header::HeaderValue>, RegistryError> {
        let policy = TokenPolicy {
            timeout: self.opts.timeouts.request,
            insecure: &self.plain_http,
        };
        let creds = &self.opts.credentials;
        self.auth
            .authorization(&self.http, registry, scope, creds, &policy)
            .await
    }

    /// What is known of `registry`'s quirks (configured chunk size over what was learnt).
    pub(crate) async fn quirks(&self, registry: &str) -> Quirks {
        let configured = self.options().chunk_sizes.get(registry).copied();
        self.quirks
            .get(registry, self.options().quirks_store.as_ref(), configured)
            .await
    }

    /// Records something learnt about `registry`.
    pub(crate) async fn learn(&self, registry: &str, change: impl FnOnce(&mut Quirks)) {
        // Loaded first, so the change lands on the configured and shared knowledge.
        self.quirks(registry).await;
        self.quirks
            .learn(registry, self.options().quirks_store.as_ref(), change)
            .await
    }
}
