//! The SQLite backend through the store, and its files and SQL as SQLite sees them.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rusqlite::Connection;

use super::SCHEMA_VERSION;
use crate::audit::{Action, Outcome, Record};
use crate::error::{Error, Result};
use crate::keyring::Keyring;
use crate::model::{Lock, NewAccount, Premise, State, Success};
use crate::secret::Secret;
use crate::store::{Location, OpenMode, Store, Verdict};
use crate::totp::TotpParams;

fn open(path: &Path, mode: OpenMode<'_>) -> Result<Store> {
    Store::open(&Location::Sqlite(path.to_path_buf()), mode)
}

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .expect("open")
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version")
}

#[test]
fn creates_dir_0700_and_file_0600_and_wal() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("sub/dir/2fa.db");
    let mut store = open(&path, OpenMode::Init).expect("open");
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    store.unlock(&tmp.path().join("2fa.key")).expect("key");
    let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&tmp.path().join("sub/dir")), 0o700);
    let jm: String = Connection::open(&path)
        .expect("open")
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("pragma");
    assert_eq!(jm, "wal");
    assert_eq!(user_version(&path), SCHEMA_VERSION);
}

#[test]
fn must_exist_refuses_a_missing_file_and_creates_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("2fa.db");
    let err = open(&path, OpenMode::MustExist).expect_err("missing");
    assert_eq!(err.exit_code(), 10);
    assert!(err.message().contains(&path.display().to_string()));
    assert!(!path.exists());
}

#[test]
fn refuses_non_sqlite_and_newer_schema() {
    let tmp = tempfile::tempdir().expect("tmp");
    let junk = tmp.path().join("junk.db");
    std::fs::write(&junk, vec![b'x'; 4096]).expect("write");
    std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let err = open(&junk, OpenMode::MustExist).expect_err("junk");
    assert_eq!(err.exit_code(), 10);
    assert!(
        err.message().contains("not an SQLite database"),
        "{}",
        err.message()
    );

    let newer = tmp.path().join("newer.db");
    {
        let c = Connection::open(&newer).expect("open");
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("set");
    }
    std::fs::set_permissions(&newer, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let err = open(&newer, OpenMode::MustExist).expect_err("newer");
    assert_eq!(err.exit_code(), 10);
    assert!(err.message().contains("newer"), "{}", err.message());
    let c = Connection::open(&newer).expect("open");
    let v: i64 = c
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("v");
    assert_eq!(v, SCHEMA_VERSION + 1, "a newer schema is never downgraded");
}

#[test]
fn only_init_and_a_fresh_first_enrollment_create_a_database() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("2fa.db");
    let key = tmp.path().join("2fa.key");
    std::fs::write(&key, [0u8; 32]).expect("key");
    let err =
        open(&path, OpenMode::CreateIfFresh { key_file: &key }).expect_err("key without database");
    assert_eq!(err.exit_code(), 10);
    assert!(err.message().contains("was lost"), "{}", err.message());
    assert!(!path.exists(), "nothing created");
    std::fs::remove_file(&key).expect("rm");
    drop(open(&path, OpenMode::CreateIfFresh { key_file: &key }).expect("fresh"));
    let err = open(&path, OpenMode::Init).expect_err("init twice");
    assert!(
        err.message().contains("already exists"),
        "{}",
        err.message()
    );

    // A valid SQLite file without our schema is foreign, not "empty".
    let blank = tmp.path().join("blank.db");
    Connection::open(&blank)
        .expect("open")
        .execute_batch("PRAGMA page_size=4096; VACUUM;")
        .expect("vacuum");
    std::fs::set_permissions(&blank, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let err = open(&blank, OpenMode::MustExist).expect_err("blank");
    assert_eq!(err.exit_code(), 10);
    assert!(
        err.message().contains("not an initialised mb-2fa database"),
        "{}",
        err.message()
    );
    let left = tmp.path().read_dir().expect("ls").count();
    assert_eq!(
        left, 4,
        "no temporary file left behind (db, wal, shm, blank)"
    );
}

#[test]
fn failed_write_rolls_back() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("2fa.db");
    let mut store = open(&path, OpenMode::Init).expect("open");
    store.unlock(&tmp.path().join("2fa.key")).expect("key");
    let secret = Secret::from_bytes(vec![7; 20]);
    let r: Result<()> = store.write(|tx| {
        tx.insert_account(&NewAccount {
            email: "a@b",
            secret: &secret,
            params: TotpParams::default(),
            issuer: "Mailborder",
            created_at: 1,
        })?;
        Err(Error::conflict("stop"))
    });
    assert_eq!(r.map_err(|e| e.kind()), Err(crate::ErrorKind::Conflict));
    let found = store.read(|tx| tx.enrollment("a@b")).expect("read");
    assert_eq!(found, None);
}

/// A decision written on a row that no longer holds what it was judged on
/// writes nothing: the statement compares, and its verdict is a transient
/// error (judge again), never a silent overwrite of the newer row.
#[test]
fn a_decision_judged_on_a_changed_row_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("2fa.db");
    let mut store = open(&path, OpenMode::Init).expect("open");
    store.unlock(&tmp.path().join("2fa.key")).expect("key");
    let secret = Secret::from_bytes(vec![7; 20]);
    let id = store
        .write(|tx| {
            tx.insert_account(&NewAccount {
                email: "a@b",
                secret: &secret,
                params: TotpParams::default(),
                issuer: "Mailborder",
                created_at: 1,
            })
        })
        .expect("insert");
    let accept = |step| Success::totp(100, step, 0, vec![0], true);
    // Judged on a floor of 41 that is not there (the row has none).
    let stale = Premise {
        lock: Lock::CLEAR,
        last_step: Some(Some(41)),
    };
    let err = store
        .write(|tx| tx.record_success(id, &accept(42), stale))
        .expect_err("stale floor");
    assert!(err.is_transient() && err.exit_code() == 10, "{err:?}");
    assert!(
        err.message().contains("changed while it was being judged"),
        "{}",
        err.message()
    );
    // Judged on a lock that is not there.
    let counted = Lock {
        failed_attempts: 3,
        locked_until: None,
    };
    let err = store
        .write(|tx| {
            tx.set_lock(
                id,
                counted,
                Some(Lock {
                    failed_attempts: 2,
                    locked_until: None,
                }),
            )
        })
        .expect_err("stale lock");
    assert!(err.is_transient(), "{err:?}");
    let err = store
        .write(|tx| {
            tx.record_success(
                id,
                &Success::backup_code(100, State::Active),
                Premise::lock(counted),
            )
        })
        .expect_err("stale lock for a backup code");
    assert!(err.is_transient(), "{err:?}");
    let row = |store: &mut Store| {
        store
            .read(|tx| {
                let a = tx.account("a@b")?.expect("account");
                Ok((a.last_step, a.failed_attempts, a.state))
            })
            .expect("read")
    };
    assert_eq!(
        row(&mut store),
        (None, 0, State::Pending),
        "nothing written"
    );
    // On what is there, each writes; and judged again on the old floor, the
    // same step is refused.
    let fresh = Premise {
        lock: Lock::CLEAR,
        last_step: Some(None),
    };
    store
        .write(|tx| tx.record_success(id, &accept(42), fresh))
        .expect("on the row as it is");
    assert_eq!(row(&mut store), (Some(42), 0, State::Active));
    let err = store
        .write(|tx| tx.record_success(id, &accept(42), fresh))
        .expect_err("the same step judged on the floor before it");
    assert!(err.is_transient(), "{err:?}");
    store
        .write(|tx| tx.set_lock(id, counted, Some(Lock::CLEAR)))
        .expect("count a failure");
    store
        .write(|tx| tx.set_lock(id, Lock::CLEAR, None))
        .expect("unlock clears whatever is there");
    assert_eq!(row(&mut store), (Some(42), 0, State::Active));
}

#[test]
fn audit_trail_is_append_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("2fa.db");
    let mut store = open(&path, OpenMode::Init).expect("open");
    store
        .write(|tx| {
            tx.append_audit(Record {
                at: 1,
                tool: "t".into(),
                action: Action::Other("a".into()),
                email: None,
                outcome: Outcome::Ok,
                actor: "me".into(),
                detail: String::new(),
                node: "n".into(),
                via: String::new(),
            })
        })
        .expect("append");
    for sql in ["UPDATE audit SET outcome = 'x'", "DELETE FROM audit"] {
        let err = Connection::open(&path)
            .expect("open")
            .execute(sql, [])
            .expect_err(sql);
        assert!(err.to_string().contains("append-only"), "{err}");
    }
}

#[test]
fn version_1_fixture_is_sealed_only_by_seal_plaintext() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("2fa.db");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/schema-v1/2fa.db"
    );
    std::fs::copy(fixture, &path).expect("copy fixture");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let plain: Vec<Vec<u8>> = {
        let c = Connection::open(&path).expect("open");
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("v");
        assert_eq!(v, 1, "the fixture is a version 1 database");
        let mut st = c
            .prepare("SELECT secret FROM accounts ORDER BY email")
            .expect("prep");
        st.query_map([], |r| r.get(0))
            .expect("q")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    };
    assert_eq!(plain.len(), 3);
    // A keyless tool migrates the schema; the secrets stay as they were.
    drop(open(&path, OpenMode::MustExist).expect("open"));
    {
        let c = Connection::open(&path).expect("open");
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("v");
        assert_eq!(v, SCHEMA_VERSION);
        let first: Vec<u8> = c
            .query_row(
                "SELECT secret FROM accounts ORDER BY email LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("row");
        assert_eq!(first, plain[0], "still plaintext before the key is loaded");
    }
    let key = tmp.path().join("2fa.key");
    let mut store = open(&path, OpenMode::MustExist).expect("open");
    let err = store.unlock(&key).expect_err("unlock never seals");
    assert_eq!(err.exit_code(), 10);
    assert!(
        err.message().contains("seal-plaintext"),
        "{}",
        err.message()
    );
    assert!(!key.exists(), "a refused unlock creates no key");
    let record = |n: usize| Record {
        at: 1,
        tool: "mb-2fa-store".into(),
        action: Action::SealPlaintext,
        email: None,
        outcome: Outcome::Ok,
        actor: "test".into(),
        detail: format!("{n} secrets sealed"),
        node: "n".into(),
        via: String::new(),
    };
    assert_eq!(
        Keyring::seal_plaintext(&mut store, &key, record).expect("seal"),
        3
    );
    let again = Keyring::seal_plaintext(&mut store, &key, record).expect_err("only once");
    assert!(
        again.message().contains("already records key"),
        "{}",
        again.message()
    );
    let mut store = open(&path, OpenMode::MustExist).expect("open");
    store.unlock(&key).expect("the recorded key opens it");
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    let emails = ["alice@example.com", "bob@example.com", "carol@example.com"];
    for (email, plain) in emails.iter().zip(&plain) {
        let account = store
            .read(|tx| tx.account(email))
            .expect("read")
            .expect("present");
        assert_eq!(account.secret.as_bytes(), plain.as_slice(), "{email}");
    }
    let stored: Vec<Vec<u8>> = {
        let c = Connection::open(&path).expect("open");
        let mut st = c.prepare("SELECT secret FROM accounts").expect("prep");
        st.query_map([], |r| r.get(0))
            .expect("q")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    };
    for (s, p) in stored.iter().zip(&plain) {
        assert!(!s.windows(p.len()).any(|w| w == p.as_slice()), "sealed");
    }
}

#[test]
fn summaries_walk_the_email_index_without_a_sort() {
    let tmp = tempfile::tempdir().expect("tmp");
    let path = tmp.path().join("2fa.db");
    drop(open(&path, OpenMode::Init).expect("open"));
    let c = Connection::open(&path).expect("open");
    let mut stmt = c
        .prepare(&format!("EXPLAIN QUERY PLAN {}", super::tx::SUMMARIES_SQL))
        .expect("explain");
    let plan: Vec<String> = stmt
        .query_map([], |r| r.get::<_, String>(3))
        .expect("plan")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
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

#[test]
fn a_read_for_update_needs_a_write_transaction_and_a_refusal_commits() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut store = open(&tmp.path().join("2fa.db"), OpenMode::Init).expect("open");
    store.unlock(&tmp.path().join("2fa.key")).expect("key");
    let err = store
        .read(|tx| tx.enrollment_for_update("a@b"))
        .expect_err("a read transaction cannot lock");
    assert!(
        err.message().contains("read for update"),
        "{}",
        err.message()
    );
    let err = store
        .read(|tx| tx.account_for_update("a@b"))
        .expect_err("a read transaction cannot lock");
    assert_eq!(err.exit_code(), 10);

    // A refusal commits what was written before it (its audit record); an
    // error rolls everything back.
    let refused: Result<()> = store.decide(|tx| {
        tx.set_setting("probe", "refused")?;
        Ok(Verdict::Refused(Error::rejected("no")))
    });
    assert_eq!(
        refused.map_err(|e| e.kind()),
        Err(crate::ErrorKind::Rejected)
    );
    let failed: Result<()> = store.decide(|tx| {
        tx.set_setting("probe", "failed")?;
        Err(Error::storage("boom"))
    });
    assert!(failed.is_err());
    let probe = store.read(|tx| tx.setting("probe")).expect("read");
    assert_eq!(probe.as_deref(), Some("refused"));
}
