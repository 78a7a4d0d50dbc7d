//! Which tags a destination repository lacks, from one tag listing instead of a manifest
//! HEAD per tag, where that pays: a repository being filled. A cold run of the real set
//! checks 7,668 destination tags in ~700 repositories, nearly all absent; a HEAD each is
//! one of the five requests a new tag costs. A listing has no digests, so it only ever
//! spares the HEAD of a tag it does not name: tags it names are still asked for.
//!
//! The first check of a repository (its scout) sends its HEAD while the repository's other
//! checks wait for the answer: a run's jobs of one repository come together. The scout's
//! tag there (a warm run): the others send their HEADs, and nothing is listed. Absent, with
//! others waiting (a new or refilled repository): the repository is listed, and the others
//! are answered from the listing. Absent with none waiting, or a later lone check, lists
//! only once two tags were found absent within [`KEPT`]: a new release (one new tag in each
//! of many repositories) costs its HEADs and nothing more.
//!
//! What is trusted: one answer to `tags/list?n=1000` without a next page, by the copies
//! of the run that asked (each of its destination tags has one job), for [`KEPT`] after
//! it was asked, with the tags they pushed since added (a tag pushed by someone else since
//! is pushed again, as it would be after a HEAD that came before that push). Another run
//! (another worker's pushes since, a `--verify` just after) asks again. A repository whose
//! listing pages, or runs past [`WHOLE_LISTING_LIMIT`] tags (a registry ignoring `n`), is not listed
//! again by this process: reading it would cost more than the HEADs it spares; nor is one
//! whose listing is refused (a role that may push but not list). One that failed for a
//! while (a 5xx) is asked again after [`KEPT`].

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::errors::listing_refused;
use super::limits::WHOLE_LISTING_LIMIT;
use crate::reference::ImageRef;
use crate::registry::{Registries, RegistryError};

/// How long what was learnt of a repository answers for it, and the window in which two
/// absent tags make a listing worth asking for.
pub(crate) const KEPT: Duration = Duration::from_secs(60);

/// Tags asked for in the one listing request.
const PAGE: usize = 1000;

/// Repositories remembered before the ones untouched for [`KEPT`] are forgotten (then
/// again at twice as many as are left, so that a run with more keeps its cost linear).
const PRUNE_AT: usize = 4_096;

/// (run, registry, repository).
type Repo = (Option<Uuid>, String, String);

/// What is known of one destination repository's tags.
enum Listing {
    /// Nothing (or nothing recent): the next check is the repository's scout.
    Unknown,
    /// A scout was answered then without a listing: tags are asked for by HEADs.
    Asked(Instant),
    /// Every tag, as listed at that instant, and the ones pushed since.
    Tags(Instant, HashSet<String>),
    /// The listing failed then (a transient error); not asked again within [`KEPT`].
    Failed(Instant),
    /// Pages, has too many tags, or is refused to us (a push-only role): HEADs only.
    Never,
}

/// How one tag is checked.
enum Check {
    /// The listing does not name it.
    Absent,
    Head,
    /// Send its HEAD while the repository's other checks wait.
    Scout,
}

impl Listing {
    fn check(&self, tag: &str) -> Check {
        match self {
            Listing::Tags(at, tags) if at.elapsed() < KEPT => match tags.contains(tag) {
                true => Check::Head,
                false => Check::Absent,
            },
            Listing::Asked(at) | Listing::Failed(at) if at.elapsed() < KEPT => Check::Head,
            Listing::Never => Check::Head,
            _ => Check::Scout,
        }
    }

    /// Asking again would not tell more now.
    fn settled(&self) -> bool {
        match self {
            Listing::Unknown | Listing::Asked(_) => false,
            Listing::Tags(at, _) | Listing::Failed(at) => at.elapsed() < KEPT,
            Listing::Never => true,
        }
    }
}

struct RepoTags {
    /// Held for writing by the scout and while the listing is asked for, so that the
    /// repository's other checks wait for their answers instead of each sending a HEAD.
    listing: tokio::sync::RwLock<Listing>,
    /// Checks waiting for [`listing`](Self::listing).
    waiting: AtomicUsize,
    /// Absent tags seen, since when, and when the repository was last asked about.
    absent: Mutex<Absent>,
}

struct Absent {
    count: u32,
    since: Instant,
    touched: Instant,
}

/// Destination repositories' tag listings; shared by an engine's copies.
#[derive(Default)]
pub(crate) struct DestinationTags {
    repos: Mutex<Repos>,
}

#[derive(Default)]
struct Repos {
    by_key: HashMap<Repo, Arc<RepoTags>>,
    /// How many make the next pruning.
    prune_at: usize,
}

impl DestinationTags {
    /// The digest `dst` points at now (`None`: no such tag), as a manifest HEAD answers,
    /// without sending it when a fresh listing of the repository does not name the tag.
    /// `run`: the run the check is for.
    pub(crate) async fn head(
        &self,
        c: &dyn Registries,
        run: Option<Uuid>,
        dst: &ImageRef,
        push: bool,
    ) -> Result<Option<String>, RegistryError> {
        let reference = dst.manifest_reference();
        if dst.digest.is_some() {
            return head_manifest(c, dst, push).await;
        }
        let repo = self.repo(run, dst);
        let check = repo.waited(repo.listing.read()).await.check(reference);
        let mut listing = match check {
            Check::Absent => return Ok(None),
            Check::Head => return repo.head(c, dst, push).await,
            Check::Scout => repo.waited(repo.listing.write()).await,
        };
        // Another scout may have been answered while this one waited.
        match listing.check(reference) {
            Check::Absent => return Ok(None),
            Check::Head => {
                drop(listing);
                return repo.head(c, dst, push).await;
            }
            Check::Scout => {}
        }
        let answer = head_manifest(c, dst, push).await;
        let absent = matches!(answer, Ok(None));
        let again = absent && repo.absent_again();
        match absent && (again || repo.waiting.load(Ordering::SeqCst) > 0) {
            true => fill(&mut listing, c, dst, push).await,
            false => *listing = Listing::Asked(Instant::now()),
        }
        answer
    }

    /// Adds a tag just pushed to its repository's listing, so that the listing stays true
    /// of what the run's copies wrote (a job tried again finds its tag up to date).
    pub(crate) async fn pushed(&self, run: Option<Uuid>, dst: &ImageRef) {
        if dst.digest.is_some() {
            return;
        }
        let key = (run, dst.registry.clone(), dst.repository.clone());
        let Some(repo) = self.repos.lock().by_key.get(&key).cloned() else {
            return;
        };
        let mut listing = repo.listing.write().await;
        if let Listing::Tags(_, tags) = &mut *listing {
            tags.insert(dst.manifest_reference().to_string());
        }
    }

    fn repo(&self, run: Option<Uuid>, dst: &ImageRef) -> Arc<RepoTags> {
        let mut repos = self.repos.lock();
        if repos.by_key.len() >= repos.prune_at.max(PRUNE_AT) {
            repos
                .by_key
                .retain(|_, r| r.absent.lock().touched.elapsed() < KEPT);
            repos.prune_at = repos.by_key.len() * 2;
        }
        let key = (run, dst.registry.clone(), dst.repository.clone());
        let repo = repos.by_key.entry(key).or_insert_with(|| {
            Arc::new(RepoTags {
                listing: tokio::sync::RwLock::new(Listing::Unknown),
                waiting: AtomicUsize::new(0),
                absent: Mutex::new(Absent {
                    count: 0,
                    since: Instant::now(),
                    touched: Instant::now(),
                }),
            })
        });
        repo.absent.lock().touched = Instant::now();
        repo.clone()
    }
}

impl RepoTags {
    /// `lock`, counted in [`waiting`](Self::waiting) until it is taken.
    async fn waited<G>(&self, lock: impl std::future::Future<Output = G>) -> G {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let guard = lock.await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        guard
    }

    /// A plain HEAD; a second absent tag within [`KEPT`] lists the repository.
    async fn head(
        &self,
        c: &dyn Registries,
        dst: &ImageRef,
        push: bool,
    ) -> Result<Option<String>, RegistryError> {
        let answer = head_manifest(c, dst, push).await;
        if matches!(answer, Ok(None)) && self.absent_again() {
            // Unless a listing is under way or still answers.
            if let Ok(mut listing) = self.listing.try_write() {
                if !listing.settled() {
                    fill(&mut listing, c, dst, push).await;
                }
            }
        }
        answer
    }

    /// Counts an absent tag; true from the second within [`KEPT`].
    fn absent_again(&self) -> bool {
        let mut a = self.absent.lock();
        if a.since.elapsed() >= KEPT {
            a.count = 0;
            a.since = Instant::now();
        }
        a.count += 1;
        a.count >= 2
    }
}

/// Lists the repository of `dst` into `listing`.
async fn fill(listing: &mut Listing, c: &dyn Registries, dst: &ImageRef, push: bool) {
    let (registry, repository) = (&dst.registry, &dst.repository);
    // Tags pushed while the listing is answered may be missing from it: its age counts
    // from the asking.
    let asked = Instant::now();
    let answer = c.tags_after(&dst.repository(), None, PAGE, push).await;
    *listing = match answer {
        Ok(page) if page.more || page.tags.len() > WHOLE_LISTING_LIMIT => Listing::Never,
        Ok(page) => Listing::Tags(asked, page.tags.into_iter().collect()),
        // No repository yet: no tags.
        Err(RegistryError::NotFound { .. }) => Listing::Tags(asked, HashSet::new()),
        Err(e) => {
            tracing::debug!(registry, repository, error = %e, "destination tag listing failed; checking tags one by one");
            match listing_refused(&e) {
                true => Listing::Never,
                false => Listing::Failed(Instant::now()),
            }
        }
    };
}

/// The manifest HEAD the listing spares.
async fn head_manifest(
    c: &dyn Registries,
    dst: &ImageRef,
    push: bool,
) -> Result<Option<String>, RegistryError> {
    c.head_manifest(&dst.repository(), &dst.reference(), push)
        .await
}

#[cfg(test)]
mod tests {
    use mirror_oci::memory::{MemoryRegistries, Op};

    use super::*;

    fn r(s: &str) -> ImageRef {
        ImageRef::parse(s).unwrap()
    }

    /// The answers for `tags` of `dst.io/mirror/app`, in order, one after the other.
    async fn heads(c: &MemoryRegistries, d: &DestinationTags, tags: &[&str]) -> Vec<bool> {
        let mut found = Vec::new();
        for t in tags {
            let at = d
                .head(c, None, &r(&format!("dst.io/mirror/app:{t}")), true)
                .await;
            found.push(at.unwrap().is_some());
        }
        found
    }

    #[tokio::test]
    async fn two_absent_tags_list_the_repository_and_its_other_absent_tags_cost_no_head() {
        let c = MemoryRegistries::new();
        c.add_image("dst.io", "mirror/app", "there", &[b"x"]);
        let d = DestinationTags::default();
        let found = heads(&c, &d, &["a", "b", "c", "d", "there"]).await;
        assert_eq!(found, [false, false, false, false, true]);
        assert_eq!(c.count(Op::ListTags), 1);
        assert_eq!(
            c.count(Op::HeadManifest),
            3,
            "a and b, then only the listed tag"
        );
    }

    #[tokio::test]
    async fn a_scout_found_absent_while_other_checks_wait_lists_at_once() {
        let c = MemoryRegistries::new();
        let d = DestinationTags::default();
        // Another check of the repository waits for the scout's answer.
        let repo = d.repo(None, &r("dst.io/mirror/app:a"));
        repo.waiting.fetch_add(1, Ordering::SeqCst);
        let found = heads(&c, &d, &["a", "b", "c"]).await;
        assert_eq!(found, [false; 3]);
        assert_eq!(c.count(Op::ListTags), 1);
        assert_eq!(c.count(Op::HeadManifest), 1, "the scout's only");
    }

    #[tokio::test]
    async fn a_listing_answers_only_the_run_that_asked_for_it() {
        let c = MemoryRegistries::new();
        let d = DestinationTags::default();
        let (one, two) = (Some(Uuid::new_v4()), Some(Uuid::new_v4()));
        let a = r("dst.io/mirror/app:a");
        let b = r("dst.io/mirror/app:b");
        d.head(&c, one, &a, true).await.unwrap();
        d.head(&c, one, &b, true).await.unwrap();
        assert_eq!(c.count(Op::ListTags), 1);
        // Another worker of run two pushed b since.
        c.add_image("dst.io", "mirror/app", "b", &[b"b"]);
        let at = d.head(&c, two, &b, true).await.unwrap();
        assert!(at.is_some(), "run two asks for itself");
        assert_eq!(c.count(Op::HeadManifest), 3);
    }

    #[tokio::test]
    async fn a_repository_that_does_not_exist_yet_lists_as_empty() {
        let c = MemoryRegistries::new();
        let d = DestinationTags::default();
        let found = heads(&c, &d, &["a", "b", "c", "d"]).await;
        assert_eq!(found, [false; 4]);
        assert_eq!(c.count(Op::ListTags), 1);
        assert_eq!(c.count(Op::HeadManifest), 2);
    }

    #[tokio::test]
    async fn tags_that_are_there_and_one_new_tag_are_never_listed() {
        let c = MemoryRegistries::new();
        for t in ["1", "2", "3"] {
            c.add_image("dst.io", "mirror/app", t, &[t.as_bytes()]);
        }
        let d = DestinationTags::default();
        let found = heads(&c, &d, &["1", "2", "3", "new"]).await;
        assert_eq!(found, [true, true, true, false]);
        assert_eq!(c.count(Op::ListTags), 0, "a new release's one tag");
        assert_eq!(c.count(Op::HeadManifest), 4);
    }

    #[tokio::test]
    async fn a_tag_pushed_after_the_listing_is_asked_for_again() {
        let c = MemoryRegistries::new();
        let d = DestinationTags::default();
        heads(&c, &d, &["a", "b"]).await;
        c.add_image("dst.io", "mirror/app", "c", &[b"c"]);
        d.pushed(None, &r("dst.io/mirror/app:c")).await;
        let found = heads(&c, &d, &["c", "d"]).await;
        assert_eq!(found, [true, false]);
        assert_eq!(c.count(Op::HeadManifest), 3, "a, b and c");
    }

    #[tokio::test]
    async fn a_digest_reference_is_always_asked_for() {
        let c = MemoryRegistries::new();
        let m = c.add_image("dst.io", "mirror/app", "there", &[b"x"]);
        let d = DestinationTags::default();
        heads(&c, &d, &["a", "b"]).await;
        let by_digest = r(&format!("dst.io/mirror/app@{}", m.digest));
        let at = d.head(&c, None, &by_digest, true).await.unwrap();
        assert_eq!(at, Some(m.digest));
        assert_eq!(c.count(Op::HeadManifest), 3);
    }

    #[tokio::test]
    async fn a_repository_whose_listing_pages_is_checked_by_heads_and_not_listed_again() {
        let c = MemoryRegistries::new();
        for i in 0..=PAGE {
            c.add_image("dst.io", "mirror/app", &format!("t{i}"), &[b"x"]);
        }
        let d = DestinationTags::default();
        let found = heads(&c, &d, &["a", "b", "c", "d", "t7"]).await;
        assert_eq!(found, [false, false, false, false, true]);
        assert_eq!(c.count(Op::ListTags), 1, "once, and found to page");
        assert_eq!(c.count(Op::HeadManifest), 5);
    }

    #[tokio::test]
    async fn a_listing_asked_while_tags_are_checked_answers_them_once_it_arrives() {
        let c = Arc::new(MemoryRegistries::new());
        let d = Arc::new(DestinationTags::default());
        heads(&c, &d, &["a", "b"]).await;
        let repo = d.repo(None, &r("dst.io/mirror/app:c"));
        // A listing under way: a check waits for it rather than sending its HEAD.
        let mut held = repo.listing.write().await;
        let check = {
            let (c, d) = (c.clone(), d.clone());
            tokio::spawn(async move {
                d.head(c.as_ref(), None, &r("dst.io/mirror/app:c"), true)
                    .await
            })
        };
        tokio::task::yield_now().await;
        assert_eq!(
            c.count(Op::HeadManifest),
            2,
            "no HEAD while the listing is under way"
        );
        c.add_image("dst.io", "mirror/app", "c", &[b"c"]);
        c.clear_calls();
        *held = Listing::Tags(Instant::now(), HashSet::from(["c".to_string()]));
        drop(held);
        assert!(check.await.unwrap().unwrap().is_some());
        assert_eq!(c.count(Op::HeadManifest), 1, "the listed tag is asked for");
    }
}
