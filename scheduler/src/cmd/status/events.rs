//! `status --events-url URL`: the notification listener of a long-running scheduler
//! (`run --listen-events`), as its `GET /events` tells: its senders, the pushes waiting,
//! and its last events with what became of them. The listener is another process's, whose
//! address `status` cannot know, hence the flag.

use std::fmt::Write;

use serde_json::Value;

/// Events shown in the text output (the JSON has all the listener keeps).
const SHOWN: usize = 10;

/// What the listener at `url` answers, or why nothing.
pub(super) async fn fetch(url: &str) -> Result<Value, String> {
    let url = format!("{}/events", url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .get(&url)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: answered {}", resp.status()));
    }
    resp.json().await.map_err(|e| format!("{url}: {e}"))
}

/// The listener's section of the text output.
pub(super) fn render(url: &str, listener: &Result<Value, String>) -> String {
    let mut out = String::new();
    let v = match listener {
        Ok(v) => v,
        Err(e) => return format!("\nEvents listener {url}: not answering ({e})\n"),
    };
    let names: Vec<String> = v["senders"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            format!(
                "{} ({}, {})",
                str_of(&s["name"]),
                str_of(&s["kind"]),
                str_of(&s["registry"])
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "\nEvents listener {url}: senders {}; {} pushes waiting; event jobs run as {}",
        names.join(", "),
        v["waiting"],
        str_of(&v["run_id"])
    );
    let events = v["events"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        out.push_str("  no event yet\n");
    }
    for e in events.iter().rev().take(SHOWN) {
        let image = e["image"]
            .as_str()
            .map(|i| format!(" {i}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} {}{image}: {}",
            str_of(&e["at"]),
            str_of(&e["sender"]),
            str_of(&e["outcome"])
        );
    }
    out
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listeners_senders_and_last_events_newest_first() {
        let v = serde_json::json!({
            "senders": [{"name": "ci", "kind": "distribution", "registry": "r:5000"}],
            "waiting": 0,
            "run_id": "r1",
            "events": [
                {"at": "t1", "sender": "ci", "outcome": "accepted", "image": "r:5000/a:1"},
                {"at": "t2", "sender": "ci", "outcome": "published 1 job for 1 tag", "image": "r:5000/a:1"}
            ]
        });
        let text = render("http://x:9200", &Ok(v));
        assert_eq!(
            text,
            "\nEvents listener http://x:9200: senders ci (distribution, r:5000); 0 pushes waiting; event jobs run as r1\n  t2 ci r:5000/a:1: published 1 job for 1 tag\n  t1 ci r:5000/a:1: accepted\n"
        );
        assert!(render("u", &Err("refused".into())).contains("not answering (refused)"));
    }
}
