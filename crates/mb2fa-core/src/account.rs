//! The operations the tools perform, each one transaction: enroll, verify,
//! disable, regenerate backup codes, unlock, list, read the audit trail. They
//! tie the rules (`totp`, `backup_codes`, `throttle`) to the store, and write
//! the audit record of each outcome in the same transaction as the change.
//! The tools only parse arguments and print.
//!
//! Expensive work (argon2) happens outside the write lock; the transaction then
//! re-checks what it depends on, so a concurrent change is never overwritten.

use std::collections::HashMap;

use zeroize::Zeroizing;

use crate::audit::{self, Record};
use crate::backup_codes::{self, BackupCode};
use crate::clock::{Clock, NtpStatus, rfc3339};
use crate::code::Code;
use crate::email::Email;
use crate::error::{Error, Result};
use crate::secret::Secret;
use crate::skew;
use crate::store::{AccountSummary, EnrollmentRef, Exemption, Lock, NewAccount, State, Store, Tx};
use crate::throttle;
use crate::totp::{self, TotpCheck, TotpParams};
use crate::uri;

/// Who is acting, with which tool, at what time: what every audit record
/// needs.
pub struct Ctx<'a> {
    pub clock: &'a dyn Clock,
    pub tool: &'a str,
    pub actor: String,
}

impl<'a> Ctx<'a> {
    /// The context of a tool run: the real actor (`SUDO_USER` or the user).
    pub fn new(clock: &'a dyn Clock, tool: &'a str) -> Ctx<'a> {
        Ctx {
            clock,
            tool,
            actor: audit::current_actor(),
        }
    }

    fn record(
        &self,
        now: i64,
        action: &str,
        email: &Email,
        outcome: &str,
        detail: impl Into<String>,
    ) -> Record {
        Record {
            at: now,
            tool: self.tool.to_string(),
            action: action.to_string(),
            email: Some(email.as_str().to_string()),
            outcome: outcome.to_string(),
            actor: self.actor.clone(),
            detail: detail.into(),
        }
    }
}

/// Write one audit record on its own (for outcomes decided before any change).
fn audit_only(
    store: &mut Store,
    ctx: &Ctx<'_>,
    now: i64,
    action: &str,
    email: &Email,
    outcome: &str,
    detail: &str,
) -> Result<()> {
    store.write(|tx| tx.append_audit(ctx.record(now, action, email, outcome, detail)))
}

/// Name the database in an error found in its contents.
fn in_db(store: &Store, e: &Error) -> Error {
    Error::new(
        e.kind(),
        format!("database {}: {}", store.path().display(), e.message()),
    )
}

/// A new enrollment, with everything that is shown once and never again.
/// `Debug` leaves out the URI (it carries the secret).
pub struct Enrollment {
    pub email: Email,
    pub issuer: String,
    pub secret: Secret,
    pub params: TotpParams,
    pub otpauth_uri: Zeroizing<String>,
    pub backup_codes: Vec<BackupCode>,
    /// The state of the enrollment this one replaced, if any.
    pub replaced: Option<State>,
}

/// Enroll `email`: a pending enrollment with a new secret and backup codes.
/// An active enrollment is only replaced with `force`; a pending one always is
/// (the user never finished setting it up). The store must be unlocked.
pub fn enable(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    issuer: &str,
    force: bool,
) -> Result<Enrollment> {
    let now = ctx.clock.now()?;
    let conflict = || {
        Error::conflict(format!(
            "2FA is already active for {email}: pass --force to replace it (the old secret and backup codes stop working)"
        ))
    };
    // Fail fast, before ten argon2 hashes.
    if let Some(EnrollmentRef {
        state: State::Active,
        ..
    }) = store.read(|tx| tx.account_state(email.as_str()))?
        && !force
    {
        audit_only(
            store,
            ctx,
            now,
            "enable",
            email,
            "conflict",
            "already active; --force not given",
        )?;
        return Err(conflict());
    }
    let secret = Secret::generate()?;
    let params = TotpParams::default();
    let set = backup_codes::generate_set()?;
    let replaced = store.write(|tx| {
        let existing = tx.account_state(email.as_str())?;
        if let Some(EnrollmentRef { id, state, .. }) = existing {
            if state == State::Active && !force {
                tx.append_audit(ctx.record(
                    now,
                    "enable",
                    email,
                    "conflict",
                    "already active; --force not given",
                ))?;
                return Ok(Err(conflict()));
            }
            tx.delete_account(id)?;
        }
        let id = tx.insert_account(&NewAccount {
            email: email.as_str(),
            secret: &secret,
            params,
            issuer,
            created_at: now,
        })?;
        tx.replace_backup_codes(id, &set.rows, now)?;
        let detail = match existing {
            None => format!("new pending enrollment, issuer {issuer:?}"),
            Some(r) => format!(
                "replaced the {} enrollment, issuer {issuer:?}",
                r.state.as_str()
            ),
        };
        tx.append_audit(ctx.record(now, "enable", email, "ok", detail))?;
        Ok(Ok(existing.map(|r| r.state)))
    })??;
    let otpauth_uri = uri::otpauth_uri(issuer, email.as_str(), &secret, &params);
    Ok(Enrollment {
        email: email.clone(),
        issuer: issuer.to_string(),
        secret,
        params,
        otpauth_uri,
        backup_codes: set.codes,
        replaced,
    })
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment")
            .field("email", &self.email)
            .field("issuer", &self.issuer)
            .field("secret", &self.secret)
            .field("params", &self.params)
            .field("otpauth_uri", &"[redacted]")
            .field("backup_codes", &self.backup_codes)
            .field("replaced", &self.replaced)
            .finish()
    }
}

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
    pub backup_codes_left: u32,
}

/// What to do in the same transaction once the code is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Record,
    Disable,
}

impl Then {
    fn action(self) -> &'static str {
        match self {
            Then::Record => "verify",
            Then::Disable => "disable",
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

/// `mb-2fa-disable` after its confirmation: remove the enrollment that was
/// shown (and confirmed), and only that one. If it was replaced or removed
/// since, nothing is removed (exit 5 or 3): a new enrollment is never
/// deleted on a confirmation given for another.
pub fn disable_shown(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    shown: &EnrollmentRef,
) -> Result<()> {
    remove(store, ctx, email, Some(shown))
}

/// Record an attempt to disable an account that has no enrollment (exit 3),
/// without calling anything that removes.
pub fn disable_not_enrolled(store: &mut Store, ctx: &Ctx<'_>, email: &Email) -> Error {
    let recorded = ctx
        .clock
        .now()
        .and_then(|now| audit_only(store, ctx, now, "disable", email, "not_enrolled", ""));
    match recorded {
        Ok(()) => Error::not_enrolled(email.as_str()),
        Err(e) => e,
    }
}

fn remove(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    shown: Option<&EnrollmentRef>,
) -> Result<()> {
    let now = ctx.clock.now()?;
    store.write(|tx| match tx.account_state(email.as_str())? {
        Some(current) if shown.is_some_and(|s| !s.same_as(&current)) => {
            tx.append_audit(ctx.record(
                now,
                "disable",
                email,
                "conflict",
                "the enrollment changed after it was shown; nothing removed",
            ))?;
            Ok(Err(Error::conflict(format!(
                "the enrollment of {email} changed after it was shown (re-enrolled meanwhile): nothing was removed; run the command again"
            ))))
        }
        Some(current) => {
            tx.delete_account(current.id)?;
            tx.append_audit(ctx.record(
                now,
                "disable",
                email,
                "ok",
                format!("removed the {} enrollment", current.state.as_str()),
            ))?;
            Ok(Ok(()))
        }
        None => {
            tx.append_audit(ctx.record(now, "disable", email, "not_enrolled", ""))?;
            Ok(Err(Error::not_enrolled(email.as_str())))
        }
    })?
}

fn check_code(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    code: &Code,
    then: Then,
) -> Result<Verified> {
    match code {
        Code::Totp(digits) => check_totp(store, ctx, email, digits, then),
        Code::Backup(backup) => check_backup(store, ctx, email, backup, then),
    }
}

fn locked_error(email: &Email, lock: Lock) -> Error {
    Error::locked(format!(
        "{email} is locked until {} after {} failed attempts; wait, or an admin can clear it: mb-2fa-unlock --email {email}",
        lock.locked_until.map_or_else(|| "-".to_string(), rfc3339),
        lock.failed_attempts
    ))
}

/// Count a wrong code and audit it; the message says if this locked the account.
fn record_wrong_code(
    tx: &Tx<'_>,
    ctx: &Ctx<'_>,
    now: i64,
    action: &str,
    email: &Email,
    id: i64,
    what: &str,
) -> Result<Error> {
    let lock = tx.record_failure(id, now)?;
    let locked_now =
        throttle::is_locked(lock.locked_until, now) && lock.failed_attempts >= throttle::THRESHOLD;
    let detail = if locked_now {
        format!(
            "{what}; failure {}; locked until {}",
            lock.failed_attempts,
            lock.locked_until.map_or_else(String::new, rfc3339)
        )
    } else {
        format!(
            "{what}; failure {} of {}",
            lock.failed_attempts,
            throttle::THRESHOLD
        )
    };
    tx.append_audit(ctx.record(now, action, email, "rejected", detail))?;
    let mut msg = format!("code rejected for {email}: {what}");
    if locked_now {
        msg.push_str(&format!(
            "; the account is now locked until {} after {} failed attempts",
            lock.locked_until.map_or_else(String::new, rfc3339),
            lock.failed_attempts
        ));
    }
    Ok(Error::rejected(msg))
}

fn check_totp(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    code: &str,
    then: Then,
) -> Result<Verified> {
    let now = ctx.clock.now()?;
    let action = then.action();
    store.write(|tx| {
        let Some(account) = tx.account(email.as_str())? else {
            tx.append_audit(ctx.record(now, action, email, "not_enrolled", "totp"))?;
            return Ok(Err(Error::not_enrolled(email.as_str())));
        };
        let lock = Lock {
            failed_attempts: account.failed_attempts,
            locked_until: account.locked_until,
        };
        if throttle::is_locked(lock.locked_until, now) {
            tx.append_audit(ctx.record(now, action, email, "locked", "totp attempt while locked; not evaluated"))?;
            return Ok(Err(locked_error(email, lock)));
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
        match result {
            TotpCheck::Accepted { step, offset_steps } => {
                let activated = account.state == State::Pending && then == Then::Record;
                let (left, drift_steps) = match then {
                    Then::Record => {
                        let (recent, drift) =
                            skew::learn(&account.recent_offsets, account.drift_steps, offset_steps);
                        tx.record_totp_success(account.id, step, now, drift, &recent)?;
                        (tx.backup_codes_left(account.id)?, drift)
                    }
                    Then::Disable => {
                        tx.delete_account(account.id)?;
                        (0, account.drift_steps)
                    }
                };
                let (outcome, detail) = match (then, activated) {
                    (Then::Disable, _) => ("ok", format!("self-service removal with a totp code; offset {offset_steps} steps")),
                    (_, true) => ("activated", format!("totp; offset {offset_steps} steps")),
                    (_, false) => ("accepted", format!("totp; offset {offset_steps} steps")),
                };
                tx.append_audit(ctx.record(now, action, email, outcome, detail))?;
                Ok(Ok(Verified {
                    method: Method::Totp,
                    activated,
                    offset_steps: Some(offset_steps),
                    drift_steps: Some(drift_steps),
                    backup_codes_left: left,
                }))
            }
            TotpCheck::Replayed { .. } => {
                tx.append_audit(ctx.record(now, action, email, "rejected", "totp code already used (replay); not counted as a failure"))?;
                Ok(Err(Error::rejected(format!(
                    "code rejected for {email}: it was already used; wait for the next code in the app"
                ))))
            }
            TotpCheck::NoMatch => Ok(Err(record_wrong_code(
                tx,
                ctx,
                now,
                action,
                email,
                account.id,
                "wrong code, or the phone's clock is off",
            )?)),
        }
    })?
}

fn check_backup(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    code: &BackupCode,
    then: Then,
) -> Result<Verified> {
    let now = ctx.clock.now()?;
    let action = then.action();
    let tag = code.tag();
    // Phase 1: find the candidate (and refuse early when locked or unknown).
    let found = store.write(|tx| {
        let Some(enrollment) = tx.account_state(email.as_str())? else {
            tx.append_audit(ctx.record(now, action, email, "not_enrolled", "backup code"))?;
            return Ok(Err(Error::not_enrolled(email.as_str())));
        };
        let lock = tx.lock(enrollment.id)?;
        if throttle::is_locked(lock.locked_until, now) {
            tx.append_audit(ctx.record(
                now,
                action,
                email,
                "locked",
                "backup code attempt while locked; not evaluated",
            ))?;
            return Ok(Err(locked_error(email, lock)));
        }
        Ok(Ok((
            enrollment,
            tx.backup_code_by_tag(enrollment.id, &tag)?,
        )))
    })?;
    let (checked, stored) = found?;
    // Phase 2: one argon2 evaluation, outside the write lock, whatever happens.
    let matched = match &stored {
        Some(s) => code.matches(&s.hash).map_err(|e| in_db(store, &e))?,
        None => {
            code.check_decoy();
            false
        }
    };
    // Phase 3: decide and record on what is there now: the same enrollment
    // (not merely the same row id), the same code row (the same salted hash,
    // not a new batch's row with the old id), and the state at commit.
    store.write(|tx| {
        let current = match tx.account_state(email.as_str())? {
            Some(current) if current.same_as(&checked) => current,
            _ => {
                tx.append_audit(ctx.record(now, action, email, "rejected", "backup code; the enrollment changed meanwhile"))?;
                return Ok(Err(Error::rejected(format!(
                    "backup code rejected for {email}: the enrollment was changed meanwhile; try again"
                ))));
            }
        };
        let account_id = current.id;
        let lock = tx.lock(account_id)?;
        if throttle::is_locked(lock.locked_until, now) {
            tx.append_audit(ctx.record(now, action, email, "locked", "backup code attempt while locked; not evaluated"))?;
            return Ok(Err(locked_error(email, lock)));
        }
        let Some(stored) = stored.as_ref().filter(|_| matched) else {
            return Ok(Err(record_wrong_code(tx, ctx, now, action, email, account_id, "not a valid backup code")?));
        };
        let already_used = || {
            Error::rejected(format!(
                "backup code rejected for {email}: it was already used; each backup code works once"
            ))
        };
        let now_stored = tx.backup_code_by_tag(account_id, &tag)?;
        let Some(now_stored) = now_stored.filter(|n| n.hash == stored.hash) else {
            tx.append_audit(ctx.record(now, action, email, "rejected", "backup code revoked meanwhile (new codes were made); not counted as a failure"))?;
            return Ok(Err(Error::rejected(format!(
                "backup code rejected for {email}: the backup codes were replaced meanwhile, and this one no longer works"
            ))));
        };
        if now_stored.used {
            tx.append_audit(ctx.record(now, action, email, "rejected", "backup code already used; not counted as a failure"))?;
            return Ok(Err(already_used()));
        }
        if current.state == State::Pending && then == Then::Record {
            tx.append_audit(ctx.record(now, action, email, "rejected", "backup code while the enrollment is pending"))?;
            return Ok(Err(Error::rejected(format!(
                "backup code rejected for {email}: the enrollment is still pending; activate it with a code from the authenticator app first"
            ))));
        }
        // Spend it only if nobody else did meanwhile.
        if !tx.spend_backup_code(account_id, &now_stored, now)? {
            tx.append_audit(ctx.record(now, action, email, "rejected", "backup code already used (race); not counted as a failure"))?;
            return Ok(Err(already_used()));
        }
        let left = match then {
            Then::Record => tx.backup_codes_left(account_id)?,
            Then::Disable => {
                tx.delete_account(account_id)?;
                0
            }
        };
        let detail = match then {
            Then::Record => format!("backup code; {left} left"),
            Then::Disable => "self-service removal with a backup code".to_string(),
        };
        tx.append_audit(ctx.record(now, action, email, if then == Then::Record { "accepted" } else { "ok" }, detail))?;
        Ok(Ok(Verified {
            method: Method::BackupCode,
            activated: false,
            offset_steps: None,
            drift_steps: None,
            backup_codes_left: left,
        }))
    })?
}

/// The outcome of a resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resynced {
    pub drift_steps: i64,
    pub activated: bool,
}

/// Re-synchronise an account's drift from two consecutive codes found within
/// ±`skew::MAX_DRIFT` steps (like FreeIPA's token sync). Both codes are used
/// up; a pending enrollment is activated (the user proved the phone works).
/// A failure counts towards the lockout like a wrong code.
pub fn resync(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    first: &str,
    second: &str,
) -> Result<Resynced> {
    let now = ctx.clock.now()?;
    store.write(|tx| {
        let Some(account) = tx.account(email.as_str())? else {
            tx.append_audit(ctx.record(now, "resync", email, "not_enrolled", ""))?;
            return Ok(Err(Error::not_enrolled(email.as_str())));
        };
        let lock = Lock {
            failed_attempts: account.failed_attempts,
            locked_until: account.locked_until,
        };
        if throttle::is_locked(lock.locked_until, now) {
            tx.append_audit(ctx.record(now, "resync", email, "locked", "resync while locked; not evaluated"))?;
            return Ok(Err(locked_error(email, lock)));
        }
        let found = skew::find_consecutive(
            &account.secret,
            &account.params,
            first,
            second,
            now,
            skew::MAX_DRIFT,
            account.last_step,
        );
        let Some(step) = found else {
            let stale = account.last_step.is_some()
                && skew::find_consecutive(&account.secret, &account.params, first, second, now, skew::MAX_DRIFT, None)
                    .is_some();
            let what = if stale {
                "the two codes are not newer than the last accepted code (a code is never accepted twice, nor an older one); resync with the phone's next two codes once its clock is fixed or has caught up".to_string()
            } else {
                format!(
                    "the two codes are not consecutive codes of this account within ±{}",
                    skew::describe_seconds(skew::MAX_DRIFT * i64::from(account.params.period))
                )
            };
            return Ok(Err(record_wrong_code(tx, ctx, now, "resync", email, account.id, &what)?));
        };
        let drift = step - account.params.step_at(now);
        let recent = vec![drift; skew::HISTORY];
        tx.record_totp_success(account.id, step, now, drift, &recent)?;
        let activated = account.state == State::Pending;
        tx.append_audit(ctx.record(
            now,
            "resync",
            email,
            "ok",
            format!("drift {} -> {drift} steps{}", account.drift_steps, if activated { "; activated" } else { "" }),
        ))?;
        Ok(Ok(Resynced { drift_steps: drift, activated }))
    })?
}

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
    // One write transaction, like a verification: the lockout has its say,
    // and a code that matches nowhere is counted (else --diagnose would be an
    // unthrottled oracle for codes).
    store.write(|tx| {
        let Some(account) = tx.account(email.as_str())? else {
            tx.append_audit(ctx.record(now, "diagnose", email, "not_enrolled", ""))?;
            return Ok(Err(Error::not_enrolled(email.as_str())));
        };
        let lock = Lock {
            failed_attempts: account.failed_attempts,
            locked_until: account.locked_until,
        };
        if throttle::is_locked(lock.locked_until, now) {
            tx.append_audit(ctx.record(
                now,
                "diagnose",
                email,
                "locked",
                "diagnosis while locked; not evaluated",
            ))?;
            return Ok(Err(locked_error(email, lock)));
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
                let _ = record_wrong_code(tx, ctx, now, "diagnose", email, account.id, &detail)?;
                let after = tx.lock(account.id)?;
                (after.failed_attempts, after.locked_until)
            } else {
                tx.append_audit(ctx.record(now, "diagnose", email, "ok", detail))?;
                (account.failed_attempts, account.locked_until)
            };
        let locked = throttle::is_locked(locked_until, now);
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
        Ok(Ok(Diagnosis {
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
    })?
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

/// Replace all backup codes of an enrollment; the old ones stop working at once.
pub fn regenerate_backup_codes(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
) -> Result<Vec<BackupCode>> {
    let now = ctx.clock.now()?;
    let Some(shown) = store.read(|tx| tx.account_state(email.as_str()))? else {
        audit_only(store, ctx, now, "backup_codes", email, "not_enrolled", "")?;
        return Err(Error::not_enrolled(email.as_str()));
    };
    let set = backup_codes::generate_set()?;
    store.write(|tx| {
        // The enrollment may have been replaced or removed while we hashed.
        match tx.account_state(email.as_str())? {
            Some(current) if current.same_as(&shown) => {
                tx.replace_backup_codes(current.id, &set.rows, now)?;
                tx.append_audit(ctx.record(
                    now,
                    "backup_codes",
                    email,
                    "ok",
                    format!("{} new backup codes; the old ones revoked", set.rows.len()),
                ))?;
                Ok(Ok(()))
            }
            Some(_) => Ok(Err(Error::conflict(format!(
                "the enrollment of {email} was replaced meanwhile; run the command again"
            )))),
            None => {
                tx.append_audit(ctx.record(now, "backup_codes", email, "not_enrolled", ""))?;
                Ok(Err(Error::not_enrolled(email.as_str())))
            }
        }
    })??;
    Ok(set.codes)
}

/// Clear a lockout. Returns the lock state it cleared.
pub fn unlock(store: &mut Store, ctx: &Ctx<'_>, email: &Email) -> Result<Lock> {
    let now = ctx.clock.now()?;
    store.write(|tx| {
        let Some(EnrollmentRef { id, .. }) = tx.account_state(email.as_str())? else {
            tx.append_audit(ctx.record(now, "unlock", email, "not_enrolled", ""))?;
            return Ok(Err(Error::not_enrolled(email.as_str())));
        };
        let before = tx.lock_to_clear(id)?;
        tx.clear_lock(id)?;
        let detail = if throttle::is_locked(before.locked_until, now) {
            format!(
                "cleared a lock until {} after {} failures",
                before.locked_until.map_or_else(String::new, rfc3339),
                before.failed_attempts
            )
        } else {
            format!(
                "was not locked; cleared {} failures",
                before.failed_attempts
            )
        };
        tx.append_audit(ctx.record(now, "unlock", email, "ok", detail))?;
        Ok(Ok(before))
    })?
}

/// The state of an enrollment, or `None` when the email has none.
pub fn state(store: &mut Store, email: &Email) -> Result<Option<EnrollmentRef>> {
    store.read(|tx| tx.account_state(email.as_str()))
}

/// Every account, in email order, collected (for a few; see [`list_each`]).
pub fn list(store: &mut Store) -> Result<Vec<AccountSummary>> {
    store.read(|tx| tx.summaries())
}

/// The list as `mb-2fa-list` shows it, from one snapshot (one read
/// transaction): the exemptions are loaded first (they are few), then every
/// account is handed to `each` in email order, with its exemption if it has
/// one, as its row is read, so memory does not grow with the number of
/// accounts. Returns the exemptions, in email order.
///
/// Stops at the first error, `each`'s or a damaged row's; the accounts
/// before it have been handed over already.
pub fn list_each(
    store: &mut Store,
    mut each: impl FnMut(AccountSummary, Option<&Exemption>) -> Result<()>,
) -> Result<Vec<Exemption>> {
    store.read(|tx| {
        let exemptions = tx.exemptions()?;
        {
            let by_email: HashMap<&str, &Exemption> =
                exemptions.iter().map(|e| (e.email.as_str(), e)).collect();
            tx.for_each_summary(|a| {
                let exemption = by_email.get(a.email.as_str()).copied();
                each(a, exemption)
            })?;
        }
        Ok(exemptions)
    })
}

/// The audit trail, newest first.
pub fn audit_log(
    store: &mut Store,
    email: Option<&Email>,
    since: Option<i64>,
    limit: u32,
) -> Result<Vec<Record>> {
    store.read(|tx| tx.audit_records(email.map(Email::as_str), since, limit))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::error::ErrorKind;
    use crate::store::OpenMode;

    const NOW: i64 = 1_800_000_015;

    fn setup() -> (tempfile::TempDir, Store, Email) {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut store = Store::open(&tmp.path().join("2fa.db"), OpenMode::Init).expect("open");
        store.unlock(&tmp.path().join("2fa.key")).expect("key");
        (
            tmp,
            store,
            Email::parse("alice@example.com").expect("email"),
        )
    }

    fn ctx(clock: &FixedClock) -> Ctx<'_> {
        Ctx {
            clock,
            tool: "test",
            actor: "tester".to_string(),
        }
    }

    fn totp_code(e: &Enrollment, step_offset: i64) -> Code {
        let step = e.params.step_at(NOW) + step_offset;
        Code::Totp(totp::code_for_step(&e.secret, &e.params, step))
    }

    #[test]
    fn lifecycle() {
        let (_tmp, mut store, email) = setup();
        let clock = FixedClock(NOW);
        let clock = ctx(&clock);
        let e = enable(&mut store, &clock, &email, "Mailborder", false).expect("enable");
        assert_eq!(e.backup_codes.len(), 10);
        let shown = format!("{e:?}");
        assert!(!shown.contains(e.secret.to_base32().as_str()), "{shown}");
        assert!(!shown.contains(e.backup_codes[0].as_str()), "{shown}");
        assert_eq!(e.replaced, None);

        // Backup codes don't work before activation.
        let b0 = Code::Backup(e.backup_codes[0].clone());
        assert_eq!(
            verify(&mut store, &clock, &email, &b0).map_err(|e| e.kind()),
            Err(ErrorKind::Rejected)
        );

        let v = verify(&mut store, &clock, &email, &totp_code(&e, 0)).expect("verify");
        assert!(v.activated);
        assert_eq!(v.offset_steps, Some(0));
        let replay = verify(&mut store, &clock, &email, &totp_code(&e, 0)).expect_err("replay");
        assert_eq!(replay.kind(), ErrorKind::Rejected);
        assert!(replay.message().contains("already used"));
        let earlier = verify(&mut store, &clock, &email, &totp_code(&e, -1)).expect_err("earlier");
        assert_eq!(earlier.kind(), ErrorKind::Rejected);

        let v = verify(&mut store, &clock, &email, &b0).expect("backup");
        assert_eq!(v.method, Method::BackupCode);
        assert_eq!(v.backup_codes_left, 9);
        let again = verify(&mut store, &clock, &email, &b0).expect_err("again");
        assert!(
            again.message().contains("already used"),
            "{}",
            again.message()
        );

        let fresh = regenerate_backup_codes(&mut store, &clock, &email).expect("regen");
        let old1 = Code::Backup(e.backup_codes[1].clone());
        assert_eq!(
            verify(&mut store, &clock, &email, &old1).map_err(|e| e.kind()),
            Err(ErrorKind::Rejected)
        );
        let v = verify(&mut store, &clock, &email, &Code::Backup(fresh[3].clone())).expect("new");
        assert_eq!(v.backup_codes_left, 9);

        let conflict = enable(&mut store, &clock, &email, "Mailborder", false).expect_err("active");
        assert_eq!(conflict.kind(), ErrorKind::Conflict);

        let summaries = list(&mut store).expect("list");
        assert_eq!(summaries.len(), 1);
        assert_eq!(summaries[0].state, State::Active);
        assert_eq!(summaries[0].activated_at, Some(NOW));

        disable(&mut store, &clock, &email, None).expect("disable");
        let gone = verify(&mut store, &clock, &email, &totp_code(&e, 1)).expect_err("gone");
        assert_eq!(gone.kind(), ErrorKind::NotEnrolled);
        assert_eq!(
            disable(&mut store, &clock, &email, None).map_err(|e| e.kind()),
            Err(ErrorKind::NotEnrolled)
        );
        assert!(list(&mut store).expect("list").is_empty());
    }

    #[test]
    fn pending_enrollment_is_replaced_and_force_replaces_active() {
        let (_tmp, mut store, email) = setup();
        let clock = FixedClock(NOW);
        let clock = ctx(&clock);
        let first = enable(&mut store, &clock, &email, "Mailborder", false).expect("first");
        let second = enable(&mut store, &clock, &email, "Mailborder", false).expect("second");
        assert_eq!(second.replaced, Some(State::Pending));
        assert_ne!(first.secret, second.secret);
        let old = verify(&mut store, &clock, &email, &totp_code(&first, 0));
        assert_eq!(old.map_err(|e| e.kind()), Err(ErrorKind::Rejected));
        verify(&mut store, &clock, &email, &totp_code(&second, 0)).expect("activate");
        let third = enable(&mut store, &clock, &email, "Mailborder", true).expect("force");
        assert_eq!(third.replaced, Some(State::Active));
        let summaries = list(&mut store).expect("list");
        assert_eq!(summaries[0].state, State::Pending);
        assert_eq!(summaries[0].backup_codes_left, 10);
    }

    #[test]
    fn disable_with_code_requires_a_valid_code() {
        let (_tmp, mut store, email) = setup();
        let clock = FixedClock(NOW);
        let clock = ctx(&clock);
        let e = enable(&mut store, &clock, &email, "Mailborder", false).expect("enable");
        verify(&mut store, &clock, &email, &totp_code(&e, -1)).expect("activate");
        let wrong = Code::parse("000000").expect("shape");
        let wrong = if matches!(&wrong, Code::Totp(c) if **c == *totp::code_for_step(&e.secret, &e.params, e.params.step_at(NOW)))
        {
            Code::parse("111111").expect("shape")
        } else {
            wrong
        };
        let err = disable(&mut store, &clock, &email, Some(&wrong)).expect_err("wrong");
        assert_eq!(err.kind(), ErrorKind::Rejected);
        assert_eq!(list(&mut store).expect("list").len(), 1);
        disable(&mut store, &clock, &email, Some(&totp_code(&e, 0))).expect("disable");
        assert!(list(&mut store).expect("list").is_empty());
    }

    #[test]
    fn verify_fails_closed_on_unknown_email() {
        let (_tmp, mut store, _) = setup();
        let bob = Email::parse("bob@example.com").expect("email");
        let clock = FixedClock(NOW);
        let clock = ctx(&clock);
        let err =
            verify(&mut store, &clock, &bob, &Code::parse("123456").expect("c")).expect_err("none");
        assert_eq!(err.kind(), ErrorKind::NotEnrolled);
        let err = regenerate_backup_codes(&mut store, &clock, &bob).expect_err("none");
        assert_eq!(err.kind(), ErrorKind::NotEnrolled);
    }

    fn wrong_totp(e: &Enrollment) -> Code {
        let right: Vec<String> = (-1..=1)
            .map(|o| {
                totp::code_for_step(&e.secret, &e.params, e.params.step_at(NOW) + o).to_string()
            })
            .collect();
        let wrong = (0..10)
            .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
            .find(|c| !right.contains(c))
            .expect("a wrong code");
        Code::parse(&wrong).expect("shape")
    }

    #[test]
    fn five_wrong_codes_lock_and_the_lock_doubles_then_success_resets() {
        let (_tmp, mut store, email) = setup();
        let t0 = FixedClock(NOW);
        let e = enable(&mut store, &ctx(&t0), &email, "Mailborder", false).expect("enable");
        verify(&mut store, &ctx(&t0), &email, &totp_code(&e, -1)).expect("activate");
        let wrong = wrong_totp(&e);
        for i in 1..=4 {
            let err = verify(&mut store, &ctx(&t0), &email, &wrong).expect_err("wrong");
            assert_eq!(err.kind(), ErrorKind::Rejected, "attempt {i}");
        }
        let fifth = verify(&mut store, &ctx(&t0), &email, &wrong).expect_err("wrong");
        assert_eq!(fifth.kind(), ErrorKind::Rejected);
        assert!(
            fifth.message().contains("now locked until"),
            "{}",
            fifth.message()
        );
        // Locked: even the right code is refused, and not evaluated or counted.
        let locked = verify(&mut store, &ctx(&t0), &email, &totp_code(&e, 0)).expect_err("locked");
        assert_eq!(locked.kind(), ErrorKind::Locked);
        assert!(
            locked.message().contains(&rfc3339(NOW + 30)),
            "{}",
            locked.message()
        );
        let s = list(&mut store).expect("list");
        assert_eq!(
            (s[0].failed_attempts, s[0].locked_until),
            (5, Some(NOW + 30))
        );
        // After 30 s one more failure locks for 60 s.
        let t1 = FixedClock(NOW + 30);
        verify(&mut store, &ctx(&t1), &email, &wrong).expect_err("wrong");
        let s = list(&mut store).expect("list");
        assert_eq!(
            (s[0].failed_attempts, s[0].locked_until),
            (6, Some(NOW + 90))
        );
        // After that, the right code works and resets everything.
        let t2 = FixedClock(NOW + 90);
        let step = e.params.step_at(NOW + 90);
        let good = Code::Totp(totp::code_for_step(&e.secret, &e.params, step));
        verify(&mut store, &ctx(&t2), &email, &good).expect("accepted after the lock");
        let s = list(&mut store).expect("list");
        assert_eq!((s[0].failed_attempts, s[0].locked_until), (0, None));
    }

    #[test]
    fn wrong_backup_codes_count_replays_do_not_and_unlock_clears() {
        let (_tmp, mut store, email) = setup();
        let c = FixedClock(NOW);
        let e = enable(&mut store, &ctx(&c), &email, "Mailborder", false).expect("enable");
        verify(&mut store, &ctx(&c), &email, &totp_code(&e, 0)).expect("activate");
        // A replay is not a guess.
        for _ in 0..6 {
            verify(&mut store, &ctx(&c), &email, &totp_code(&e, 0)).expect_err("replay");
        }
        assert_eq!(list(&mut store).expect("list")[0].failed_attempts, 0);
        let bad = Code::parse("AAAA-BBBB-CCCC").expect("shape");
        for _ in 0..5 {
            verify(&mut store, &ctx(&c), &email, &bad).expect_err("bad");
        }
        let good = Code::Backup(e.backup_codes[0].clone());
        let locked = verify(&mut store, &ctx(&c), &email, &good).expect_err("locked");
        assert_eq!(locked.kind(), ErrorKind::Locked);
        let before = unlock(&mut store, &ctx(&c), &email).expect("unlock");
        assert_eq!(before.failed_attempts, 5);
        verify(&mut store, &ctx(&c), &email, &good).expect("works after unlock");
        let log = audit_log(&mut store, Some(&email), None, 100).expect("audit");
        let outcomes: Vec<&str> = log.iter().map(|r| r.outcome.as_str()).collect();
        assert_eq!(outcomes.first(), Some(&"accepted"));
        assert!(
            log.iter()
                .any(|r| r.action == "unlock" && r.detail.contains("5 failures"))
        );
        assert_eq!(outcomes.iter().filter(|o| **o == "locked").count(), 1);
        for r in &log {
            assert_eq!(r.actor, "tester");
            assert!(!r.detail.contains(e.backup_codes[0].as_str()));
            assert!(!r.detail.contains(e.secret.to_base32().as_str()));
        }
    }

    #[test]
    fn secrets_are_sealed_and_a_wrong_key_is_refused() {
        let (tmp, mut store, email) = setup();
        let c = FixedClock(NOW);
        let e = enable(&mut store, &ctx(&c), &email, "Mailborder", false).expect("enable");
        drop(store);
        let bytes = std::fs::read(tmp.path().join("2fa.db")).expect("read");
        assert!(!bytes.windows(20).any(|w| w == e.secret.as_bytes()));
        // Another key file: refused before anything is read or written.
        let other = tmp.path().join("other.key");
        crate::key_file::create(&other).expect("key");
        let mut store = Store::open(&tmp.path().join("2fa.db"), OpenMode::MustExist).expect("open");
        let err = store.unlock(&other).expect_err("wrong key");
        assert_eq!(err.exit_code(), 10);
        assert!(
            err.message().contains("not the key of database"),
            "{}",
            err.message()
        );
        // A missing key file is not silently replaced once secrets are sealed.
        let err = store
            .unlock(&tmp.path().join("missing.key"))
            .expect_err("missing");
        assert!(err.message().contains("missing"), "{}", err.message());
        assert!(!tmp.path().join("missing.key").exists());
        // Keyless operations still work (break-glass).
        disable(&mut store, &ctx(&c), &email, None).expect("disable without key");
        // With every account removed, a new key may take over.
        store
            .unlock(&tmp.path().join("new.key"))
            .expect("new key once nothing is sealed");
        enable(&mut store, &ctx(&c), &email, "Mailborder", false).expect("enroll again");
    }

    fn code_at(e: &Enrollment, now: i64, offset: i64) -> Code {
        Code::Totp(totp::code_for_step(
            &e.secret,
            &e.params,
            e.params.step_at(now) + offset,
        ))
    }

    #[test]
    fn verify_learns_a_consistent_drift() {
        let (_tmp, mut store, email) = setup();
        let e = enable(
            &mut store,
            &ctx(&FixedClock(NOW)),
            &email,
            "Mailborder",
            false,
        )
        .expect("enable");
        // A phone 30 s behind: three codes in a row match at -1.
        for i in 0..3 {
            let t = NOW + 30 * i;
            let v = verify(
                &mut store,
                &ctx(&FixedClock(t)),
                &email,
                &code_at(&e, t, -1),
            )
            .expect("ok");
            assert_eq!(v.offset_steps, Some(-1));
        }
        assert_eq!(list(&mut store).expect("list")[0].drift_steps, -1);
        // The window is centred on -1 now: a code 60 s behind is accepted.
        let t = NOW + 120;
        let v = verify(
            &mut store,
            &ctx(&FixedClock(t)),
            &email,
            &code_at(&e, t, -2),
        )
        .expect("ok");
        assert_eq!(v.offset_steps, Some(-2));
    }

    #[test]
    fn resync_far_out_then_the_skewed_phone_verifies() {
        let (_tmp, mut store, email) = setup();
        let c = FixedClock(NOW);
        let e = enable(&mut store, &ctx(&c), &email, "Mailborder", false).expect("enable");
        // A phone 5 minutes behind: plain verification fails.
        let far = code_at(&e, NOW, -10);
        assert_eq!(
            verify(&mut store, &ctx(&c), &email, &far).map_err(|e| e.kind()),
            Err(ErrorKind::Rejected)
        );
        let digits = |c: &Code| match c {
            Code::Totp(d) => d.to_string(),
            Code::Backup(_) => unreachable!(),
        };
        // Non-consecutive codes do not resync (and count as a failure).
        let err = resync(
            &mut store,
            &ctx(&c),
            &email,
            &digits(&code_at(&e, NOW, -10)),
            &digits(&code_at(&e, NOW, -8)),
        )
        .expect_err("not consecutive");
        assert_eq!(err.kind(), ErrorKind::Rejected);
        assert_eq!(list(&mut store).expect("list")[0].failed_attempts, 2);
        let r = resync(
            &mut store,
            &ctx(&c),
            &email,
            &digits(&code_at(&e, NOW, -10)),
            &digits(&code_at(&e, NOW, -9)),
        )
        .expect("resync");
        assert_eq!(
            r,
            Resynced {
                drift_steps: -9,
                activated: true
            }
        );
        let s = list(&mut store).expect("list");
        assert_eq!((s[0].drift_steps, s[0].failed_attempts), (-9, 0));
        // The phone's next code verifies normally; its old ones are used up.
        verify(&mut store, &ctx(&c), &email, &code_at(&e, NOW, -8)).expect("next code");
        let old = verify(&mut store, &ctx(&c), &email, &code_at(&e, NOW, -9)).expect_err("used");
        assert_eq!(old.kind(), ErrorKind::Rejected);
    }

    #[test]
    fn diagnose_explains_counts_wrong_codes_and_respects_the_lock() {
        let (_tmp, mut store, email) = setup();
        let c = FixedClock(NOW);
        let e = enable(&mut store, &ctx(&c), &email, "Mailborder", false).expect("enable");
        verify(&mut store, &ctx(&c), &email, &code_at(&e, NOW, 0)).expect("activate");
        let before = list(&mut store).expect("list");
        let ntp = NtpStatus::Unknown;
        let d = diagnose(&mut store, &ctx(&c), &email, &code_at(&e, NOW, -3), 10, ntp)
            .expect("diagnose");
        assert_eq!(d.finding, Finding::Skewed { offset_steps: -3 });
        assert!(!d.would_accept);
        assert!(d.advice.contains("valid 90 s ago"), "{}", d.advice);
        assert!(d.advice.contains("90 s behind"), "{}", d.advice);
        let d = diagnose(&mut store, &ctx(&c), &email, &code_at(&e, NOW, 0), 10, ntp)
            .expect("diagnose");
        assert_eq!(d.finding, Finding::AlreadyUsed { offset_steps: 0 });
        let d = diagnose(&mut store, &ctx(&c), &email, &code_at(&e, NOW, 1), 10, ntp)
            .expect("diagnose");
        assert_eq!(
            (d.finding, d.would_accept),
            (Finding::Valid { offset_steps: 1 }, true)
        );
        let d = diagnose(
            &mut store,
            &ctx(&c),
            &email,
            &Code::Backup(e.backup_codes[0].clone()),
            10,
            ntp,
        )
        .expect("diagnose");
        assert_eq!(d.finding, Finding::BackupValid);
        // Nothing changed; the codes still work.
        assert_eq!(list(&mut store).expect("list"), before);
        // A code of the future beyond the window is never revealed, however
        // far the search reaches: it is a wrong code, and counted.
        let d = diagnose(
            &mut store,
            &ctx(&c),
            &email,
            &code_at(&e, NOW, 25),
            120,
            ntp,
        )
        .expect("diagnose");
        assert_eq!(d.finding, Finding::NoMatch);
        assert_eq!(d.failed_attempts, 1);
        assert!(d.advice.contains("counted as a wrong code"), "{}", d.advice);
        assert_eq!(list(&mut store).expect("list")[0].failed_attempts, 1);
        verify(&mut store, &ctx(&c), &email, &code_at(&e, NOW, 1)).expect("still valid");
        verify(
            &mut store,
            &ctx(&c),
            &email,
            &Code::Backup(e.backup_codes[0].clone()),
        )
        .expect("unspent");
        // Locked: refused, not evaluated.
        for _ in 0..throttle::THRESHOLD {
            let _ = diagnose(&mut store, &ctx(&c), &email, &code_at(&e, NOW, 40), 10, ntp);
        }
        let err = diagnose(&mut store, &ctx(&c), &email, &code_at(&e, NOW, 1), 10, ntp)
            .expect_err("locked");
        assert_eq!(err.kind(), ErrorKind::Locked);
        let log = audit_log(&mut store, Some(&email), None, 100).expect("audit");
        assert_eq!(log.iter().filter(|r| r.action == "diagnose").count(), 11);
    }

    #[test]
    fn disable_removes_only_the_enrollment_that_was_shown() {
        let (_tmp, mut store, email) = setup();
        let c = FixedClock(NOW);
        enable(&mut store, &ctx(&c), &email, "Mailborder", false).expect("enable");
        let shown = state(&mut store, &email).expect("state").expect("enrolled");
        // Re-enrolled while the admin read the question, in the same second
        // (the row id is reused): the confirmation was for the old one.
        enable(&mut store, &ctx(&c), &email, "Mailborder", true).expect("re-enroll");
        let now = state(&mut store, &email).expect("state").expect("enrolled");
        assert_eq!(now.id, shown.id, "the row id is reused");
        let err = disable_shown(&mut store, &ctx(&c), &email, &shown).expect_err("stale");
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(state(&mut store, &email).expect("state").is_some(), "kept");
        disable_shown(&mut store, &ctx(&c), &email, &now).expect("the shown one");
        assert!(state(&mut store, &email).expect("state").is_none());
        let err = disable_not_enrolled(&mut store, &ctx(&c), &email);
        assert_eq!(err.kind(), ErrorKind::NotEnrolled);
        let log = audit_log(&mut store, Some(&email), None, 10).expect("audit");
        assert_eq!(
            log.iter()
                .map(|r| r.outcome.as_str())
                .take(3)
                .collect::<Vec<_>>(),
            ["not_enrolled", "ok", "conflict"]
        );
    }

    #[test]
    fn list_each_streams_in_email_order_with_exemptions_from_one_snapshot() {
        let (_tmp, mut store, _) = setup();
        let clock = FixedClock(NOW);
        let c = ctx(&clock);
        for name in ["carol", "alice", "bob"] {
            let email = Email::parse(&format!("{name}@example.com")).expect("email");
            enable(&mut store, &c, &email, "Mailborder", false).expect("enable");
        }
        let bob = Email::parse("bob@example.com").expect("email");
        crate::policy::exempt(&mut store, &c, &bob, crate::policy::Kind::Service, "relay")
            .expect("exempt");
        let mut seen = Vec::new();
        let exemptions = list_each(&mut store, |a, e| {
            seen.push((a, e.map(|e| e.kind.clone())));
            Ok(())
        })
        .expect("list_each");
        assert_eq!(exemptions.len(), 1);
        assert_eq!(exemptions[0].email, "bob@example.com");
        let emails: Vec<&str> = seen.iter().map(|(a, _)| a.email.as_str()).collect();
        assert_eq!(
            emails,
            ["alice@example.com", "bob@example.com", "carol@example.com"]
        );
        let kinds: Vec<Option<&str>> = seen.iter().map(|(_, k)| k.as_deref()).collect();
        assert_eq!(kinds, [None, Some("service"), None]);
        let collected: Vec<AccountSummary> = seen.into_iter().map(|(a, _)| a).collect();
        assert_eq!(collected, list(&mut store).expect("list"));

        // The first error stops the walk and is returned.
        let mut calls = 0;
        let err = list_each(&mut store, |_, _| {
            calls += 1;
            Err(Error::storage("stop"))
        })
        .expect_err("stopped");
        assert_eq!((calls, err.message()), (1, "stop"));
    }

    #[test]
    fn summaries_query_uses_the_indexes_and_no_sort() {
        let (_tmp, mut store, _) = setup();
        let plan = store.read(|tx| tx.summaries_plan()).expect("plan");
        let text = plan.join("\n");
        // Accounts in email order straight from the unique index on email.
        assert!(
            plan.iter()
                .any(|l| l.starts_with("SCAN a USING") && l.contains("INDEX")),
            "{text}"
        );
        assert!(!text.contains("TEMP B-TREE"), "a sort step: {text}");
        // Unused backup codes counted through (account_id, tag), not a scan.
        assert!(
            plan.iter()
                .any(|l| l.starts_with("SEARCH b USING") && l.contains("(account_id=?)")),
            "{text}"
        );
        assert!(!plan.iter().any(|l| l.starts_with("SCAN b")), "{text}");
    }
}
