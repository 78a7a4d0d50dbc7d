//! Paths of the workspace's binaries, built on first use.
//!
//! Why: end-to-end tests run the real `mirror-worker` and `mirror-scheduler`
//! processes, but `cargo test -p mirror-tests` does not build other packages'
//! binaries. So the first call builds them into the same target directory and
//! profile as the running test executable.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The packages whose binaries [`binary`] builds.
const PACKAGES: [&str; 2] = ["mirror-worker", "mirror-scheduler"];

/// The path of workspace binary `name` (e.g. `mirror-worker`), building the
/// workspace binaries once per test process.
///
/// # Panics
/// When the build fails (with cargo's output) or the binary is still missing.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let profile_dir = match BUILT.get_or_init(build) {
        Ok(dir) => dir,
        Err(message) => panic!("{message}"),
    };
    let path = profile_dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} does not exist after building the workspace binaries",
        path.display()
    );
    path
}

/// `target/<profile>` of the running test executable (`target/<profile>/deps/x`).
fn profile_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let deps = exe.parent().ok_or("test executable has no parent")?;
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().ok_or("deps has no parent")?
    } else {
        deps
    };
    Ok(dir.to_path_buf())
}

/// Runs `$CARGO build --bins -p mirror-worker -p mirror-scheduler` for the
/// test executable's profile and target directory.
fn build() -> Result<PathBuf, String> {
    let profile_dir = profile_dir()?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("profile directory has no name")?
        .to_string();
    let target_dir = profile_dir
        .parent()
        .ok_or("profile directory has no parent")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--bins")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir);
    for package in PACKAGES {
        cmd.args(["-p", package]);
    }
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let output = cmd
        .output()
        .map_err(|e| format!("running {cargo:?} build: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the workspace binaries failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(profile_dir)
}
