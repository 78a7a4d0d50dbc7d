//! The key layout. Keys about one destination registry carry the hash tag `{<registry>}`, so
//! every key of a registry lives in one Redis Cluster slot (multi-key Lua such as the
//! throttle, which reads the pause and the bucket, is legal there) while registries spread
//! over the cluster. Keys about a run carry `{<run_id>}`.
//!
//! | key                                   | type   | holds                                  |
//! |---------------------------------------|--------|----------------------------------------|
//! | `<p>:{<registry>}:blob:<digest>`      | set    | repositories known to hold the blob    |
//! | `<p>:{<registry>}:lease:<digest>`     | string | upload lease: the holder's token       |
//! | `<p>:{<registry>}:tag:<repo>:<tag>`   | string | `<digest> <ms>`: pushed / seen, when   |
//! | `<p>:{<registry>}:pause`              | string | present while the registry is paused   |
//! | `<p>:{<registry>}:bucket`             | hash   | token bucket: `tokens`, `ts` (ms)      |
//! | `<p>:run:{<run_id>}`                  | hash   | run progress counters, group           |
//! | `<p>:run:{<run_id>}:failures`         | list   | a run's first failed tags (JSON), capped |
//! | `<p>:runs`                            | zset   | run ids by start (ms): `status`'s index |
//!
//! Registry names are host[:port] and cannot contain braces; repositories and tags cannot
//! contain `:`, so the parts never run into each other.

use uuid::Uuid;

/// Builds the keys under one prefix.
#[derive(Clone, Debug)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    fn registry(&self, registry: &str, rest: &str) -> String {
        format!("{}:{{{}}}:{}", self.prefix, registry, rest)
    }

    pub(crate) fn blob(&self, registry: &str, digest: &str) -> String {
        self.registry(registry, &format!("blob:{digest}"))
    }

    pub(crate) fn lease(&self, registry: &str, digest: &str) -> String {
        self.registry(registry, &format!("lease:{digest}"))
    }

    pub(crate) fn dest_tag(&self, registry: &str, repository: &str, tag: &str) -> String {
        self.registry(registry, &format!("tag:{repository}:{tag}"))
    }

    /// The run whose job holds a destination tag (see `pending.rs`).
    pub(crate) fn pending_tag(&self, registry: &str, repository: &str, tag: &str) -> String {
        self.registry(registry, &format!("pending:{repository}:{tag}"))
    }

    pub(crate) fn pause(&self, registry: &str) -> String {
        self.registry(registry, "pause")
    }

    pub(crate) fn bucket(&self, registry: &str) -> String {
        self.registry(registry, "bucket")
    }

    pub(crate) fn quirks(&self, registry: &str) -> String {
        self.registry(registry, "quirks")
    }

    pub(crate) fn run(&self, run_id: Uuid) -> String {
        format!("{}:run:{{{}}}", self.prefix, run_id)
    }

    /// The run's failed tags: the run's hash tag, so one MULTI counts and lists a failure.
    pub(crate) fn run_failures(&self, run_id: Uuid) -> String {
        format!("{}:failures", self.run(run_id))
    }

    pub(crate) fn runs(&self) -> String {
        format!("{}:runs", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The part of a key Redis Cluster hashes: the first `{...}` with something inside.
    fn hash_tag(key: &str) -> &str {
        if let Some(open) = key.find('{') {
            if let Some(len) = key[open + 1..].find('}') {
                if len > 0 {
                    return &key[open + 1..open + 1 + len];
                }
            }
        }
        key
    }

    #[test]
    fn keys_of_one_registry_share_its_hash_tag() {
        let k = Keys::new("m");
        let reg = "registry.example.com:5000";
        let all = [
            k.blob(reg, "sha256:ab"),
            k.lease(reg, "sha256:ab"),
            k.dest_tag(reg, "a/b", "1.0"),
            k.pause(reg),
            k.bucket(reg),
        ];
        assert!(all.iter().all(|key| hash_tag(key) == reg), "{all:?}");
        assert_eq!(
            k.blob(reg, "sha256:ab"),
            "m:{registry.example.com:5000}:blob:sha256:ab"
        );
        assert_eq!(
            k.dest_tag(reg, "a/b", "1.0"),
            "m:{registry.example.com:5000}:tag:a/b:1.0"
        );
        let run = Uuid::nil();
        assert_eq!(hash_tag(&k.run(run)), run.to_string());
        assert_eq!(hash_tag(&k.run_failures(run)), run.to_string());
    }
}
