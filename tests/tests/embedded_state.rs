//! The embedded mode's state file (`run --local --state`): a second run trusts what the
//! first one recorded and asks the destination nothing; `--verify` does not trust it; a run
//! killed with `kill -9` leaves a file that is true wherever it speaks; one run per file,
//! the second told which pid holds it; a file that is not a state file, or is newer, stops
//! the run with its path; `status --state` shows the runs, their failures and groups; the
//! history is pruned. Real: docker-registry on loopback, the binaries, SQLite files (read
//! here with rusqlite as an operator would with the sqlite3 tool). Shaped: the paced source
//! of the kill test (the test proxy slows its blobs so the kill lands mid-run).

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use mirror_tests::mirror::{registry_flags, run_binary};
use mirror_tests::test_io::write;
use mirror_tests::*;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// `run --local --state STATE -f FILE` plus `extra`, against `registries`.
fn run_with_state(state: &Path, file: &str, extra: &[&str], registries: &[&Registry]) -> Output {
    let mut args: Vec<String> = ["run", "--local", "--state"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(state.display().to_string());
    args.extend(["-f".to_string(), file.to_string()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(registry_flags(registries));
    run_binary("mirror-scheduler", &args)
}

/// `status --state STATE --json` plus `extra`, parsed.
fn status_json(state: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args: Vec<String> = vec!["status".into(), "--state".into()];
    args.push(state.display().to_string());
    args.push("--json".into());
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = run_binary("mirror-scheduler", &args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).expect("status --json")
}

/// `count` images `repo:0..count` at `src` (a shared base and one small layer each).
async fn seed(src: &Registry, repo: &str, count: usize, own_size: u64) -> Vec<String> {
    let base = Layer::random(20_000);
    let mut digests = Vec::new();
    for i in 0..count {
        let spec = ImageSpec::new(vec![base.clone(), Layer::random(own_size)]);
        let img = push_image(src, repo, &i.to_string(), spec).await.unwrap();
        digests.push(img.digest);
    }
    digests
}

/// A source with `count` images `team/app:0..count`, an empty destination, and in a
/// directory of its own a mapping file of every tag of it into `mirror/app`.
struct Bed {
    src: Registry,
    dst: Registry,
    dir: tempfile::TempDir,
    file: String,
}

async fn bed(count: usize, own_size: u64) -> Bed {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    seed(&src, "team/app", count, own_size).await;
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping",
        &format!("{}/team/app {}/mirror/app\n", src.host(), dst.host()),
    );
    Bed {
        src,
        dst,
        dir,
        file,
    }
}

/// The destination tags a state file vouches for: (registry, repository, tag, digest).
fn vouched(state: &Path) -> Vec<(String, String, String, String)> {
    let db =
        rusqlite::Connection::open_with_flags(state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut q = db
        .prepare("SELECT registry, repository, tag, digest FROM tags")
        .unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The second run of an unchanged set sends the destination no request at all (the state
/// file knows every tag at its digest) and reports every tag up to date; `--verify` HEADs
/// every destination tag again and finds them so.
#[tokio::test]
async fn a_second_run_trusts_the_state_file_and_asks_the_destination_nothing() {
    let Bed {
        src,
        dst,
        dir,
        file,
    } = bed(4, 1_000).await;
    let state = dir.path().join("state.db");
    let first = run_with_state(&state, &file, &[], &[&src, &dst]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stderr(&first).contains("4 tags copied"),
        "{}",
        stderr(&first)
    );
    assert_eq!(vouched(&state).len(), 4);

    let before = dst.requests_from_the_mirror().len();
    let second = run_with_state(&state, &file, &[], &[&src, &dst]);
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("0 tags copied, 4 already up to date"),
        "{}",
        stderr(&second)
    );
    let asked = dst.requests_from_the_mirror().len() - before;
    assert_eq!(asked, 0, "the destination was asked {asked} requests");

    let before = dst.count("HEAD", "/manifests/");
    let verified = run_with_state(&state, &file, &["--verify"], &[&src, &dst]);
    assert!(verified.status.success(), "{}", stderr(&verified));
    assert!(stderr(&verified).contains("4 already up to date"));
    assert!(
        dst.count("HEAD", "/manifests/") - before >= 4,
        "--verify checks every destination tag"
    );
}

/// A run killed with `kill -9` while it copies leaves a state file that vouches only for
/// tags the destination really has at that digest, and marks the run interrupted. A
/// destination tag it does not vouch for, overwritten meanwhile, is repaired by the next
/// run, which completes the set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_way_leaves_a_state_file_that_is_true_where_it_speaks() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let digests = seed(&src, "team/app", 12, 60_000).await;
    let proxy = Proxy::start(&src).await.unwrap();
    proxy.pace("/blobs/", 150_000); // ~0.4 s per image: the kill lands mid-run
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping",
        &format!("{}/team/app {}/mirror/app\n", proxy.host(), dst.host()),
    );
    let state = dir.path().join("state.db");
    let mut args: Vec<String> = ["run", "--local", "--workers", "2", "--state"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(state.display().to_string());
    args.extend(["-f".to_string(), file.clone()]);
    args.extend(registry_flags(&[&src, &dst]));
    args.extend(["--insecure-registry".to_string(), proxy.host()]);
    let mut child = std::process::Command::new(binary("mirror-scheduler"))
        .args(&args)
        .env_remove("MIRROR_STATE")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while vouched_quietly(&state) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no tag recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let vouched = vouched(&state);
    assert!(
        vouched.len() < 12,
        "the kill came too late to test anything"
    );
    for (_, repository, tag, digest) in &vouched {
        let there = manifest_digest(&dst, repository, tag).await.unwrap();
        assert_eq!(
            there.as_deref(),
            Some(digest.as_str()),
            "{repository}:{tag}"
        );
    }
    let status = status_json(&state, &[]);
    assert_eq!(status["runs"][0]["outcome"], "interrupted", "{status}");

    // A tag the file does not vouch for is overwritten with something else.
    let unvouched = (0..12)
        .map(|i| i.to_string())
        .find(|t| !vouched.iter().any(|v| &v.2 == t))
        .unwrap();
    let other = ImageSpec::new(vec![Layer::random(500)]);
    push_image(&dst, "mirror/app", &unvouched, other)
        .await
        .unwrap();

    proxy.pace("/blobs/", 1_000_000_000);
    let out = run_binary("mirror-scheduler", &args);
    assert!(out.status.success(), "{}", stderr(&out));
    for (i, digest) in digests.iter().enumerate() {
        let there = manifest_digest(&dst, "mirror/app", &i.to_string())
            .await
            .unwrap();
        assert_eq!(there.as_deref(), Some(digest.as_str()), "tag {i}");
    }
}

/// How many tags the state file vouches for, 0 while it cannot be read yet.
fn vouched_quietly(state: &Path) -> usize {
    let Ok(db) =
        rusqlite::Connection::open_with_flags(state, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    db.query_row("SELECT count(*) FROM tags", [], |r| r.get::<_, i64>(0))
        .map(|n| n as usize)
        .unwrap_or(0)
}

/// A state file held by another process (here: this test's) stops a run at its start, with
/// the holder's pid, before anything is pushed; once the holder lets go, the run goes.
#[tokio::test]
async fn a_run_on_a_state_file_in_use_fails_naming_the_holder_and_pushes_nothing() {
    let Bed {
        src,
        dst,
        dir,
        file,
    } = bed(1, 500).await;
    let state = dir.path().join("state.db");
    let held = mirror_fleet::state_file::StateFile::open(&state, config()).unwrap();
    let out = run_with_state(&state, &file, &[], &[&src, &dst]);
    assert!(!out.status.success());
    let pid = std::process::id().to_string();
    assert!(
        stderr(&out).contains(&format!("in use by process {pid}")),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(&state.display().to_string()));
    assert!(catalog(&dst).await.unwrap().is_empty(), "nothing pushed");
    drop(held);
    let out = run_with_state(&state, &file, &[], &[&src, &dst]);
    assert!(out.status.success(), "{}", stderr(&out));
}

fn config() -> mirror_fleet::state_file::StateConfig {
    mirror_fleet::state_file::StateConfig {
        tag_max_age: Duration::from_secs(4 * 3600),
        index_ttl: Duration::from_secs(7 * 24 * 3600),
        keep_runs: 500,
        keep_for: Duration::from_secs(30 * 24 * 3600),
    }
}

/// A file that is not a state file, and a state file of a newer schema, each stop the run
/// with the path and what to do; neither is replaced, and nothing is pushed.
#[tokio::test]
async fn a_state_file_that_is_damaged_or_newer_stops_the_run_and_is_left_as_it_was() {
    let Bed {
        src,
        dst,
        dir,
        file,
    } = bed(1, 500).await;
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a_u8; 8192]).unwrap();
    let out = run_with_state(&garbage, &file, &[], &[&src, &dst]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&garbage.display().to_string()), "{err}");
    assert!(err.contains("not a readable state file"), "{err}");
    assert!(err.contains("move it aside"), "{err}");
    assert_eq!(std::fs::read(&garbage).unwrap(), vec![0x5a_u8; 8192]);

    let newer = dir.path().join("newer.db");
    drop(mirror_fleet::state_file::StateFile::open(&newer, config()).unwrap());
    rusqlite::Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let out = run_with_state(&newer, &file, &[], &[&src, &dst]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("written by a newer image-mirror (state schema 99"),
        "{err}"
    );
    assert!(err.contains(&newer.display().to_string()), "{err}");
    assert!(catalog(&dst).await.unwrap().is_empty(), "nothing pushed");
}

/// `status --state` shows each embedded run with its counts, its group and every failed
/// tag with its reason; with no broker named it finds the default state file itself;
/// `--state-keep-runs` prunes the history to the newest runs.
#[tokio::test]
async fn status_shows_embedded_runs_with_their_failures_and_the_history_is_pruned() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    seed(&src, "team/app", 2, 500).await;
    let dir = tempfile::tempdir().unwrap();
    let mappings = dir.path().join("mappings");
    std::fs::create_dir_all(&mappings).unwrap();
    write(
        &mappings,
        "mapping_team",
        &format!(
            "{s}/team/app {d}/mirror/app\n{s}/team/gone:1 {d}/mirror/gone:1\n",
            s = src.host(),
            d = dst.host()
        ),
    );
    let groups = write(
        dir.path(),
        "groups.yaml",
        "groups:\n- name: team\n  prefix: mapping_team\n",
    );
    let home = dir.path().join("home");
    let mut args: Vec<String> = [
        "run", "--local", "--groups", &groups, "--group", "team", "--dir",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(mappings.display().to_string());
    args.extend(registry_flags(&[&src, &dst]));
    // The default location: this HOME's ~/.local/state/image-mirror/state.db.
    let in_home = |args: &[String]| {
        std::process::Command::new(binary("mirror-scheduler"))
            .args(args)
            .env("HOME", &home)
            .env_remove("XDG_STATE_HOME")
            .env_remove("MIRROR_STATE")
            .env_remove("AMQP_URL")
            .output()
            .unwrap()
    };
    let out = in_home(&args);
    assert!(!out.status.success(), "a tag failed: {}", stderr(&out));
    let state = home.join(".local/state/image-mirror/state.db");
    assert!(state.exists(), "the default state file");

    let text = in_home(&["status".to_string()]);
    assert!(text.status.success(), "{}", stderr(&text));
    let text = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(text.contains(&state.display().to_string()), "{text}");
    assert!(text.contains("(group team)"), "{text}");
    assert!(text.contains("2 done, 0 up to date, 1 failed"), "{text}");
    assert!(
        text.contains("failed ") && text.contains("mirror/gone:1"),
        "{text}"
    );

    let json = status_json(&state, &[]);
    let run = &json["runs"][0];
    assert_eq!(run["group"], "team");
    assert_eq!(run["outcome"], "finished");
    assert_eq!(run["failed"], 1);
    assert_eq!(run["failures"][0]["kind"], "not_found", "{json}");

    for _ in 0..2 {
        in_home(&args);
    }
    assert_eq!(
        status_json(&state, &[])["runs"].as_array().unwrap().len(),
        3
    );
    args.extend(["--state-keep-runs".to_string(), "2".to_string()]);
    in_home(&args);
    let runs = status_json(&state, &[])["runs"].as_array().unwrap().len();
    assert_eq!(
        runs, 2,
        "pruned to the newest two (the one just run among them)"
    );
}
