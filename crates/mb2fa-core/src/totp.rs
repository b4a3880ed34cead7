//! TOTP (RFC 6238) on top of totp-rs: the code for a step, and the verification
//! window with replay protection.
//!
//! Verification works in whole steps. A code is accepted when it matches a step
//! in `[centre - window, centre + window]` (centre = now + the account's drift)
//! that is later than the last step the account accepted. Every candidate in the
//! window is computed and compared in constant time, whether or not an earlier
//! one matched, so timing does not tell an attacker where a code matched.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Steps accepted either side of the centre by default: one step (30 s) covers
/// typing time and ordinary phone clock error.
pub const DEFAULT_WINDOW: i64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    pub fn parse(s: &str) -> Option<Algorithm> {
        match s {
            "SHA1" => Some(Algorithm::Sha1),
            "SHA256" => Some(Algorithm::Sha256),
            "SHA512" => Some(Algorithm::Sha512),
            _ => None,
        }
    }

    fn to_totp_rs(self) -> totp_rs::Algorithm {
        match self {
            Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
            Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
            Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
        }
    }
}

/// The parameters an enrollment was made with. Stored per account, so a later
/// change of defaults never breaks a phone that is already set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotpParams {
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u32,
}

impl Default for TotpParams {
    /// SHA1, 6 digits, 30 s: the only set that Google Authenticator, Authy,
    /// Microsoft Authenticator and 1Password all honour.
    fn default() -> Self {
        TotpParams {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

impl TotpParams {
    /// Check parameters read back from storage before they reach totp-rs,
    /// which panics on some out-of-range values.
    pub fn validated(self) -> Result<TotpParams> {
        if !(6..=8).contains(&self.digits) || self.period == 0 || self.period > 300 {
            return Err(Error::storage(format!(
                "stored TOTP parameters are invalid (digits {}, period {}): the database is damaged",
                self.digits, self.period
            )));
        }
        Ok(self)
    }

    /// The step number that contains `unix_seconds`.
    pub fn step_at(&self, unix_seconds: i64) -> i64 {
        unix_seconds.div_euclid(i64::from(self.period))
    }

    fn engine(&self, secret: &Secret) -> totp_rs::Totp {
        totp_rs::Builder::new()
            .with_algorithm(self.algorithm.to_totp_rs())
            .with_digits(self.digits)
            .with_step_duration(u64::from(self.period))
            .with_skew(0)
            .with_secret(secret.as_bytes().to_vec())
            .build_noncompliant()
    }
}

/// The code for one step, zero-padded to the enrollment's digits.
pub fn code_for_step(secret: &Secret, params: &TotpParams, step: i64) -> Zeroizing<String> {
    let engine = params.engine(secret);
    let seconds = u64::try_from(step).unwrap_or(0) * u64::from(params.period);
    Zeroizing::new(engine.generate(seconds).to_string())
}

/// How a TOTP code fared against an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpCheck {
    /// Matched an unused step in the window.
    Accepted { step: i64, offset_steps: i64 },
    /// Matched, but only steps that were already accepted (or earlier ones).
    Replayed { step: i64 },
    /// Matched no step in the window.
    NoMatch,
}

/// Check `code` at time `now` for an account that last accepted `last_step`
/// and has learned `drift_steps`.
pub fn check(
    secret: &Secret,
    params: &TotpParams,
    code: &str,
    now: i64,
    drift_steps: i64,
    window: i64,
    last_step: Option<i64>,
) -> TotpCheck {
    let now_step = params.step_at(now);
    let centre = now_step + drift_steps;
    let engine = params.engine(secret);

    let mut best_fresh: Option<i64> = None;
    let mut any_used: Option<i64> = None;
    for step in (centre - window)..=(centre + window) {
        let Ok(seconds) = u64::try_from(step) else {
            continue;
        };
        let candidate = Zeroizing::new(
            engine
                .generate(seconds * u64::from(params.period))
                .to_string(),
        );
        let matched: bool = candidate.as_bytes().ct_eq(code.as_bytes()).into();
        if !matched {
            continue;
        }
        let fresh = last_step.is_none_or(|last| step > last);
        if fresh {
            // If two steps share the code (a 1-in-10^6 coincidence), prefer the
            // one nearest the centre.
            let nearer = best_fresh.is_none_or(|b| (step - centre).abs() < (b - centre).abs());
            if nearer {
                best_fresh = Some(step);
            }
        } else {
            any_used = Some(step);
        }
    }
    match (best_fresh, any_used) {
        (Some(step), _) => TotpCheck::Accepted {
            step,
            offset_steps: step - now_step,
        },
        (None, Some(step)) => TotpCheck::Replayed { step },
        (None, None) => TotpCheck::NoMatch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn params8() -> TotpParams {
        TotpParams {
            digits: 8,
            ..TotpParams::default()
        }
    }

    /// RFC 6238 Appendix B, SHA1 rows.
    #[test]
    fn rfc6238_appendix_b_sha1() {
        let secret = Secret::from_bytes(RFC_SECRET.to_vec());
        let p = params8();
        let vectors = [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ];
        for (t, want) in vectors {
            let got = code_for_step(&secret, &p, p.step_at(t));
            assert_eq!(got.as_str(), want, "T={t}");
        }
    }

    #[test]
    fn six_digit_codes_are_the_last_six_of_eight() {
        let secret = Secret::from_bytes(RFC_SECRET.to_vec());
        let p = TotpParams::default();
        assert_eq!(code_for_step(&secret, &p, p.step_at(59)).as_str(), "287082");
        assert_eq!(
            code_for_step(&secret, &p, p.step_at(1_111_111_109)).as_str(),
            "081804"
        );
    }

    #[test]
    fn window_edges() {
        let secret = Secret::from_bytes(RFC_SECRET.to_vec());
        let p = TotpParams::default();
        let now = 1_700_000_015; // mid-step
        let s = p.step_at(now);
        for (offset, accepted) in [(-2, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = code_for_step(&secret, &p, s + offset);
            let got = check(&secret, &p, &code, now, 0, DEFAULT_WINDOW, None);
            if accepted {
                assert_eq!(
                    got,
                    TotpCheck::Accepted {
                        step: s + offset,
                        offset_steps: offset
                    },
                    "offset {offset}"
                );
            } else {
                assert_eq!(got, TotpCheck::NoMatch, "offset {offset}");
            }
        }
    }

    #[test]
    fn drift_moves_the_window() {
        let secret = Secret::from_bytes(RFC_SECRET.to_vec());
        let p = TotpParams::default();
        let now = 1_700_000_015;
        let s = p.step_at(now);
        let code = code_for_step(&secret, &p, s - 3);
        assert_eq!(
            check(&secret, &p, &code, now, 0, 1, None),
            TotpCheck::NoMatch
        );
        assert_eq!(
            check(&secret, &p, &code, now, -3, 1, None),
            TotpCheck::Accepted {
                step: s - 3,
                offset_steps: -3
            }
        );
    }

    #[test]
    fn replay_of_same_and_earlier_step_is_rejected() {
        let secret = Secret::from_bytes(RFC_SECRET.to_vec());
        let p = TotpParams::default();
        let now = 1_700_000_015;
        let s = p.step_at(now);
        let current = code_for_step(&secret, &p, s);
        let earlier = code_for_step(&secret, &p, s - 1);
        let later = code_for_step(&secret, &p, s + 1);
        assert_eq!(
            check(&secret, &p, &current, now, 0, 1, Some(s)),
            TotpCheck::Replayed { step: s }
        );
        assert_eq!(
            check(&secret, &p, &earlier, now, 0, 1, Some(s)),
            TotpCheck::Replayed { step: s - 1 }
        );
        assert_eq!(
            check(&secret, &p, &later, now, 0, 1, Some(s)),
            TotpCheck::Accepted {
                step: s + 1,
                offset_steps: 1
            }
        );
    }

    #[test]
    fn wrong_code_and_wrong_secret_do_not_match() {
        let secret = Secret::from_bytes(RFC_SECRET.to_vec());
        let other = Secret::from_bytes(b"09876543210987654321".to_vec());
        let p = TotpParams::default();
        let now = 1_700_000_015;
        let code = code_for_step(&other, &p, p.step_at(now));
        assert_eq!(
            check(&secret, &p, &code, now, 0, 1, None),
            TotpCheck::NoMatch
        );
        // A code of the wrong length never matches (no prefix comparison).
        let good = code_for_step(&secret, &p, p.step_at(now));
        assert_eq!(
            check(&secret, &p, &good[..5], now, 0, 1, None),
            TotpCheck::NoMatch
        );
    }

    #[test]
    fn stored_params_are_validated() {
        for (digits, period) in [(5, 30), (9, 30), (6, 0), (6, 301)] {
            let p = TotpParams {
                algorithm: Algorithm::Sha1,
                digits,
                period,
            };
            assert_eq!(p.validated().map_err(|e| e.exit_code()), Err(10));
        }
        assert!(TotpParams::default().validated().is_ok());
    }
}
