//! The blob line that ends the summary of `mirror-worker copy` and of `mirror-scheduler run`
//! (and of a dry run), written once so that both say the same thing in the same words.

use mirror_common::report::CopyStats;

use crate::{human_bytes, plural};

/// What a dry run's blob counts mean: the run's blobs counted as a real run moves them.
const DRY_RUN_COUNTS: &str =
    "each distinct blob counted once per registry it is uploaded to and once per repository it is mounted into";

/// `blobs: 3 uploaded (39.3 KiB), 3 mounted (39.3 KiB), 0 already there; 0 referrers
/// copied; 0.4s`, or what a dry run would do.
pub fn blob_line(s: &CopyStats, seconds: f64, dry_run: bool) -> String {
    let (would, counted) = match dry_run {
        true => ("would be ", format!(" ({DRY_RUN_COUNTS})")),
        false => ("", String::new()),
    };
    format!(
        "blobs: {} {would}uploaded ({}), {} mounted ({}), {} already there{counted}; {} {would}copied; {seconds:.1}s",
        s.blobs_uploaded,
        human_bytes(s.bytes_uploaded),
        s.blobs_mounted,
        human_bytes(s.bytes_mounted),
        s.blobs_skipped,
        plural(s.referrers_pushed, "referrer"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_and_a_dry_run_say_their_blobs_in_the_same_words() {
        let s = CopyStats {
            blobs_uploaded: 3,
            bytes_uploaded: 40_243,
            blobs_mounted: 1,
            bytes_mounted: 2048,
            blobs_skipped: 2,
            referrers_pushed: 1,
            ..CopyStats::default()
        };
        assert_eq!(
            blob_line(&s, 0.42, false),
            "blobs: 3 uploaded (39.3 KiB), 1 mounted (2.0 KiB), 2 already there; 1 referrer copied; 0.4s"
        );
        assert_eq!(
            blob_line(&s, 0.42, true),
            format!("blobs: 3 would be uploaded (39.3 KiB), 1 mounted (2.0 KiB), 2 already there ({DRY_RUN_COUNTS}); 1 referrer would be copied; 0.4s")
        );
    }
}
