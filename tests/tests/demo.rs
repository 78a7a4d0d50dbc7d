//! The README's first command, `bash deploy/local/demo.sh`, run as a new user runs it: it
//! mirrors end to end in the embedded mode, its second run finds everything up to date,
//! it ends by saying what to try next, and it neither installs nor starts RabbitMQ or
//! Redis (the embedded mode needs neither). Real docker-registry processes and skopeo;
//! `rabbitmq-server`, `rabbitmqctl`, `rabbitmq-plugins` and `redis-server` are shadowed on
//! the script's PATH by stand-ins that only record that they were called, and every bash
//! command the demo and its helper scripts run is traced (`SHELLOPTS=xtrace`): none may
//! even look for RabbitMQ or Redis (on this machine they may already run, so a script that
//! only starts them when missing would call nothing).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

#[test]
fn the_demo_mirrors_end_to_end_and_starts_no_rabbitmq_or_redis() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let fake = tempfile::tempdir().unwrap();
    let calls = fake.path().join("calls");
    for name in [
        "rabbitmq-server",
        "rabbitmqctl",
        "rabbitmq-plugins",
        "redis-server",
    ] {
        let script = fake.path().join(name);
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"{name} $*\" >> '{}'\n", calls.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        fake.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg(root.join("deploy/local/demo.sh"))
        .env("PATH", path)
        .env("SHELLOPTS", "xtrace")
        .output()
        .expect("running the demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("4 tags copied"), "{stderr}");
    assert!(
        stderr.contains("0 tags copied, 4 already up to date"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the report of the second run had 4 tags up to date"),
        "{stderr}"
    );
    assert!(
        stderr.contains("finished: 0 jobs, 4 tags: 0 done, 4 up to date, 0 failed"),
        "status shows the second run from the state file: {stderr}"
    );
    assert!(
        stderr.contains("mirror-worker copy SOURCE_IMAGE"),
        "{stderr}"
    );
    let called = std::fs::read_to_string(&calls).unwrap_or_default();
    assert!(called.is_empty(), "the demo ran: {called}");
    let traced: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with('+'))
        .filter(|l| {
            let l = l.to_lowercase();
            l.contains("rabbitmq")
                || l.contains("redis")
                || l.contains("5672")
                || l.contains("6379")
        })
        .collect();
    assert!(
        traced.is_empty(),
        "the demo looked for the fleet's services: {traced:?}"
    );
}
