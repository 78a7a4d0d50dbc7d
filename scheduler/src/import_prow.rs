//! `mirror-scheduler import-prow JOBS.yaml`: the groups file made from Prow periodic jobs
//! of the shape the system being replaced runs (one job per team: a bash loop over
//! `/etc/imagemirror/PREFIX*` calling `oc image mirror`, a push Secret, a schedule).
//!
//! It translates what it recognises and reports the rest, job by job; it never guesses. A
//! job with a script line it does not understand gets no group, and the exit status is 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_yaml_ng::Value;

use crate::groups::{Group, GroupsFile};

/// Flags of `import-prow`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A Prow config with `periodics:` (e.g. image-mirroring-periodics.yaml).
    #[arg(value_name = "JOBS.yaml")]
    pub jobs: PathBuf,
}

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

pub(crate) fn run(args: &Args) -> Result<ExitCode> {
    let imported = import(&args.jobs)?;
    let mut groups = Vec::new();
    let mut untranslated = 0;
    for i in imported {
        for n in &i.notes {
            eprintln!("{}: job {}: {n}", args.jobs.display(), i.job);
        }
        match i.group {
            Some(g) => groups.push(g),
            None => untranslated += 1,
        }
    }
    let yaml = serde_yaml_ng::to_string(&GroupsFile { groups })?;
    println!(
        "# Made by `mirror-scheduler import-prow {}`.\n{yaml}",
        args.jobs.display()
    );
    if untranslated > 0 {
        eprintln!(
            "{} not translated (see above); their groups are missing",
            mirror_cli::plural(untranslated, "job")
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Every periodic job of the file, translated or explained.
pub(crate) fn import(path: &Path) -> Result<Vec<Imported>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let doc: Value =
        serde_yaml_ng::from_str(&text).with_context(|| format!("{}: not YAML", path.display()))?;
    let jobs = doc
        .get("periodics")
        .and_then(Value::as_sequence)
        .with_context(|| format!("{}: no periodics list", path.display()))?;
    Ok(jobs.iter().map(job).collect())
}

fn text<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    let mut v = v;
    for k in keys {
        v = v.get(*k)?;
    }
    v.as_str()
}

/// One job: its name, schedule, Secret, Slack channel and script.
fn job(v: &Value) -> Imported {
    let name = text(v, &["name"]).unwrap_or("(unnamed)").to_string();
    let mut notes = Vec::new();
    let schedule = match (text(v, &["cron"]), text(v, &["interval"])) {
        (Some(c), _) => Some(c.to_string()),
        (None, Some(i)) => Some(format!("@every {i}")),
        (None, None) => {
            notes.push("no cron or interval: the group gets no schedule".into());
            None
        }
    };
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
    let mut labels = BTreeMap::new();
    labels.insert("prow_job".to_string(), name.clone());
    if let Some(ch) = text(v, &["reporter_config", "slack", "channel"]) {
        labels.insert("slack_channel".to_string(), ch.to_string());
    }
    let group = match (&parsed.prefix, parsed.understood) {
        (Some(prefix), true) => Some(Group {
            name: name
                .strip_prefix("periodic-image-mirroring-")
                .unwrap_or(&name)
                .to_string(),
            prefix: Some(prefix.clone()),
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
        }),
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

/// What a job's bash script does, as far as it is understood.
#[derive(Debug)]
struct Script {
    prefix: Option<String>,
    keep_manifest_list: bool,
    continue_on_error: bool,
    max_per_registry: Option<usize>,
    tries: u32,
    digest_tag: bool,
    /// False when a line was not understood (then the job gets no group).
    understood: bool,
    notes: Vec<String>,
}

/// Script lines that do nothing a group has to say: the loop's bookkeeping.
const PLUMBING: [&str; 11] = [
    "set -o errexit",
    "failures=0",
    "failures=$((failures+1))",
    "fi",
    "done",
    "break",
    "exit $failures",
    "for attempt in $( seq $attempts ); do",
    "if [[ $attempt -eq $attempts ]]; then",
    "if [ ! -s \"${mapping}\" ]; then continue; fi",
    "cp ~/.docker/config.json /tmp/config.json",
];

/// The lines of the "also push a tag of the digest's first 12 hex digits" idiom.
const DIGEST_TAG: [&str; 5] = [
    "ciimage=$(cat ${mapping} | cut -d ' ' -f1)",
    "quayimage=$(cat ${mapping} | cut -d ' ' -f2)",
    "digest=$(oc image info ${ciimage} | grep 'Digest:' | tr -d ' ' | cut -d ':' -f2-)",
    "shorttag=$(echo ${digest} | cut -d: -f2 | grep -oP '^.{12}')",
    "quayimageshort=${quayimage/:*/:${shorttag}}",
];

impl Script {
    fn parse(script: &str) -> Script {
        let mut s = Script {
            prefix: None,
            keep_manifest_list: true,
            continue_on_error: false,
            max_per_registry: None,
            tries: 1,
            digest_tag: false,
            understood: true,
            notes: Vec::new(),
        };
        let mut keeps = Vec::new();
        let mut digest_lines = 0;
        for (n, raw) in script.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with("echo ") {
                continue;
            }
            if PLUMBING.contains(&line) {
                continue;
            }
            if DIGEST_TAG.contains(&line) {
                digest_lines += 1;
                continue;
            }
            if line == "oc registry login --to /tmp/config.json" {
                s.notes.push("logs in to the cluster's own registry (pull access to the CI registry): give the workers those credentials with -a".into());
                continue;
            }
            if let Some(rest) = line.strip_prefix("for mapping in /etc/imagemirror/") {
                match rest.strip_suffix("*; do") {
                    Some(p) if !p.contains(['*', '/', ' ']) => s.prefix = Some(p.to_string()),
                    _ => s.unknown(n, line),
                }
                continue;
            }
            if let Some(a) = line.strip_prefix("attempts=") {
                match a.parse() {
                    Ok(t) => s.tries = t,
                    Err(_) => s.unknown(n, line),
                }
                continue;
            }
            match oc_mirror_flags(line) {
                Some(flags) => {
                    if !s.flags(&flags, &mut keeps) {
                        s.unknown(n, line);
                    }
                }
                None => s.unknown(n, line),
            }
        }
        s.digest_tag = digest_lines == DIGEST_TAG.len();
        if digest_lines > 0 && !s.digest_tag {
            s.understood = false;
            s.notes
                .push("part of the digest-tag idiom only: not translated".into());
        }
        match (keeps.iter().all(|k| *k), keeps.iter().any(|k| *k)) {
            (true, _) => s.keep_manifest_list = true,
            (false, false) => s.keep_manifest_list = false,
            (false, true) => {
                s.understood = false;
                s.notes.push(
                    "`oc image mirror` runs with and without --keep-manifest-list: not translated"
                        .into(),
                );
            }
        }
        s
    }

    fn unknown(&mut self, n: usize, line: &str) {
        self.understood = false;
        self.notes.push(format!(
            "script line {} not understood, so not translated: {line}",
            n + 1
        ));
    }

    /// Takes the flags of one `oc image mirror`; false when one is not understood.
    fn flags(&mut self, flags: &[&str], keeps: &mut Vec<bool>) -> bool {
        let mut keep = false;
        let mut from_file = false;
        for f in flags {
            match *f {
                "--keep-manifest-list" => keep = true,
                "--skip-multiple-scopes" => {}
                "--continue-on-error" => self.continue_on_error = true,
                "-a" | "/tmp/config.json" => {}
                "${ciimage}=${quayimageshort}" => {}
                f if f.starts_with("-f=") && f.contains("mapping") => from_file = true,
                f => match f.strip_prefix("--max-per-registry=").map(str::parse) {
                    Some(Ok(n)) => self.max_per_registry = Some(n),
                    _ => return false,
                },
            }
        }
        if from_file {
            keeps.push(keep);
        }
        true
    }
}

/// The flags of an `oc image mirror` call written as `if [!] oc image mirror ...; then`.
fn oc_mirror_flags(line: &str) -> Option<Vec<&str>> {
    let call = line
        .strip_prefix("if ! ")
        .or_else(|| line.strip_prefix("if "))?
        .strip_suffix("; then")?
        .strip_prefix("oc image mirror ")?;
    Some(call.split_whitespace().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/prow/image-mirroring-periodics.yaml");
        assert!(path.is_file(), "no Prow fixture at {}", path.display());
        path
    }

    #[test]
    fn the_five_fixture_jobs_become_five_groups_with_their_options() {
        let imported = import(&fixture()).unwrap();
        let groups: Vec<&Group> = imported.iter().filter_map(|i| i.group.as_ref()).collect();
        let summary: Vec<String> = groups
            .iter()
            .map(|g| {
                format!(
                    "{} {} {} {} keep={} continue={} max={:?} tries={} digest_tag={}",
                    g.name,
                    g.prefix.as_deref().unwrap_or("-"),
                    g.credentials.as_deref().unwrap_or("-"),
                    g.schedule.as_deref().unwrap_or("-"),
                    g.keep_manifest_list,
                    g.continue_on_error,
                    g.max_per_registry,
                    g.tries,
                    g.digest_tag
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "knative mapping_knative registry-push-credentials-quay.io-openshift-knative @hourly keep=true continue=false max=None tries=1 digest_tag=false",
                "openshift mapping_origin registry-push-credentials-quay.io @hourly keep=true continue=true max=Some(3) tries=3 digest_tag=false",
                "redhat-developer mapping_redhat-developer registry-push-credentials-quay.io-redhat-developer @every 20m keep=true continue=false max=None tries=1 digest_tag=false",
                "cosa mapping_coreos_assembler registry-push-credentials-ci-central 15 2 12 */12 * keep=false continue=false max=None tries=1 digest_tag=false",
                "node-observability-operator mapping_node_observability_operator registry-push-credentials-quay-io-node-observability-optr @hourly keep=true continue=false max=None tries=1 digest_tag=true",
            ]
        );
        assert_eq!(groups[0].labels["slack_channel"], "#serverless-dev");
        assert!(imported[1].notes[0].contains("give the workers those credentials with -a"));
    }

    #[test]
    fn a_script_line_it_does_not_know_is_reported_not_guessed() {
        let s = Script::parse(
            "for mapping in /etc/imagemirror/mapping_x*; do\n  skopeo sync --all $mapping\ndone\n",
        );
        assert!(!s.understood);
        assert_eq!(
            s.notes,
            ["script line 2 not understood, so not translated: skopeo sync --all $mapping"]
        );
        let s = Script::parse("for mapping in /etc/imagemirror/mapping_x*; do\nif ! oc image mirror --keep-manifest-list -f=\"$mapping\" --insecure=true; then\nfi\ndone\n");
        assert!(!s.understood, "{s:?}");
    }
}
