//! The store: where enrollments, backup codes, exemptions, the policy and
//! the audit trail live. Three layers, top to bottom:
//!
//! - [`Store`] and [`Tx`], what the rules (`account`, `policy`, `keyring`,
//!   `maintenance`) use: transactions as closures, every value read checked
//!   against what a tool could have written (a planted or damaged value is
//!   exit 10 naming the field, never a panic), secrets sealed and opened by
//!   the [`Keyring`], audit records sent to syslog once committed.
//! - [`Backend`] and [`Transaction`], what a backend implements: columns in
//!   and columns out, no rule. Its contract is in `ARCHITECTURE.md`
//!   ("What a backend must guarantee").
//! - [`sqlite`], the SQLite backend: the only code that names `rusqlite`.
//!
//! The rules never see SQL, a connection or a file path.

pub mod sqlite;

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::audit::{self, Action, Outcome, Record};
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::model::{
    Account, AccountSummary, EnrollmentRef, Exemption, ExemptionKind, Lock, NewAccount, State,
    StoredBackupCode, Success,
};
use crate::totp::{Algorithm, TotpParams};

/// Where the tools keep their database unless told otherwise.
pub const DEFAULT_DB_PATH: &str = "/var/lib/mailborder/2fa.db";

/// The largest failure count a tool ever stores (it stops counting long
/// before: the lock doubles up to 1 h); a larger one was planted.
pub(crate) const MAX_STORED_COUNT: i64 = 1 << 40;

/// Which store the tools use (`--db`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite database file.
    Sqlite(PathBuf),
}

impl Location {
    /// The SQLite file, if this is one (for messages that name it).
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
        }
    }
}

/// How a tool opens the store. No tool ever turns a missing or foreign
/// store into a new empty one except the two that create one on purpose: a
/// lost database must never silently become "nobody is enrolled".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode<'a> {
    /// Exit 10 if there is no initialised mb-2fa store: every tool but the
    /// two below, so "no enrollment" is never said without a lookup.
    MustExist,
    /// The first enrollment on a fresh appliance: create the store only when
    /// neither it nor the key file exists. A key without a store means the
    /// store was lost: exit 10.
    CreateIfFresh { key_file: &'a Path },
    /// `mb-2fa-store init`: create a new store; exit 10 if one exists.
    Init,
}

/// A transaction's access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// One consistent snapshot; writes nothing.
    Read,
    /// Reads and writes, serialised against every other writer of what it
    /// reads for update (see [`Intent::Update`]).
    Write,
}

/// Why a row is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// To show it.
    Read,
    /// To decide on it and write: the row is locked from this read to the
    /// commit, so no other transaction changes or judges it meanwhile (two
    /// verifications of one code serialise, and the second sees the first's
    /// step). Only in an [`Access::Write`] transaction.
    Update,
}

/// An account row as a backend stores it: the secret sealed, every value
/// unchecked.
#[derive(Debug, Clone)]
pub struct StoredAccount {
    pub id: i64,
    pub email: String,
    pub state: String,
    pub sealed_secret: Vec<u8>,
    pub algorithm: String,
    pub digits: i64,
    pub period: i64,
    pub issuer: String,
    pub created_at: i64,
    pub last_step: Option<i64>,
    pub drift_steps: i64,
    pub recent_offsets: String,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
}

/// Which enrollment an account row holds, unchecked.
#[derive(Debug, Clone)]
pub struct StoredEnrollment {
    pub id: i64,
    pub state: String,
    pub sealed_secret: Vec<u8>,
}

/// A row of the list, unchecked.
#[derive(Debug, Clone)]
pub struct StoredSummary {
    pub email: String,
    pub state: String,
    pub issuer: String,
    pub period: i64,
    pub created_at: i64,
    pub activated_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub backup_codes_left: i64,
    pub drift_steps: i64,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
}

/// An account's lock, unchecked.
#[derive(Debug, Clone)]
pub struct StoredLock {
    pub email: String,
    pub failed_attempts: i64,
    pub locked_until: Option<i64>,
}

/// An exemption, unchecked.
#[derive(Debug, Clone)]
pub struct StoredExemption {
    pub email: String,
    pub kind: String,
    pub reason: String,
    pub created_at: i64,
    pub created_by: String,
    pub used_at: Option<i64>,
    pub sealed_at: Option<i64>,
}

/// An audit row, unchecked.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub at: i64,
    pub tool: String,
    pub action: String,
    pub email: Option<String>,
    pub outcome: String,
    pub actor: String,
    pub detail: String,
}

/// A new account row: the secret already sealed.
#[derive(Debug, Clone)]
pub struct NewStoredAccount<'a> {
    pub email: &'a str,
    pub state: State,
    pub sealed_secret: &'a [u8],
    pub params: TotpParams,
    pub issuer: &'a str,
    pub created_at: i64,
}

/// A sealed secret with what its seal is bound to.
#[derive(Debug, Clone)]
pub struct StoredSecret {
    pub id: i64,
    pub email: String,
    pub created_at: i64,
    pub sealed_secret: Vec<u8>,
}

/// A storage backend: opens transactions and answers for the store as a
/// whole. See `ARCHITECTURE.md` for what it must guarantee.
pub trait Backend {
    /// How messages name the store, e.g. `database /var/lib/mailborder/2fa.db`.
    fn describe(&self) -> String;
    /// Begin a transaction. A [`Access::Write`] transaction must be able to
    /// lock what it reads for update before it reads it.
    fn begin(&mut self, access: Access) -> Result<Box<dyn Transaction + '_>>;
    /// The schema version the store holds.
    fn schema_version(&mut self) -> Result<i64>;
    /// The schema version this build writes.
    fn supported_schema_version(&self) -> i64;
    /// The backend's own consistency check, in its words: `Ok` with what
    /// was checked when sound, else `Err` with its first complaint.
    fn integrity_check(&mut self) -> Result<std::result::Result<String, String>>;
    /// Every login will write: favour latency over housekeeping.
    fn tune_for_logins(&mut self) {}
    /// Make everything committed so far reach the store's main files now
    /// (after a change that must not linger in a log, like sealing).
    fn flush(&mut self) {}
}

/// One transaction of a backend: statements, no rules. Nothing is visible
/// to others before [`Transaction::commit`] returns `Ok`; dropped without
/// it, everything is rolled back.
pub trait Transaction {
    fn commit(self: Box<Self>) -> Result<()>;

    fn account(&self, email: &str, intent: Intent) -> Result<Option<StoredAccount>>;
    fn enrollment(&self, email: &str, intent: Intent) -> Result<Option<StoredEnrollment>>;
    /// Every account in email order, one row in memory at a time.
    fn for_each_summary(&self, each: &mut dyn FnMut(StoredSummary) -> Result<()>) -> Result<()>;
    fn count_accounts(&self) -> Result<i64>;
    fn secrets(&self) -> Result<Vec<StoredSecret>>;
    fn insert_account(&self, a: &NewStoredAccount<'_>) -> Result<i64>;
    /// Remove an account and its backup codes. False if absent.
    fn delete_account(&self, id: i64) -> Result<bool>;
    fn replace_secret(&self, id: i64, sealed: &[u8]) -> Result<()>;
    /// Write what an accepted code changes, as decided.
    fn record_success(&self, id: i64, s: &Success) -> Result<()>;
    fn lock(&self, id: i64) -> Result<StoredLock>;
    fn set_lock(&self, id: i64, lock: Lock) -> Result<()>;

    fn backup_code(&self, account_id: i64, tag: &str) -> Result<Option<StoredBackupCode>>;
    fn backup_codes_left(&self, account_id: i64) -> Result<i64>;
    /// Replace all of an account's backup codes with `(tag, hash)` rows.
    fn replace_backup_codes(
        &self,
        account_id: i64,
        rows: &[(String, String)],
        now: i64,
    ) -> Result<()>;
    /// Mark the code used, in one conditional statement: only if it is that
    /// row of that account with that hash and still unused. The verdict is
    /// whether it changed a row; false if anybody spent or replaced it first.
    fn spend_backup_code(&self, account_id: i64, code: &StoredBackupCode, now: i64)
    -> Result<bool>;

    fn append_audit(&self, r: &Record) -> Result<()>;
    /// Newest first.
    fn audit_records(
        &self,
        email: Option<&str>,
        since: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredRecord>>;

    fn exemption(&self, email: &str) -> Result<Option<StoredExemption>>;
    /// In email order.
    fn exemptions(&self) -> Result<Vec<StoredExemption>>;
    /// Add or replace; a new one starts unused and sealed at `created_at`.
    fn put_exemption(&self, e: &Exemption) -> Result<()>;
    fn delete_exemption(&self, email: &str) -> Result<bool>;
    /// Set `used_at` to `now` unless it is set already.
    fn mark_exemption_used(&self, email: &str, now: i64) -> Result<()>;
    /// Clear `used_at`, set `sealed_at`.
    fn reseal_exemption(&self, email: &str, now: i64) -> Result<()>;
    /// When `email` was first seen, recording `now` if this is the first time.
    fn first_seen(&self, email: &str, now: i64) -> Result<i64>;

    fn setting(&self, key: &str) -> Result<Option<String>>;
    fn set_setting(&self, key: &str, value: &str) -> Result<()>;
}

/// The outcome of a deciding transaction: done, or refused with its audit
/// record. Both commit: a refusal's record (a wrong code counted, a lock
/// noted) must survive the refusal. See [`Store::decide`].
#[must_use]
pub enum Verdict<T> {
    Done(T),
    Refused(Error),
}

/// An open store: a backend and, once unlocked, the key.
pub struct Store {
    backend: Box<dyn Backend>,
    keyring: Option<Keyring>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend.describe())
            .field("unlocked", &self.keyring.is_some())
            .finish()
    }
}

impl Store {
    /// Open the store at `location` (checked as every tool checks it: file
    /// owners and modes, schema), applying pending migrations.
    pub fn open(location: &Location, mode: OpenMode<'_>) -> Result<Store> {
        let backend: Box<dyn Backend> = match location {
            Location::Sqlite(path) => Box::new(sqlite::Sqlite::open(path, mode)?),
        };
        Ok(Store {
            backend,
            keyring: None,
        })
    }

    /// How messages name this store.
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// Load the key and check it is this store's (see [`Keyring::unlock`]).
    /// Needed before any secret is read or written.
    pub fn unlock(&mut self, key_path: &Path) -> Result<()> {
        let keyring = Keyring::unlock(self, key_path)?;
        self.keyring = Some(keyring);
        Ok(())
    }

    pub(crate) fn set_keyring(&mut self, keyring: Keyring) {
        self.keyring = Some(keyring);
    }

    /// For the hot path (`mb-2fa-verify`): every run writes once.
    pub fn tune_for_logins(&mut self) {
        self.backend.tune_for_logins();
    }

    pub fn schema_version(&mut self) -> Result<i64> {
        self.backend.schema_version()
    }

    pub fn supported_schema_version(&self) -> i64 {
        self.backend.supported_schema_version()
    }

    pub fn integrity_check(&mut self) -> Result<std::result::Result<String, String>> {
        self.backend.integrity_check()
    }

    pub(crate) fn flush(&mut self) {
        self.backend.flush();
    }

    /// Name the store in an error found in its contents.
    pub fn in_db(&self, e: &Error) -> Error {
        in_store(&self.describe(), e)
    }

    /// Run `f` in a read transaction: one consistent snapshot.
    pub fn read<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.run(Access::Read, |tx| f(tx).map(Verdict::Done))
    }

    /// Run `f` in a write transaction, committed only if `f` returns `Ok`.
    pub fn write<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.run(Access::Write, |tx| f(tx).map(Verdict::Done))
    }

    /// Run `f` in a write transaction that decides: committed when `f`
    /// returns a verdict (a refusal too, with the records it appended),
    /// rolled back when `f` fails. A refusal is returned as its error.
    pub fn decide<T>(&mut self, f: impl FnOnce(&Tx<'_>) -> Result<Verdict<T>>) -> Result<T> {
        self.run(Access::Write, f)
    }

    fn run<T>(
        &mut self,
        access: Access,
        f: impl FnOnce(&Tx<'_>) -> Result<Verdict<T>>,
    ) -> Result<T> {
        let name = self.backend.describe();
        let (verdict, records) = {
            let inner = self.backend.begin(access)?;
            let tx = Tx {
                inner,
                access,
                name: &name,
                keyring: self.keyring.as_ref(),
                audit: RefCell::new(Vec::new()),
            };
            let verdict = f(&tx)?;
            let records = tx.audit.take();
            tx.inner.commit()?;
            (verdict, records)
        };
        // Only what was committed goes to syslog; an alert that could not
        // be sent is said on stderr and recorded.
        let lost = audit::send_to_syslog(&records);
        if !lost.is_empty() {
            self.record_undelivered(&lost);
        }
        match verdict {
            Verdict::Done(v) => Ok(v),
            Verdict::Refused(e) => Err(e),
        }
    }

    /// The break-glass alerts syslog did not get: one line each on stderr
    /// and an audit row (best effort: the alert's own row is committed).
    fn record_undelivered(&mut self, lost: &[audit::Undelivered]) {
        for u in lost {
            let who = u.record.email.as_deref().unwrap_or("-");
            eprintln!(
                "{}: ALERT not delivered to syslog ({}): break-glass account {} was used; the alert is in the audit trail (mb-2fa-audit)",
                u.record.tool,
                crate::text::escape_for_terminal(&u.why),
                crate::text::escape_for_terminal(who)
            );
        }
        let result = self.backend.begin(Access::Write).and_then(|tx| {
            for u in lost {
                tx.append_audit(&Record {
                    at: u.record.at,
                    tool: u.record.tool.clone(),
                    action: Action::Alert,
                    email: u.record.email.clone(),
                    outcome: Outcome::Undelivered,
                    actor: u.record.actor.clone(),
                    detail: format!("break-glass alert not sent to syslog: {}", u.why),
                })?;
            }
            tx.commit()
        });
        if let Err(e) = result {
            eprintln!("{}", e.message());
        }
    }
}

fn in_store(name: &str, e: &Error) -> Error {
    Error::new(e.kind(), format!("{name}: {}", e.message()))
}

/// A transaction with the store's narrow set of operations, for the rules.
/// Every value read is checked; secrets are opened and sealed with the key.
pub struct Tx<'a> {
    inner: Box<dyn Transaction + 'a>,
    access: Access,
    name: &'a str,
    keyring: Option<&'a Keyring>,
    /// Records appended in this transaction, for syslog after commit.
    audit: RefCell<Vec<Record>>,
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
        let secret = self
            .keyring()?
            .open(&a.sealed_secret, &email, created_at)
            .map_err(|e| self.in_db(&e))?;
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
                generation: Sha256::digest(&e.sealed_secret).into(),
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

    pub fn record_success(&self, id: i64, s: &Success) -> Result<()> {
        self.inner.record_success(id, s)
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

    pub fn set_lock(&self, account_id: i64, lock: Lock) -> Result<()> {
        self.inner.set_lock(account_id, lock)
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
}
