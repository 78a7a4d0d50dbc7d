//! Shared library of the image mirroring system: image references, manifests, the
//! registry client and the copy engine, and (as they arrive) mapping files, job types and
//! the queue and blob-index traits. The scheduler's embedded mode and the worker both call
//! into this crate, so the copy semantics live in exactly one place.

pub mod cli;
pub mod copy;
pub mod digest;
pub mod fleet;
pub mod index;
pub mod job;
pub mod manifest;
pub mod mapping;
pub mod observe;
pub mod queue;
pub mod reference;
pub mod registry;
pub mod worker;
