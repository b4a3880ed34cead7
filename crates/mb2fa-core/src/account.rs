//! The operations the tools perform, each one transaction: enroll, verify,
//! disable, regenerate backup codes, list. They tie the rules (`totp`,
//! `backup_codes`) to the store; the tools only parse arguments and print.
//!
//! Expensive work (argon2) happens outside the write lock; the transaction then
//! re-checks what it depends on, so a concurrent change is never overwritten.

use zeroize::Zeroizing;

use crate::backup_codes::{self, BackupCode};
use crate::clock::Clock;
use crate::code::Code;
use crate::email::Email;
use crate::error::{Error, ErrorKind, Result};
use crate::secret::Secret;
use crate::store::{AccountSummary, NewAccount, State, Store};
use crate::totp::{self, TotpCheck, TotpParams};
use crate::uri;

/// A new enrollment, with everything that is shown once and never again.
#[derive(Debug)]
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
/// (the user never finished setting it up).
pub fn enable(
    store: &mut Store,
    clock: &dyn Clock,
    email: &Email,
    issuer: &str,
    force: bool,
) -> Result<Enrollment> {
    let conflict = || {
        Error::conflict(format!(
            "2FA is already active for {email}: pass --force to replace it (the old secret and backup codes stop working)"
        ))
    };
    // Fail fast, before ten argon2 hashes.
    if let Some((_, State::Active)) = store.read(|tx| tx.account_state(email.as_str()))? {
        if !force {
            return Err(conflict());
        }
    }
    let now = clock.now()?;
    let secret = Secret::generate()?;
    let params = TotpParams::default();
    let set = backup_codes::generate_set()?;
    let replaced = store.write(|tx| {
        let existing = tx.account_state(email.as_str())?;
        if let Some((id, state)) = existing {
            if state == State::Active && !force {
                return Err(conflict());
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
        Ok(existing.map(|(_, s)| s))
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
    pub backup_codes_left: u32,
}

/// What to do in the same transaction once the code is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    Record,
    Disable,
}

/// Check a code for `email`. A TOTP code's step is recorded (never accepted
/// again); a backup code is spent. The first good TOTP code activates a
/// pending enrollment.
pub fn verify(
    store: &mut Store,
    clock: &dyn Clock,
    email: &Email,
    code: &Code,
) -> Result<Verified> {
    check_code(store, clock, email, code, Then::Record)
}

/// Remove an enrollment. With a code, the code must be valid first, and it is
/// checked and the enrollment removed in one transaction.
pub fn disable(
    store: &mut Store,
    clock: &dyn Clock,
    email: &Email,
    code: Option<&Code>,
) -> Result<()> {
    if let Some(code) = code {
        return check_code(store, clock, email, code, Then::Disable).map(|_| ());
    }
    store.write(|tx| match tx.account_state(email.as_str())? {
        Some((id, _)) => tx.delete_account(id).map(|_| ()),
        None => Err(Error::not_enrolled(email.as_str())),
    })
}

fn check_code(
    store: &mut Store,
    clock: &dyn Clock,
    email: &Email,
    code: &Code,
    then: Then,
) -> Result<Verified> {
    match code {
        Code::Totp(digits) => check_totp(store, clock, email, digits, then),
        Code::Backup(backup) => check_backup(store, clock, email, backup, then),
    }
}

fn check_totp(
    store: &mut Store,
    clock: &dyn Clock,
    email: &Email,
    code: &str,
    then: Then,
) -> Result<Verified> {
    let now = clock.now()?;
    store.write(|tx| {
        let account = tx
            .account(email.as_str())?
            .ok_or_else(|| Error::not_enrolled(email.as_str()))?;
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
                let activated = account.state == State::Pending;
                let left = match then {
                    Then::Record => {
                        tx.record_totp_success(account.id, step, now)?;
                        tx.backup_codes_left(account.id)?
                    }
                    Then::Disable => {
                        tx.delete_account(account.id)?;
                        0
                    }
                };
                Ok(Verified {
                    method: Method::Totp,
                    activated: activated && then == Then::Record,
                    offset_steps: Some(offset_steps),
                    backup_codes_left: left,
                })
            }
            TotpCheck::Replayed { .. } => Err(Error::rejected(format!(
                "code rejected for {email}: it was already used; wait for the next code in the app"
            ))),
            TotpCheck::NoMatch => Err(Error::rejected(format!(
                "code rejected for {email}: wrong code, or the phone's clock is off"
            ))),
        }
    })
}

fn check_backup(
    store: &mut Store,
    clock: &dyn Clock,
    email: &Email,
    code: &BackupCode,
    then: Then,
) -> Result<Verified> {
    let now = clock.now()?;
    let tag = code.tag();
    let (account_id, state, stored) = store.read(|tx| {
        let (id, state) = tx
            .account_state(email.as_str())?
            .ok_or_else(|| Error::not_enrolled(email.as_str()))?;
        Ok((id, state, tx.backup_code_by_tag(id, &tag)?))
    })?;
    let rejected = || {
        Error::rejected(format!(
            "backup code rejected for {email}: not a valid backup code"
        ))
    };
    // One argon2 evaluation whatever happens, so timing says nothing.
    let Some(stored) = stored else {
        code.check_decoy();
        return Err(rejected());
    };
    if !code.matches(&stored.hash)? {
        return Err(rejected());
    }
    if stored.used {
        return Err(Error::rejected(format!(
            "backup code rejected for {email}: it was already used; each backup code works once"
        )));
    }
    if state == State::Pending && then == Then::Record {
        return Err(Error::rejected(format!(
            "backup code rejected for {email}: the enrollment is still pending; activate it with a code from the authenticator app first"
        )));
    }
    store.write(|tx| {
        // Spend it only if nobody else did (or regenerated the set) meanwhile.
        if !tx.spend_backup_code(account_id, stored.id, now)? {
            return Err(Error::rejected(format!(
                "backup code rejected for {email}: it was already used; each backup code works once"
            )));
        }
        let left = match then {
            Then::Record => tx.backup_codes_left(account_id)?,
            Then::Disable => {
                tx.delete_account(account_id)?;
                0
            }
        };
        Ok(Verified {
            method: Method::BackupCode,
            activated: false,
            offset_steps: None,
            backup_codes_left: left,
        })
    })
}

/// Replace all backup codes of an enrollment; the old ones stop working at once.
pub fn regenerate_backup_codes(
    store: &mut Store,
    clock: &dyn Clock,
    email: &Email,
) -> Result<Vec<BackupCode>> {
    let (id, _) = store
        .read(|tx| tx.account_state(email.as_str()))?
        .ok_or_else(|| Error::not_enrolled(email.as_str()))?;
    let now = clock.now()?;
    let set = backup_codes::generate_set()?;
    store.write(|tx| {
        // The enrollment may have been replaced or removed while we hashed.
        match tx.account_state(email.as_str())? {
            Some((current, _)) if current == id => tx.replace_backup_codes(id, &set.rows, now),
            Some(_) => Err(Error::new(
                ErrorKind::Conflict,
                format!("the enrollment of {email} was replaced meanwhile; run the command again"),
            )),
            None => Err(Error::not_enrolled(email.as_str())),
        }
    })?;
    Ok(set.codes)
}

/// The state of an enrollment, or `None` when the email has none.
pub fn state(store: &mut Store, email: &Email) -> Result<Option<State>> {
    Ok(store
        .read(|tx| tx.account_state(email.as_str()))?
        .map(|(_, s)| s))
}

pub fn list(store: &mut Store) -> Result<Vec<AccountSummary>> {
    store.read(|tx| tx.summaries())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;
    use crate::store::OpenMode;

    const NOW: i64 = 1_800_000_015;

    fn setup() -> (tempfile::TempDir, Store, Email) {
        let tmp = tempfile::tempdir().expect("tmp");
        let store =
            Store::open(&tmp.path().join("2fa.db"), OpenMode::CreateIfMissing).expect("open");
        (
            tmp,
            store,
            Email::parse("alice@example.com").expect("email"),
        )
    }

    fn totp_code(e: &Enrollment, step_offset: i64) -> Code {
        let step = e.params.step_at(NOW) + step_offset;
        Code::Totp(totp::code_for_step(&e.secret, &e.params, step))
    }

    #[test]
    fn lifecycle() {
        let (_tmp, mut store, email) = setup();
        let clock = FixedClock(NOW);
        let e = enable(&mut store, &clock, &email, "Mailborder", false).expect("enable");
        assert_eq!(e.backup_codes.len(), 10);
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
        let err =
            verify(&mut store, &clock, &bob, &Code::parse("123456").expect("c")).expect_err("none");
        assert_eq!(err.kind(), ErrorKind::NotEnrolled);
        let err = regenerate_backup_codes(&mut store, &clock, &bob).expect_err("none");
        assert_eq!(err.kind(), ErrorKind::NotEnrolled);
    }
}
