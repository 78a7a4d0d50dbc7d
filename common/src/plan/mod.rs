//! The planner: mapping files -> copy jobs. Tag globs and tag-less sources are expanded by
//! listing the source repository (once per repository), every source is resolved to its
//! digest once (however many lines name it), and the destination tags of one source image
//! in one destination repository become one job.
//!
//! Whole-file rule: a file whose sources cannot be listed, or whose expanded destinations
//! collide with another mapping's, contributes no job at all.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::StreamExt;
use uuid::Uuid;

use crate::failure::FailureKind;
use crate::job::Job;
use crate::mapping::destinations::{self, DestinationKey};
use crate::mapping::{
    check_expanded_duplicates, inherit_tag, Mapping, MappingError, MappingSet, Origin, Superseded,
    TagSelector,
};
use crate::reference::ImageRef;
use crate::registry::{Registries, RegistryError};
use crate::report::TagResult;

/// Registry requests the planner makes at the same time. A warm hourly run is mostly one
/// source HEAD per source image, latency-bound: at 40 ms a round trip, 4,100 HEADs take
/// 5.1 s 32 at a time and 1.3 s 128 at a time (bench/scale.sh measures it). Registries take
/// this many from one client (HTTP/1.1: as many connections, kept for the run).
const PLAN_CONCURRENCY: usize = 128;

/// What a run will do.
pub struct Plan {
    /// The run the jobs belong to.
    pub run_id: Uuid,
    /// The jobs, one per source image and destination repository.
    pub jobs: Vec<Job>,
    /// Destination tags that cannot be copied because their source could not be resolved,
    /// each with the `file:line` that asked for it.
    pub unresolved: Vec<(TagResult, String)>,
    /// The mapping set after planning (files rejected during planning added, and every
    /// destination tag superseded by a later file in `set.superseded`).
    pub set: MappingSet,
}

/// (source repository, source digest, destination repository): what makes one job.
type GroupKey = (String, String, String);
/// A job in the making: the source as written, its destination tags, their origins.
type Group = (ImageRef, Vec<ImageRef>, Vec<String>);

/// The tags of each listed source repository (by `repo_name`), or why it could not be listed.
type Listed = HashMap<String, Result<Vec<String>, String>>;

/// One destination tag with the source tag (or digest) it comes from.
struct Entry {
    source: ImageRef,
    destination: ImageRef,
    origin: Origin,
}

/// Expands, checks, resolves and groups the mappings of `set` into jobs.
pub async fn plan(mut set: MappingSet, client: &dyn Registries, run_id: Uuid) -> Plan {
    let listed = list_expanding_sources(&set, client).await;
    let (mut entries, mut errors) = expand(&set, &listed);
    errors.extend(check_expanded_duplicates(
        entries.iter().map(|e| (&e.destination, &e.origin)),
    ));
    if !errors.is_empty() {
        set.reject(errors);
        entries.retain(|e| set.rejected.iter().all(|(f, _)| f != &e.origin.file));
    }
    set.superseded = supersede(&mut entries);
    let digests = resolve_sources(&entries, client).await;
    let (jobs, unresolved) = into_jobs(entries, &digests, run_id);
    Plan {
        run_id,
        jobs,
        unresolved,
        set,
    }
}

/// Every destination tag the mappings of `set` name, with its source tag: globs and
/// tag-less sources expanded by their repository's listing (`listed`); a mapping whose
/// source could not be listed gives an error instead.
fn expand(set: &MappingSet, listed: &Listed) -> (Vec<Entry>, Vec<MappingError>) {
    let mut entries = Vec::new();
    let mut listing_errors = Vec::new();
    for m in &set.mappings {
        let tags = match source_tags(m, listed) {
            Ok(tags) => tags,
            Err(e) => {
                listing_errors.push(e);
                continue;
            }
        };
        for source in tags {
            let inherit = source
                .tag
                .clone()
                .or_else(|| m.source.written_tag().map(str::to_string));
            for d in &m.destinations {
                // None is refused by the parser: nothing to inherit.
                let Some(destination) = inherit_tag(d, inherit.as_deref()) else {
                    continue;
                };
                entries.push(Entry {
                    source: source.clone(),
                    destination,
                    origin: m.origin.clone(),
                });
            }
        }
    }
    (entries, listing_errors)
}

/// The source tags one mapping names: itself, or the listed tags its selector matches.
fn source_tags(m: &Mapping, listed: &Listed) -> Result<Vec<ImageRef>, MappingError> {
    Ok(match &m.source.tags {
        TagSelector::Tag(_) | TagSelector::Digest(_) => vec![m.source.image.clone()],
        selector => match listed.get(&m.source.image.repo_name()) {
            Some(Ok(all)) => all
                .iter()
                .filter(|t| selector.matches(t))
                .map(|t| m.source.image.with_tag(t))
                .collect(),
            Some(Err(e)) => {
                return Err(MappingError::new(
                    m.origin.clone(),
                    format!("cannot list the tags of {}: {e}", m.source),
                ));
            }
            None => Vec::new(),
        },
    })
}

/// The entries grouped into jobs by source repository, digest and destination
/// repository; the entries whose source was not resolved become failed tags instead.
fn into_jobs(
    entries: Vec<Entry>,
    digests: &HashMap<String, Result<String, Unresolved>>,
    run_id: Uuid,
) -> (Vec<Job>, Vec<(TagResult, String)>) {
    let mut unresolved = Vec::new();
    let mut groups: BTreeMap<GroupKey, Group> = BTreeMap::new();
    for e in entries {
        let digest = match digests.get(&e.source.to_string()) {
            Some(Ok(d)) => d.clone(),
            Some(Err((kind, reason))) => {
                let tag = TagResult::failed(&e.destination, *kind, reason.clone());
                unresolved.push((tag, e.origin.to_string()));
                continue;
            }
            None => continue,
        };
        let key = (e.source.repo_name(), digest, e.destination.repo_name());
        let group = groups
            .entry(key)
            .or_insert_with(|| (e.source.clone(), Vec::new(), Vec::new()));
        if !group.1.contains(&e.destination) {
            group.1.push(e.destination);
        }
        let origin = e.origin.to_string();
        if !group.2.contains(&origin) {
            group.2.push(origin);
        }
    }
    let jobs = groups
        .into_iter()
        .map(|((_, digest, _), (source, destinations, origins))| {
            Job::new(run_id, source, digest, destinations, origins)
        })
        .collect();
    (jobs, unresolved)
}

/// Adds to every job, in each of its destination repositories, a tag named after the first
/// 12 hex digits of the job's digest (what some teams push beside the mapped tags, so that
/// an image can be found by its digest's short form).
pub fn add_digest_tags(plan: &mut Plan) {
    for job in &mut plan.jobs {
        let Some(hex) = job.digest.split_once(':').map(|(_, h)| h) else {
            continue;
        };
        let short = &hex[..hex.len().min(12)];
        let mut extra = Vec::new();
        for d in &job.destinations {
            let tagged = d.with_tag(short);
            if !job.destinations.contains(&tagged) && !extra.contains(&tagged) {
                extra.push(tagged);
            }
        }
        job.destinations.extend(extra);
    }
}

/// Drops, for every destination tag given by more than one file, the entries of all but the
/// last of them (in file order: the later file wins, as when oc runs once per file), and
/// returns what was superseded by what. Same-file repeats were rejected before.
fn supersede(entries: &mut Vec<Entry>) -> Vec<Superseded> {
    let mut owner: HashMap<DestinationKey, usize> = HashMap::new();
    let mut dropped = vec![false; entries.len()];
    let mut superseded = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let Some(k) = destinations::key(&e.destination) else {
            continue;
        };
        if let Some(before) = owner.insert(k, i) {
            dropped[before] = true;
            superseded.push(Superseded {
                destination: entries[before].destination.to_string(),
                mapping: entries[before].origin.clone(),
                by: e.origin.clone(),
            });
        }
    }
    let mut i = 0;
    entries.retain(|_| {
        i += 1;
        !dropped[i - 1]
    });
    superseded
}

/// Tags of every repository named by a glob or tag-less source, listed once each.
async fn list_expanding_sources(set: &MappingSet, client: &dyn Registries) -> Listed {
    let mut repos: Vec<ImageRef> = Vec::new();
    for m in set.mappings.iter().filter(|m| m.source.tags.expands()) {
        if !repos
            .iter()
            .any(|r| r.repo_name() == m.source.image.repo_name())
        {
            repos.push(m.source.image.clone());
        }
    }
    futures::stream::iter(repos)
        .map(|r| async move {
            let tags = client
                .list_tags(&r.repository())
                .await
                .map_err(|e| e.to_string());
            (r.repo_name(), tags)
        })
        .buffer_unordered(PLAN_CONCURRENCY)
        .collect()
        .await
}

/// Why a source could not be resolved.
type Unresolved = (FailureKind, String);

/// The digest of every distinct source, resolved once (a HEAD per source tag).
async fn resolve_sources(
    entries: &[Entry],
    client: &dyn Registries,
) -> HashMap<String, Result<String, Unresolved>> {
    // A set beside the list: thousands of sources, each looked up once per entry.
    let mut seen: HashSet<&ImageRef> = HashSet::new();
    let mut sources: Vec<&ImageRef> = Vec::new();
    for e in entries {
        if seen.insert(&e.source) {
            sources.push(&e.source);
        }
    }
    futures::stream::iter(sources)
        .map(|s| async move {
            let digest = match &s.digest {
                Some(d) => Ok(d.clone()),
                None => match client
                    .head_manifest(&s.repository(), &s.reference(), false)
                    .await
                {
                    Ok(Some(d)) => Ok(d),
                    Ok(None) => Err((FailureKind::NotFound, format!("{s}: not found"))),
                    Err(e) => Err(unresolved(&e)),
                },
            };
            (s.to_string(), digest)
        })
        .buffer_unordered(PLAN_CONCURRENCY)
        .collect()
        .await
}

fn unresolved(e: &RegistryError) -> Unresolved {
    (FailureKind::of(e), e.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use mirror_oci::memory::{MemoryRegistries, Op};

    use super::*;
    use crate::mapping::load;

    fn set(dir: &tempfile::TempDir, name: &str, text: &str) -> MappingSet {
        let path: PathBuf = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        load(&[path])
    }

    fn destinations(plan: &Plan) -> Vec<Vec<String>> {
        plan.jobs
            .iter()
            .map(|j| j.destinations.iter().map(ToString::to_string).collect())
            .collect()
    }

    #[tokio::test]
    async fn a_glob_is_expanded_by_one_listing_and_each_tag_resolved_once() {
        let r = MemoryRegistries::new();
        for tag in ["4.15.0", "4.15.1", "4.16.0"] {
            r.add_image("src.io", "ocp/release", tag, &[tag.as_bytes()]);
        }
        let dir = tempfile::tempdir().unwrap();
        let text = "src.io/ocp/release:4.15* dst.io/m/release\n\
                    src.io/ocp/release:4.15* dst.io/n/release\n";
        let plan = plan(set(&dir, "m", text), &r, Uuid::new_v4()).await;
        assert_eq!(
            destinations(&plan),
            [
                ["dst.io/m/release:4.15.0"],
                ["dst.io/n/release:4.15.0"],
                ["dst.io/m/release:4.15.1"],
                ["dst.io/n/release:4.15.1"]
            ]
        );
        assert_eq!(r.count(Op::ListTags), 1, "one listing per repository");
        assert_eq!(r.count(Op::HeadManifest), 2, "one HEAD per source tag");
        let job = &plan.jobs[0];
        assert_eq!(
            r.tag("src.io", "ocp/release", "4.15.0"),
            Some(job.digest.clone())
        );
        assert_eq!(
            job.origins,
            [format!("{}:1", dir.path().join("m").display())]
        );
    }

    #[tokio::test]
    async fn tags_of_one_image_in_one_repository_make_one_job() {
        let r = MemoryRegistries::new();
        r.add_image("src.io", "a/app", "v1", &[b"x"]);
        let dir = tempfile::tempdir().unwrap();
        let text = "src.io/a/app:v1 dst.io/m/app:v1 dst.io/m/app:latest dst.io/o/app\n";
        let plan = plan(set(&dir, "m", text), &r, Uuid::new_v4()).await;
        assert_eq!(
            destinations(&plan),
            vec![
                vec!["dst.io/m/app:v1", "dst.io/m/app:latest"],
                vec!["dst.io/o/app:v1"]
            ]
        );
    }

    #[tokio::test]
    async fn a_tag_given_by_several_files_is_written_by_the_last_file_only() {
        let r = MemoryRegistries::new();
        let mut digests = Vec::new();
        for team in ["a", "b", "c"] {
            let m = r.add_image(
                "src.io",
                &format!("{team}/logging"),
                "v1",
                &[team.as_bytes()],
            );
            digests.push(m.digest);
        }
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for team in ["a", "b", "c"] {
            let path = dir.path().join(format!("mapping_logging_{team}"));
            let text = format!(
                "src.io/{team}/logging:v1 dst.io/logging/operator:latest dst.io/logging/{team}:v1\n"
            );
            std::fs::write(&path, text).unwrap();
            files.push(path);
        }
        let plan = plan(load(&files), &r, Uuid::new_v4()).await;
        let latest: Vec<&Job> = plan
            .jobs
            .iter()
            .filter(|j| {
                j.destinations
                    .iter()
                    .any(|d| d.repository == "logging/operator")
            })
            .collect();
        assert_eq!(latest.len(), 1, "{:?}", destinations(&plan));
        assert_eq!(latest[0].digest, digests[2], "the last file's image");
        assert_eq!(plan.jobs.len(), 4, "three own tags and the contested one");
        let by: Vec<String> = plan
            .set
            .superseded
            .iter()
            .map(|s| s.by.to_string())
            .collect();
        assert_eq!(
            by,
            [
                format!("{}:1", files[1].display()),
                format!("{}:1", files[2].display())
            ]
        );
        assert!(plan.set.rejected.is_empty());
    }

    #[tokio::test]
    async fn a_missing_source_fails_its_tags_as_not_found_with_their_origin() {
        let r = MemoryRegistries::new();
        r.add_image("src.io", "a/app", "v1", &[b"x"]);
        let dir = tempfile::tempdir().unwrap();
        let text = "src.io/a/app:v1 dst.io/m/app:v1\nsrc.io/a/app:v2 dst.io/m/app:v2\n";
        let plan = plan(set(&dir, "m", text), &r, Uuid::new_v4()).await;
        assert_eq!(plan.jobs.len(), 1);
        let (tag, origin) = &plan.unresolved[0];
        assert_eq!(tag.destination, "dst.io/m/app:v2");
        assert_eq!(tag.failure, Some(FailureKind::NotFound));
        assert!(origin.ends_with("m:2"), "{origin}");
    }

    #[tokio::test]
    async fn a_file_whose_glob_source_cannot_be_listed_contributes_nothing() {
        let r = MemoryRegistries::new();
        r.add_image("src.io", "a/app", "v1", &[b"x"]);
        let dir = tempfile::tempdir().unwrap();
        let text = "src.io/a/app:v1 dst.io/m/app:v1\nsrc.io/none/here:* dst.io/m/none\n";
        let plan = plan(set(&dir, "m", text), &r, Uuid::new_v4()).await;
        assert!(plan.jobs.is_empty());
        assert_eq!(plan.set.rejected.len(), 1);
        let error = plan.set.rejected[0].1[0].to_string();
        assert!(
            error.contains("cannot list the tags of src.io/none/here"),
            "{error}"
        );
    }
}
