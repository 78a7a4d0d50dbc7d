//! The simulator's checks: the generated set has the real shape and is deterministic, what
//! is served is what its name promises, the destination keeps what is pushed, and the real
//! `mirror-worker copy` copies through it (and finds the copy up to date the second time).

use std::sync::Arc;

use super::destination::Destination;
use super::generator::{digest_of, Generator, INDEX};
use super::server::{Behaviour, Role};
use super::{figures, start, Running};
use crate::scale::{write_mappings, Shape, Variety};

fn auth(token_auth: bool) -> Behaviour {
    Behaviour {
        token_auth,
        ..Behaviour::default()
    }
}

fn set() -> Arc<Generator> {
    Arc::new(Generator::new(Shape::at(1.0, Variety::Full), 7))
}

async fn source(generator: &Arc<Generator>) -> Running {
    source_with(generator, false).await
}

async fn source_with(generator: &Arc<Generator>, token_auth: bool) -> Running {
    let role = Role::Source(generator.clone());
    start("127.0.0.1:0", role, auth(token_auth)).await.unwrap()
}

async fn destination(generator: &Arc<Generator>, changed_percent: u64) -> Running {
    destination_with(generator, changed_percent, false).await
}

async fn destination_with(
    generator: &Arc<Generator>,
    changed_percent: u64,
    token_auth: bool,
) -> Running {
    let dest = Arc::new(Destination::new(generator.clone(), changed_percent));
    let role = Role::Destination(dest);
    start("127.0.0.1:0", role, auth(token_auth)).await.unwrap()
}

/// `GET` of `path` at `registry`: status, `Docker-Content-Digest`, body.
async fn get(registry: &Running, path: &str) -> (u16, String, bytes::Bytes) {
    let url = format!("http://{}{path}", registry.host());
    let response = reqwest::get(url).await.unwrap();
    let digest = response
        .headers()
        .get("docker-content-digest")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        response.status().as_u16(),
        digest,
        response.bytes().await.unwrap(),
    )
}

#[test]
fn the_set_at_scale_1_has_the_real_shape() {
    let full = figures(Shape::at(1.0, Variety::Full));
    assert_eq!(
        (full.files, full.repos, full.images, full.indexes),
        (147, 700, 4_100, 410)
    );
    assert!((7_500..8_000).contains(&full.dest_tags), "{full:?}");
    // The lines bench_scale measured are unchanged: 7,519 destination tags.
    let measured = figures(Shape::at(1.0, Variety::AsMeasured));
    assert_eq!(measured.dest_tags, 7_519);
    let dir = tempfile::tempdir().unwrap();
    let (files, tags) =
        write_mappings(dir.path(), Shape::at(1.0, Variety::Full), "s", "d").unwrap();
    assert_eq!((files.len(), tags), (147, full.dest_tags));
    let text: String = files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert!(text.contains("s/scale/r9:v* d/scale/r9\n"), "a glob line");
    assert!(
        text.contains("s/scale/r19 d/scale/r19\n"),
        "a tag-less line"
    );
    assert!(
        text.lines().any(|l| l.split(' ').count() == 4),
        "a line with three destinations"
    );
    assert!(files[0].ends_with("mapping_team0_0"));
}

#[test]
fn the_generator_is_deterministic_and_its_seed_matters() {
    let (a, b) = (set(), set());
    for (r, k) in [(0, 0), (1, 3), (699, 4)] {
        let (x, y) = (a.image(r, k, 0), b.image(r, k, 0));
        assert_eq!(x.top, y.top);
        assert_eq!(x.blobs, y.blobs);
        assert_eq!(x.top.content.digest, digest_of(&x.top.content.bytes));
        assert_ne!(x.top, a.image(r, k, 1).top, "a stale generation differs");
    }
    let other = Generator::new(Shape::at(1.0, Variety::Full), 8);
    assert_ne!(a.image(0, 0, 0).top, other.image(0, 0, 0).top);
    // Image 9 is an index of two platforms sharing the base layer of images 0, 3, 6.
    let index = a.image(1, 3, 0);
    assert_eq!((index.top.media_type, index.children.len()), (INDEX, 2));
    let base = &a.bases[0].digest;
    let first = String::from_utf8(a.image(0, 0, 0).top.content.bytes.to_vec()).unwrap();
    assert!(first.contains(base.as_str()));
}

#[tokio::test]
async fn a_served_index_has_its_promised_digest_and_its_children_and_blobs_resolve() {
    let generator = set();
    let src = source(&generator).await;
    let (status, digest, body) = get(&src, "/v2/scale/r1/manifests/v3").await;
    assert_eq!((status, digest.clone()), (200, digest_of(&body)));
    assert_eq!(digest, generator.image(1, 3, 0).top.content.digest);
    let index: serde_json::Value = serde_json::from_slice(&body).unwrap();
    for child in index["manifests"].as_array().unwrap() {
        let want = child["digest"].as_str().unwrap();
        let (status, got, body) = get(&src, &format!("/v2/scale/r1/manifests/{want}")).await;
        assert_eq!((status, got.as_str()), (200, want));
        let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let layers = manifest["layers"].as_array().unwrap().iter();
        for blob in layers.chain([&manifest["config"]]) {
            let want = blob["digest"].as_str().unwrap();
            let (status, _, bytes) = get(&src, &format!("/v2/scale/r1/blobs/{want}")).await;
            assert_eq!((status, digest_of(&bytes).as_str()), (200, want));
            assert_eq!(bytes.len() as u64, blob["size"].as_u64().unwrap());
        }
    }
    assert_eq!(get(&src, "/v2/scale/r1/manifests/v99").await.0, 404);
    assert_eq!(get(&src, "/v2/scale/r700/manifests/v0").await.0, 404);
    // No Referrers API, answered as distribution 2.8 does: a bare 404, not an error JSON.
    let (status, _, body) = get(&src, &format!("/v2/scale/r1/referrers/{digest}")).await;
    assert_eq!((status, &body[..]), (404, &b"404 page not found\n"[..]));
    let (_, _, stats) = get(&src, "/_sim/stats").await;
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    assert_eq!(stats["requests"]["manifest_get"], 5);
    assert_eq!(stats["requests"]["blob_get"], 6);
}

#[tokio::test]
async fn the_destination_starts_up_to_date_or_with_the_changed_percent_stale_or_absent() {
    let generator = set();
    let (fresh, changed) = (
        destination(&generator, 0).await,
        destination(&generator, 100).await,
    );
    let want = generator.image(1, 3, 0).top.content.digest;
    for tag in ["v3", "v3-mirror"] {
        let (status, digest, _) = get(&fresh, &format!("/v2/scale/r1/manifests/{tag}")).await;
        assert_eq!((status, digest.as_str()), (200, want.as_str()));
        let (status, digest, _) = get(&changed, &format!("/v2/scale/r1/manifests/{tag}")).await;
        assert!(status == 404 || digest == generator.image(1, 3, 1).top.content.digest);
    }
    let (_, _, page) = get(&fresh, "/v2/scale/r1/tags/list?n=4&last=v1").await;
    let page: serde_json::Value = serde_json::from_slice(&page).unwrap();
    assert_eq!(
        page["tags"],
        serde_json::json!(["v1-mirror", "v2", "v2-copy", "v2-mirror"])
    );
    let own = &generator.image(1, 3, 0).blobs[0].digest;
    let url = |registry: &Running| format!("http://{}/v2/scale/r1/blobs/{own}", registry.host());
    let client = reqwest::Client::new();
    assert_eq!(client.head(url(&fresh)).send().await.unwrap().status(), 200);
    assert_eq!(
        client.head(url(&changed)).send().await.unwrap().status(),
        404
    );
}

#[tokio::test]
async fn the_destination_verifies_uploads_and_keeps_mounts_and_manifests() {
    let generator = set();
    let dest = destination(&generator, 0).await;
    let base = format!("http://{}", dest.host());
    let client = reqwest::Client::new();
    let bytes = b"some pushed bytes".to_vec();
    let digest = digest_of(&bytes);
    let open = client
        .post(format!("{base}/v2/other/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(open.status(), 202);
    let location = format!("{base}{}", open.headers()["location"].to_str().unwrap());
    let patch = client
        .patch(&location)
        .body(bytes[..5].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(
        (
            patch.status().as_u16(),
            patch.headers()["range"].to_str().unwrap()
        ),
        (202, "0-4")
    );
    let wrong = client
        .put(format!("{location}?digest={}", digest_of(b"x")))
        .body(bytes[5..].to_vec());
    assert_eq!(wrong.send().await.unwrap().status(), 400);
    let open = client.post(format!(
        "{base}/v2/other/app/blobs/uploads/?digest={digest}"
    ));
    assert_eq!(open.body(bytes.clone()).send().await.unwrap().status(), 201);
    let blob = format!("{base}/v2/other/app/blobs/{digest}");
    let head = client.head(&blob).send().await.unwrap();
    let size = head.headers()["content-length"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        (head.status().as_u16(), size),
        (200, bytes.len().to_string())
    );
    let mount = format!("{base}/v2/other/copy/blobs/uploads/?mount={digest}&from=other/app");
    assert_eq!(client.post(mount).send().await.unwrap().status(), 201);
    let missing = format!(
        "{base}/v2/other/copy/blobs/uploads/?mount={}&from=other/app",
        digest_of(b"y")
    );
    assert_eq!(
        client.post(missing).send().await.unwrap().status(),
        202,
        "no such blob: a session"
    );
    let manifest = br#"{"schemaVersion":2}"#.to_vec();
    let put = client
        .put(format!("{base}/v2/other/app/manifests/latest"))
        .body(manifest.clone());
    let put = put.header("content-type", "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(put.send().await.unwrap().status(), 201);
    let (status, got, body) = get(&dest, "/v2/other/app/manifests/latest").await;
    assert_eq!(
        (status, got, body.to_vec()),
        (200, digest_of(&manifest), manifest)
    );
    let (_, _, tags) = get(&dest, "/v2/other/app/tags/list").await;
    assert_eq!(&tags[..], br#"{"name":"other/app","tags":["latest"]}"#);
}

/// `mirror-worker copy SRC DST` against the simulators: its stdout and stderr.
async fn copy(src: &str, dst: &str) -> String {
    let worker = mirror_tests::binary("mirror-worker");
    let out = tokio::process::Command::new(worker)
        .args(["copy", src, dst])
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_worker_copies_an_index_from_the_simulated_source_and_then_finds_it_up_to_date() {
    let generator = set();
    // Every image changed: the destination lacks scale/r1:v3 (or holds its older self).
    let (src, dst) = (source(&generator).await, destination(&generator, 100).await);
    let from = format!("{}/scale/r1:v3", src.host());
    let to = format!("{}/scale/r1:v3", dst.host());
    let first = copy(&from, &to).await;
    assert!(first.contains("1 pushed"), "{first}");
    let (status, digest, _) = get(&dst, "/v2/scale/r1/manifests/v3").await;
    assert_eq!(
        (status, digest),
        (200, generator.image(1, 3, 0).top.content.digest)
    );
    let second = copy(&from, &to).await;
    assert!(second.contains("1 up to date"), "{second}");
    let (_, _, stats) = get(&dst, "/_sim/stats").await;
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    assert_eq!(stats["requests"]["manifest_put"], 3, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_token_auth_a_request_needs_the_token_and_mirror_worker_fetches_it() {
    let generator = set();
    let src = source_with(&generator, true).await;
    let dst = destination_with(&generator, 100, true).await;
    let url = format!("http://{}/v2/scale/r0/manifests/v0", dst.host());
    let denied = reqwest::get(&url).await.unwrap();
    assert_eq!(denied.status(), 401);
    let challenge = denied.headers()["www-authenticate"].to_str().unwrap();
    let realm = format!("realm=\"http://{}/_sim/token\"", dst.host());
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains(&realm),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"repository:scale/r0:pull,push\""),
        "{challenge}"
    );
    let from = format!("{}/scale/r0:v0", src.host());
    let to = format!("{}/scale/r0:v0", dst.host());
    let first = copy(&from, &to).await;
    assert!(first.contains("1 pushed"), "{first}");
    let (_, _, stats) = get(&dst, "/_sim/stats").await;
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    assert!(stats["requests"]["token"].as_u64().unwrap() >= 1, "{stats}");
}

#[tokio::test]
async fn whole_tag_lists_ignore_n_and_last_and_come_unsorted_as_distribution_2_8_answers() {
    let generator = set();
    let role = Role::Source(generator.clone());
    let behaviour = Behaviour {
        whole_tag_lists: true,
        ..Behaviour::default()
    };
    let src = start("127.0.0.1:0", role, behaviour).await.unwrap();
    let (_, _, page) = get(&src, "/v2/scale/r0/tags/list?n=2&last=v3").await;
    let page: serde_json::Value = serde_json::from_slice(&page).unwrap();
    assert_eq!(
        page["tags"].as_array().unwrap().len(),
        generator.shape.tags_of(0)
    );
}

#[tokio::test]
async fn changed_sources_serve_a_new_digest_that_resolves_and_the_destination_keeps_when_pushed() {
    let generator = set();
    let (src, dst) = (source(&generator).await, destination(&generator, 0).await);
    let before = get(&src, "/v2/scale/r0/manifests/v0").await.1;
    let url = format!("http://{}/_sim/change-sources?percent=100", src.host());
    let answer: serde_json::Value = reqwest::Client::new()
        .post(url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["changed"], generator.shape.images);
    // Round 1 is generation 2: never the destination's stale generation 1.
    let (status, after, body) = get(&src, "/v2/scale/r0/manifests/v0").await;
    assert_eq!(status, 200);
    assert_ne!(after, before);
    assert_eq!(after, generator.image(0, 0, 2).top.content.digest);
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let layer = manifest["layers"][1]["digest"].as_str().unwrap();
    let (status, _, bytes) = get(&src, &format!("/v2/scale/r0/blobs/{layer}")).await;
    assert_eq!((status, digest_of(&bytes).as_str()), (200, layer));
    // The destination still holds generation 0, until the new manifest is pushed.
    assert_eq!(get(&dst, "/v2/scale/r0/manifests/v0").await.1, before);
    let put = reqwest::Client::new()
        .put(format!("http://{}/v2/scale/r0/manifests/v0", dst.host()))
        .header("content-type", super::generator::MANIFEST)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    assert_eq!(get(&dst, "/v2/scale/r0/manifests/v0").await.1, after);
    // The control and the stats are not counted as the mirror's requests.
    let (_, _, stats) = get(&src, "/_sim/stats").await;
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    assert_eq!(stats["total"], 3, "{stats}");
}
