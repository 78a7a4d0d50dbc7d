//! Distributed-mode helpers: a queue prefix of its own per test (so test runs never see each
//! other's jobs on the shared broker), `mirror-worker run` processes, and `mirror-scheduler`
//! invocations with the right broker and registry flags.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::registry::Registry;

/// The test Redis.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// The test broker (RabbitMQ on loopback, guest/guest).
pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The retry delays every process of a test is given.
pub const RETRY_DELAYS: &str = "300ms,600ms";

/// A queue prefix of a test's own; dropping it deletes the prefix's queues and exchange.
pub struct Prefix(pub String);

impl Prefix {
    /// The prefix as a flag value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The queue configuration the test's processes use.
    pub fn config(&self) -> mirror_fleet::amqp::AmqpConfig {
        mirror_fleet::amqp::AmqpConfig {
            url: AMQP_URL.into(),
            prefix: self.0.clone(),
            retry_delays: vec![Duration::from_millis(300), Duration::from_millis(600)],
            ..Default::default()
        }
    }
}

impl std::ops::Deref for Prefix {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        let config = self.config();
        // A runtime of its own on a thread of its own: the test's runtime may be gone.
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let pattern = format!("{}:*", config.prefix);
            rt.block_on(async move {
                if let Ok(q) = mirror_fleet::amqp::AmqpQueue::connect(config).await {
                    let _ = q.delete_topology().await;
                    q.close().await;
                }
                let _ = delete_redis_keys(&pattern).await;
            });
        });
        let _ = done.join();
    }
}

/// Deletes the test's Redis keys (SCAN, then DEL in batches).
async fn delete_redis_keys(pattern: &str) -> redis::RedisResult<()> {
    let client = redis::Client::open(REDIS_URL)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// A fresh queue prefix (also the test's Redis key prefix).
pub fn prefix() -> Prefix {
    Prefix(format!("test-{}", uuid_like()))
}

fn uuid_like() -> String {
    format!("{:016x}{:08x}", rand::random::<u64>(), std::process::id())
}

/// Broker flags for a prefix, with short retry delays.
pub fn broker_flags(prefix: &str, retry_delays: &str) -> Vec<String> {
    [
        "--amqp",
        AMQP_URL,
        "--queue-prefix",
        prefix,
        "--retry-delays",
        retry_delays,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One `mirror-worker run` process; killed (SIGKILL) on drop if still running.
pub struct Worker {
    pub child: Child,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Worker {
    /// Starts a worker consuming the prefix's jobs, reaching `registries` (plus `extra_insecure`
    /// hosts such as proxies) over plain HTTP.
    pub fn start(
        prefix: &str,
        registries: &[&Registry],
        extra_insecure: &[String],
        extra_args: &[&str],
    ) -> Worker {
        let dir = tempfile::tempdir().expect("worker dir");
        let log = dir.path().join("worker.log");
        let mut args = vec![
            "run".to_string(),
            "--concurrency".into(),
            "2".into(),
            "--grace".into(),
            "10s".into(),
        ];
        args.extend(broker_flags(prefix, RETRY_DELAYS));
        args.extend(["--redis-prefix".to_string(), prefix.to_string()]);
        args.extend(crate::mirror::registry_flags(registries));
        for h in extra_insecure {
            args.extend(["--insecure-registry".to_string(), h.clone()]);
        }
        args.extend(extra_args.iter().map(|s| s.to_string()));
        let out = std::fs::File::create(&log).expect("worker log");
        let err = out.try_clone().expect("worker log");
        let child = Command::new(crate::binary("mirror-worker"))
            .args(&args)
            .env("HOME", dir.path())
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start mirror-worker");
        Worker {
            child,
            log,
            _dir: dir,
        }
    }

    /// What the worker logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal (`"TERM"`, `"KILL"`).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status();
    }

    /// Waits up to `limit` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `mirror-scheduler ARGS` with broker flags for `prefix` and registry flags.
pub fn scheduler(
    prefix: &str,
    args: &[&str],
    registries: &[&Registry],
    extra_insecure: &[String],
) -> Output {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(broker_flags(prefix, RETRY_DELAYS));
    if matches!(args.first(), Some(&"run") | Some(&"status")) {
        all.extend(["--redis-prefix".to_string(), prefix.to_string()]);
    }
    if args.first() == Some(&"run") {
        all.extend(crate::mirror::registry_flags(registries));
        for h in extra_insecure {
            all.extend(["--insecure-registry".to_string(), h.clone()]);
        }
    }
    crate::mirror::run_binary("mirror-scheduler", &all)
}

/// Starts `mirror-scheduler ARGS` in the background (for `--wait` runs that workers finish).
pub fn scheduler_spawn(
    prefix: &str,
    args: &[&str],
    registries: &[&Registry],
    extra_insecure: &[String],
) -> Child {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(broker_flags(prefix, RETRY_DELAYS));
    all.extend(["--redis-prefix".to_string(), prefix.to_string()]);
    all.extend(crate::mirror::registry_flags(registries));
    for h in extra_insecure {
        all.extend(["--insecure-registry".to_string(), h.clone()]);
    }
    Command::new(crate::binary("mirror-scheduler"))
        .args(&all)
        // An embedded run remembers nothing here unless its arguments name a --state file:
        // never the home's, which every test would share.
        .env_remove("XDG_STATE_HOME")
        .env("MIRROR_STATE", "none")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start mirror-scheduler")
}

/// Waits for a child with a time limit; kills it and panics with its output past the limit.
pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(_)) = child.try_wait() {
            return child.wait_with_output().expect("child output");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("child output");
    panic!(
        "process did not finish within {limit:?}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Process ids of the broker connections whose client properties mention `needle` (a queue
/// prefix names a process's connection), as `rabbitmqctl close_connection` wants them (the
/// tab-separated listing; the JSON one prints them in another form).
pub fn connections_mentioning(needle: &str) -> Vec<String> {
    let out = Command::new("rabbitmqctl")
        .args(["list_connections", "-q", "pid", "client_properties"])
        .output()
        .expect("rabbitmqctl");
    crate::test_io::text(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| l.split('\t').next().map(str::to_string))
        .collect()
}

/// `mirror-scheduler status --json EXTRA...` for a prefix. `status` declares nothing, so
/// while the processes a test just started have not yet declared the prefix's queues it
/// answers "no installation": that answer is waited out (10 s at most).
pub fn status_json(prefix: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["status", "--json"];
    args.extend(extra);
    let started = Instant::now();
    let out = loop {
        let out = scheduler(prefix, &args, &[], &[]);
        let absent =
            crate::test_io::text(&out.stderr).contains("no installation with queue prefix");
        if !absent || started.elapsed() > Duration::from_secs(10) {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        out.status.success(),
        "status failed: {}",
        crate::test_io::text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status --json prints JSON")
}

/// The jobs queue's entry of a `status --json`.
pub fn jobs_queue(status: &serde_json::Value) -> serde_json::Value {
    status["queues"]
        .as_array()
        .and_then(|q| q.iter().find(|q| q["role"] == "jobs"))
        .cloned()
        .expect("status lists the jobs queue")
}
