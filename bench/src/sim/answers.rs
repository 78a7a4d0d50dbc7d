//! The shape of the answers both simulated roles give: headers (always distribution's API
//! version), distribution's error JSON, manifests and blobs, tag list pages with `Link`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

/// Every answer's body: small, built whole.
pub type Body = Full<Bytes>;

/// The value of `key` in `query`, percent-decoded.
pub fn query_value(query: &str, key: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%' && i + 2 < bytes.len() + 1)
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An answer with `headers` and `body`, always with distribution's API version header.
pub fn reply(status: StatusCode, headers: &[(&str, String)], body: Bytes) -> Response<Body> {
    let mut builder = Response::builder()
        .status(status)
        .header("Docker-Distribution-API-Version", "registry/2.0");
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    builder
        .body(Full::new(body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// A JSON answer.
pub fn json(value: &serde_json::Value) -> Response<Body> {
    let body = Bytes::from(serde_json::to_vec(value).unwrap_or_default());
    reply(
        StatusCode::OK,
        &[("Content-Type", "application/json".to_string())],
        body,
    )
}

/// Distribution's error answer: `{"errors":[{"code":..,"message":..}]}`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let value = serde_json::json!({"errors": [{"code": code, "message": message}]});
    let body = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
    reply(
        status,
        &[("Content-Type", "application/json".to_string())],
        body,
    )
}

/// A manifest's or blob's answer: its headers, and its bytes unless `head`.
pub fn content(media_type: &str, bytes: Bytes, digest: &str, head: bool) -> Response<Body> {
    let headers = [
        ("Content-Type", media_type.to_string()),
        ("Docker-Content-Digest", digest.to_string()),
        ("Content-Length", bytes.len().to_string()),
    ];
    reply(
        StatusCode::OK,
        &headers,
        if head { Bytes::new() } else { bytes },
    )
}

/// One page of `tags` (sorted) after `last`, at most `n`, with a `Link` to the next page;
/// or, with `whole`, every tag whatever `n` and `last` say, in an order of its own (last
/// first), as distribution 2.8 answers from its storage.
pub fn tags_page(name: &str, mut tags: Vec<String>, query: &str, whole: bool) -> Response<Body> {
    if whole {
        tags.reverse();
        let value = serde_json::json!({"name": name, "tags": tags});
        return json(&value);
    }
    let last = query_value(query, "last");
    let n: Option<usize> = query_value(query, "n").and_then(|n| n.parse().ok());
    let after: Vec<String> = match &last {
        Some(last) => tags.into_iter().filter(|t| t > last).collect(),
        None => tags,
    };
    let take = n.unwrap_or(after.len()).min(after.len());
    let page = &after[..take];
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    if take < after.len() {
        if let (Some(n), Some(last)) = (n, page.last()) {
            let link = format!("</v2/{name}/tags/list?n={n}&last={last}>; rel=\"next\"");
            headers.push(("Link", link));
        }
    }
    let value = serde_json::json!({"name": name, "tags": page});
    let body = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
    reply(StatusCode::OK, &headers, body)
}

/// A bare 404 (no distribution error), as distribution 2.8 answers a route it lacks: the
/// mirror reads it on `referrers/` as "no Referrers API" and stops asking that registry.
pub fn no_route() -> Response<Body> {
    let headers = [("Content-Type", "text/plain; charset=utf-8".to_string())];
    reply(
        StatusCode::NOT_FOUND,
        &headers,
        Bytes::from_static(b"404 page not found\n"),
    )
}
