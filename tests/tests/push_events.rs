//! Registry notifications drive the mirror (issue 25), end to end with real parts: a
//! docker-registry source whose `notifications:` endpoint is the scheduler's
//! `--listen-events`, a docker-registry destination, and `mirror-scheduler run --schedule
//! @yearly` (no scheduled run happens during the test): a push to the source appears at
//! the destination through the event alone. Embedded (`--local`, no broker) and
//! distributed (a `mirror-worker run` on the real RabbitMQ and Redis, a prefix of its own).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mirror_tests::fleet::{broker_flags, prefix, scheduler, Worker, RETRY_DELAYS};
use mirror_tests::mirror::{registry_flags, run_binary};
use mirror_tests::test_io::write;
use mirror_tests::*;

const TOKEN: &str = "push-events-test-token-7f3a9c";

/// How long a pushed tag may take to appear at the destination (generous: a cold debug
/// build on two cores).
const APPEARS_WITHIN: Duration = Duration::from_secs(90);

/// A scheduler in the background, its output in a file; killed when dropped.
struct Scheduler {
    child: Child,
    log: PathBuf,
}

impl Scheduler {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A source registry that notifies `http://127.0.0.1:<port>/events/ci`.
async fn notifying_source(port: u16) -> Registry {
    Registry::start_with(RegistryOptions {
        notifications: Some(Notifications {
            url: format!("http://127.0.0.1:{port}/events/ci"),
            token: TOKEN.to_string(),
        }),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// The senders file: `ci`, a distribution, for the source's host.
fn senders_file(dir: &Path, src: &Registry) -> String {
    let token = write(dir, "ci-token", &format!("{TOKEN}\n"));
    write(
        dir,
        "senders.yaml",
        &format!(
            "- name: ci\n  kind: distribution\n  registry: {}\n  token_file: {token}\n",
            src.host()
        ),
    )
}

fn spawn_scheduler(dir: &Path, args: Vec<String>) -> Scheduler {
    let log = dir.join("scheduler.log");
    let out = std::fs::File::create(&log).unwrap();
    let err = out.try_clone().unwrap();
    let child = Command::new(binary("mirror-scheduler"))
        .args(&args)
        .env("HOME", dir)
        .env_remove("XDG_STATE_HOME")
        .env_remove("MIRROR_STATE")
        .env("RUST_LOG", "info")
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .spawn()
        .expect("start mirror-scheduler");
    Scheduler { child, log }
}

/// Waits until the listener answers `GET /events`.
async fn wait_listening(port: u16, s: &Scheduler) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/events")).await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the listener never answered\n{}", s.log());
}

/// Waits until `repo:tag` at `registry` is `digest`; how long it took.
async fn appears(
    registry: &Registry,
    repo: &str,
    tag: &str,
    digest: &str,
    s: &Scheduler,
) -> Duration {
    let start = Instant::now();
    while start.elapsed() < APPEARS_WITHIN {
        if manifest_digest(registry, repo, tag)
            .await
            .unwrap()
            .as_deref()
            == Some(digest)
        {
            return start.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{repo}:{tag} did not appear at {digest}\n{}", s.log());
}

async fn recent(port: u16) -> String {
    reqwest::get(format!("http://127.0.0.1:{port}/events"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Builds an image at `ci` and pushes it to `src` as `target` with `mirror-worker copy`;
/// its digest.
async fn push_with_the_copy(ci: &Registry, src: &Registry, target: &str) -> String {
    let built = push_image(
        ci,
        "ci/app",
        "1",
        ImageSpec::new(vec![Layer::random(30_000)]),
    )
    .await
    .unwrap();
    let mut args = strings(&["copy"]);
    args.extend([
        format!("{}/ci/app:1", ci.host()),
        format!("{}/{target}", src.host()),
    ]);
    args.extend(registry_flags(&[src, ci]));
    let out = run_binary("mirror-worker", &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    built.digest
}

/// What the endpoint counted of the registry's real envelopes in the embedded test: two
/// pushes acted on, blob pushes and the unmapped tag ignored, three tags timed.
async fn assert_counted(metrics_port: u16) {
    let m = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| -> f64 {
        m.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(
        value("mirror_events_acted_total{sender=\"ci\"}"),
        2.0,
        "{m}"
    );
    assert!(
        value("mirror_events_ignored_total{sender=\"ci\",reason=\"layer\"}") >= 3.0,
        "{m}"
    );
    assert_eq!(
        value("mirror_events_ignored_total{sender=\"ci\",reason=\"unmapped\"}"),
        1.0,
        "{m}"
    );
    // 1.0 reached two tags, 1.1 one.
    assert_eq!(
        value("mirror_events_push_to_mirrored_seconds_count{sender=\"ci\"}"),
        3.0,
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_a_push_to_the_source_is_mirrored_by_its_event_without_a_scheduled_run() {
    let port = free_port();
    let metrics_port = free_port();
    let src = notifying_source(port).await;
    let dst = Registry::start().await.unwrap();
    let ci = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let dir = tempfile::tempdir().unwrap();
    let mapping = write(
        dir.path(),
        "mapping_events",
        &format!("{s}/team/app:1.* {d}/mirror/app\n{s}/team/app:1.0 {d}/mirror/app:stable\n"),
    );
    let senders = senders_file(dir.path(), &src);
    let listen = (
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1:{metrics_port}"),
    );
    let mut args = strings(&[
        "run",
        "--local",
        "--schedule",
        "@yearly",
        "--listen-events",
        &listen.0,
        "--event-senders",
        &senders,
        "-f",
        &mapping,
        "--listen",
        &listen.1,
        // `--listen`'s queue depth gauges need a broker; none here (it only warns).
        "--amqp",
        "amqp://127.0.0.1:1/%2f",
    ]);
    args.extend(registry_flags(&[&src, &dst, &ci]));
    let sched = spawn_scheduler(dir.path(), args);
    wait_listening(port, &sched).await;

    // A push through the registry API (the test bed's helper).
    let img = push_image(
        &src,
        "team/app",
        "1.0",
        ImageSpec::new(vec![Layer::random(40_000)]),
    )
    .await
    .unwrap();
    let took = appears(&dst, "mirror/app", "1.0", &img.digest, &sched).await;
    appears(&dst, "mirror/app", "stable", &img.digest, &sched).await;
    eprintln!(
        "push_events: 1.0 at the destination {:.2}s after its push returned",
        (took).as_secs_f64()
    );

    // A push by the project's own copy, from a third registry.
    let built = push_with_the_copy(&ci, &src, "team/app:1.1").await;
    let took = appears(&dst, "mirror/app", "1.1", &built, &sched).await;
    eprintln!(
        "push_events: 1.1 (mirror-worker copy) at the destination {:.2}s after the copy returned",
        took.as_secs_f64()
    );

    // A tag no line selects: seen, not mirrored.
    push_image(
        &src,
        "team/app",
        "2.0",
        ImageSpec::new(vec![Layer::random(1_000)]),
    )
    .await
    .unwrap();
    let start = Instant::now();
    while !recent(port).await.contains("unmapped") {
        assert!(start.elapsed() < APPEARS_WITHIN, "{}", recent(port).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        manifest_digest(&dst, "mirror/app", "2.0").await.unwrap(),
        None
    );
    let log = sched.log();
    assert!(log.contains("mirrored"), "{log}");
    assert!(!log.contains(TOKEN), "the token is never logged\n{log}");
    assert_counted(metrics_port).await;
    // A scheduled run would have said its plan ("run <id>: 1 file (0 rejected), ...").
    assert!(
        !log.contains("(0 rejected)"),
        "no scheduled run happened\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_a_push_is_published_to_the_fleet_and_copied_by_a_worker() {
    let port = free_port();
    let src = notifying_source(port).await;
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let dir = tempfile::tempdir().unwrap();
    let mapping = write(
        dir.path(),
        "mapping_events",
        &format!("{s}/team/svc {d}/mirror/svc\n"),
    );
    let senders = senders_file(dir.path(), &src);
    let p = prefix();
    let _worker = Worker::start(p.as_str(), &[&src, &dst], &[], &[]);
    let mut args: Vec<String> = [
        "run",
        "--schedule",
        "@yearly",
        "--listen-events",
        &format!("127.0.0.1:{port}"),
        "--event-senders",
        &senders,
        "-f",
        &mapping,
        "--redis-prefix",
        p.as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(broker_flags(p.as_str(), RETRY_DELAYS));
    args.extend(registry_flags(&[&src, &dst]));
    let sched = spawn_scheduler(dir.path(), args);
    wait_listening(port, &sched).await;
    let img = push_image(
        &src,
        "team/svc",
        "v7",
        ImageSpec::new(vec![Layer::random(20_000)]),
    )
    .await
    .unwrap();
    let took = appears(&dst, "mirror/svc", "v7", &img.digest, &sched).await;
    eprintln!(
        "push_events: distributed v7 at the destination {:.2}s after its push returned",
        took.as_secs_f64()
    );
    // The result came back on the listener's subscription: the latency was observed.
    let start = Instant::now();
    while !sched.log().contains("mirrored") {
        assert!(start.elapsed() < APPEARS_WITHIN, "{}", sched.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!sched.log().contains(TOKEN));
    // `status` shows the listener and its last events.
    let url = format!("http://127.0.0.1:{port}");
    let out = scheduler(p.as_str(), &["status", "--events-url", &url], &[], &[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    eprintln!("push_events: status says\n{text}");
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!(
            "Events listener {url}: senders ci (distribution, {s})"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("{s}/team/svc:v7: published 1 job for 1 tag")),
        "{text}"
    );
}

/// Every group's files are matched (`--groups` without `--group`), and the group's
/// scheduled run says how many tags it had to repair that no event announced: a tag of
/// a registry that sends no notifications is one; the tag the event already mirrored is
/// up to date for the run, not a repair.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_a_scheduled_run_counts_the_tags_no_event_announced() {
    let port = free_port();
    let src = notifying_source(port).await;
    let quiet = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, q, d) = (src.host(), quiet.host(), dst.host());
    let x = push_image(
        &quiet,
        "quiet/x",
        "1",
        ImageSpec::new(vec![Layer::random(5_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let maps = dir.path().join("maps");
    std::fs::create_dir(&maps).unwrap();
    let app_line = format!("{s}/team/app:1.0 {d}/mirror/app:1.0\n");
    let mapping = write(&maps, "mapping_team_1", &app_line);
    let groups = write(
        dir.path(),
        "groups.yaml",
        "groups:\n  - name: team\n    prefix: mapping_team\n    schedule: \"@every 6s\"\n    continue_on_error: true\n",
    );
    let senders = senders_file(dir.path(), &src);
    let mut args: Vec<String> = [
        "run",
        "--local",
        "--groups",
        &groups,
        "--dir",
        maps.to_str().unwrap(),
        "--listen-events",
        &format!("127.0.0.1:{port}"),
        "--event-senders",
        &senders,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(registry_flags(&[&src, &quiet, &dst]));
    let sched = spawn_scheduler(dir.path(), args);
    wait_listening(port, &sched).await;
    // The first run finds nothing to copy (the source tag is not pushed yet).
    let summaries = |log: &str| log.lines().filter(|l| l.contains(" copied")).count();
    let start = Instant::now();
    while summaries(&sched.log()) < 1 {
        assert!(start.elapsed() < APPEARS_WITHIN, "{}", sched.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Right after a run: the push goes through its event, long before the next run.
    let app = push_image(
        &src,
        "team/app",
        "1.0",
        ImageSpec::new(vec![Layer::random(5_000)]),
    )
    .await
    .unwrap();
    appears(&dst, "mirror/app", "1.0", &app.digest, &sched).await;
    let before = summaries(&sched.log());
    std::fs::write(
        &mapping,
        format!("{app_line}{q}/quiet/x:1 {d}/mirror/x:1\n"),
    )
    .unwrap();
    appears(&dst, "mirror/x", "1", &x.digest, &sched).await;
    let start = Instant::now();
    let line = loop {
        let log = sched.log();
        let runs: Vec<&str> = log.lines().filter(|l| l.contains(" copied")).collect();
        if let Some(l) = runs
            .iter()
            .skip(before)
            .find(|l| !l.contains(": 0 tags copied"))
        {
            break l.to_string();
        }
        assert!(start.elapsed() < APPEARS_WITHIN, "{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        line.contains(
            "1 tag copied (1 repaired: no event had announced them), 1 already up to date"
        ),
        "{line}\n{}",
        sched.log()
    );
}

/// A burst of 2,000 announcements of one tag (a CI script's plain form) is answered at
/// once, each 202 (or 503 had the queue filled), and folds into a handful of jobs: the
/// sender is not held up and the fleet is not flooded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_announcements_of_one_tag_is_a_handful_of_jobs() {
    use futures::StreamExt;
    let port = free_port();
    let metrics_port = free_port();
    let src = Registry::start().await.unwrap();
    let dst = Registry::start().await.unwrap();
    let (s, d) = (src.host(), dst.host());
    let img = push_image(
        &src,
        "team/app",
        "latest",
        ImageSpec::new(vec![Layer::random(5_000)]),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mapping = write(
        dir.path(),
        "mapping_burst",
        &format!("{s}/team/app {d}/mirror/app\n"),
    );
    let token = write(dir.path(), "t", TOKEN);
    let senders = write(
        dir.path(),
        "senders.yaml",
        &format!("- name: script\n  kind: plain\n  registry: {s}\n  token_file: {token}\n"),
    );
    let listen = (
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1:{metrics_port}"),
    );
    let mut args = strings(&["run", "--local", "--schedule", "@yearly"]);
    args.extend(strings(&[
        "--listen-events",
        &listen.0,
        "--event-senders",
        &senders,
    ]));
    args.extend(strings(&[
        "-f",
        &mapping,
        "--listen",
        &listen.1,
        "--amqp",
        "amqp://127.0.0.1:1/%2f",
    ]));
    args.extend(registry_flags(&[&src, &dst]));
    let sched = spawn_scheduler(dir.path(), args);
    wait_listening(port, &sched).await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/events/script");
    let body = format!("{{\"image\": \"{s}/team/app:latest\"}}");
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(0..2000)
        .map(|_| {
            let req = client.post(&url).bearer_auth(TOKEN).body(body.clone());
            async move { req.send().await.unwrap().status().as_u16() }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let took = started.elapsed();
    let accepted = statuses.iter().filter(|s| **s == 202).count();
    assert!(
        statuses.iter().all(|s| *s == 202 || *s == 503),
        "{statuses:?}"
    );
    eprintln!(
        "push_events: 2000 announcements answered in {:.2}s ({accepted} accepted)",
        took.as_secs_f64()
    );
    appears(&dst, "mirror/app", "latest", &img.digest, &sched).await;
    let m = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let acted: f64 = m
        .lines()
        .find(|l| l.starts_with("mirror_events_acted_total{sender=\"script\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(
        (1.0..50.0).contains(&acted),
        "{acted} jobs for one tag\n{m}"
    );
    eprintln!("push_events: the burst made {acted} jobs");
}
