//! One real `docker-registry serve` process per test.
//!
//! Why: the mirror's behaviour (retries, digests, auth, TLS) is only believable
//! when checked against the real CNCF distribution server, not a mock. Each
//! [`Registry`] owns a child process on a free loopback port with its storage,
//! configuration, certificates and logs in a private temporary directory, and
//! kills the process when dropped so no test leaves one behind.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::access_log::{self, Request};
use crate::tls::{self, TlsFiles};

/// How long a registry may take to answer `GET /v2/` after being spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How many fresh ports to try when another process grabs ours first.
const PORT_ATTEMPTS: usize = 5;
/// The user agent of the test bed's own requests, so tests can tell them apart
/// from the mirror's in [`Registry::requests`].
pub const TESTBED_USER_AGENT: &str = "mirror-tests";

/// How a [`Registry`] is set up.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Serve HTTPS with a certificate from a freshly generated CA.
    pub tls: bool,
    /// Require HTTP Basic auth with this user and password (htpasswd, bcrypt).
    pub htpasswd: Option<(String, String)>,
    /// Require Bearer tokens from this token service (distribution's `token`
    /// access controller), e.g. [`crate::TokenServer::registry_auth`]. Not
    /// together with `htpasswd`. The test bed's own API helpers only speak
    /// Basic, so read such a registry with the token server's helpers.
    pub token_auth: Option<TokenAuth>,
    /// Accept manifests whose layers name `urls` (foreign / non-distributable layers),
    /// which distribution refuses unless an allow list is configured.
    pub allow_layer_urls: bool,
    /// Send distribution's notifications (every push, pull, mount, delete) to this
    /// endpoint, as a registry configured for the mirror's `--listen-events` does.
    pub notifications: Option<Notifications>,
}

/// A `notifications:` endpoint of a registry's config.
#[derive(Debug, Clone)]
pub struct Notifications {
    /// Where the envelopes are POSTed (`http://127.0.0.1:PORT/events/<sender>`).
    pub url: String,
    /// Sent as `Authorization: Bearer <token>` (the endpoint's `headers`).
    pub token: String,
}

/// The `auth: token:` settings of a registry: where clients get tokens and
/// which tokens the registry accepts.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    /// The token endpoint URL, sent to clients in the `Bearer realm=` challenge.
    pub realm: String,
    /// The service name: sent in the challenge and required as the token's `aud`.
    pub service: String,
    /// The only accepted `iss` of a token.
    pub issuer: String,
    /// PEM certificates a token's `x5c` chain must verify against.
    pub root_cert_bundle: PathBuf,
}

/// A running `docker-registry` child process. Dropping it kills the process.
pub struct Registry {
    dir: TempDir,
    port: u16,
    child: Option<Child>,
    pid: u32,
    tls: Option<TlsFiles>,
    credentials: Option<(String, String)>,
    /// `host:port` of the plain-HTTP token service, for token-auth registries.
    token_host: Option<String>,
    access_log: PathBuf,
    app_log: PathBuf,
}

impl Registry {
    /// Starts a plain-HTTP, anonymous registry.
    pub async fn start() -> Result<Registry> {
        Self::start_with(RegistryOptions::default()).await
    }

    /// Starts a registry with the given options and waits until it answers.
    pub async fn start_with(options: RegistryOptions) -> Result<Registry> {
        let mut dir = tempfile::Builder::new()
            .prefix("mirror-registry-")
            .tempdir()
            .context("creating the registry's temporary directory")?;
        if options.htpasswd.is_some() && options.token_auth.is_some() {
            bail!("a registry takes either htpasswd or token auth, not both");
        }
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).context("creating the storage directory")?;
        let tls = if options.tls {
            Some(tls::generate(dir.path())?)
        } else {
            None
        };
        let htpasswd = match &options.htpasswd {
            Some((user, pass)) => Some(write_htpasswd(dir.path(), user, pass)?),
            None => None,
        };

        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let mut config = config_yaml(port, &storage, tls.as_ref(), htpasswd.as_deref());
            if let Some(token) = &options.token_auth {
                config.push_str(&token_auth_yaml(token));
            }
            if let Some(n) = &options.notifications {
                config.push_str(&notifications_yaml(n));
            }
            if options.allow_layer_urls {
                config.push_str(
                    "validation:\n  manifests:\n    urls:\n      allow:\n        - '^https?://'\n",
                );
            }
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).context("writing config.yml")?;
            let access_log = dir.path().join("stdout-access.log");
            let app_log = dir.path().join("stderr-app.log");
            let child = spawn(&config_path, &access_log, &app_log)?;
            let mut registry = Registry {
                pid: child.id(),
                child: Some(child),
                dir,
                port,
                tls: tls.clone(),
                credentials: options.htpasswd.clone(),
                token_host: options.token_auth.as_ref().and_then(|t| {
                    t.realm
                        .strip_prefix("http://")
                        .and_then(|rest| rest.split('/').next())
                        .map(str::to_string)
                }),
                access_log,
                app_log,
            };
            match registry.wait_ready().await {
                Ok(()) => return Ok(registry),
                Err(err) => {
                    registry.stop();
                    let logs = registry.logs();
                    if !logs.contains("address already in use") {
                        bail!("{err:#}\ndocker-registry log:\n{logs}");
                    }
                    last_error = Some(err);
                    // Take the directory back for the next attempt; Drop has nothing left to kill.
                    dir = std::mem::replace(&mut registry.dir, placeholder_dir()?);
                }
            }
        }
        let last_error = last_error.map(|e| format!("{e:#}")).unwrap_or_default();
        bail!("docker-registry never got a free port in {PORT_ATTEMPTS} attempts: {last_error}")
    }

    /// `host:port` of this registry's plain-HTTP token service, when it has one: the test
    /// bed names it insecure, as an operator must for credentials to be sent there.
    pub fn token_host(&self) -> Option<&str> {
        self.token_host.as_deref()
    }

    /// `127.0.0.1:PORT`, the registry host as used in image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// The port the registry listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The process id of the `docker-registry` child.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The CA certificate (PEM) to trust when the registry serves TLS.
    pub fn ca_file(&self) -> Option<&Path> {
        self.tls.as_ref().map(|t| t.ca.as_path())
    }

    /// The user and password required by an htpasswd registry.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The temporary directory holding config, certificates, logs and storage.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The filesystem driver's root directory.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where distribution stores the bytes of a blob:
    /// `docker/registry/v2/blobs/sha256/<first two hex>/<hex>/data`.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let (algorithm, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
        let prefix = hex.get(..2).unwrap_or(hex);
        self.storage_dir()
            .join("docker/registry/v2/blobs")
            .join(algorithm)
            .join(prefix)
            .join(hex)
            .join("data")
    }

    /// Overwrites the start of a stored blob with different bytes (each byte
    /// inverted), keeping its length, so the registry serves content whose
    /// sha256 no longer matches `digest`.
    pub fn corrupt_blob(&self, digest: &str) -> Result<()> {
        let path = self.blob_data_path(digest);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening blob {digest} at {}", path.display()))?;
        let mut head = vec![0u8; 64 * 1024];
        let n = file.read(&mut head).context("reading the blob")?;
        if n == 0 {
            bail!("blob {digest} is empty and cannot be corrupted");
        }
        head.truncate(n);
        head.iter_mut().for_each(|b| *b = !*b);
        file.seek(SeekFrom::Start(0)).context("seeking the blob")?;
        file.write_all(&head).context("overwriting the blob")?;
        file.sync_all().context("syncing the blob")
    }

    /// A reqwest client that trusts this registry's CA (when TLS) and sends
    /// [`TESTBED_USER_AGENT`]. Credentials are not attached: see [`crate::api`].
    pub fn client(&self) -> Result<reqwest::Client> {
        let mut builder = reqwest::Client::builder()
            .user_agent(TESTBED_USER_AGENT)
            .connect_timeout(Duration::from_secs(5))
            .read_timeout(Duration::from_secs(120));
        if let Some(tls) = &self.tls {
            let pem = std::fs::read(&tls.ca).context("reading ca.pem")?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).context("parsing ca.pem")?;
            builder = builder.tls_certs_only(certs);
        }
        builder.build().context("building the HTTP client")
    }

    /// Every request the registry has logged so far, oldest first.
    ///
    /// distribution writes an access-log line right after its handler returns,
    /// which for large bodies can be just after the client saw the last byte;
    /// so this re-reads the log (blocking for a few tens of milliseconds)
    /// until it stops growing.
    pub fn requests(&self) -> Vec<Request> {
        access_log::parse(&self.settled_access_log())
    }

    /// The logged requests the mirror sent (by its user agent), not the test bed's own.
    pub fn requests_from_the_mirror(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.user_agent.starts_with("image-mirror/"))
            .collect()
    }

    /// How many logged requests have this method and a URI containing `path_contains`.
    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.contains(path_contains))
            .count()
    }

    /// The application log (stderr) followed by the access log (stdout), for
    /// failure messages.
    pub fn logs(&self) -> String {
        let app = std::fs::read_to_string(&self.app_log).unwrap_or_default();
        let access = std::fs::read_to_string(&self.access_log).unwrap_or_default();
        format!("--- stderr (application log) ---\n{app}--- stdout (access log) ---\n{access}")
    }

    /// Kills the process and waits for it. Safe to call more than once.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Polls `GET /v2/` until it answers 200 or 401, the process dies, or the
    /// timeout passes.
    async fn wait_ready(&mut self) -> Result<()> {
        let client = self.client()?;
        let url = format!("{}/v2/", self.url());
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().context("polling docker-registry")? {
                    bail!("docker-registry exited with {status} before answering GET /v2/");
                }
            }
            let last = match client
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
            {
                Ok(resp) if matches!(resp.status().as_u16(), 200 | 401) => return Ok(()),
                Ok(resp) => format!("status {}", resp.status()),
                Err(err) => format!("{err:#}"),
            };
            if Instant::now() > deadline {
                bail!("docker-registry did not answer GET {url} within {READY_TIMEOUT:?} (last: {last})");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn settled_access_log(&self) -> String {
        let read = || std::fs::read_to_string(&self.access_log).unwrap_or_default();
        let mut last = read();
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(25));
            let now = read();
            if now.len() == last.len() {
                return now;
            }
            last = now;
        }
        last
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("url", &self.url())
            .field("pid", &self.pid)
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// The registry binary: `$DOCKER_REGISTRY_BIN`, else Debian's `/usr/bin/docker-registry`.
fn registry_binary() -> PathBuf {
    std::env::var_os("DOCKER_REGISTRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"))
}

fn spawn(config: &Path, access_log: &Path, app_log: &Path) -> Result<Child> {
    let stdout = File::create(access_log).context("creating the access log")?;
    let stderr = File::create(app_log).context("creating the application log")?;
    let bin = registry_binary();
    Command::new(&bin)
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("spawning {} (is docker-registry installed?)", bin.display()))
}

/// Asks the kernel for a free loopback port. Another process may take it
/// before the registry binds it; [`Registry::start_with`] retries then.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr().context("reading the port")?.port())
}

/// An empty directory to swap in while the real one moves to the next attempt.
fn placeholder_dir() -> Result<TempDir> {
    tempfile::tempdir().context("creating a placeholder directory")
}

fn write_htpasswd(dir: &Path, user: &str, pass: &str) -> Result<PathBuf> {
    // Cost 5 keeps registry-side verification fast; distribution accepts $2y$.
    let hash = bcrypt::hash_with_result(pass, 5)
        .context("hashing the htpasswd password")?
        .format_for_version(bcrypt::Version::TwoY);
    let path = dir.join("htpasswd");
    std::fs::write(&path, format!("{user}:{hash}\n")).context("writing htpasswd")?;
    Ok(path)
}

/// Quotes a path as a YAML double-quoted scalar (JSON strings are valid YAML).
fn quote(path: &Path) -> String {
    serde_json::Value::String(path.display().to_string()).to_string()
}

fn config_yaml(
    port: u16,
    storage: &Path,
    tls: Option<&TlsFiles>,
    htpasswd: Option<&Path>,
) -> String {
    let mut yaml = format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
         storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n  secret: mirror-tests-secret\n",
        storage = quote(storage),
    );
    if let Some(tls) = tls {
        yaml.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            quote(&tls.cert),
            quote(&tls.key)
        ));
    }
    if let Some(path) = htpasswd {
        yaml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: mirror-tests\n    path: {}\n",
            quote(path)
        ));
    }
    yaml
}

/// The `notifications:` section: one endpoint, quick to retry (distribution keeps what it
/// could not deliver in memory and tries again after `backoff`).
fn notifications_yaml(n: &Notifications) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    format!(
        "notifications:\n  endpoints:\n    - name: mirror\n      url: {}\n      headers:\n        Authorization: [{}]\n      timeout: 1s\n      threshold: 5\n      backoff: 1s\n",
        q(&n.url),
        q(&format!("Bearer {}", n.token))
    )
}

/// The `auth: token:` section for distribution's token access controller.
fn token_auth_yaml(token: &TokenAuth) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    format!(
        "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
        q(&token.realm),
        q(&token.service),
        q(&token.issuer),
        quote(&token.root_cert_bundle)
    )
}
