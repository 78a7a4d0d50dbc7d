//! Named credentials: one docker config per name in a directory, the way Kubernetes mounts
//! Secrets (`DIR/NAME/config.json`, or `DIR/NAME/.dockerconfigjson` for a Secret of type
//! `kubernetes.io/dockerconfigjson`). A job names the credentials it pushes with; the
//! secret itself never travels.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::credentials::CredentialStore;
use super::error::RegistryError;

/// The file names a Secret's docker config may have, in the order looked for.
const FILE_NAMES: [&str; 2] = ["config.json", ".dockerconfigjson"];

/// A directory of named docker configs.
#[derive(Clone, Debug)]
pub struct CredentialsDir {
    dir: PathBuf,
}

/// One name's config as found on disk, with when it last changed (a rotated Secret is a
/// new modification time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located {
    /// The config file.
    pub path: PathBuf,
    /// Its modification time.
    pub modified: SystemTime,
}

impl CredentialsDir {
    /// Named configs under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CredentialsDir { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where `name`'s config is now; an error naming the name and the directory when it
    /// has none (or the name could step out of the directory).
    pub fn locate(&self, name: &str) -> Result<Located, RegistryError> {
        let plain = !name.is_empty()
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !plain {
            return Err(RegistryError::Config(format!(
                "credentials \"{name}\": not a credentials name"
            )));
        }
        for file in FILE_NAMES {
            let path = self.dir.join(name).join(file);
            // Kubernetes mounts Secret files through symlinks: follow them.
            if let Ok(meta) = std::fs::metadata(&path) {
                let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                return Ok(Located { path, modified });
            }
        }
        Err(RegistryError::Config(format!(
            "credentials \"{name}\": this worker has no {}/{name}/config.json (or .dockerconfigjson)",
            self.dir.display()
        )))
    }

    /// `name`'s credentials, as found now.
    pub fn load(&self, name: &str) -> Result<(Located, CredentialStore), RegistryError> {
        let found = self.locate(name)?;
        let store = CredentialStore::from_file(&found.path)?;
        Ok((found, store))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_found_as_config_json_or_dockerconfigjson_and_never_outside_the_dir() {
        let dir = tempfile::tempdir().unwrap();
        let creds = CredentialsDir::new(dir.path());
        std::fs::create_dir_all(dir.path().join("team-a")).unwrap();
        std::fs::write(
            dir.path().join("team-a/.dockerconfigjson"),
            r#"{"auths":{}}"#,
        )
        .unwrap();
        assert!(creds.load("team-a").is_ok());
        let missing = creds.locate("team-b").unwrap_err().to_string();
        assert!(
            missing.contains("credentials \"team-b\": this worker has no"),
            "{missing}"
        );
        assert!(creds.locate("../etc").is_err());
        assert!(creds.locate("..").is_err());
    }
}
