//! The benchmarks' shared parts: the measuring of a command (wall time, peak RSS) and the
//! generated corpus of repositories they mirror. Kept out of the test bed so that tests do
//! not build benchmark code and benchmarks can grow without touching the tests.

pub mod corpus;
pub mod measure;
pub mod scale;
pub mod workers;

pub use measure::{measure, Measured};
