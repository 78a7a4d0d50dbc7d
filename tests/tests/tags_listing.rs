//! Listing the tags of a source (for globs and tag-less mapping sources) returns every tag.
//!
//! distribution 2.8 answers `tags/list?n=2` with all tags and no `Link` header (tag
//! pagination arrived in distribution 3), so against it one request must come back whole;
//! following `Link` pages is covered by the unit test of `next_link`.

use mirror_common::name::Repository;
use mirror_common::registry::{ClientOptions, RegistryClient, Tags};
use mirror_tests::*;

#[tokio::test]
async fn tag_listing_returns_every_tag_of_the_repository() {
    let src = Registry::start().await.unwrap();
    let layer = Layer::random(500);
    let mut pushed: Vec<String> = Vec::new();
    for t in ["a1", "a2", "b1", "b2", "c1"] {
        push_image(&src, "many/tags", t, ImageSpec::new(vec![layer.clone()]))
            .await
            .unwrap();
        pushed.push(t.to_string());
    }
    let proxy = Proxy::start(&src).await.unwrap();
    let mut opts = ClientOptions::default();
    opts.insecure_registries.insert(proxy.host());
    let client = RegistryClient::new(opts).unwrap();
    let mut tags = client
        .list_tags_paged(&Repository::new(proxy.host(), "many/tags"), 2)
        .await
        .unwrap();
    tags.sort();
    assert_eq!(tags, pushed);
    assert!(
        proxy.count("GET", "/tags/list?n=2") >= 1,
        "the page size was asked for"
    );
    let missing = client
        .list_tags(&Repository::new(proxy.host(), "no/such"))
        .await
        .unwrap_err();
    assert!(
        missing
            .to_string()
            .contains(&format!("{}/no/such: not found", proxy.host())),
        "{missing}"
    );
}
