//! The registry client, laid out like the distribution spec: the [`Registries`] traits by
//! area (`api.rs`), each implemented for [`RegistryClient`] in the file of its area
//! (`manifests.rs`, `referrers.rs`, `tags.rs`, `blobs.rs`, `upload.rs` and `chunked.rs`);
//! underneath, one request per operation (`request.rs`) through the retry loop
//! (`execute.rs`), authentication (`auth.rs`, `token.rs`, `scope.rs`), credentials
//! (`credential.rs`, `credentials.rs`, `cred_helper.rs`), plain HTTP
//! (`insecure.rs`) and what is learnt of each registry (`quirks.rs`, `ratelimit.rs`).

mod api;
pub mod auth;
pub mod blobs;
pub mod body;
mod chunked;
mod client;
mod code;
mod cred_helper;
mod credential;
pub mod credentials;
mod credentials_dir;
#[cfg(test)]
mod credentials_tests;
pub mod error;
mod execute;
mod failure;
pub mod gate;
mod idle;
mod insecure;
pub mod manifests;
pub mod observer;
pub mod quirks;
mod ratelimit;
pub mod referrers;
mod request;
pub mod retry;
pub mod scope;
pub mod tags;
mod timeouts;
mod token;
pub mod upload;

pub use api::{
    BlobBody, Blobs, ByteStream, Manifests, MountOutcome, Referrers, Registries, Tags, TagsPage,
    Uploads,
};
pub use client::{ClientOptions, RegistryClient};
pub use code::ErrorCode;
pub use credential::Credential;
pub use credentials::CredentialStore;
pub use credentials_dir::{CredentialsDir, Located};
pub use error::RegistryError;
pub use gate::{Gate, RequestGate};
pub use insecure::{HttpClients, HttpFallback, PlainHttp};
pub use observer::{Observer, RequestObserver};
pub use quirks::{Quirks, QuirksStore, SharedQuirks};
pub use retry::RetryPolicy;
pub use timeouts::Timeouts;
