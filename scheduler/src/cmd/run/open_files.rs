//! The planner's connections within the process's open-file limit: `--plan-concurrency`
//! requests in flight to one registry are as many sockets, and a run under a low limit
//! (`ulimit -n 256`, some CI runners and containers) must not fail with "Too many open
//! files" for asking more than the limit allows.

/// File descriptors kept aside for everything else (mapping files, the report, the broker,
/// Redis, the embedded mode's own clients, the runtime).
const RESERVED: u64 = 64;

/// `wanted`, or less when the soft open-file limit leaves room for fewer connections: half
/// of what is above [`RESERVED`], at least 16.
pub(super) fn plan_concurrency(wanted: usize) -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let allowed = within(wanted, limit);
    if allowed < wanted {
        tracing::info!(
            wanted,
            allowed,
            open_file_limit = limit,
            "planner concurrency lowered to fit the open-file limit"
        );
    }
    allowed
}

fn within(wanted: usize, limit: Option<u64>) -> usize {
    let Some(limit) = limit else { return wanted };
    let room = usize::try_from(limit.saturating_sub(RESERVED) / 2).unwrap_or(usize::MAX);
    wanted.min(room.max(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_low_open_file_limit_lowers_the_planner_concurrency() {
        assert_eq!(within(256, Some(256)), 96);
        assert_eq!(within(256, Some(1_048_576)), 256);
        assert_eq!(within(256, None), 256, "no limit");
        assert_eq!(within(256, Some(20)), 16, "never below 16");
    }
}
