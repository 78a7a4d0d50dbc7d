//! lapin errors as queue errors, with what we were doing when it failed.

use super::QueueError;

/// `QueueError::Broker("<what>: <lapin error>")`. lapin's messages carry the AMQP reply
/// code and text (for example `NOT_FOUND - no queue 'x'`), not the connection URL.
pub(super) fn broker(what: impl std::fmt::Display, err: lapin::Error) -> QueueError {
    QueueError::Broker(format!("{what}: {err}"))
}

/// An error of ours, not lapin's.
pub(super) fn other(what: impl Into<String>) -> QueueError {
    QueueError::Broker(what.into())
}

/// Removes the URL's credentials from `message`, for errors raised while connecting,
/// where a URL parser or resolver might have echoed the URL: the URL is replaced by its
/// redacted form and any remaining copy of the password by `***`.
pub(super) fn scrub(message: &str, url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return message.replace(url, "<AMQP URL>");
    };
    let out = message.replace(url, &redact(url));
    match parsed.password() {
        Some(password) if !password.is_empty() => out.replace(password, "***"),
        _ => out,
    }
}

/// `amqp://user:secret@host/vhost` -> `amqp://host/vhost`. A URL that does not parse is
/// not echoed at all: it might be mostly password.
pub(super) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            // Both fail only for URLs that cannot have credentials in the first place.
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => "<unparseable AMQP URL>".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_errors_lose_the_credentials() {
        let url = "amqp://bob:hunter2@h:5672/%2f";
        let msg = scrub(&format!("bad uri {url} (password hunter2)"), url);
        assert_eq!(msg, "bad uri amqp://h:5672/%2f (password ***)");
    }
}
