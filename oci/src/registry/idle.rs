//! Stall detection for blob transfers, by progress instead of by total time: a download
//! fails when its source sends nothing for the idle limit; an upload fails when its
//! destination takes nothing for that long, or does not answer once it has everything.

use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;

type Chunks = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A download body that fails with `stalled()`'s error when no chunk comes for `idle`.
pub(crate) struct IdleLimited {
    inner: Chunks,
    idle: Duration,
    timer: Pin<Box<tokio::time::Sleep>>,
    stalled: Option<Box<dyn FnOnce() -> std::io::Error + Send>>,
}

impl IdleLimited {
    pub(crate) fn new(
        inner: Chunks,
        idle: Duration,
        stalled: impl FnOnce() -> std::io::Error + Send + 'static,
    ) -> Self {
        IdleLimited {
            inner,
            idle,
            timer: Box::pin(tokio::time::sleep(idle)),
            stalled: Some(Box::new(stalled)),
        }
    }
}

impl Stream for IdleLimited {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(_) = self.stalled else {
            return Poll::Ready(None);
        };
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(item) => {
                let deadline = tokio::time::Instant::now() + self.idle;
                self.timer.as_mut().reset(deadline);
                Poll::Ready(item)
            }
            Poll::Pending => match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    let stalled = self.stalled.take();
                    Poll::Ready(stalled.map(|f| Err(f())))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// What an upload's body has done so far, shared with its watchdog.
#[derive(Default)]
struct State {
    /// When the last chunk went to the destination (or the body ended).
    last: Option<Instant>,
    /// The destination asked for more and the source has not delivered yet: a stall here
    /// is the source's, caught by the source's own idle limit.
    waiting_on_source: bool,
    /// Every byte was handed to the destination.
    done: bool,
}

/// An upload body that records its progress for [`UploadWatch::stalled`].
pub(crate) struct Watched {
    inner: Chunks,
    state: Arc<Mutex<State>>,
}

/// The watchdog side of a [`Watched`] body.
pub(crate) struct UploadWatch {
    state: Arc<Mutex<State>>,
    started: Instant,
}

/// Wraps an upload body; the watch tells when the destination stalled.
pub(crate) fn watch(inner: Chunks) -> (Watched, UploadWatch) {
    let state: Arc<Mutex<State>> = Arc::default();
    (
        Watched {
            inner,
            state: state.clone(),
        },
        UploadWatch {
            state,
            started: Instant::now(),
        },
    )
}

impl Stream for Watched {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        let mut st = self.state.lock();
        match &polled {
            Poll::Pending => st.waiting_on_source = true,
            Poll::Ready(item) => {
                st.waiting_on_source = false;
                st.last = Some(Instant::now());
                st.done = item.is_none();
            }
        }
        drop(st);
        polled
    }
}

impl UploadWatch {
    /// Resolves, with what stalled, once the destination has taken nothing for `idle`
    /// (while the source had bytes for it), or has not answered within `idle` of the last
    /// byte. Never resolves while the upload makes progress.
    pub(crate) async fn stalled(&self, idle: Duration) -> String {
        let every = (idle / 4).clamp(Duration::from_millis(20), Duration::from_secs(5));
        loop {
            tokio::time::sleep(every).await;
            let st = self.state.lock();
            if st.waiting_on_source {
                continue;
            }
            let since = st.last.unwrap_or(self.started).elapsed();
            if since < idle {
                continue;
            }
            return if st.done {
                format!(
                    "the destination did not answer within {} after the whole blob was sent",
                    humanize(idle)
                )
            } else {
                format!(
                    "the destination took no bytes of the upload for {}",
                    humanize(idle)
                )
            };
        }
    }
}

/// `1.5s`, `120s`: limits are written the way the flags take them.
pub(crate) fn humanize(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}ms", ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_download_that_stops_sending_fails_after_the_idle_limit() {
        let slow =
            futures::stream::iter([Ok(Bytes::from_static(b"a"))]).chain(futures::stream::pending());
        let mut s = IdleLimited::new(Box::pin(slow), Duration::from_millis(50), || {
            std::io::Error::other("the source stalled")
        });
        assert_eq!(s.next().await.unwrap().unwrap(), "a");
        let t = Instant::now();
        let e = s.next().await.unwrap().unwrap_err();
        assert_eq!(e.to_string(), "the source stalled");
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert!(s.next().await.is_none());
    }

    #[tokio::test]
    async fn a_steady_download_slower_than_the_limit_in_total_is_not_cut() {
        let steady = futures::stream::iter(0..6).then(|_| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(Bytes::from_static(b"x"))
        });
        let s = IdleLimited::new(Box::pin(steady), Duration::from_millis(50), || {
            std::io::Error::other("stalled")
        });
        let all: Vec<_> = s.collect().await;
        assert_eq!(all.len(), 6);
        assert!(all.iter().all(Result::is_ok));
    }

    #[tokio::test]
    async fn an_upload_nobody_reads_is_reported_as_the_destinations_stall() {
        let body = futures::stream::iter([Ok(Bytes::from_static(b"x"))]);
        let (_body, watch) = watch(Box::pin(body));
        let why = watch.stalled(Duration::from_millis(40)).await;
        assert!(why.contains("the destination took no bytes"), "{why}");
    }

    #[tokio::test]
    async fn an_upload_waiting_on_its_source_is_not_blamed_on_the_destination() {
        let body = futures::stream::pending::<Result<Bytes, std::io::Error>>();
        let (mut body, watch) = watch(Box::pin(body));
        let poll = tokio::time::timeout(Duration::from_millis(10), body.next()).await;
        assert!(poll.is_err(), "the source has nothing");
        let stalled = tokio::time::timeout(
            Duration::from_millis(150),
            watch.stalled(Duration::from_millis(30)),
        )
        .await;
        assert!(
            stalled.is_err(),
            "waiting on the source is not the destination's stall"
        );
    }
}
