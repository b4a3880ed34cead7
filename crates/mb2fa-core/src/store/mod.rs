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
//! - [`sqlite`], the SQLite backend: the only code that names `rusqlite`;
//!   [`mariadb`], the MariaDB backend: the only code that names `mysql`.
//!
//! The rules never see SQL, a connection or a file path.

mod location;
pub mod mariadb;
pub mod sqlite;
mod tx;

pub use location::{DEFAULT_MARIADB_PORT, Endpoint, Location, MariadbTarget};
pub use tx::Tx;

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::audit::{self, Action, Outcome, Record};
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::model::{Exemption, Lock, Premise, State, StoredBackupCode, Success};
use crate::totp::TotpParams;

/// Where the tools keep their database unless told otherwise.
pub const DEFAULT_DB_PATH: &str = "/var/lib/mailborder/2fa.db";

/// The largest failure count a tool ever stores (it stops counting long
/// before: the lock doubles up to 1 h); a larger one was planted.
pub(crate) const MAX_STORED_COUNT: i64 = 1 << 40;

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
    /// The target of `mb-2fa-store copy`: create the store if there is
    /// none, else open it (the copy itself refuses one holding accounts).
    CopyTarget,
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
    /// The host the tool ran on ('' in rows older than schema 5).
    pub node: String,
    /// Through what a PAM login came ('' when not, and before schema 7).
    pub via: String,
}

/// One row of a store as `mb-2fa-store copy` moves it: every column, the
/// secret still sealed (its seal is bound to the account's id, email and
/// enrollment time, which move with it).
#[derive(Debug, Clone)]
pub enum DumpRow {
    Account {
        account: StoredAccount,
        activated_at: Option<i64>,
        last_used_at: Option<i64>,
    },
    BackupCode {
        id: i64,
        account_id: i64,
        tag: String,
        hash: String,
        created_at: i64,
        used_at: Option<i64>,
    },
    Setting {
        key: String,
        value: String,
    },
    Exemption(StoredExemption),
    FirstSeen {
        email: String,
        seen_at: i64,
    },
    Audit(StoredRecord),
}

/// How many rows of each kind a copy moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowCounts {
    pub accounts: u64,
    pub backup_codes: u64,
    pub settings: u64,
    pub exemptions: u64,
    pub first_seen: u64,
    pub audit: u64,
}

impl RowCounts {
    pub fn count(&mut self, row: &DumpRow) {
        let slot = match row {
            DumpRow::Account { .. } => &mut self.accounts,
            DumpRow::BackupCode { .. } => &mut self.backup_codes,
            DumpRow::Setting { .. } => &mut self.settings,
            DumpRow::Exemption(_) => &mut self.exemptions,
            DumpRow::FirstSeen { .. } => &mut self.first_seen,
            DumpRow::Audit(_) => &mut self.audit,
        };
        *slot += 1;
    }
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
    /// This machine's clock against the database server's, where the
    /// server has one of its own (`None` for a local file).
    fn server_clock(&mut self) -> Result<Option<ClockReading>> {
        Ok(None)
    }
    /// Write a consistent copy of the whole store to the new file `file`
    /// (`mb-2fa-store backup`), checked before it gets that name. Only a
    /// store that is one file can; a server's store is dumped with the
    /// server's own tools.
    fn backup_to(&mut self, _file: &Path) -> Result<BackupSummary> {
        Err(Error::usage(format!(
            "{} cannot be backed up by mb-2fa-store backup: use the database server's own tools (README, \"Backups\")",
            self.describe()
        )))
    }
}

/// What `mb-2fa-store backup` wrote, as read back from the finished copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSummary {
    /// Accounts in the copy.
    pub accounts: u64,
    /// The copy's schema version (this build's).
    pub schema_version: i64,
    /// What the copy's integrity check said (`ok`).
    pub integrity: String,
    /// The copy's size.
    pub bytes: u64,
}

/// This machine's clock against the database server's.
#[derive(Debug, Clone, Copy)]
pub struct ClockReading {
    /// This machine's time minus the server's, in seconds.
    pub offset_secs: f64,
    /// How long the question took (the reading is that uncertain).
    pub round_trip: Duration,
}

/// How often an operation is run in all, when each try fails with a
/// transient error (a Galera certification conflict, a deadlock).
pub const MAX_TRIES: u32 = 8;

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
    /// Write what an accepted code changes, as decided, if the row still
    /// holds what it was judged on (`premise`). False if it does not (or
    /// the account is gone): nothing was written. The verdict is the count
    /// of rows the statement matched, whether or not their values changed.
    fn record_success(&self, id: i64, s: &Success, premise: &Premise) -> Result<bool>;
    fn lock(&self, id: i64) -> Result<StoredLock>;
    /// Set the failure count and lock, if they still are `premise` (`None`:
    /// whatever they are, for `mb-2fa-unlock`). False if not: nothing written.
    fn set_lock(&self, id: i64, lock: Lock, premise: Option<Lock>) -> Result<bool>;

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
    /// Remove a setting. False if there was none.
    fn delete_setting(&self, key: &str) -> Result<bool>;

    /// Every row of the store, accounts before their backup codes, the
    /// audit trail oldest first; one row in memory at a time.
    fn dump(&self, each: &mut dyn FnMut(DumpRow) -> Result<()>) -> Result<()>;
    /// Insert a dumped row as it is, keeping its id (an audit row gets the
    /// next id, so the trail keeps its order after the target's own rows).
    fn load(&self, row: &DumpRow) -> Result<()>;
    /// Remove every account, backup code, setting, exemption and first-seen
    /// row (`copy --force`). The audit trail is append-only and stays.
    fn clear(&self) -> Result<()>;
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
    /// Where the key was loaded from, to load it again when a rotation
    /// (`mb-2fa-store rekey`) commits while this tool runs.
    key_path: Option<PathBuf>,
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
            Location::Mariadb(target) => Box::new(mariadb::Mariadb::open(target, mode)?),
        };
        Ok(Store {
            backend,
            keyring: None,
            key_path: None,
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
        self.key_path = Some(key_path.to_path_buf());
        Ok(())
    }

    pub(crate) fn set_keyring(&mut self, keyring: Keyring) {
        self.keyring = Some(keyring);
    }

    /// The loaded key, once unlocked.
    pub fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_ref()
    }

    /// After a transient failure: if the store now records another key
    /// than the one loaded (a rotation committed meanwhile), load the key
    /// again (from `2fa.key`, or `2fa.key.new` until `rekey` moved it). A
    /// failure here leaves the key as it was; the next try says what is wrong.
    fn reload_key_if_rotated(&mut self) {
        let (Some(path), Some(loaded)) = (self.key_path.clone(), self.keyring.as_ref()) else {
            return;
        };
        let loaded = loaded.fingerprint();
        let recorded = self
            .backend
            .begin(Access::Read)
            .and_then(|tx| tx.setting(crate::keyring::KEY_FINGERPRINT));
        if matches!(recorded, Ok(Some(fp)) if fp != loaded)
            && let Ok(keyring) = Keyring::unlock(self, &path)
        {
            self.keyring = Some(keyring);
        }
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

    /// Write a checked copy of the store to the new file `file` (see
    /// [`Backend::backup_to`]).
    pub fn backup_to(&mut self, file: &Path) -> Result<BackupSummary> {
        self.backend.backup_to(file)
    }

    /// This machine's clock against the database server's (`None` for SQLite).
    pub fn server_clock(&mut self) -> Result<Option<ClockReading>> {
        self.backend.server_clock()
    }

    pub(crate) fn flush(&mut self) {
        self.backend.flush();
    }

    /// Name the store in an error found in its contents.
    pub fn in_db(&self, e: &Error) -> Error {
        in_store(&self.describe(), e)
    }

    /// Run `f` in a read transaction: one consistent snapshot.
    ///
    /// `f` may run more than once (see [`Store::decide`]), so it must not
    /// act outside the transaction.
    pub fn read<T>(&mut self, mut f: impl FnMut(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.run(Access::Read, |tx| f(tx).map(Verdict::Done))
    }

    /// Run `f` in a write transaction, committed only if `f` returns `Ok`.
    pub fn write<T>(&mut self, mut f: impl FnMut(&Tx<'_>) -> Result<T>) -> Result<T> {
        self.run(Access::Write, |tx| f(tx).map(Verdict::Done))
    }

    /// Run `f` in a write transaction that decides: committed when `f`
    /// returns a verdict (a refusal too, with the records it appended),
    /// rolled back when `f` fails. A refusal is returned as its error.
    ///
    /// A transient failure (a Galera node's commit refused by certification
    /// because another node changed the same account first, a deadlock)
    /// rolls everything back and runs `f` again from the start in a new
    /// transaction, up to [`MAX_TRIES`] times with a short random pause: the
    /// new try sees the other change (a replayed code is then rejected, a
    /// wrong code still counted). Nothing `f` decided is reported before its
    /// commit returned.
    pub fn decide<T>(&mut self, f: impl FnMut(&Tx<'_>) -> Result<Verdict<T>>) -> Result<T> {
        self.run(Access::Write, f)
    }

    fn run<T>(
        &mut self,
        access: Access,
        mut f: impl FnMut(&Tx<'_>) -> Result<Verdict<T>>,
    ) -> Result<T> {
        let name = self.backend.describe();
        let mut tries = 0;
        let (verdict, records) = loop {
            tries += 1;
            match self.try_once(access, &name, &mut f) {
                Err(e) if e.is_transient() && tries < MAX_TRIES => {
                    backoff(tries);
                    self.reload_key_if_rotated();
                }
                other => break other?,
            }
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

    fn try_once<T>(
        &mut self,
        access: Access,
        name: &str,
        f: &mut impl FnMut(&Tx<'_>) -> Result<Verdict<T>>,
    ) -> Result<(Verdict<T>, Vec<Record>)> {
        let inner = self.backend.begin(access)?;
        let tx = Tx {
            inner,
            access,
            name,
            keyring: self.keyring.as_ref(),
            audit: RefCell::new(Vec::new()),
        };
        let verdict = f(&tx)?;
        let records = tx.audit.take();
        tx.inner.commit()?;
        Ok((verdict, records))
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
                    node: audit::node_name().to_string(),
                    via: u.record.via.clone(),
                })?;
            }
            tx.commit()
        });
        if let Err(e) = result {
            eprintln!("{}", e.message());
        }
    }
}

/// A pause before try `tries + 1`: random, growing, at most about 50 ms,
/// so racing nodes do not collide again in step.
fn backoff(tries: u32) {
    let ceiling_us = 2_000u64.saturating_mul(1 << tries.min(5)).min(50_000);
    // Not for secrets: the time's nanoseconds and the pid spread racing processes.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::from(d.subsec_nanos()))
        .unwrap_or(0);
    let salt = nanos ^ u64::from(std::process::id()).wrapping_mul(2_654_435_761);
    let jitter = ceiling_us / 4 + salt % (ceiling_us - ceiling_us / 4 + 1);
    std::thread::sleep(Duration::from_micros(jitter));
}

pub(super) fn in_store(name: &str, e: &Error) -> Error {
    e.prefixed(name)
}
