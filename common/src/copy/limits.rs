//! How much the engine does at once and how far it follows: the bounds of one copy, in one
//! place (the per-registry and per-image knobs a user sets are in `options.rs`).

/// Destination tags of one job checked (HEAD) at the same time.
pub(crate) const DESTINATION_HEADS: usize = 16;

/// Child manifests of one index pushed at the same time.
pub(crate) const CHILD_PUSHES: usize = 8;

/// Child manifests of one index read from the source at the same time.
pub(crate) const CHILD_READS: usize = 8;

/// How index children nested in index children are followed at most.
pub(crate) const MAX_INDEX_DEPTH: usize = 2;

/// Past this many tags a repository's whole listing is not asked for again: reading it
/// would cost more than the HEADs it spares (referrer tags at a source, absent tags at a
/// destination).
pub(crate) const WHOLE_LISTING_LIMIT: usize = 5_000;
