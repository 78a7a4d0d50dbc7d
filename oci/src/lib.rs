//! An OCI distribution client, usable on its own.
//!
//! - [`reference`]: image references (`host[:port]/path[:tag][@digest]`) on oci-client's
//!   grammar, with Docker Hub defaults.
//! - [`digest`]: sha256 digests and a streaming verifier.
//! - [`manifest`]: manifests and indexes kept as the exact bytes received.
//! - [`registry`]: the client, laid out like the distribution spec (authentication,
//!   manifests, blobs, tags) over one retrying transport; [`Registries`] is the narrow
//!   interface the copy engine and the planner use, with [`RegistryClient`] speaking HTTP
//!   and [`memory::MemoryRegistries`] holding images in memory for fast tests.
//!
//! This crate knows nothing of queues, Redis or metrics registries: what a fleet shares
//! (rate limits, a 429 pause) and what it observes (request counts) plug in through the
//! [`Gate`](registry::Gate) and [`Observer`](registry::Observer) hooks of
//! [`ClientOptions`](registry::ClientOptions).
#![warn(missing_docs)]

pub mod digest;
pub mod manifest;
pub mod memory;
pub mod reference;
pub mod registry;

pub use reference::ImageRef;
pub use registry::{Registries, RegistryClient, RegistryError};
