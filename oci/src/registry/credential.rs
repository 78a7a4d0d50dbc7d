//! What a registry is logged in to with, and the `Authorization: Basic` header made of it.
//! Secrets never reach `Debug` output, logs or errors.

use std::fmt;

use base64::Engine;
use reqwest::header::HeaderValue;

/// What a registry is logged in to with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or an access token used as one).
    Password {
        /// The user name to log in with.
        username: String,
        /// The password; never shown in `Debug` output.
        password: String,
    },
    /// Docker's identity token: an OAuth2 refresh token, exchanged at the registry's token
    /// service for access tokens (`grant_type=refresh_token`), as `docker login` leaves it
    /// for registries that use OAuth (ACR, Harbor with OIDC, Docker Hub with SSO).
    IdentityToken {
        /// Sent with the token as a password to a token service that does not take OAuth.
        username: String,
        /// The refresh token; never shown in `Debug` output.
        token: String,
    },
}

impl Credential {
    /// The user name, for messages.
    pub fn username(&self) -> &str {
        match self {
            Credential::Password { username, .. } | Credential::IdentityToken { username, .. } => {
                username
            }
        }
    }

    /// The user name and secret of HTTP Basic.
    pub(crate) fn basic(&self) -> (&str, &str) {
        match self {
            Credential::Password { username, password } => (username, password),
            Credential::IdentityToken { username, token } => (username, token),
        }
    }

    /// The OAuth2 refresh token, for an identity token.
    pub(crate) fn refresh_token(&self) -> Option<&str> {
        match self {
            Credential::IdentityToken { token, .. } => Some(token),
            Credential::Password { .. } => None,
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Password { username, .. } => write!(
                f,
                "Credential::Password {{ username: {username:?}, password: <redacted> }}"
            ),
            Credential::IdentityToken { username, .. } => write!(
                f,
                "Credential::IdentityToken {{ username: {username:?}, token: <redacted> }}"
            ),
        }
    }
}

/// `Basic base64(user:secret)`, marked sensitive so that it is never logged.
pub(crate) fn basic_header(c: &Credential) -> HeaderValue {
    let (username, secret) = c.basic();
    let raw = format!("{username}:{secret}");
    let mut v = HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}
