//! Exponential back-off per key (a container name, an image), the way the kubelet spaces out restarts of a
//! crashing container and pulls of a failing image: 10 s doubling to 5 min, forgotten after a quiet spell.

use std::collections::HashMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

pub const INITIAL: Duration = Duration::from_secs(10);
pub const MAX: Duration = Duration::from_secs(300);
/// A container that ran this long before exiting starts over from [`INITIAL`].
pub const RESET_AFTER_RUNNING: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    delay: Duration,
    last_update: Timestamp,
}

/// Back-off delays by key.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(INITIAL, MAX)
    }
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, entries: HashMap::new() }
    }

    /// Records one more failure of `key` at `at`: the first (or the first after a quiet spell of twice
    /// the maximum) gets the initial delay, each further one doubles it up to the maximum.
    pub fn next(&mut self, key: &str, at: Timestamp) -> Duration {
        let delay = match self.entries.get(key) {
            Some(e) if at.duration_since(e.last_update) <= signed(self.max * 2) => (e.delay * 2).min(self.max),
            _ => self.initial,
        };
        self.entries.insert(key.to_string(), Entry { delay, last_update: at });
        delay
    }

    /// When `key`'s back-off that started at `since` ends, if it has not ended by `now`.
    pub fn in_backoff_since(&self, key: &str, since: Timestamp, now: Timestamp) -> Option<(Timestamp, Duration)> {
        let e = self.entries.get(key)?;
        let until = since.checked_add(signed(e.delay)).ok()?;
        (now < until).then_some((until, e.delay))
    }

    /// When `key`'s back-off counted from its last failure ends, if it has not ended by `now`.
    pub fn in_backoff(&self, key: &str, now: Timestamp) -> Option<(Timestamp, Duration)> {
        let since = self.entries.get(key)?.last_update;
        self.in_backoff_since(key, since, now)
    }

    /// Forgets `key` (after a success).
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// The current delay of `key`, if it failed before.
    pub fn delay(&self, key: &str) -> Option<Duration> {
        self.entries.get(key).map(|e| e.delay)
    }
}

/// Formats a back-off delay like Go's `time.Duration` does in kubelet messages ("10s", "1m20s", "5m0s").
pub fn format_delay(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 { format!("{secs}s") } else { format!("{}m{}s", secs / 60, secs % 60) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn delays_double_up_to_the_maximum() {
        let mut b = Backoff::default();
        let delays: Vec<u64> = (0..7).map(|i| b.next("c", at(i * 10)).as_secs()).collect();
        assert_eq!(delays, vec![10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn quiet_spell_resets_the_delay() {
        let mut b = Backoff::default();
        b.next("c", at(0));
        b.next("c", at(10));
        assert_eq!(b.next("c", at(10 + 601)), INITIAL);
    }

    #[test]
    fn in_backoff_window() {
        struct Case {
            name: &'static str,
            now: i64,
            want: bool,
        }
        let mut b = Backoff::default();
        b.next("c", at(0));
        for case in [
            Case { name: "just failed", now: 1, want: true },
            Case { name: "one second before the end", now: 9, want: true },
            Case { name: "at the end", now: 10, want: false },
            Case { name: "long after", now: 100, want: false },
        ] {
            assert_eq!(b.in_backoff("c", at(case.now)).is_some(), case.want, "{}", case.name);
        }
        assert!(b.in_backoff("other", at(1)).is_none(), "unknown keys are never in back-off");
    }

    #[test]
    fn go_style_delay_format() {
        assert_eq!(format_delay(Duration::from_secs(10)), "10s");
        assert_eq!(format_delay(Duration::from_secs(80)), "1m20s");
        assert_eq!(format_delay(Duration::from_secs(300)), "5m0s");
    }
}
