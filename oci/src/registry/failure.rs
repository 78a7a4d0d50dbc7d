//! What a failed request becomes: an answer the caller did not expect, with the
//! registry's own code and message, or a transport failure, without the URL's query
//! (upload state) in the message.

use reqwest::{Method, Response};

use super::error::{parse_error_body, RegistryError};
use super::insecure::{answered_in_plain_http, plain_http_error};

/// A transport failure, without the URL's query (upload state) in the message. An HTTPS
/// request answered in plain HTTP is no transport failure but a permanent mismatch, with
/// the flag that cures it.
pub(crate) fn transport_error(
    registry: &str,
    method: &Method,
    url: &url::Url,
    e: reqwest::Error,
) -> RegistryError {
    if url.scheme() == "https" && answered_in_plain_http(&e) {
        return plain_http_error(registry, method.as_str(), url.path());
    }
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    RegistryError::Transport {
        registry: registry.to_string(),
        method: method.to_string(),
        path: url.path().to_string(),
        message,
    }
}

/// Turns an unexpected response into an error with the registry's own code and message.
pub(crate) async fn status_error(
    registry: &str,
    method: &Method,
    url: &url::Url,
    resp: Response,
) -> RegistryError {
    let status = resp.status().as_u16();
    let text = super::body::read_error_body(resp).await;
    let (code, message) = parse_error_body(&text);
    RegistryError::Status {
        registry: registry.to_string(),
        method: method.to_string(),
        path: url.path().to_string(),
        status,
        code,
        message,
    }
}
