//! Which of a subject's referrer tags exist at the source (`sha256-<hex>`, the referrers
//! tag schema's index, and cosign's `sha256-<hex>.sig`, `.att`, `.sbom`), asked with one
//! tag listing instead of four HEADs. A no-op hourly run looks for new signatures of every
//! image: at 4,100 images that is 16,400 HEADs, or 4,100 listings.
//!
//! The listing asks for the tags after the one just before `sha256-<hex>` (`?n=8&last=...`):
//! a registry that pages as the OCI distribution spec says answers the subject's tags
//! first, if any. Not every registry does: distribution 2.8 ignores `n` and `last` and
//! answers every tag in no order. Each answer is judged on its own, so a wrong guess
//! about a registry never hides a tag:
//! - sorted and every tag after `last`: a page (or a whole listing that happens to look
//!   like one); the subject's tags are at its start, unless the page is full and ends
//!   with one of them (then nothing is concluded);
//! - otherwise, with no next page and not exactly `n` tags: every tag of the repository
//!   (a registry that ignores paging), kept for [`WHOLE_KEPT`] so the other images of the
//!   repository are answered without asking again;
//! - otherwise (or an error): nothing is concluded, and the caller asks with HEADs.

use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::errors::listing_refused;
use super::limits::WHOLE_LISTING_LIMIT;
use crate::name::Repository;
use crate::registry::{Registries, TagsPage};

/// Tags asked for after `last`: the subject's own four and room for a few more.
const PAGE: usize = 8;

/// How long a repository's whole listing answers for its other images. Short: a signature
/// pushed after the listing is seen by the next run, as one pushed after a HEAD would be.
pub(crate) const WHOLE_KEPT: Duration = Duration::from_secs(30);

/// (registry, repository).
type Repo = (String, String);

/// A repository's whole tag listing, as last read.
#[derive(Clone)]
enum Whole {
    Tags(Instant, Arc<HashSet<String>>),
    /// Too many tags to list per image: ask with HEADs.
    TooBig,
}

/// How a source registry's tag listings were seen to answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Listings {
    /// Every tag, whatever is asked.
    Whole,
    /// Nothing to conclude from (paged out of order, refused): HEADs there.
    Unusable,
}

/// What is known of one repository's listing.
#[derive(Default)]
struct RepoListing {
    /// Held while the repository's first listing is asked for, so its other images (a
    /// run's jobs of one repository start together) wait for that answer, which is every
    /// tag where the registry ignores paging.
    first: Arc<tokio::sync::Mutex<()>>,
    /// The first listing was answered: images ask at once.
    answered: bool,
    /// Its whole listing, where the registry ignores paging.
    whole: Option<Whole>,
}

/// What the engine learnt of source registries' tag listings; shared by its copies.
#[derive(Default)]
pub(crate) struct TagListings {
    registries: Mutex<HashMap<String, Listings>>,
    repos: Mutex<HashMap<Repo, RepoListing>>,
}

/// The tag listing parameter `last` that makes a paging registry start at `base`: a string
/// sorting just before it, with no valid tag in between (tags never contain `~`).
pub(crate) fn just_before(base: &str) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    match chars.pop() {
        Some(c) => {
            let before = char::from_u32(c as u32 - 1).unwrap_or(c);
            let mut s: String = chars.into_iter().collect();
            s.push(before);
            s.push('~');
            s
        }
        None => String::new(),
    }
}

fn is_referrer_tag(tag: &str, base: &str) -> bool {
    tag == base || tag.strip_prefix(base).is_some_and(|r| r.starts_with('.'))
}

/// Lexical order as the spec's registries sort (case-insensitive).
fn key(tag: &str) -> String {
    tag.to_ascii_lowercase()
}

/// What one answer says about the tags named after `base`, `None` when it cannot tell.
fn judge(page: &TagsPage, last: &str, base: &str) -> Judged {
    let after = page.tags.iter().all(|t| key(t) > key(last));
    let sorted = page.tags.windows(2).all(|w| key(&w[0]) < key(&w[1]));
    let found: HashSet<String> = page
        .tags
        .iter()
        .filter(|t| is_referrer_tag(t, base))
        .cloned()
        .collect();
    if after && sorted {
        let full = page.more || page.tags.len() >= PAGE;
        let cut = full && page.tags.last().is_some_and(|t| is_referrer_tag(t, base));
        return match cut {
            true => Judged::CannotTell,
            false => Judged::Found(found),
        };
    }
    if !page.more && page.tags.len() != PAGE {
        return Judged::Whole;
    }
    Judged::CannotTell
}

enum Judged {
    Found(HashSet<String>),
    /// The answer is every tag of the repository.
    Whole,
    CannotTell,
}

impl TagListings {
    /// The tags of `registry/repository` named `base` or `base.<suffix>`; `None` when the
    /// registry's listing cannot tell, and the caller must ask for each tag.
    pub(crate) async fn referrer_tags(
        &self,
        c: &dyn Registries,
        registry: &str,
        repository: &str,
        base: &str,
    ) -> Option<HashSet<String>> {
        let seen = self.registries.lock().get(registry).copied();
        if seen == Some(Listings::Unusable) {
            return None;
        }
        let repo: Repo = (registry.to_string(), repository.to_string());
        let mut turn = match self.first_listing(&repo) {
            Some(first) => Some(first.lock_owned().await),
            None => None,
        };
        if let Some(state) = self.repos.lock().get(&repo) {
            if state.answered {
                // Answered while this image waited: whatever it needs, it asks at once.
                drop(turn.take());
            }
            match &state.whole {
                Some(Whole::TooBig) => return None,
                Some(Whole::Tags(at, tags)) if at.elapsed() < WHOLE_KEPT => {
                    return Some(filter(tags, base));
                }
                _ => {}
            }
        }
        let last = just_before(base);
        let answer = c
            .tags_after(
                &Repository::new(registry, repository),
                Some(&last),
                PAGE,
                false,
            )
            .await;
        let page = match answer {
            Ok(page) => page,
            Err(e) => {
                self.answered(&repo, None);
                if listing_refused(&e) {
                    self.learn(registry, Listings::Unusable);
                }
                tracing::debug!(registry, repository, error = %e, "tag listing failed; looking for referrer tags one by one");
                return None;
            }
        };
        self.conclude(registry, &repo, page, &last, base, seen)
    }

    /// The lock of the repository's first listing, while it is not answered yet (an
    /// expired whole listing is asked for again as a first one would be).
    fn first_listing(&self, repo: &Repo) -> Option<Arc<tokio::sync::Mutex<()>>> {
        let mut repos = self.repos.lock();
        let state = repos.entry(repo.clone()).or_default();
        if matches!(&state.whole, Some(Whole::Tags(at, _)) if at.elapsed() >= WHOLE_KEPT) {
            state.whole = None;
            state.answered = false;
        }
        (!state.answered).then(|| state.first.clone())
    }

    /// What one answer (`page`, asked after `last`) tells of `base`'s tags, learnt for the
    /// repository and its registry. `seen`: how the registry's listings answered before.
    fn conclude(
        &self,
        registry: &str,
        repo: &Repo,
        page: TagsPage,
        last: &str,
        base: &str,
        seen: Option<Listings>,
    ) -> Option<HashSet<String>> {
        // A registry seen ignoring paging answers every tag, whatever their order or count.
        let judged = match !page.more && seen == Some(Listings::Whole) {
            true => Judged::Whole,
            false => judge(&page, last, base),
        };
        match judged {
            Judged::Found(found) => {
                self.answered(repo, None);
                Some(found)
            }
            Judged::Whole => {
                self.learn(registry, Listings::Whole);
                let tags: HashSet<String> = page.tags.into_iter().collect();
                let found = filter(&tags, base);
                self.answered(
                    repo,
                    Some(match tags.len() > WHOLE_LISTING_LIMIT {
                        true => Whole::TooBig,
                        false => Whole::Tags(Instant::now(), Arc::new(tags)),
                    }),
                );
                Some(found)
            }
            Judged::CannotTell => {
                self.answered(repo, None);
                // A registry seen answering whole listings is not given up for one answer.
                self.registries
                    .lock()
                    .entry(registry.to_string())
                    .or_insert(Listings::Unusable);
                None
            }
        }
    }

    /// The repository's first listing is answered (with its whole listing, if it was one).
    fn answered(&self, repo: &Repo, whole: Option<Whole>) {
        let mut repos = self.repos.lock();
        let state = repos.entry(repo.clone()).or_default();
        state.answered = true;
        if whole.is_some() {
            state.whole = whole;
        }
    }

    /// What `registry`'s listings were seen to do.
    fn learn(&self, registry: &str, how: Listings) {
        self.registries.lock().insert(registry.to_string(), how);
    }
}

fn filter(tags: &HashSet<String>, base: &str) -> HashSet<String> {
    tags.iter()
        .filter(|t| is_referrer_tag(t, base))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(tags: &[&str], more: bool) -> TagsPage {
        TagsPage {
            tags: tags.iter().map(|s| s.to_string()).collect(),
            more,
        }
    }

    const BASE: &str = "sha256-abc";

    #[test]
    fn the_last_parameter_sorts_just_before_the_subjects_tags() {
        let last = just_before(BASE);
        assert_eq!(last, "sha256-abb~");
        for t in [BASE, "sha256-abc.sig", "sha256-abc.att", "sha256-abc.sbom"] {
            assert!(key(t) > key(&last), "{t}");
        }
        assert!(key("sha256-abb") < key(&last));
        assert!(key("sha256-abb.sig") < key(&last));
    }

    #[test]
    fn a_lexical_page_answers_with_the_subjects_tags_at_its_start() {
        let last = just_before(BASE);
        let p = page(&["sha256-abc", "sha256-abc.sig", "v1"], false);
        match judge(&p, &last, BASE) {
            Judged::Found(f) => assert_eq!(f.len(), 2),
            _ => panic!("a page after `last` answers"),
        }
        let none = page(&["sha256-abd.sig", "v1"], false);
        assert!(matches!(judge(&none, &last, BASE), Judged::Found(f) if f.is_empty()));
    }

    #[test]
    fn a_full_page_that_ends_in_the_subjects_tags_cannot_tell() {
        let last = just_before(BASE);
        let tags = [
            "sha256-abc",
            "sha256-abc.a1",
            "sha256-abc.a2",
            "sha256-abc.a3",
            "sha256-abc.a4",
            "sha256-abc.a5",
            "sha256-abc.a6",
            "sha256-abc.att",
        ];
        assert!(matches!(
            judge(&page(&tags, true), &last, BASE),
            Judged::CannotTell
        ));
    }

    #[test]
    fn an_answer_that_ignored_last_is_the_whole_listing_unless_it_may_be_cut() {
        let last = just_before(BASE);
        // distribution 2.8: every tag, in directory order.
        let whole = page(&["v1", "latest", "sha256-abc.sig", "b"], false);
        assert!(matches!(judge(&whole, &last, BASE), Judged::Whole));
        // The first 8 tags of many, with a next page: nothing can be concluded.
        let first = page(&["a", "b", "c", "d", "e", "f", "g", "h"], true);
        assert!(matches!(judge(&first, &last, BASE), Judged::CannotTell));
    }

    #[test]
    fn cosign_tags_of_another_digest_sharing_a_prefix_are_not_the_subjects() {
        assert!(is_referrer_tag("sha256-abc.sig", BASE));
        assert!(!is_referrer_tag("sha256-abcd.sig", BASE));
        assert!(!is_referrer_tag("sha256-abcd", BASE));
    }
}
