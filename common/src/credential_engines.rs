//! The copy engine of each job's credentials. Teams push with credentials of their own
//! (a name in the job, a docker config under that name on the workers); a job uses its
//! name's credentials, with the process's own (`-a`: pull access, say) underneath, and
//! never another name's. Each name has a client of its own, so tokens are never shared
//! across names either. A name's config is looked at again for every job: a rotated
//! Secret is used by the next job, without a restart.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::copy::{CopyEngine, CopyOptions};
use crate::index::BlobIndex;
use crate::registry::{ClientOptions, CredentialsDir, Located, RegistryClient, RegistryError};

/// Copy engines by credentials name, sharing one blob index.
pub struct Engines {
    /// The engine of jobs that name no credentials.
    default: Arc<CopyEngine>,
    /// How named engines are built; `None` when this process holds no named credentials.
    named_from: Option<Named>,
    /// Engines built so far, with the config file they were built from.
    named: Mutex<HashMap<String, (Located, Arc<CopyEngine>)>>,
    /// Copies that move content at once, over every engine (`None`: as many as jobs).
    copy_slots: Option<Arc<Semaphore>>,
}

struct Named {
    dir: CredentialsDir,
    base: ClientOptions,
    index: Arc<dyn BlobIndex>,
    opts: CopyOptions,
}

impl Engines {
    /// Engines over `base` (the process's own credentials and settings) and, when given,
    /// the named credentials under `credentials_dir`.
    pub fn new(
        base: ClientOptions,
        credentials_dir: Option<PathBuf>,
        index: Arc<dyn BlobIndex>,
        opts: CopyOptions,
    ) -> Result<Engines, RegistryError> {
        let client = Arc::new(RegistryClient::new(base.clone())?);
        let default = Arc::new(CopyEngine::new(client, index.clone(), opts.clone()));
        Ok(Engines {
            default,
            named_from: credentials_dir.map(|dir| Named {
                dir: CredentialsDir::new(dir),
                base,
                index,
                opts,
            }),
            named: Mutex::default(),
            copy_slots: None,
        })
    }

    /// At most `n` jobs past their checks at once (reading sources, moving blobs, pushing),
    /// however many are in flight: see [`CopyEngine::copy_in_slot`].
    pub fn limit_copies(mut self, n: usize) -> Self {
        self.copy_slots = Some(Arc::new(Semaphore::new(n.max(1))));
        self
    }

    /// The slots of [`limit_copies`](Self::limit_copies), if limited.
    pub fn copy_slots(&self) -> Option<&Semaphore> {
        self.copy_slots.as_deref()
    }

    /// The engine for a job naming `credentials` (or none). The error names the missing
    /// credentials and where they were looked for.
    pub fn for_job(&self, credentials: Option<&str>) -> Result<Arc<CopyEngine>, RegistryError> {
        let Some(name) = credentials else {
            return Ok(self.default.clone());
        };
        let Some(from) = &self.named_from else {
            return Err(RegistryError::Config(format!(
                "credentials \"{name}\": the job needs them and this process was given no --credentials-dir"
            )));
        };
        let now = from.dir.locate(name)?;
        let mut named = self.named.lock();
        if let Some((built_from, engine)) = named.get(name) {
            if *built_from == now {
                return Ok(engine.clone());
            }
            tracing::info!(
                credentials = name,
                "credentials changed on disk; using the new ones"
            );
        }
        let (found, store) = from.dir.load(name)?;
        let opts = ClientOptions {
            credentials: store.over(&from.base.credentials),
            ..from.base.clone()
        };
        let client = Arc::new(RegistryClient::new(opts)?);
        let engine = Arc::new(CopyEngine::new(
            client,
            from.index.clone(),
            from.opts.clone(),
        ));
        named.insert(name.to_string(), (found, engine.clone()));
        Ok(engine)
    }
}
