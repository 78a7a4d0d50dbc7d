//! The benchmarks' shared parts: the measuring of a command (wall time, peak RSS), the
//! generated corpus of repositories they mirror (`corpus`, `scale`), and `sim`, a registry
//! simulator serving the `scale` set at sizes a real registry here cannot hold. Kept out of
//! the test bed so that tests do not build benchmark code and benchmarks can grow without
//! touching the tests.

pub mod corpus;
pub mod measure;
pub mod scale;
pub mod sim;
pub mod workers;

pub use measure::{measure, Measured};
