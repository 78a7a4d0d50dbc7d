//! Observability shared by `mirror-worker run` and `mirror-scheduler run --schedule`: a
//! process-global Prometheus registry that the copy path and the registry client add to
//! ([`metrics`]), and the small HTTP server that exposes it with the health and readiness
//! probes ([`server`]). Logging setup stays in [`crate::cli`] with the other shared flags.

pub mod metrics;
pub mod server;
