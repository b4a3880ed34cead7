//! The operations the tools perform, each one transaction: enroll, verify
//! ([`verify`]), resync ([`resync`]), diagnose ([`diagnose`]), disable,
//! regenerate backup codes, unlock, list, read the audit trail. They tie the
//! rules (`totp`, `backup_codes`, `throttle`, `skew`) to the store, written
//! once for every backend, and write the audit record of each outcome in the
//! same transaction as the change. The tools only parse arguments and print.
//!
//! A transaction that judges reads what it judges for update (the store
//! locks it until commit), so concurrent tools never both act on one state.
//! Expensive work (argon2) happens outside the write lock; the transaction
//! then re-checks what it depends on, so a concurrent change is never
//! overwritten.

mod diagnose;
mod resync;
#[cfg(test)]
mod tests;
mod verify;

use std::collections::HashMap;

use zeroize::Zeroizing;

use crate::audit::{self, Action, Outcome, Record};
use crate::backup_codes::{self, BackupCode};
use crate::clock::{Clock, rfc3339};
use crate::email::Email;
use crate::error::{Error, Result};
use crate::model::{AccountSummary, EnrollmentRef, Exemption, Lock, NewAccount, State};
use crate::secret::Secret;
use crate::store::{Store, Tx, Verdict};
use crate::throttle;
use crate::totp::TotpParams;
use crate::uri;

pub use diagnose::{Diagnosis, Finding, diagnose};
pub use resync::{Resynced, resync};
pub use verify::{Method, Verified, disable, verify};

/// Who is acting, with which tool, at what time: what every audit record
/// needs.
pub struct Ctx<'a> {
    pub clock: &'a dyn Clock,
    pub tool: &'a str,
    pub actor: String,
    /// Set when a PAM module ran the tool: recorded in every audit row.
    pub via: Option<audit::Via>,
}

impl<'a> Ctx<'a> {
    /// The context of a tool run: the real actor (`SUDO_USER` or the user).
    pub fn new(clock: &'a dyn Clock, tool: &'a str) -> Ctx<'a> {
        Ctx {
            clock,
            tool,
            actor: audit::current_actor(),
            via: None,
        }
    }

    /// The context of a unit test: tool `test`, actor `tester`.
    #[cfg(test)]
    pub(crate) fn for_tests(clock: &'a dyn Clock) -> Ctx<'a> {
        Ctx {
            clock,
            tool: "test",
            actor: "tester".to_string(),
            via: None,
        }
    }

    /// An audit record of this run about `email` (`None`: about the store).
    pub fn record(
        &self,
        now: i64,
        action: Action,
        email: Option<&Email>,
        outcome: Outcome,
        detail: impl Into<String>,
    ) -> Record {
        Record {
            at: now,
            tool: self.tool.to_string(),
            action,
            email: email.map(|e| e.as_str().to_string()),
            outcome,
            actor: self.actor.clone(),
            detail: detail.into(),
            node: audit::node_name().to_string(),
            via: self
                .via
                .as_ref()
                .map(audit::Via::render)
                .unwrap_or_default(),
        }
    }
}

/// Write one audit record on its own (for outcomes decided before any change).
fn audit_only(store: &mut Store, record: Record) -> Result<()> {
    store.write(|tx| tx.append_audit(record.clone()))
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

/// The issuer of a new enrollment: the one asked for, else the policy's
/// (whose own default is [`uri::DEFAULT_ISSUER`]).
pub fn issuer_for_enrollment(store: &mut Store, asked: Option<String>) -> Result<String> {
    match asked {
        Some(issuer) => Ok(issuer),
        None => Ok(crate::policy::current(store)?.issuer),
    }
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
    let refused = || {
        ctx.record(
            now,
            Action::Enable,
            Some(email),
            Outcome::Conflict,
            "already active; --force not given",
        )
    };
    // Fail fast, before ten argon2 hashes.
    if let Some(EnrollmentRef {
        state: State::Active,
        ..
    }) = store.read(|tx| tx.enrollment(email.as_str()))?
        && !force
    {
        audit_only(store, refused())?;
        return Err(conflict());
    }
    let secret = Secret::generate()?;
    let params = TotpParams::default();
    let set = backup_codes::generate_set()?;
    let replaced = store.decide(|tx| {
        let existing = tx.enrollment_for_update(email.as_str())?;
        if let Some(EnrollmentRef { id, state, .. }) = existing {
            if state == State::Active && !force {
                return tx.refuse(refused(), conflict());
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
        tx.append_audit(ctx.record(now, Action::Enable, Some(email), Outcome::Ok, detail))?;
        Ok(Verdict::Done(existing.map(|r| r.state)))
    })?;
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

/// `mb-2fa-disable` found no enrollment to show: record that (exit 3), in a
/// transaction that looks again, so the record is true when it commits. An
/// enrollment made meanwhile is not removed (nobody was shown it): exit 5,
/// run the command again.
pub fn disable_not_enrolled(store: &mut Store, ctx: &Ctx<'_>, email: &Email) -> Error {
    let decided = ctx.clock.now().and_then(|now| {
        let record =
            |outcome, detail: &str| ctx.record(now, Action::Disable, Some(email), outcome, detail);
        store.decide(|tx| match tx.enrollment_for_update(email.as_str())? {
            None => tx.refuse(
                record(Outcome::NotEnrolled, ""),
                Error::not_enrolled(email.as_str()),
            ),
            Some(_) => tx.refuse(
                record(
                    Outcome::Conflict,
                    "an enrollment was made after none was found; nothing removed",
                ),
                Error::conflict(format!(
                    "{email} was enrolled meanwhile (after none was found): nothing was removed; run the command again"
                )),
            ),
        })
    });
    match decided {
        Ok(()) => Error::not_enrolled(email.as_str()),
        Err(e) => e,
    }
}

/// Remove the enrollment of `email` (only `shown`, if given).
fn remove(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    shown: Option<&EnrollmentRef>,
) -> Result<()> {
    let now = ctx.clock.now()?;
    let record =
        |outcome, detail: String| ctx.record(now, Action::Disable, Some(email), outcome, detail);
    store.decide(|tx| match tx.enrollment_for_update(email.as_str())? {
        Some(current) if shown.is_some_and(|s| !s.same_as(&current)) => tx.refuse(
            record(
                Outcome::Conflict,
                "the enrollment changed after it was shown; nothing removed".into(),
            ),
            Error::conflict(format!(
                "the enrollment of {email} changed after it was shown (re-enrolled meanwhile): nothing was removed; run the command again"
            )),
        ),
        Some(current) => {
            tx.delete_account(current.id)?;
            tx.append_audit(record(
                Outcome::Ok,
                format!("removed the {} enrollment", current.state.as_str()),
            ))?;
            Ok(Verdict::Done(()))
        }
        None => tx.refuse(
            record(Outcome::NotEnrolled, String::new()),
            Error::not_enrolled(email.as_str()),
        ),
    })
}

fn locked_error(email: &Email, lock: Lock) -> Error {
    Error::locked(format!(
        "{email} is locked until {} after {} failed attempts; wait, or an admin can clear it: mb-2fa-unlock --email {email}",
        lock.locked_until.map_or_else(|| "-".to_string(), rfc3339),
        lock.failed_attempts
    ))
}

/// One attempt on one account (a code, a resync, a diagnosis, an unlock):
/// what its audit records and refusals need.
struct Attempt<'a> {
    ctx: &'a Ctx<'a>,
    now: i64,
    action: Action,
    email: &'a Email,
}

impl Attempt<'_> {
    fn record(&self, outcome: Outcome, detail: impl Into<String>) -> Record {
        self.ctx.record(
            self.now,
            self.action.clone(),
            Some(self.email),
            outcome,
            detail,
        )
    }

    /// Refuse with a `rejected` record that does not count as a failure.
    fn reject<T>(&self, tx: &Tx<'_>, detail: &str, error: Error) -> Result<Verdict<T>> {
        tx.refuse(self.record(Outcome::Rejected, detail), error)
    }

    /// Refuse for an account that has no enrollment: audited.
    fn not_enrolled<T>(&self, tx: &Tx<'_>, detail: &str) -> Result<Verdict<T>> {
        tx.refuse(
            self.record(Outcome::NotEnrolled, detail),
            Error::not_enrolled(self.email.as_str()),
        )
    }

    /// Refuse while the account is locked: audited, not evaluated.
    fn locked<T>(&self, tx: &Tx<'_>, lock: Lock, what: &str) -> Result<Verdict<T>> {
        tx.refuse(
            self.record(
                Outcome::Locked,
                format!("{what} while locked; not evaluated"),
            ),
            locked_error(self.email, lock),
        )
    }

    /// Count a wrong code (the lockout schedule of `throttle`) and audit it.
    /// Returns the lock afterwards and the error to give, which says if this
    /// locked the account.
    fn count_wrong_code(&self, tx: &Tx<'_>, id: i64, what: &str) -> Result<(Lock, Error)> {
        let (now, email) = (self.now, self.email);
        let before = tx.lock(id)?;
        let lock = throttle::after_failure(before, now);
        tx.set_lock(id, lock, Some(before))?;
        let locked_now = lock.is_locked(now) && lock.failed_attempts >= throttle::THRESHOLD;
        let until = || lock.locked_until.map_or_else(String::new, rfc3339);
        let detail = if locked_now {
            format!(
                "{what}; failure {}; locked until {}",
                lock.failed_attempts,
                until()
            )
        } else {
            format!(
                "{what}; failure {} of {}",
                lock.failed_attempts,
                throttle::THRESHOLD
            )
        };
        tx.append_audit(self.record(Outcome::Rejected, detail))?;
        let mut msg = format!("code rejected for {email}: {what}");
        if locked_now {
            msg.push_str(&format!(
                "; the account is now locked until {} after {} failed attempts",
                until(),
                lock.failed_attempts
            ));
        }
        Ok((lock, Error::rejected(msg)))
    }

    /// [`Attempt::count_wrong_code`] as the refusal of a deciding transaction.
    fn wrong_code<T>(&self, tx: &Tx<'_>, id: i64, what: &str) -> Result<Verdict<T>> {
        let (_, error) = self.count_wrong_code(tx, id, what)?;
        Ok(Verdict::Refused(error))
    }
}

/// Replace all backup codes of an enrollment; the old ones stop working at once.
pub fn regenerate_backup_codes(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
) -> Result<Vec<BackupCode>> {
    let now = ctx.clock.now()?;
    let not_enrolled = || {
        ctx.record(
            now,
            Action::BackupCodes,
            Some(email),
            Outcome::NotEnrolled,
            "",
        )
    };
    let Some(shown) = store.read(|tx| tx.enrollment(email.as_str()))? else {
        audit_only(store, not_enrolled())?;
        return Err(Error::not_enrolled(email.as_str()));
    };
    let set = backup_codes::generate_set()?;
    store.decide(|tx| {
        // The enrollment may have been replaced or removed while we hashed.
        match tx.enrollment_for_update(email.as_str())? {
            Some(current) if current.same_as(&shown) => {
                tx.replace_backup_codes(current.id, &set.rows, now)?;
                tx.append_audit(ctx.record(
                    now,
                    Action::BackupCodes,
                    Some(email),
                    Outcome::Ok,
                    format!("{} new backup codes; the old ones revoked", set.rows.len()),
                ))?;
                Ok(Verdict::Done(()))
            }
            Some(_) => Ok(Verdict::Refused(Error::conflict(format!(
                "the enrollment of {email} was replaced meanwhile; run the command again"
            )))),
            None => tx.refuse(not_enrolled(), Error::not_enrolled(email.as_str())),
        }
    })?;
    Ok(set.codes)
}

/// What `mb-2fa-unlock` cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unlocked {
    /// The failures and lock before.
    pub before: Lock,
    /// Was a lock in force (not merely a count)?
    pub was_locked: bool,
}

/// Clear a lockout and the failure count.
pub fn unlock(store: &mut Store, ctx: &Ctx<'_>, email: &Email) -> Result<Unlocked> {
    let now = ctx.clock.now()?;
    let attempt = Attempt {
        ctx,
        now,
        action: Action::Unlock,
        email,
    };
    store.decide(|tx| {
        let Some(EnrollmentRef { id, .. }) = tx.enrollment_for_update(email.as_str())? else {
            return attempt.not_enrolled(tx, "");
        };
        let before = tx.lock_to_clear(id)?;
        tx.set_lock(id, Lock::CLEAR, None)?;
        let was_locked = before.is_locked(now);
        let detail = if was_locked {
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
        tx.append_audit(ctx.record(now, Action::Unlock, Some(email), Outcome::Ok, detail))?;
        Ok(Verdict::Done(Unlocked { before, was_locked }))
    })
}

/// The state of an enrollment, or `None` when the email has none.
pub fn state(store: &mut Store, email: &Email) -> Result<Option<EnrollmentRef>> {
    store.read(|tx| tx.enrollment(email.as_str()))
}

/// Every account, in email order, collected (for a few; see [`list_each`]).
pub fn list(store: &mut Store) -> Result<Vec<AccountSummary>> {
    store.read(|tx| tx.summaries())
}

/// The list as `mb-2fa-list` shows it, from one snapshot (one read
/// transaction) as of `now` (a lock that has run out is shown as none): the
/// exemptions are loaded first (they are few), then every account is handed
/// to `each` in email order, with its exemption if it has one, as its row is
/// read, so memory does not grow with the number of accounts. Returns the
/// exemptions, in email order.
///
/// Stops at the first error, `each`'s or a damaged row's; the accounts
/// before it have been handed over already.
pub fn list_each(
    store: &mut Store,
    now: i64,
    mut each: impl FnMut(AccountSummary, Option<&Exemption>) -> Result<()>,
) -> Result<Vec<Exemption>> {
    store.read(|tx| {
        let exemptions = tx.exemptions()?;
        {
            let by_email: HashMap<&str, &Exemption> =
                exemptions.iter().map(|e| (e.email.as_str(), e)).collect();
            tx.for_each_summary(|a| {
                let exemption = by_email.get(a.email.as_str()).copied();
                each(a.as_of(now), exemption)
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
