//! The same tag pushed again within a short window becomes one more job at most, not one
//! per push: CI pipelines re-push `latest` several times a minute, and a registry may send
//! one push twice. The first push of a tag goes out at once (the fast path); pushes of it
//! within the window are folded into one that goes out when the window ends, so that the
//! last state of the tag is always re-checked (the first job's HEAD may have seen the tag
//! before the later push). Pure: the caller says what time it is.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Pushes waiting for their tag's window to end.
pub(crate) struct Coalescer<K, V> {
    window: Duration,
    open: HashMap<K, Window<V>>,
}

struct Window<V> {
    until: Instant,
    /// A push that came while the window was open, to go out when it ends.
    trailing: Option<V>,
}

impl<K: Eq + Hash + Clone, V> Coalescer<K, V> {
    /// Windows of `window`.
    pub(crate) fn new(window: Duration) -> Self {
        Coalescer {
            window,
            open: HashMap::new(),
        }
    }

    /// A push of `key` at `now`: returned when it goes out at once, else kept (folded with
    /// `merge` into the one already waiting) and `None`.
    pub(crate) fn offer(
        &mut self,
        key: K,
        value: V,
        now: Instant,
        merge: impl FnOnce(V, V) -> V,
    ) -> Option<V> {
        match self.open.get_mut(&key) {
            Some(w) if w.until > now => {
                w.trailing = Some(match w.trailing.take() {
                    Some(old) => merge(old, value),
                    None => value,
                });
                None
            }
            _ => {
                self.open.insert(
                    key,
                    Window {
                        until: now + self.window,
                        trailing: None,
                    },
                );
                Some(value)
            }
        }
    }

    /// The folded pushes whose window has ended by `now` (each opens a new window: a push
    /// right after is folded again); windows that ended with nothing waiting are closed.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<V> {
        let mut out = Vec::new();
        let window = self.window;
        self.open.retain(|_, w| {
            if w.until > now {
                return true;
            }
            match w.trailing.take() {
                Some(v) => {
                    out.push(v);
                    w.until = now + window;
                    true
                }
                None => false,
            }
        });
        out
    }

    /// When the earliest window ends (to sleep until then), if any is open.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.open.values().map(|w| w.until).min()
    }

    /// Pushes waiting for their window to end.
    pub(crate) fn waiting(&self) -> usize {
        self.open.values().filter(|w| w.trailing.is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_push_goes_at_once_repeats_fold_into_one_at_the_window_end() {
        let t0 = Instant::now();
        let w = Duration::from_secs(2);
        let mut c: Coalescer<&str, u32> = Coalescer::new(w);
        let keep_first = |a: u32, _b: u32| a;
        assert_eq!(c.offer("app:1", 1, t0, keep_first), Some(1));
        assert_eq!(
            c.offer("app:1", 2, t0 + Duration::from_millis(10), keep_first),
            None
        );
        assert_eq!(
            c.offer("app:1", 3, t0 + Duration::from_millis(20), keep_first),
            None
        );
        assert_eq!(
            c.offer("app:2", 9, t0 + Duration::from_millis(30), keep_first),
            Some(9)
        );
        assert_eq!(c.waiting(), 1);
        assert!(c.due(t0 + Duration::from_secs(1)).is_empty());
        assert_eq!(c.next_due(), Some(t0 + w));
        // Thousands of pushes of one tag in the window: still one more job.
        for i in 0..5000 {
            assert_eq!(
                c.offer("app:1", 100 + i, t0 + Duration::from_millis(40), keep_first),
                None
            );
        }
        assert_eq!(c.due(t0 + w), vec![2]);
        // The folded push opened a new window; nothing waits in it, so it closes.
        assert!(c.due(t0 + w + w).is_empty());
        assert_eq!(c.next_due(), None);
        assert_eq!(c.offer("app:1", 7, t0 + w + w, keep_first), Some(7));
    }
}
