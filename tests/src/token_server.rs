//! An in-process Docker token service, the `realm` of registries started with
//! [`RegistryOptions::token_auth`](crate::RegistryOptions).
//!
//! Why: most registries (Docker Hub, GHCR, Quay, Harbor) do not take Basic
//! credentials on `/v2/` but send the client to a token service (the
//! distribution "token authentication" flow). The mirror's Bearer client is
//! only believable when a real `docker-registry` checks the tokens it comes
//! back with, so this serves `GET /token?service=S&scope=...` on
//! `127.0.0.1:<free port>` and issues JWTs that distribution 2.8's `token`
//! access controller accepts, and records every request so tests can assert
//! on the scopes the client asked for.
//!
//! What distribution requires of a token (`registry/auth/token/token.go`):
//! - compact JWS `header.claims.signature`, base64url without padding;
//! - header `alg` matching the key (`ES256`: P-256 key, signature the 64-byte
//!   `r||s`, not DER), and the signing key found through `x5c` (standard
//!   base64 DER certificates, the first one the signer, verified by Go's x509
//!   against `rootcertbundle`; a self-signed signer that is itself in the
//!   bundle verifies), `jwk` or `kid` (the libtrust key id of a bundle key);
//! - `iss` equal to the configured issuer, `aud` (a string) equal to the
//!   service, `exp`/`nbf` within 60 s of leeway (so a token only the client
//!   considers expired is still accepted);
//! - `access: [{"type":"repository","name":..,"actions":[..]}]` holding every
//!   action the request needs, including `pull` on the `from` repository of a
//!   cross-repository mount; a missing action is a 401 `insufficient_scope`.
//!
//! Identity tokens (docker's `identitytoken`, a helper's `<token>` user) take the OAuth2
//! flow of the token spec ("OAuth2 token"): `POST /token` with a form body. Shaped like
//! distribution's spec and RFC 6749: `grant_type=refresh_token` (any other grant is a
//! 400 `unsupported_grant_type`), `client_id` required (400 `invalid_request`),
//! `refresh_token` one of [`TokenServerOptions::refresh_tokens`] (else 400
//! `invalid_grant`), `service`, and `scope` space-separated in one or more fields. The
//! answer holds `access_token` only (no `token`), so a client reading only the GET
//! flow's field fails. The POST is served only when refresh tokens are configured;
//! otherwise it is a 404, as at token services without OAuth2, where clients fall back
//! to GET. Every request, GET or POST, is recorded with its method and grant type.
//!
//! The server runs on its own thread and runtime, so it answers while a test
//! blocks on a child process (`mirror-worker`) or on a single-threaded runtime.

use parking_lot::Mutex;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Context, Result};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{CertificateParams, DnType, KeyPair};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::media_types::accept_all_manifests;
use crate::registry::{Registry, TokenAuth};

/// The service name registries are configured with; a token's `aud`.
pub const SERVICE: &str = "test-registry";
/// The issuer registries trust; a token's `iss`.
pub const ISSUER: &str = "test-issuer";
/// distribution's clock-skew leeway on `exp` and `nbf`.
const REGISTRY_LEEWAY: Duration = Duration::from_secs(60);

/// How a [`TokenServer`] hands out tokens.
#[derive(Debug, Clone)]
pub struct TokenServerOptions {
    /// The one user and password accepted (HTTP Basic on the token request).
    /// Requests with them are granted every action they ask for; requests
    /// with any other credentials get 401.
    pub credentials: Option<(String, String)>,
    /// Whether requests without credentials get a token (holding only the
    /// `pull` actions asked for). When false they get 401.
    pub anonymous_pull: bool,
    /// The `expires_in` of every answer, in seconds; the token's `exp` is
    /// this far after its `iat`.
    pub expires_in: u64,
    /// More users, each `(user, password, repository prefix)`: granted `pull`
    /// everywhere and the other actions only on repositories starting with its
    /// prefix, as a registry that lets each team push to its own repositories.
    pub scoped_users: Vec<(String, String, String)>,
    /// OAuth2 refresh tokens, each `(token, user)`: the refresh-token grant (`POST
    /// /token`) with one of them is granted every action asked for, as that user. When
    /// empty, `POST /token` is a 404.
    pub refresh_tokens: Vec<(String, String)>,
}

impl Default for TokenServerOptions {
    fn default() -> Self {
        TokenServerOptions {
            credentials: None,
            anonymous_pull: true,
            expires_in: 300,
            scoped_users: Vec::new(),
            refresh_tokens: Vec::new(),
        }
    }
}

impl TokenServerOptions {
    /// Only `user`/`pass` gets tokens; anonymous requests get 401.
    pub fn with_user(user: &str, pass: &str) -> Self {
        TokenServerOptions {
            credentials: Some((user.to_string(), pass.to_string())),
            anonymous_pull: false,
            ..TokenServerOptions::default()
        }
    }
}

/// One request to the token endpoint, as the server understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The `service` parameter, if any.
    pub service: Option<String>,
    /// Every `scope` parameter in order, e.g. `repository:a/b:pull,push`.
    pub scopes: Vec<String>,
    /// The Basic-auth user name, `None` for an anonymous request; for a refresh-token
    /// grant, the user whose token it is (`None`: not a known token).
    pub user: Option<String>,
    /// What the server answered: 200 with a token, 401 refused, 400 a refused OAuth2
    /// grant, 404 wrong path (or a POST when no refresh tokens are configured).
    pub status: u16,
    /// The request's method, `GET` or `POST`.
    pub method: String,
    /// The `grant_type` of a POST's form (`refresh_token`), `None` for a GET.
    pub grant_type: Option<String>,
}

/// A running token service on `127.0.0.1:<free port>`. Dropping it stops the
/// server and its thread.
pub struct TokenServer {
    state: Arc<State>,
    port: u16,
    root_cert: PathBuf,
    _dir: TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the server thread shares with the [`TokenServer`] handle.
struct State {
    options: TokenServerOptions,
    signer: Signer,
    requests: Mutex<Vec<TokenRequest>>,
    /// How many of the next issued tokens are already expired beyond the leeway.
    reject_next: AtomicUsize,
}

/// The ES256 signing key and its self-signed certificate.
struct Signer {
    key: EcdsaKeyPair,
    rng: SystemRandom,
    /// Standard base64 of the certificate's DER, the one `x5c` entry.
    x5c: String,
}

impl TokenServer {
    /// Generates a signing key and certificate (written as the registries'
    /// `rootcertbundle`) and starts serving `GET /token`.
    pub fn start(options: TokenServerOptions) -> Result<TokenServer> {
        let dir = tempfile::Builder::new()
            .prefix("mirror-token-server-")
            .tempdir()
            .context("creating the token server's directory")?;
        let (signer, pem) = Signer::generate()?;
        let root_cert = dir.path().join("root.pem");
        std::fs::write(&root_cert, pem).context("writing root.pem")?;

        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .context("binding the token server's port")?;
        listener
            .set_nonblocking(true)
            .context("making the token server's socket non-blocking")?;
        let port = listener
            .local_addr()
            .context("reading the token server's port")?
            .port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("building the token server's runtime")?;
        let state = Arc::new(State {
            options,
            signer,
            requests: Mutex::new(Vec::new()),
            reject_next: AtomicUsize::new(0),
        });
        let (shutdown, stopped) = oneshot::channel();
        let thread_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("token-server".into())
            .spawn(move || runtime.block_on(accept_loop(listener, thread_state, stopped)))
            .context("spawning the token server's thread")?;
        Ok(TokenServer {
            state,
            port,
            root_cert,
            _dir: dir,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT/token`, the realm registries send clients to.
    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The PEM certificate tokens are signed under (the `rootcertbundle`).
    pub fn root_cert(&self) -> &Path {
        &self.root_cert
    }

    /// The registry settings that make a registry trust this server:
    /// `RegistryOptions { token_auth: Some(server.registry_auth()), ..Default::default() }`.
    pub fn registry_auth(&self) -> TokenAuth {
        TokenAuth {
            realm: self.realm(),
            service: SERVICE.to_string(),
            issuer: ISSUER.to_string(),
            root_cert_bundle: self.root_cert.clone(),
        }
    }

    /// Every token request so far, oldest first.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.state.requests.lock().clone()
    }

    /// Forgets the requests seen so far, e.g. after a test's setup.
    pub fn clear_requests(&self) {
        self.state.requests.lock().clear();
    }

    /// Makes the next `n` tokens issued over HTTP expired beyond the
    /// registry's leeway (the answer still says `expires_in` as configured),
    /// so the registry refuses them with 401 as it would a revoked token.
    pub fn reject_next_tokens(&self, n: usize) {
        self.state.reject_next.store(n, Ordering::SeqCst);
    }

    /// A token granting exactly `scopes` (`repository:NAME:ACTIONS`), minted
    /// directly and not recorded: for the test's own reads and writes.
    pub fn token(&self, scopes: &[&str]) -> Result<String> {
        let access: Vec<Value> = scopes
            .iter()
            .filter_map(|s| grant(s, Rights::All))
            .collect();
        self.state
            .signer
            .issue("mirror-tests", access, self.state.options.expires_in, false)
    }

    /// The digest of `repo:reference` in a registry that trusts this server,
    /// or `None` when unknown: the test bed's `manifest_digest` for token
    /// registries (a HEAD with a freshly minted pull token).
    pub async fn manifest_digest(
        &self,
        registry: &Registry,
        repo: &str,
        reference: &str,
    ) -> Result<Option<String>> {
        let token = self.token(&[&format!("repository:{repo}:pull")])?;
        let resp = registry
            .client()?
            .head(format!(
                "{}/v2/{repo}/manifests/{reference}",
                registry.url()
            ))
            .bearer_auth(token)
            .header("Accept", accept_all_manifests())
            .send()
            .await
            .with_context(|| format!("HEAD manifest {repo}:{reference}"))?;
        match resp.status().as_u16() {
            404 => Ok(None),
            200 => resp
                .headers()
                .get("Docker-Content-Digest")
                .and_then(|v| v.to_str().ok())
                .map(|d| Some(d.to_string()))
                .ok_or_else(|| anyhow!("HEAD manifest {repo}:{reference}: no digest header")),
            other => Err(anyhow!(
                "HEAD manifest {repo}:{reference}: unexpected status {other}"
            )),
        }
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for TokenServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenServer")
            .field("realm", &self.realm())
            .field("anonymous_pull", &self.state.options.anonymous_pull)
            .field("expires_in", &self.state.options.expires_in)
            .finish()
    }
}

/// Copies the repositories and blobs of `from`'s storage into `to`'s, file by
/// file. This is how fixtures reach a token registry: push them to a plain
/// registry with the test bed's API (which speaks Basic only), then copy. The
/// test registries configure no cache, so `to` serves the files at once.
pub fn copy_storage(from: &Registry, to: &Registry) -> Result<()> {
    copy_dir(
        &from.storage_dir().join("docker"),
        &to.storage_dir().join("docker"),
    )
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

impl Signer {
    /// A P-256 key and a self-signed certificate for it (PEM).
    fn generate() -> Result<(Signer, String)> {
        let key_pair = KeyPair::generate().context("generating the token signing key")?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .context("signing certificate parameters")?;
        params
            .distinguished_name
            .push(DnType::CommonName, "mirror-tests token signer");
        let cert = params
            .self_signed(&key_pair)
            .context("self-signing the token certificate")?;
        let rng = SystemRandom::new();
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key_pair.serialize_der())
                .map_err(|e| anyhow!("loading the signing key: {e}"))?;
        let signer = Signer {
            key,
            rng,
            x5c: STANDARD.encode(cert.der()),
        };
        Ok((signer, cert.pem()))
    }

    /// A signed JWT for `subject` holding `access`, valid for `lifetime`
    /// seconds from now, or already expired beyond the leeway when `rejected`.
    fn issue(
        &self,
        subject: &str,
        access: Vec<Value>,
        lifetime: u64,
        rejected: bool,
    ) -> Result<String> {
        let now = unix_now();
        let (iat, exp) = if rejected {
            let exp = now - REGISTRY_LEEWAY.as_secs() - 60;
            (exp - lifetime, exp)
        } else {
            (now, now + lifetime)
        };
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]});
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": exp,
            "nbf": iat,
            "iat": iat,
            "jti": format!("{:032x}", rand::random::<u128>()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .map_err(|e| anyhow!("signing a token: {e}"))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// What a token request may be granted beyond `pull`.
#[derive(Clone, Copy)]
enum Rights<'a> {
    /// Anonymous: `pull` only.
    PullOnly,
    /// The main user: every action asked for.
    All,
    /// A scoped user: every action on repositories starting with this prefix.
    Under(&'a str),
}

/// The `access` entry for one scope `TYPE:NAME:ACTIONS` under `rights`; `pull` is always
/// granted. `None` for a malformed scope.
fn grant(scope: &str, rights: Rights<'_>) -> Option<Value> {
    let (kind, rest) = scope.split_once(':')?;
    // A name may hold ':' (a registry host with a port); actions never do.
    let (name, actions) = rest.rsplit_once(':')?;
    let all = match rights {
        Rights::PullOnly => false,
        Rights::All => true,
        Rights::Under(prefix) => name.starts_with(prefix),
    };
    let actions: Vec<&str> = actions
        .split(',')
        .filter(|a| !a.is_empty() && (all || *a == "pull"))
        .collect();
    Some(json!({"type": kind, "name": name, "actions": actions}))
}

/// Accepts connections until `stopped` fires, each served in its own task.
async fn accept_loop(
    listener: std::net::TcpListener,
    state: Arc<State>,
    mut stopped: oneshot::Receiver<()>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(_) => return,
    };
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let state = state.clone();
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |req| {
                            let state = state.clone();
                            async move { Ok::<_, Infallible>(handle(&state, req).await) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.abort_all();
}

/// One token request: parse, authenticate, record, answer.
async fn handle(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() == hyper::Method::POST
        && req.uri().path() == "/token"
        && !state.options.refresh_tokens.is_empty()
    {
        let body = req
            .into_body()
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        return refresh_grant(state, &body);
    }
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let url = reqwest::Url::parse(&format!("http://token-server{path_and_query}"));
    let (path, service, scopes) = match &url {
        Ok(url) => {
            let service = url
                .query_pairs()
                .find(|(k, _)| k == "service")
                .map(|(_, v)| v.into_owned());
            let scopes = scopes_of(url.query_pairs());
            (url.path().to_string(), service, scopes)
        }
        Err(_) => (String::new(), None, Vec::new()),
    };
    let basic = req
        .headers()
        .get(AUTHORIZATION)
        .map(|h| parse_basic(h).unwrap_or_default());
    let user = basic.as_ref().map(|(u, _)| u.clone());
    let record = |status: StatusCode| {
        state.requests.lock().push(TokenRequest {
            service: service.clone(),
            scopes: scopes.clone(),
            user: user.clone(),
            status: status.as_u16(),
            method: req.method().to_string(),
            grant_type: None,
        });
    };
    if req.method() != hyper::Method::GET || path != "/token" {
        record(StatusCode::NOT_FOUND);
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "only GET /token is served",
        );
    }
    let rights = match rights_of(&state.options, basic.as_ref()) {
        Ok(rights) => rights,
        Err(message) => {
            record(StatusCode::UNAUTHORIZED);
            return error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message);
        }
    };
    let access: Vec<Value> = scopes.iter().filter_map(|s| grant(s, rights)).collect();
    let authenticated = !matches!(rights, Rights::PullOnly);
    let rejected = state
        .reject_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let subject = user.clone().filter(|_| authenticated).unwrap_or_default();
    let expires_in = state.options.expires_in;
    match state.signer.issue(&subject, access, expires_in, rejected) {
        Ok(token) => {
            record(StatusCode::OK);
            let body = json!({
                "token": token,
                "access_token": token,
                "expires_in": expires_in,
                "issued_at": rfc3339(unix_now()),
            });
            respond(StatusCode::OK, body)
        }
        Err(e) => {
            record(StatusCode::INTERNAL_SERVER_ERROR);
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                &format!("{e:#}"),
            )
        }
    }
}

/// The `scope` parameters of a token request (query or form); some clients put several
/// scopes in one parameter, space-separated.
fn scopes_of<'a>(
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) -> Vec<String> {
    pairs
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| {
            v.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The OAuth2 refresh-token grant (`POST /token`, a form body): a configured refresh
/// token gets its user a token with every action asked for.
fn refresh_grant(state: &State, body: &[u8]) -> Response<Full<Bytes>> {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let scopes = scopes_of(
        form.iter()
            .map(|(k, v)| (k.as_str().into(), v.as_str().into())),
    );
    let grant_type = field("grant_type");
    let user = field("refresh_token").and_then(|t| {
        state
            .options
            .refresh_tokens
            .iter()
            .find(|(token, _)| *token == t)
            .map(|(_, user)| user.clone())
    });
    let record = |status: StatusCode| {
        state.requests.lock().push(TokenRequest {
            service: field("service"),
            scopes: scopes.clone(),
            user: user.clone(),
            status: status.as_u16(),
            method: "POST".into(),
            grant_type: grant_type.clone(),
        });
    };
    let refused = if grant_type.as_deref() != Some("refresh_token") {
        Some((
            "unsupported_grant_type",
            "only grant_type=refresh_token is served",
        ))
    } else if field("client_id").is_none() {
        Some(("invalid_request", "client_id is required"))
    } else if user.is_none() {
        Some(("invalid_grant", "unknown refresh token"))
    } else {
        None
    };
    if let Some((code, description)) = refused {
        record(StatusCode::BAD_REQUEST);
        return respond(
            StatusCode::BAD_REQUEST,
            json!({"error": code, "error_description": description}),
        );
    }
    let access: Vec<Value> = scopes
        .iter()
        .filter_map(|s| grant(s, Rights::All))
        .collect();
    let rejected = state
        .reject_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let expires_in = state.options.expires_in;
    let subject = user.clone().unwrap_or_default();
    match state.signer.issue(&subject, access, expires_in, rejected) {
        Ok(token) => {
            record(StatusCode::OK);
            let body = json!({
                "access_token": token,
                "scope": scopes.join(" "),
                "expires_in": expires_in,
                "issued_at": rfc3339(unix_now()),
            });
            respond(StatusCode::OK, body)
        }
        Err(e) => {
            record(StatusCode::INTERNAL_SERVER_ERROR);
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "UNKNOWN",
                &format!("{e:#}"),
            )
        }
    }
}

/// What the user of a token request (`None`: anonymous) may be granted, or why it gets
/// nothing.
fn rights_of<'a>(
    options: &'a TokenServerOptions,
    basic: Option<&(String, String)>,
) -> Result<Rights<'a>, &'static str> {
    let scoped = basic.and_then(|(u, p)| {
        options
            .scoped_users
            .iter()
            .find(|(su, sp, _)| su == u && sp == p)
            .map(|(_, _, prefix)| prefix.as_str())
    });
    match (basic, &options.credentials, scoped) {
        (Some(given), Some(expected), _) if given == expected => Ok(Rights::All),
        (Some(_), _, Some(prefix)) => Ok(Rights::Under(prefix)),
        (Some(_), _, None) => Err("wrong user or password"),
        (None, _, _) if options.anonymous_pull => Ok(Rights::PullOnly),
        (None, _, _) => Err("anonymous access is not allowed"),
    }
}

/// `(user, password)` of a `Basic` authorization header.
fn parse_basic(header: &HeaderValue) -> Option<(String, String)> {
    let value = header.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, pass) = decoded.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

fn respond(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// An error in the distribution error-body format; 401s challenge for Basic.
fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    let mut resp = respond(
        status,
        json!({"errors": [{"code": code, "message": message}]}),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"mirror-tests token server\""),
        );
    }
    resp
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (UTC, proleptic Gregorian).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_issued_at_as_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
    }

    #[test]
    fn anonymous_grants_keep_only_pull() {
        assert_eq!(
            grant("repository:a/b:pull,push", Rights::PullOnly),
            Some(json!({"type": "repository", "name": "a/b", "actions": ["pull"]}))
        );
        assert_eq!(
            grant("repository:host:5000/a:pull,push", Rights::All),
            Some(json!({"type": "repository", "name": "host:5000/a", "actions": ["pull", "push"]}))
        );
        assert_eq!(grant("nonsense", Rights::All), None);
    }
}
