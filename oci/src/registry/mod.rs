//! The registry client, laid out like the distribution spec: authentication, manifests,
//! blobs, tags, with transport and retries underneath.

mod api;
pub mod auth;
pub mod blobs;
pub mod body;
mod client;
mod code;
mod cred_helper;
pub mod credentials;
mod credentials_dir;
#[cfg(test)]
mod credentials_tests;
pub mod error;
pub mod gate;
mod idle;
mod insecure;
pub mod manifests;
pub mod observer;
pub mod quirks;
mod ratelimit;
pub mod referrers;
pub mod retry;
pub mod tags;
mod timeouts;
mod token;
pub mod upload;

pub use api::{BlobBody, ByteStream, Registries};
pub use blobs::MountOutcome;
pub use client::{ClientOptions, RegistryClient};
pub use code::ErrorCode;
pub use credentials::{Credential, CredentialStore};
pub use credentials_dir::{CredentialsDir, Located};
pub use error::RegistryError;
pub use gate::{Gate, RequestGate};
pub use insecure::{HttpClients, HttpFallback, PlainHttp};
pub use observer::{Observer, RequestObserver};
pub use quirks::{Quirks, QuirksStore, SharedQuirks};
pub use retry::RetryPolicy;
pub use tags::TagsPage;
pub use timeouts::Timeouts;
