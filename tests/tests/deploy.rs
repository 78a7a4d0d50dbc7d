//! The deployment artefacts against the binaries they deploy. Every kustomization under
//! deploy/kubernetes renders with `kubectl kustomize` (kustomize 5), and the checks read the
//! rendered objects, as a cluster would receive them: every container command line is
//! accepted by the binary's own CLI, the CronJob, Deployment and ScaledObject fit together
//! (schedule, drain time, probes, queue name, secrets by name), the groups overlay replaces
//! the CronJob and projects every team's credentials; deploy/Dockerfile copies binaries the
//! workspace builds into a non-root image, and deploy/local/stack.sh runs the distributed
//! mode end to end and leaves no process behind. (The image itself is built and run in
//! tests/container_image.rs.)

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mirror_tests::manifests::{
    command_line, container_running, containers, env_value, flag, k8s_dir, kustomizations, object,
    of_kind, pod_spec, render, strings, volume_at,
};
use mirror_tests::test_io::text;
use serde_json::Value;

/// The binaries the image ships and the manifests run.
const BINARIES: [&str; 2] = ["mirror-scheduler", "mirror-worker"];

/// The kustomizations an operator applies: the base, and the groups overlay on it.
const BASE: &str = "base";
const GROUPS: &str = "overlays/groups";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The rendered objects of `kustomization`, or `None` (the skip recorded with its reason)
/// on a machine without kubectl.
fn rendered(test: &str, kustomization: &str) -> Option<Vec<Value>> {
    match render(kustomization) {
        Ok(objects) => Some(objects),
        Err(no) => {
            mirror_tests::skipped::skip(test, &no.0);
            None
        }
    }
}

/// The one rendered object of a kind.
fn one<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let docs = of_kind(objects, kind);
    assert_eq!(docs.len(), 1, "expected exactly one {kind}");
    docs[0]
}

/// The image every container of a kustomization runs: its `images` entry (the base's reach
/// only the base's resources, so an overlay that adds a workload sets it again).
fn kustomized_image(kustomization: &str) -> String {
    let text =
        std::fs::read_to_string(k8s_dir().join(kustomization).join("kustomization.yaml")).unwrap();
    let k: Value = serde_yaml_ng::from_str(&text).unwrap();
    let image = k["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["name"] == "image-mirror")
        .unwrap_or_else(|| panic!("{kustomization} sets no image-mirror image"));
    format!(
        "{}:{}",
        image["newName"].as_str().unwrap(),
        image["newTag"].as_str().unwrap()
    )
}

#[test]
fn every_kustomization_renders_and_each_container_command_line_is_accepted_by_its_binary() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for k in kustomizations() {
        let image = kustomized_image(&k);
        let Some(objects) = rendered("every_kustomization_renders", &k) else {
            return;
        };
        for o in &objects {
            let Some(pod) = pod_spec(o) else { continue };
            let what = format!("{k}: {} {}", o["kind"], o["metadata"]["name"]);
            for c in containers(pod) {
                let line = command_line(c);
                let name = line.first().cloned().unwrap_or_default();
                assert!(
                    BINARIES.contains(&name.as_str()),
                    "{what}: container {} must name one of {BINARIES:?} in `command`, not {name:?}",
                    c["name"]
                );
                assert_eq!(
                    c["image"].as_str(),
                    Some(image.as_str()),
                    "{what}: the image is set through the kustomization's `images`"
                );
                // clap rejects unknown flags and bad values before it prints the help; the
                // trailing --help only skips the required-argument checks.
                let out = Command::new(mirror_tests::binary(&name))
                    .args(&line[1..])
                    .arg("--help")
                    .env_remove("RUST_LOG")
                    .output()
                    .unwrap();
                checked += 1;
                if !out.status.success() {
                    failures.push(format!(
                        "{what}: `{} --help` exited {:?}:\n{}",
                        line.join(" "),
                        out.status.code(),
                        text(&out.stderr)
                    ));
                }
            }
        }
    }
    assert!(
        checked >= 4,
        "expected the scheduler and the worker of the base and of the groups overlay"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn base_and_groups_overlay_are_apart_so_kustomize_accepts_both() {
    let found = kustomizations();
    assert_eq!(
        found,
        [BASE, GROUPS],
        "the kustomizations under deploy/kubernetes"
    );
    // Every file beside a kustomization.yaml is one of its resources or patches.
    for k in found {
        let dir = k8s_dir().join(&k);
        let manifest = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
        let parsed: Value = serde_yaml_ng::from_str(&manifest).unwrap();
        let mut listed: BTreeSet<String> = strings(&parsed["resources"]).into_iter().collect();
        for p in parsed["patches"].as_array().into_iter().flatten() {
            if let Some(path) = p["path"].as_str() {
                listed.insert(path.to_string());
            }
        }
        let present: BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| (n.ends_with(".yaml") || n.ends_with(".yml")) && n != "kustomization.yaml")
            .collect();
        let missing: Vec<&String> = present.difference(&listed).collect();
        assert!(
            missing.is_empty(),
            "{k}/kustomization.yaml misses {missing:?}"
        );
    }
}

#[test]
fn scheduler_cronjob_runs_hourly_without_overlap_on_the_mapping_configmap() {
    let Some(objects) = rendered("scheduler_cronjob_runs_hourly", BASE) else {
        return;
    };
    let cron = one(&objects, "CronJob");
    assert_eq!(cron["spec"]["schedule"], "@hourly");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let pod = pod_spec(cron).unwrap();
    let c = container_running(cron, "mirror-scheduler");
    let line = command_line(c);
    assert_eq!(&line[..2], ["mirror-scheduler", "run"]);
    assert!(
        !line.contains(&"--local".to_string()),
        "the fleet does the copying"
    );
    let dir = flag(&line, "--dir", None).expect("--dir");
    let prefix = flag(&line, "--prefix", None).expect("--prefix");

    // The mappings ConfigMap is mounted at --dir.
    let volume = volume_at(pod, c, &dir).unwrap_or_else(|| panic!("nothing mounted at {dir}"));
    let configmap = one(&objects, "ConfigMap");
    assert_eq!(
        volume["configMap"]["name"], configmap["metadata"]["name"],
        "the mounted ConfigMap is the mappings ConfigMap"
    );

    // Its example mapping files are selected by --prefix and valid.
    let tmp = tempfile::tempdir().unwrap();
    let data = configmap["data"].as_object().unwrap();
    assert!(
        data.keys().any(|k| k.starts_with(&prefix)),
        "no ConfigMap key starts with {prefix}"
    );
    for (key, value) in data {
        std::fs::write(tmp.path().join(key), value.as_str().unwrap()).unwrap();
    }
    let out = Command::new(mirror_tests::binary("mirror-scheduler"))
        .args(["validate", "--dir"])
        .arg(tmp.path())
        .args(["--prefix", &prefix])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the example mappings do not validate: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn workers_drain_before_the_kubelet_kills_them_and_probes_hit_the_listen_port() {
    for k in [BASE, GROUPS] {
        let Some(objects) = rendered("workers_drain_before_the_kubelet_kills_them", k) else {
            return;
        };
        let deployment = object(&objects, "Deployment", "image-mirror-worker");
        let pod = pod_spec(deployment).unwrap();
        let c = container_running(deployment, "mirror-worker");
        let line = command_line(c);
        assert_eq!(line.get(1).map(String::as_str), Some("run"), "{k}");

        let grace: u64 = flag(&line, "--grace", None)
            .map(|g| {
                humantime::parse_duration(&g)
                    .expect("--grace is a duration")
                    .as_secs()
            })
            .unwrap_or(30);
        let termination = pod["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("terminationGracePeriodSeconds is set");
        assert!(
            termination > grace,
            "{k}: terminationGracePeriodSeconds {termination} must exceed --grace {grace}"
        );

        let listen = flag(&line, "--listen", None).expect("the worker serves --listen");
        let port: u64 = listen
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("--listen HOST:PORT");
        let named: BTreeMap<String, u64> = c["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    p["name"].as_str()?.to_string(),
                    p["containerPort"].as_u64()?,
                ))
            })
            .collect();
        for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
            let get = &c[probe]["httpGet"];
            assert_eq!(get["path"], path, "{k}: {probe}");
            let probe_port = match &get["port"] {
                Value::Number(n) => n.as_u64(),
                Value::String(name) => named.get(name).copied(),
                _ => None,
            };
            assert_eq!(
                probe_port,
                Some(port),
                "{k}: {probe} must hit the --listen port"
            );
        }

        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{k}");
        assert_ne!(pod["securityContext"]["runAsUser"], 0, "{k}");
        for kind in ["cpu", "memory"] {
            assert!(
                !c["resources"]["requests"][kind].is_null(),
                "{k}: the worker requests {kind}"
            );
        }
    }
}

#[test]
fn scaled_object_scales_the_worker_deployment_on_the_jobs_queue() {
    let Some(objects) = rendered("scaled_object_scales_the_worker_deployment", BASE) else {
        return;
    };
    let deployment = one(&objects, "Deployment");
    let scaled = one(&objects, "ScaledObject");
    assert_eq!(
        scaled["spec"]["scaleTargetRef"]["name"],
        deployment["metadata"]["name"]
    );
    let c = container_running(deployment, "mirror-worker");
    let line = command_line(c);
    let prefix = flag(&line, "--queue-prefix", None)
        .or(env_value(c, "QUEUE_PREFIX").map(str::to_string))
        .unwrap_or_else(|| "image-mirror".into());
    let triggers = scaled["spec"]["triggers"].as_array().unwrap();
    assert_eq!(triggers.len(), 1);
    assert_eq!(triggers[0]["type"], "rabbitmq");
    assert_eq!(
        triggers[0]["metadata"]["queueName"],
        format!("{prefix}.jobs")
    );
    assert_eq!(triggers[0]["metadata"]["mode"], "QueueLength");
    // Its broker URL comes from the TriggerAuthentication it names.
    let auth_name = &triggers[0]["authenticationRef"]["name"];
    let auth = one(&objects, "TriggerAuthentication");
    assert_eq!(&auth["metadata"]["name"], auth_name);
    assert_eq!(auth["spec"]["secretTargetRef"][0]["parameter"], "host");
    assert_eq!(auth["spec"]["secretTargetRef"][0]["key"], "AMQP_URL");
}

#[test]
fn secrets_are_referenced_by_name_only_and_credentials_are_mounted_where_a_points() {
    let Some(objects) = rendered("secrets_are_referenced_by_name_only", BASE) else {
        return;
    };
    assert!(
        of_kind(&objects, "Secret").is_empty(),
        "secrets are created by the operator, never kept here"
    );
    let mut referenced = BTreeSet::new();
    for o in &objects {
        let Some(pod) = pod_spec(o) else { continue };
        let what = format!("{} {}", o["kind"], o["metadata"]["name"]);
        for c in containers(pod) {
            for from in c["envFrom"].as_array().into_iter().flatten() {
                if let Some(name) = from["secretRef"]["name"].as_str() {
                    referenced.insert(name.to_string());
                }
            }
            let line = command_line(c);
            let Some(config) = flag(&line, "--registry-config", Some("-a")) else {
                continue;
            };
            let config = Path::new(&config);
            let parent = config.parent().unwrap().to_string_lossy().to_string();
            let volume = volume_at(pod, c, &parent)
                .unwrap_or_else(|| panic!("{what}: nothing mounted over {config:?}"));
            let secret = &volume["secret"];
            assert!(
                secret["secretName"].is_string(),
                "{what}: credentials come from a Secret"
            );
            assert!(
                secret["items"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|i| i["path"] == config.file_name().unwrap().to_string_lossy().as_ref()),
                "{what}: the Secret's config.json lands at {config:?}"
            );
            referenced.insert(secret["secretName"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(
        referenced.len(),
        2,
        "the broker secret and the registry credentials: {referenced:?}"
    );
}

/// Dockerfile instructions (continuation lines joined, comments dropped), each with the
/// index of its stage.
fn dockerfile() -> Vec<(usize, String, String)> {
    instructions("deploy/Dockerfile")
}

/// The instructions of the Dockerfile or Containerfile at `path` (relative to the
/// repository), as [`dockerfile`] gives them.
fn instructions(path: &str) -> Vec<(usize, String, String)> {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let mut out = Vec::new();
    let mut current = String::new();
    let mut stage = 0;
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if let Some(rest) = t.strip_suffix('\\') {
            current.push_str(rest);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (word, rest) = current.split_once(' ').unwrap_or((&current, ""));
        let word = word.to_uppercase();
        if word == "FROM" {
            stage += 1;
        }
        out.push((stage, word, rest.trim().to_string()));
        current.clear();
    }
    out
}

/// `[[bin]]` names of a package directory (the package name when it declares none).
fn package_binaries(dir: &Path) -> (String, Vec<String>) {
    let toml = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    let mut package = String::new();
    let mut bins = Vec::new();
    let mut section = String::new();
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_string();
        } else if let Some(v) = line.strip_prefix("name") {
            let v = v
                .trim_start()
                .trim_start_matches('=')
                .trim()
                .trim_matches('"');
            match section.as_str() {
                "[package]" => package = v.to_string(),
                "[[bin]]" => bins.push(v.to_string()),
                _ => {}
            }
        }
    }
    if bins.is_empty() && dir.join("src/main.rs").is_file() {
        bins.push(package.clone());
    }
    (package, bins)
}

/// The builder stage, checked: the stage's name and the binaries it builds.
fn builder_stage(steps: &[(usize, String, String)]) -> (String, BTreeSet<String>) {
    let froms: Vec<&String> = steps
        .iter()
        .filter(|(_, w, _)| w == "FROM")
        .map(|(_, _, r)| r)
        .collect();
    assert_eq!(froms.len(), 2, "a builder and a runtime stage");
    let builder_alias = froms[0]
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .find(|w| w[0].eq_ignore_ascii_case("as"))
        .map(|w| w[1].to_string())
        .expect("the builder stage is named");
    assert!(froms[0].starts_with("rust:1-bookworm "), "{}", froms[0]);
    assert_eq!(froms[1].as_str(), "debian:bookworm-slim");

    // The build command, and which binaries it builds.
    let build = steps
        .iter()
        .find(|(s, w, r)| *s == 1 && w == "RUN" && r.contains("cargo build"))
        .map(|(_, _, r)| r.clone())
        .expect("the builder runs cargo build");
    for f in ["--release", "--locked"] {
        assert!(build.contains(f), "cargo build without {f}");
    }
    let words: Vec<&str> = build.split_whitespace().collect();
    let packages: BTreeSet<&str> = words
        .windows(2)
        .filter(|w| w[0] == "-p")
        .map(|w| w[1])
        .collect();
    let workspace = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members: Vec<String> = workspace
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("workspace members")
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    let mut built = BTreeSet::new();
    for m in &members {
        let (package, bins) = package_binaries(&root().join(m));
        if packages.contains(package.as_str()) {
            built.extend(bins);
        }
    }
    assert_eq!(
        built,
        BINARIES.iter().map(|s| s.to_string()).collect(),
        "the packages built are those of {BINARIES:?}"
    );

    // Every workspace member is in the build context (--locked needs every manifest).
    let copied: Vec<&String> = steps
        .iter()
        .filter(|(s, w, r)| *s == 1 && w == "COPY" && !r.starts_with("--from"))
        .map(|(_, _, r)| r)
        .collect();
    for m in members.iter().map(String::as_str).chain(["Cargo.lock"]) {
        assert!(
            copied
                .iter()
                .any(|r| r.split_whitespace().rev().skip(1).any(|src| src == m)),
            "the builder does not copy {m}"
        );
    }

    (builder_alias, built)
}

#[test]
fn dockerfile_builds_the_workspace_binaries_from_every_member() {
    let (_, built) = builder_stage(&dockerfile());
    assert_eq!(built.len(), BINARIES.len());
}

#[test]
fn dockerfile_ships_the_binaries_in_a_non_root_image() {
    let steps = dockerfile();
    let (builder_alias, built) = builder_stage(&steps);
    // The runtime stage: each COPY --from is a built binary, into /usr/local/bin.
    let workdir = steps
        .iter()
        .rfind(|(s, w, _)| *s == 1 && w == "WORKDIR")
        .map(|(_, _, r)| r.clone())
        .expect("builder WORKDIR");
    let mut shipped = BTreeSet::new();
    for (stage, word, rest) in &steps {
        if word != "COPY" || !rest.starts_with("--from") {
            continue;
        }
        assert_eq!(*stage, 2, "binaries are copied into the runtime stage");
        let parts: Vec<&str> = rest.split_whitespace().collect();
        assert_eq!(parts.len(), 3, "COPY --from=STAGE SRC DST: {rest}");
        assert_eq!(parts[0], format!("--from={builder_alias}"));
        let name = parts[1].rsplit('/').next().unwrap();
        assert!(
            built.contains(name),
            "{} is not a workspace binary",
            parts[1]
        );
        assert_eq!(parts[1], format!("{workdir}/target/release/{name}"));
        assert!(
            parts[2] == "/usr/local/bin/" || parts[2] == format!("/usr/local/bin/{name}"),
            "{name} goes to /usr/local/bin, not {}",
            parts[2]
        );
        assert!(mirror_tests::binary(name).is_file());
        shipped.insert(name.to_string());
    }
    assert_eq!(shipped, built, "both binaries are in the image");

    let runtime: Vec<&(usize, String, String)> = steps.iter().filter(|s| s.0 == 2).collect();
    assert!(
        runtime.iter().any(|(_, w, r)| w == "RUN"
            && r.contains("apt-get install")
            && r.contains("ca-certificates")),
        "the runtime installs ca-certificates"
    );
    let user = runtime
        .iter()
        .rfind(|(_, w, _)| w == "USER")
        .map(|(_, _, r)| r.clone())
        .expect("the runtime sets USER");
    let name = user.split(':').next().unwrap();
    assert!(
        name != "root" && name != "0",
        "USER {user} must not be root"
    );
    // No shell in front of the binaries.
    for (_, w, r) in &runtime {
        if w == "ENTRYPOINT" || w == "CMD" {
            assert!(r.starts_with('['), "{w} in exec form: {r}");
            assert!(
                !r.contains("\"sh\"") && !r.contains("/bin/sh"),
                "{w} runs a shell: {r}"
            );
        }
    }
}

/// deploy/Containerfile (what deploy/image/build.sh and the image test build) ends as the
/// Dockerfile's runtime stage does: the same user made the same way, the same USER, WORKDIR,
/// ENV and CMD, and both binaries in /usr/local/bin.
#[test]
fn containerfile_makes_the_same_runtime_as_the_dockerfile() {
    let docker: Vec<(String, String)> = dockerfile()
        .into_iter()
        .filter(|(stage, _, _)| *stage == 2)
        .map(|(_, w, r)| (w, r))
        .collect();
    let container: Vec<(String, String)> = instructions("deploy/Containerfile")
        .into_iter()
        .filter(|(_, w, _)| w != "ARG")
        .map(|(_, w, r)| (w, r))
        .collect();
    let tail = |steps: &[(String, String)]| -> Vec<(String, String)> {
        steps
            .iter()
            .filter(|(w, _)| ["USER", "WORKDIR", "ENV", "CMD", "ENTRYPOINT"].contains(&w.as_str()))
            .cloned()
            .collect()
    };
    assert_eq!(tail(&container), tail(&docker));
    let useradd = |steps: &[(String, String)]| -> String {
        let run = steps
            .iter()
            .find(|(w, r)| w == "RUN" && r.contains("useradd"))
            .map(|(_, r)| r.clone())
            .expect("a RUN makes the user");
        let at = run.find("useradd").unwrap();
        run[at..].split("&&").next().unwrap().trim().to_string()
    };
    assert_eq!(useradd(&container), useradd(&docker));
    let copy = container
        .iter()
        .find(|(w, _)| w == "COPY")
        .map(|(_, r)| r.clone())
        .expect("the Containerfile copies the binaries");
    let words: Vec<&str> = copy.split_whitespace().collect();
    assert_eq!(words.last(), Some(&"/usr/local/bin/"));
    let copied: BTreeSet<&str> = words[..words.len() - 1].iter().copied().collect();
    assert_eq!(copied, BINARIES.iter().copied().collect());
}

/// Runs `deploy/local/stack.sh` with debug binaries from `bin_dir` under stack id `id` (its
/// queue and Redis prefix), at most 300 s; returns its exit status, stdout and stderr.
fn run_stack(
    bin_dir: &Path,
    id: &str,
    pidfile: &Path,
) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new("bash")
        .arg(root().join("deploy/local/stack.sh"))
        .env("STACK_PROFILE", "debug")
        .env("STACK_BIN_DIR", bin_dir)
        .env("STACK_ID", id)
        .env("STACK_PIDFILE", pidfile)
        .env_remove("AMQP_URL")
        .env_remove("REDIS_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("stack.sh did not finish in 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = out_reader.join().unwrap();
    let err = err_reader.join().unwrap();
    (status, out, err)
}

#[test]
fn local_stack_mirrors_through_two_workers_and_leaves_no_process_behind() {
    let worker = mirror_tests::binary("mirror-worker");
    mirror_tests::binary("mirror-scheduler");
    let bin_dir = worker.parent().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let pidfile = tmp.path().join("pids");
    let id = format!(
        "stacktest-{:x}{}",
        rand::random::<u32>(),
        std::process::id()
    );
    let (status, out, err) = run_stack(bin_dir, &id, &pidfile);
    assert!(status.success(), "stack.sh exited {status}:\n{out}\n{err}");

    // oc's lines for every destination tag.
    for tag in [
        "mirror/hello:1.0",
        "mirror/hello:1.1",
        "mirror/world:2.0",
        "mirror/world:latest",
    ] {
        assert!(
            out.lines().any(|l| {
                let mut parts = l.split(' ');
                let (Some(digest), Some(dest), None) = (parts.next(), parts.next(), parts.next())
                else {
                    return false;
                };
                digest.len() == 71 && digest.starts_with("sha256:") && dest.ends_with(tag)
            }),
            "no oc line for {tag}:\n{out}"
        );
    }
    // The status table.
    let header = out
        .lines()
        .find(|l| {
            l.split_whitespace()
                .eq(["queue", "ready", "in-flight", "consumers"])
        })
        .unwrap_or_else(|| panic!("no status table:\n{out}"));
    assert!(!header.is_empty());
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with(&format!("{id}.jobs "))),
        "no row for {id}.jobs:\n{out}"
    );
    assert!(out.contains("runs (1, from "), "{out}");
    assert!(out.contains("4 tags: 4 done"), "{out}");

    // Nothing it started is left.
    let started = std::fs::read_to_string(&pidfile).unwrap();
    let kinds: Vec<&str> = started
        .lines()
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "worker").count(),
        2,
        "{started}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "registry").count(),
        2,
        "{started}"
    );
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = text(&cmdline).replace('\0', " ");
        if cmdline.contains(&id) {
            left.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    assert!(left.is_empty(), "processes left behind: {left:#?}");
    for pid in started.lines().filter_map(|l| l.split(' ').nth(1)) {
        let alive = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| {
                let c = text(&c);
                BINARIES.iter().any(|b| c.contains(b)) || c.contains("docker-registry")
            })
            .unwrap_or(false);
        assert!(!alive, "process {pid} of the stack is still running");
    }
}

/// The groups overlay, rendered: the base's CronJob is gone, one scheduler Deployment runs
/// `--groups` (accepted by the binary), the groups file in its ConfigMap validates, and every
/// credentials name it uses is projected into the workers' credentials directory where
/// `--credentials-dir` looks.
#[test]
fn groups_overlay_runs_every_group_with_each_groups_projected_credentials() {
    let Some(objects) = rendered("groups_overlay_runs_every_group", GROUPS) else {
        return;
    };
    assert!(
        of_kind(&objects, "CronJob").is_empty(),
        "the groups scheduler replaces the base's CronJob"
    );
    let scheduler = object(&objects, "Deployment", "image-mirror-groups-scheduler");
    assert_eq!(
        scheduler["spec"]["replicas"], 1,
        "two would start every group twice"
    );
    let line = command_line(container_running(scheduler, "mirror-scheduler"));
    assert_eq!(
        flag(&line, "--groups", None).as_deref(),
        Some("/groups/groups.yaml")
    );
    assert!(
        flag(&line, "--group", None).is_none(),
        "every group, not one"
    );

    // The groups file validates, and names the credentials the workers hold.
    let groups_yaml = object(&objects, "ConfigMap", "image-mirror-groups")["data"]["groups.yaml"]
        .as_str()
        .unwrap()
        .to_string();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("groups.yaml"), &groups_yaml).unwrap();
    std::fs::create_dir(tmp.path().join("mappings")).unwrap();
    let out = Command::new(mirror_tests::binary("mirror-scheduler"))
        .args(["validate", "--groups"])
        .arg(tmp.path().join("groups.yaml"))
        .arg("--dir")
        .arg(tmp.path().join("mappings"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let groups: Value = serde_yaml_ng::from_str(&groups_yaml).unwrap();
    let names: BTreeSet<String> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|g| g["credentials"].as_str().map(str::to_string))
        .collect();

    let worker = object(&objects, "Deployment", "image-mirror-worker");
    let pod = pod_spec(worker).unwrap();
    let w = container_running(worker, "mirror-worker");
    let dir = env_value(w, "CREDENTIALS_DIR").expect("the workers get CREDENTIALS_DIR");
    let volume = volume_at(pod, w, dir).expect("something is mounted at the credentials directory");
    let projected: BTreeSet<String> = volume["projected"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["secret"]["items"].as_array().cloned().unwrap_or_default())
        .filter_map(|i| {
            let path = i["path"].as_str()?;
            let name = path.strip_suffix("/.dockerconfigjson")?;
            (i["key"] == ".dockerconfigjson").then(|| name.to_string())
        })
        .collect();
    assert_eq!(
        projected, names,
        "every group's credentials, at <name>/.dockerconfigjson"
    );
    // The patch kept the base's own credentials mount.
    assert!(
        volume_at(pod, w, "/home/mirror/.docker").is_some(),
        "the base's registry credentials stay mounted"
    );
}

/// Every long-running process of the rendered manifests (each Deployment: the workers, and
/// the groups scheduler in the overlay) serves `/metrics` on its `--listen` port and is
/// annotated for scraping on that port, so the queue depth, job and group metrics that
/// deploy/monitoring reads come from wherever a scheduler or worker runs. The workers log
/// JSON (`LOG_FORMAT=json`) for collectors.
#[test]
fn every_long_running_process_is_scraped_on_its_listen_port() {
    for k in [BASE, GROUPS] {
        let Some(objects) = rendered("every_long_running_process_is_scraped", k) else {
            return;
        };
        let deployments = of_kind(&objects, "Deployment");
        assert_eq!(deployments.len(), if k == BASE { 1 } else { 2 }, "{k}");
        for d in deployments {
            let name = d["metadata"]["name"].as_str().unwrap_or_default();
            let pod = pod_spec(d).unwrap();
            let c = containers(pod)[0];
            let line = command_line(c);
            let listen = flag(&line, "--listen", None)
                .unwrap_or_else(|| panic!("{k}: {name} serves no --listen: {line:?}"));
            let port = listen.rsplit(':').next().unwrap_or_default().to_string();
            let annotations = &d["spec"]["template"]["metadata"]["annotations"];
            assert_eq!(annotations["prometheus.io/scrape"], "true", "{k}: {name}");
            assert_eq!(
                annotations["prometheus.io/port"],
                port.as_str(),
                "{k}: {name}"
            );
            assert_eq!(annotations["prometheus.io/path"], "/metrics", "{k}: {name}");
            assert!(
                !c["readinessProbe"]["httpGet"].is_null(),
                "{k}: {name} has a readiness probe"
            );
        }
        let worker = container_running(
            object(&objects, "Deployment", "image-mirror-worker"),
            "mirror-worker",
        );
        assert_eq!(env_value(worker, "LOG_FORMAT"), Some("json"), "{k}");
    }
}
