//! Docker `config.json` credential files.
//!
//! Why: the mirror reads registry credentials the way docker and skopeo do,
//! so tests hand it a real `config.json` rather than a bespoke format.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::{json, Map, Value};

/// Writes `dir/config.json` as `{"auths": {"HOST": {"auth": base64(user:pass)}}}`
/// for each `(host, user, pass)` and returns its path.
pub fn write_docker_config(dir: &Path, entries: &[(&str, &str, &str)]) -> Result<PathBuf> {
    let mut auths = Map::new();
    for (host, user, pass) in entries {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        auths.insert((*host).to_string(), json!({ "auth": auth }));
    }
    let config = json!({ "auths": Value::Object(auths) });
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("config.json");
    let text = serde_json::to_string_pretty(&config).context("serialising config.json")?;
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
