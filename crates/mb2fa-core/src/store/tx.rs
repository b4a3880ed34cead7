//! [`Tx`]: a transaction as the rules see it. Every value read is checked
//! against what a tool could have written; secrets are opened and sealed
//! with the key; audit records are queued for syslog after the commit.

use std::cell::RefCell;

use sha2::{Digest, Sha256};

use super::{
    Access, DumpRow, Intent, MAX_STORED_COUNT, NewStoredAccount, StoredAccount, StoredEnrollment,
    StoredExemption, StoredSecret, StoredSummary, Transaction, Verdict, in_store,
};
use crate::audit::{Action, Outcome, Record};
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::model::{
    Account, AccountSummary, EnrollmentRef, Exemption, ExemptionKind, Lock, NewAccount, Premise,
    State, StoredBackupCode, Success,
};
use crate::totp::{Algorithm, TotpParams};

/// A transaction with the store's narrow set of operations, for the rules.
/// Every value read is checked; secrets are opened and sealed with the key.
pub struct Tx<'a> {
    pub(super) inner: Box<dyn Transaction + 'a>,
    pub(super) access: Access,
    pub(super) name: &'a str,
    pub(super) keyring: Option<&'a Keyring>,
    /// Records appended in this transaction, for syslog after commit.
    pub(super) audit: RefCell<Vec<Record>>,
}

impl Tx<'_> {
    /// Name the store in an error found in its contents.
    pub fn in_db(&self, e: &Error) -> Error {
        in_store(self.name, e)
    }

    fn keyring(&self) -> Result<&Keyring> {
        self.keyring.ok_or_else(|| {
            Error::storage("internal error: the key was not loaded before touching a secret")
        })
    }

    /// A secret that does not open: if the store now records another key
    /// than the one loaded, `mb-2fa-store rekey` committed after this tool
    /// loaded its key. That is transient: [`super::Store`] loads the key
    /// again and runs the transaction again.
    fn rekeyed_meanwhile(&self) -> Result<Option<Error>> {
        let loaded = self.keyring()?.fingerprint();
        let recorded = self.inner.setting(crate::keyring::KEY_FINGERPRINT)?;
        Ok(recorded.filter(|fp| *fp != loaded).map(|fp| {
            Error::transient(format!(
                "{} was re-keyed to key {fp} (mb-2fa-store rekey) while this tool ran, and the retries ran out; run it again",
                self.name
            ))
        }))
    }

    fn intent(&self, intent: Intent) -> Result<Intent> {
        if intent == Intent::Update && self.access == Access::Read {
            return Err(Error::storage(
                "internal error: a row read for update in a read transaction",
            ));
        }
        Ok(intent)
    }

    fn damaged(&self, what: &str) -> Error {
        Error::storage(format!(
            "{} holds an invalid {what}: it is damaged; restore it from backup",
            self.name
        ))
    }

    /// A stored value outside what the tools ever write (a database writer's
    /// plant, a damaged page): exit 10 naming the field and the row, never
    /// a panic or an overflow further up.
    fn out_of_range(&self, field: &str, row: &str) -> Error {
        Error::storage(format!(
            "{} holds an impossible {field} for {}: it is damaged or was altered; restore it from backup",
            self.name,
            crate::text::escape_for_terminal(row)
        ))
    }

    /// `v` if it is a time the tools could have written (1970..=9999).
    fn time(&self, field: &str, row: &str, v: i64) -> Result<i64> {
        if (0..=crate::clock::MAX_TIME).contains(&v) {
            Ok(v)
        } else {
            Err(self.out_of_range(field, row))
        }
    }

    fn opt_time(&self, field: &str, row: &str, v: Option<i64>) -> Result<Option<i64>> {
        v.map(|t| self.time(field, row, t)).transpose()
    }

    /// A count of failures: never negative, never near overflow.
    fn count(&self, field: &str, row: &str, v: i64) -> Result<i64> {
        if (0..=MAX_STORED_COUNT).contains(&v) {
            Ok(v)
        } else {
            Err(self.out_of_range(field, row))
        }
    }

    fn drift(&self, row: &str, v: i64) -> Result<i64> {
        if v.unsigned_abs() > crate::skew::MAX_DRIFT.unsigned_abs() {
            return Err(self.out_of_range("accounts.drift_steps", row));
        }
        Ok(v)
    }

    fn state(&self, s: &str) -> Result<State> {
        State::parse(s).ok_or_else(|| self.damaged("account state"))
    }

    fn params(&self, algorithm: &str, digits: i64, period: i64) -> Result<TotpParams> {
        let algorithm =
            Algorithm::parse(algorithm).ok_or_else(|| self.damaged("TOTP algorithm"))?;
        TotpParams {
            algorithm,
            digits: u8::try_from(digits).map_err(|_| self.damaged("digit count"))?,
            period: u32::try_from(period).map_err(|_| self.damaged("period"))?,
        }
        .validated()
        .map_err(|_| self.damaged("set of TOTP parameters"))
    }

    fn exemption_of(&self, e: StoredExemption) -> Result<Exemption> {
        let row = e.email.clone();
        Ok(Exemption {
            kind: ExemptionKind::parse(&e.kind).ok_or_else(|| self.damaged("exemption kind"))?,
            created_at: self.time("exemptions.created_at", &row, e.created_at)?,
            used_at: self.opt_time("exemptions.used_at", &row, e.used_at)?,
            sealed_at: self.opt_time("exemptions.sealed_at", &row, e.sealed_at)?,
            email: e.email,
            reason: e.reason,
            created_by: e.created_by,
        })
    }

    fn open_account(&self, row: Option<StoredAccount>) -> Result<Option<Account>> {
        let Some(a) = row else {
            return Ok(None);
        };
        let email = a.email;
        let drift_steps = self.drift(&email, a.drift_steps)?;
        let created_at = self.time("accounts.created_at", &email, a.created_at)?;
        let last_step = self.opt_time("accounts.last_step", &email, a.last_step)?;
        let failed_attempts = self.count("accounts.failed_attempts", &email, a.failed_attempts)?;
        let locked_until = self.opt_time("accounts.locked_until", &email, a.locked_until)?;
        let secret = match self.keyring()?.open(&a.sealed_secret, &email, created_at) {
            Ok(secret) => secret,
            Err(e) => return Err(self.rekeyed_meanwhile()?.unwrap_or_else(|| self.in_db(&e))),
        };
        let state = self.state(&a.state)?;
        let params = self.params(&a.algorithm, a.digits, a.period)?;
        Ok(Some(Account {
            id: a.id,
            email,
            state,
            secret,
            params,
            issuer: a.issuer,
            created_at,
            last_step,
            drift_steps,
            recent_offsets: crate::skew::parse_history(&a.recent_offsets),
            failed_attempts,
            locked_until,
        }))
    }

    /// An account with its secret, to show (read transactions).
    pub fn account(&self, email: &str) -> Result<Option<Account>> {
        self.open_account(self.inner.account(email, Intent::Read)?)
    }

    /// An account with its secret, locked until commit, to judge a code on.
    pub fn account_for_update(&self, email: &str) -> Result<Option<Account>> {
        let intent = self.intent(Intent::Update)?;
        self.open_account(self.inner.account(email, intent)?)
    }

    fn enrollment_of(&self, row: Option<StoredEnrollment>) -> Result<Option<EnrollmentRef>> {
        row.map(|e| {
            Ok(EnrollmentRef {
                id: e.id,
                state: self.state(&e.state)?,
                generation: Sha256::digest(crate::crypto::seal_identity(&e.sealed_secret)).into(),
            })
        })
        .transpose()
    }

    /// Does the email have an enrollment, which one, and in which state?
    pub fn enrollment(&self, email: &str) -> Result<Option<EnrollmentRef>> {
        self.enrollment_of(self.inner.enrollment(email, Intent::Read)?)
    }

    /// [`Tx::enrollment`], locked until commit, to decide on.
    pub fn enrollment_for_update(&self, email: &str) -> Result<Option<EnrollmentRef>> {
        let intent = self.intent(Intent::Update)?;
        self.enrollment_of(self.inner.enrollment(email, intent)?)
    }

    /// Every account, collected. For many accounts prefer
    /// [`Tx::for_each_summary`], whose memory does not grow with them.
    pub fn summaries(&self) -> Result<Vec<AccountSummary>> {
        let mut out = Vec::new();
        self.for_each_summary(|s| {
            out.push(s);
            Ok(())
        })?;
        Ok(out)
    }

    /// Hand every account, in email order, to `each` as its row is read: one
    /// row in memory at a time. Stops at the first error, `each`'s or a
    /// damaged row's (the rows before it have been handed over already).
    pub fn for_each_summary(
        &self,
        mut each: impl FnMut(AccountSummary) -> Result<()>,
    ) -> Result<()> {
        self.inner.for_each_summary(&mut |r: StoredSummary| {
            let email = r.email;
            let summary = AccountSummary {
                state: self.state(&r.state)?,
                issuer: r.issuer,
                period: u32::try_from(r.period)
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| self.damaged("period"))?,
                created_at: self.time("accounts.created_at", &email, r.created_at)?,
                activated_at: self.opt_time("accounts.activated_at", &email, r.activated_at)?,
                last_used_at: self.opt_time("accounts.last_used_at", &email, r.last_used_at)?,
                backup_codes_left: u32::try_from(r.backup_codes_left).unwrap_or(0),
                drift_steps: self.drift(&email, r.drift_steps)?,
                locked_until: self.opt_time("accounts.locked_until", &email, r.locked_until)?,
                failed_attempts: self.count(
                    "accounts.failed_attempts",
                    &email,
                    r.failed_attempts,
                )?,
                email,
            };
            each(summary)
        })
    }

    pub fn count_accounts(&self) -> Result<i64> {
        self.inner.count_accounts()
    }

    pub(crate) fn secrets(&self) -> Result<Vec<StoredSecret>> {
        self.inner.secrets()
    }

    pub(crate) fn replace_secret(&self, id: i64, sealed: &[u8]) -> Result<()> {
        self.inner.replace_secret(id, sealed)
    }

    /// Store a new, pending enrollment, its secret sealed with the key.
    pub fn insert_account(&self, a: &NewAccount<'_>) -> Result<i64> {
        let sealed = self.keyring()?.seal(a.secret, a.email, a.created_at)?;
        self.inner.insert_account(&NewStoredAccount {
            email: a.email,
            state: State::Pending,
            sealed_secret: &sealed,
            params: a.params,
            issuer: a.issuer,
            created_at: a.created_at,
        })
    }

    /// Remove an account and its backup codes. False if absent.
    pub fn delete_account(&self, id: i64) -> Result<bool> {
        self.inner.delete_account(id)
    }

    /// Write an accepted code's effects, judged on `premise`. If the row
    /// no longer holds what was judged, nothing is written and the error is
    /// transient: [`super::Store::decide`] judges again on what is there now.
    pub fn record_success(&self, id: i64, s: &Success, premise: Premise) -> Result<()> {
        if self.inner.record_success(id, s, &premise)? {
            Ok(())
        } else {
            Err(self.changed_meanwhile())
        }
    }

    /// A judged row that changed before the decision was written.
    fn changed_meanwhile(&self) -> Error {
        Error::transient(format!(
            "{}: the account changed while it was being judged (another process or node wrote it first), and the retries ran out",
            self.name
        ))
    }

    /// The failure count and lock of an account, bounded like every stored
    /// value (exit 10 naming the field).
    pub fn lock(&self, account_id: i64) -> Result<Lock> {
        let l = self.inner.lock(account_id)?;
        Ok(Lock {
            failed_attempts: self.count("accounts.failed_attempts", &l.email, l.failed_attempts)?,
            locked_until: self.opt_time("accounts.locked_until", &l.email, l.locked_until)?,
        })
    }

    /// [`Tx::lock`] for `mb-2fa-unlock`, which must be able to clear even an
    /// impossible (planted) lock: out-of-range values are clamped for the
    /// report instead of refused.
    pub fn lock_to_clear(&self, account_id: i64) -> Result<Lock> {
        let l = self.inner.lock(account_id)?;
        Ok(Lock {
            failed_attempts: l.failed_attempts.clamp(0, MAX_STORED_COUNT),
            locked_until: l.locked_until.map(|t| t.clamp(0, crate::clock::MAX_TIME)),
        })
    }

    /// Set the failure count and lock, judged on `premise` (the lock that
    /// was read; `None` for `mb-2fa-unlock`, which clears whatever is
    /// there). A changed row is a transient error, as for
    /// [`Tx::record_success`].
    pub fn set_lock(&self, account_id: i64, lock: Lock, premise: Option<Lock>) -> Result<()> {
        if self.inner.set_lock(account_id, lock, premise)? {
            Ok(())
        } else {
            Err(self.changed_meanwhile())
        }
    }

    pub fn backup_code_by_tag(
        &self,
        account_id: i64,
        tag: &str,
    ) -> Result<Option<StoredBackupCode>> {
        self.inner.backup_code(account_id, tag)
    }

    pub fn backup_codes_left(&self, account_id: i64) -> Result<u32> {
        Ok(u32::try_from(self.inner.backup_codes_left(account_id)?).unwrap_or(0))
    }

    pub fn replace_backup_codes(
        &self,
        account_id: i64,
        rows: &[(String, String)],
        now: i64,
    ) -> Result<()> {
        self.inner.replace_backup_codes(account_id, rows, now)
    }

    /// See [`Transaction::spend_backup_code`].
    pub fn spend_backup_code(
        &self,
        account_id: i64,
        code: &StoredBackupCode,
        now: i64,
    ) -> Result<bool> {
        self.inner.spend_backup_code(account_id, code, now)
    }

    /// Every row as stored, secrets sealed (for `copy`): nothing is checked
    /// or opened, so a copy moves a store it could not read as it is.
    pub(crate) fn dump(&self, mut each: impl FnMut(DumpRow) -> Result<()>) -> Result<()> {
        self.inner.dump(&mut each)
    }

    /// Insert a dumped row as it is.
    pub(crate) fn load(&self, row: &DumpRow) -> Result<()> {
        self.inner.load(row)
    }

    /// Remove every row but the audit trail (`copy --force`).
    pub(crate) fn clear(&self) -> Result<()> {
        self.inner.clear()
    }

    /// Append an audit record (and queue it for syslog after commit).
    pub fn append_audit(&self, r: Record) -> Result<()> {
        self.inner.append_audit(&r)?;
        self.audit.borrow_mut().push(r);
        Ok(())
    }

    /// Append the refusal's audit record and refuse: see [`Store::decide`].
    pub fn refuse<T>(&self, r: Record, error: Error) -> Result<Verdict<T>> {
        self.append_audit(r)?;
        Ok(Verdict::Refused(error))
    }

    /// Audit records, newest first.
    pub fn audit_records(
        &self,
        email: Option<&str>,
        since: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Record>> {
        self.inner
            .audit_records(email, since, limit)?
            .into_iter()
            .map(|r| {
                let row = r
                    .email
                    .clone()
                    .unwrap_or_else(|| "an audit record".to_string());
                Ok(Record {
                    at: self.time("audit.at", &row, r.at)?,
                    tool: r.tool,
                    action: Action::parse(&r.action),
                    email: r.email,
                    outcome: Outcome::parse(&r.outcome),
                    actor: r.actor,
                    detail: r.detail,
                    node: r.node,
                    via: r.via,
                })
            })
            .collect()
    }

    pub fn exemption(&self, email: &str) -> Result<Option<Exemption>> {
        self.inner
            .exemption(email)?
            .map(|e| self.exemption_of(e))
            .transpose()
    }

    pub fn exemptions(&self) -> Result<Vec<Exemption>> {
        self.inner
            .exemptions()?
            .into_iter()
            .map(|e| self.exemption_of(e))
            .collect()
    }

    pub fn put_exemption(&self, e: &Exemption) -> Result<()> {
        self.inner.put_exemption(e)
    }

    pub fn delete_exemption(&self, email: &str) -> Result<bool> {
        self.inner.delete_exemption(email)
    }

    /// Mark a break-glass account used (keeps the first use since the seal).
    pub fn mark_used(&self, email: &str, now: i64) -> Result<()> {
        self.inner.mark_exemption_used(email, now)
    }

    pub fn reseal(&self, email: &str, now: i64) -> Result<()> {
        self.inner.reseal_exemption(email, now)
    }

    /// When `check` first saw `email`, recording `now` if this is the first time.
    pub fn first_seen(&self, email: &str, now: i64) -> Result<i64> {
        let t = self.inner.first_seen(email, now)?;
        self.time("first_seen.seen_at", email, t)
    }

    pub fn setting(&self, key: &str) -> Result<Option<String>> {
        self.inner.setting(key)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.inner.set_setting(key, value)
    }

    pub(crate) fn delete_setting(&self, key: &str) -> Result<bool> {
        self.inner.delete_setting(key)
    }
}
