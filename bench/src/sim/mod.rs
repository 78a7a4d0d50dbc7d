//! A *registry simulator*, for runs at scales a real registry on this machine cannot hold
//! (at `SCALE=100`: ~410,000 source images, ~750,000 destination tags in 70,000
//! repositories): a source and a destination registry serving the subset of the
//! distribution API the mirror uses, from a generator of the set `crate::scale` shapes,
//! with latency added per request and requests counted by kind (`GET /_sim/stats`). Tag
//! lists page with `n` and `last` as the OCI spec says, or answer whole and unsorted as
//! distribution 2.8 does (`whole_tag_lists`). It shows in the mirror's referrer-tag lookup:
//! at `SCALE=1` cold, 4,990 source listings (one per manifest copied) against 770 (one per
//! repository).
//!
//! It is a benchmark's stand-in, never a test's: correctness tests run against
//! docker-registry (`tests/`), because a simulator agrees with whatever its author believed.
//! Token authentication is optional (`token_auth`, off by default) and checks no
//! credentials. What it does not do: persistence (all state is in memory and lost when
//! the process ends), the Referrers API (404, as distribution 2.8), catalog, deletes,
//! chunked-upload `Content-Range` checks, and serving the bytes of pushed blobs (only their
//! digests and sizes are kept).

pub mod answers;
pub mod destination;
mod destination_api;
pub mod generator;
pub mod route;
pub mod server;
mod source_api;
pub mod stats;
pub mod token_auth;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::scale::Shape;
use server::{Behaviour, Role, Server};

/// One listening simulated registry; dropping it stops it.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state and counters.
    pub server: Arc<Server>,
    task: JoinHandle<()>,
}

impl Running {
    /// `127.0.0.1:PORT`, the host of image references to it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts `role` on `listen` (e.g. `127.0.0.1:0`) behaving as `behaviour` says.
pub async fn start(listen: &str, role: Role, behaviour: Behaviour) -> Result<Running> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let server = Arc::new(Server {
        role,
        behaviour,
        stats: stats::Stats::default(),
    });
    let task = tokio::spawn(server::serve(listener, server.clone()));
    Ok(Running { addr, server, task })
}

/// The figures of a set: what its mapping files hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    /// Mapping files.
    pub files: usize,
    /// Source repositories (as many destination ones).
    pub repos: usize,
    /// Source images (tags at the source).
    pub images: usize,
    /// Of which indexes.
    pub indexes: usize,
    /// Destination tags the files name.
    pub dest_tags: usize,
}

/// The figures of `shape`'s set, counted from its lines.
pub fn figures(shape: Shape) -> Figures {
    let dest_tags = (0..shape.repos).map(|r| shape.dest_tags_of(r).len()).sum();
    Figures {
        files: shape.files,
        repos: shape.repos,
        images: shape.images,
        indexes: (0..shape.images).filter(|n| n % 10 == 9).count(),
        dest_tags,
    }
}

#[cfg(test)]
mod tests;
