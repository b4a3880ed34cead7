//! Clock skew between phone and server: learning an account's drift from the
//! codes it gets accepted, re-synchronising it from two consecutive codes, and
//! finding where a code matches for a diagnosis.
//!
//! The rules:
//! - Each accepted TOTP code records the offset (in steps, relative to the
//!   server clock) where it matched. When the last [`HISTORY`] offsets agree,
//!   the drift becomes that offset, so the ±1 window is centred on the phone.
//!   One outlier (a code typed just before it changed) never moves it.
//! - Drift stays within ±[`MAX_DRIFT`] steps (5 minutes).
//! - A wider search never accepts a code by itself: beyond the window a code
//!   can only re-synchronise the drift when two consecutive codes are given.

use subtle::ConstantTimeEq;

use crate::secret::Secret;
use crate::totp::{TotpParams, code_for_step};

/// The learned drift never leaves ±10 steps (±5 minutes at 30 s).
pub const MAX_DRIFT: i64 = 10;

/// Agreeing offsets needed before the drift follows them.
pub const HISTORY: usize = 3;

/// How far a diagnosis looks by default, in minutes either side of now.
pub const DIAGNOSE_MINUTES: i64 = 10;

/// Parse the stored history (`"-1,-1,0"`); anything unreadable is dropped.
pub fn parse_history(stored: &str) -> Vec<i64> {
    stored
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

pub fn format_history(offsets: &[i64]) -> String {
    offsets
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// After a code matched at `offset`: the new history and drift.
pub fn learn(history: &[i64], drift: i64, offset: i64) -> (Vec<i64>, i64) {
    let mut recent: Vec<i64> = history.to_vec();
    recent.push(offset);
    if recent.len() > HISTORY {
        recent.drain(..recent.len() - HISTORY);
    }
    let agreed = recent.len() == HISTORY && recent.iter().all(|o| *o == offset);
    let drift = if agreed {
        offset.clamp(-MAX_DRIFT, MAX_DRIFT)
    } else {
        drift
    };
    (recent, drift)
}

fn matches_at(secret: &Secret, params: &TotpParams, code: &str, step: i64) -> bool {
    if step < 0 {
        return false;
    }
    code_for_step(secret, params, step)
        .as_bytes()
        .ct_eq(code.as_bytes())
        .into()
}

/// Find steps `s`, `s + 1` within ±`bound` steps of now where `first` and
/// `second` match, with `s` after `last_step`. Returns the step of `second`.
/// Every candidate is computed, so the time taken does not depend on where
/// (or whether) the pair matched.
pub fn find_consecutive(
    secret: &Secret,
    params: &TotpParams,
    first: &str,
    second: &str,
    now: i64,
    bound: i64,
    last_step: Option<i64>,
) -> Option<i64> {
    let now_step = params.step_at(now);
    let mut found: Option<i64> = None;
    for s in (now_step - bound)..(now_step + bound) {
        let pair = matches_at(secret, params, first, s) & matches_at(secret, params, second, s + 1);
        let fresh = last_step.is_none_or(|l| s > l);
        if pair && fresh {
            let nearer = found.is_none_or(|f| (s + 1 - now_step).abs() < (f - now_step).abs());
            if nearer {
                found = Some(s + 1);
            }
        }
    }
    found
}

/// Every offset (in steps from now) within ±`range` steps where `code`
/// matches, nearest first.
pub fn offsets_matching(
    secret: &Secret,
    params: &TotpParams,
    code: &str,
    now: i64,
    range: i64,
) -> Vec<i64> {
    let now_step = params.step_at(now);
    let mut hits: Vec<i64> = ((-range)..=range)
        .filter(|o| matches_at(secret, params, code, now_step + o))
        .collect();
    hits.sort_by_key(|o| (o.abs(), *o));
    hits
}

/// "90 s", "270 s (4 min 30 s)": a span for people, always in seconds so
/// it compares with what the phone shows.
pub fn describe_seconds(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    match (s / 60, s % 60) {
        _ if s < 120 => format!("{s} s"),
        (min, 0) => format!("{s} s ({min} min)"),
        (min, sec) => format!("{s} s ({min} min {sec} s)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_015;

    fn secret() -> Secret {
        Secret::from_bytes(b"12345678901234567890".to_vec())
    }

    fn code(offset: i64) -> String {
        let p = TotpParams::default();
        code_for_step(&secret(), &p, p.step_at(NOW) + offset).to_string()
    }

    #[test]
    fn drift_follows_a_consistent_offset() {
        let (h, d) = learn(&[], 0, -1);
        assert_eq!((h.as_slice(), d), (&[-1][..], 0));
        let (h, d) = learn(&h, d, -1);
        assert_eq!(d, 0, "two are not enough");
        let (h, d) = learn(&h, d, -1);
        assert_eq!((h.as_slice(), d), (&[-1, -1, -1][..], -1));
        // The window now centres on -1, so -2 can match; three of them move it on.
        let (h, d) = learn(&h, d, -2);
        let (h, d) = learn(&h, d, -2);
        assert_eq!(d, -1);
        let (_, d) = learn(&h, d, -2);
        assert_eq!(d, -2);
    }

    #[test]
    fn a_single_outlier_is_ignored() {
        let (h, d) = learn(&[-1, -1], -1, -1);
        assert_eq!(d, -1);
        let (h, d) = learn(&h, d, 0);
        assert_eq!(d, -1, "one outlier does not move the drift");
        let (h, d) = learn(&h, d, -1);
        assert_eq!(d, -1);
        let (_, d) = learn(&h, d, -1);
        assert_eq!(d, -1);
    }

    #[test]
    fn drift_never_leaves_its_bound() {
        let mut h = Vec::new();
        let mut d = 0;
        for _ in 0..5 {
            (h, d) = learn(&h, d, 25);
        }
        assert_eq!(d, MAX_DRIFT);
        for _ in 0..5 {
            (h, d) = learn(&h, d, -40);
        }
        assert_eq!(d, -MAX_DRIFT);
    }

    #[test]
    fn history_round_trips_and_tolerates_junk() {
        assert_eq!(parse_history(&format_history(&[-1, 0, 2])), vec![-1, 0, 2]);
        assert_eq!(parse_history(""), Vec::<i64>::new());
        assert_eq!(parse_history("1,x,,3"), vec![1, 3]);
    }

    #[test]
    fn resync_with_two_consecutive_codes_far_out() {
        let p = TotpParams::default();
        let now_step = p.step_at(NOW);
        let got = find_consecutive(&secret(), &p, &code(-9), &code(-8), NOW, MAX_DRIFT, None);
        assert_eq!(got, Some(now_step - 8));
        let got = find_consecutive(&secret(), &p, &code(7), &code(8), NOW, MAX_DRIFT, None);
        assert_eq!(got, Some(now_step + 8));
    }

    #[test]
    fn resync_with_non_consecutive_codes_fails() {
        let p = TotpParams::default();
        for (a, b) in [(-9, -7), (-8, -9), (-5, -5), (3, 5)] {
            let got = find_consecutive(&secret(), &p, &code(a), &code(b), NOW, MAX_DRIFT, None);
            assert_eq!(got, None, "{a},{b}");
        }
        // Beyond the bound, or at already used steps, nothing either.
        let got = find_consecutive(&secret(), &p, &code(-12), &code(-11), NOW, MAX_DRIFT, None);
        assert_eq!(got, None);
        let used = Some(p.step_at(NOW) - 8);
        let got = find_consecutive(&secret(), &p, &code(-9), &code(-8), NOW, MAX_DRIFT, used);
        assert_eq!(got, None);
    }

    #[test]
    fn diagnosis_search_finds_the_offset() {
        let p = TotpParams::default();
        assert_eq!(
            offsets_matching(&secret(), &p, &code(-3), NOW, 20),
            vec![-3]
        );
        assert_eq!(
            offsets_matching(&secret(), &p, &code(19), NOW, 20),
            vec![19]
        );
        assert!(offsets_matching(&secret(), &p, &code(21), NOW, 20).is_empty());
    }

    #[test]
    fn seconds_for_people() {
        assert_eq!(describe_seconds(-90), "90 s");
        assert_eq!(describe_seconds(30), "30 s");
        assert_eq!(describe_seconds(270), "270 s (4 min 30 s)");
        assert_eq!(describe_seconds(300), "300 s (5 min)");
    }
}
