//! Which mapping files a run reads.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use super::error::SelectError;

/// The mapping files of a run, in order:
/// 1. each of `filenames` in the order given (oc's `-f PATH`); a directory stands for every
///    regular file in it (symbolic links followed, names starting with `.` skipped), sorted
///    by name;
/// 2. then, with `dir` and `prefix` (the cron job's `MAPPING_FILE_PREFIX`), every regular
///    file in `dir` whose name starts with `prefix`, sorted by name (`mapping_origin`
///    selects `mapping_origin_4_16` and `mapping_origin_scos-5_1`).
///
/// A file selected twice is kept once, at its first place. Paths are kept as given (joined
/// with the directory for directory entries), so relative paths stay relative. A missing
/// path, an empty directory, a prefix that matches nothing, `dir` without `prefix` or the
/// reverse, or nothing at all is an error that names the path or prefix.
pub fn select_files(
    filenames: &[PathBuf],
    dir: Option<&Path>,
    prefix: Option<&str>,
) -> Result<Vec<PathBuf>, SelectError> {
    let mut selected = Vec::new();
    for path in filenames {
        let meta = fs::metadata(path).map_err(|error| SelectError::Missing {
            path: path.clone(),
            error,
        })?;
        if meta.is_dir() {
            let files = list_files(path, |name| !name.starts_with(b"."))?;
            if files.is_empty() {
                return Err(SelectError::EmptyDir(path.clone()));
            }
            selected.extend(files);
        } else if meta.is_file() {
            selected.push(path.clone());
        } else {
            return Err(SelectError::NotAFile(path.clone()));
        }
    }
    match (dir, prefix) {
        (Some(dir), Some(prefix)) => {
            if prefix.is_empty() {
                return Err(SelectError::EmptyPrefix);
            }
            fs::metadata(dir).map_err(|error| SelectError::Missing {
                path: dir.to_path_buf(),
                error,
            })?;
            let files = list_files(dir, |name| name.starts_with(prefix.as_bytes()))?;
            if files.is_empty() {
                return Err(SelectError::NoMatch {
                    dir: dir.to_path_buf(),
                    prefix: prefix.to_string(),
                });
            }
            selected.extend(files);
        }
        (Some(dir), None) => return Err(SelectError::DirWithoutPrefix(dir.to_path_buf())),
        (None, Some(prefix)) => return Err(SelectError::PrefixWithoutDir(prefix.to_string())),
        (None, None) => {}
    }
    if selected.is_empty() {
        return Err(SelectError::NothingGiven);
    }
    let mut seen = HashSet::new();
    selected.retain(|p| seen.insert(fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(selected)
}

/// The regular files (after following symbolic links) of `dir` whose name passes `keep`,
/// sorted by name. A symbolic link that leads nowhere (dangling, or a loop) is kept: it
/// names a mapping file that was meant to be read, so reading it fails and rejects it with
/// its path and why, instead of the file vanishing from the run without a word.
fn list_files(dir: &Path, keep: impl Fn(&[u8]) -> bool) -> Result<Vec<PathBuf>, SelectError> {
    let read_dir_error = |error| SelectError::ReadDir {
        path: dir.to_path_buf(),
        error,
    };
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_dir_error)? {
        let entry = entry.map_err(read_dir_error)?;
        let name = entry.file_name();
        if !keep(name.as_encoded_bytes()) {
            continue;
        }
        let path = dir.join(&name);
        // A directory is not a mapping file; an entry removed meanwhile is gone.
        let broken_link = fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink())
            && fs::metadata(&path).is_err();
        if broken_link || fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            names.push(name);
        }
    }
    names.sort();
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, "").unwrap();
        p
    }

    #[test]
    fn directory_means_every_regular_file_sorted_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        touch(d, "mapping_b");
        touch(d, "mapping_a");
        touch(d, ".hidden");
        fs::create_dir(d.join("sub")).unwrap();
        let files = select_files(&[d.to_path_buf()], None, None).unwrap();
        assert_eq!(files, [d.join("mapping_a"), d.join("mapping_b")]);
    }

    #[test]
    fn filenames_keep_their_order_and_duplicates_are_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let b = touch(d, "b");
        let a = touch(d, "a");
        let files = select_files(&[b.clone(), a.clone(), b.clone()], None, None).unwrap();
        assert_eq!(files, [b, a]);
    }

    #[test]
    fn prefix_selects_files_whose_name_starts_with_it() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        touch(d, "mapping_origin_4_16");
        touch(d, "mapping_origin_scos-5_1");
        touch(d, "mapping_ocp_4_16");
        fs::create_dir(d.join("mapping_origin_dir")).unwrap();
        let files = select_files(&[], Some(d), Some("mapping_origin")).unwrap();
        assert_eq!(
            files,
            [
                d.join("mapping_origin_4_16"),
                d.join("mapping_origin_scos-5_1")
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_to_files_count_as_files() {
        // Kubernetes mounts ConfigMap keys as links into a `..data` directory.
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::create_dir(d.join("..data")).unwrap();
        touch(&d.join("..data"), "mapping_a");
        std::os::unix::fs::symlink("..data/mapping_a", d.join("mapping_a")).unwrap();
        std::os::unix::fs::symlink("..data/gone", d.join("mapping_b")).unwrap();
        let files = select_files(&[d.to_path_buf()], None, None).unwrap();
        // The dangling one is selected too, to be rejected by name when it is read.
        assert_eq!(files, [d.join("mapping_a"), d.join("mapping_b")]);
    }

    #[test]
    fn missing_path_is_an_error_naming_it() {
        let e = select_files(&[PathBuf::from("no/such/mapping_x")], None, None).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("mapping path \"no/such/mapping_x\": "),
            "{msg}"
        );
        assert!(
            msg.ends_with("; expected a mapping file or a directory of mapping files"),
            "{msg}"
        );
    }

    #[test]
    fn prefix_matching_nothing_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        touch(tmp.path(), "mapping_ocp");
        let e = select_files(&[], Some(tmp.path()), Some("mapping_origin")).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "no file in directory \"{}\" has a name starting with \"mapping_origin\"",
                tmp.path().display()
            )
        );
    }

    #[test]
    fn incomplete_selection_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(matches!(
            select_files(&[], Some(tmp.path()), None),
            Err(SelectError::DirWithoutPrefix(_))
        ));
        assert!(matches!(
            select_files(&[], None, Some("mapping_")),
            Err(SelectError::PrefixWithoutDir(_))
        ));
        assert!(matches!(
            select_files(&[], None, None),
            Err(SelectError::NothingGiven)
        ));
        assert!(matches!(
            select_files(&[tmp.path().to_path_buf()], None, None),
            Err(SelectError::EmptyDir(_))
        ));
        assert!(matches!(
            select_files(&[], Some(tmp.path()), Some("")),
            Err(SelectError::EmptyPrefix)
        ));
    }
}
