//! `status` as text: a table of the queues, then the groups and the runs, each failure
//! with its kind and reason.

use super::collect::{GroupStatus, QueueStatus, RunStatus, Status};

/// The text `status` prints.
pub(crate) fn render(s: &Status) -> String {
    // Embedded runs have no queues: the source line says which state file is shown.
    let mut out = match s.queues.is_empty() {
        true => format!("{}\n", s.source),
        false => queues(s),
    };
    if !s.groups.is_empty() {
        out.push_str(&format!("groups ({}):\n", s.groups.len()));
        for g in &s.groups {
            out.push_str(&group_line(g));
        }
    }
    out.push_str(&format!(
        "runs ({}, from {}):\n",
        s.runs.len(),
        s.runs_source
    ));
    for r in &s.runs {
        out.push_str(&run_lines(r));
    }
    out
}

/// The queue table, then the retrying and parked totals.
fn queues(s: &Status) -> String {
    let mut out = format!("queues (from {}):\n", s.source);
    out.push_str(&format!(
        "  {:<44} {:>9} {:>9} {:>9}\n",
        "queue", "ready", "in-flight", "consumers"
    ));
    for q in &s.queues {
        out.push_str(&queue_line(q));
    }
    out.push_str(&format!(
        "  retrying: {}, parked: {}\n",
        s.retrying, s.parked
    ));
    out
}

/// One row of the queue table.
fn queue_line(q: &QueueStatus) -> String {
    let in_flight = q
        .in_flight
        .map(|n| n.to_string())
        .unwrap_or_else(|| "-".into());
    format!(
        "  {:<44} {:>9} {:>9} {:>9}\n",
        q.name, q.ready, in_flight, q.consumers
    )
}

/// A group's last run and next start.
fn group_line(g: &GroupStatus) -> String {
    let last = match g.last_run {
        Some(id) => format!(
            "last run {id}: {} failed, {} pending",
            g.last_failed, g.last_pending
        ),
        None => "no run in the window".to_string(),
    };
    let next = g.next_start.as_deref().unwrap_or("no schedule");
    format!("  {}: {last}; next start {next}\n", g.name)
}

/// A run's progress, then a line per failed tag.
fn run_lines(r: &RunStatus) -> String {
    let when = chrono::DateTime::from_timestamp(r.started_at as i64, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    let group = r
        .group
        .as_deref()
        .map(|g| format!(" (group {g})"))
        .unwrap_or_default();
    let outcome = r.outcome.map(|o| format!(" {o}")).unwrap_or_default();
    let mut out = format!(
        "  {}{group} started {when}{outcome}: {}, {}: {} done, {} up to date, {} failed, {} pending\n",
        r.run_id,
        mirror_cli::plural(r.jobs, "job"),
        mirror_cli::plural(r.tags, "tag"),
        r.done,
        r.up_to_date,
        r.failed,
        r.pending
    );
    for f in &r.failures {
        let kind = f.kind.map(|k| format!(" ({k})")).unwrap_or_default();
        out.push_str(&format!(
            "    failed {}{kind}: {}\n",
            f.destination, f.reason
        ));
    }
    if r.failures_not_shown > 0 {
        out.push_str(&format!(
            "    {} more failures not shown\n",
            r.failures_not_shown
        ));
    }
    out
}
