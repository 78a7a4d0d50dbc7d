//! Referrers travelling with their images, against in-memory registries: what is found
//! (Referrers API, tag schema, cosign tags), what is pushed and where it is listed, what
//! a no-op costs, and what filters and failures do. The HTTP side (docker-registry, and a
//! Referrers API served in front of it) is proven in `tests/tests/referrers.rs`.

use mirror_oci::manifest::Manifest;
use mirror_oci::memory::{MemoryRegistries, Op};
use serde_json::json;

use super::engine::CopyEngine;
use super::options::{CopyOptions, ReferrerOptions};
use super::referrers::fallback_tag;
use super::tests::{bed, index_of_two, r, BASE};
use crate::report::TagStatus;

const SPDX: &str = "application/spdx+json";
const SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// A cosign-style signature of `subject`, tagged `sha256-<hex>.sig` (no `subject` field).
fn sign(reg: &MemoryRegistries, repo: &str, subject: &Manifest, payload: &str) -> Manifest {
    let config = reg.add_blob("src.io", repo, b"{\"cosign\":true}");
    let layer = reg.add_blob("src.io", repo, payload.as_bytes());
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.size},
        "layers": [{"mediaType": SIMPLESIGNING, "digest": layer.digest, "size": layer.size,
                    "annotations": {"dev.cosignproject.cosign/signature": payload}}],
    });
    let tag = format!("{}.sig", fallback_tag(&subject.digest));
    reg.add_document("src.io", repo, Some(&tag), &doc)
}

/// An OCI 1.1 SBOM artifact referring to `subject`, pushed by digest; listed in the
/// source's `sha256-<hex>` index when `tag_schema`, as tools do for registries without
/// the Referrers API.
fn attach_sbom(
    reg: &MemoryRegistries,
    repo: &str,
    subject: &Manifest,
    text: &str,
    tag_schema: bool,
) -> Manifest {
    let empty = reg.add_blob("src.io", repo, b"{}");
    let layer = reg.add_blob("src.io", repo, text.as_bytes());
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": SPDX,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.digest, "size": 2},
        "layers": [{"mediaType": "text/spdx+json", "digest": layer.digest, "size": layer.size}],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.bytes.len()},
        "annotations": {"org.opencontainers.image.created": "2026-11-30T00:00:00Z"},
    });
    let sbom = reg.add_document("src.io", repo, None, &doc);
    if tag_schema {
        let tag = fallback_tag(&subject.digest);
        // One artifact per subject by tag schema in these tests: the index is written anew.
        let listed = vec![serde_json::to_value(sbom.as_referrer()).unwrap()];
        reg.add_document(
            "src.io",
            repo,
            Some(&tag),
            &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": listed}),
        );
    }
    sbom
}

/// The digests a destination's `sha256-<hex>` index lists.
async fn listed_at(reg: &MemoryRegistries, repo: &str, subject: &str) -> Vec<String> {
    use crate::name::{Reference, Repository};
    use crate::registry::Manifests;
    match reg
        .get_manifest(
            &Repository::new("dst.io", repo),
            &Reference::tag(fallback_tag(subject)),
        )
        .await
    {
        Ok(index) => index.children.iter().map(|d| d.digest.clone()).collect(),
        Err(_) => Vec::new(),
    }
}

#[tokio::test]
async fn cosign_tags_and_tag_schema_referrers_are_copied_with_identical_digests() {
    let b = bed(CopyOptions::default());
    let image = b.registries.add_image("src.io", "team/app", "1", &[BASE]);
    let sig = sign(&b.registries, "team/app", &image, "sig-1");
    let sbom = attach_sbom(&b.registries, "team/app", &image, "spdx", true);
    let report = b
        .engine
        .copy(&r("src.io/team/app:1"), &[r("dst.io/m/app:1")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.tags[0].status, TagStatus::Pushed);
    assert_eq!(report.tags[0].referrers, 2);
    assert_eq!(report.stats.referrers_pushed, 2);
    let sig_tag = format!("{}.sig", fallback_tag(&image.digest));
    assert_eq!(
        b.registries.tag("dst.io", "m/app", &sig_tag),
        Some(sig.digest)
    );
    assert_eq!(
        listed_at(&b.registries, "m/app", &image.digest).await,
        vec![sbom.digest.clone()]
    );
    let index_tag = fallback_tag(&image.digest);
    let index_digest = b.registries.tag("dst.io", "m/app", &index_tag);

    // A second run: the tag is at its digest, every referrer is there: nothing is written.
    b.registries.clear_calls();
    let pinned = r("src.io/team/app:1").with_digest(&image.digest);
    let again = b.engine.copy(&pinned, &[r("dst.io/m/app:1")]).await;
    assert_eq!(again.tags[0].status, TagStatus::UpToDate);
    assert_eq!(again.tags[0].referrers, 2);
    assert_eq!(again.stats.referrers_pushed, 0);
    assert_eq!(b.registries.count(Op::PutManifest), 0);
    assert_eq!(
        b.registries.count(Op::PutBlob) + b.registries.count(Op::PostBlob),
        0
    );
    assert_eq!(
        b.registries.tag("dst.io", "m/app", &index_tag),
        index_digest
    );
}

#[tokio::test]
async fn a_signature_added_after_the_image_was_mirrored_is_copied_by_the_next_run() {
    let b = bed(CopyOptions::default());
    let image = b.registries.add_image("src.io", "team/app", "1", &[BASE]);
    let pinned = r("src.io/team/app:1").with_digest(&image.digest);
    let first = b.engine.copy(&pinned, &[r("dst.io/m/app:1")]).await;
    assert_eq!(first.tags[0].referrers, 0);
    let sig = sign(&b.registries, "team/app", &image, "late");
    let later = b.engine.copy(&pinned, &[r("dst.io/m/app:1")]).await;
    assert!(later.succeeded(), "{later:?}");
    assert_eq!(later.tags[0].status, TagStatus::UpToDate);
    assert_eq!(later.stats.referrers_pushed, 1);
    let sig_tag = format!("{}.sig", fallback_tag(&image.digest));
    assert_eq!(
        b.registries.tag("dst.io", "m/app", &sig_tag),
        Some(sig.digest)
    );
}

#[tokio::test]
async fn a_no_op_with_referrers_costs_one_listing_at_the_source_and_one_head_at_the_destination() {
    let b = bed(CopyOptions::default());
    let image = b.registries.add_image("src.io", "team/app", "1", &[BASE]);
    let pinned = r("src.io/team/app:1").with_digest(&image.digest);
    b.engine.copy(&pinned, &[r("dst.io/m/app:1")]).await;
    b.registries.clear_calls();
    b.engine.copy(&pinned, &[r("dst.io/m/app:1")]).await;
    let calls = b.registries.calls();
    let at_destination: Vec<_> = calls.iter().filter(|c| c.repo == "dst.io/m/app").collect();
    assert_eq!(at_destination.len(), 1, "{calls:?}");
    // The Referrers API (absent here) and one listing of the tags after the one just
    // before `sha256-<hex>`, instead of a HEAD of the tag schema's tag and cosign's three.
    assert_eq!(calls.len(), 1 + 1 + 1, "{calls:?}");
    assert_eq!(b.registries.count(Op::ListTags), 1);
    assert_eq!(
        b.registries.count(Op::HeadManifest),
        1,
        "the destination tag only"
    );
    assert_eq!(b.registries.count(Op::GetBlob), 0);
}

#[tokio::test]
async fn the_referrers_api_at_the_source_is_used_and_the_tag_schema_kept_at_a_destination_without_it(
) {
    let b = bed(CopyOptions::default());
    b.registries.enable_referrers_api("src.io");
    let image = b.registries.add_image("src.io", "team/app", "1", &[BASE]);
    let sbom = attach_sbom(&b.registries, "team/app", &image, "spdx", false);
    let report = b
        .engine
        .copy(&r("src.io/team/app:1"), &[r("dst.io/m/app:1")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.tags[0].referrers, 1);
    assert_eq!(
        listed_at(&b.registries, "m/app", &image.digest).await,
        [sbom.digest]
    );
}

#[tokio::test]
async fn a_destination_with_the_referrers_api_gets_no_tag_schema_index() {
    let b = bed(CopyOptions::default());
    b.registries.enable_referrers_api("dst.io");
    let image = b.registries.add_image("src.io", "team/app", "1", &[BASE]);
    let sbom = attach_sbom(&b.registries, "team/app", &image, "spdx", true);
    let report = b
        .engine
        .copy(&r("src.io/team/app:1"), &[r("dst.io/m/app:1")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    let tag = fallback_tag(&image.digest);
    assert_eq!(b.registries.tag("dst.io", "m/app", &tag), None);
    use crate::registry::Referrers;
    let listed = b
        .registries
        .referrers(
            &crate::name::Repository::new("dst.io", "m/app"),
            &image.digest,
            None,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(listed[0].digest, sbom.digest);
    assert_eq!(listed[0].artifact_type.as_deref(), Some(SPDX));
}

#[tokio::test]
async fn what_a_destination_index_already_lists_is_kept_when_merging() {
    let b = bed(CopyOptions::default());
    let image = b.registries.add_image("src.io", "team/app", "1", &[BASE]);
    let sbom = attach_sbom(&b.registries, "team/app", &image, "spdx", true);
    // Someone else attached an artifact at the destination already.
    b.engine
        .copy(&r("src.io/team/app:1"), &[r("dst.io/m/app:1")])
        .await;
    let other_blob = b.registries.add_blob("dst.io", "m/app", b"theirs");
    let theirs = b.registries.add_document(
        "dst.io",
        "m/app",
        None,
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/x-theirs",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": other_blob.digest, "size": other_blob.size},
                "layers": [],
                "subject": {"mediaType": image.media_type, "digest": image.digest, "size": image.bytes.len()}}),
    );
    b.registries.add_document(
        "dst.io",
        "m/app",
        Some(&fallback_tag(&image.digest)),
        &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [theirs.as_referrer()]}),
    );
    let sig = sign(&b.registries, "team/app", &image, "new");
    let report = b
        .engine
        .copy(
            &r("src.io/team/app:1").with_digest(&image.digest),
            &[r("dst.io/m/app:1")],
        )
        .await;
    assert!(report.succeeded(), "{report:?}");
    let mut listed = listed_at(&b.registries, "m/app", &image.digest).await;
    listed.sort();
    let mut want = vec![theirs.digest, sbom.digest];
    want.sort();
    assert_eq!(listed, want, "their entry kept, ours added back");
    assert!(b
        .registries
        .tag(
            "dst.io",
            "m/app",
            &format!("{}.sig", fallback_tag(&image.digest))
        )
        .is_some_and(|d| d == sig.digest));
}

#[tokio::test]
async fn referrers_none_copies_none_and_referrers_type_selects() {
    let b = bed(CopyOptions {
        referrers: ReferrerOptions::none(),
        ..CopyOptions::default()
    });
    let image = b.registries.add_image("src.io", "team/app", "1", &[BASE]);
    sign(&b.registries, "team/app", &image, "s");
    let sbom = attach_sbom(&b.registries, "team/app", &image, "spdx", true);
    let report = b
        .engine
        .copy(&r("src.io/team/app:1"), &[r("dst.io/m/app:1")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.tags[0].referrers, 0);
    assert_eq!(b.registries.count(Op::Referrers), 0);
    assert!(listed_at(&b.registries, "m/app", &image.digest)
        .await
        .is_empty());

    let only_sboms = CopyEngine::new(
        b.registries.clone(),
        b.index.clone(),
        CopyOptions {
            referrers: ReferrerOptions {
                enabled: true,
                types: vec![SPDX.into()],
            },
            ..CopyOptions::default()
        },
    );
    let report = only_sboms
        .copy(&r("src.io/team/app:1"), &[r("dst.io/m/other:1")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.tags[0].referrers, 1);
    assert_eq!(
        listed_at(&b.registries, "m/other", &image.digest).await,
        [sbom.digest]
    );
    let sig_tag = format!("{}.sig", fallback_tag(&image.digest));
    assert_eq!(b.registries.tag("dst.io", "m/other", &sig_tag), None);
}

#[tokio::test]
async fn a_referrer_that_cannot_be_copied_fails_its_tag_and_writes_no_index() {
    let b = bed(CopyOptions::default());
    let image = b.registries.add_image("src.io", "team/app", "1", &[BASE]);
    let sbom = attach_sbom(&b.registries, "team/app", &image, "lost", true);
    // The source lost the SBOM's layer.
    let layer = sbom.blobs.last().unwrap().digest.clone();
    b.registries.unlink_blob("src.io", "team/app", &layer);
    let report = b
        .engine
        .copy(&r("src.io/team/app:1"), &[r("dst.io/m/app:1")])
        .await;
    assert_eq!(report.tags[0].status, TagStatus::Failed, "{report:?}");
    assert!(
        report.tags[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("referrer")),
        "{report:?}"
    );
    assert_eq!(
        b.registries.tag("dst.io", "m/app", "1"),
        None,
        "tag untouched"
    );
    assert_eq!(
        b.registries
            .tag("dst.io", "m/app", &fallback_tag(&image.digest)),
        None,
        "no index naming a missing referrer"
    );
}

#[tokio::test]
async fn referrers_of_an_index_child_and_of_a_referrer_travel_too() {
    let b = bed(CopyOptions::default());
    let (index, amd) = index_of_two(&b);
    let child_sbom = attach_sbom(&b.registries, "multi/app", &amd, "amd sbom", true);
    let sbom_sig = sign(&b.registries, "multi/app", &child_sbom, "sig of the sbom");
    let index_sig = sign(&b.registries, "multi/app", &index, "sig of the index");
    let report = b
        .engine
        .copy(&r("src.io/multi/app:1"), &[r("dst.io/m/app:1")])
        .await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.tags[0].referrers, 3);
    assert_eq!(
        listed_at(&b.registries, "m/app", &amd.digest).await,
        vec![child_sbom.digest.clone()]
    );
    for (subject, sig) in [(&child_sbom, &sbom_sig), (&index, &index_sig)] {
        let tag = format!("{}.sig", fallback_tag(&subject.digest));
        assert_eq!(
            b.registries.tag("dst.io", "m/app", &tag),
            Some(sig.digest.clone())
        );
    }
}

#[tokio::test]
async fn a_dry_run_counts_the_referrers_it_would_copy_and_writes_nothing() {
    let b = bed(CopyOptions {
        dry_run: true,
        ..CopyOptions::default()
    });
    let image = b.registries.add_image("src.io", "team/app", "1", &[BASE]);
    sign(&b.registries, "team/app", &image, "s");
    attach_sbom(&b.registries, "team/app", &image, "spdx", true);
    let report = b
        .engine
        .copy(&r("src.io/team/app:1"), &[r("dst.io/m/app:1")])
        .await;
    assert_eq!(report.tags[0].status, TagStatus::WouldCreate);
    assert_eq!(report.tags[0].referrers, 2);
    assert_eq!(report.stats.referrers_pushed, 2);
    assert_eq!(b.registries.count(Op::PutManifest), 0);
    assert_eq!(
        b.registries.count(Op::PutBlob) + b.registries.count(Op::PostBlob),
        0
    );
}

#[tokio::test]
async fn foreign_layers_are_left_out_unless_asked_for() {
    for include in [false, true] {
        let b = bed(CopyOptions {
            include_nondistributable: include,
            ..CopyOptions::default()
        });
        let config = b
            .registries
            .add_blob("src.io", "win/app", b"{\"os\":\"windows\"}");
        let foreign = b
            .registries
            .add_blob("src.io", "win/app", b"windows base layer");
        let doc = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.digest, "size": config.size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                        "digest": foreign.digest, "size": foreign.size, "urls": ["https://example.com/layer"]}],
        });
        let m = b
            .registries
            .add_document("src.io", "win/app", Some("1"), &doc);
        assert_eq!(m.foreign.len(), 1);
        let report = b
            .engine
            .copy(&r("src.io/win/app:1"), &[r("dst.io/m/win:1")])
            .await;
        assert!(report.succeeded(), "{report:?}");
        assert_eq!(b.registries.tag("dst.io", "m/win", "1"), Some(m.digest));
        assert_eq!(
            b.registries.has_blob("dst.io", "m/win", &foreign.digest),
            include
        );
    }
}

#[tokio::test]
async fn whether_a_destination_has_the_referrers_api_is_asked_once_per_registry() {
    let b = bed(CopyOptions::default());
    b.registries.enable_referrers_api("dst.io");
    let image = b.registries.add_image("src.io", "team/app", "1", &[BASE]);
    attach_sbom(&b.registries, "team/app", &image, "spdx", true);
    for repo in ["m/one", "m/two"] {
        let report = b
            .engine
            .copy(&r("src.io/team/app:1"), &[r(&format!("dst.io/{repo}:1"))])
            .await;
        assert!(report.succeeded(), "{report:?}");
    }
    assert_eq!(b.registries.count_at(Op::Referrers, "dst.io"), 1);
}

#[tokio::test]
async fn where_the_source_ignores_tag_paging_one_listing_answers_for_every_image_of_a_repository() {
    let b = bed(CopyOptions::default());
    b.registries.ignore_tag_paging("src.io");
    let images: Vec<Manifest> = (0..4)
        .map(|i| {
            let layer = format!("layer {i}");
            b.registries.add_image(
                "src.io",
                "team/app",
                &format!("v{i}"),
                &[BASE, layer.as_bytes()],
            )
        })
        .collect();
    let sig = sign(&b.registries, "team/app", &images[2], "signed");
    let copies = images.iter().enumerate().map(|(i, m)| {
        let pinned = r(&format!("src.io/team/app:v{i}")).with_digest(&m.digest);
        let engine = &b.engine;
        async move {
            engine
                .copy(&pinned, &[r(&format!("dst.io/m/app:v{i}"))])
                .await
        }
    });
    let reports = futures::future::join_all(copies).await;
    assert!(reports.iter().all(|r| r.succeeded()), "{reports:?}");
    assert_eq!(
        b.registries.count_at(Op::ListTags, "src.io"),
        1,
        "the images of one repository wait for its first listing, every tag"
    );
    let sig_tag = format!("{}.sig", fallback_tag(&images[2].digest));
    assert_eq!(
        b.registries.tag("dst.io", "m/app", &sig_tag),
        Some(sig.digest)
    );
    assert_eq!(reports[2].stats.referrers_pushed, 1);
    assert_eq!(
        reports
            .iter()
            .map(|r| r.stats.referrers_pushed)
            .sum::<u64>(),
        1,
        "only the signed image has a referrer"
    );
}
