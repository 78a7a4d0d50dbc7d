//! Redis refusing the credentials: the one Redis failure that is not an outage.
//!
//! Why it fails the start instead of degrading: a Redis that is down comes back by itself,
//! so working without it meanwhile is right; a wrong password never does, and degrading
//! would hide a misconfiguration behind "Redis is unavailable" for the life of the
//! deployment (every run slower, no fleet-wide rate limits, no tag cache). So `NOAUTH`
//! (a password is needed) and `WRONGPASS` / a failed `AUTH` are an error at start, naming
//! the Redis URL without its password.

/// Redis answered and refused the connection's credentials.
#[derive(Debug, thiserror::Error)]
#[error("Redis at {url} {why}: check the user and password of --redis (REDIS_URL)")]
pub struct RedisRefused {
    /// The URL without its password.
    pub url: String,
    /// What Redis said, in words (never the password).
    pub why: &'static str,
}

/// Whether `e` is a refusal of credentials, and which: read from the error's kind and the
/// server's error code, never its text.
pub(crate) fn refusal(e: &redis::RedisError) -> Option<&'static str> {
    if e.kind() == redis::ErrorKind::AuthenticationFailed || e.code() == Some("WRONGPASS") {
        return Some("refused the credentials (authentication failed)");
    }
    if e.code() == Some("NOAUTH") {
        return Some("requires a password (NOAUTH) and the URL gives none");
    }
    None
}

/// `url` without its password (the user stays: it helps to see which one was refused).
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(None);
            }
            u.to_string()
        }
        Err(_) => "<the Redis URL>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_of_a_refusal_has_no_password() {
        assert_eq!(
            redact("redis://bob:hunter2@r:6379/0"),
            "redis://bob@r:6379/0"
        );
        assert_eq!(redact("redis://:hunter2@r:6379"), "redis://r:6379");
    }
}
