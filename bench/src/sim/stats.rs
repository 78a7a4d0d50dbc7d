//! Requests counted by kind, served on `GET /_sim/stats`: a benchmark divides them by the
//! tags it mirrored to print requests per tag, without a proxy in front of the simulator.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `GET /v2/`.
    Ping,
    /// `HEAD` of a manifest.
    ManifestHead,
    /// `GET` of a manifest.
    ManifestGet,
    /// `PUT` of a manifest.
    ManifestPut,
    /// `HEAD` of a blob.
    BlobHead,
    /// `GET` of a blob.
    BlobGet,
    /// `POST` opening an upload (or a monolithic `POST ?digest=`).
    UploadStart,
    /// `PATCH` of an upload.
    UploadPatch,
    /// `PUT` closing an upload.
    UploadPut,
    /// `POST ?mount=&from=`.
    Mount,
    /// `GET tags/list`.
    Tags,
    /// `GET referrers/<digest>`.
    Referrers,
    /// `GET /_sim/token`.
    Token,
    /// Anything else.
    Other,
}

/// Every kind, in the order the stats list them.
const KINDS: [(Kind, &str); 14] = [
    (Kind::Ping, "ping"),
    (Kind::ManifestHead, "manifest_head"),
    (Kind::ManifestGet, "manifest_get"),
    (Kind::ManifestPut, "manifest_put"),
    (Kind::BlobHead, "blob_head"),
    (Kind::BlobGet, "blob_get"),
    (Kind::UploadStart, "upload_start"),
    (Kind::UploadPatch, "upload_patch"),
    (Kind::UploadPut, "upload_put"),
    (Kind::Mount, "mount"),
    (Kind::Tags, "tags_list"),
    (Kind::Referrers, "referrers"),
    (Kind::Token, "token"),
    (Kind::Other, "other"),
];

/// Counters, one per kind.
#[derive(Debug, Default)]
pub struct Stats {
    counts: [AtomicU64; 14],
}

impl Stats {
    /// Counts one request of `kind`.
    pub fn count(&self, kind: Kind) {
        let i = KINDS
            .iter()
            .position(|(k, _)| *k == kind)
            .unwrap_or(KINDS.len() - 1);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    /// `{"role": ..., "total": N, "requests": {"manifest_head": N, ...}}`.
    pub fn json(&self, role: &str) -> serde_json::Value {
        let mut requests = serde_json::Map::new();
        let mut total = 0;
        for (i, (_, name)) in KINDS.iter().enumerate() {
            let n = self.counts[i].load(Ordering::Relaxed);
            total += n;
            requests.insert(name.to_string(), n.into());
        }
        serde_json::json!({"role": role, "total": total, "requests": requests})
    }
}
