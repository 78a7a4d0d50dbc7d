//! The commands of `mirror-scheduler`, one module each: its flags (`Args`) and its `run`.
//! What several of them share (mapping file flags, groups files, the run report and
//! output lines) is outside, in the crate's own modules.

pub(crate) mod dead_letters;
pub(crate) mod import_prow;
pub(crate) mod run;
pub(crate) mod status;
pub(crate) mod validate;
