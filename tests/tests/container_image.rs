//! The container image, really built and run the way the rendered Kubernetes manifests run
//! it: their `command` and `args`, uid 10001, a read-only root filesystem, no capabilities,
//! the Secret's config.json and the ConfigMap's mapping files mounted read-only.
//!
//! Real: podman (with runc) and the image from deploy/Containerfile, built by
//! deploy/image/build.sh on a bookworm base made by mmdebstrap (no registry is reachable
//! here, so the multi-stage deploy/Dockerfile cannot fetch its Rust builder; the image
//! gets the test build's binaries instead of a release build, the same code), the test
//! RabbitMQ the worker consumes from. Changed from the manifests: the worker's `--listen`
//! port (the container shares the host's network to reach the loopback broker, so it
//! takes a free port instead of 9090) and the broker URLs (the Secret's values).
//!
//! Where podman, mmdebstrap or a container runtime is missing, each test records why it
//! skipped (see `mirror_tests::skipped`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mirror_tests::fleet::{jobs_queue, prefix, status_json, AMQP_URL, REDIS_URL};
use mirror_tests::manifests::{command_line, container_running, object, pod_spec, render};
use mirror_tests::skipped::skip;
use mirror_tests::test_io::text;
use serde_json::Value;

/// The tag the tests build (rebuilt once per test process).
const IMAGE: &str = "localhost/image-mirror:test";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn containers_conf() -> PathBuf {
    root().join("deploy/image/containers.conf")
}

/// `podman ARGS` with the repository's containers.conf.
fn podman(args: &[&str]) -> Output {
    Command::new("podman")
        .args(args)
        .env("CONTAINERS_CONF", containers_conf())
        .output()
        .expect("podman runs")
}

/// Why this machine cannot build and run the image, if it cannot.
fn cannot_run_containers() -> Option<String> {
    for tool in ["podman", "mmdebstrap"] {
        if Command::new(tool).arg("--version").output().is_err() {
            return Some(format!(
                "{tool} is not installed (deploy/local/install-deps.sh installs it)"
            ));
        }
    }
    let base = Command::new("bash")
        .arg(root().join("deploy/image/base.sh"))
        .output()
        .expect("bash runs");
    if !base.status.success() {
        return Some(format!(
            "no base image could be made here (mmdebstrap needs root and Debian's mirror): {}",
            text(&base.stderr).trim()
        ));
    }
    let probe = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "localhost/image-mirror-base:bookworm",
        "true",
    ]);
    (!probe.status.success()).then(|| {
        format!(
            "podman cannot run a container on this machine: {}",
            text(&probe.stderr).trim()
        )
    })
}

/// The image, built once per test process; `Err` holds why this machine cannot.
///
/// # Panics
/// When the machine can run containers but the image does not build: that is a broken
/// Containerfile or build script.
fn image() -> Result<&'static str, &'static str> {
    static BUILT: OnceLock<Result<&'static str, String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        if let Some(why) = cannot_run_containers() {
            return Err(why);
        }
        let bin_dir = mirror_tests::binary("mirror-worker")
            .parent()
            .unwrap()
            .to_path_buf();
        mirror_tests::binary("mirror-scheduler");
        let out = Command::new("bash")
            .arg(root().join("deploy/image/build.sh"))
            .arg(IMAGE)
            .env("BIN_DIR", &bin_dir)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "deploy/image/build.sh failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        Ok(IMAGE)
    });
    built.as_ref().copied().map_err(String::as_str)
}

/// The image, or `None` with the skip recorded.
fn image_or_skip(test: &str) -> Option<&'static str> {
    image().map_err(|why| skip(test, why)).ok()
}

/// The rendered base kustomization, or `None` with the skip recorded.
fn base_or_skip(test: &str) -> Option<Vec<Value>> {
    render("base").map_err(|no| skip(test, &no.0)).ok()
}

/// `podman run` options for a pod's security context and a container's: the user, a
/// read-only root filesystem, the dropped capabilities, no privilege escalation.
fn security_options(pod: &Value, container: &Value) -> Vec<String> {
    let pod_sc = &pod["securityContext"];
    let sc = &container["securityContext"];
    let uid = pod_sc["runAsUser"].as_u64().expect("runAsUser is set");
    let gid = pod_sc["runAsGroup"].as_u64().expect("runAsGroup is set");
    assert_eq!(
        pod_sc["runAsNonRoot"], true,
        "the pod refuses to run as root"
    );
    assert_eq!(uid, 10001, "the image's user");
    let mut opts = vec!["--user".to_string(), format!("{uid}:{gid}")];
    assert_eq!(
        sc["readOnlyRootFilesystem"], true,
        "the container's root is read-only"
    );
    opts.push("--read-only".into());
    for cap in sc["capabilities"]["drop"].as_array().into_iter().flatten() {
        opts.push(format!("--cap-drop={}", cap.as_str().unwrap()));
    }
    if sc["allowPrivilegeEscalation"] == false {
        opts.push("--security-opt=no-new-privileges".into());
    }
    opts
}

/// A directory the container's uid can read, with `files` in it.
fn readable_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for (name, body) in files {
        let path = dir.path().join(name);
        std::fs::write(&path, body).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    dir
}

/// A container started with `podman run -d`, removed on drop.
struct Running(String);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = podman(&["rm", "--force", "--time", "0", &self.0]);
    }
}

/// The status and body of `GET http://127.0.0.1:PORT/PATH` (HTTP/1.0, plain socket).
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

#[test]
fn the_worker_image_runs_as_the_deployment_says_and_answers_health_and_metrics() {
    let test = "the_worker_image_runs_as_the_deployment_says";
    let Some(objects) = base_or_skip(test) else {
        return;
    };
    let Some(image) = image_or_skip(test) else {
        return;
    };
    let deployment = object(&objects, "Deployment", "image-mirror-worker");
    let pod = pod_spec(deployment).unwrap();
    let c = container_running(deployment, "mirror-worker");
    let mut line = command_line(c);

    // --listen on a free port of the shared network instead of 9090.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let at = line
        .iter()
        .position(|a| a == "--listen")
        .expect("the worker serves --listen");
    line[at + 1] = format!("127.0.0.1:{port}");

    // The Secret's config.json where the Deployment mounts it.
    let config = line
        .iter()
        .position(|a| a == "--registry-config")
        .map(|i| PathBuf::from(&line[i + 1]))
        .expect("the worker reads --registry-config");
    let credentials = readable_dir(&[(
        &config.file_name().unwrap().to_string_lossy(),
        r#"{"auths":{}}"#,
    )]);
    let q = prefix();

    let mut run: Vec<String> = ["run", "--detach", "--network", "host"]
        .map(String::from)
        .to_vec();
    run.extend(security_options(pod, c));
    run.push(format!(
        "--volume={}:{}:ro",
        credentials.path().display(),
        config.parent().unwrap().display()
    ));
    for e in c["env"].as_array().into_iter().flatten() {
        run.push(format!(
            "--env={}={}",
            e["name"].as_str().unwrap(),
            e["value"].as_str().unwrap()
        ));
    }
    // What the broker Secret holds, pointed at the test broker; a queue prefix of the test's.
    for (k, v) in [
        ("AMQP_URL", AMQP_URL),
        ("REDIS_URL", REDIS_URL),
        ("QUEUE_PREFIX", q.as_str()),
        ("REDIS_PREFIX", q.as_str()),
    ] {
        run.push(format!("--env={k}={v}"));
    }
    run.push(image.to_string());
    run.extend(line);
    let args: Vec<&str> = run.iter().map(String::as_str).collect();
    let started = podman(&args);
    assert!(
        started.status.success(),
        "podman run: {}",
        text(&started.stderr)
    );
    let container = Running(text(&started.stdout).trim().to_string());

    let deadline = Instant::now() + Duration::from_secs(60);
    let ready = loop {
        match get(port, "/readyz") {
            Some((200, _)) => break true,
            _ if Instant::now() > deadline => break false,
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let logs = podman(&["logs", &container.0]);
    assert!(
        ready,
        "the worker never became ready on /readyz:\n{}{}",
        text(&logs.stdout),
        text(&logs.stderr)
    );
    assert_eq!(get(port, "/healthz").map(|(s, _)| s), Some(200));
    let (status, metrics) = get(port, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200);
    assert!(
        // A plain GET gets the 0.0.4 text format, where a counter's family keeps `_total`.
        metrics.contains("# TYPE mirror_jobs_done_total counter"),
        "the worker's metrics: {metrics}"
    );
    // It consumes the test broker's jobs queue.
    let queue = jobs_queue(&status_json(&q, &[]));
    assert_eq!(queue["consumers"], 1, "{queue}");

    // Inside: the manifests' uid, and the root filesystem is read-only.
    let id = podman(&["exec", &container.0, "id", "-u"]);
    assert_eq!(text(&id.stdout).trim(), "10001");
    let write = podman(&["exec", &container.0, "touch", "/usr/local/bin/x"]);
    assert!(!write.status.success(), "the root filesystem is writable");
    assert!(
        text(&write.stderr).contains("Read-only file system"),
        "{}",
        text(&write.stderr)
    );
}

#[test]
fn the_image_validates_the_configmap_mappings_as_the_cronjob_mounts_them() {
    let test = "the_image_validates_the_configmap_mappings";
    let Some(objects) = base_or_skip(test) else {
        return;
    };
    let Some(image) = image_or_skip(test) else {
        return;
    };
    let cron = object(&objects, "CronJob", "image-mirror-scheduler");
    let pod = pod_spec(cron).unwrap();
    let c = container_running(cron, "mirror-scheduler");
    let line = command_line(c);
    let flag = |name: &str| {
        let i = line.iter().position(|a| a == name).expect(name);
        line[i + 1].clone()
    };
    let (dir, prefix) = (flag("--dir"), flag("--prefix"));
    let configmap = object(&objects, "ConfigMap", "image-mirror-mappings");
    let mut files: Vec<(String, String)> = configmap["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();

    let validate = |files: &[(String, String)]| {
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mappings = readable_dir(&refs);
        let mut args: Vec<String> = ["run", "--rm", "--network", "none"]
            .map(String::from)
            .to_vec();
        args.extend(security_options(pod, c));
        args.push(format!("--volume={}:{dir}:ro", mappings.path().display()));
        args.push(image.to_string());
        args.extend(
            [
                "mirror-scheduler",
                "validate",
                "--dir",
                &dir,
                "--prefix",
                &prefix,
            ]
            .map(String::from),
        );
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        podman(&args)
    };

    let good = validate(&files);
    assert!(
        good.status.success(),
        "the ConfigMap's mapping files do not validate in the image: {}{}",
        text(&good.stdout),
        text(&good.stderr)
    );
    // The same command finds a broken file and names it (the image runs the real check).
    let broken = format!("{prefix}broken");
    files.push((
        broken.clone(),
        "quay.io/a/b:1 quay.io/a/b@sha256:0000\n".into(),
    ));
    let bad = validate(&files);
    assert!(!bad.status.success(), "a digest destination validated");
    let said = format!("{}{}", text(&bad.stdout), text(&bad.stderr));
    assert!(said.contains(&format!("{broken}:1")), "{said}");

    // Both binaries are in the image, and it runs as uid 10001 by default.
    let inspected = podman(&["image", "inspect", image, "--format", "{{.Config.User}}"]);
    assert_eq!(text(&inspected.stdout).trim(), "10001:10001");
    for binary in ["mirror-scheduler", "mirror-worker"] {
        let out = podman(&[
            "run",
            "--rm",
            "--network",
            "none",
            image,
            binary,
            "--version",
        ]);
        assert!(out.status.success(), "{binary}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with(binary),
            "{}",
            text(&out.stdout)
        );
    }
}
