//! Image references given on the command line, as skopeo users write them too.

use mirror_common::reference::ImageRef;

/// skopeo's transports that name something other than a registry.
const OTHER_TRANSPORTS: [&str; 6] = [
    "oci",
    "oci-archive",
    "dir",
    "docker-archive",
    "docker-daemon",
    "containers-storage",
];

/// Parses an image reference argument. skopeo's `docker://` prefix (a registry) is
/// accepted and dropped; skopeo's other transports are refused by name, as only registries
/// are mirrored here. Mapping files take no prefix, as oc's do not.
pub fn image_arg(value: &str) -> Result<ImageRef, String> {
    let trimmed = value.trim();
    let reference = trimmed.strip_prefix("docker://").unwrap_or(trimmed);
    if let Some((transport, rest)) = reference.split_once(':') {
        let port = rest.split('/').next().unwrap_or("");
        let is_port = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
        if OTHER_TRANSPORTS.contains(&transport) && !is_port {
            return Err(format!(
                "\"{value}\": the {transport}: transport is not supported; only registries are (docker://HOST/REPO or HOST/REPO)"
            ));
        }
    }
    ImageRef::parse(reference).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_prefix_is_dropped_and_other_transports_are_refused() {
        let r = image_arg("docker://quay.io/team/app:1").unwrap();
        assert_eq!(r.to_string(), "quay.io/team/app:1");
        assert_eq!(image_arg("quay.io/team/app:1").unwrap(), r);
        let e = image_arg("oci:/tmp/layout:1").unwrap_err();
        assert!(e.contains("oci: transport"), "{e}");
        let e = image_arg("containers-storage:quay.io/a:1").unwrap_err();
        assert!(e.contains("containers-storage: transport"), "{e}");
        // A registry that happens to be called like a transport, with its port.
        assert_eq!(image_arg("oci:5000/a:1").unwrap().registry, "oci:5000");
        assert!(image_arg("docker://").is_err());
    }
}
