//! How the engine reads a registry's errors and turns them into per-tag results: which
//! refusals are final, which mean the source is missing or the index was stale, and the
//! failed [`TagResult`]s a copy reports.

use crate::failure::FailureKind;
use crate::reference::ImageRef;
use crate::registry::RegistryError;
use crate::report::TagResult;

/// A tag listing refused in a way that will not pass: the registry does not list tags to us.
pub(crate) fn listing_refused(e: &RegistryError) -> bool {
    match e {
        RegistryError::NotFound { .. } | RegistryError::Auth { .. } => true,
        RegistryError::Status { status, .. } => matches!(status, 400..=499) && *status != 429,
        _ => false,
    }
}

/// The source manifest or its repository does not exist (not a blob of it).
pub(crate) fn is_missing_source(e: &RegistryError) -> bool {
    e.is_not_found() && !e.code().is_some_and(|c| c.is_blob_unknown())
}

/// The registry does not have a blob a manifest names (the index said it was there).
pub(crate) fn is_blob_unknown(e: &RegistryError) -> bool {
    e.code().is_some_and(|c| c.is_blob_unknown())
}

/// What the source's registry sent is not what the engine can copy.
pub(crate) fn protocol(source: &ImageRef, message: String) -> RegistryError {
    RegistryError::Protocol {
        registry: source.registry.clone(),
        message: format!("{source}: {message}"),
    }
}

/// A tag failed for the image's own content.
pub(crate) fn failed(dst: &ImageRef, e: &RegistryError) -> TagResult {
    TagResult::failed(dst, FailureKind::of(e), e.to_string())
}

/// A tag failed because one of its image's referrers could not be copied.
pub(crate) fn referrer_failed(dst: &ImageRef, e: &RegistryError) -> TagResult {
    TagResult::failed(
        dst,
        FailureKind::of(e),
        format!("a referrer (signature, attestation, SBOM) could not be copied: {e}"),
    )
}
