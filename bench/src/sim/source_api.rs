//! The simulated source registry's answers: read-only, every manifest, blob and tag list
//! generated from the request's names, each image at its current generation (0 unless
//! `POST /_sim/change-sources` changed it).

use hyper::{Method, Request, Response, StatusCode};

use super::answers::{content, error, no_route, tags_page, Body};
use super::generator::Generator;
use super::route::Route;

/// The answer to `route` (not the ping or stats) at the source.
pub(super) fn answer<B>(
    generator: &Generator,
    route: Route,
    req: &Request<B>,
    query: &str,
    whole_tags: bool,
) -> Response<Body> {
    let method = req.method();
    if method != Method::GET && method != Method::HEAD {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "the simulated source is read-only",
        );
    }
    let head = method == Method::HEAD;
    let unknown = || {
        error(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            "repository name not known to registry",
        )
    };
    match route {
        Route::Manifest(name, reference) => {
            let Some(r) = generator.repo_number(&name) else {
                return unknown();
            };
            let manifest = if reference.starts_with("sha256:") {
                generator
                    .manifest(r, &reference, |k| Some(generator.source_generation(r, k)))
                    .map(|(_, m)| m)
            } else {
                generator
                    .tag_number(r, &reference)
                    .map(|k| generator.image(r, k, generator.source_generation(r, k)).top)
            };
            match manifest {
                Some(m) => content(m.media_type, m.content.bytes, &m.content.digest, head),
                None => error(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    "manifest unknown",
                ),
            }
        }
        Route::Blob(name, digest) => {
            let Some(r) = generator.repo_number(&name) else {
                return unknown();
            };
            match generator.blob(r, &digest, |k| Some(generator.source_generation(r, k))) {
                Some(b) => content("application/octet-stream", b.bytes, &b.digest, head),
                None => error(
                    StatusCode::NOT_FOUND,
                    "BLOB_UNKNOWN",
                    "blob unknown to registry",
                ),
            }
        }
        Route::Tags(name) => match generator.repo_number(&name) {
            Some(r) => tags_page(&name, generator.tags(r), query, whole_tags),
            None => unknown(),
        },
        Route::Referrers(_) => no_route(),
        _ => error(StatusCode::NOT_FOUND, "NOT_FOUND", "not served"),
    }
}
