//! The endpoint over real HTTP on a loopback port: authentication, size limit, malformed
//! bodies, what is counted, the all-or-none queue and its 503. Each test has senders of
//! its own names, so that the process-wide counters it reads are its own.

use std::path::Path;

use super::*;

const TOKEN: &str = "s3cret-token-0123456789";

fn senders(names: &[(&str, &str, &str)]) -> HashMap<String, Sender> {
    let text: String = names
        .iter()
        .map(|(name, kind, registry)| {
            format!("- name: {name}\n  kind: {kind}\n  registry: {registry}\n  token_env: T\n")
        })
        .collect();
    super::super::senders::parse(Path::new("s.yaml"), &text, |_| Some(TOKEN.to_string()))
        .unwrap()
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect()
}

async fn start(
    names: &[(&str, &str, &str)],
    capacity: usize,
) -> (String, mpsc::Receiver<Arrival>, Arc<Recent>) {
    let (tx, rx) = mpsc::channel(capacity);
    let recent = Arc::new(Recent::default());
    let intake = Arc::new(Intake {
        senders: senders(names),
        queue: tx,
        recent: recent.clone(),
        run_id: uuid::Uuid::nil(),
    });
    let addr = serve("127.0.0.1:0".parse().unwrap(), intake).await.unwrap();
    (format!("http://{addr}"), rx, recent)
}

async fn post(url: &str, auth: Option<&str>, body: impl Into<reqwest::Body>) -> (u16, String) {
    let mut req = reqwest::Client::new().post(url).body(body);
    if let Some(a) = auth {
        req = req.header("Authorization", a);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn counter(text: &str, name: &str, labels: &str) -> u64 {
    text.lines()
        .find(|l| l.starts_with(name) && l.contains(labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn envelope(tags: &[&str]) -> String {
    let events: Vec<_> = tags
        .iter()
        .map(|t| {
            serde_json::json!({"action": "push", "timestamp": "2026-12-07T13:00:00Z",
                "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "repository": "team/app", "tag": t},
                "request": {"host": "internal:5000"}})
        })
        .collect();
    serde_json::json!({ "events": events }).to_string()
}

#[tokio::test]
async fn unknown_sender_404_missing_or_wrong_token_401_right_token_202() {
    let (base, mut rx, recent) = start(&[("auth-ci", "distribution", "src.io")], 16).await;
    let body = envelope(&["1.0"]);
    let (status, _) = post(
        &format!("{base}/events/nobody"),
        Some(&format!("Bearer {TOKEN}")),
        body.clone(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = post(&format!("{base}/events/auth-ci"), None, body.clone()).await;
    assert_eq!(status, 401);
    let (status, text) = post(
        &format!("{base}/events/auth-ci"),
        Some("Bearer wrong-token-0123456789"),
        body.clone(),
    )
    .await;
    assert_eq!(status, 401);
    assert!(!text.contains(TOKEN), "{text}");
    let (status, text) = post(
        &format!("{base}/events/auth-ci"),
        Some(&format!("Bearer {TOKEN}")),
        body.clone(),
    )
    .await;
    assert_eq!(status, 202, "{text}");
    assert!(text.contains("\"accepted\":1"), "{text}");
    let a = rx.recv().await.unwrap();
    assert_eq!(
        a.image.to_string(),
        "src.io/team/app:1.0",
        "the sender's registry, not the body's host"
    );
    assert_eq!(a.sender, "auth-ci");
    // The token in the URL, for senders that cannot set a header.
    let (status, _) = post(&format!("{base}/events/auth-ci?token={TOKEN}"), None, body).await;
    assert_eq!(status, 202);
    let m = mirror_fleet::observe::metrics::global().encode();
    assert_eq!(
        counter(
            &m,
            "mirror_events_rejected_total",
            "sender=\"auth-ci\",reason=\"unauthorized\""
        ),
        2,
        "{m}"
    );
    assert!(
        counter(&m, "mirror_events_rejected_total", "sender=\"unknown\"") >= 1,
        "{m}"
    );
    assert_eq!(
        counter(&m, "mirror_events_received_total", "sender=\"auth-ci\""),
        2,
        "{m}"
    );
    let seen = serde_json::to_string(&recent.list()).unwrap();
    assert!(!seen.contains(TOKEN), "{seen}");
    let listed = reqwest::get(format!("{base}/events"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(listed.contains("src.io/team/app:1.0"), "{listed}");
    assert!(!listed.contains(TOKEN), "{listed}");
}

#[tokio::test]
async fn bodies_over_the_limit_413_malformed_400_with_the_reason() {
    let (base, _rx, _) = start(
        &[
            ("size-ci", "distribution", "src.io"),
            ("size-plain", "plain", "src.io"),
        ],
        16,
    )
    .await;
    let auth = format!("Bearer {TOKEN}");
    let big = vec![b' '; MAX_BODY + 1];
    let (status, _) = post(&format!("{base}/events/size-ci"), Some(&auth), big).await;
    assert_eq!(status, 413);
    let (status, text) = post(
        &format!("{base}/events/size-ci"),
        Some(&auth),
        "{\"nope\": 1}",
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("no \"events\" list"), "{text}");
    let (status, text) = post(
        &format!("{base}/events/size-plain"),
        Some(&auth),
        r#"{"image": "elsewhere.io/a/b:1"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("announces images of src.io only"), "{text}");
    let (status, _) = post(
        &format!("{base}/events/size-plain"),
        Some(&auth),
        r#"{"image": "src.io/a/b:1"}"#,
    )
    .await;
    assert_eq!(status, 202);
    let m = mirror_fleet::observe::metrics::global().encode();
    assert_eq!(
        counter(
            &m,
            "mirror_events_rejected_total",
            "sender=\"size-ci\",reason=\"too_large\""
        ),
        1,
        "{m}"
    );
    assert_eq!(
        counter(
            &m,
            "mirror_events_rejected_total",
            "sender=\"size-ci\",reason=\"malformed\""
        ),
        1,
        "{m}"
    );
}

#[tokio::test]
async fn ignored_events_are_counted_by_reason_bad_ones_in_an_envelope_do_not_block_the_rest() {
    let (base, mut rx, _) = start(&[("ign-ci", "distribution", "src.io")], 16).await;
    let body = serde_json::json!({"events": [
        {"action": "pull", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "team/app", "tag": "1"}},
        {"action": "push", "target": {"mediaType": "application/octet-stream", "repository": "team/app"}},
        {"action": "delete", "target": {"repository": "team/app", "tag": "old"}},
        {"action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "Team/Bad", "tag": "1"}},
        {"action": "push", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "team/app", "tag": "2"}}
    ]});
    let (status, text) = post(
        &format!("{base}/events/ign-ci"),
        Some(&format!("Bearer {TOKEN}")),
        body.to_string(),
    )
    .await;
    assert_eq!(status, 202, "{text}");
    assert_eq!(
        rx.recv().await.unwrap().image.to_string(),
        "src.io/team/app:2"
    );
    let m = mirror_fleet::observe::metrics::global().encode();
    for reason in ["pull", "layer", "delete", "invalid"] {
        let labels = format!("sender=\"ign-ci\",reason=\"{reason}\"");
        assert_eq!(
            counter(&m, "mirror_events_ignored_total", &labels),
            1,
            "{reason}: {m}"
        );
    }
}

#[tokio::test]
async fn a_full_queue_answers_503_and_takes_none_of_the_body() {
    let (base, mut rx, _) = start(&[("full-ci", "distribution", "src.io")], 2).await;
    let auth = format!("Bearer {TOKEN}");
    let (status, _) = post(
        &format!("{base}/events/full-ci"),
        Some(&auth),
        envelope(&["a", "b", "c"]),
    )
    .await;
    assert_eq!(status, 413, "more pushes than the queue ever takes");
    let (status, _) = post(
        &format!("{base}/events/full-ci"),
        Some(&auth),
        envelope(&["x"]),
    )
    .await;
    assert_eq!(status, 202);
    let (status, _) = post(
        &format!("{base}/events/full-ci"),
        Some(&auth),
        envelope(&["a", "b"]),
    )
    .await;
    assert_eq!(status, 503, "room for one, not two");
    assert_eq!(rx.recv().await.unwrap().image.tag.as_deref(), Some("x"));
    let (status, _) = post(
        &format!("{base}/events/full-ci"),
        Some(&auth),
        envelope(&["a", "b"]),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(rx.recv().await.unwrap().image.tag.as_deref(), Some("a"));
    assert_eq!(rx.recv().await.unwrap().image.tag.as_deref(), Some("b"));
    assert!(
        rx.try_recv().is_err(),
        "nothing of the refused body was queued"
    );
    let m = mirror_fleet::observe::metrics::global().encode();
    assert_eq!(
        counter(
            &m,
            "mirror_events_rejected_total",
            "sender=\"full-ci\",reason=\"queue_full\""
        ),
        1,
        "{m}"
    );
}
