//! Source resolution spread over the fleet: the planner may hand its source HEADs to the
//! workers instead of making them all itself. A warm hourly run is almost nothing but one
//! HEAD per source image (410,000 at 100x the real set); made by one scheduler they are
//! bounded by its connections, made by the workers they add up with every worker.
//!
//! The wire form is a request of at most [`SOURCES_PER_REQUEST`] source references and a
//! reply with one answer per source, in order. A worker's answer is only a shortcut: a
//! source it could not resolve (not found, refused, its credentials lacking) is resolved
//! again by the planner itself, whose answer and error are the ones a run reports, so a
//! fleet whose workers see less than the scheduler still plans exactly what the scheduler
//! alone would.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::reference::ImageRef;

/// The message format version of both requests and replies.
pub const DIGEST_REQUEST_VERSION: u32 = 1;

/// Sources in one request: a reference is at most a few hundred bytes, so a request stays
/// under ~64 KiB, and a batch of the planner (~4,000 sources) is spread over ~16 workers.
pub const SOURCES_PER_REQUEST: usize = 256;

/// "Resolve these sources": source references by tag, as the mapping files name them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRequest {
    /// [`DIGEST_REQUEST_VERSION`] when written by this build.
    pub version: u32,
    /// Matches the reply to its request.
    pub id: Uuid,
    /// The run asking (for the worker's log lines).
    pub run_id: Uuid,
    /// The sources, at most [`SOURCES_PER_REQUEST`].
    pub sources: Vec<String>,
}

/// The answer to a [`DigestRequest`]: one digest per source, in the request's order;
/// `None` where the worker could not resolve it (the planner tries it itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestReply {
    /// [`DIGEST_REQUEST_VERSION`] when written by this build.
    pub version: u32,
    /// The request's id.
    pub id: Uuid,
    /// One answer per source of the request.
    pub digests: Vec<Option<String>>,
}

/// Somewhere else to resolve sources (the fleet's workers).
#[async_trait]
pub trait SourceDigests: Send + Sync {
    /// The digest of each of `sources` (all by tag), in order; `None` for each one not
    /// resolved there, for whatever reason (no worker answered in time included).
    async fn digests(&self, run_id: Uuid, sources: &[&ImageRef]) -> Vec<Option<String>>;
}
