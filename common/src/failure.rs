//! Why a tag failed, as a type: set where the error is known, carried in job results, and
//! read by every decision that depends on it (retry or park, metric labels, the report,
//! `status`). No decision reads the text of an error message.

use serde::{Deserialize, Serialize};

use crate::registry::RegistryError;

/// The kind of a failure. The message beside it says what happened; the kind says what
/// to do about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The source image, tag, blob or repository does not exist.
    NotFound,
    /// Credentials are missing or refused, or access is denied.
    Denied,
    /// Bytes did not hash to the digest they were asked for.
    DigestMismatch,
    /// The registry refused the request (a 4xx other than the above).
    Rejected,
    /// The registry's answer does not follow the distribution spec, or the image has a
    /// shape this tool does not copy.
    Protocol,
    /// No answer: connection refused or reset, TLS, timeout.
    Network,
    /// The registry throttled us (HTTP 429).
    Throttled,
    /// The registry failed (HTTP 5xx).
    ServerError,
    /// Local configuration is unusable (a credentials or CA file).
    Config,
    /// The job could not be read by this worker (an unknown message version).
    BadJob,
    /// Not tried: the run stopped after an earlier failure.
    NotAttempted,
    /// Not tried in this run: an earlier run's job for the tag has not reported, and the
    /// tag is not at its source digest yet.
    Pending,
    /// The job ran past its deadline.
    Deadline,
    /// The job's result never reached whoever waited for it (the broker stayed away).
    Unreported,
    /// The job names credentials this worker does not hold (yet: a Secret may be mounted
    /// late, so this is retried).
    Credentials,
}

impl FailureKind {
    /// The kind of a registry error.
    pub fn of(e: &RegistryError) -> FailureKind {
        match e {
            RegistryError::Transport { .. } => FailureKind::Network,
            RegistryError::Status { status: 429, .. } => FailureKind::Throttled,
            RegistryError::Status { status, .. } if *status >= 500 => FailureKind::ServerError,
            RegistryError::Status {
                status: 401 | 403, ..
            } => FailureKind::Denied,
            RegistryError::Status { status: 404, .. } => FailureKind::NotFound,
            RegistryError::Status { .. } => FailureKind::Rejected,
            RegistryError::Auth { .. } => FailureKind::Denied,
            RegistryError::NotFound { .. } => FailureKind::NotFound,
            RegistryError::DigestMismatch { .. } => FailureKind::DigestMismatch,
            RegistryError::Protocol { .. } => FailureKind::Protocol,
            RegistryError::Config(_) => FailureKind::Config,
        }
    }

    /// Whether trying the job again later can help.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            FailureKind::Network
                | FailureKind::Throttled
                | FailureKind::ServerError
                | FailureKind::Credentials
        )
    }

    /// The kind as one word (metric label values, reports).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::NotFound => "not_found",
            FailureKind::Denied => "denied",
            FailureKind::DigestMismatch => "digest_mismatch",
            FailureKind::Rejected => "rejected",
            FailureKind::Protocol => "protocol",
            FailureKind::Network => "network",
            FailureKind::Throttled => "throttled",
            FailureKind::ServerError => "server_error",
            FailureKind::Config => "config",
            FailureKind::BadJob => "bad_job",
            FailureKind::NotAttempted => "not_attempted",
            FailureKind::Pending => "pending",
            FailureKind::Deadline => "deadline",
            FailureKind::Unreported => "unreported",
            FailureKind::Credentials => "credentials",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16) -> RegistryError {
        RegistryError::Status {
            registry: "r".into(),
            method: "GET".into(),
            path: "/".into(),
            status,
            code: None,
            message: String::new(),
        }
    }

    #[test]
    fn throttling_server_errors_and_network_failures_are_the_retryable_kinds() {
        assert_eq!(FailureKind::of(&status(429)), FailureKind::Throttled);
        assert_eq!(FailureKind::of(&status(503)), FailureKind::ServerError);
        assert_eq!(FailureKind::of(&status(403)), FailureKind::Denied);
        assert_eq!(FailureKind::of(&status(400)), FailureKind::Rejected);
        for e in [status(429), status(500), status(503)] {
            assert!(FailureKind::of(&e).is_retryable(), "{e}");
            assert_eq!(FailureKind::of(&e).is_retryable(), e.is_retryable());
        }
        for e in [status(400), status(401), status(404)] {
            assert!(!FailureKind::of(&e).is_retryable(), "{e}");
        }
    }

    #[test]
    fn kinds_serialize_as_their_label() {
        let k = FailureKind::DigestMismatch;
        assert_eq!(serde_json::to_string(&k).unwrap(), "\"digest_mismatch\"");
        assert_eq!(k.as_str(), "digest_mismatch");
    }
}
