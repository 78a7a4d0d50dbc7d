//! What a fleet of processes shares, on top of the core's traits:
//!
//! - [`amqp`]: the job queue on RabbitMQ (quorum jobs queue, TTL retry queues, parking,
//!   run events and their history stream), a [`JobQueue`](mirror_common::queue::JobQueue).
//! - [`store`]: the fleet store on Redis: the blob index with upload leases (a
//!   [`BlobIndex`](mirror_common::index::BlobIndex)), the destination tag cache, run
//!   counters and the shared throttle; an accelerator that degrades to per-process
//!   behaviour when Redis is away.
//! - [`state_file`]: the same store for one machine: the embedded mode's SQLite file (tag
//!   cache, blob index, quirks) with the run history `status --state` reads.
//! - [`gate`]: the registry client's request gate backed by that throttle.
//! - [`digest_service`]: answering source-digest requests (workers, and the asking
//!   scheduler itself) through a registry client.
//! - [`observe`]: Prometheus metrics (also the registry client's request observer) and the
//!   `/metrics`, `/healthz`, `/readyz` server.
#![warn(missing_docs)]

pub mod amqp;
pub mod digest_service;
pub mod gate;
pub mod observe;
pub mod state_file;
pub mod store;
