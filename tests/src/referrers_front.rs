//! The OCI 1.1 Referrers API served in front of a registry that lacks it (distribution
//! 2.8 answers `/v2/<name>/referrers/<digest>` with a bare 404), for [`Proxy`]
//! (crate::Proxy) with [`serve_referrers_api`](crate::Proxy::serve_referrers_api).
//!
//! What is real and what is shaped: the content is the registry's own. The answer is read
//! from the referrers tag schema's index (`sha256-<hex>`) stored in the real registry
//! (tests push it there as oras does) and returned in the Referrers API's shape: an OCI
//! index, `200` with an empty list when nothing refers to the digest, the `artifactType`
//! query filter applied with `OCI-Filters-Applied`. Registries with the API compute the
//! list from the `subject` of each manifest they store; the shape of the answer is the same.

use bytes::Bytes;
use serde_json::{json, Value};

use crate::proxy::Answer;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The Referrers API's answer for a `GET` of `path`, or `None` when `path` is not a
/// referrers request (it is then forwarded as usual).
pub(crate) async fn answer(upstream_host: &str, path: &str) -> Option<Answer> {
    let (route, query) = path.split_once('?').unwrap_or((path, ""));
    let rest = route.strip_prefix("/v2/")?;
    let (repo, digest) = rest.rsplit_once("/referrers/")?;
    let filter: Option<String> = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "artifactType")
        .map(|(_, v)| v.into_owned());
    let tag = digest.replacen(':', "-", 1);
    let url = format!("http://{upstream_host}/v2/{repo}/manifests/{tag}");
    let resp = reqwest::Client::new()
        .get(&url)
        .header("Accept", OCI_INDEX)
        .send()
        .await
        .ok()?;
    let mut listed: Vec<Value> = if resp.status().is_success() {
        let doc: Value = resp.json().await.ok()?;
        doc["manifests"].as_array().cloned().unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut headers = vec![("Content-Type".to_string(), OCI_INDEX.to_string())];
    if let Some(t) = &filter {
        listed.retain(|e| e["artifactType"].as_str() == Some(t.as_str()));
        headers.push(("OCI-Filters-Applied".into(), "artifactType".into()));
    }
    let body = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed});
    Some(Answer {
        path_contains: path.to_string(),
        status: 200,
        headers,
        body: Bytes::from(body.to_string()),
    })
}
