//! Time, passed in rather than read ad hoc, so the rules can be tested at any
//! instant. Shipped binaries only ever use [`SystemClock`]: there is no flag or
//! variable that moves their clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// A source of the current time, in whole seconds since the Unix epoch.
pub trait Clock {
    fn now(&self) -> Result<i64>;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Result<i64> {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| {
            Error::storage("the system clock is set before 1970: fix the time (timedatectl)")
        })?;
        i64::try_from(since.as_secs())
            .map_err(|_| Error::storage("the system clock is set implausibly far in the future"))
    }
}

/// A clock pinned to one instant, for tests of the rules.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub i64);

impl Clock for FixedClock {
    fn now(&self) -> Result<i64> {
        Ok(self.0)
    }
}

/// RFC 3339 in UTC with whole seconds, e.g. `2026-11-28T09:30:00Z`.
///
/// Total: a time outside 1970..=9999 (only a damaged or tampered database
/// holds one) is clamped to the nearest end instead of panicking, which
/// would abort the tool (and, before the no-core-dump settings, dump core).
pub fn rfc3339(unix_seconds: i64) -> String {
    let clamped = unix_seconds.clamp(0, MAX_TIME);
    let when = u64::try_from(clamped)
        .ok()
        .and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s)))
        .unwrap_or(UNIX_EPOCH);
    humantime::format_rfc3339_seconds(when).to_string()
}

/// The last second RFC 3339 can write: 9999-12-31T23:59:59Z.
pub const MAX_TIME: i64 = 253_402_300_799;

/// Whether the server clock is kept in sync by NTP, as far as we can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NtpStatus {
    Synchronized,
    NotSynchronized,
    Unknown,
}

impl NtpStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NtpStatus::Synchronized => "yes",
            NtpStatus::NotSynchronized => "no",
            NtpStatus::Unknown => "unknown",
        }
    }
}

/// Ask systemd: `/usr/bin/timedatectl show -p NTPSynchronized --value`, else the flag
/// file systemd-timesyncd keeps, else unknown (chrony or ntpd without
/// timedated: we do not guess).
pub fn ntp_status() -> NtpStatus {
    // A fixed path and an empty environment: run as root, the tool must not
    // let PATH (or anything else the caller set) pick what it executes.
    let out = std::process::Command::new("/usr/bin/timedatectl")
        .args(["show", "-p", "NTPSynchronized", "--value"])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output();
    if let Ok(out) = out
        && out.status.success()
    {
        match String::from_utf8_lossy(&out.stdout).trim() {
            "yes" => return NtpStatus::Synchronized,
            "no" => return NtpStatus::NotSynchronized,
            _ => {}
        }
    }
    if std::path::Path::new("/run/systemd/timesync/synchronized").exists() {
        return NtpStatus::Synchronized;
    }
    NtpStatus::Unknown
}

/// A point in time given by a person: an RFC 3339 time (`2026-11-28T09:00:00Z`,
/// or without the zone, taken as UTC) or a span back from `now` (`90m`,
/// `24h`, `7d`).
pub fn parse_since(raw: &str, now: i64) -> Result<i64> {
    let raw = raw.trim();
    if let Ok(span) = humantime::parse_duration(raw) {
        let secs = i64::try_from(span.as_secs()).unwrap_or(i64::MAX);
        return Ok(now.saturating_sub(secs));
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(raw.trim_end_matches('Z'))
        && let Ok(d) = t.duration_since(UNIX_EPOCH)
    {
        return Ok(i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    }
    Err(Error::usage(
        "invalid --since: give a time like 2026-11-28T09:00:00Z or a span like 90m, 24h, 7d",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_never_panics_on_stored_extremes() {
        assert_eq!(rfc3339(MAX_TIME), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(300_000_000_000), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(-5), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_111_111_109), "2005-03-18T01:58:29Z");
        assert_eq!(rfc3339(20_000_000_000), "2603-10-11T11:33:20Z");
    }

    #[test]
    fn since_accepts_times_and_spans() {
        let now = 1_800_000_000;
        assert_eq!(parse_since("1h", now), Ok(now - 3600));
        assert_eq!(parse_since("7d", now), Ok(now - 7 * 86400));
        assert_eq!(parse_since("90m", now), Ok(now - 5400));
        assert_eq!(parse_since("2005-03-18T01:58:29Z", now), Ok(1_111_111_109));
        assert_eq!(parse_since("2005-03-18 01:58:29", now), Ok(1_111_111_109));
        for bad in ["", "yesterday", "-1h", "2005-13-01T00:00:00Z"] {
            assert_eq!(
                parse_since(bad, now).map_err(|e| e.exit_code()),
                Err(2),
                "{bad}"
            );
        }
    }

    #[test]
    fn system_clock_is_plausible() {
        let now = SystemClock.now().expect("clock");
        assert!(now > 1_700_000_000, "{now}");
    }
}
