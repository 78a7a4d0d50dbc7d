//! `mirror-scheduler import-prow JOBS.yaml`: the groups file made from Prow periodic jobs
//! of the shape the system being replaced runs (one job per team: a bash loop over
//! `/etc/imagemirror/PREFIX*` calling `oc image mirror`, a push Secret, a schedule).
//!
//! It translates what it recognises and reports the rest, job by job; it never guesses. A
//! job with a script line it does not understand gets no group, and the exit status is 1.
//!
//! - [`job`]: one periodic job: its name, schedule, Secret, Slack channel and script.
//! - [`script`]: what the job's bash script does, line by line, as far as it is understood.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_yaml_ng::Value;

use crate::groups::GroupsFile;

mod job;
mod script;

use job::Imported;

/// Flags of `import-prow`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A Prow config with `periodics:` (e.g. image-mirroring-periodics.yaml).
    #[arg(value_name = "JOBS.yaml")]
    pub jobs: PathBuf,
}

/// Prints the groups file of the jobs; the exit status is 1 when a job was not translated.
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
    Ok(jobs.iter().map(job::job).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::groups::Group;

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
}
