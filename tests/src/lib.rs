//! The integration test bed: real `docker-registry` processes on loopback,
//! fixture images pushed through the registry API, docker credential files and
//! the workspace's binaries.
//!
//! Why a library: every end-to-end test (worker, scheduler, benchmarks) needs
//! the same registries and fixtures, built independently of the code under
//! test so a bug there cannot hide itself.

pub mod access_log;
pub mod api;
pub mod artifacts;
pub mod binaries;
pub mod cred_helper;
pub mod docker_config;
pub mod fixtures;
pub mod fleet;
pub mod inspect;
pub mod layer;
pub mod manifests;
pub mod media_types;
pub mod mirror;
pub mod object_store;
pub mod oversized_token_service;
pub mod proxy;
mod referrers_front;
pub mod registry;
pub mod registry_shapes;
pub mod skipped;
pub mod tcp_proxy;
pub mod test_io;
pub mod tls;
pub mod token_server;

pub use access_log::Request;
pub use api::RegistryApi;
pub use binaries::binary;
pub use docker_config::{write_docker_config, DockerConfig};
pub use fixtures::{
    push_bad_and_good, push_image, push_index, seed_numbered, three_platform_index_spec, Format,
    ImageSpec, PushedImage, PushedIndex, Seeded,
};
pub use inspect::{blob_exists, catalog, get_blob, get_manifest, manifest_digest, tags};
pub use layer::{sha256_digest, Blob, Layer};
pub use proxy::{Answer, FaultRule, Proxy, SeenRequest};
pub use registry::{Notifications, Registry, RegistryOptions, TokenAuth, TESTBED_USER_AGENT};
pub use registry_shapes::Shape;
pub use tcp_proxy::TcpProxy;
pub use token_server::{copy_storage, TokenRequest, TokenServer, TokenServerOptions};
