//! Back-off before replacing a failed daemon pod on a node, so a node that keeps rejecting the
//! pod is not hammered with create/delete cycles (upstream: 1s doubling to 15m, forgotten after
//! 30m of quiet).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const INITIAL: Duration = Duration::from_secs(1);
const MAX: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Default)]
pub struct Backoff {
    /// Per `set/node`: the current delay and when it was last used.
    entries: Mutex<HashMap<String, (Duration, Instant)>>,
}

impl Backoff {
    /// If `key` may act now, records the attempt and returns None; otherwise how long to wait.
    pub fn attempt(&self, key: &str, now: Instant) -> Option<Duration> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.retain(|_, (_, last)| now.duration_since(*last) < 2 * MAX);
        match entries.get_mut(key) {
            Some((delay, last)) => {
                let ready_at = *last + *delay;
                if now < ready_at {
                    return Some(ready_at - now);
                }
                *delay = (*delay * 2).min(MAX);
                *last = now;
                None
            }
            None => {
                entries.insert(key.to_string(), (INITIAL, now));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_and_resets() {
        let b = Backoff::default();
        let t0 = Instant::now();
        let steps = [
            ("first failure acts at once", 0, None),
            ("within a second waits", 0, Some(INITIAL)),
            ("after a second acts", 1, None),
            ("now waits two", 1, Some(Duration::from_secs(2))),
            ("after two acts", 3, None),
            ("after long quiet, starts over", 3 + 2 * MAX.as_secs(), None),
            ("and waits one second again", 3 + 2 * MAX.as_secs(), Some(INITIAL)),
        ];
        for (name, at, want) in steps {
            assert_eq!(b.attempt("ds/n1", t0 + Duration::from_secs(at)), want, "{name}");
        }
        assert_eq!(b.attempt("ds/n2", t0), None, "nodes are independent");
    }
}
