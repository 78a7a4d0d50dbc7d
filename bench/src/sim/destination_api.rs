//! The simulated destination registry's answers: manifests and tags as [`Destination`]
//! holds them, blob HEADs, uploads (`POST` sessions, `PATCH` chunks, closing `PUT`,
//! monolithic `POST ?digest=`, `?mount=&from=`) hashed as they stream, manifest `PUT`.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::answers::{content, error, no_route, query_value, reply, tags_page, Body};
use super::destination::Destination;
use super::route::Route;

/// Manifests larger than this are refused, as registries do (4 MiB).
const MANIFEST_LIMIT: usize = 4 << 20;

/// The answer to `route` (not the ping or stats) at the destination.
pub(super) async fn answer(
    dest: &Destination,
    route: Route,
    req: Request<Incoming>,
    query: &str,
    whole_tags: bool,
) -> Response<Body> {
    let method = req.method().clone();
    let head = method == Method::HEAD;
    match (route, method.as_str()) {
        (Route::Manifest(name, reference), "GET" | "HEAD") => {
            let found = if reference.starts_with("sha256:") {
                dest.manifest(&name, &reference)
            } else {
                dest.tag(&name, &reference)
            };
            match found {
                Some((media_type, bytes, digest)) => content(&media_type, bytes, &digest, head),
                None => error(
                    StatusCode::NOT_FOUND,
                    "MANIFEST_UNKNOWN",
                    "manifest unknown",
                ),
            }
        }
        (Route::Manifest(name, reference), "PUT") => {
            put_manifest(dest, &name, &reference, req).await
        }
        (Route::Blob(name, digest), "HEAD") => match dest.blob_size(&name, &digest) {
            Some(size) => {
                let headers = [
                    ("Content-Length", size.to_string()),
                    ("Docker-Content-Digest", digest),
                ];
                reply(StatusCode::OK, &headers, Bytes::new())
            }
            None => error(
                StatusCode::NOT_FOUND,
                "BLOB_UNKNOWN",
                "blob unknown to registry",
            ),
        },
        (Route::Blob(name, digest), "GET") => match dest.generated_blob(&name, &digest) {
            Some(b) => content("application/octet-stream", b.bytes, &b.digest, false),
            None => error(
                StatusCode::NOT_FOUND,
                "BLOB_UNKNOWN",
                "blob unknown (pushed bytes are not kept)",
            ),
        },
        (Route::Upload(name, None), "POST") => start_upload(dest, &name, req, query).await,
        (Route::Upload(name, Some(id)), "PATCH" | "PUT") => {
            let put = method == Method::PUT;
            continue_upload(dest, &name, &id, req, query, put).await
        }
        (Route::Tags(name), _) => {
            let tags = dest.tags(&name);
            if tags.is_empty() {
                return error(
                    StatusCode::NOT_FOUND,
                    "NAME_UNKNOWN",
                    "repository name not known to registry",
                );
            }
            tags_page(&name, tags, query, whole_tags)
        }
        (Route::Referrers(_), _) => no_route(),
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "not served by the simulator",
        ),
    }
}

async fn put_manifest(
    dest: &Destination,
    name: &str,
    reference: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let media_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/vnd.oci.image.manifest.v1+json")
        .to_string();
    let Ok(body) = req.into_body().collect().await else {
        return error(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", "body not read");
    };
    let body = body.to_bytes();
    if body.len() > MANIFEST_LIMIT {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SIZE_INVALID",
            "manifest too large",
        );
    }
    if reference.starts_with("sha256:") && super::generator::digest_of(&body) != reference {
        return error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "manifest digest did not match",
        );
    }
    let digest = dest.put_manifest(name, reference, &media_type, body);
    let headers = [
        ("Location", format!("/v2/{name}/manifests/{digest}")),
        ("Docker-Content-Digest", digest),
        ("Content-Length", "0".to_string()),
    ];
    reply(StatusCode::CREATED, &headers, Bytes::new())
}

async fn start_upload(
    dest: &Destination,
    name: &str,
    req: Request<Incoming>,
    query: &str,
) -> Response<Body> {
    if let (Some(digest), Some(from)) = (query_value(query, "mount"), query_value(query, "from")) {
        if dest.mount(name, &digest, &from) {
            return created(name, digest);
        }
    }
    let id = dest.start_upload(name);
    if let Some(digest) = query_value(query, "digest") {
        return finish(dest, name, id, req.into_body(), &digest).await;
    }
    accepted(name, id, 0)
}

async fn continue_upload(
    dest: &Destination,
    name: &str,
    id: &str,
    req: Request<Incoming>,
    query: &str,
    put: bool,
) -> Response<Body> {
    let Some(id) = id.parse().ok().filter(|id| dest.has_upload(*id)) else {
        return error(
            StatusCode::NOT_FOUND,
            "BLOB_UPLOAD_UNKNOWN",
            "blob upload unknown to registry",
        );
    };
    if !put {
        return match stream(dest, id, req.into_body()).await {
            Some(size) => accepted(name, id, size),
            None => error(
                StatusCode::BAD_REQUEST,
                "BLOB_UPLOAD_INVALID",
                "upload body not read",
            ),
        };
    }
    let Some(digest) = query_value(query, "digest") else {
        return error(StatusCode::BAD_REQUEST, "DIGEST_INVALID", "no digest given");
    };
    finish(dest, name, id, req.into_body(), &digest).await
}

/// Streams the last bytes of session `id` in and closes it as `digest`.
async fn finish(
    dest: &Destination,
    name: &str,
    id: u64,
    body: Incoming,
    digest: &str,
) -> Response<Body> {
    if stream(dest, id, body).await.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            "BLOB_UPLOAD_INVALID",
            "upload body not read",
        );
    }
    match dest.finish(id, digest) {
        Ok(()) => created(name, digest.to_string()),
        Err(got) => error(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            &format!("provided digest did not match uploaded content ({got})"),
        ),
    }
}

/// Feeds `body` into session `id` frame by frame; the bytes received so far.
async fn stream(dest: &Destination, id: u64, mut body: Incoming) -> Option<u64> {
    let mut size = dest.append(id, &[])?;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.ok()?.into_data() {
            size = dest.append(id, &data)?;
        }
    }
    Some(size)
}

fn created(name: &str, digest: String) -> Response<Body> {
    let headers = [
        ("Location", format!("/v2/{name}/blobs/{digest}")),
        ("Docker-Content-Digest", digest),
        ("Content-Length", "0".to_string()),
    ];
    reply(StatusCode::CREATED, &headers, Bytes::new())
}

fn accepted(name: &str, id: u64, size: u64) -> Response<Body> {
    let headers = [
        ("Location", format!("/v2/{name}/blobs/uploads/{id}")),
        ("Range", format!("0-{}", size.saturating_sub(1))),
        ("Docker-Upload-UUID", id.to_string()),
        ("Content-Length", "0".to_string()),
    ];
    reply(StatusCode::ACCEPTED, &headers, Bytes::new())
}
