//! How to reach registries: the flags of every command that talks to one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use mirror_common::copy::CopyOptions;
use mirror_common::credential_engines::Engines;
use mirror_common::index::BlobIndex;
use mirror_common::registry::{
    ClientOptions, CredentialStore, Gate, HttpFallback, RegistryClient, RegistryError, RetryPolicy,
    SharedQuirks, Timeouts,
};

use crate::durations::{deprecated_millis, parse_duration};

/// How to reach registries.
#[derive(Args, Clone, Debug)]
#[command(mut_arg("insecure", crate::oc_bool))]
pub struct RegistryArgs {
    /// Docker config.json with registry credentials (default: $DOCKER_CONFIG/config.json,
    /// then ~/.docker/config.json); skopeo's --authfile is the same file.
    #[arg(
        short = 'a',
        long = "registry-config",
        visible_alias = "authfile",
        env = "REGISTRY_CONFIG",
        value_name = "PATH"
    )]
    pub registry_config: Option<PathBuf>,
    /// Insecure registry, as Docker's insecure-registries: HOST for every port of it,
    /// HOST:PORT for that port only; repeatable. It is tried over HTTPS with its certificate
    /// NOT checked, and spoken to over plain HTTP once it answers in it. Credentials may go
    /// to a plain-HTTP token service on it. Loopback registries (localhost, 127.0.0.0/8,
    /// ::1) need none for plain HTTP: they are tried over HTTPS, certificates checked, and
    /// spoken to over plain HTTP when they answer in it.
    #[arg(
        long = "insecure-registry",
        env = "INSECURE_REGISTRIES",
        value_delimiter = ',',
        value_name = "HOST[:PORT]"
    )]
    pub insecure_registries: Vec<String>,
    /// oc's flag: every registry is insecure. Each is tried over HTTPS with its certificate
    /// NOT checked, and spoken to over plain HTTP when it answers in it. Credentials go to a
    /// plain-HTTP token service only on hosts of --insecure-registry.
    #[arg(long = "insecure", default_value_t = false)]
    pub insecure: bool,
    /// PEM file of extra CA certificates trusted on top of the system's; repeatable.
    #[arg(long = "ca-file", value_name = "PATH")]
    pub ca_files: Vec<PathBuf>,
    /// Tries of one registry request (the first included) on connection errors, 429, 5xx.
    #[arg(long = "retry-attempts", default_value_t = RetryPolicy::MAX_ATTEMPTS, value_name = "N")]
    pub retry_attempts: u32,
    /// Delay before the first retry of a registry request, doubled each time (a
    /// Retry-After header wins).
    #[arg(
        long = "retry-delay",
        default_value_t = RetryPolicy::BASE_DELAY.into(),
        value_parser = parse_duration_flag,
        value_name = "DURATION"
    )]
    pub retry_delay: humantime::Duration,
    /// The old spelling of --retry-delay, in milliseconds.
    #[arg(
        long = "retry-delay-ms",
        hide = true,
        conflicts_with = "retry_delay",
        value_parser = deprecated_millis("--retry-delay-ms", "--retry-delay"),
        value_name = "MS"
    )]
    pub retry_delay_ms: Option<Duration>,
    /// Time to establish a connection to a registry.
    #[arg(long = "connect-timeout", default_value_t = Timeouts::CONNECT.into(), value_parser = parse_duration_flag, value_name = "DURATION")]
    pub connect_timeout: humantime::Duration,
    /// Time for the whole of a small request (manifest, HEAD, tag list, token) and for the
    /// first answer to a blob download.
    #[arg(long = "request-timeout", default_value_t = Timeouts::REQUEST.into(), value_parser = parse_duration_flag, value_name = "DURATION")]
    pub request_timeout: humantime::Duration,
    /// A blob transfer fails when no byte moves for this long (the source sends nothing, or
    /// the destination takes nothing); no limit on its total time while bytes flow.
    #[arg(long = "idle-timeout", default_value_t = Timeouts::IDLE.into(), value_parser = parse_duration_flag, value_name = "DURATION")]
    pub idle_timeout: humantime::Duration,
    /// Upload blobs to this registry in chunks of at most SIZE (PATCH), for registries or
    /// proxies with a body size limit; repeatable. Without it, a registry that answers 413
    /// gets chunks of 16 MiB from then on.
    #[arg(long = "chunk-size", value_name = "REGISTRY=SIZE")]
    pub chunk_sizes: Vec<String>,
}

/// [`parse_duration`] for a `humantime::Duration` field (its help shows `10s`, not a
/// number of nanoseconds).
pub(crate) fn parse_duration_flag(value: &str) -> Result<humantime::Duration, String> {
    parse_duration(value).map(Into::into)
}

/// Where named push credentials are (commands that copy jobs naming them: `run`).
#[derive(Args, Clone, Debug, Default)]
pub struct CredentialsDirArgs {
    /// Directory of named push credentials, one docker config per name as Kubernetes
    /// mounts Secrets (DIR/NAME/config.json or DIR/NAME/.dockerconfigjson): a job naming
    /// credentials is copied with them (over -a's), re-read when the files change.
    #[arg(long = "credentials-dir", env = "CREDENTIALS_DIR", value_name = "DIR")]
    pub credentials_dir: Option<PathBuf>,
}

impl RegistryArgs {
    /// A registry client configured by these flags. Its requests are counted in the
    /// process's metrics.
    pub fn client(&self) -> Result<Arc<RegistryClient>, RegistryError> {
        Ok(Arc::new(RegistryClient::new(self.client_options()?)?))
    }

    /// The client options of [`client`](Self::client), for a command that adds to them
    /// (`copy --src-tls-verify=false`).
    pub fn client_options(&self) -> Result<ClientOptions, RegistryError> {
        self.options(FleetHooks::default())
    }

    /// The copy engines of a process that copies: one for jobs without a credentials name,
    /// one per name found under `--credentials-dir`, all over `index`, their requests
    /// passing the fleet's hooks when there is a fleet.
    pub fn engines(
        &self,
        named: &CredentialsDirArgs,
        fleet: FleetHooks,
        index: Arc<dyn BlobIndex>,
        copy: CopyOptions,
    ) -> Result<Engines, RegistryError> {
        let options = self.options(fleet)?;
        Engines::new(options, named.credentials_dir.clone(), index, copy)
    }

    /// The delay before the first retry, from whichever spelling was given.
    pub fn retry_delay(&self) -> Duration {
        self.retry_delay_ms
            .unwrap_or_else(|| self.retry_delay.into())
    }

    /// The client options these flags describe.
    fn options(&self, fleet: FleetHooks) -> Result<ClientOptions, RegistryError> {
        let FleetHooks { gate, quirks } = fleet;
        let credentials = CredentialStore::load(self.registry_config.as_deref())?;
        let opts = ClientOptions {
            credentials,
            insecure_registries: self
                .insecure_registries
                .iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            http_fallback: HttpFallback {
                everywhere: self.insecure,
                ..HttpFallback::default()
            },
            ca_files: self.ca_files.clone(),
            retry: RetryPolicy {
                max_attempts: self.retry_attempts.max(1),
                base_delay: self.retry_delay(),
                ..RetryPolicy::default()
            },
            gate,
            observer: Some(mirror_fleet::observe::metrics::observer()),
            timeouts: Timeouts {
                connect: self.connect_timeout.into(),
                request: self.request_timeout.into(),
                idle: self.idle_timeout.into(),
            },
            chunk_sizes: crate::sizes::parse_chunk_sizes(&self.chunk_sizes)
                .map_err(RegistryError::Config)?,
            quirks_store: quirks,
            requests_per_registry: None,
        };
        Ok(opts)
    }
}

/// What a fleet worker's registry requests share with the other workers: the gate
/// (fleet-wide pauses and rate limits) and what was learnt about registries.
#[derive(Default)]
pub struct FleetHooks {
    /// Pauses and rate limits shared through Redis.
    pub gate: Option<Gate>,
    /// Registry quirks (413s, mounts) shared through Redis.
    pub quirks: Option<SharedQuirks>,
}
