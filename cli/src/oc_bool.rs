//! oc's (cobra's) boolean flags, as people type them from oc and skopeo command lines:
//! `--flag` alone means true, `--flag=false` turns it off, and `--flag SRC DST` never takes
//! `SRC` as the flag's value (the value needs `=`).

use clap::{Arg, ArgAction};

/// Makes `arg` an oc-style boolean flag. Applied where a struct deriving `Args` declares
/// such a flag: `#[command(mut_arg("field", oc_bool))]`, the field a `bool` with its
/// `default_value_t`.
pub fn oc_bool(arg: Arg) -> Arg {
    arg.action(ArgAction::Set)
        .num_args(0..=1)
        .default_missing_value("true")
        .require_equals(true)
        .value_name("BOOL")
}
