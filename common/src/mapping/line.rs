//! The grammar of one line: `SRC DST [DST ...]` or `SRC=DST [SRC=DST ...]`.

use std::path::Path;

use super::error::{MappingError, Origin};
use super::source::{is_glob, Source, TagSelector};
use super::Mapping;
use crate::reference::ImageRef;

/// What a line may look like, appended to messages about its shape.
const EXPECTED_LINE: &str = "expected SRC DST [DST ...] or SRC=DST [SRC=DST ...]";
/// What a destination may look like.
const EXPECTED_DESTINATION: &str = "destinations must be registry/repo[:tag]";
/// Longest tag the distribution spec accepts.
const TAG_MAX: usize = 128;

/// Parses one line whose comment has been removed and which has been trimmed (non-empty).
/// Every problem of the line is reported, not only the first.
pub(crate) fn parse_line(
    file: &Path,
    line: usize,
    content: &str,
) -> Result<Vec<Mapping>, Vec<MappingError>> {
    let origin = Origin::new(file, line);
    let tokens: Vec<&str> = content.split_whitespace().collect();
    let err = |message: String| MappingError::new(origin.clone(), message);
    let pairs = tokens.iter().filter(|t| t.contains('=')).count();
    let parsed = if pairs == 0 {
        plain_line(&tokens)
    } else if pairs == tokens.len() {
        pair_line(&tokens)
    } else {
        let plain: Vec<String> = tokens
            .iter()
            .filter(|t| !t.contains('='))
            .map(|t| format!("\"{t}\""))
            .collect();
        Err(vec![format!(
            "line mixes SRC=DST pairs with plain references ({}); {EXPECTED_LINE}",
            plain.join(", ")
        )])
    };
    let mapping = |(source, destinations)| Mapping {
        origin: origin.clone(),
        source,
        destinations,
    };
    parsed
        .map(|found| found.into_iter().map(mapping).collect())
        .map_err(|messages| messages.into_iter().map(err).collect())
}

/// A source with what it maps to.
type Parsed = (Source, Vec<ImageRef>);

/// `SRC DST [DST ...]`; a blank line maps nothing.
fn plain_line(tokens: &[&str]) -> Result<Vec<Parsed>, Vec<String>> {
    match tokens.split_first() {
        Some((src, dsts)) if !dsts.is_empty() => parse_mapping(src, dsts).map(|m| vec![m]),
        Some((src, _)) => Err(vec![format!(
            "source \"{src}\" has no destination; {EXPECTED_LINE}"
        )]),
        None => Ok(Vec::new()),
    }
}

/// `SRC=DST [SRC=DST ...]`: every pair checked, every error kept.
fn pair_line(tokens: &[&str]) -> Result<Vec<Parsed>, Vec<String>> {
    let mut errors = Vec::new();
    let mut mappings = Vec::new();
    for token in tokens {
        let Some((src, dst)) = token.split_once('=') else {
            continue;
        };
        if src.is_empty() || dst.is_empty() || dst.contains('=') {
            let what = if src.is_empty() {
                "the source is empty"
            } else if dst.is_empty() {
                "the destination is empty"
            } else {
                "it has more than one '='"
            };
            errors.push(format!(
                "\"{token}\" is not a SRC=DST pair: {what}; expected SRC=DST"
            ));
            continue;
        }
        match parse_mapping(src, &[dst]) {
            Ok(m) => mappings.push(m),
            Err(messages) => errors.extend(messages),
        }
    }
    if errors.is_empty() {
        Ok(mappings)
    } else {
        Err(errors)
    }
}

/// One source with its destinations; the error messages carry no place (the caller adds it).
fn parse_mapping(src: &str, dsts: &[&str]) -> Result<Parsed, Vec<String>> {
    let source = parse_source(src).map_err(|m| vec![m])?;
    let mut errors = Vec::new();
    let mut destinations = Vec::with_capacity(dsts.len());
    for dst in dsts {
        match parse_destination(dst, &source, src) {
            Ok(d) => destinations.push(d),
            Err(m) => errors.push(m),
        }
    }
    if errors.is_empty() {
        Ok((source, destinations))
    } else {
        Err(errors)
    }
}

/// Splits `registry/repo:tag[@digest]` into the part before the tag and the tag, looking for
/// the tag only in the last path component (so that a registry port is not taken for a tag).
fn split_tag(token: &str) -> Option<(&str, &str)> {
    let name = token.split_once('@').map_or(token, |(n, _)| n);
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let colon = last_slash + name[last_slash..].find(':')?;
    Some((&token[..colon], &name[colon + 1..]))
}

/// Whether a glob is a tag with wildcards: letters, digits, `_`, `.`, `-` (not first) and
/// `*`/`?`, at most 128 characters.
fn valid_glob(glob: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '*' | '?');
    !glob.is_empty()
        && glob.len() <= TAG_MAX
        && glob.chars().all(allowed)
        && !glob.starts_with(['.', '-'])
}

fn parse_source(src: &str) -> Result<Source, String> {
    let invalid = |e: crate::reference::ReferenceError| {
        format!("source \"{src}\" is not a valid image reference: {e}")
    };
    if let Some((name, tag)) = split_tag(src).filter(|(_, tag)| is_glob(tag)) {
        if src.contains('@') {
            return Err(format!(
                "source \"{src}\" has both a tag glob and a digest; expected registry/repo:GLOB or registry/repo@sha256:<64 hex>"
            ));
        }
        if !valid_glob(tag) {
            return Err(format!(
                "source \"{src}\" has an invalid tag glob \"{tag}\"; a glob is a tag (letters, digits, '_', '.', '-', not starting with '.' or '-') with the wildcards '*' and '?'"
            ));
        }
        let image = ImageRef::parse(name).map_err(invalid)?;
        return Ok(Source {
            image,
            tags: TagSelector::Glob(tag.to_string()),
        });
    }
    let image = ImageRef::parse(src).map_err(invalid)?;
    let tags = match (&image.digest, &image.tag) {
        (Some(d), _) => TagSelector::Digest(d.clone()),
        (None, Some(t)) => TagSelector::Tag(t.clone()),
        (None, None) => TagSelector::All,
    };
    Ok(Source { image, tags })
}

fn parse_destination(dst: &str, source: &Source, src: &str) -> Result<ImageRef, String> {
    if split_tag(dst).is_some_and(|(_, tag)| is_glob(tag)) {
        return Err(format!(
            "destination \"{dst}\" has a tag glob; {EXPECTED_DESTINATION} (leave the tag off to keep each source tag)"
        ));
    }
    let image = ImageRef::parse(dst)
        .map_err(|e| format!("destination \"{dst}\" is not a valid image reference: {e}"))?;
    if image.digest.is_some() {
        return Err(format!(
            "destination \"{dst}\" has a digest; {EXPECTED_DESTINATION}"
        ));
    }
    match (&source.tags, &image.tag) {
        (TagSelector::Glob(_), Some(_)) => {
            return Err(format!(
                "destination \"{dst}\" has a tag but source \"{src}\" is a tag glob that selects many tags; leave the destination tag off (registry/repo) so that each tag keeps its name"
            ))
        }
        (TagSelector::All, Some(_)) => {
            return Err(format!(
                "destination \"{dst}\" has a tag but source \"{src}\" has no tag, which selects every tag; leave the destination tag off (registry/repo) so that each tag keeps its name"
            ))
        }
        (TagSelector::Digest(_), None) if source.image.tag.is_none() => {
            return Err(format!(
                "destination \"{dst}\" has no tag and source \"{src}\" is given by digest, so there is no tag to inherit; expected registry/repo:tag"
            ))
        }
        _ => {}
    }
    let same_repo = source.image.registry.eq_ignore_ascii_case(&image.registry)
        && source.image.repository == image.repository;
    let same_tag = match (&source.tags, &image.tag) {
        // A tag-less destination inherits the source tag: the same tag, whatever it is.
        (TagSelector::Glob(_) | TagSelector::All, None) => true,
        (_, None) => source.written_tag().is_some(),
        (_, Some(t)) => source.written_tag() == Some(t.as_str()),
    };
    if same_repo && same_tag {
        return Err(format!(
            "destination \"{dst}\" is the same image as source \"{src}\"; a mapping must copy to another repository or tag"
        ));
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(content: &str) -> Vec<Mapping> {
        match parse_line(Path::new("m"), 1, content) {
            Ok(m) => m,
            Err(e) => panic!("{content}: {e:?}"),
        }
    }

    fn fail(content: &str) -> Vec<String> {
        match parse_line(Path::new("mapping_x"), 3, content) {
            Ok(m) => panic!("{content} parsed: {m:?}"),
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn source_with_tag_and_several_destinations_is_one_mapping() {
        let m = one(
            "registry.ci.openshift.org/ocp/4.15:hypershift quay.io/h/h:4.15 quay.io/h/h:latest",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].source.tags, TagSelector::Tag("hypershift".into()));
        assert_eq!(m[0].source.image.repository, "ocp/4.15");
        let d: Vec<String> = m[0].destinations.iter().map(ToString::to_string).collect();
        assert_eq!(d, ["quay.io/h/h:4.15", "quay.io/h/h:latest"]);
    }

    #[test]
    fn each_equals_pair_is_its_own_mapping() {
        let m = one("quay.io/a/b:1=quay.io/c/d:1 quay.io/a/e:2=quay.io/c/f");
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].source.to_string(), "quay.io/a/b:1");
        assert_eq!(m[0].destinations[0].to_string(), "quay.io/c/d:1");
        assert_eq!(m[1].source.to_string(), "quay.io/a/e:2");
        assert_eq!(m[1].destinations[0].to_string(), "quay.io/c/f");
    }

    #[test]
    fn glob_source_keeps_the_pattern_and_no_tag() {
        let m =
            one("registry.ci.openshift.org/lvms/lvm-operator:4.1* quay.io/lvms_dev/lvms-operator");
        let s = &m[0].source;
        assert_eq!(s.tags, TagSelector::Glob("4.1*".into()));
        assert_eq!(s.image.tag, None);
        assert_eq!(s.image.repository, "lvms/lvm-operator");
        assert_eq!(
            s.to_string(),
            "registry.ci.openshift.org/lvms/lvm-operator:4.1*"
        );
        assert!(s.tags.expands());
        let star = one("localhost:5000/a:* localhost:5000/b");
        assert_eq!(star[0].source.tags, TagSelector::Glob("*".into()));
        assert_eq!(star[0].source.image.registry, "localhost:5000");
    }

    #[test]
    fn tagless_source_selects_every_tag() {
        let m = one("localhost:5000/a/b quay.io/c/d");
        assert_eq!(m[0].source.tags, TagSelector::All);
        assert_eq!(m[0].source.image.registry, "localhost:5000");
        assert_eq!(m[0].destinations[0].tag, None);
    }

    #[test]
    fn digest_source_with_tagged_destination_is_accepted() {
        let d = format!("sha256:{}", "a".repeat(64));
        let m = one(&format!("quay.io/a/b@{d} quay.io/c/d:v1"));
        assert_eq!(m[0].source.tags, TagSelector::Digest(d));
        assert_eq!(m[0].source.written_tag(), None);
    }

    #[test]
    fn unparsable_reference_is_reported_with_the_reference_error() {
        assert_eq!(
            fail("quay.io/A/b:1 quay.io/c/d:1"),
            ["mapping_x:3: source \"quay.io/A/b:1\" is not a valid image reference: invalid image reference \"quay.io/A/b:1\": repository names must be lowercase"]
        );
        let e = fail("quay.io/a/b:1 quay.io/c//d:1");
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("mapping_x:3: destination \"quay.io/c//d:1\" is not a valid image reference: invalid image reference \"quay.io/c//d:1\": "),
            "{}",
            e[0]
        );
    }

    #[test]
    fn digest_destination_is_rejected_with_file_and_line() {
        let d = format!("sha256:{}", "b".repeat(64));
        assert_eq!(
            fail(&format!("quay.io/a/b:1 quay.io/c/d@{d}")),
            [format!("mapping_x:3: destination \"quay.io/c/d@{d}\" has a digest; destinations must be registry/repo[:tag]")]
        );
    }

    #[test]
    fn glob_destination_is_rejected() {
        assert_eq!(
            fail("quay.io/a/b:4.1* quay.io/c/d:4.1*"),
            ["mapping_x:3: destination \"quay.io/c/d:4.1*\" has a tag glob; destinations must be registry/repo[:tag] (leave the tag off to keep each source tag)"]
        );
    }

    #[test]
    fn tagged_destination_for_glob_source_is_rejected() {
        assert_eq!(
            fail("quay.io/a/b:4.1* quay.io/c/d:latest"),
            ["mapping_x:3: destination \"quay.io/c/d:latest\" has a tag but source \"quay.io/a/b:4.1*\" is a tag glob that selects many tags; leave the destination tag off (registry/repo) so that each tag keeps its name"]
        );
    }

    #[test]
    fn tagged_destination_for_tagless_source_is_rejected() {
        assert_eq!(
            fail("quay.io/a/b quay.io/c/d:latest"),
            ["mapping_x:3: destination \"quay.io/c/d:latest\" has a tag but source \"quay.io/a/b\" has no tag, which selects every tag; leave the destination tag off (registry/repo) so that each tag keeps its name"]
        );
    }

    #[test]
    fn digest_source_with_tagless_destination_has_no_tag_to_inherit() {
        let d = format!("sha256:{}", "c".repeat(64));
        assert_eq!(
            fail(&format!("quay.io/a/b@{d} quay.io/c/d")),
            [format!("mapping_x:3: destination \"quay.io/c/d\" has no tag and source \"quay.io/a/b@{d}\" is given by digest, so there is no tag to inherit; expected registry/repo:tag")]
        );
        // With a tag written next to the digest, that tag is inherited.
        let m = one(&format!("quay.io/a/b:v1@{d} quay.io/c/d"));
        assert_eq!(m[0].source.written_tag(), Some("v1"));
    }

    #[test]
    fn source_equal_to_destination_is_rejected() {
        assert_eq!(
            fail("quay.io/a/b:1 quay.io/a/b:1"),
            ["mapping_x:3: destination \"quay.io/a/b:1\" is the same image as source \"quay.io/a/b:1\"; a mapping must copy to another repository or tag"]
        );
        // Inherited tags count too: same repository, same tag.
        assert_eq!(fail("quay.io/a/b:1 quay.io/a/b").len(), 1);
        assert_eq!(fail("quay.io/a/b:4.* quay.io/a/b").len(), 1);
        assert_eq!(fail("quay.io/a/b quay.io/a/b").len(), 1);
        // Another tag in the same repository is a copy, not an identity.
        assert_eq!(one("quay.io/a/b:1 quay.io/a/b:2").len(), 1);
    }

    #[test]
    fn source_without_destination_is_rejected() {
        assert_eq!(
            fail("quay.io/a/b:1"),
            ["mapping_x:3: source \"quay.io/a/b:1\" has no destination; expected SRC DST [DST ...] or SRC=DST [SRC=DST ...]"]
        );
    }

    #[test]
    fn incomplete_equals_pair_is_rejected() {
        assert_eq!(
            fail("quay.io/a/b:1="),
            ["mapping_x:3: \"quay.io/a/b:1=\" is not a SRC=DST pair: the destination is empty; expected SRC=DST"]
        );
        assert_eq!(
            fail("=quay.io/a/b:1"),
            ["mapping_x:3: \"=quay.io/a/b:1\" is not a SRC=DST pair: the source is empty; expected SRC=DST"]
        );
        assert_eq!(
            fail("quay.io/a/b:1=quay.io/c/d:1=quay.io/e/f:1"),
            ["mapping_x:3: \"quay.io/a/b:1=quay.io/c/d:1=quay.io/e/f:1\" is not a SRC=DST pair: it has more than one '='; expected SRC=DST"]
        );
    }

    #[test]
    fn mixing_pairs_and_plain_references_is_rejected() {
        assert_eq!(
            fail("quay.io/a/b:1=quay.io/c/d:1 quay.io/e/f:1"),
            ["mapping_x:3: line mixes SRC=DST pairs with plain references (\"quay.io/e/f:1\"); expected SRC DST [DST ...] or SRC=DST [SRC=DST ...]"]
        );
    }

    #[test]
    fn invalid_glob_is_rejected() {
        assert_eq!(
            fail("quay.io/a/b:4.$* quay.io/c/d"),
            ["mapping_x:3: source \"quay.io/a/b:4.$*\" has an invalid tag glob \"4.$*\"; a glob is a tag (letters, digits, '_', '.', '-', not starting with '.' or '-') with the wildcards '*' and '?'"]
        );
        let d = format!("sha256:{}", "d".repeat(64));
        assert_eq!(
            fail(&format!("quay.io/a/b:4.*@{d} quay.io/c/d")),
            [format!("mapping_x:3: source \"quay.io/a/b:4.*@{d}\" has both a tag glob and a digest; expected registry/repo:GLOB or registry/repo@sha256:<64 hex>")]
        );
    }

    #[test]
    fn every_bad_destination_of_a_line_is_reported() {
        let d = format!("sha256:{}", "e".repeat(64));
        let e = fail(&format!(
            "quay.io/a/b:1 quay.io/c/d@{d} quay.io/c/e:* quay.io/c/f:1"
        ));
        assert_eq!(e.len(), 2, "{e:?}");
    }
}
