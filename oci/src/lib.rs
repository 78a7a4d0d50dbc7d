//! An OCI distribution client, usable on its own.
//!
//! - [`reference`](mod@reference): image references (`host[:port]/path[:tag][@digest]`)
//!   on oci-client's grammar, with Docker Hub defaults.
//! - [`name`]: what a registry holds, as values: a [`Repository`] (registry host and
//!   path) and a manifest [`Reference`] (tag or digest), which the registry operations take.
//! - [`digest`]: sha256 digests and a streaming verifier.
//! - [`manifest`]: manifests and indexes kept as the exact bytes received.
//! - [`registry`]: the client, laid out like the distribution spec (authentication,
//!   manifests, blobs, uploads, tags, referrers) over one retrying transport;
//!   [`Registries`] is the narrow interface the copy engine and the planner use (the sum
//!   of one trait per area), with [`RegistryClient`] speaking HTTP.
//! - `memory` (feature `testing`): `MemoryRegistries`, the same traits over images held
//!   in memory, for fast tests of what uses them.
//!
//! This crate knows nothing of queues, Redis or metrics registries: what a fleet shares
//! (rate limits, a 429 pause) and what it observes (request counts) plug in through the
//! [`Gate`](registry::Gate) and [`Observer`](registry::Observer) hooks of
//! [`ClientOptions`](registry::ClientOptions).
#![warn(missing_docs)]

pub mod digest;
pub mod manifest;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod name;
pub mod reference;
pub mod registry;

pub use name::{Reference, Repository};
pub use reference::ImageRef;
pub use registry::{Registries, RegistryClient, RegistryError};
