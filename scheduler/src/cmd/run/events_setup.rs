//! `--listen-events`: the notification endpoint started beside a long-running `run`, with
//! what it needs from the run's flags: the routes (each group's files and stamp, built
//! again whenever the endpoint checks for changed files), a registry client for the
//! sources' HEADs, and where the jobs go (in-process workers with `--local`, else the
//! fleet's queue, marking pending tags as runs do).

use std::sync::Arc;

use anyhow::{bail, Result};
use mirror_common::state::StateStore;
use mirror_fleet::store::Redis;

use super::args::Args;
use crate::events::routes::Route;
use crate::events::{Setup, SinkSetup};

/// Starts the endpoint on `args.listen_events`, if given; refuses it outside the
/// long-running modes (a single run would stop listening when it ends).
pub(crate) async fn start(args: &Args, staying_up: bool) -> Result<()> {
    let (Some(listen), Some(senders)) = (args.listen_events, args.event_senders.clone()) else {
        return Ok(());
    };
    if !staying_up {
        bail!("--listen-events goes with --schedule or --groups (every group): a single run ends, and the listener with it");
    }
    if args.dry_run {
        bail!("--listen-events publishes jobs; it does not go with --dry-run");
    }
    // Checked now, so that a bad groups file or selection fails the start.
    routes(args)?;
    let route_args = args.clone();
    let client = Arc::new(mirror_common::registry::RegistryClient::new(
        args.registry.client_options()?,
    )?);
    let sink = match args.local {
        true => {
            // The process's state file: what event jobs push, the next run knows.
            let store = super::state::open(args)?.map(|f| f as Arc<dyn StateStore>);
            let (index, hooks) = super::state::engine_parts(store.as_ref());
            let copy = args.copy.options(false).map_err(anyhow::Error::msg)?;
            SinkSetup::Embedded {
                engines: Arc::new(
                    args.registry
                        .engines(&args.named_credentials, hooks, index, copy)?
                        .limit_copies(args.workers),
                ),
                in_flight: args.in_flight.unwrap_or(args.workers * 8),
                tries: max_tries(args)?,
                store,
            }
        }
        false => SinkSetup::Distributed {
            broker: args.broker.config(1),
            redis: Redis::connect_checked(args.redis.config_with(&args.redis_ttl)).await?,
            pending_for: super::pending::PENDING_FOR,
        },
    };
    crate::events::start(Setup {
        listen,
        senders,
        queue: args.events_queue,
        window: args.events_window.into(),
        resolve: Arc::new(move || routes(&route_args)),
        client,
        sink,
    })
    .await?;
    Ok(())
}

/// The routes of the run: every group's (`--groups`), else the run's own files.
fn routes(args: &Args) -> Result<Vec<Route>> {
    let groups: Vec<Option<String>> = match &args.groups {
        Some(path) => crate::groups::load(path)?
            .groups
            .iter()
            .map(|g| Some(g.name.clone()))
            .collect(),
        None => vec![None],
    };
    groups
        .into_iter()
        .map(|group| {
            let mut a = args.clone();
            a.group.clone_from(&group);
            let s = super::settings::resolve(&a)?;
            Ok(Route {
                group: s.group.clone(),
                stamp: s.stamp(),
                files: s.files,
            })
        })
        .collect()
}

/// The most tries any route's jobs get in the embedded mode (one in-process queue serves
/// them all).
fn max_tries(args: &Args) -> Result<u32> {
    let mut tries = 1;
    if let Some(path) = &args.groups {
        for g in &crate::groups::load(path)?.groups {
            tries = tries.max(g.tries);
        }
    }
    Ok(tries)
}
