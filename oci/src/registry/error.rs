//! Typed registry errors. Every message names the registry and the request, so an operator
//! reading one line of a report knows where it failed and whether a retry can help.

use thiserror::Error;

use super::body::quote;
use super::code::ErrorCode;

/// What went wrong talking to a registry.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// The registry answered with an unexpected HTTP status.
    #[error("registry {registry}: {method} {path}: HTTP {status}{}: {message}", code.as_ref().map(|c| format!(" {c}")).unwrap_or_default())]
    Status {
        /// The registry host (`quay.io`, `127.0.0.1:5000`).
        registry: String,
        /// The HTTP method of the request (`GET`, `PUT`, ...).
        method: String,
        /// The URL path of the request (`token from HOST` for a token request).
        path: String,
        /// The HTTP status the registry answered with.
        status: u16,
        /// The distribution error code (`MANIFEST_UNKNOWN`, `DENIED`, ...), when given.
        code: Option<ErrorCode>,
        /// The registry's own error message, or the start of the body when it sent none.
        message: String,
    },
    /// The request did not get an answer (connection refused, reset, TLS, timeout).
    #[error("registry {registry}: {method} {path}: {message}")]
    Transport {
        /// The registry host (`quay.io`, `127.0.0.1:5000`).
        registry: String,
        /// The HTTP method of the request (`GET`, `PUT`, ...).
        method: String,
        /// The URL path of the request (`token from HOST` for a token request).
        path: String,
        /// What failed, with its causes (the URL and its query are left out).
        message: String,
    },
    /// Credentials are missing or were refused.
    #[error("registry {registry}: authentication failed: {message}")]
    Auth {
        /// The registry host (`quay.io`, `127.0.0.1:5000`).
        registry: String,
        /// Why: no credentials for a registry that requires them, refused credentials, or an
        /// unusable challenge or token service.
        message: String,
    },
    /// A manifest or tag that does not exist.
    #[error("{reference}: not found (registry {registry} answered {code})")]
    NotFound {
        /// The registry host (`quay.io`, `127.0.0.1:5000`).
        registry: String,
        /// What was looked for (`registry/repository:tag`, `…@sha256:…`).
        reference: String,
        /// The distribution error code (`MANIFEST_UNKNOWN`, `BLOB_UNKNOWN`, ...).
        code: ErrorCode,
    },
    /// Bytes whose sha256 is not the digest they were asked for.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// The content checked (a manifest reference, or a blob with its source and size).
        what: String,
        /// The digest asked for (or announced by the registry).
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },
    /// A response that does not follow the distribution spec.
    #[error("registry {registry}: {message}")]
    Protocol {
        /// The registry host (`quay.io`, `127.0.0.1:5000`).
        registry: String,
        /// What was wrong with the response (bad URL, media type, JSON, pagination...).
        message: String,
    },
    /// Local configuration (credentials file, CA file) is unusable.
    #[error("{0}")]
    Config(String),
}

impl RegistryError {
    /// Worth trying again later: connection problems, throttling and server errors.
    /// Not found, denied and corrupted content are permanent.
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Transport { .. } => true,
            RegistryError::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// True for a missing manifest, tag or repository.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RegistryError::NotFound { .. })
            || matches!(self, RegistryError::Status { status: 404, .. })
    }

    /// The registry no longer knows the upload session (`404 BLOB_UPLOAD_UNKNOWN`): it
    /// expired, or it was closed by a request whose answer was lost. Only a new session
    /// can carry the blob (once it is checked not to be there already).
    pub fn is_upload_session_lost(&self) -> bool {
        matches!(self.code(), Some(ErrorCode::BlobUploadUnknown))
    }

    /// The distribution error code, when the registry gave one.
    pub fn code(&self) -> Option<&ErrorCode> {
        match self {
            RegistryError::Status { code, .. } => code.as_ref(),
            RegistryError::NotFound { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// The first entry of a distribution error body (`{"errors":[{"code":..,"message":..}]}`).
/// Where the code says nothing (`UNKNOWN`, none, one outside the spec), the registry's
/// `detail` is quoted after the message (`unknown error ("... no space left on device")`);
/// a body that is not distribution JSON (a proxy's page) is quoted whole. Quotes are
/// bounded and escaped (see [`quote`]): what a registry sends never reaches a log or a
/// report unbounded or with control characters.
pub(crate) fn parse_error_body(body: &str) -> (Option<ErrorCode>, String) {
    #[derive(serde::Deserialize)]
    struct Body {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        code: Option<String>,
        message: Option<String>,
        detail: Option<serde_json::Value>,
    }
    match serde_json::from_str::<Body>(body) {
        Ok(b) if !b.errors.is_empty() => {
            let e = &b.errors[0];
            let code = e.code.as_deref().map(ErrorCode::parse);
            let mut message = quote(e.message.as_deref().unwrap_or_default());
            let says_nothing =
                matches!(code, None | Some(ErrorCode::Unknown | ErrorCode::Other(_)));
            let detail = match &e.detail {
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(serde_json::Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            if says_nothing && !detail.trim().is_empty() {
                let detail = quote(&detail);
                message = match message.is_empty() {
                    true => format!("(\"{detail}\")"),
                    false => format!("{message} (\"{detail}\")"),
                };
            }
            (code, message)
        }
        _ if body.trim().is_empty() => (None, "no error body".into()),
        _ => (None, format!("\"{}\"", quote(body))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_error_names_registry_request_status_and_code() {
        let (code, message) = parse_error_body(
            r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#,
        );
        let e = RegistryError::Status {
            registry: "quay.io".into(),
            method: "PUT".into(),
            path: "/v2/a/b/manifests/1".into(),
            status: 403,
            code,
            message,
        };
        assert_eq!(e.to_string(), "registry quay.io: PUT /v2/a/b/manifests/1: HTTP 403 DENIED: requested access to the resource is denied");
        assert!(!e.is_retryable());
    }

    #[test]
    fn an_unknown_error_quotes_the_registry_detail_bounded_and_escaped() {
        let body = r#"{"errors":[{"code":"UNKNOWN","message":"unknown error","detail":"filesystem: write /var/lib/registry/x: no space left on device\u001b[2J"}]}"#;
        let (code, message) = parse_error_body(body);
        assert_eq!(code, Some(ErrorCode::Unknown));
        assert_eq!(
            message,
            r#"unknown error ("filesystem: write /var/lib/registry/x: no space left on device\u{1b}[2J")"#
        );
        let object = r#"{"errors":[{"code":"UNKNOWN","message":"unknown error","detail":{"Op":"write","Err":28}}]}"#;
        assert_eq!(
            parse_error_body(object).1,
            r#"unknown error ("{\"Err\":28,\"Op\":\"write\"}")"#
        );
        let (_, message) = parse_error_body(&format!(
            r#"{{"errors":[{{"code":"UNKNOWN","message":"unknown error","detail":"{}"}}]}}"#,
            "x".repeat(100_000)
        ));
        assert!(message.len() < 600, "{}", message.len());
    }

    #[test]
    fn a_spec_code_keeps_its_message_and_a_body_that_is_not_json_is_quoted() {
        let body = r#"{"errors":[{"code":"DENIED","message":"denied","detail":"x"}]}"#;
        assert_eq!(
            parse_error_body(body),
            (Some(ErrorCode::Denied), "denied".into())
        );
        assert_eq!(
            parse_error_body("<html>\n502 Bad Gateway</html>"),
            (None, r#""<html>\n502 Bad Gateway</html>""#.into())
        );
        assert_eq!(parse_error_body("  "), (None, "no error body".into()));
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        for status in [429, 500, 503] {
            let e = RegistryError::Status {
                registry: "r".into(),
                method: "GET".into(),
                path: "/".into(),
                status,
                code: None,
                message: String::new(),
            };
            assert!(e.is_retryable(), "{status}");
        }
    }
}
