//! The Kubernetes manifests as a cluster would receive them: every kustomization under
//! `deploy/kubernetes` rendered by `kubectl kustomize` (kustomize 5), read into JSON values,
//! and the few accessors the deployment tests share (pod specs, containers, command lines,
//! flags).
//!
//! Why rendered and not the YAML files: an overlay's patches (the groups overlay deletes the
//! base's CronJob and adds credentials to the workers) and kustomize's own rules (an overlay
//! may not sit inside its base's directory) only show in what `kubectl kustomize` prints.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

/// `deploy/kubernetes` of the repository.
pub fn k8s_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes")
}

/// Every directory under `deploy/kubernetes` that holds a `kustomization.yaml`, relative to
/// it (`base`, `overlays/groups`), sorted.
pub fn kustomizations() -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        if dir.join("kustomization.yaml").is_file() {
            let rel = dir.strip_prefix(root).expect("below the root");
            out.push(rel.to_string_lossy().into_owned());
        }
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("readable manifest directory")
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.is_dir())
            .collect();
        entries.sort();
        for e in entries {
            walk(root, &e, out);
        }
    }
    let root = k8s_dir();
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out
}

/// Why a kustomization could not be rendered on this machine (no kubectl): the caller skips
/// with this reason rather than pass without looking.
#[derive(Debug)]
pub struct NoRenderer(pub String);

/// The objects `kubectl kustomize deploy/kubernetes/<kustomization>` prints.
///
/// # Errors
/// [`NoRenderer`] when there is no `kubectl` on the PATH.
///
/// # Panics
/// When kustomize refuses the kustomization (that is a broken deployment, not a missing
/// tool), or prints something that is not YAML.
pub fn render(kustomization: &str) -> Result<Vec<Value>, NoRenderer> {
    let dir = k8s_dir().join(kustomization);
    let out = match Command::new("kubectl").arg("kustomize").arg(&dir).output() {
        Ok(out) => out,
        Err(e) => {
            return Err(NoRenderer(format!(
            "kubectl (with kustomize 5) is needed to render deploy/kubernetes/{kustomization}: {e}"
        )))
        }
    };
    assert!(
        out.status.success(),
        "kubectl kustomize deploy/kubernetes/{kustomization}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("kustomize prints UTF-8");
    Ok(serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc).unwrap_or_else(|e| {
                panic!("kustomize printed invalid YAML for {kustomization}: {e}")
            })
        })
        .filter(|v| !v.is_null())
        .collect())
}

/// The one object of `kind` named `name` among `objects`.
///
/// # Panics
/// When there is none.
pub fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among the rendered objects"))
}

/// The objects of one kind.
pub fn of_kind<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["kind"] == kind).collect()
}

/// The pod spec of a workload, if the object has one.
pub fn pod_spec(object: &Value) -> Option<&Value> {
    let spec = match object["kind"].as_str()? {
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => &object["spec"]["template"]["spec"],
        "CronJob" => &object["spec"]["jobTemplate"]["spec"]["template"]["spec"],
        "Pod" => &object["spec"],
        _ => return None,
    };
    Some(spec)
}

/// The init containers and containers of a pod spec.
pub fn containers(pod: &Value) -> Vec<&Value> {
    ["initContainers", "containers"]
        .iter()
        .filter_map(|k| pod[*k].as_array())
        .flatten()
        .collect()
}

/// A YAML list as strings (numbers written as they print).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| match s {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `command` + `args` of a container.
pub fn command_line(container: &Value) -> Vec<String> {
    let mut line = strings(&container["command"]);
    line.extend(strings(&container["args"]));
    line
}

/// The value of a long flag (`--flag V` or `--flag=V`, or the short alias) in a command line.
pub fn flag(args: &[String], long: &str, short: Option<&str>) -> Option<String> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == long || Some(a.as_str()) == short {
            return it.next().cloned();
        }
        if let Some(v) = a.strip_prefix(&format!("{long}=")) {
            return Some(v.to_string());
        }
    }
    None
}

/// The container of `workload` whose command is `binary`.
///
/// # Panics
/// When it has none.
pub fn container_running<'a>(workload: &'a Value, binary: &str) -> &'a Value {
    containers(pod_spec(workload).expect("a workload"))
        .into_iter()
        .find(|c| strings(&c["command"]).first().map(String::as_str) == Some(binary))
        .unwrap_or_else(|| panic!("{} runs no {binary}", workload["metadata"]["name"]))
}

/// The value of environment variable `name` set in a container's `env`.
pub fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

/// The volume of `pod` mounted at `path` in `container`.
pub fn volume_at<'a>(pod: &'a Value, container: &Value, path: &str) -> Option<&'a Value> {
    let mount = container["volumeMounts"]
        .as_array()?
        .iter()
        .find(|m| m["mountPath"] == path)?;
    pod["volumes"]
        .as_array()?
        .iter()
        .find(|v| v["name"] == mount["name"])
}
