//! The git commit the binaries are built from, for their `--version`: `MIRROR_GIT_COMMIT`
//! when set (a build from a source tree without `.git`, such as a container build, can pass
//! it), else `git rev-parse --short HEAD`, else `unknown` (no git, or no repository).
//! Built again when HEAD moves: a commit, a checkout, a fetch into packed refs.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MIRROR_GIT_COMMIT");
    let given = std::env::var("MIRROR_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let commit = given
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=MIRROR_GIT_COMMIT={commit}");
    watch_head();
}

/// Asks cargo to run this again when HEAD or the branch it points to changes. Only files
/// that exist are named: cargo runs a build script on every build while a path it
/// watches is missing.
fn watch_head() {
    let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) else {
        return;
    };
    let common = git(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
        .unwrap_or_else(|| git_dir.clone());
    let mut watched = vec![Path::new(&git_dir).join("HEAD")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(Path::new(&common).join(branch));
    }
    watched.push(Path::new(&common).join("packed-refs"));
    for path in watched.into_iter().filter(|p| p.is_file()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// The trimmed output of a successful git command run in this crate's directory.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
