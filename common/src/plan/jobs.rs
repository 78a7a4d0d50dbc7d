//! From expanded destination tags to jobs: every distinct source resolved to its digest
//! once per batch (a HEAD per source tag, made here or through the fleet), then the tags
//! of one source image in one destination repository grouped into one job.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::StreamExt;
use uuid::Uuid;

use super::expand::Entry;
use super::limits::RegistryLimits;
use crate::failure::FailureKind;
use crate::job::Job;
use crate::reference::ImageRef;
use crate::registry::{Registries, RegistryError};
use crate::report::TagResult;
use crate::source_digests::SourceDigests;

/// (source repository, source digest, destination repository): what makes one job.
type GroupKey = (String, String, String);
/// A job in the making: the source as written, its destination tags, their origins.
type Group = (ImageRef, Vec<ImageRef>, Vec<String>);

/// Why a source could not be resolved.
type Unresolved = (FailureKind, String);

/// The digest of every distinct source of `entries`, resolved once (a HEAD per source tag):
/// by `remote` first when given (the fleet's workers), then here for every source it did
/// not resolve, so that what a run reports of a source is always this client's answer.
pub(super) async fn resolve_sources(
    entries: &[Entry],
    client: &dyn Registries,
    limits: &RegistryLimits,
    remote: Option<(&dyn SourceDigests, Uuid)>,
) -> HashMap<String, Result<String, Unresolved>> {
    // A set beside the list: thousands of sources, each looked up once per entry.
    let mut seen: HashSet<&ImageRef> = HashSet::new();
    let mut tagged: Vec<&ImageRef> = Vec::new();
    let mut digests: HashMap<String, Result<String, Unresolved>> = HashMap::new();
    for e in entries {
        if !seen.insert(&e.source) {
            continue;
        }
        match &e.source.digest {
            Some(d) => {
                digests.insert(e.source.to_string(), Ok(d.clone()));
            }
            None => tagged.push(&e.source),
        }
    }
    if let Some((remote, run_id)) = remote.filter(|_| !tagged.is_empty()) {
        let mut answers = remote.digests(run_id, &tagged).await.into_iter();
        let mut left = Vec::new();
        for source in tagged {
            match answers.next().flatten() {
                Some(d) => {
                    digests.insert(source.to_string(), Ok(d));
                }
                None => left.push(source),
            }
        }
        tagged = left;
    }
    let here: Vec<(String, Result<String, Unresolved>)> = futures::stream::iter(tagged)
        .map(|s| async move {
            let _place = limits.acquire(&s.registry).await;
            let digest = match client
                .head_manifest(&s.repository(), &s.reference(), false)
                .await
            {
                Ok(Some(d)) => Ok(d),
                Ok(None) => Err((FailureKind::NotFound, format!("{s}: not found"))),
                Err(e) => Err(unresolved(&e)),
            };
            (s.to_string(), digest)
        })
        .buffer_unordered(limits.in_all())
        .collect()
        .await;
    digests.extend(here);
    digests
}

fn unresolved(e: &RegistryError) -> Unresolved {
    (FailureKind::of(e), e.to_string())
}

/// The entries grouped into jobs by source repository, digest and destination
/// repository; the entries whose source was not resolved become failed tags instead.
pub(super) fn into_jobs(
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
pub fn add_digest_tags(jobs: &mut [Job]) {
    for job in jobs {
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
