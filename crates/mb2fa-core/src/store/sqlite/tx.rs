//! The statements: one SQLite transaction behind [`Transaction`].

use std::path::Path;
use std::sync::atomic::AtomicU64;

use rusqlite::{Connection, OptionalExtension, Transaction as SqlTransaction, params};

use super::error::db_error;
use super::{WAL_CHECKPOINT_BYTES, checkpoint, wal_path};
use crate::audit::Record;
use crate::error::{Error, Result};
use crate::model::{Exemption, Lock, Premise, StoredBackupCode, Success};
use crate::store::{
    DumpRow, Intent, NewStoredAccount, StoredAccount, StoredEnrollment, StoredExemption,
    StoredLock, StoredRecord, StoredSecret, StoredSummary, Transaction,
};

/// What a commit is followed by.
pub(super) enum AfterCommit {
    /// A read transaction wrote nothing.
    Nothing,
    /// An admin change: into the database file at once.
    Checkpoint,
    /// The hot path: only once the WAL is long.
    CheckpointIfLong,
}

pub(super) struct SqliteTx<'a> {
    pub(super) tx: SqlTransaction<'a>,
    pub(super) conn: &'a Connection,
    pub(super) path: &'a Path,
    pub(super) after_commit: AfterCommit,
    pub(super) lock_wait_ms: &'a AtomicU64,
}

/// Every account, in email order, without secrets. The query walks the
/// unique index on `accounts.email` (no sort step) and counts the unused
/// backup codes with the `backup_codes (account_id, tag)` index; see the
/// `summaries_walk_the_email_index` test.
pub(super) const SUMMARIES_SQL: &str =
    "SELECT a.email, a.state, a.issuer, a.created_at, a.activated_at, a.last_used_at,
            (SELECT count(*) FROM backup_codes b WHERE b.account_id = a.id AND b.used_at IS NULL),
            a.drift_steps, a.locked_until, a.failed_attempts, a.period
     FROM accounts a ORDER BY a.email";

/// The columns of [`account_row`], in its order.
const ACCOUNT_SELECT: &str = "SELECT id, email, state, secret, algorithm, digits, period, issuer,
        last_step, drift_steps, created_at, failed_attempts, locked_until, recent_offsets";

const AUDIT_SELECT: &str =
    "SELECT at, tool, action, email, outcome, actor, detail, node, via FROM audit";

/// An account row selected by [`ACCOUNT_SELECT`] (more columns may follow).
fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredAccount> {
    Ok(StoredAccount {
        id: r.get(0)?,
        email: r.get(1)?,
        state: r.get(2)?,
        sealed_secret: r.get(3)?,
        algorithm: r.get(4)?,
        digits: r.get(5)?,
        period: r.get(6)?,
        issuer: r.get(7)?,
        last_step: r.get(8)?,
        drift_steps: r.get(9)?,
        created_at: r.get(10)?,
        failed_attempts: r.get(11)?,
        locked_until: r.get(12)?,
        recent_offsets: r.get(13)?,
    })
}

/// An audit row selected by [`AUDIT_SELECT`].
fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRecord> {
    Ok(StoredRecord {
        at: r.get(0)?,
        tool: r.get(1)?,
        action: r.get(2)?,
        email: r.get(3)?,
        outcome: r.get(4)?,
        actor: r.get(5)?,
        detail: r.get(6)?,
        node: r.get(7)?,
        via: r.get(8)?,
    })
}

const EXEMPTION_COLUMNS: &str =
    "SELECT email, kind, reason, created_at, created_by, used_at, sealed_at FROM exemptions";

fn exemption_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredExemption> {
    Ok(StoredExemption {
        email: r.get(0)?,
        kind: r.get(1)?,
        reason: r.get(2)?,
        created_at: r.get(3)?,
        created_by: r.get(4)?,
        used_at: r.get(5)?,
        sealed_at: r.get(6)?,
    })
}

/// The one statement that writes an audit row.
pub(super) fn insert_audit(conn: &Connection, r: &Record) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit (at, tool, action, email, outcome, actor, detail, node, via)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            r.at,
            r.tool,
            r.action.as_str(),
            r.email,
            r.outcome.as_str(),
            r.actor,
            r.detail,
            r.node,
            r.via
        ],
    )?;
    Ok(())
}

impl SqliteTx<'_> {
    fn err(&self, e: rusqlite::Error) -> Error {
        db_error(self.path, &e)
    }
}

impl Transaction for SqliteTx<'_> {
    fn commit(self: Box<Self>) -> Result<()> {
        let this = *self;
        this.tx.commit().map_err(|e| db_error(this.path, &e))?;
        let long = || {
            std::fs::metadata(wal_path(this.path)).is_ok_and(|m| m.len() >= WAL_CHECKPOINT_BYTES)
        };
        match this.after_commit {
            AfterCommit::Nothing => {}
            AfterCommit::CheckpointIfLong if !long() => {}
            AfterCommit::Checkpoint | AfterCommit::CheckpointIfLong => {
                checkpoint(this.conn, this.lock_wait_ms);
            }
        }
        Ok(())
    }

    // `BEGIN IMMEDIATE` holds the database's write lock from before the
    // first read: a read for update needs nothing more.
    fn account(&self, email: &str, _intent: Intent) -> Result<Option<StoredAccount>> {
        self.tx
            .query_row(
                &format!("{ACCOUNT_SELECT} FROM accounts WHERE email = ?1"),
                params![email],
                account_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn enrollment(&self, email: &str, _intent: Intent) -> Result<Option<StoredEnrollment>> {
        self.tx
            .query_row(
                "SELECT id, state, secret FROM accounts WHERE email = ?1",
                params![email],
                |r| {
                    Ok(StoredEnrollment {
                        id: r.get(0)?,
                        state: r.get(1)?,
                        sealed_secret: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn for_each_summary(&self, each: &mut dyn FnMut(StoredSummary) -> Result<()>) -> Result<()> {
        let mut stmt = self.tx.prepare(SUMMARIES_SQL).map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let err = |e: rusqlite::Error| self.err(e);
        while let Some(r) = rows.next().map_err(err)? {
            each(StoredSummary {
                email: r.get(0).map_err(err)?,
                state: r.get(1).map_err(err)?,
                issuer: r.get(2).map_err(err)?,
                created_at: r.get(3).map_err(err)?,
                activated_at: r.get(4).map_err(err)?,
                last_used_at: r.get(5).map_err(err)?,
                backup_codes_left: r.get(6).map_err(err)?,
                drift_steps: r.get(7).map_err(err)?,
                locked_until: r.get(8).map_err(err)?,
                failed_attempts: r.get(9).map_err(err)?,
                period: r.get(10).map_err(err)?,
            })?;
        }
        Ok(())
    }

    fn count_accounts(&self) -> Result<i64> {
        self.tx
            .query_row("SELECT count(*) FROM accounts", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    fn secrets(&self) -> Result<Vec<StoredSecret>> {
        let mut stmt = self
            .tx
            .prepare("SELECT id, email, created_at, secret FROM accounts ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredSecret {
                    id: r.get(0)?,
                    email: r.get(1)?,
                    created_at: r.get(2)?,
                    sealed_secret: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    fn insert_account(&self, a: &NewStoredAccount<'_>) -> Result<i64> {
        self.tx
            .execute(
                "INSERT INTO accounts (email, state, secret, algorithm, digits, period, issuer, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    a.email,
                    a.state.as_str(),
                    a.sealed_secret,
                    a.params.algorithm.as_str(),
                    a.params.digits,
                    a.params.period,
                    a.issuer,
                    a.created_at
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.tx.last_insert_rowid())
    }

    /// The backup codes go by `ON DELETE CASCADE`.
    fn delete_account(&self, id: i64) -> Result<bool> {
        let n = self
            .tx
            .execute("DELETE FROM accounts WHERE id = ?1", params![id])
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    fn replace_secret(&self, id: i64, sealed: &[u8]) -> Result<()> {
        self.tx
            .execute(
                "UPDATE accounts SET secret = ?2 WHERE id = ?1",
                params![id, sealed],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn record_success(&self, id: i64, s: &Success, premise: &Premise) -> Result<bool> {
        let totp = s.totp.as_ref();
        let n = self
            .tx
            .execute(
                "UPDATE accounts SET
                    last_used_at = COALESCE(?2, last_used_at),
                    failed_attempts = ?3,
                    locked_until = ?4,
                    state = ?5,
                    activated_at = COALESCE(?6, activated_at),
                    last_step = COALESCE(?7, last_step),
                    drift_steps = COALESCE(?8, drift_steps),
                    recent_offsets = COALESCE(?9, recent_offsets)
                 WHERE id = ?1 AND failed_attempts = ?10 AND locked_until IS ?11
                    AND (?12 = 0 OR last_step IS ?13)",
                params![
                    id,
                    s.used_at,
                    s.lock.failed_attempts,
                    s.lock.locked_until,
                    s.state.as_str(),
                    s.activated_at,
                    totp.map(|t| t.last_step),
                    totp.map(|t| t.drift_steps),
                    totp.map(|t| crate::skew::format_history(&t.recent_offsets)),
                    premise.lock.failed_attempts,
                    premise.lock.locked_until,
                    premise.last_step.is_some(),
                    premise.last_step.flatten(),
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    fn lock(&self, id: i64) -> Result<StoredLock> {
        self.tx
            .query_row(
                "SELECT email, failed_attempts, locked_until FROM accounts WHERE id = ?1",
                params![id],
                |r| {
                    Ok(StoredLock {
                        email: r.get(0)?,
                        failed_attempts: r.get(1)?,
                        locked_until: r.get(2)?,
                    })
                },
            )
            .map_err(|e| self.err(e))
    }

    fn set_lock(&self, id: i64, lock: Lock, premise: Option<Lock>) -> Result<bool> {
        let n = self
            .tx
            .execute(
                "UPDATE accounts SET failed_attempts = ?2, locked_until = ?3
                 WHERE id = ?1 AND (?4 = 0 OR (failed_attempts = ?5 AND locked_until IS ?6))",
                params![
                    id,
                    lock.failed_attempts,
                    lock.locked_until,
                    premise.is_some(),
                    premise.map(|p| p.failed_attempts),
                    premise.and_then(|p| p.locked_until),
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    fn backup_code(&self, account_id: i64, tag: &str) -> Result<Option<StoredBackupCode>> {
        self.tx
            .query_row(
                "SELECT id, hash, used_at IS NOT NULL FROM backup_codes WHERE account_id = ?1 AND tag = ?2",
                params![account_id, tag],
                |r| {
                    Ok(StoredBackupCode {
                        id: r.get(0)?,
                        hash: r.get(1)?,
                        used: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn backup_codes_left(&self, account_id: i64) -> Result<i64> {
        self.tx
            .query_row(
                "SELECT count(*) FROM backup_codes WHERE account_id = ?1 AND used_at IS NULL",
                params![account_id],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    fn replace_backup_codes(
        &self,
        account_id: i64,
        rows: &[(String, String)],
        now: i64,
    ) -> Result<()> {
        self.tx
            .execute(
                "DELETE FROM backup_codes WHERE account_id = ?1",
                params![account_id],
            )
            .map_err(|e| self.err(e))?;
        let mut stmt = self
            .tx
            .prepare(
                "INSERT INTO backup_codes (account_id, tag, hash, created_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(|e| self.err(e))?;
        for (tag, hash) in rows {
            stmt.execute(params![account_id, tag, hash, now])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn spend_backup_code(
        &self,
        account_id: i64,
        code: &StoredBackupCode,
        now: i64,
    ) -> Result<bool> {
        let n = self
            .tx
            .execute(
                "UPDATE backup_codes SET used_at = ?3
                 WHERE id = ?1 AND account_id = ?2 AND hash = ?4 AND used_at IS NULL",
                params![code.id, account_id, now, code.hash],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    fn append_audit(&self, r: &Record) -> Result<()> {
        insert_audit(&self.tx, r).map_err(|e| self.err(e))
    }

    fn audit_records(
        &self,
        email: Option<&str>,
        since: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredRecord>> {
        let mut stmt = self
            .tx
            .prepare(&format!(
                "{AUDIT_SELECT} WHERE (?1 IS NULL OR email = ?1) AND (?2 IS NULL OR at >= ?2)
                 ORDER BY at DESC, id DESC LIMIT ?3"
            ))
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![email, since, limit], audit_row)
            .map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    fn exemption(&self, email: &str) -> Result<Option<StoredExemption>> {
        self.tx
            .query_row(
                &format!("{EXEMPTION_COLUMNS} WHERE email = ?1"),
                params![email],
                exemption_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn exemptions(&self) -> Result<Vec<StoredExemption>> {
        let mut stmt = self
            .tx
            .prepare(&format!("{EXEMPTION_COLUMNS} ORDER BY email"))
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([], exemption_row).map_err(|e| self.err(e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    fn put_exemption(&self, e: &Exemption) -> Result<()> {
        self.tx
            .execute(
                "INSERT INTO exemptions (email, kind, reason, created_at, created_by, used_at, sealed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?4)
                 ON CONFLICT (email) DO UPDATE SET kind = excluded.kind, reason = excluded.reason,
                    created_at = excluded.created_at, created_by = excluded.created_by,
                    used_at = NULL, sealed_at = excluded.created_at",
                params![e.email, e.kind.as_str(), e.reason, e.created_at, e.created_by],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn delete_exemption(&self, email: &str) -> Result<bool> {
        let n = self
            .tx
            .execute("DELETE FROM exemptions WHERE email = ?1", params![email])
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    fn mark_exemption_used(&self, email: &str, now: i64) -> Result<()> {
        self.tx
            .execute(
                "UPDATE exemptions SET used_at = COALESCE(used_at, ?2) WHERE email = ?1",
                params![email, now],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn reseal_exemption(&self, email: &str, now: i64) -> Result<()> {
        self.tx
            .execute(
                "UPDATE exemptions SET used_at = NULL, sealed_at = ?2 WHERE email = ?1",
                params![email, now],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn first_seen(&self, email: &str, now: i64) -> Result<i64> {
        self.tx
            .execute(
                "INSERT INTO first_seen (email, seen_at) VALUES (?1, ?2) ON CONFLICT (email) DO NOTHING",
                params![email, now],
            )
            .map_err(|e| self.err(e))?;
        self.tx
            .query_row(
                "SELECT seen_at FROM first_seen WHERE email = ?1",
                params![email],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    fn setting(&self, key: &str) -> Result<Option<String>> {
        self.tx
            .query_row(
                "SELECT value FROM settings WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        self.tx
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn delete_setting(&self, key: &str) -> Result<bool> {
        let n = self
            .tx
            .execute("DELETE FROM settings WHERE key = ?1", params![key])
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    fn dump(&self, each: &mut dyn FnMut(DumpRow) -> Result<()>) -> Result<()> {
        let err = |e: rusqlite::Error| self.err(e);
        let mut stmt = self
            .tx
            .prepare(&format!(
                "{ACCOUNT_SELECT}, activated_at, last_used_at FROM accounts ORDER BY id"
            ))
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            each(DumpRow::Account {
                account: account_row(r).map_err(err)?,
                activated_at: r.get(14).map_err(err)?,
                last_used_at: r.get(15).map_err(err)?,
            })?;
        }
        let mut stmt = self
            .tx
            .prepare("SELECT id, account_id, tag, hash, created_at, used_at FROM backup_codes ORDER BY id")
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            each(DumpRow::BackupCode {
                id: r.get(0).map_err(err)?,
                account_id: r.get(1).map_err(err)?,
                tag: r.get(2).map_err(err)?,
                hash: r.get(3).map_err(err)?,
                created_at: r.get(4).map_err(err)?,
                used_at: r.get(5).map_err(err)?,
            })?;
        }
        let mut stmt = self
            .tx
            .prepare("SELECT key, value FROM settings ORDER BY key")
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            each(DumpRow::Setting {
                key: r.get(0).map_err(err)?,
                value: r.get(1).map_err(err)?,
            })?;
        }
        for e in self.exemptions()? {
            each(DumpRow::Exemption(e))?;
        }
        let mut stmt = self
            .tx
            .prepare("SELECT email, seen_at FROM first_seen ORDER BY email")
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            each(DumpRow::FirstSeen {
                email: r.get(0).map_err(err)?,
                seen_at: r.get(1).map_err(err)?,
            })?;
        }
        let mut stmt = self
            .tx
            .prepare(&format!("{AUDIT_SELECT} ORDER BY id"))
            .map_err(err)?;
        let mut rows = stmt.query([]).map_err(err)?;
        while let Some(r) = rows.next().map_err(err)? {
            each(DumpRow::Audit(audit_row(r).map_err(err)?))?;
        }
        Ok(())
    }

    fn load(&self, row: &DumpRow) -> Result<()> {
        let r = match row {
            DumpRow::Account {
                account: a,
                activated_at,
                last_used_at,
            } => self.tx.execute(
                "INSERT INTO accounts (id, email, state, secret, algorithm, digits, period, issuer,
                    last_step, drift_steps, created_at, failed_attempts, locked_until, recent_offsets,
                    activated_at, last_used_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
                params![
                    a.id,
                    a.email,
                    a.state,
                    a.sealed_secret,
                    a.algorithm,
                    a.digits,
                    a.period,
                    a.issuer,
                    a.last_step,
                    a.drift_steps,
                    a.created_at,
                    a.failed_attempts,
                    a.locked_until,
                    a.recent_offsets,
                    activated_at,
                    last_used_at
                ],
            ),
            DumpRow::BackupCode {
                id,
                account_id,
                tag,
                hash,
                created_at,
                used_at,
            } => self.tx.execute(
                "INSERT INTO backup_codes (id, account_id, tag, hash, created_at, used_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, account_id, tag, hash, created_at, used_at],
            ),
            DumpRow::Setting { key, value } => self.tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            ),
            DumpRow::Exemption(e) => self.tx.execute(
                "INSERT INTO exemptions (email, kind, reason, created_at, created_by, used_at, sealed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![e.email, e.kind, e.reason, e.created_at, e.created_by, e.used_at, e.sealed_at],
            ),
            DumpRow::FirstSeen { email, seen_at } => self.tx.execute(
                "INSERT INTO first_seen (email, seen_at) VALUES (?1, ?2)",
                params![email, seen_at],
            ),
            DumpRow::Audit(r) => self.tx.execute(
                "INSERT INTO audit (at, tool, action, email, outcome, actor, detail, node, via)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![r.at, r.tool, r.action, r.email, r.outcome, r.actor, r.detail, r.node, r.via],
            ),
        };
        r.map(|_| ()).map_err(|e| self.err(e))
    }

    fn clear(&self) -> Result<()> {
        self.tx
            .execute_batch(
                "DELETE FROM backup_codes; DELETE FROM accounts; DELETE FROM settings;
                 DELETE FROM exemptions; DELETE FROM first_seen;",
            )
            .map_err(|e| self.err(e))
    }
}
