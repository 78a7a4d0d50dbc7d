//! The repository accesses one request needs (`pull`, `pull,push`, a mount's `from`), which
//! is also the key of the token cache.

/// Access wanted on one repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Access {
    /// Pull only: read manifests and blobs.
    Pull,
    /// Pull and push (a registry needs pull to answer HEADs during a push).
    Push,
}

/// The set of repository accesses one request needs; the key of the token cache.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Scope(Vec<(String, Access)>);

impl Scope {
    /// Access to one repository.
    pub fn repo(repository: &str, access: Access) -> Self {
        Scope(vec![(repository.to_string(), access)])
    }

    /// No repository at all (the `/v2/` ping, the catalog).
    pub fn none() -> Self {
        Scope(Vec::new())
    }

    /// This scope plus pull on another repository (the `from` of a mount).
    pub fn and_pull(mut self, repository: &str) -> Self {
        if !self.0.iter().any(|(r, _)| r == repository) {
            self.0.push((repository.to_string(), Access::Pull));
            self.0.sort();
        }
        self
    }

    /// The `scope` parameters of a token request.
    pub fn params(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(r, a)| match a {
                Access::Pull => format!("repository:{r}:pull"),
                Access::Push => format!("repository:{r}:pull,push"),
            })
            .collect()
    }
}
