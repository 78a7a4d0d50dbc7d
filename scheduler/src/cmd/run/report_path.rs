//! `--report FILE` is checked before any work: a path that cannot be written would
//! otherwise be found only after every tag was copied, and the run would end without its
//! report and exit 1 for a typo.

use std::fs::OpenOptions;
use std::path::Path;

use anyhow::{anyhow, Result};

/// Opens `path` for writing without changing it (a file there already keeps its content
/// until the report replaces it; one created for the check is removed again). The error
/// names the path and the reason.
pub(crate) fn check_writable(path: &Path) -> Result<()> {
    let existed = path.exists();
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| {
            anyhow!(
                "--report {}: cannot write the report there: {e}; nothing was copied",
                path.display()
            )
        })?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}
