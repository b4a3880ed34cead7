//! The statements: one MariaDB transaction behind [`Transaction`].

use std::cell::RefCell;

use mysql::prelude::{FromValue, Queryable};
use mysql::{Conn, Params, Row, Value};

use super::error::{DUPLICATE, db_error};
use crate::audit::Record;
use crate::error::{Error, Result};
use crate::model::{Exemption, Lock, Premise, StoredBackupCode, Success};
use crate::store::{
    Access, DumpRow, Intent, NewStoredAccount, StoredAccount, StoredEnrollment, StoredExemption,
    StoredLock, StoredRecord, StoredSecret, StoredSummary, Transaction,
};

pub(super) struct MariadbTx<'a> {
    conn: RefCell<&'a mut Conn>,
    name: &'a str,
    access: Access,
    /// Committed or rolled back already (else `Drop` rolls back).
    finished: bool,
    /// The id of the last audit row this transaction inserted: after
    /// `COMMIT`, its presence proves the commit kept this transaction's
    /// writes (see [`MariadbTx::commit`]).
    last_audit_id: std::cell::Cell<Option<u64>>,
}

impl<'a> MariadbTx<'a> {
    pub(super) fn new(conn: &'a mut Conn, name: &'a str, access: Access) -> Self {
        MariadbTx {
            conn: RefCell::new(conn),
            name,
            access,
            finished: false,
            last_audit_id: std::cell::Cell::new(None),
        }
    }

    fn err(&self, e: &mysql::Error) -> Error {
        db_error(self.name, e)
    }

    fn conn(&self) -> Result<std::cell::RefMut<'_, &'a mut Conn>> {
        self.conn.try_borrow_mut().map_err(|_| {
            Error::storage(format!(
                "{}: a statement was issued while another one was still being read",
                self.name
            ))
        })
    }

    /// `FOR UPDATE` when this write transaction reads to judge: the row is
    /// locked until commit, so no other transaction on this server judges
    /// it meanwhile (across Galera nodes, certification does that).
    /// Every read of a write transaction is such a read: cheap (one row,
    /// by key) and it leaves no read in a write transaction unguarded.
    fn locking(&self, _intent: Intent) -> &'static str {
        if self.access == Access::Write {
            " FOR UPDATE"
        } else {
            ""
        }
    }

    fn exec(&self, sql: &str, params: Vec<Value>) -> Result<u64> {
        let mut conn = self.conn()?;
        conn.exec_drop(sql, Params::Positional(params))
            .map_err(|e| self.err(&e))?;
        Ok(conn.affected_rows())
    }

    fn first(&self, sql: &str, params: Vec<Value>) -> Result<Option<Row>> {
        let mut conn = self.conn()?;
        conn.exec_first(sql, Params::Positional(params))
            .map_err(|e| self.err(&e))
    }

    fn all(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>> {
        let mut conn = self.conn()?;
        conn.exec(sql, Params::Positional(params))
            .map_err(|e| self.err(&e))
    }

    fn one_i64(&self, sql: &str, params: Vec<Value>) -> Result<i64> {
        let mut row = self
            .first(sql, params)?
            .ok_or_else(|| Error::storage(format!("{}: a query returned no row", self.name)))?;
        col(&mut row, 0, self.name)
    }
}

/// `@@in_transaction = 1` is part of every write statement's condition (`WHERE ... AND` it, or
/// `INSERT ... SELECT ... FROM DUAL WHERE` it): the statement does nothing
/// unless it runs inside this transaction. A Galera node can roll a
/// transaction back under a client (an applier's brute-force abort of a
/// conflicting local transaction) without the next statements failing;
/// those would then run on their own, autocommitted, and the final `COMMIT`
/// would succeed with nothing of the transaction in it. With the guard such
/// a statement changes nothing, and the check at commit turns it into a
/// transient error: the whole decision is taken again on what is there.
///
/// This error: the transaction was rolled back by the server under its statements.
fn dropped(name: &str) -> Error {
    Error::transient(format!(
        "{name}: the server rolled the transaction back (a conflicting change from another node), and the retries ran out"
    ))
}

/// Column `i` of `row` as a `T`; a NULL where none may be, or a value of
/// the wrong type, is a damaged store (exit 10), never a panic.
fn col<T: FromValue>(row: &mut Row, i: usize, name: &str) -> Result<T> {
    match row.take_opt::<T, usize>(i) {
        Some(Ok(v)) => Ok(v),
        Some(Err(_)) | None => {
            let column = row
                .columns_ref()
                .get(i)
                .map(|c| c.name_str().into_owned())
                .unwrap_or_else(|| i.to_string());
            Err(Error::storage(format!(
                "{name}: column {column} holds a value of the wrong type: the schema was altered; restore it from backup"
            )))
        }
    }
}

fn v<T: Into<Value>>(x: T) -> Value {
    x.into()
}

/// The columns of [`account_row`], in its order.
const ACCOUNT_SELECT: &str =
    "SELECT id, email, state, secret, algorithm, digits, period, issuer, last_step,
        drift_steps, created_at, failed_attempts, locked_until, recent_offsets";

const AUDIT_SELECT: &str =
    "SELECT at, tool, action, email, outcome, actor, detail, node, via FROM mb2fa_audit";

/// An account row selected by [`ACCOUNT_SELECT`] (more columns may follow).
fn account_row(r: &mut Row, n: &str) -> Result<StoredAccount> {
    Ok(StoredAccount {
        id: col(r, 0, n)?,
        email: col(r, 1, n)?,
        state: col(r, 2, n)?,
        sealed_secret: col(r, 3, n)?,
        algorithm: col(r, 4, n)?,
        digits: col(r, 5, n)?,
        period: col(r, 6, n)?,
        issuer: col(r, 7, n)?,
        last_step: col(r, 8, n)?,
        drift_steps: col(r, 9, n)?,
        created_at: col(r, 10, n)?,
        failed_attempts: col(r, 11, n)?,
        locked_until: col(r, 12, n)?,
        recent_offsets: col(r, 13, n)?,
    })
}

/// An audit row selected by [`AUDIT_SELECT`].
fn audit_row(r: &mut Row, n: &str) -> Result<StoredRecord> {
    Ok(StoredRecord {
        at: col(r, 0, n)?,
        tool: col(r, 1, n)?,
        action: col(r, 2, n)?,
        email: col(r, 3, n)?,
        outcome: col(r, 4, n)?,
        actor: col(r, 5, n)?,
        detail: col(r, 6, n)?,
        node: col(r, 7, n)?,
        via: col(r, 8, n)?,
    })
}

const EXEMPTION_COLUMNS: &str =
    "SELECT email, kind, reason, created_at, created_by, used_at, sealed_at FROM mb2fa_exemptions";

/// Every account in email order, without secrets (the unique index on
/// email gives the order).
const SUMMARIES_SQL: &str =
    "SELECT a.email, a.state, a.issuer, a.created_at, a.activated_at, a.last_used_at,
        (SELECT COUNT(*) FROM mb2fa_backup_codes b WHERE b.account_id = a.id AND b.used_at IS NULL),
        a.drift_steps, a.locked_until, a.failed_attempts, a.period
    FROM mb2fa_accounts a ORDER BY a.email";

fn exemption_row(mut r: Row, name: &str) -> Result<StoredExemption> {
    Ok(StoredExemption {
        email: col(&mut r, 0, name)?,
        kind: col(&mut r, 1, name)?,
        reason: col(&mut r, 2, name)?,
        created_at: col(&mut r, 3, name)?,
        created_by: col(&mut r, 4, name)?,
        used_at: col(&mut r, 5, name)?,
        sealed_at: col(&mut r, 6, name)?,
    })
}

impl Drop for MariadbTx<'_> {
    fn drop(&mut self) {
        if !self.finished
            && let Ok(mut conn) = self.conn.try_borrow_mut()
        {
            let _ = conn.query_drop("ROLLBACK");
        }
    }
}

impl Transaction for MariadbTx<'_> {
    /// A write transaction proves it was still whole: one that appended an
    /// audit row finds that row after `COMMIT` (an aborted transaction's row
    /// is gone; a later one could not have been written, see [`dropped`]),
    /// any other asks the server before `COMMIT` whether it is still in it.
    fn commit(mut self: Box<Self>) -> Result<()> {
        self.finished = true;
        let audit_id = self.last_audit_id.get();
        let mut conn = self.conn.try_borrow_mut().map_err(|_| {
            Error::storage(format!(
                "{}: commit while a statement was being read",
                self.name
            ))
        })?;
        if self.access == Access::Write && audit_id.is_none() {
            let inside: Option<i64> = conn
                .query_first("SELECT @@in_transaction")
                .map_err(|e| self.err(&e))?;
            if inside != Some(1) {
                return Err(dropped(self.name));
            }
        }
        conn.query_drop("COMMIT").map_err(|e| self.err(&e))?;
        if let Some(id) = audit_id {
            let found: Option<i64> = conn
                .exec_first("SELECT COUNT(*) FROM mb2fa_audit WHERE id = ?", (id,))
                .map_err(|e| self.err(&e))?;
            if found != Some(1) {
                return Err(dropped(self.name));
            }
        }
        Ok(())
    }

    fn account(&self, email: &str, intent: Intent) -> Result<Option<StoredAccount>> {
        let sql = format!(
            "{ACCOUNT_SELECT} FROM mb2fa_accounts WHERE email = ?{}",
            self.locking(intent)
        );
        let Some(mut r) = self.first(&sql, vec![v(email)])? else {
            return Ok(None);
        };
        account_row(&mut r, self.name).map(Some)
    }

    fn enrollment(&self, email: &str, intent: Intent) -> Result<Option<StoredEnrollment>> {
        let sql = format!(
            "SELECT id, state, secret FROM mb2fa_accounts WHERE email = ?{}",
            self.locking(intent)
        );
        let Some(mut r) = self.first(&sql, vec![v(email)])? else {
            return Ok(None);
        };
        let n = self.name;
        Ok(Some(StoredEnrollment {
            id: col(&mut r, 0, n)?,
            state: col(&mut r, 1, n)?,
            sealed_secret: col(&mut r, 2, n)?,
        }))
    }

    /// Streams: the rows are read off the connection one at a time.
    fn for_each_summary(&self, each: &mut dyn FnMut(StoredSummary) -> Result<()>) -> Result<()> {
        let n = self.name;
        let mut conn = self.conn()?;
        let result = conn
            .exec_iter(SUMMARIES_SQL, ())
            .map_err(|e| self.err(&e))?;
        for row in result {
            let mut r = row.map_err(|e| self.err(&e))?;
            each(StoredSummary {
                email: col(&mut r, 0, n)?,
                state: col(&mut r, 1, n)?,
                issuer: col(&mut r, 2, n)?,
                created_at: col(&mut r, 3, n)?,
                activated_at: col(&mut r, 4, n)?,
                last_used_at: col(&mut r, 5, n)?,
                backup_codes_left: col(&mut r, 6, n)?,
                drift_steps: col(&mut r, 7, n)?,
                locked_until: col(&mut r, 8, n)?,
                failed_attempts: col(&mut r, 9, n)?,
                period: col(&mut r, 10, n)?,
            })?;
        }
        Ok(())
    }

    fn count_accounts(&self) -> Result<i64> {
        self.one_i64("SELECT COUNT(*) FROM mb2fa_accounts", vec![])
    }

    fn secrets(&self) -> Result<Vec<StoredSecret>> {
        let rows = self.all(
            &format!(
                "SELECT id, email, created_at, secret FROM mb2fa_accounts ORDER BY id{}",
                self.locking(Intent::Update)
            ),
            vec![],
        )?;
        let n = self.name;
        rows.into_iter()
            .map(|mut r| {
                Ok(StoredSecret {
                    id: col(&mut r, 0, n)?,
                    email: col(&mut r, 1, n)?,
                    created_at: col(&mut r, 2, n)?,
                    sealed_secret: col(&mut r, 3, n)?,
                })
            })
            .collect()
    }

    /// Two first enrollments of one email on one server: with no row to
    /// lock yet, both may get this far; the second hits the unique key, and
    /// running it again (transient) sees the first's enrollment.
    fn insert_account(&self, a: &NewStoredAccount<'_>) -> Result<i64> {
        let mut conn = self.conn()?;
        let r = conn.exec_drop(
            "INSERT INTO mb2fa_accounts (email, state, secret, algorithm, digits, period, issuer, created_at)
             SELECT ?, ?, ?, ?, ?, ?, ?, ? FROM DUAL WHERE @@in_transaction = 1",
            Params::Positional(vec![
                v(a.email),
                v(a.state.as_str()),
                v(a.sealed_secret),
                v(a.params.algorithm.as_str()),
                v(a.params.digits),
                v(a.params.period),
                v(a.issuer),
                v(a.created_at),
            ]),
        );
        match r {
            Ok(()) if conn.affected_rows() == 1 => {}
            Ok(()) => return Err(dropped(self.name)),
            Err(mysql::Error::MySqlError(m)) if m.code == DUPLICATE => {
                return Err(Error::transient(format!(
                    "{}: another process enrolled the same account at the same moment; try again",
                    self.name
                )));
            }
            Err(e) => return Err(self.err(&e)),
        }
        i64::try_from(conn.last_insert_id())
            .map_err(|_| Error::storage(format!("{}: account id out of range", self.name)))
    }

    /// The backup codes first (the foreign key would cascade, but the
    /// explicit delete replicates the same on every Galera version).
    fn delete_account(&self, id: i64) -> Result<bool> {
        self.exec(
            "DELETE FROM mb2fa_backup_codes WHERE account_id = ? AND @@in_transaction = 1",
            vec![v(id)],
        )?;
        let n = self.exec(
            "DELETE FROM mb2fa_accounts WHERE id = ? AND @@in_transaction = 1",
            vec![v(id)],
        )?;
        Ok(n == 1)
    }

    fn replace_secret(&self, id: i64, sealed: &[u8]) -> Result<()> {
        self.exec(
            "UPDATE mb2fa_accounts SET secret = ? WHERE id = ? AND @@in_transaction = 1",
            vec![v(sealed), v(id)],
        )?;
        Ok(())
    }

    /// The premise is compared in the `UPDATE` itself, a current read of the
    /// row on this node, and the matched-row count is the verdict (the
    /// connection asks for `CLIENT_FOUND_ROWS`, so a row whose values do not
    /// change still counts).
    fn record_success(&self, id: i64, s: &Success, premise: &Premise) -> Result<bool> {
        let totp = s.totp.as_ref();
        let n = self.exec(
            "UPDATE mb2fa_accounts SET
                last_used_at = COALESCE(?, last_used_at),
                failed_attempts = ?,
                locked_until = ?,
                state = ?,
                activated_at = COALESCE(?, activated_at),
                last_step = COALESCE(?, last_step),
                drift_steps = COALESCE(?, drift_steps),
                recent_offsets = COALESCE(?, recent_offsets)
             WHERE id = ? AND failed_attempts = ? AND locked_until <=> ?
                AND (? = 0 OR last_step <=> ?) AND @@in_transaction = 1",
            vec![
                v(s.used_at),
                v(s.lock.failed_attempts),
                v(s.lock.locked_until),
                v(s.state.as_str()),
                v(s.activated_at),
                v(totp.map(|t| t.last_step)),
                v(totp.map(|t| t.drift_steps)),
                v(totp.map(|t| crate::skew::format_history(&t.recent_offsets))),
                v(id),
                v(premise.lock.failed_attempts),
                v(premise.lock.locked_until),
                v(premise.last_step.is_some()),
                v(premise.last_step.flatten()),
            ],
        )?;
        Ok(n == 1)
    }

    fn lock(&self, id: i64) -> Result<StoredLock> {
        let sql = format!(
            "SELECT email, failed_attempts, locked_until FROM mb2fa_accounts WHERE id = ?{}",
            self.locking(Intent::Update)
        );
        let mut r = self.first(&sql, vec![v(id)])?.ok_or_else(|| {
            Error::storage(format!(
                "{}: the account vanished mid-transaction",
                self.name
            ))
        })?;
        let n = self.name;
        Ok(StoredLock {
            email: col(&mut r, 0, n)?,
            failed_attempts: col(&mut r, 1, n)?,
            locked_until: col(&mut r, 2, n)?,
        })
    }

    fn set_lock(&self, id: i64, lock: Lock, premise: Option<Lock>) -> Result<bool> {
        let n = self.exec(
            "UPDATE mb2fa_accounts SET failed_attempts = ?, locked_until = ?
             WHERE id = ? AND (? = 0 OR (failed_attempts = ? AND locked_until <=> ?))
                AND @@in_transaction = 1",
            vec![
                v(lock.failed_attempts),
                v(lock.locked_until),
                v(id),
                v(premise.is_some()),
                v(premise.map(|p| p.failed_attempts)),
                v(premise.and_then(|p| p.locked_until)),
            ],
        )?;
        Ok(n == 1)
    }

    fn backup_code(&self, account_id: i64, tag: &str) -> Result<Option<StoredBackupCode>> {
        let sql = format!(
            "SELECT id, hash, used_at IS NOT NULL FROM mb2fa_backup_codes WHERE account_id = ? AND tag = ?{}",
            self.locking(Intent::Update)
        );
        let Some(mut r) = self.first(&sql, vec![v(account_id), v(tag)])? else {
            return Ok(None);
        };
        let n = self.name;
        let used: i64 = col(&mut r, 2, n)?;
        Ok(Some(StoredBackupCode {
            id: col(&mut r, 0, n)?,
            hash: col(&mut r, 1, n)?,
            used: used != 0,
        }))
    }

    fn backup_codes_left(&self, account_id: i64) -> Result<i64> {
        self.one_i64(
            "SELECT COUNT(*) FROM mb2fa_backup_codes WHERE account_id = ? AND used_at IS NULL",
            vec![v(account_id)],
        )
    }

    fn replace_backup_codes(
        &self,
        account_id: i64,
        rows: &[(String, String)],
        now: i64,
    ) -> Result<()> {
        self.exec(
            "DELETE FROM mb2fa_backup_codes WHERE account_id = ? AND @@in_transaction = 1",
            vec![v(account_id)],
        )?;
        for (tag, hash) in rows {
            let n = self.exec(
                "INSERT INTO mb2fa_backup_codes (account_id, tag, hash, created_at)
                 SELECT ?, ?, ?, ? FROM DUAL WHERE @@in_transaction = 1",
                vec![v(account_id), v(tag.as_str()), v(hash.as_str()), v(now)],
            )?;
            if n != 1 {
                return Err(dropped(self.name));
            }
        }
        Ok(())
    }

    fn spend_backup_code(
        &self,
        account_id: i64,
        code: &StoredBackupCode,
        now: i64,
    ) -> Result<bool> {
        let n = self.exec(
            "UPDATE mb2fa_backup_codes SET used_at = ?
             WHERE id = ? AND account_id = ? AND hash = ? AND used_at IS NULL
                AND @@in_transaction = 1",
            vec![v(now), v(code.id), v(account_id), v(code.hash.as_str())],
        )?;
        Ok(n == 1)
    }

    fn append_audit(&self, r: &Record) -> Result<()> {
        let mut conn = self.conn()?;
        conn.exec_drop(
            "INSERT INTO mb2fa_audit (at, tool, action, email, outcome, actor, detail, node, via)
             SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? FROM DUAL WHERE @@in_transaction = 1",
            Params::Positional(vec![
                v(r.at),
                v(r.tool.as_str()),
                v(r.action.as_str()),
                v(r.email.as_deref()),
                v(r.outcome.as_str()),
                v(r.actor.as_str()),
                v(r.detail.as_str()),
                v(r.node.as_str()),
                v(r.via.as_str()),
            ]),
        )
        .map_err(|e| self.err(&e))?;
        if conn.affected_rows() != 1 {
            return Err(dropped(self.name));
        }
        self.last_audit_id.set(Some(conn.last_insert_id()));
        Ok(())
    }

    fn audit_records(
        &self,
        email: Option<&str>,
        since: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredRecord>> {
        let rows = self.all(
            &format!(
                "{AUDIT_SELECT} WHERE (? IS NULL OR email = ?) AND (? IS NULL OR at >= ?)
                 ORDER BY at DESC, id DESC LIMIT ?"
            ),
            vec![v(email), v(email), v(since), v(since), v(limit)],
        )?;
        rows.into_iter()
            .map(|mut r| audit_row(&mut r, self.name))
            .collect()
    }

    fn exemption(&self, email: &str) -> Result<Option<StoredExemption>> {
        let sql = format!(
            "{EXEMPTION_COLUMNS} WHERE email = ?{}",
            self.locking(Intent::Update)
        );
        self.first(&sql, vec![v(email)])?
            .map(|r| exemption_row(r, self.name))
            .transpose()
    }

    fn exemptions(&self) -> Result<Vec<StoredExemption>> {
        self.all(&format!("{EXEMPTION_COLUMNS} ORDER BY email"), vec![])?
            .into_iter()
            .map(|r| exemption_row(r, self.name))
            .collect()
    }

    fn put_exemption(&self, e: &Exemption) -> Result<()> {
        self.exec(
            "INSERT INTO mb2fa_exemptions (email, kind, reason, created_at, created_by, used_at, sealed_at)
             SELECT ?, ?, ?, ?, ?, NULL, ? FROM DUAL WHERE @@in_transaction = 1
             ON DUPLICATE KEY UPDATE kind = VALUES(kind), reason = VALUES(reason),
                created_at = VALUES(created_at), created_by = VALUES(created_by),
                used_at = NULL, sealed_at = VALUES(created_at)",
            vec![
                v(e.email.as_str()),
                v(e.kind.as_str()),
                v(e.reason.as_str()),
                v(e.created_at),
                v(e.created_by.as_str()),
                v(e.created_at),
            ],
        )?;
        Ok(())
    }

    fn delete_exemption(&self, email: &str) -> Result<bool> {
        let n = self.exec(
            "DELETE FROM mb2fa_exemptions WHERE email = ? AND @@in_transaction = 1",
            vec![v(email)],
        )?;
        Ok(n == 1)
    }

    fn mark_exemption_used(&self, email: &str, now: i64) -> Result<()> {
        self.exec(
            "UPDATE mb2fa_exemptions SET used_at = COALESCE(used_at, ?) WHERE email = ? AND @@in_transaction = 1",
            vec![v(now), v(email)],
        )?;
        Ok(())
    }

    fn reseal_exemption(&self, email: &str, now: i64) -> Result<()> {
        self.exec(
            "UPDATE mb2fa_exemptions SET used_at = NULL, sealed_at = ? WHERE email = ? AND @@in_transaction = 1",
            vec![v(now), v(email)],
        )?;
        Ok(())
    }

    fn first_seen(&self, email: &str, now: i64) -> Result<i64> {
        self.exec(
            "INSERT INTO mb2fa_first_seen (email, seen_at)
             SELECT ?, ? FROM DUAL WHERE @@in_transaction = 1
             ON DUPLICATE KEY UPDATE seen_at = seen_at",
            vec![v(email), v(now)],
        )?;
        self.one_i64(
            "SELECT seen_at FROM mb2fa_first_seen WHERE email = ?",
            vec![v(email)],
        )
    }

    fn setting(&self, key: &str) -> Result<Option<String>> {
        let Some(mut r) = self.first(
            "SELECT value FROM mb2fa_settings WHERE name = ?",
            vec![v(key)],
        )?
        else {
            return Ok(None);
        };
        col(&mut r, 0, self.name).map(Some)
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.exec(
            "INSERT INTO mb2fa_settings (name, value)
             SELECT ?, ? FROM DUAL WHERE @@in_transaction = 1
             ON DUPLICATE KEY UPDATE value = VALUES(value)",
            vec![v(key), v(value)],
        )?;
        Ok(())
    }

    fn delete_setting(&self, key: &str) -> Result<bool> {
        let n = self.exec(
            "DELETE FROM mb2fa_settings WHERE name = ? AND @@in_transaction = 1",
            vec![v(key)],
        )?;
        Ok(n > 0)
    }

    /// Table by table, each streamed off the connection.
    fn dump(&self, each: &mut dyn FnMut(DumpRow) -> Result<()>) -> Result<()> {
        let n = self.name;
        let mut conn = self.conn()?;
        let mut stream = |sql: &str, each: &mut dyn FnMut(Row) -> Result<()>| -> Result<()> {
            let result = conn.exec_iter(sql, ()).map_err(|e| self.err(&e))?;
            for row in result {
                each(row.map_err(|e| self.err(&e))?)?;
            }
            Ok(())
        };
        stream(
            &format!(
                "{ACCOUNT_SELECT}, activated_at, last_used_at FROM mb2fa_accounts ORDER BY id"
            ),
            &mut |mut r| {
                each(DumpRow::Account {
                    account: account_row(&mut r, n)?,
                    activated_at: col(&mut r, 14, n)?,
                    last_used_at: col(&mut r, 15, n)?,
                })
            },
        )?;
        stream(
            "SELECT id, account_id, tag, hash, created_at, used_at FROM mb2fa_backup_codes ORDER BY id",
            &mut |mut r| {
                each(DumpRow::BackupCode {
                    id: col(&mut r, 0, n)?,
                    account_id: col(&mut r, 1, n)?,
                    tag: col(&mut r, 2, n)?,
                    hash: col(&mut r, 3, n)?,
                    created_at: col(&mut r, 4, n)?,
                    used_at: col(&mut r, 5, n)?,
                })
            },
        )?;
        stream(
            "SELECT name, value FROM mb2fa_settings ORDER BY name",
            &mut |mut r| {
                each(DumpRow::Setting {
                    key: col(&mut r, 0, n)?,
                    value: col(&mut r, 1, n)?,
                })
            },
        )?;
        stream(&format!("{EXEMPTION_COLUMNS} ORDER BY email"), &mut |r| {
            each(DumpRow::Exemption(exemption_row(r, n)?))
        })?;
        stream(
            "SELECT email, seen_at FROM mb2fa_first_seen ORDER BY email",
            &mut |mut r| {
                each(DumpRow::FirstSeen {
                    email: col(&mut r, 0, n)?,
                    seen_at: col(&mut r, 1, n)?,
                })
            },
        )?;
        stream(&format!("{AUDIT_SELECT} ORDER BY id"), &mut |mut r| {
            each(DumpRow::Audit(audit_row(&mut r, n)?))
        })
    }

    fn load(&self, row: &DumpRow) -> Result<()> {
        let (sql, params): (&str, Vec<Value>) = match row {
            DumpRow::Account {
                account: a,
                activated_at,
                last_used_at,
            } => (
                "INSERT INTO mb2fa_accounts (id, email, state, secret, algorithm, digits, period, issuer,
                    last_step, drift_steps, created_at, failed_attempts, locked_until, recent_offsets,
                    activated_at, last_used_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    v(a.id),
                    v(a.email.as_str()),
                    v(a.state.as_str()),
                    v(a.sealed_secret.as_slice()),
                    v(a.algorithm.as_str()),
                    v(a.digits),
                    v(a.period),
                    v(a.issuer.as_str()),
                    v(a.last_step),
                    v(a.drift_steps),
                    v(a.created_at),
                    v(a.failed_attempts),
                    v(a.locked_until),
                    v(a.recent_offsets.as_str()),
                    v(*activated_at),
                    v(*last_used_at),
                ],
            ),
            DumpRow::BackupCode {
                id,
                account_id,
                tag,
                hash,
                created_at,
                used_at,
            } => (
                "INSERT INTO mb2fa_backup_codes (id, account_id, tag, hash, created_at, used_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
                vec![
                    v(*id),
                    v(*account_id),
                    v(tag.as_str()),
                    v(hash.as_str()),
                    v(*created_at),
                    v(*used_at),
                ],
            ),
            DumpRow::Setting { key, value } => (
                "INSERT INTO mb2fa_settings (name, value) VALUES (?, ?)
                 ON DUPLICATE KEY UPDATE value = VALUES(value)",
                vec![v(key.as_str()), v(value.as_str())],
            ),
            DumpRow::Exemption(e) => (
                "INSERT INTO mb2fa_exemptions (email, kind, reason, created_at, created_by, used_at, sealed_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                vec![
                    v(e.email.as_str()),
                    v(e.kind.as_str()),
                    v(e.reason.as_str()),
                    v(e.created_at),
                    v(e.created_by.as_str()),
                    v(e.used_at),
                    v(e.sealed_at),
                ],
            ),
            DumpRow::FirstSeen { email, seen_at } => (
                "INSERT INTO mb2fa_first_seen (email, seen_at) VALUES (?, ?)",
                vec![v(email.as_str()), v(*seen_at)],
            ),
            DumpRow::Audit(r) => (
                "INSERT INTO mb2fa_audit (at, tool, action, email, outcome, actor, detail, node, via)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                vec![
                    v(r.at),
                    v(r.tool.as_str()),
                    v(r.action.as_str()),
                    v(r.email.as_deref()),
                    v(r.outcome.as_str()),
                    v(r.actor.as_str()),
                    v(r.detail.as_str()),
                    v(r.node.as_str()),
                    v(r.via.as_str()),
                ],
            ),
        };
        self.exec(sql, params).map(|_| ())
    }

    fn clear(&self) -> Result<()> {
        for table in [
            "mb2fa_backup_codes",
            "mb2fa_accounts",
            "mb2fa_settings",
            "mb2fa_exemptions",
            "mb2fa_first_seen",
        ] {
            self.exec(&format!("DELETE FROM {table}"), vec![])?;
        }
        Ok(())
    }
}
