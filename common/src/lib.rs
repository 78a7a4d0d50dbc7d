//! The mirroring core: what to copy, how one copy goes, and how a job is handled, the same
//! in the embedded mode and in a fleet.
//!
//! - [`mapping`]: mapping files as `oc image mirror -f` reads them; [`plan`]: mapping files
//!   to jobs (tag listing, digest resolution, grouping).
//! - [`copy`]: the copy engine (the six steps of `docs/behaviour.md`, "What one copy
//!   does") over the narrow [`Registries`](registry::Registries) trait and a
//!   [`BlobIndex`](index::BlobIndex).
//! - [`credential_engines`]: the engine of each job's named credentials (a team's push
//!   Secret).
//! - [`report`] and [`failure`]: what a copy reports per tag, with a typed
//!   [`FailureKind`](failure::FailureKind) that every decision reads.
//! - [`printable`]: outside text made safe for a terminal.
//! - [`state`]: what an installation remembers between runs (tag cache, blob index,
//!   quirks), the one trait the fleet's Redis and a machine's state file implement.
//! - [`source_digests`]: the planner's source HEADs handed to the fleet's workers (the
//!   wire form and the trait the planner asks through).
//! - [`job`]: the messages between scheduler and workers ([`job_options`]: what to copy,
//!   as the run decided); [`queue`]: the job-queue trait and its in-memory
//!   implementation; [`index`]: the blob-index trait and its in-memory implementation;
//!   [`job_handling`]: handling one delivered job (copy, report, retry or park).
//!
//! Layers point down: this crate builds on `mirror-oci` (references, manifests, the registry
//! client), and `mirror-fleet` builds on this one with RabbitMQ, Redis and metrics. The OCI
//! modules this crate's API is made of are re-exported under their own names (`digest`,
//! `manifest`, `name`, `reference`, `registry`): the one path to them for the crates above,
//! which do not depend on `mirror-oci` themselves.
#![warn(missing_docs)]

pub mod copy;
pub mod credential_engines;
pub mod failure;
pub mod index;
pub mod job;
pub mod job_handling;
pub mod job_options;
pub mod mapping;
pub mod plan;
pub mod printable;
pub mod queue;
pub mod report;
pub mod source_digests;
pub mod state;

pub use mirror_oci::{digest, manifest, name, reference, registry};
