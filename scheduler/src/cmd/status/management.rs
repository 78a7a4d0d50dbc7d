//! The RabbitMQ management API, for what AMQP cannot tell: the queues of an installation
//! (`GET /api/queues/<vhost>`, filtered by the prefix here), so `status` finds the retry
//! queues the workers declared after their own `--retry-delays`, and the in-flight
//! (unacknowledged) counts. Errors are one line naming the API's URL (never the
//! credentials, taken from the AMQP URL).

use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use mirror_cli::BrokerArgs;
use serde::Deserialize;

/// One queue as the management API lists it (the columns asked for).
#[derive(Debug, Deserialize)]
pub(crate) struct ListedQueue {
    pub name: String,
    #[serde(default)]
    pub messages_unacknowledged: u64,
}

/// The queues of the vhost whose names start with `<prefix>.`.
pub(crate) async fn queues(management_url: &str, broker: &BrokerArgs) -> Result<Vec<ListedQueue>> {
    let base = management_url.trim_end_matches('/');
    let amqp = url::Url::parse(&broker.amqp).context("--amqp is not a URL")?;
    let user = match amqp.username() {
        "" => "guest".to_string(),
        u => percent_decode(u),
    };
    let password = amqp.password().map_or("guest".to_string(), percent_decode);
    let vhost = match amqp.path().trim_start_matches('/') {
        "" => "%2f".to_string(),
        v => v.to_string(),
    };
    let url = format!("{base}/api/queues/{vhost}?columns=name,messages_unacknowledged");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()?;
    let resp = http
        .get(&url)
        .basic_auth(&user, Some(&password))
        .send()
        .await
        .map_err(|e| {
            anyhow!(
                "management API not reachable at {base} ({})",
                e.without_url()
            )
        })?;
    let status = resp.status();
    if !status.is_success() {
        return Err(anyhow!(
            "management API at {base} answered {status} to a queue listing"
        ));
    }
    let listed: Vec<ListedQueue> = resp.json().await.map_err(|e| {
        anyhow!(
            "management API at {base}: unreadable queue listing ({})",
            e.without_url()
        )
    })?;
    let own = format!("{}.", broker.queue_prefix);
    Ok(listed
        .into_iter()
        .filter(|q| q.name.starts_with(&own))
        .collect())
}

/// The retry delays of the installation, read off its retry queues' names
/// (`<prefix>.retry.<ms>ms`), shortest first.
pub(crate) fn retry_delays(prefix: &str, listed: &[ListedQueue]) -> Vec<Duration> {
    let head = format!("{prefix}.retry.");
    let mut delays: Vec<Duration> = listed
        .iter()
        .filter_map(|q| q.name.strip_prefix(&head)?.strip_suffix("ms")?.parse().ok())
        .map(Duration::from_millis)
        .collect();
    delays.sort();
    delays.dedup();
    delays
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map_or_else(|| s.to_string(), |(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_are_read_off_the_retry_queues_of_the_prefix() {
        let listed: Vec<ListedQueue> = [
            "p.jobs",
            "p.retry.4000ms",
            "p.retry.2000ms",
            "p.retry.x",
            "q.retry.1ms",
        ]
        .iter()
        .map(|n| ListedQueue {
            name: n.to_string(),
            messages_unacknowledged: 0,
        })
        .collect();
        assert_eq!(
            retry_delays("p", &listed),
            [Duration::from_secs(2), Duration::from_secs(4)]
        );
    }
}
