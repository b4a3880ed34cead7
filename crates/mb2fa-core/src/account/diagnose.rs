//! Why is a code (not) accepted? A diagnosis that is throttled like a
//! verification: it runs in a deciding transaction, respects the lock, and
//! counts a code that matches nowhere.

use super::{Attempt, Ctx};
use crate::audit::{Action, Outcome};
use crate::clock::{NtpStatus, rfc3339};
use crate::code::Code;
use crate::email::Email;
use crate::error::Result;
use crate::model::State;
use crate::skew;
use crate::store::{Store, Verdict};
use crate::totp;

/// Where a code stands, for a diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    /// Matches inside the window and unused: it would be accepted now.
    Valid { offset_steps: i64 },
    /// Matches a step that was already accepted (or an earlier one).
    AlreadyUsed { offset_steps: i64 },
    /// Matches outside the window: the phone's clock is off by that much.
    Skewed { offset_steps: i64 },
    /// Matches nowhere in the searched range.
    NoMatch,
    /// A valid, unused backup code.
    BackupValid,
    /// A backup code of this account that was already used.
    BackupUsed,
    /// Not one of this account's backup codes.
    BackupUnknown,
}

impl Finding {
    pub fn as_str(self) -> &'static str {
        match self {
            Finding::Valid { .. } => "valid",
            Finding::AlreadyUsed { .. } => "already_used",
            Finding::Skewed { offset_steps } if offset_steps < 0 => "phone_behind",
            Finding::Skewed { .. } => "phone_ahead",
            Finding::NoMatch => "no_match",
            Finding::BackupValid => "backup_code_valid",
            Finding::BackupUsed => "backup_code_used",
            Finding::BackupUnknown => "backup_code_unknown",
        }
    }

    pub fn offset_steps(self) -> Option<i64> {
        match self {
            Finding::Valid { offset_steps }
            | Finding::AlreadyUsed { offset_steps }
            | Finding::Skewed { offset_steps } => Some(offset_steps),
            _ => None,
        }
    }
}

/// A diagnosis of one code for one account. Nothing about the account is
/// changed by making it (only its audit record is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub server_time: i64,
    pub ntp: NtpStatus,
    pub state: State,
    pub drift_steps: i64,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
    pub period: u32,
    pub range_minutes: i64,
    pub finding: Finding,
    /// Would `mb-2fa-verify` accept this code right now?
    pub would_accept: bool,
    /// What it means and what to do, in plain words.
    pub advice: String,
}

/// Diagnose why a code is (or is not) accepted, searching ±`range_minutes`.
pub fn diagnose(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    code: &Code,
    range_minutes: i64,
    ntp: NtpStatus,
) -> Result<Diagnosis> {
    let now = ctx.clock.now()?;
    let attempt = Attempt {
        ctx,
        now,
        action: Action::Diagnose,
        email,
    };
    // One write transaction, like a verification: the lockout has its say,
    // and a code that matches nowhere is counted (else --diagnose would be an
    // unthrottled oracle for codes).
    store.decide(|tx| {
        let Some(account) = tx.account_for_update(email.as_str())? else {
            return attempt.not_enrolled(tx, "");
        };
        if account.lock().is_locked(now) {
            return attempt.locked(tx, account.lock(), "diagnosis");
        }
        let period = i64::from(account.params.period);
        let finding = match code {
            Code::Totp(digits) => {
                let range = range_minutes * 60 / period;
                // The past as far as asked (a phone behind); the future only
                // as far as a verification would look, so that no code that
                // is not valid yet is ever revealed.
                let future = account.drift_steps + totp::DEFAULT_WINDOW;
                let hits: Vec<i64> =
                    skew::offsets_matching(&account.secret, &account.params, digits, now, range)
                        .into_iter()
                        .filter(|o| *o <= future)
                        .collect();
                let now_step = account.params.step_at(now);
                let used = |o: i64| account.last_step.is_some_and(|l| now_step + o <= l);
                let in_window = |o: i64| (o - account.drift_steps).abs() <= totp::DEFAULT_WINDOW;
                if let Some(&o) = hits.iter().find(|o| in_window(**o) && !used(**o)) {
                    Finding::Valid { offset_steps: o }
                } else if let Some(&o) = hits.iter().find(|o| in_window(**o) && used(**o)) {
                    Finding::AlreadyUsed { offset_steps: o }
                } else if let Some(&o) = hits.first() {
                    Finding::Skewed { offset_steps: o }
                } else {
                    Finding::NoMatch
                }
            }
            Code::Backup(b) => match tx.backup_code_by_tag(account.id, &b.tag())? {
                Some(s) if b.matches(&s.hash).map_err(|e| tx.in_db(&e))? => {
                    if s.used {
                        Finding::BackupUsed
                    } else {
                        Finding::BackupValid
                    }
                }
                Some(_) => Finding::BackupUnknown,
                None => {
                    b.check_decoy();
                    Finding::BackupUnknown
                }
            },
        };
        let detail = format!(
            "{}{}",
            finding.as_str(),
            finding
                .offset_steps()
                .map_or_else(String::new, |o| format!("; offset {o} steps")),
        );
        let (failed_attempts, locked_until) =
            if matches!(finding, Finding::NoMatch | Finding::BackupUnknown) {
                // Counted as a wrong code (audited as a rejected diagnosis).
                let (after, _) = attempt.count_wrong_code(tx, account.id, &detail)?;
                (after.failed_attempts, after.locked_until)
            } else {
                tx.append_audit(attempt.record(Outcome::Ok, detail))?;
                (account.failed_attempts, account.locked_until)
            };
        let locked = crate::throttle::is_locked(locked_until, now);
        let would_accept = !locked
            && match finding {
                Finding::Valid { .. } => true,
                Finding::BackupValid => account.state == State::Active,
                _ => false,
            };
        let advice = advice(
            email,
            finding,
            locked,
            locked_until,
            account.state,
            period,
            range_minutes,
        );
        Ok(Verdict::Done(Diagnosis {
            server_time: now,
            ntp,
            state: account.state,
            drift_steps: account.drift_steps,
            failed_attempts,
            locked_until: locked_until.filter(|_| locked),
            period: account.params.period,
            range_minutes,
            finding,
            would_accept,
            advice,
        }))
    })
}

fn advice(
    email: &Email,
    finding: Finding,
    locked: bool,
    locked_until: Option<i64>,
    state: State,
    period: i64,
    range_minutes: i64,
) -> String {
    let resync = format!("mb-2fa-verify --email {email} --resync CODE1 CODE2");
    let mut text = match finding {
        Finding::Valid { .. } => "this code is valid now and would be accepted".to_string(),
        Finding::AlreadyUsed { .. } => {
            "this code was already used (each code works once): wait for the next code in the app".to_string()
        }
        Finding::Skewed { offset_steps } if offset_steps < 0 => {
            let span = skew::describe_seconds(-offset_steps * period);
            format!(
                "this code was valid {span} ago: the phone's clock is about {span} behind; turn on automatic date & time on the phone, or resync with two consecutive codes: {resync}"
            )
        }
        Finding::Skewed { offset_steps } => {
            let span = skew::describe_seconds(offset_steps * period);
            format!(
                "this code will be valid in {span}: the phone's clock is about {span} ahead; turn on automatic date & time on the phone, or resync with two consecutive codes: {resync}"
            )
        }
        Finding::NoMatch => format!(
            "this code matches nowhere in the last {range_minutes} min or now (codes of the future are not searched): likely the wrong account selected in the app, an old enrollment, or a phone clock far ahead; check the account name and the phone's clock, or re-enroll: mb-2fa-enable --email {email} --force; it was counted as a wrong code"
        ),
        Finding::BackupValid => "this is a valid, unused backup code".to_string(),
        Finding::BackupUsed => "this backup code was already used (each works once): use another, or make new ones with mb-2fa-backup-codes".to_string(),
        Finding::BackupUnknown => "this is not one of this account's current backup codes (they may have been regenerated); it was counted as a wrong code".to_string(),
    };
    if state == State::Pending && !matches!(finding, Finding::Valid { .. }) {
        text.push_str("; the enrollment is still pending (no code accepted yet)");
    }
    if state == State::Pending && matches!(finding, Finding::BackupValid) {
        text.push_str(", and backup codes only work once it is active");
    }
    if locked {
        text.push_str(&format!(
            "; but the account is locked until {} after repeated wrong codes: mb-2fa-unlock --email {email}",
            locked_until.map_or_else(String::new, rfc3339)
        ));
    }
    text
}
