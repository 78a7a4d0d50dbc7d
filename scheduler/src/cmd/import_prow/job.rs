//! One Prow periodic job, translated into a group or explained: its name, its schedule
//! (`cron`, or `interval` as `@every`), the Secret mounted as the docker config (the push
//! credentials), its Slack channel (a label), and its script's options.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

use super::script::Script;
use crate::groups::Group;

/// What one job became.
#[derive(Debug)]
pub(crate) struct Imported {
    /// The job's name.
    pub job: String,
    /// Its group, when every part of it was understood.
    pub group: Option<Group>,
    /// What was not translated (then `group` is `None`), or what an operator must know.
    pub notes: Vec<String>,
}

/// The string at `keys` under `v`, if there is one.
fn text<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    let mut v = v;
    for k in keys {
        v = v.get(*k)?;
    }
    v.as_str()
}

/// One job: its name, schedule, Secret, Slack channel and script.
pub(crate) fn job(v: &Value) -> Imported {
    let name = text(v, &["name"]).unwrap_or("(unnamed)").to_string();
    let mut notes = Vec::new();
    let schedule = schedule(v, &mut notes);
    let container = v
        .get("spec")
        .and_then(|s| s.get("containers"))
        .and_then(|c| c.get(0));
    let script = container
        .and_then(|c| c.get("args"))
        .and_then(Value::as_sequence)
        .and_then(|a| a.last())
        .and_then(Value::as_str);
    let Some(script) = script else {
        notes.push("no script in spec.containers[0].args: not translated".into());
        return Imported {
            job: name,
            group: None,
            notes,
        };
    };
    let credentials = push_secret(v, container);
    if credentials.is_none() {
        notes.push("no Secret mounted as the docker config: the group gets no credentials".into());
    }
    let parsed = Script::parse(script);
    notes.extend(parsed.notes.iter().cloned());
    let labels = labels(v, &name);
    let group = match (&parsed.prefix, parsed.understood) {
        (Some(prefix), true) => Some(group(&name, prefix, &parsed, credentials, schedule, labels)),
        (None, true) => {
            notes.push("no `for mapping in /etc/imagemirror/PREFIX*` loop: not translated".into());
            None
        }
        (_, false) => None,
    };
    Imported {
        job: name,
        group,
        notes,
    }
}

/// The job's schedule: its `cron`, else its `interval` as `@every`; a note when neither.
fn schedule(v: &Value, notes: &mut Vec<String>) -> Option<String> {
    match (text(v, &["cron"]), text(v, &["interval"])) {
        (Some(c), _) => Some(c.to_string()),
        (None, Some(i)) => Some(format!("@every {i}")),
        (None, None) => {
            notes.push("no cron or interval: the group gets no schedule".into());
            None
        }
    }
}

/// The group's labels: the Prow job it came from, and its Slack channel if it reports to one.
fn labels(v: &Value, name: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert("prow_job".to_string(), name.to_string());
    if let Some(ch) = text(v, &["reporter_config", "slack", "channel"]) {
        labels.insert("slack_channel".to_string(), ch.to_string());
    }
    labels
}

/// The group of a job whose script was understood: named after the job without Prow's
/// `periodic-image-mirroring-`, with the script's options.
fn group(
    name: &str,
    prefix: &str,
    parsed: &Script,
    credentials: Option<String>,
    schedule: Option<String>,
    labels: BTreeMap<String, String>,
) -> Group {
    Group {
        name: name
            .strip_prefix("periodic-image-mirroring-")
            .unwrap_or(name)
            .to_string(),
        prefix: Some(prefix.to_string()),
        files: None,
        credentials,
        schedule,
        keep_manifest_list: parsed.keep_manifest_list,
        filter_by_os: None,
        continue_on_error: parsed.continue_on_error,
        max_per_registry: parsed.max_per_registry,
        tries: parsed.tries,
        digest_tag: parsed.digest_tag,
        referrers: None,
        referrers_type: None,
        include_nondistributable: None,
        skip_missing: false,
        force: false,
        labels,
    }
}

/// The name of the Secret whose volume is mounted as the docker config.
fn push_secret(job: &Value, container: Option<&Value>) -> Option<String> {
    let mounts = container?.get("volumeMounts")?.as_sequence()?;
    let volume = mounts.iter().find_map(|m| {
        let path = m.get("mountPath")?.as_str()?;
        path.ends_with(".docker/config.json")
            .then(|| m.get("name")?.as_str())
            .flatten()
    })?;
    let volumes = job.get("spec")?.get("volumes")?.as_sequence()?;
    volumes.iter().find_map(|v| {
        (v.get("name")?.as_str()? == volume)
            .then(|| text(v, &["secret", "secretName"]).map(str::to_string))
            .flatten()
    })
}
