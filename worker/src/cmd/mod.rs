//! The commands of `mirror-worker`, one module each: its flags (`Args`) and its `run`.

pub(crate) mod copy;
pub(crate) mod run;
