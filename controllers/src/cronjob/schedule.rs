//! A cron job's schedule: `spec.schedule` (standard 5-field cron, names, ranges, steps and
//! `@hourly`-style nicknames) evaluated in `spec.timeZone`, and the start times that follow from
//! it — the most recent one not yet met, how many were missed, and the next one.

use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Missed start times beyond which a warning (TooManyMissedTimes) is recorded, as upstream.
pub const MISSED_TIMES_WARNING: u32 = 100;
/// Slack added to a requeue so the sync lands just after the scheduled time, never just before.
const REQUEUE_SLACK: Duration = Duration::from_millis(100);

/// Why a schedule cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `spec.timeZone` names no zone in the time zone database.
    #[error("invalid timeZone: {zone:?}: {message}")]
    UnknownTimeZone { zone: String, message: String },
    /// `spec.schedule` is not a cron expression.
    #[error("unparseable schedule: {schedule:?} : {message}")]
    Unparseable { schedule: String, message: String },
    /// The expression parses but names no reachable time (e.g. February 31st).
    #[error("failed to find start times for schedule {schedule:?}: {message}")]
    Invalid { schedule: String, message: String },
}

/// A parsed schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    zone: TimeZone,
    /// Whether `spec.timeZone` was given; the job annotation is written in UTC otherwise.
    explicit_zone: bool,
}

/// The most recent start time not yet met, and how many were missed since the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unmet {
    pub time: Timestamp,
    pub missed: u32,
}

impl Schedule {
    /// Parses `schedule` for `time_zone` (the controller's own zone when absent, like upstream).
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Self, Error> {
        let (zone, explicit_zone) = match time_zone {
            Some(name) => {
                let zone = TimeZone::get(name).map_err(|e| Error::UnknownTimeZone { zone: name.to_string(), message: e.to_string() })?;
                (zone, true)
            }
            None => (TimeZone::try_system().unwrap_or(TimeZone::UTC), false),
        };
        let parser = CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build();
        let cron = parser.parse(schedule).map_err(|e| Error::Unparseable { schedule: schedule.to_string(), message: e.to_string() })?;
        Ok(Self { cron, zone, explicit_zone })
    }

    /// The first start time strictly after `t`.
    pub fn next_after(&self, t: Timestamp) -> Result<Timestamp, Error> {
        self.cron.find_next_occurrence(&t.to_zoned(self.zone.clone()), false).map(|z| z.timestamp()).map_err(|e| self.invalid(e))
    }

    /// The last start time at or before `t`.
    fn latest_until(&self, t: Timestamp) -> Result<Timestamp, Error> {
        self.cron.find_previous_occurrence(&t.to_zoned(self.zone.clone()), true).map(|z| z.timestamp()).map_err(|e| self.invalid(e))
    }

    fn invalid(&self, e: croner::errors::CronError) -> Error {
        Error::Invalid { schedule: self.cron.as_str().to_string(), message: e.to_string() }
    }

    /// The most recent start time after `earliest` (the last scheduled time, or the creation
    /// time) that is due by `now`. With `deadline` (startingDeadlineSeconds), times older than
    /// that are not considered at all, so a long outage does not count them as missed.
    pub fn most_recent_unmet(&self, earliest: Timestamp, deadline: Option<i64>, now: Timestamp) -> Result<Option<Unmet>, Error> {
        let mut from = earliest;
        if let Some(seconds) = deadline {
            let window_start = now.checked_sub(SignedDuration::from_secs(seconds)).unwrap_or(now);
            from = from.max(window_start);
        }
        let first = self.next_after(from)?;
        if first > now {
            return Ok(None);
        }
        let time = self.latest_until(now)?;
        // Counted exactly, but only as far as the warning threshold needs.
        let mut missed = 1;
        let mut t = first;
        while t < time && missed <= MISSED_TIMES_WARNING {
            t = self.next_after(t)?;
            missed += 1;
        }
        Ok(Some(Unmet { time, missed }))
    }

    /// How long from `now` until just after the next start time.
    pub fn until_next(&self, now: Timestamp) -> Result<Duration, Error> {
        let next = self.next_after(now)?;
        Ok(Duration::try_from(next.duration_since(now)).unwrap_or(Duration::ZERO) + REQUEUE_SLACK)
    }

    /// `t` as RFC 3339 in the schedule's zone (UTC without `spec.timeZone`), as the
    /// `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation carries it.
    pub fn rfc3339(&self, t: Timestamp) -> String {
        if !self.explicit_zone {
            return t.to_string();
        }
        let offset = self.zone.to_offset(t);
        if offset.seconds() == 0 { t.to_string() } else { t.display_with_offset(offset).to_string() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn utc(schedule: &str) -> Option<Schedule> {
        Schedule::parse(schedule, Some("UTC")).ok()
    }

    #[test]
    fn parsing() {
        let cases = [
            ("every minute", "*/1 * * * *", None, true),
            ("names and ranges", "30 6-16/4 * JAN-MAR MON-FRI", None, true),
            ("nickname", "@hourly", None, true),
            ("six fields are not standard", "0 */1 * * * *", None, false),
            ("garbage", "every day", None, false),
            ("zone", "0 9 * * *", Some("America/New_York"), true),
            ("unknown zone", "0 9 * * *", Some("Mars/Olympus_Mons"), false),
        ];
        for (name, schedule, zone, ok) in cases {
            assert_eq!(Schedule::parse(schedule, zone).is_ok(), ok, "{name}");
        }
        let zone_error = Schedule::parse("* * * * *", Some("Nowhere/Town")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(zone_error.starts_with("invalid timeZone: \"Nowhere/Town\""), "{zone_error}");
    }

    #[test]
    fn most_recent_unmet_times() {
        struct Case {
            name: &'static str,
            schedule: &'static str,
            earliest: &'static str,
            deadline: Option<i64>,
            now: &'static str,
            want: Option<(&'static str, u32)>,
        }
        let cases = [
            Case { name: "not yet due", schedule: "*/5 * * * *", earliest: "2026-01-01T10:00:00Z", deadline: None, now: "2026-01-01T10:04:59Z", want: None },
            Case { name: "just due", schedule: "*/5 * * * *", earliest: "2026-01-01T10:00:00Z", deadline: None, now: "2026-01-01T10:05:00Z", want: Some(("2026-01-01T10:05:00Z", 1)) },
            Case { name: "last time itself is met", schedule: "*/5 * * * *", earliest: "2026-01-01T10:05:00Z", deadline: None, now: "2026-01-01T10:05:30Z", want: None },
            Case { name: "three missed, latest wins", schedule: "*/5 * * * *", earliest: "2026-01-01T10:00:00Z", deadline: None, now: "2026-01-01T10:17:00Z", want: Some(("2026-01-01T10:15:00Z", 3)) },
            Case { name: "irregular hours", schedule: "30 6-16/4 * * *", earliest: "2026-01-01T07:00:00Z", deadline: None, now: "2026-01-01T23:00:00Z", want: Some(("2026-01-01T14:30:00Z", 2)) },
            Case { name: "too many missed is capped", schedule: "* * * * *", earliest: "2026-01-01T00:00:00Z", deadline: None, now: "2026-01-02T00:00:30Z", want: Some(("2026-01-02T00:00:00Z", MISSED_TIMES_WARNING + 1)) },
            Case { name: "deadline hides old misses", schedule: "* * * * *", earliest: "2026-01-01T00:00:00Z", deadline: Some(200), now: "2026-01-02T00:00:30Z", want: Some(("2026-01-02T00:00:00Z", 3)) },
            Case { name: "deadline passed every time", schedule: "0 * * * *", earliest: "2026-01-01T00:00:00Z", deadline: Some(60), now: "2026-01-01T05:30:00Z", want: None },
        ];
        for c in cases {
            let Some(schedule) = utc(c.schedule) else { panic!("{}: does not parse", c.name) };
            let got = schedule.most_recent_unmet(ts(c.earliest), c.deadline, ts(c.now)).ok().flatten().map(|u| (u.time, u.missed));
            assert_eq!(got, c.want.map(|(t, n)| (ts(t), n)), "{}", c.name);
        }
    }

    #[test]
    fn impossible_dates_are_invalid_not_endless() {
        let Some(schedule) = utc("59 23 31 2 *") else { panic!("parses") };
        let got = schedule.most_recent_unmet(ts("2026-01-01T00:00:00Z"), None, ts("2026-03-01T00:00:00Z"));
        assert!(matches!(got, Err(Error::Invalid { .. })), "{got:?}");
    }

    #[test]
    fn time_zones_shift_start_times() {
        let Ok(schedule) = Schedule::parse("0 9 * * *", Some("America/New_York")) else { panic!("parses") };
        // 09:00 in New York in January is 14:00 UTC.
        assert_eq!(schedule.next_after(ts("2026-01-01T00:00:00Z")).ok(), Some(ts("2026-01-01T14:00:00Z")));
        assert_eq!(schedule.rfc3339(ts("2026-01-01T14:00:00Z")), "2026-01-01T09:00:00-05:00");
        let Some(plain) = utc("0 9 * * *") else { panic!("parses") };
        assert_eq!(plain.rfc3339(ts("2026-01-01T09:00:00Z")), "2026-01-01T09:00:00Z");
    }

    #[test]
    fn requeue_lands_just_after_the_next_time() {
        let Some(schedule) = utc("*/1 * * * *") else { panic!("parses") };
        assert_eq!(schedule.until_next(ts("2026-01-01T10:00:20Z")).ok(), Some(Duration::from_millis(40_100)));
        assert_eq!(schedule.until_next(ts("2026-01-01T10:01:00Z")).ok(), Some(Duration::from_millis(60_100)), "a time exactly now is past");
    }
}
