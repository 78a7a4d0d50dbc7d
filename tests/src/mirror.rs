//! Glue between the test bed and the code under test: engines and command lines that
//! reach the test registries (plain HTTP ones named insecure, TLS ones through their CA).

use std::ffi::OsString;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use mirror_common::copy::{CopyEngine, CopyOptions};
use mirror_common::index::{BlobIndex, MemoryIndex};
use mirror_common::registry::{ClientOptions, CredentialStore, RegistryClient, RetryPolicy};

use crate::registry::Registry;

/// Client options for these registries: plain ones insecure, TLS ones trusted by CA,
/// credentials from `docker_config` when given, quick retries.
pub fn client_options(registries: &[&Registry], docker_config: Option<&Path>) -> ClientOptions {
    let mut opts = ClientOptions {
        credentials: match docker_config {
            Some(p) => CredentialStore::from_file(p).expect("docker config"),
            None => CredentialStore::default(),
        },
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: std::time::Duration::from_millis(50),
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    };
    for r in registries {
        match r.ca_file() {
            Some(ca) => opts.ca_files.push(ca.to_path_buf()),
            None => {
                opts.insecure_registries.insert(r.host());
            }
        }
        if let Some(t) = r.token_host() {
            opts.insecure_registries.insert(t.to_string());
        }
    }
    opts
}

/// A copy engine over a fresh in-memory index.
pub fn engine(
    registries: &[&Registry],
    docker_config: Option<&Path>,
    copy: CopyOptions,
) -> CopyEngine {
    engine_with_index(
        registries,
        docker_config,
        copy,
        Arc::new(MemoryIndex::new()),
    )
}

/// A copy engine over the given index.
pub fn engine_with_index(
    registries: &[&Registry],
    docker_config: Option<&Path>,
    copy: CopyOptions,
    index: Arc<dyn BlobIndex>,
) -> CopyEngine {
    let client = RegistryClient::new(client_options(registries, docker_config)).expect("client");
    CopyEngine::new(Arc::new(client), index, copy)
}

/// The registry flags of the binaries for these registries.
pub fn registry_flags(registries: &[&Registry]) -> Vec<String> {
    let mut flags = vec!["--retry-delay".to_string(), "50ms".to_string()];
    for r in registries {
        match r.ca_file() {
            Some(ca) => flags.extend(["--ca-file".to_string(), ca.display().to_string()]),
            None => flags.extend(["--insecure-registry".to_string(), r.host()]),
        }
        if let Some(t) = r.token_host() {
            flags.extend(["--insecure-registry".to_string(), t.to_string()]);
        }
    }
    flags
}

/// Runs a workspace binary with arguments, without the caller's docker config, in a home
/// of its own (so an embedded run remembers nothing from one call to the next unless its
/// arguments name a `--state` file).
pub fn run_binary(name: &str, args: &[String]) -> Output {
    run_binary_with_env(name, args, &[])
}

/// [`run_binary`] with more environment for the child only (e.g. a `PATH` that finds
/// fake credential helpers): the test process's own environment is never changed, as
/// tests run in parallel threads of it.
pub fn run_binary_with_env(name: &str, args: &[String], env: &[(String, OsString)]) -> Output {
    let home = tempfile::tempdir().expect("temp home");
    Command::new(crate::binary(name))
        .args(args)
        .env("HOME", home.path())
        // An embedded run's state file goes under that home, and goes with it.
        .env_remove("XDG_STATE_HOME")
        .env_remove("MIRROR_STATE")
        .env_remove("DOCKER_CONFIG")
        .env_remove("REGISTRY_CONFIG")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .expect("run binary")
}
