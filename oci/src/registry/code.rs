//! The error codes of the distribution spec, as a type: callers decide by code, never by
//! the text of a message.

use std::fmt;

/// A distribution error code (`{"errors":[{"code": ...}]}`), or `Other` for a code the
/// spec does not list (registries add their own).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// A blob named in the request is unknown to the registry.
    BlobUnknown,
    /// The upload failed (bad range, size, or session).
    BlobUploadInvalid,
    /// The upload session is unknown (expired, cancelled).
    BlobUploadUnknown,
    /// The bytes do not hash to the digest given.
    DigestInvalid,
    /// A manifest references a blob the repository does not hold.
    ManifestBlobUnknown,
    /// The manifest is malformed.
    ManifestInvalid,
    /// The manifest or tag does not exist.
    ManifestUnknown,
    /// The manifest failed signature verification (schema1).
    ManifestUnverified,
    /// The repository name is invalid.
    NameInvalid,
    /// The repository is unknown.
    NameUnknown,
    /// The length given does not match the content.
    SizeInvalid,
    /// The tag is invalid.
    TagInvalid,
    /// Authentication is required.
    Unauthorized,
    /// Access to the resource is denied.
    Denied,
    /// The operation is not supported.
    Unsupported,
    /// Too many requests (throttled).
    TooManyRequests,
    /// distribution's code for a failure it does not classify (a storage error, say);
    /// the `detail` of the error says what happened.
    Unknown,
    /// A code outside the spec's list, as the registry wrote it.
    Other(String),
}

impl ErrorCode {
    /// The code as a registry writes it.
    pub fn parse(code: &str) -> ErrorCode {
        match code {
            "BLOB_UNKNOWN" => ErrorCode::BlobUnknown,
            "BLOB_UPLOAD_INVALID" => ErrorCode::BlobUploadInvalid,
            "BLOB_UPLOAD_UNKNOWN" => ErrorCode::BlobUploadUnknown,
            "DIGEST_INVALID" => ErrorCode::DigestInvalid,
            "MANIFEST_BLOB_UNKNOWN" => ErrorCode::ManifestBlobUnknown,
            "MANIFEST_INVALID" => ErrorCode::ManifestInvalid,
            "MANIFEST_UNKNOWN" => ErrorCode::ManifestUnknown,
            "MANIFEST_UNVERIFIED" => ErrorCode::ManifestUnverified,
            "NAME_INVALID" => ErrorCode::NameInvalid,
            "NAME_UNKNOWN" => ErrorCode::NameUnknown,
            "SIZE_INVALID" => ErrorCode::SizeInvalid,
            "TAG_INVALID" => ErrorCode::TagInvalid,
            "UNAUTHORIZED" => ErrorCode::Unauthorized,
            "DENIED" => ErrorCode::Denied,
            "UNSUPPORTED" => ErrorCode::Unsupported,
            "TOOMANYREQUESTS" => ErrorCode::TooManyRequests,
            "UNKNOWN" => ErrorCode::Unknown,
            other => ErrorCode::Other(other.to_string()),
        }
    }

    /// The code as the spec writes it.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::BlobUnknown => "BLOB_UNKNOWN",
            ErrorCode::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            ErrorCode::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            ErrorCode::DigestInvalid => "DIGEST_INVALID",
            ErrorCode::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            ErrorCode::ManifestInvalid => "MANIFEST_INVALID",
            ErrorCode::ManifestUnknown => "MANIFEST_UNKNOWN",
            ErrorCode::ManifestUnverified => "MANIFEST_UNVERIFIED",
            ErrorCode::NameInvalid => "NAME_INVALID",
            ErrorCode::NameUnknown => "NAME_UNKNOWN",
            ErrorCode::SizeInvalid => "SIZE_INVALID",
            ErrorCode::TagInvalid => "TAG_INVALID",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Denied => "DENIED",
            ErrorCode::Unsupported => "UNSUPPORTED",
            ErrorCode::TooManyRequests => "TOOMANYREQUESTS",
            ErrorCode::Unknown => "UNKNOWN",
            ErrorCode::Other(s) => s,
        }
    }

    /// A manifest push refused because a blob it names is missing: the sign of a stale
    /// blob index.
    pub fn is_blob_unknown(&self) -> bool {
        matches!(
            self,
            ErrorCode::BlobUnknown | ErrorCode::ManifestBlobUnknown
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_kept() {
        for c in [
            "BLOB_UNKNOWN",
            "MANIFEST_BLOB_UNKNOWN",
            "DENIED",
            "TOOMANYREQUESTS",
        ] {
            assert_eq!(ErrorCode::parse(c).as_str(), c);
        }
        assert_eq!(
            ErrorCode::parse("QUAY_SPECIAL"),
            ErrorCode::Other("QUAY_SPECIAL".into())
        );
        assert!(ErrorCode::ManifestBlobUnknown.is_blob_unknown());
        assert!(!ErrorCode::ManifestUnknown.is_blob_unknown());
    }
}
