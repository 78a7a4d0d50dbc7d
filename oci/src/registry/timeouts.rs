//! How long the client waits, measured by progress rather than in total where a transfer
//! may legitimately take hours: a multi-gigabyte layer over a slow link is fine as long as
//! bytes keep moving, and a registry that stops answering is found out quickly either way.

use std::time::Duration;

/// The client's time limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Establishing a connection (TCP and TLS).
    pub connect: Duration,
    /// The whole of a small request: a manifest, a HEAD, a tag list page, an upload session,
    /// a token; and the response head of a blob download.
    pub request: Duration,
    /// A blob transfer with no byte moving either way for this long is stalled: the source
    /// sends nothing, the destination reads nothing, or the destination does not answer
    /// once the upload is complete.
    pub idle: Duration,
}

impl Timeouts {
    /// Default [`connect`](Self::connect).
    pub const CONNECT: Duration = Duration::from_secs(15);
    /// Default [`request`](Self::request).
    pub const REQUEST: Duration = Duration::from_secs(60);
    /// Default [`idle`](Self::idle).
    pub const IDLE: Duration = Duration::from_secs(120);
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Self::CONNECT,
            request: Self::REQUEST,
            idle: Self::IDLE,
        }
    }
}
