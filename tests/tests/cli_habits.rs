//! The first hour of a user who comes from oc, skopeo or crane, on real registries and the
//! real binaries: plain-HTTP registries as Docker treats them (loopback needs no flag, a
//! port-less `--insecure-registry` names every port, any other plain-HTTP registry fails
//! at once with the flag to pass), the flags those tools' command lines carry (`--insecure`,
//! `--max-registry`, `--authfile`, `--src-tls-verify`/`--dest-tls-verify`, `docker://`,
//! `--platform`), one style for durations with the old spellings still read, help that
//! describes every command and lists only its flags, `--version` with the commit, and the
//! completions and man pages an install writes.
//!
//! A registry that must not look like loopback is reached through this machine's host
//! name (resolved as any name is, never `localhost` nor an IP literal) and a forwarder on
//! the address that name resolves to: the mirror sees a remote-looking `NAME:PORT`, the
//! bytes go to the real docker-registry.

use std::process::Output;
use std::time::{Duration, Instant};

use mirror_tests::mirror::run_binary;
use mirror_tests::test_io::{text, write};
use mirror_tests::*;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A registry reached as `NAME:PORT`, NAME being this machine's host name.
struct RemoteLooking {
    name: String,
    port: u16,
    forwarder: JoinHandle<()>,
}

impl RemoteLooking {
    /// Forwards `NAME:<free port>` to `registry`.
    async fn to(registry: &Registry) -> RemoteLooking {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|n| n.trim().to_string())
            .expect("this machine's host name");
        assert!(
            name != "localhost" && name.parse::<std::net::IpAddr>().is_err(),
            "the host name \"{name}\" looks like loopback; these tests need one that does not"
        );
        let addr = tokio::net::lookup_host((name.as_str(), 0))
            .await
            .ok()
            .and_then(|mut a| a.find(|a| a.is_ipv4()))
            .unwrap_or_else(|| panic!("the host name \"{name}\" does not resolve"));
        let listener = TcpListener::bind((addr.ip(), 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = registry.host();
        let forwarder = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        RemoteLooking {
            name,
            port,
            forwarder,
        }
    }

    fn host(&self) -> String {
        format!("{}:{}", self.name, self.port)
    }
}

impl Drop for RemoteLooking {
    fn drop(&mut self) {
        self.forwarder.abort();
    }
}

fn worker(args: &[&str]) -> Output {
    run_binary(
        "mirror-worker",
        &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    )
}

fn scheduler(args: &[&str]) -> Output {
    run_binary(
        "mirror-scheduler",
        &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    )
}

async fn small_image(registry: &Registry, repo: &str) -> PushedImage {
    push_image(
        registry,
        repo,
        "1",
        ImageSpec::new(vec![Layer::random(2_000)]),
    )
    .await
    .unwrap()
}

/// A plain-HTTP registry that is not loopback and not named fails its request once, not
/// four times over six seconds, with the flag that cures it, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_registry_not_named_insecure_fails_at_once_with_the_flag_to_pass() {
    let reg = Registry::start().await.unwrap();
    let remote = RemoteLooking::to(&reg).await;
    small_image(&reg, "team/app").await;
    let (src, dst) = (
        format!("{}/team/app:1", remote.host()),
        format!("{}/mirror/app:1", remote.host()),
    );
    let started = Instant::now();
    let out = worker(&[
        "copy",
        &src,
        &dst,
        "--retry-attempts",
        "4",
        "--retry-delay",
        "2s",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let hint = format!(
        "this registry speaks plain HTTP; pass --insecure-registry {}",
        remote.host()
    );
    assert!(stderr.contains(&hint), "{stderr}");
    assert!(!stderr.contains("retrying"), "not retried: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(2), "{stderr}");
    assert_eq!(
        manifest_digest(&reg, "mirror/app", "1").await.unwrap(),
        None
    );
}

/// `--insecure-registry NAME` names every port of NAME; `NAME:PORT` only that port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_registry_without_a_port_names_every_port_of_the_host() {
    let reg = Registry::start().await.unwrap();
    let remote = RemoteLooking::to(&reg).await;
    let image = small_image(&reg, "team/app").await;
    let src = format!("{}/team/app:1", remote.host());
    let dst = format!("{}/mirror/app:1", remote.host());
    let other_port = format!("{}:{}", remote.name, remote.port + 1);
    let out = worker(&["copy", &src, &dst, "--insecure-registry", &other_port]);
    assert!(!out.status.success(), "another port is not this one");
    assert!(text(&out.stderr).contains("pass --insecure-registry"));

    let out = worker(&["copy", &src, &dst, "--insecure-registry", &remote.name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        manifest_digest(&reg, "mirror/app", "1").await.unwrap(),
        Some(image.digest)
    );
}

/// Loopback registries (`127.0.0.1`, `localhost`) need no flag, through both binaries, and
/// a TLS registry on loopback is still spoken to over TLS (only its CA given).
#[tokio::test]
async fn loopback_registries_need_no_flag_and_tls_ones_keep_tls() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let tls = Registry::start_with(RegistryOptions {
        tls: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let image = small_image(&src, "team/app").await;
    let from = format!("{}/team/app:1", src.host());
    let to_localhost = format!("localhost:{}/mirror/app:1", dst.port());
    let out = worker(&["copy", &from, &to_localhost]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let to_tls = format!("{}/mirror/app:1", tls.host());
    let ca = tls.ca_file().unwrap().display().to_string();
    let out = worker(&["copy", &from, &to_tls, "--ca-file", &ca]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for r in [&dst, &tls] {
        assert_eq!(
            manifest_digest(r, "mirror/app", "1")
                .await
                .unwrap()
                .as_ref(),
            Some(&image.digest)
        );
    }

    // The scheduler too, with oc's --max-registry (its --workers) on the command line.
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_loopback",
        &format!("{from} localhost:{}/sched/app:1\n", dst.port()),
    );
    let out = scheduler(&["run", "--local", "-f", &file, "--max-registry", "2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        manifest_digest(&dst, "sched/app", "1").await.unwrap(),
        Some(image.digest)
    );
}

/// oc's `--insecure`: every registry may be reached over plain HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oc_insecure_flag_lets_every_registry_speak_plain_http() {
    let reg = Registry::start().await.unwrap();
    let remote = RemoteLooking::to(&reg).await;
    let image = small_image(&reg, "team/app").await;
    let src = format!("{}/team/app:1", remote.host());
    let dst = format!("{}/mirror/app:1", remote.host());
    let out = worker(&["copy", &src, &dst, "--insecure=false"]);
    assert!(!out.status.success());
    // Written before the references, as oc's bool flags are.
    let out = worker(&["copy", "--insecure", "--keep-manifest-list", &src, &dst]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        manifest_digest(&reg, "mirror/app", "1").await.unwrap(),
        Some(image.digest)
    );
}

/// A skopeo command line as written: `--authfile`, `--src-tls-verify=false`,
/// `--dest-tls-verify=false` and `docker://` references; its other transports are refused
/// by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copy_line_works_as_written() {
    let src_reg = Registry::start().await.unwrap();
    let dst_reg = Registry::start_with(RegistryOptions {
        htpasswd: Some(("pusher".into(), "s3cret".into())),
        ..Default::default()
    })
    .await
    .unwrap();
    let (src, dst) = (
        RemoteLooking::to(&src_reg).await,
        RemoteLooking::to(&dst_reg).await,
    );
    let image = small_image(&src_reg, "team/app").await;
    let dir = tempfile::tempdir().unwrap();
    let auth = write_docker_config(dir.path(), &[(dst.host().as_str(), "pusher", "s3cret")])
        .unwrap()
        .display()
        .to_string();
    let from = format!("docker://{}/team/app:1", src.host());
    let to = format!("docker://{}/mirror/app:1", dst.host());
    let out = worker(&["copy", "--authfile", &auth, &from, &to]);
    assert!(!out.status.success(), "TLS is verified unless told");
    let out = worker(&[
        "copy",
        "--authfile",
        &auth,
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        &from,
        &to,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("{} {}/mirror/app:1", image.digest, dst.host())),
        "{stdout}"
    );
    assert_eq!(
        manifest_digest(&dst_reg, "mirror/app", "1").await.unwrap(),
        Some(image.digest)
    );
    let out = worker(&["copy", "oci:/tmp/layout:1", &to]);
    assert!(text(&out.stderr).contains("the oci: transport is not supported"));
}

/// crane's `--platform os/arch`: the copied index keeps that platform only (every variant
/// of it), as `--filter-by-os` with the platform written literally.
#[tokio::test]
async fn crane_platform_flag_keeps_only_that_platform() {
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let index = push_index(
        &src,
        "multi/app",
        "1",
        three_platform_index_spec(),
        Format::Oci,
    )
    .await
    .unwrap();
    let from = format!("{}/multi/app:1", src.host());
    let to = format!("{}/multi/app:1", dst.host());
    let out = worker(&["copy", &from, &to, "--platform", "linux/arm64"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (_, bytes) = get_manifest(&dst, "multi/app", "1").await.unwrap().unwrap();
    let copied: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let platforms: Vec<String> = copied["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            format!("{}/{}/{}", p["os"], p["architecture"], p["variant"]).replace('"', "")
        })
        .collect();
    assert_eq!(platforms, ["linux/arm64/v8"]);
    assert_eq!(index.children.len(), 3);
    let out = worker(&["copy", &from, &to, "--platform", "linux"]);
    assert!(text(&out.stderr).contains("expected os/arch[/variant]"));
}

/// Durations are written with a unit on every time flag; the old spellings still work and
/// say how to write them now; a number without a unit is refused where it never meant
/// anything.
#[tokio::test]
async fn old_time_flags_still_work_and_say_how_to_write_them_now() {
    let src = Registry::start().await.unwrap();
    small_image(&src, "team/app").await;
    let from = format!("{}/team/app:1", src.host());
    let to = format!("{}/copy/app:1", src.host());
    let out = worker(&["copy", &from, &to, "--retry-delay-ms", "50"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--retry-delay-ms is deprecated; use --retry-delay 50ms"),
        "{stderr}"
    );
    let out = worker(&["copy", &from, &to, "--retry-delay", "50ms"]);
    assert!(out.status.success() && !text(&out.stderr).contains("deprecated"));
    let out = worker(&["copy", &from, &to, "--retry-delay", "50"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--retry-delay"));

    // --grace took seconds: a bare number still does (the broker URL fails the run
    // before anything is reached).
    let out = worker(&["run", "--grace", "10", "--amqp", "notaurl"]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--grace 10 (seconds without a unit) is deprecated; write --grace 10s"),
        "{stderr}"
    );
    assert!(stderr.contains("invalid broker URL"), "{stderr}");
    let out = worker(&["run", "--grace", "10s", "--amqp", "notaurl"]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("invalid broker URL") && !stderr.contains("deprecated"));
}

/// Commands of a binary, as paths of subcommand names.
const SCHEDULER_COMMANDS: [&[&str]; 11] = [
    &[],
    &["validate"],
    &["run"],
    &["status"],
    &["dead-letters"],
    &["dead-letters", "list"],
    &["dead-letters", "requeue"],
    &["dead-letters", "purge"],
    &["import-prow"],
    &["completions"],
    &["man"],
];
const WORKER_COMMANDS: [&[&str]; 5] = [&[], &["copy"], &["run"], &["completions"], &["man"]];

/// Flags a command must not list, and flags it must.
fn expected_flags(binary: &str, command: &[&str]) -> (Vec<&'static str>, Vec<&'static str>) {
    let registry = ["--registry-config", "--insecure-registry", "--filter-by-os"];
    let broker = ["--amqp", "--queue-prefix", "--redis"];
    let ttl = ["--index-ttl", "--tag-cache-max-age", "--lease-ttl"];
    let mut absent: Vec<&str> = vec!["--retry-delay-ms"];
    let mut present: Vec<&str> = vec!["--help"];
    match (binary, command) {
        ("mirror-scheduler", ["status"]) => {
            absent.extend(["--workers", "--local", "--credentials-dir"]);
            absent.extend(registry.iter().chain(&ttl));
            present.extend(["--amqp", "--redis", "--management-url"]);
        }
        ("mirror-scheduler", ["run"]) => {
            present.extend(["--max-registry", "--insecure", "--platform", "--authfile"]);
            present.extend(["--credentials-dir", "--retry-delay", "--amqp"]);
        }
        ("mirror-scheduler", ["dead-letters", ..]) => {
            absent.extend(["--redis", "--workers", "--registry-config"]);
            present.push("--amqp");
        }
        ("mirror-worker", ["copy"]) => {
            absent.extend(broker.iter().chain(&ttl));
            absent.extend(["--credentials-dir", "--concurrency", "--grace", "--workers"]);
            present.extend(["--authfile", "--src-tls-verify", "--dest-tls-verify"]);
            present.extend(["--platform", "--insecure"]);
        }
        ("mirror-worker", ["run"]) => {
            present.extend(["--grace", "--credentials-dir", "--max-per-registry"]);
            // What to copy travels in each job: the worker refuses these (hidden).
            absent.extend([
                "--force",
                "--filter-by-os",
                "--keep-manifest-list",
                "--referrers",
            ]);
        }
        (_, []) => {}
        _ => {
            absent.extend(registry.iter().chain(&broker).chain(&ttl));
            absent.push("--workers");
        }
    }
    (absent, present)
}

/// Every command says in one line what it does, and lists only the flags it uses.
#[test]
fn every_command_has_a_description_and_lists_only_its_own_flags() {
    let all = SCHEDULER_COMMANDS
        .iter()
        .map(|c| ("mirror-scheduler", *c))
        .chain(WORKER_COMMANDS.iter().map(|c| ("mirror-worker", *c)));
    for (binary, command) in all {
        let mut args: Vec<String> = command.iter().map(|s| s.to_string()).collect();
        args.push("--help".into());
        let out = run_binary(binary, &args);
        let help = text(&out.stdout);
        assert!(
            out.status.success(),
            "{binary} {args:?}: {}",
            text(&out.stderr)
        );
        let first = help.lines().next().unwrap_or("");
        assert!(
            first.len() > 10 && !first.starts_with("Usage"),
            "{binary} {command:?} has no description: {help}"
        );
        let listed: Vec<&str> = help
            .split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
            .filter(|w| w.starts_with("--"))
            .collect();
        let (absent, present) = expected_flags(binary, command);
        for flag in absent {
            assert!(
                !listed.contains(&flag),
                "{binary} {command:?} lists {flag}: {help}"
            );
        }
        for flag in present {
            assert!(
                listed.contains(&flag),
                "{binary} {command:?} lacks {flag}: {help}"
            );
        }
        for line in help.lines().skip_while(|l| *l != "Commands:").skip(1) {
            if line.is_empty() {
                break;
            }
            assert!(
                line.trim().split_once("  ").is_some(),
                "{binary} {command:?}: a command without a description: {line}"
            );
        }
    }
}

/// `--version` names the version and the commit the binary was built from.
#[test]
fn version_names_the_version_and_the_commit() {
    let repo = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let git = std::process::Command::new("git")
        .args(["-C", repo, "rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    for binary in ["mirror-scheduler", "mirror-worker"] {
        let out = run_binary(binary, &["--version".to_string()]);
        let line = text(&out.stdout);
        let rest = line
            .trim()
            .strip_prefix(&format!("{binary} {} (commit ", env!("CARGO_PKG_VERSION")))
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or_else(|| panic!("{binary} --version: {line}"));
        match &git {
            None => assert_eq!(rest, "unknown", "no git here: {line}"),
            Some(_) => {
                let known = std::process::Command::new("git")
                    .args(["-C", repo, "cat-file", "-e", &format!("{rest}^{{commit}}")])
                    .status()
                    .unwrap();
                assert!(
                    known.success(),
                    "{binary} --version names no commit: {line}"
                );
            }
        }
    }
}

/// What an install script writes: completion scripts for the usual shells and a man page
/// per command.
#[test]
fn completions_and_man_pages_are_generated_for_an_install() {
    for (binary, commands) in [
        ("mirror-scheduler", &SCHEDULER_COMMANDS[..]),
        ("mirror-worker", &WORKER_COMMANDS[..]),
    ] {
        for shell in ["bash", "zsh", "fish"] {
            let out = run_binary(binary, &["completions".to_string(), shell.to_string()]);
            let script = text(&out.stdout);
            assert!(out.status.success(), "{}", text(&out.stderr));
            assert!(
                script.contains(binary) && script.contains("log-format"),
                "{binary} completions {shell}: {script}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let man = dir.path().join("man1");
        let out = run_binary(binary, &["man".to_string(), man.display().to_string()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        for command in commands {
            let name = std::iter::once(binary)
                .chain(command.iter().copied())
                .collect::<Vec<_>>()
                .join("-");
            let page = std::fs::read_to_string(man.join(format!("{name}.1")))
                .unwrap_or_else(|e| panic!("{name}.1: {e}"));
            assert!(page.contains(".TH"), "{name}.1: {page}");
        }
    }
}

/// `source <(mirror-scheduler completions bash)` completes past the first word: the
/// script is sourced in a real bash and its completion function run as bash runs it on
/// TAB after `mirror-scheduler run --wa` (clap-rs/clap#6421 made that complete nothing
/// for a hyphenated binary name).
#[test]
fn bash_completion_completes_the_flags_of_a_subcommand() {
    for (binary, words, expected) in [
        ("mirror-scheduler", "run --wa", "--wait"),
        ("mirror-scheduler", "dead-letters req", "requeue"),
        ("mirror-worker", "run --concur", "--concurrency"),
    ] {
        let out = run_binary(binary, &["completions".to_string(), "bash".to_string()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let dir = tempfile::tempdir().unwrap();
        let script = write(dir.path(), "completion.bash", &text(&out.stdout));
        let function = format!("_{}", binary.replace('-', "__"));
        let words: Vec<&str> = std::iter::once(binary).chain(words.split(' ')).collect();
        let cword = words.len() - 1;
        let program = format!(
            "source {script}\nCOMP_WORDS=({})\nCOMP_CWORD={cword}\n{function} {binary} {} {}\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            words.join(" "),
            words[cword],
            words[cword - 1],
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &program])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let completions = text(&out.stdout);
        assert!(
            completions.lines().any(|l| l == expected),
            "{binary} {}<TAB> completes to {completions:?}, not {expected}",
            words[1..].join(" ")
        );
    }
}

/// Log lines as a CronJob's or a redirected run's reader sees them (stderr a file): text
/// without colour codes unless JSON is asked for, and then JSON to the last line, the
/// error the process ends on included. Real: the worker against an unreachable Redis (a
/// warning log event) and a taken `--listen` port (the error it exits on).
#[test]
fn logs_are_text_without_colour_unless_json_is_asked_and_json_is_never_mixed() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let run = |format: Option<&str>| {
        let mut args: Vec<String> = ["run", "--listen", &addr, "--redis", "redis://127.0.0.1:9"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(f) = format {
            args.extend(["--log-format".to_string(), f.to_string()]);
        }
        let out = mirror_tests::mirror::run_binary_with_env(
            "mirror-worker",
            &args,
            &[("RUST_LOG".to_string(), "info".into())],
        );
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        text(&out.stderr)
    };
    for format in [None, Some("auto"), Some("text")] {
        let log = run(format);
        assert!(log.contains("Redis is unavailable"), "{format:?}: {log}");
        assert!(log.contains("error: --listen"), "{format:?}: {log}");
        assert!(
            !log.contains('\u{1b}'),
            "{format:?}: colour codes in {log:?}"
        );
        assert!(
            log.lines().all(|l| !l.trim_start().starts_with('{')),
            "{format:?}: JSON in a text log: {log}"
        );
    }
    let log = run(Some("json"));
    let mut messages = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        messages.push(v["message"].as_str().unwrap_or_default().to_string());
    }
    assert!(
        messages.iter().any(|m| m.starts_with("error: --listen")),
        "{log}"
    );
}

/// The blob line of a summary, up to its first `;`: counts and sizes.
fn blob_counts(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("blobs: "))
        .unwrap_or_else(|| panic!("no blobs line in: {stderr}"));
    line.split(';').next().unwrap_or_default().to_string()
}

/// One tag copied reads "1 tag", in `copy` and `run` alike, and both print the bytes they
/// moved in the same units (they used to print a byte count and KiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_one_tag_says_one_tag_and_prints_sizes_as_run_does() {
    let src = Registry::start().await.unwrap();
    let (by_copy, by_run) = (
        Registry::start().await.unwrap(),
        Registry::start().await.unwrap(),
    );
    push_image(
        &src,
        "team/app",
        "1",
        ImageSpec::new(vec![Layer::random(5_000)]),
    )
    .await
    .unwrap();
    let from = format!("{}/team/app:1", src.host());
    let copied = worker(&["copy", &from, &format!("{}/team/app:1", by_copy.host())]);
    let copy_err = text(&copied.stderr);
    assert!(copied.status.success(), "{copy_err}");
    assert!(
        copy_err.contains("1 tag: 1 pushed") && !copy_err.contains("1 tags"),
        "{copy_err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "mapping_one",
        &format!("{from} {}/team/app:1\n", by_run.host()),
    );
    let ran = scheduler(&["run", "--local", "-f", &file]);
    let run_err = text(&ran.stderr);
    assert!(ran.status.success(), "{run_err}");
    assert!(
        run_err.contains("1 file (0 rejected), 1 job for 1 tag")
            && run_err.contains("1 tag copied")
            && !run_err.contains("1 tags"),
        "{run_err}"
    );
    let (copy_blobs, run_blobs) = (blob_counts(&copy_err), blob_counts(&run_err));
    assert!(copy_blobs.contains(" KiB)"), "{copy_blobs}");
    assert_eq!(copy_blobs, run_blobs, "the same blobs, said the same way");
}
