//! Observability shared by `mirror-worker run` and `mirror-scheduler run --listen`: a
//! process-global Prometheus registry that the copy path and the registry client add to
//! ([`metrics`]; the notification endpoint's in [`event_metrics`]), and the small HTTP
//! server that exposes it with the health and readiness probes ([`server`]). Logging
//! setup is the binaries' (the `mirror-cli` crate).

pub mod event_metrics;
pub mod metrics;
pub mod queue_depth;
pub mod server;
pub mod text_format;
