//! From pushed tags to published jobs. The listener hands each push over the bounded
//! queue; here the same tag pushed again within the window is folded ([`Coalescer`]), the
//! mapping lines that select the tag are found ([`Matcher`]), the source is resolved by a
//! HEAD (the job's digest is the registry's answer, never the event's: a forged event can
//! cause a HEAD, never a wrong copy), and one job per route and destination repository is
//! stamped as a scheduled run stamps it and sent. A bounded number of pushes are worked
//! on at once; past that the queue fills and the listener answers 503.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use mirror_common::job::Job;
use mirror_common::reference::ImageRef;
use mirror_common::registry::{Manifests, RegistryClient};
use tokio::sync::{mpsc, Semaphore};
use uuid::Uuid;

use super::coalesce::Coalescer;
use super::latency::Latency;
use super::matcher::{Hit, Matcher};
use super::recent::Recent;
use super::sink::Sink;

/// Pushes worked on at once (each a HEAD and a publish).
const CONCURRENCY: usize = 32;

/// A pushed tag, as it waits in the queue.
#[derive(Clone, Debug)]
pub(crate) struct Arrival {
    /// The sender's name.
    pub sender: String,
    /// The source tag, its registry as the mapping files write it.
    pub image: ImageRef,
    /// When it was pushed (the event's timestamp, else when it arrived).
    pub at: SystemTime,
    /// The digest the event says was pushed (see [`resolve`]).
    pub hint: Option<String>,
}

/// What the publisher works with.
pub(crate) struct Publisher {
    pub matcher: Matcher,
    pub client: Arc<RegistryClient>,
    pub sink: Arc<Sink>,
    pub run_id: Uuid,
    pub latency: Arc<Latency>,
    pub recent: Arc<Recent>,
    pub window: std::time::Duration,
}

/// Takes pushes from `queue` until it closes.
pub(crate) async fn run(mut p: Publisher, mut queue: mpsc::Receiver<Arrival>) {
    let metrics = &mirror_fleet::observe::metrics::global().events;
    let mut coalescer: Coalescer<String, Arrival> = Coalescer::new(p.window);
    let slots = Arc::new(Semaphore::new(CONCURRENCY));
    loop {
        let sleep_until = coalescer
            .next_due()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + std::time::Duration::from_secs(3600));
        let mut out = Vec::new();
        tokio::select! {
            arrival = queue.recv() => {
                let Some(a) = arrival else { return };
                let key = a.image.to_string();
                let sender = a.sender.clone();
                // A folded set is timed from its earliest push (what waited longest) and
                // waits for the latest push's digest.
                let fold = |old: Arrival, new: Arrival| Arrival { at: old.at.min(new.at), ..new };
                match coalescer.offer(key, a, Instant::now(), fold) {
                    Some(a) => out.push(a),
                    None => metrics.ignore(&sender, "coalesced"),
                }
            }
            () = tokio::time::sleep_until(sleep_until) => {}
        }
        out.extend(coalescer.due(Instant::now()));
        metrics
            .waiting
            .set((queue.len() + coalescer.waiting()) as i64);
        if out.is_empty() {
            continue;
        }
        p.matcher.refresh(Instant::now());
        for a in out {
            let hits = p.matcher.matches(&a.image);
            if hits.is_empty() {
                metrics.ignore(&a.sender, "unmapped");
                p.recent.add(
                    &a.sender,
                    "unmapped: no mapping line selects it",
                    Some(a.image.to_string()),
                );
                continue;
            }
            // Waiting for a slot here is the back-pressure: the queue fills behind it.
            let Ok(slot) = slots.clone().acquire_owned().await else {
                return;
            };
            let work = Work {
                client: p.client.clone(),
                sink: p.sink.clone(),
                run_id: p.run_id,
                latency: p.latency.clone(),
                recent: p.recent.clone(),
            };
            tokio::spawn(async move {
                work.publish(a, hits).await;
                drop(slot);
            });
        }
    }
}

/// One push's work, in a task of its own.
struct Work {
    client: Arc<RegistryClient>,
    sink: Arc<Sink>,
    run_id: Uuid,
    latency: Arc<Latency>,
    recent: Arc<Recent>,
}

impl Work {
    async fn publish(&self, a: Arrival, hits: Vec<Hit>) {
        let metrics = &mirror_fleet::observe::metrics::global().events;
        let image = a.image.to_string();
        let digest = match resolve(self.client.as_ref(), &a.image, a.hint.as_deref()).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                metrics.ignore(&a.sender, "source_failed");
                eprintln!(
                    "event ({}): {image}: not found at the source; nothing published",
                    a.sender
                );
                self.recent.add(&a.sender, "source not found", Some(image));
                return;
            }
            Err(e) => {
                metrics.ignore(&a.sender, "source_failed");
                eprintln!(
                    "event ({}): {image}: {e}; nothing published (the schedule will see to it)",
                    a.sender
                );
                self.recent.add(&a.sender, "source failed", Some(image));
                return;
            }
        };
        let jobs = jobs_of(self.run_id, &a.image, &digest, hits);
        if let Err(e) = self.sink.send(&jobs).await {
            eprintln!(
                "event ({}): {image}: publishing its jobs failed: {e}",
                a.sender
            );
            self.recent.add(&a.sender, "publish failed", Some(image));
            return;
        }
        metrics.act(&a.sender);
        let ledger = super::ledger::activate();
        let mut tags = 0;
        for job in &jobs {
            self.latency.expect(job.id, &a.sender, a.at);
            for d in &job.destinations {
                ledger.note(&d.to_string(), &digest);
                tags += 1;
            }
        }
        tracing::info!(sender = %a.sender, image = %image, digest = %digest, jobs = jobs.len(), tags, "event: jobs published");
        self.recent.add(
            &a.sender,
            format!(
                "published {} for {}",
                mirror_cli::plural(jobs.len(), "job"),
                mirror_cli::plural(tags, "tag")
            ),
            Some(image),
        );
    }
}

/// Delays between the HEADs of a source that does not show the pushed digest yet.
const SETTLE: [u64; 5] = [100, 200, 400, 800, 1600];

/// The source's digest, by a HEAD of the tag. A registry may notify before the tag points
/// at what was pushed (distribution stores the manifest, notifies, then links the tag), so
/// a tag not found, or not at the event's digest (`hint`), is asked again a few times
/// over ~3 s. The registry's answer is what the job copies, whatever the event said.
async fn resolve(
    client: &RegistryClient,
    image: &ImageRef,
    hint: Option<&str>,
) -> Result<Option<String>, mirror_common::registry::RegistryError> {
    let mut last = None;
    for delay in SETTLE
        .iter()
        .map(|ms| std::time::Duration::from_millis(*ms))
        .chain([std::time::Duration::ZERO])
    {
        last = client
            .head_manifest(&image.repository(), &image.reference(), false)
            .await?;
        if last.is_some() && (hint.is_none() || last.as_deref() == hint) {
            return Ok(last);
        }
        if delay.is_zero() {
            break;
        }
        tokio::time::sleep(delay).await;
    }
    Ok(last)
}

/// One job per hit (route) and destination repository, stamped as the route's runs are.
pub(crate) fn jobs_of(run_id: Uuid, source: &ImageRef, digest: &str, hits: Vec<Hit>) -> Vec<Job> {
    let mut jobs = Vec::new();
    for hit in hits {
        let mut by_repo: BTreeMap<String, (Vec<ImageRef>, Vec<String>)> = BTreeMap::new();
        for (d, origin) in hit.destinations {
            let entry = by_repo.entry(d.repo_name()).or_default();
            if !entry.0.contains(&d) {
                entry.0.push(d);
            }
            if !entry.1.contains(&origin) {
                entry.1.push(origin);
            }
        }
        let mut route_jobs: Vec<Job> = by_repo
            .into_values()
            .map(|(dests, origins)| {
                Job::new(run_id, source.clone(), digest.to_string(), dests, origins)
            })
            .collect();
        hit.stamp.apply(&mut route_jobs);
        jobs.append(&mut route_jobs);
    }
    jobs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::routes::Stamp;
    use mirror_common::copy::CopyOptions;
    use mirror_common::job_options::JobOptions;

    fn image(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    const DIGEST: &str = "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf";

    #[test]
    fn one_job_per_route_and_destination_repository_stamped_as_the_routes_runs() {
        let options = JobOptions::of(&CopyOptions {
            keep_manifest_list: false,
            ..CopyOptions::default()
        });
        let hit = |group: &str, digest_tag: bool, dests: &[(&str, &str)]| Hit {
            stamp: Stamp {
                credentials: Some(format!("{group}-push")),
                options: options.clone(),
                group: Some(group.into()),
                digest_tag,
            },
            destinations: dests
                .iter()
                .map(|(d, o)| (image(d), o.to_string()))
                .collect(),
        };
        let run = Uuid::new_v4();
        let jobs = jobs_of(
            run,
            &image("src.io/t/app:1.0"),
            DIGEST,
            vec![
                hit(
                    "a",
                    false,
                    &[
                        ("dst.io/m/app:1.0", "mapping_a:1"),
                        ("dst.io/m/app:stable", "mapping_a:2"),
                        ("dst.io/n/app:1.0", "mapping_a:1"),
                    ],
                ),
                hit("b", true, &[("dst.io/b/app:1.0", "mapping_b:1")]),
            ],
        );
        assert_eq!(jobs.len(), 3);
        // (source, destinations, origins, group) of each job.
        type Shown = (String, Vec<String>, Vec<String>, Option<String>);
        let shown: Vec<Shown> = jobs
            .iter()
            .map(|j| {
                (
                    j.source.to_string(),
                    j.destinations.iter().map(ToString::to_string).collect(),
                    j.origins.clone(),
                    j.group.clone(),
                )
            })
            .collect();
        assert_eq!(
            shown[0],
            (
                "src.io/t/app:1.0".to_string(),
                vec!["dst.io/m/app:1.0".to_string(), "dst.io/m/app:stable".into()],
                vec!["mapping_a:1".to_string(), "mapping_a:2".into()],
                Some("a".to_string())
            )
        );
        assert_eq!(shown[1].1, ["dst.io/n/app:1.0"]);
        assert_eq!(
            shown[2].1,
            ["dst.io/b/app:1.0", "dst.io/b/app:fea8895f4509"],
            "group b pushes the digest tag too"
        );
        for j in &jobs {
            assert_eq!(j.run_id, run);
            assert_eq!(j.digest, DIGEST, "the HEAD's digest, given by the caller");
            assert_eq!(j.options.as_ref(), Some(&options));
            assert_eq!(
                j.credentials.as_deref(),
                Some(format!("{}-push", j.group.as_deref().unwrap()).as_str())
            );
        }
    }
}
