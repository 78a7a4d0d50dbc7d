//! The tag cache of a state file: per destination tag the digest it was last pushed with
//! or seen at, and when; trusted by the same rule as the fleet's entries in Redis
//! ([`tag_age`](mirror_common::state::tag_age)), each tag for its share of the max age.

use mirror_common::state::tag_age::{now_ms, trusted};
use mirror_common::state::TagKey;
use rusqlite::{params, OptionalExtension, Transaction};

use super::db::Db;

/// The digests of `tags`, in order; `None` for a tag unknown or past its share of the max
/// age (or when the file does not answer).
pub(crate) fn dest_digests(db: &Db, tags: &[TagKey<'_>]) -> Vec<Option<String>> {
    let max = millis(db.config.tag_max_age);
    let now = now_ms();
    db.with("read tags", |c| {
        let mut read = c.prepare_cached(
            "SELECT digest, checked_ms FROM tags WHERE registry = ?1 AND repository = ?2 AND tag = ?3",
        )?;
        tags.iter()
            .map(|&(registry, repository, tag)| {
                let row: Option<(String, i64)> = read
                    .query_row(params![registry, repository, tag], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                Ok(row.and_then(|(digest, checked)| {
                    let key = key(registry, repository, tag);
                    let checked = u64::try_from(checked).unwrap_or(0);
                    trusted(&key, checked, now, max).then_some(digest)
                }))
            })
            .collect()
    })
    .unwrap_or_else(|| vec![None; tags.len()])
}

/// Remembers, in `tx`, that a destination tag points at `digest` now.
pub(crate) fn set(tx: &Transaction<'_>, tag: TagKey<'_>, digest: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO tags (registry, repository, tag, digest, checked_ms) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (registry, repository, tag) DO UPDATE SET digest = excluded.digest, checked_ms = excluded.checked_ms",
    )?
    .execute(params![tag.0, tag.1, tag.2, digest, now_ms() as i64])?;
    Ok(())
}

/// Forgets, in `tx`, what a destination tag points at (its push failed: unknown now).
pub(crate) fn forget(tx: &Transaction<'_>, tag: TagKey<'_>) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM tags WHERE registry = ?1 AND repository = ?2 AND tag = ?3")?
        .execute(params![tag.0, tag.1, tag.2])?;
    Ok(())
}

/// The key a tag's share of the max age is derived from.
fn key(registry: &str, repository: &str, tag: &str) -> String {
    format!("{registry}/{repository}:{tag}")
}

pub(crate) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
