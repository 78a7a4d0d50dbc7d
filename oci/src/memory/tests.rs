//! The in-memory registries keep the distribution rules the engine's decisions rely on.

use super::MemoryRegistries;
use crate::name::{Reference, Repository};
use crate::registry::{Blobs, ErrorCode, Manifests, MountOutcome};

#[tokio::test]
async fn a_manifest_naming_a_missing_blob_is_refused_with_its_code() {
    let r = MemoryRegistries::new();
    let m = r.add_image("src", "a/b", "1", &[b"layer"]);
    let dst = Repository::new("dst", "x/y");
    let e = r
        .put_manifest(&dst, &Reference::tag("1"), &m)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&ErrorCode::ManifestBlobUnknown));
    assert_eq!(r.tag("dst", "x/y", "1"), None);
}

#[tokio::test]
async fn mounts_succeed_only_from_a_repository_holding_the_blob() {
    let r = MemoryRegistries::new();
    let d = r.add_blob("reg", "a", b"x");
    assert!(matches!(
        r.mount_blob(&Repository::new("reg", "b"), &d.digest, "a")
            .await
            .unwrap(),
        MountOutcome::Mounted
    ));
    assert!(r.has_blob("reg", "b", &d.digest));
    assert!(matches!(
        r.mount_blob(&Repository::new("reg", "c"), &d.digest, "z")
            .await
            .unwrap(),
        MountOutcome::Declined(_)
    ));
    assert!(!r.has_blob("reg", "c", &d.digest));
}
