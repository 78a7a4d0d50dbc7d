//! The planner's first pass: every file read, its glob and tag-less sources listed and its
//! lines expanded, a few hundred files at a time, to learn what only the whole set can
//! tell: which files are rejected (unreadable, a bad line, a source that cannot be listed,
//! a destination tag given twice in the file), and which file gives each destination tag
//! last (that file wins, as when `oc image mirror -f` runs once per file in order).
//!
//! What is kept is compact, so the run's memory does not grow with its tags: 16 bytes per
//! destination tag for "which file and line gives it last", the tag lists of listed
//! repositories (the second pass expands with them; a repository is listed once per run),
//! and the rejected files and superseded mappings to report. No mapping is kept: the
//! second pass ([`Planner`](super::Planner)) reads the files again, batch by batch.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use super::expand::{expand, list_new_repos, Listed};
use super::limits::RegistryLimits;
use crate::mapping::destinations::key_hash;
use crate::mapping::{
    check_expanded_duplicates, load_file, Mapping, MappingError, MappingSet, Origin, Superseded,
};
use crate::registry::Registries;

/// Files read, listed and expanded together in the first pass: enough sources to keep the
/// listings concurrent, few enough that their mappings take little memory.
const SURVEY_FILES: usize = 256;

/// What the first pass learnt about the set.
pub(super) struct Survey {
    /// The files, rejections and superseded mappings (no mappings: see the module doc).
    pub(super) set: MappingSet,
    /// Indices (in `set.files`) of the rejected files.
    pub(super) rejected: HashSet<usize>,
    /// For each destination tag ([`key_hash`]), the file (index) and line that gives it last.
    pub(super) last_given: HashMap<u64, (u32, u32)>,
    /// The listed repositories' tags.
    pub(super) listed: Listed,
}

impl Survey {
    /// True when the destination tag of `hash` is given last by file `file`.
    pub(super) fn wins(&self, hash: u64, file: usize) -> bool {
        self.last_given.get(&hash).map(|&(f, _)| f as usize) == Some(file)
    }
}

/// The first pass over `files` (see the module doc).
pub(super) async fn survey(
    files: &[PathBuf],
    client: &dyn Registries,
    limits: &RegistryLimits,
) -> Survey {
    let mut survey = Survey {
        set: MappingSet {
            files: files.to_vec(),
            ..MappingSet::default()
        },
        rejected: HashSet::new(),
        last_given: HashMap::new(),
        listed: Listed::new(),
    };
    for (n, chunk) in files.chunks(SURVEY_FILES).enumerate() {
        let mut loaded: Vec<(usize, Vec<Mapping>)> = Vec::new();
        for (k, file) in chunk.iter().enumerate() {
            let index = n * SURVEY_FILES + k;
            let (lines, parsed) = load_file(file);
            survey.set.lines += lines;
            match parsed {
                Ok(mappings) => loaded.push((index, mappings)),
                Err(errors) => survey.reject(index, errors),
            }
        }
        let mappings = loaded.iter().flat_map(|(_, m)| m);
        list_new_repos(mappings, &mut survey.listed, client, limits).await;
        for (index, mappings) in loaded {
            survey.take(index, &mappings);
        }
    }
    survey
}

impl Survey {
    /// Expands one accepted file's mappings and records the destination tags it gives
    /// (superseding earlier files'), or rejects it.
    fn take(&mut self, index: usize, mappings: &[Mapping]) {
        let (entries, errors) = expand(mappings, &self.listed);
        let errors = match errors.is_empty() {
            true => check_expanded_duplicates(entries.iter().map(|e| (&e.destination, &e.origin))),
            false => errors,
        };
        if !errors.is_empty() {
            self.reject(index, errors);
            return;
        }
        let file = u32::try_from(index).unwrap_or(u32::MAX);
        for e in &entries {
            let Some(hash) = key_hash(&e.destination) else {
                continue;
            };
            let line = u32::try_from(e.origin.line).unwrap_or(u32::MAX);
            if let Some((before, at)) = self.last_given.insert(hash, (file, line)) {
                self.set.superseded.push(Superseded {
                    destination: e.destination.to_string(),
                    mapping: Origin::new(self.set.files[before as usize].clone(), at as usize),
                    by: e.origin.clone(),
                });
            }
        }
    }

    fn reject(&mut self, index: usize, errors: Vec<MappingError>) {
        self.rejected.insert(index);
        self.set
            .rejected
            .push((self.set.files[index].clone(), errors));
    }
}
