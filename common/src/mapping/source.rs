//! The source side of a mapping: which tags of a repository it selects.

use std::fmt;

use crate::reference::ImageRef;

/// Which tags of the source repository a mapping copies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TagSelector {
    /// One tag: `registry/repo:tag`.
    Tag(String),
    /// One manifest by digest: `registry/repo@sha256:…` (possibly with a tag written too).
    Digest(String),
    /// The tags matching a glob: `registry/repo:4.1*`; `*` is any run of characters, `?` one.
    Glob(String),
    /// Every tag: `registry/repo` with no tag.
    All,
}

impl TagSelector {
    /// Whether `tag` (a name listed by the source registry) is selected. A digest selector
    /// selects no tag by name.
    pub fn matches(&self, tag: &str) -> bool {
        match self {
            TagSelector::Tag(t) => t == tag,
            TagSelector::Digest(_) => false,
            TagSelector::Glob(pattern) => glob_matches(pattern, tag),
            TagSelector::All => true,
        }
    }

    /// Whether the selector can stand for more than one tag, so that the source repository's
    /// tags must be listed (and destinations must inherit the tag).
    pub fn expands(&self) -> bool {
        matches!(self, TagSelector::Glob(_) | TagSelector::All)
    }
}

/// The source of a mapping.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Source {
    /// The repository, with the tag (for [`TagSelector::Tag`]) or the digest (for
    /// [`TagSelector::Digest`]) as written; `tag` is `None` for [`TagSelector::Glob`] and
    /// [`TagSelector::All`].
    pub image: ImageRef,
    /// Which tags are selected.
    pub tags: TagSelector,
}

impl Source {
    /// The tag a tag-less destination takes when the source is not expanded: the written
    /// tag of a [`TagSelector::Tag`] source, or of a `repo:tag@digest` source.
    pub fn written_tag(&self) -> Option<&str> {
        match self.tags {
            TagSelector::Tag(_) | TagSelector::Digest(_) => self.image.tag.as_deref(),
            TagSelector::Glob(_) | TagSelector::All => None,
        }
    }
}

/// Prints the source as it would be written in a mapping file (`registry/repo:4.1*` for a
/// glob).
impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.image)?;
        if let TagSelector::Glob(pattern) = &self.tags {
            write!(f, ":{pattern}")?;
        }
        Ok(())
    }
}

/// Whether a tag is a glob (contains `*` or `?`).
pub(crate) fn is_glob(tag: &str) -> bool {
    tag.contains(['*', '?'])
}

/// Shell-style match of `text` against `pattern` where `*` matches any run of characters
/// (including none) and `?` exactly one; everything else matches itself. Linear in practice:
/// only the most recent `*` is ever backtracked to.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    // Position after the last `*` seen in the pattern, and where in the text it started.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((after_star, started)) => {
                    pi = after_star;
                    ti = started + 1;
                    star = Some((after_star, started + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_star_matches_any_run_and_question_mark_one_character() {
        let g = TagSelector::Glob("4.1*".into());
        assert!(g.matches("4.1"));
        assert!(g.matches("4.16"));
        assert!(g.matches("4.16.0-rc.1"));
        assert!(!g.matches("4.2"));
        assert!(!g.matches("v4.1"));
        let q = TagSelector::Glob("4.?".into());
        assert!(q.matches("4.6"));
        assert!(!q.matches("4.16"));
        assert!(!q.matches("4."));
        let mid = TagSelector::Glob("*-arm64*".into());
        assert!(mid.matches("4.15-arm64"));
        assert!(mid.matches("latest-arm64-debug"));
        assert!(!mid.matches("4.15-amd64"));
        assert!(TagSelector::Glob("*".into()).matches("anything"));
        assert!(TagSelector::Glob("a*b*c".into()).matches("aXbYbZc"));
        assert!(!TagSelector::Glob("a*b*c".into()).matches("aXbYbZ"));
    }

    #[test]
    fn selectors_say_whether_they_expand() {
        assert!(TagSelector::All.expands());
        assert!(TagSelector::Glob("*".into()).expands());
        assert!(!TagSelector::Tag("v1".into()).expands());
        assert!(!TagSelector::Digest("sha256:x".into()).expands());
        assert!(TagSelector::All.matches("v1"));
        assert!(TagSelector::Tag("v1".into()).matches("v1"));
        assert!(!TagSelector::Tag("v1".into()).matches("v2"));
        assert!(!TagSelector::Digest("sha256:x".into()).matches("v1"));
    }
}
