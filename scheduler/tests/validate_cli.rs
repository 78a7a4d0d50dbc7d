//! `mirror-scheduler validate` as a user runs it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn validate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mirror-scheduler"))
        .arg("validate")
        .args(args)
        .env_remove("MAPPING_FILE_PREFIX")
        .output()
        .expect("run mirror-scheduler")
}

/// The real mapping files beside the repository; missing fixtures fail the test (a skip
/// would read as a pass).
fn fixture_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mappings");
    assert!(dir.is_dir(), "no fixture directory at {}", dir.display());
    dir
}

/// A fresh directory under cargo's per-target temporary directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("validate_cli-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn fixture_directory_is_valid() {
    let dir = fixture_dir();
    let out = validate(&[dir.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "validated 6 files: 378 lines, 352 mappings, 629 destinations, 0 errors, 0 files rejected, 0 warnings\n"
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn fixture_prefix_selection_is_valid() {
    let dir = fixture_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_mirror-scheduler"))
        .args(["validate", "--dir", dir.to_str().expect("utf-8 path")])
        .env("MAPPING_FILE_PREFIX", "mapping_origin")
        .output()
        .expect("run mirror-scheduler");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .starts_with("validated 1 file: 210 lines, 210 mappings, 420 destinations, 0 errors"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn environment_prefix_does_not_disturb_plain_files() {
    let dir = temp_dir("env");
    let good = dir.join("mapping_good");
    fs::write(&good, "quay.io/a/b:1 quay.io/c/d:1\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_mirror-scheduler"))
        .args(["validate", "-f", good.to_str().expect("utf-8 path")])
        .env("MAPPING_FILE_PREFIX", "mapping_origin")
        .output()
        .expect("run mirror-scheduler");
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
}

#[test]
fn bad_line_fails_with_file_and_line() {
    let dir = temp_dir("bad");
    let bad = dir.join("mapping_bad");
    let digest = format!("sha256:{}", "a".repeat(64));
    fs::write(
        &bad,
        format!("# ok\nquay.io/a/b:1 quay.io/c/d:1\nquay.io/a/b:2 quay.io/c/d@{digest}\n"),
    )
    .expect("write");
    let good = dir.join("mapping_good");
    fs::write(&good, "quay.io/a/b:3 quay.io/c/d:3").expect("write");
    let out = validate(&[
        "-f",
        bad.to_str().expect("utf-8 path"),
        good.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}:3: destination \"quay.io/c/d@{digest}\" has a digest; destinations must be registry/repo[:tag]\n",
            bad.display()
        )),
        "{stderr}"
    );
    assert_eq!(
        text(&out.stdout),
        "validated 2 files: 4 lines, 1 mapping, 1 destination, 1 error, 1 file rejected, 0 warnings\n"
    );
}

#[test]
fn missing_path_and_unmatched_prefix_are_errors_naming_them() {
    let out = validate(&["no/such/mapping_file"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("\"no/such/mapping_file\""),
        "{}",
        text(&out.stderr)
    );
    let dir = temp_dir("prefix");
    let out = validate(&[
        "--dir",
        dir.to_str().expect("utf-8 path"),
        "--prefix",
        "mapping_zzz",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("\"mapping_zzz\""),
        "{}",
        text(&out.stderr)
    );
    let out = validate(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no mapping file given"),
        "{}",
        text(&out.stderr)
    );
}

/// The migration path: the groups `import-prow` makes from the Prow fixture validate against
/// the real mapping directory with no error (files no group selects are warnings), and a
/// broken groups file names the group at fault.
#[test]
fn groups_imported_from_prow_validate_against_the_mapping_directory() {
    let prow = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/prow/image-mirroring-periodics.yaml");
    let imported = Command::new(env!("CARGO_BIN_EXE_mirror-scheduler"))
        .arg("import-prow")
        .arg(&prow)
        .output()
        .unwrap();
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let dir = temp_dir("groups");
    let groups = dir.join("groups.yaml");
    fs::write(&groups, &imported.stdout).unwrap();
    let mappings = fixture_dir();
    let out = validate(&[
        "--groups",
        groups.to_str().unwrap(),
        "--dir",
        mappings.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout)
            .contains("group openshift: 1 file, 210 mappings, 420 destinations, 0 errors"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).ends_with("validated 5 groups: 0 errors, 5 warnings\n"));

    let broken = dir.join("broken.yaml");
    fs::write(
        &broken,
        "groups:\n- name: team-a\n  prefix: mapping_origin\n  schedule: every hour\n",
    )
    .unwrap();
    let out = validate(&[
        "--groups",
        broken.to_str().unwrap(),
        "--dir",
        mappings.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("group \"team-a\": schedule \"every hour\""),
        "{}",
        text(&out.stderr)
    );
}
