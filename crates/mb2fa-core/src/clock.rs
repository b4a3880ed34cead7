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
pub fn rfc3339(unix_seconds: i64) -> String {
    let when = u64::try_from(unix_seconds)
        .map(|s| UNIX_EPOCH + Duration::from_secs(s))
        .unwrap_or(UNIX_EPOCH);
    humantime::format_rfc3339_seconds(when).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_111_111_109), "2005-03-18T01:58:29Z");
        assert_eq!(rfc3339(20_000_000_000), "2603-10-11T11:33:20Z");
    }

    #[test]
    fn system_clock_is_plausible() {
        let now = SystemClock.now().expect("clock");
        assert!(now > 1_700_000_000, "{now}");
    }
}
