//! The registry client, laid out like the distribution spec: authentication, manifests,
//! blobs, tags, with transport and retries underneath.

pub mod auth;
pub mod blobs;
mod client;
pub mod credentials;
pub mod error;
pub mod gate;
pub mod manifests;
pub mod retry;
pub mod tags;

pub use blobs::MountOutcome;
pub use client::{ClientOptions, RegistryClient};
pub use credentials::{Credential, CredentialStore};
pub use error::RegistryError;
pub use gate::{Gate, RequestGate};
pub use retry::RetryPolicy;
