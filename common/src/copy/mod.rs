//! The copy engine: one source image to its destination tags, following the six steps of
//! `docs/behaviour.md` ("What one copy does"): resolve and verify the source; skip tags
//! already at its digest; keep indexes whole (or filtered by platform); skip / mount /
//! stream every blob; push child manifests by digest, then the top manifest under each
//! tag; report per tag. Referrers (signatures, attestations, SBOMs) travel with their
//! subject in the same copy.
//!
//! The engine knows nothing of queues: the embedded mode and the fleet's workers call the
//! same `CopyEngine::copy`, differing only in the `BlobIndex` they hand it.
//!
//! Its rooms, in the order a copy goes through them:
//! - `options.rs`: what a copy is asked to do ([`CopyOptions`], [`ReferrerOptions`]);
//! - `engine.rs`: [`CopyEngine`], what its copies share, one copy within its deadline;
//! - `fast_path.rs`: step 2 first, and only the referrers when every tag is there;
//! - `resolve.rs`: steps 1 and 3, the source read and verified, platforms selected;
//! - `platform.rs`: the `--filter-by-os` pattern ([`PlatformFilter`]);
//! - `push.rs`: steps 4 and 5 per destination repository, in push order, per-tag results;
//! - `blobs.rs`: an image's blobs at once, within the registry's limit (or planned);
//! - `blob.rs`: one blob skipped, mounted or uploaded; `transfer.rs`: its bytes streamed;
//! - `dry_run.rs`: what a dry run has planned, so it counts what a real run moves;
//! - `referrers.rs`: referrers found, pushed, their tag-schema indexes kept;
//! - `referrer_tags.rs`: which referrer tags exist, from one source listing;
//! - `destination_tags.rs`: which destination tags are absent, from one listing;
//! - `target.rs`: a destination repository, and destinations grouped by it;
//! - `errors.rs`: registry errors read, and the failed tag results made of them;
//! - `limits.rs`: how much one copy does at once and how deep it follows.

mod blob;
mod blobs;
mod destination_tags;
mod dry_run;
mod engine;
mod errors;
mod fast_path;
mod limits;
mod options;
mod platform;
mod push;
mod referrer_tags;
mod referrers;
#[cfg(test)]
mod referrers_tests;
mod resolve;
mod target;
#[cfg(test)]
mod tests;
mod transfer;

pub use blob::BlobPlan;
pub use engine::CopyEngine;
pub use options::{CopyOptions, ReferrerOptions};
pub use platform::PlatformFilter;
pub use referrers::{fallback_tag, COSIGN_SUFFIXES, MAX_REFERRERS_PER_IMAGE, MAX_REFERRER_DEPTH};
