//! What a notification body says, per sender kind: pushes of tags (the only thing acted
//! on), deletes (logged and counted, nothing deleted), and everything else ignored with a
//! reason that is counted. Nothing here is trusted beyond "re-check this tag": the digest
//! a body may carry is never used to copy (the publisher HEADs the source).
//!
//! A body that is not of its sender's kind at all is an error (the listener answers 400
//! with it). Within a distribution envelope, one odd event is ignored as `invalid` instead:
//! distribution retries a refused envelope for ever, so one bad event must not block the
//! rest of its queue.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::senders::Kind;

/// A tag pushed, as the body says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// The repository path inside the registry (`team/app`).
    pub repository: String,
    /// The tag pushed.
    pub tag: String,
    /// The host the body names (the registry's own view of itself), if any; the plain
    /// form's image must name the sender's registry.
    pub host: Option<String>,
    /// When the registry says the push happened (for the latency histogram).
    pub at: Option<SystemTime>,
    /// The digest the body says was pushed: a hint for when to HEAD (a registry may
    /// notify before the tag points at it), never what is copied.
    pub digest: Option<String>,
}

/// One event of a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Notice {
    /// A tag was pushed: re-check it.
    Push(Pushed),
    /// A tag or manifest was deleted (`repository`, `tag or digest`): said, counted, not done.
    Delete(String, String),
    /// Not acted on, with the reason (a metrics label: a small fixed set).
    Ignored(&'static str),
}

/// The events of a body from a sender of `kind`.
pub(crate) fn parse(kind: Kind, body: &[u8]) -> Result<Vec<Notice>, String> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    match kind {
        Kind::Distribution => distribution(&v),
        Kind::Quay => quay(&v),
        Kind::Harbor => harbor(&v),
        Kind::Dockerhub => dockerhub(&v),
        Kind::Plain => plain(&v),
    }
}

fn str_at<'v>(v: &'v Value, path: &[&str]) -> Option<&'v str> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn unix(v: Option<&Value>) -> Option<SystemTime> {
    let secs = v?.as_f64()?;
    (secs > 0.0).then(|| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs))
}

/// The media types of manifests and indexes (a push of one of these is a tag push when
/// it carries a tag); anything else pushed is a blob.
fn is_manifest(media_type: &str, url: &str) -> bool {
    media_type.contains("manifest")
        || media_type.contains("image.index")
        || media_type.contains("prettyjws")
        || (media_type.is_empty() && url.contains("/manifests/"))
}

/// `{"events": [...]}`: act on `push` of a manifest with `target.tag`.
fn distribution(v: &Value) -> Result<Vec<Notice>, String> {
    let events = v
        .get("events")
        .and_then(Value::as_array)
        .ok_or("a distribution envelope is {\"events\": [...]}; no \"events\" list")?;
    Ok(events.iter().map(distribution_event).collect())
}

fn distribution_event(e: &Value) -> Notice {
    let (Some(action), Some(repository)) =
        (str_at(e, &["action"]), str_at(e, &["target", "repository"]))
    else {
        return Notice::Ignored("invalid");
    };
    let media_type = str_at(e, &["target", "mediaType"]).unwrap_or("");
    let url = str_at(e, &["target", "url"]).unwrap_or("");
    let tag = str_at(e, &["target", "tag"]);
    let manifest = is_manifest(media_type, url);
    match action {
        "push" if !manifest => Notice::Ignored("layer"),
        "push" => match tag {
            Some(tag) => Notice::Push(Pushed {
                repository: repository.to_string(),
                tag: tag.to_string(),
                host: str_at(e, &["request", "host"]).map(str::to_string),
                at: str_at(e, &["timestamp"])
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(SystemTime::from),
                digest: str_at(e, &["target", "digest"]).map(str::to_string),
            }),
            None => Notice::Ignored("digest_only"),
        },
        "delete" => {
            let what = tag.or(str_at(e, &["target", "digest"])).unwrap_or("?");
            Notice::Delete(repository.to_string(), what.to_string())
        }
        "pull" => Notice::Ignored("pull"),
        "mount" => Notice::Ignored("mount"),
        _ => Notice::Ignored("other_action"),
    }
}

/// Quay's `repo_push`: `repository`, `docker_url`, `updated_tags`; no digest, no time.
fn quay(v: &Value) -> Result<Vec<Notice>, String> {
    let repository = str_at(v, &["repository"])
        .ok_or("a Quay repo_push body has \"repository\"; it is missing")?;
    let tags = v
        .get("updated_tags")
        .and_then(Value::as_array)
        .ok_or("a Quay repo_push body has \"updated_tags\"; it is missing")?;
    let host = str_at(v, &["docker_url"])
        .and_then(|u| u.split('/').next())
        .map(str::to_string);
    Ok(tags
        .iter()
        .map(|t| match t.as_str().filter(|t| !t.is_empty()) {
            Some(tag) => Notice::Push(Pushed {
                repository: repository.to_string(),
                tag: tag.to_string(),
                host: host.clone(),
                at: None,
                digest: None,
            }),
            None => Notice::Ignored("invalid"),
        })
        .collect())
}

/// Harbor's webhook: `type`, `occur_at`, `event_data.repository.repo_full_name`,
/// `event_data.resources[].tag`/`digest`/`resource_url`.
fn harbor(v: &Value) -> Result<Vec<Notice>, String> {
    let kind = str_at(v, &["type"]).ok_or("a Harbor webhook body has \"type\"; it is missing")?;
    if kind != "PUSH_ARTIFACT" && kind != "DELETE_ARTIFACT" {
        return Ok(vec![Notice::Ignored("other_action")]);
    }
    let repository = str_at(v, &["event_data", "repository", "repo_full_name"]).ok_or(
        "a Harbor artifact event has \"event_data.repository.repo_full_name\"; it is missing",
    )?;
    let resources = v
        .pointer("/event_data/resources")
        .and_then(Value::as_array)
        .ok_or("a Harbor artifact event has \"event_data.resources\"; it is missing")?;
    let at = unix(v.get("occur_at"));
    Ok(resources
        .iter()
        .map(|r| {
            let tag = str_at(r, &["tag"]);
            let host = str_at(r, &["resource_url"])
                .and_then(|u| u.split('/').next())
                .map(str::to_string);
            match (kind, tag) {
                ("DELETE_ARTIFACT", _) => Notice::Delete(
                    repository.to_string(),
                    tag.or(str_at(r, &["digest"])).unwrap_or("?").to_string(),
                ),
                (_, Some(tag)) => Notice::Push(Pushed {
                    repository: repository.to_string(),
                    tag: tag.to_string(),
                    host,
                    at,
                    digest: str_at(r, &["digest"]).map(str::to_string),
                }),
                (_, None) => Notice::Ignored("digest_only"),
            }
        })
        .collect())
}

/// Docker Hub's webhook: `repository.repo_name`, `push_data.tag`, `push_data.pushed_at`.
fn dockerhub(v: &Value) -> Result<Vec<Notice>, String> {
    let repository = str_at(v, &["repository", "repo_name"])
        .ok_or("a Docker Hub webhook body has \"repository.repo_name\"; it is missing")?;
    let tag = str_at(v, &["push_data", "tag"])
        .ok_or("a Docker Hub webhook body has \"push_data.tag\"; it is missing")?;
    Ok(vec![Notice::Push(Pushed {
        repository: repository.to_string(),
        tag: tag.to_string(),
        host: None,
        at: unix(v.pointer("/push_data/pushed_at")),
        digest: None,
    })])
}

/// `{"image": "host/repo:tag"}` (a CI script's announcement).
fn plain(v: &Value) -> Result<Vec<Notice>, String> {
    let image = str_at(v, &["image"]).ok_or("the plain form is {\"image\": \"host/repo:tag\"}")?;
    let r = mirror_common::reference::ImageRef::parse(image).map_err(|e| e.to_string())?;
    let Some(tag) = r.tag.filter(|_| r.digest.is_none()) else {
        return Err(format!(
            "\"{image}\": the plain form names a tag (host/repo:tag), no digest"
        ));
    };
    Ok(vec![Notice::Push(Pushed {
        repository: r.repository,
        tag,
        host: Some(r.registry),
        at: None,
        digest: None,
    })])
}

#[cfg(test)]
#[path = "bodies_tests.rs"]
mod tests;
