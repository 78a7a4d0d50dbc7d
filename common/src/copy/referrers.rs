//! Referrers travel with their subject: the signatures, attestations and SBOMs that refer
//! to a manifest the engine copies are copied with it, in the same job.
//!
//! Found at the source three ways, as the tools that make them write them:
//! - the OCI 1.1 Referrers API, where the registry answers it;
//! - otherwise the referrers tag schema: an index tagged `sha256-<hex>` listing them;
//! - and cosign's tags (`sha256-<hex>.sig`, `.att`, `.sbom`), which most signed images in
//!   the wild still use: they carry no `subject` and are found only by name.
//!
//! At the destination, referrers are pushed by digest (with their `subject` unchanged, so
//! their digests stay equal) and cosign's under the same tag names. A destination without
//! the Referrers API gets the tag schema kept for it: its `sha256-<hex>` index is merged with
//! what it already lists (never overwritten), and only after every referrer it names has been
//! pushed, so no index ever names a manifest that is missing.
//!
//! Referrers of referrers (a signature of an attestation) are followed, up to
//! [`MAX_REFERRER_DEPTH`] levels. On a tag already at its digest only the top manifest's
//! referrers are looked for (children are not read again): see README "Signatures and other
//! artifacts" for what a no-op run costs and how new signatures are noticed.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};

use super::engine::CopyEngine;
use super::errors::protocol;
use super::target::Target;
use crate::manifest::{Descriptor, Manifest, OCI_INDEX};
use crate::name::{Reference, Repository};
use crate::reference::ImageRef;
use crate::registry::RegistryError;
use crate::report::Counters;

/// How many levels of referrers of referrers are followed.
pub const MAX_REFERRER_DEPTH: usize = 4;

/// The most referrers copied with one image; past this the copy fails rather than
/// pushing an unbounded number of artifacts.
pub const MAX_REFERRERS_PER_IMAGE: usize = 500;

/// cosign's tag suffixes: signatures, attestations, SBOMs.
pub const COSIGN_SUFFIXES: [&str; 3] = ["sig", "att", "sbom"];

/// Requests to the source made at once while looking for referrers.
const DISCOVERY_CONCURRENCY: usize = 8;

/// An artifact that refers to a manifest being copied, with what it needs.
#[derive(Clone, Debug)]
pub(crate) struct Referrer {
    /// The digest of the manifest it refers to.
    pub(crate) subject: String,
    /// cosign's tag it is found and pushed under; `None`: found by its `subject`, pushed
    /// by digest and listed in its subject's referrers index.
    pub(crate) tag: Option<String>,
    /// The referrer itself.
    pub(crate) manifest: Manifest,
    /// Its child manifests, when it is an index (an attestation per platform).
    pub(crate) children: Vec<Manifest>,
}

impl Referrer {
    fn manifests(&self) -> impl Iterator<Item = &Manifest> {
        self.children.iter().chain(std::iter::once(&self.manifest))
    }

    /// Where it is pushed and looked for at the destination: cosign's tag, or its digest.
    fn reference(&self) -> Reference {
        match &self.tag {
            Some(tag) => Reference::tag(tag),
            None => Reference::digest(&self.manifest.digest),
        }
    }
}

/// `sha256:<hex>` -> `sha256-<hex>`: the referrers tag schema's tag for a subject.
pub fn fallback_tag(digest: &str) -> String {
    digest.replacen(':', "-", 1)
}

impl CopyEngine {
    /// Every referrer of `subjects` in the source repository (and theirs, recursively)
    /// that the options select, each once, subjects before the artifacts referring to them.
    pub(crate) async fn discover_referrers(
        &self,
        source: &ImageRef,
        subjects: Vec<String>,
    ) -> Result<Vec<Referrer>, RegistryError> {
        let opts = &self.opts.referrers;
        if !opts.enabled {
            return Ok(Vec::new());
        }
        let mut seen: HashSet<String> = subjects.iter().cloned().collect();
        let mut found: Vec<Referrer> = Vec::new();
        let mut level = subjects;
        for _ in 0..MAX_REFERRER_DEPTH {
            if level.is_empty() {
                break;
            }
            let lookups: Vec<_> = level.iter().map(|s| self.referrers_of(source, s)).collect();
            let per_subject: Vec<Vec<Referrer>> = futures::stream::iter(lookups)
                .buffered(DISCOVERY_CONCURRENCY)
                .try_collect()
                .await?;
            level = Vec::new();
            for r in per_subject.into_iter().flatten() {
                if !seen.insert(r.manifest.digest.clone()) {
                    continue;
                }
                level.push(r.manifest.digest.clone());
                found.push(r);
            }
            if found.len() > MAX_REFERRERS_PER_IMAGE {
                return Err(protocol(
                    source,
                    format!("more than {MAX_REFERRERS_PER_IMAGE} referrers: not copied"),
                ));
            }
        }
        Ok(found)
    }

    /// The selected referrers of one subject: by the API or the tag schema, and cosign's.
    async fn referrers_of(
        &self,
        source: &ImageRef,
        subject: &str,
    ) -> Result<Vec<Referrer>, RegistryError> {
        let c = self.registries.as_ref();
        let repository = &source.repository();
        let mut out = Vec::new();
        for (tag, digest) in self.referrer_digests(source, subject).await? {
            let manifest = c
                .get_manifest(repository, &Reference::digest(&digest))
                .await?;
            if !self.opts.referrers.wants(&manifest) {
                continue;
            }
            let children = self.referrer_children(source, &manifest).await?;
            out.push(Referrer {
                subject: subject.to_string(),
                tag,
                manifest,
                children,
            });
        }
        Ok(out)
    }

    /// The digests of one subject's referrers at the source, each with cosign's tag when
    /// found by name (`None`: by its `subject`); those the listing says are of another
    /// type left out early (the manifest is checked again).
    async fn referrer_digests(
        &self,
        source: &ImageRef,
        subject: &str,
    ) -> Result<Vec<(Option<String>, String)>, RegistryError> {
        let c = self.registries.as_ref();
        let (reg, repo) = (source.registry.as_str(), source.repository.as_str());
        let repository = &source.repository();
        let tag_base = fallback_tag(subject);
        // The Referrers API and which of the subject's tags exist, at once: the tags from
        // one listing where the registry's listing can tell (`referrer_tags.rs`); `None`:
        // ask for each with a HEAD.
        let (api, tags) = futures::join!(
            c.referrers(repository, subject, self.opts.referrers.server_filter()),
            self.listings.referrer_tags(c, reg, repo, &tag_base),
        );
        let exists = |t: &str| tags.as_ref().is_none_or(|found| found.contains(t));
        let listed = async {
            match api? {
                Some(list) => Ok(list),
                None if !exists(&tag_base) => Ok(Vec::new()),
                None => {
                    self.tag_schema_index(source, &tag_base, tags.is_some())
                        .await
                }
            }
        };
        let cosign = futures::future::try_join_all(COSIGN_SUFFIXES.iter().map(|suffix| {
            let tag = format!("{tag_base}.{suffix}");
            let wanted = exists(&tag);
            async move {
                if !wanted {
                    return Ok(None);
                }
                let digest = c
                    .head_manifest(repository, &Reference::tag(&tag), false)
                    .await?;
                Ok::<_, RegistryError>(digest.map(|d| (tag, d)))
            }
        }));
        let (listed, cosign) = futures::try_join!(listed, cosign)?;
        let mut wanted: Vec<(Option<String>, String)> = listed
            .into_iter()
            .filter(|d| {
                // Filter early by what the listing says; the manifest is checked again.
                let types = &self.opts.referrers.types;
                types.is_empty()
                    || d.artifact_type.is_none()
                    || d.artifact_type.as_ref().is_some_and(|t| types.contains(t))
            })
            .map(|d| (None, d.digest))
            .collect();
        wanted.extend(cosign.into_iter().flatten().map(|(t, d)| (Some(t), d)));
        Ok(wanted)
    }

    /// What the referrers tag schema's index `tag_base` lists at the source (nothing where
    /// there is no such tag). `known`: a listing says the tag exists, so one GET; else a
    /// HEAD first: most images have no such tag, and a HEAD does not count against pull
    /// quotas (Docker Hub) as a GET does.
    async fn tag_schema_index(
        &self,
        source: &ImageRef,
        tag_base: &str,
        known: bool,
    ) -> Result<Vec<Descriptor>, RegistryError> {
        let c = self.registries.as_ref();
        let repository = &source.repository();
        let index = match known {
            true => Reference::tag(tag_base),
            false => match c
                .head_manifest(repository, &Reference::tag(tag_base), false)
                .await?
            {
                None => return Ok(Vec::new()),
                Some(digest) => Reference::digest(&digest),
            },
        };
        match c.get_manifest(repository, &index).await {
            Ok(index) => Ok(index.children),
            Err(RegistryError::NotFound { .. }) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    /// The child manifests of a referrer that is an index (one level: what tools write).
    async fn referrer_children(
        &self,
        source: &ImageRef,
        m: &Manifest,
    ) -> Result<Vec<Manifest>, RegistryError> {
        let mut children = Vec::new();
        for d in &m.children {
            let child = self
                .registries
                .get_manifest(&source.repository(), &Reference::digest(&d.digest))
                .await?;
            if child.is_index() {
                return Err(protocol(
                    source,
                    format!("referrer {} nests indexes: not supported", m.digest),
                ));
            }
            children.push(child);
        }
        Ok(children)
    }

    /// The referrers the destination repository lacks (a HEAD each, by digest or by
    /// cosign's tag), in the order found.
    async fn missing_referrers<'r>(
        &self,
        referrers: &'r [Referrer],
        target: &Target<'_>,
    ) -> Result<Vec<&'r Referrer>, RegistryError> {
        let checks: Vec<_> = referrers
            .iter()
            .map(|r| {
                let reference = r.reference();
                async move {
                    let at = self
                        .registries
                        .head_manifest(
                            &Repository::new(target.registry, target.repository),
                            &reference,
                            true,
                        )
                        .await?;
                    Ok::<_, RegistryError>((r, at.as_deref() == Some(&r.manifest.digest)))
                }
            })
            .collect();
        let present: Vec<(&Referrer, bool)> = futures::stream::iter(checks)
            .buffered(DISCOVERY_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(present
            .into_iter()
            .filter(|(_, there)| !there)
            .map(|(r, _)| r)
            .collect())
    }

    /// Pushes the referrers the destination lacks (their blobs, children, then themselves),
    /// then brings the referrers tag schema's indexes up to date where the destination has
    /// no Referrers API.
    pub(crate) async fn push_referrers(
        &self,
        source: &ImageRef,
        referrers: &[Referrer],
        target: &Target<'_>,
        counters: &Counters,
    ) -> Result<(), RegistryError> {
        if referrers.is_empty() {
            return Ok(());
        }
        let missing = self.missing_referrers(referrers, target).await?;
        let mut blobs: Vec<&Descriptor> = Vec::new();
        for r in &missing {
            for m in r.manifests() {
                for b in self.blobs_of(m) {
                    if !blobs.iter().any(|x| x.digest == b.digest) {
                        blobs.push(b);
                    }
                }
            }
        }
        self.ensure_blobs(source, target, blobs.into_iter(), counters)
            .await?;
        for r in &missing {
            for child in &r.children {
                let digest = Reference::digest(&child.digest);
                self.put(target, &digest, child, counters).await?;
            }
            self.put(target, &r.reference(), &r.manifest, counters)
                .await?;
            Counters::bump(&counters.referrers, 1);
        }
        self.update_referrers_indexes(referrers, target, counters)
            .await
    }

    /// Dry run: counts the referrers the destination lacks and plans their blobs.
    pub(crate) async fn plan_referrers(
        &self,
        source: &ImageRef,
        referrers: &[Referrer],
        target: &Target<'_>,
        counters: &Counters,
    ) -> Result<(), RegistryError> {
        for r in self.missing_referrers(referrers, target).await? {
            Counters::bump(&counters.referrers, 1);
            for m in r.manifests() {
                Counters::bump(&counters.manifests, 1);
                for b in self.blobs_of(m) {
                    self.plan_one(source, target, b, counters).await?;
                }
            }
        }
        Ok(())
    }

    /// The referrers the destination lacks pushed, or only planned in a dry run.
    pub(crate) async fn sync_referrers(
        &self,
        source: &ImageRef,
        referrers: &[Referrer],
        target: &Target<'_>,
        counters: &Counters,
    ) -> Result<(), RegistryError> {
        if self.opts.dry_run {
            self.plan_referrers(source, referrers, target, counters)
                .await
        } else {
            self.push_referrers(source, referrers, target, counters)
                .await
        }
    }

    /// Where the destination has no Referrers API, merges each subject's `sha256-<hex>`
    /// index with the referrers found for it: entries already listed stay, missing ones
    /// are added, and an index that already lists them all is not written again.
    async fn update_referrers_indexes(
        &self,
        referrers: &[Referrer],
        target: &Target<'_>,
        counters: &Counters,
    ) -> Result<(), RegistryError> {
        let by_subject: Vec<&Referrer> = referrers.iter().filter(|r| r.tag.is_none()).collect();
        let Some(first) = by_subject.first() else {
            return Ok(());
        };
        let c = self.registries.as_ref();
        if self
            .has_referrers_api(target.registry, target.repository, &first.subject)
            .await?
        {
            // The registry indexes a manifest's subject itself when it is pushed.
            return Ok(());
        }
        let mut done: HashSet<&str> = HashSet::new();
        for subject in by_subject.iter().map(|r| r.subject.as_str()) {
            if !done.insert(subject) {
                continue;
            }
            let tag = fallback_tag(subject);
            let mut listed: Vec<serde_json::Value> = match c
                .get_manifest(
                    &Repository::new(target.registry, target.repository),
                    &Reference::tag(&tag),
                )
                .await
            {
                Ok(existing) => {
                    index_entries(&existing).map_err(|why| RegistryError::Protocol {
                        registry: target.registry.to_string(),
                        message: format!(
                            "{}/{}:{tag}: the referrers index there is unreadable: {why}",
                            target.registry, target.repository
                        ),
                    })?
                }
                Err(RegistryError::NotFound { .. }) => Vec::new(),
                Err(e) => return Err(e),
            };
            let before = listed.len();
            for r in by_subject.iter().filter(|r| r.subject == subject) {
                let listed_already = listed
                    .iter()
                    .any(|e| e.get("digest").and_then(|d| d.as_str()) == Some(&r.manifest.digest));
                if !listed_already {
                    listed.push(serde_json::to_value(r.manifest.as_referrer()).map_err(|e| {
                        RegistryError::Config(format!("referrers index entry: {e}"))
                    })?);
                }
            }
            if listed.len() == before {
                continue;
            }
            let doc = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": listed,
            });
            let bytes = serde_json::to_vec(&doc)
                .map_err(|e| RegistryError::Config(format!("referrers index: {e}")))?;
            let index = Manifest::parse(bytes.into(), Some(OCI_INDEX)).map_err(|why| {
                RegistryError::Config(format!("referrers index for {subject}: {why}"))
            })?;
            self.put(target, &Reference::tag(&tag), &index, counters)
                .await?;
        }
        Ok(())
    }

    /// Whether a destination registry answers the Referrers API: asked once per registry
    /// for the engine's life (the client remembers only a "no"), not once per copy.
    async fn has_referrers_api(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
    ) -> Result<bool, RegistryError> {
        let known = self.referrers_api.lock().get(registry).copied();
        if let Some(has) = known {
            return Ok(has);
        }
        let has = self
            .registries
            .referrers(&Repository::new(registry, repository), digest, None)
            .await?
            .is_some();
        self.referrers_api.lock().insert(registry.to_string(), has);
        Ok(has)
    }

    async fn put(
        &self,
        target: &Target<'_>,
        reference: &Reference,
        m: &Manifest,
        counters: &Counters,
    ) -> Result<(), RegistryError> {
        self.registries
            .put_manifest(
                &Repository::new(target.registry, target.repository),
                reference,
                m,
            )
            .await?;
        Counters::bump(&counters.manifests, 1);
        Ok(())
    }
}

/// The entries of an index as JSON values, kept whole (annotations, fields this program
/// does not know), so merging never drops what another tool wrote.
fn index_entries(index: &Manifest) -> Result<Vec<serde_json::Value>, String> {
    let doc: serde_json::Value = serde_json::from_slice(&index.bytes).map_err(|e| e.to_string())?;
    match doc.get("manifests") {
        Some(serde_json::Value::Array(list)) => Ok(list.clone()),
        _ => Err("it has no manifests list".into()),
    }
}
