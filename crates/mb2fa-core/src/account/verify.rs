//! Checking a code: a TOTP code (replay floor, window, drift, activation)
//! or a backup code (argon2 outside the lock, then a conditional spend), for
//! a login or a self-service removal.

use super::{Attempt, Ctx, remove};
use crate::audit::{Action, Outcome};
use crate::backup_codes::{BackupCode, SCRATCH_LEN};
use crate::code::{Code, TOTP_DIGITS};
use crate::email::Email;
use crate::error::{Error, Result};
use crate::model::{Premise, State, Success};
use crate::skew;
use crate::store::{Store, Verdict};
use crate::totp::{self, TotpCheck};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Totp,
    BackupCode,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Totp => "totp",
            Method::BackupCode => "backup_code",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub method: Method,
    /// This code activated a pending enrollment.
    pub activated: bool,
    /// Where a TOTP code matched, in steps relative to the server clock.
    pub offset_steps: Option<i64>,
    /// The account's learned drift after a TOTP code.
    pub drift_steps: Option<i64>,
    /// The enrollment's TOTP period in seconds (what a step is), for a
    /// TOTP code.
    pub period: Option<u32>,
    pub backup_codes_left: u32,
}

/// What to do in the same transaction once the code is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Record,
    Disable,
}

impl Then {
    fn action(self) -> Action {
        match self {
            Then::Record => Action::Verify,
            Then::Disable => Action::Disable,
        }
    }
}

/// Check a code for `email`. A TOTP code's step is recorded (never accepted
/// again); a backup code is spent. The first good TOTP code activates a
/// pending enrollment. Wrong codes count towards the lockout.
pub fn verify(store: &mut Store, ctx: &Ctx<'_>, email: &Email, code: &Code) -> Result<Verified> {
    check_code(store, ctx, email, code, Then::Record)
}

/// Remove an enrollment. With a code, the code must be valid first; it is
/// checked and the enrollment removed in one transaction (this needs the key).
/// Without a code no secret is touched, so no key is needed (break-glass).
pub fn disable(store: &mut Store, ctx: &Ctx<'_>, email: &Email, code: Option<&Code>) -> Result<()> {
    if let Some(code) = code {
        return check_code(store, ctx, email, code, Then::Disable).map(|_| ());
    }
    remove(store, ctx, email, None)
}

fn check_code(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    code: &Code,
    then: Then,
) -> Result<Verified> {
    match code {
        Code::Totp(digits) => match check_totp(store, ctx, email, digits, then)? {
            Judged::Verified(v) => Ok(v),
            // 8 digits for a 6-digit enrollment: an imported scratch code.
            Judged::Scratch => {
                let scratch = BackupCode::scratch(digits)
                    .ok_or_else(|| Error::usage("malformed code: a scratch code has 8 digits"))?;
                check_backup(store, ctx, email, &scratch, then)
            }
        },
        Code::Backup(backup) => check_backup(store, ctx, email, backup, then),
    }
}

/// What the TOTP transaction made of a string of digits.
enum Judged {
    Verified(Verified),
    /// Not the enrollment's TOTP shape but that of a scratch code: nothing
    /// was judged or written; check it as a backup code.
    Scratch,
}

fn check_totp(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    code: &str,
    then: Then,
) -> Result<Judged> {
    let now = ctx.clock.now()?;
    let attempt = Attempt {
        ctx,
        now,
        action: then.action(),
        email,
    };
    store.decide(|tx| {
        let Some(account) = tx.account_for_update(email.as_str())? else {
            return attempt.not_enrolled(tx, "totp");
        };
        if account.lock().is_locked(now) {
            return attempt.locked(tx, account.lock(), "totp attempt");
        }
        // The enrollment's digits decide what a string of digits is: its
        // TOTP code, a scratch code (8 digits for a 6-digit enrollment), or
        // malformed. A scratch code is judged (lock, argon2, spend) by the
        // backup-code path, so nothing is decided here.
        let digits = usize::from(account.params.digits);
        if code.len() != digits {
            if digits == TOTP_DIGITS && code.len() == SCRATCH_LEN {
                return Ok(Verdict::Done(Judged::Scratch));
            }
            return attempt.reject(
                tx,
                &format!(
                    "a {}-digit code for an enrollment of {digits}-digit codes; not counted as a failure",
                    code.len()
                ),
                Error::usage(format!(
                    "malformed code: the codes of {email} have {digits} digits (this one has {})",
                    code.len()
                )),
            );
        }
        let result = totp::check(
            &account.secret,
            &account.params,
            code,
            now,
            account.drift_steps,
            totp::DEFAULT_WINDOW,
            account.last_step,
        );
        let (step, offset_steps) = match result {
            TotpCheck::Accepted { step, offset_steps } => (step, offset_steps),
            TotpCheck::Replayed { .. } => {
                return attempt.reject(
                    tx,
                    "totp code already used (replay); not counted as a failure",
                    Error::rejected(format!(
                        "code rejected for {email}: it was already used; wait for the next code in the app"
                    )),
                );
            }
            TotpCheck::NoMatch => {
                return attempt.wrong_code(
                    tx,
                    account.id,
                    "wrong code, or the phone's clock is off",
                );
            }
        };
        let activated = account.state == State::Pending && then == Then::Record;
        let (left, drift_steps) = match then {
            Then::Record => {
                let (recent, drift) =
                    skew::learn(&account.recent_offsets, account.drift_steps, offset_steps);
                // A success clears the failures and activates.
                tx.record_success(
                    account.id,
                    &Success::totp(now, step, drift, recent, activated),
                    Premise::totp(&account),
                )?;
                (tx.backup_codes_left(account.id)?, drift)
            }
            Then::Disable => {
                tx.delete_account(account.id)?;
                (0, account.drift_steps)
            }
        };
        let (outcome, detail) = match (then, activated) {
            (Then::Disable, _) => (
                Outcome::Ok,
                format!("self-service removal with a totp code; offset {offset_steps} steps"),
            ),
            (_, true) => (Outcome::Activated, format!("totp; offset {offset_steps} steps")),
            (_, false) => (Outcome::Accepted, format!("totp; offset {offset_steps} steps")),
        };
        tx.append_audit(attempt.record(outcome, detail))?;
        Ok(Verdict::Done(Judged::Verified(Verified {
            method: Method::Totp,
            activated,
            offset_steps: Some(offset_steps),
            drift_steps: Some(drift_steps),
            period: Some(account.params.period),
            backup_codes_left: left,
        })))
    })
}

fn check_backup(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    code: &BackupCode,
    then: Then,
) -> Result<Verified> {
    let now = ctx.clock.now()?;
    let attempt = Attempt {
        ctx,
        now,
        action: then.action(),
        email,
    };
    let tag = code.tag();
    // Phase 1: find the candidate (and refuse early when locked or unknown).
    let (checked, stored) = store.decide(|tx| {
        let Some(enrollment) = tx.enrollment_for_update(email.as_str())? else {
            return attempt.not_enrolled(tx, "backup code");
        };
        let lock = tx.lock(enrollment.id)?;
        if lock.is_locked(now) {
            return attempt.locked(tx, lock, "backup code attempt");
        }
        let stored = tx.backup_code_by_tag(enrollment.id, &tag)?;
        Ok(Verdict::Done((enrollment, stored)))
    })?;
    // Phase 2: one argon2 evaluation, outside the write lock, whatever happens.
    let matched = match &stored {
        Some(s) => code.matches(&s.hash).map_err(|e| store.in_db(&e))?,
        None => {
            code.check_decoy();
            false
        }
    };
    // Phase 3: decide and record on what is there now: the same enrollment
    // (not merely the same row id), the same code row (the same salted hash,
    // not a new batch's row with the old id), and the state at commit.
    store.decide(|tx| {
        let current = match tx.enrollment_for_update(email.as_str())? {
            Some(current) if current.same_as(&checked) => current,
            _ => {
                return attempt.reject(
                    tx,
                    "backup code; the enrollment changed meanwhile",
                    Error::rejected(format!(
                        "backup code rejected for {email}: the enrollment was changed meanwhile; try again"
                    )),
                );
            }
        };
        let account_id = current.id;
        let lock = tx.lock(account_id)?;
        if lock.is_locked(now) {
            return attempt.locked(tx, lock, "backup code attempt");
        }
        let Some(stored) = stored.as_ref().filter(|_| matched) else {
            return attempt.wrong_code(tx, account_id, "not a valid backup code");
        };
        let already_used = || {
            Error::rejected(format!(
                "backup code rejected for {email}: it was already used; each backup code works once"
            ))
        };
        let now_stored = tx.backup_code_by_tag(account_id, &tag)?;
        let Some(now_stored) = now_stored.filter(|n| n.hash == stored.hash) else {
            return attempt.reject(
                tx,
                "backup code revoked meanwhile (new codes were made); not counted as a failure",
                Error::rejected(format!(
                    "backup code rejected for {email}: the backup codes were replaced meanwhile, and this one no longer works"
                )),
            );
        };
        if now_stored.used {
            return attempt.reject(
                tx,
                "backup code already used; not counted as a failure",
                already_used(),
            );
        }
        if current.state == State::Pending && then == Then::Record {
            return attempt.reject(
                tx,
                "backup code while the enrollment is pending",
                Error::rejected(format!(
                    "backup code rejected for {email}: the enrollment is still pending; activate it with a code from the authenticator app first"
                )),
            );
        }
        // Spend it only if nobody else did meanwhile: the conditional
        // spend's answer is the verdict.
        if !tx.spend_backup_code(account_id, &now_stored, now)? {
            return attempt.reject(
                tx,
                "backup code already used (race); not counted as a failure",
                already_used(),
            );
        }
        // A success clears the failures.
        tx.record_success(
            account_id,
            &Success::backup_code(now, current.state),
            Premise::lock(lock),
        )?;
        let left = match then {
            Then::Record => tx.backup_codes_left(account_id)?,
            Then::Disable => {
                tx.delete_account(account_id)?;
                0
            }
        };
        let (outcome, detail) = match then {
            Then::Record => (Outcome::Accepted, format!("backup code; {left} left")),
            Then::Disable => (
                Outcome::Ok,
                "self-service removal with a backup code".to_string(),
            ),
        };
        tx.append_audit(attempt.record(outcome, detail))?;
        Ok(Verdict::Done(Verified {
            method: Method::BackupCode,
            activated: false,
            offset_steps: None,
            drift_steps: None,
            period: None,
            backup_codes_left: left,
        }))
    })
}
