//! Lockout after repeated failures: 5 consecutive wrong codes (TOTP and backup
//! codes alike) lock the account for 30 s; each further failure doubles the
//! lock, up to 1 h. A success resets the count; an admin can clear it
//! (`mb-2fa-unlock`). The count lives in the database row, and every update of
//! it runs in a write transaction, so it holds across processes and races.
//!
//! Only wrong codes count. A replayed code or a spent backup code was right
//! once: it tells an attacker nothing new, and racing logins of one user must
//! not lock that user out.

use crate::model::Lock;

/// Consecutive failures that trigger the first lock.
pub const THRESHOLD: i64 = 5;
/// First lock, in seconds.
pub const FIRST_LOCK: i64 = 30;
/// Longest lock, in seconds.
pub const MAX_LOCK: i64 = 3600;

/// How long to lock after the `failures`-th consecutive failure; `None`
/// below the threshold.
pub fn lock_seconds(failures: i64) -> Option<i64> {
    if failures < THRESHOLD {
        return None;
    }
    let doublings = u32::try_from(failures - THRESHOLD)
        .unwrap_or(u32::MAX)
        .min(16);
    Some((FIRST_LOCK << doublings).min(MAX_LOCK))
}

/// The lock after one more wrong code at `now`: the count goes up; at the
/// threshold and beyond a new lock starts now (below it, a running lock is
/// left as it is).
pub fn after_failure(lock: Lock, now: i64) -> Lock {
    let failed_attempts = lock.failed_attempts.saturating_add(1);
    let locked_until = lock_seconds(failed_attempts)
        .map(|s| now.saturating_add(s))
        .or(lock.locked_until);
    Lock {
        failed_attempts,
        locked_until,
    }
}

/// Is an account with `locked_until` locked at `now`?
pub fn is_locked(locked_until: Option<i64>, now: i64) -> bool {
    locked_until.is_some_and(|t| t > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule() {
        let table = [
            (0, None),
            (4, None),
            (5, Some(30)),
            (6, Some(60)),
            (7, Some(120)),
            (10, Some(960)),
            (11, Some(1920)),
            (12, Some(3600)),
            (1000, Some(3600)),
            (i64::MAX, Some(3600)),
        ];
        for (failures, want) in table {
            assert_eq!(lock_seconds(failures), want, "{failures}");
        }
    }

    #[test]
    fn a_failure_counts_and_locks_from_the_threshold() {
        let mut lock = Lock::CLEAR;
        for _ in 0..4 {
            lock = after_failure(lock, 100);
        }
        assert_eq!(
            lock,
            Lock {
                failed_attempts: 4,
                locked_until: None
            }
        );
        lock = after_failure(lock, 100);
        assert_eq!(
            lock,
            Lock {
                failed_attempts: 5,
                locked_until: Some(130)
            }
        );
        lock = after_failure(lock, 200);
        assert_eq!(
            lock,
            Lock {
                failed_attempts: 6,
                locked_until: Some(260)
            }
        );
        let old = Lock {
            failed_attempts: 1,
            locked_until: Some(50),
        };
        assert_eq!(
            after_failure(old, 10).locked_until,
            Some(50),
            "kept below the threshold"
        );
    }

    #[test]
    fn locked_is_strictly_before_the_end() {
        assert!(is_locked(Some(100), 99));
        assert!(!is_locked(Some(100), 100));
        assert!(!is_locked(None, 0));
    }
}
