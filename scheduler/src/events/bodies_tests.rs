//! Bodies of each sender kind. The distribution envelope is the one docker-registry 2.8
//! sends (its `notifications` package; the integration test `push_events` gets real ones).
//! The Quay, Harbor and Docker Hub bodies are shaped from the payloads their
//! documentation shows (Quay "Repository Notifications: Push to Repository", Harbor
//! "Webhook Notifications" `PUSH_ARTIFACT` / `DELETE_ARTIFACT`, Docker Hub "Webhooks"
//! example payload): no such service runs here, so these are not captured traffic.

use super::*;

fn push(repository: &str, tag: &str, host: Option<&str>) -> Notice {
    Notice::Push(Pushed {
        repository: repository.into(),
        tag: tag.into(),
        host: host.map(str::to_string),
        at: None,
        digest: None,
    })
}

/// The notices without the push times and digest hints (checked on their own).
fn without_time(mut n: Vec<Notice>) -> Vec<Notice> {
    for n in &mut n {
        if let Notice::Push(p) = n {
            p.at = None;
            p.digest = None;
        }
    }
    n
}

const DIGEST: &str = "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf";

#[test]
fn distribution_acts_on_tagged_manifest_pushes_and_counts_the_rest() {
    let body = serde_json::json!({"events": [
        {"id": "1", "timestamp": "2026-12-07T13:00:00.123456789Z", "action": "push",
         "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "digest": DIGEST, "repository": "team/app", "tag": "1.0",
                    "url": "http://r:5000/v2/team/app/manifests/sha256:fea8"},
         "request": {"host": "r:5000", "method": "PUT"}},
        {"action": "push", "target": {"mediaType": "application/vnd.oci.image.index.v1+json",
                    "digest": DIGEST, "repository": "team/app", "tag": "multi"},
         "request": {"host": "r:5000"}},
        {"action": "push", "target": {"mediaType": "application/octet-stream",
                    "digest": DIGEST, "repository": "team/app",
                    "url": "http://r:5000/v2/team/app/blobs/sha256:fea8"}},
        {"action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": DIGEST, "repository": "team/app"}},
        {"action": "pull", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "repository": "team/app", "tag": "1.0"}},
        {"action": "mount", "target": {"mediaType": "application/octet-stream", "repository": "team/app"}},
        {"action": "delete", "target": {"digest": DIGEST, "repository": "team/app"}},
        {"action": "push"}
    ]});
    let got = parse(Kind::Distribution, body.to_string().as_bytes()).unwrap();
    let Notice::Push(first) = &got[0] else {
        panic!("{got:?}")
    };
    let at = first.at.expect("the event's timestamp");
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(secs, 1_796_648_400);
    assert_eq!(first.digest.as_deref(), Some(DIGEST));
    assert_eq!(
        without_time(got),
        [
            push("team/app", "1.0", Some("r:5000")),
            push("team/app", "multi", Some("r:5000")),
            Notice::Ignored("layer"),
            Notice::Ignored("digest_only"),
            Notice::Ignored("pull"),
            Notice::Ignored("mount"),
            Notice::Delete("team/app".into(), DIGEST.into()),
            Notice::Ignored("invalid"),
        ]
    );
}

#[test]
fn distribution_body_without_events_is_refused_with_the_reason() {
    let e = parse(Kind::Distribution, b"{\"event\": []}").unwrap_err();
    assert!(e.contains("no \"events\" list"), "{e}");
    let e = parse(Kind::Distribution, b"not json").unwrap_err();
    assert!(e.starts_with("the body is not JSON"), "{e}");
}

#[test]
fn quay_repo_push_gives_each_updated_tag() {
    // Quay's documented "Push to Repository" payload.
    let body = serde_json::json!({
        "name": "repository", "repository": "mynamespace/repository",
        "namespace": "mynamespace", "docker_url": "quay.io/mynamespace/repository",
        "homepage": "https://quay.io/repository/mynamespace/repository",
        "updated_tags": ["latest", "1.2"]
    });
    let got = parse(Kind::Quay, body.to_string().as_bytes()).unwrap();
    assert_eq!(
        got,
        [
            push("mynamespace/repository", "latest", Some("quay.io")),
            push("mynamespace/repository", "1.2", Some("quay.io")),
        ]
    );
    let e = parse(Kind::Quay, b"{\"repository\": \"a/b\"}").unwrap_err();
    assert!(e.contains("updated_tags"), "{e}");
}

#[test]
fn harbor_push_and_delete_artifact() {
    // Harbor's documented PUSH_ARTIFACT payload (webhook policy, HTTP).
    let body = serde_json::json!({
        "type": "PUSH_ARTIFACT", "occur_at": 1_680_501_893, "operator": "admin",
        "event_data": {
            "resources": [
                {"digest": DIGEST, "tag": "v1", "resource_url": "harbor.example.com/library/app:v1"},
                {"digest": DIGEST, "resource_url": "harbor.example.com/library/app@sha256:fea8"}
            ],
            "repository": {"date_created": 1_680_501_000, "name": "app", "namespace": "library",
                           "repo_full_name": "library/app", "repo_type": "private"}
        }
    });
    let got = parse(Kind::Harbor, body.to_string().as_bytes()).unwrap();
    let Notice::Push(p) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(
        p.at,
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_680_501_893))
    );
    assert_eq!(
        without_time(got),
        [
            push("library/app", "v1", Some("harbor.example.com")),
            Notice::Ignored("digest_only"),
        ]
    );
    let delete = body.to_string().replace("PUSH_ARTIFACT", "DELETE_ARTIFACT");
    let got = parse(Kind::Harbor, delete.as_bytes()).unwrap();
    assert_eq!(got[0], Notice::Delete("library/app".into(), "v1".into()));
    let pull = body.to_string().replace("PUSH_ARTIFACT", "PULL_ARTIFACT");
    assert_eq!(
        parse(Kind::Harbor, pull.as_bytes()).unwrap(),
        [Notice::Ignored("other_action")]
    );
}

#[test]
fn dockerhub_push_data() {
    // Docker Hub's documented webhook example payload.
    let body = serde_json::json!({
        "callback_url": "https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
        "push_data": {"pushed_at": 1_417_566_161, "pusher": "trustedbuilder", "tag": "latest"},
        "repository": {"name": "testhook", "namespace": "svendowideit",
                       "repo_name": "svendowideit/testhook", "status": "Active"}
    });
    let got = parse(Kind::Dockerhub, body.to_string().as_bytes()).unwrap();
    let Notice::Push(p) = &got[0] else {
        panic!("{got:?}")
    };
    assert_eq!(
        p.at,
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_417_566_161))
    );
    assert_eq!(
        without_time(got),
        [push("svendowideit/testhook", "latest", None)]
    );
    assert!(parse(Kind::Dockerhub, b"{\"repository\": {}}").is_err());
}

#[test]
fn plain_form_names_an_image_with_a_tag() {
    let got = parse(
        Kind::Plain,
        br#"{"image": "r.example.com:5000/team/app:2.0"}"#,
    )
    .unwrap();
    assert_eq!(got, [push("team/app", "2.0", Some("r.example.com:5000"))]);
    let e = parse(Kind::Plain, br#"{"image": "r.example.com/team/app"}"#).unwrap_err();
    assert!(e.contains("names a tag"), "{e}");
    let e = parse(Kind::Plain, br#"{"image": "r.example.com/Team/app:1"}"#).unwrap_err();
    assert!(e.contains("lowercase"), "{e}");
    assert!(parse(Kind::Plain, br#"{"img": "x"}"#).is_err());
}
