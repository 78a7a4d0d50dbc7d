//! Is this request from the sender it names? The token comes from `Authorization: Bearer
//! <token>` (distribution's `headers`, Harbor's "Auth Header" set to `Bearer <token>`), or
//! from the URL's `token` parameter for senders that cannot set a header (Quay, Docker
//! Hub). Both sides are hashed with sha256 and the hashes compared in constant time, so
//! that neither the token's bytes nor its length leak through timing.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::senders::Token;

/// The token a request presents: the `Authorization` header's Bearer credentials, else
/// the `token` parameter of the URL's `query`.
pub(crate) fn presented<'a>(
    authorization: Option<&'a str>,
    query: Option<&'a str>,
) -> Option<&'a str> {
    if let Some(value) = authorization {
        let (scheme, rest) = value.trim().split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim());
    }
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| v)
}

/// Whether `given` is the sender's token (constant time).
pub(crate) fn matches(token: &Token, given: &str) -> bool {
    let want = Sha256::digest(token.expose());
    let got = Sha256::digest(given.as_bytes());
    want.ct_eq(&got).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_first_then_the_url_parameter() {
        assert_eq!(presented(Some("Bearer abc"), None), Some("abc"));
        assert_eq!(
            presented(Some("bearer  abc "), Some("token=x")),
            Some("abc")
        );
        assert_eq!(presented(Some("Basic abc"), Some("token=x")), None);
        assert_eq!(presented(None, Some("a=1&token=xyz")), Some("xyz"));
        assert_eq!(presented(None, Some("a=1")), None);
        assert_eq!(presented(None, None), None);
    }
}
