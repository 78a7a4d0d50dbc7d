//! Distribution API paths parsed into what they ask for, and the kind each request is
//! counted as.

use hyper::Method;

use super::stats::Kind;

/// A distribution API request, parsed from its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/v2/`.
    Ping,
    /// `/v2/<name>/manifests/<reference>`.
    Manifest(String, String),
    /// `/v2/<name>/blobs/<digest>`.
    Blob(String, String),
    /// `/v2/<name>/blobs/uploads/[<id>]`.
    Upload(String, Option<String>),
    /// `/v2/<name>/tags/list`.
    Tags(String),
    /// `/v2/<name>/referrers/<digest>`.
    Referrers(String),
    /// `/_sim/stats`.
    Stats,
    /// `/_sim/change-sources?percent=P` (`POST`, at the source).
    ChangeSources,
    /// `/_sim/token` (with `--token-auth`).
    Token,
    /// Anything else.
    Unknown,
}

impl Route {
    /// The route of `path`.
    pub fn parse(path: &str) -> Route {
        if path == "/_sim/stats" {
            return Route::Stats;
        }
        if path == "/_sim/change-sources" {
            return Route::ChangeSources;
        }
        if path == "/_sim/token" {
            return Route::Token;
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return if path == "/v2" {
                Route::Ping
            } else {
                Route::Unknown
            };
        };
        if rest.is_empty() {
            return Route::Ping;
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Route::Tags(name.to_string());
        }
        if let Some((name, id)) = rest.split_once("/blobs/uploads") {
            let id = id.trim_start_matches('/');
            return Route::Upload(name.to_string(), (!id.is_empty()).then(|| id.to_string()));
        }
        for (marker, make) in [
            (
                "/manifests/",
                Route::Manifest as fn(String, String) -> Route,
            ),
            ("/blobs/", Route::Blob),
        ] {
            if let Some((name, reference)) = rest.rsplit_once(marker) {
                return make(name.to_string(), reference.to_string());
            }
        }
        match rest.rsplit_once("/referrers/") {
            Some((name, _)) => Route::Referrers(name.to_string()),
            None => Route::Unknown,
        }
    }

    /// The repository named, if any.
    pub fn name(&self) -> Option<&str> {
        match self {
            Route::Manifest(name, _)
            | Route::Blob(name, _)
            | Route::Upload(name, _)
            | Route::Tags(name)
            | Route::Referrers(name) => Some(name),
            _ => None,
        }
    }

    /// The kind counted for this route and `method`.
    pub fn kind(&self, method: &Method, query: &str) -> Kind {
        match (self, method.as_str()) {
            (Route::Ping, _) => Kind::Ping,
            (Route::Manifest(..), "HEAD") => Kind::ManifestHead,
            (Route::Manifest(..), "GET") => Kind::ManifestGet,
            (Route::Manifest(..), "PUT") => Kind::ManifestPut,
            (Route::Blob(..), "HEAD") => Kind::BlobHead,
            (Route::Blob(..), "GET") => Kind::BlobGet,
            (Route::Upload(..), "POST") if query.contains("mount=") => Kind::Mount,
            (Route::Upload(..), "POST") => Kind::UploadStart,
            (Route::Upload(..), "PATCH") => Kind::UploadPatch,
            (Route::Upload(..), "PUT") => Kind::UploadPut,
            (Route::Tags(_), _) => Kind::Tags,
            (Route::Referrers(_), _) => Kind::Referrers,
            (Route::Token, _) => Kind::Token,
            _ => Kind::Other,
        }
    }
}
