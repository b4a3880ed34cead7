//! `mb-2fa-store backup FILE` (issue 16; SPEC "Storage"; README "Backups"):
//! a consistent, checked copy of an SQLite store, made while logins run;
//! restore by copying the file back brings back the old state; what FILE
//! may be; the key file is not in the backup.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mb2fa_testkit::{
    BACKUP_CODES, DISABLE, Env, LIST, Run, STORE, VERIFY, contains_bytes, mode, oathtool, run_all,
    totp_now, with_suffix,
};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";
const DAVE: &str = "dave@example.com";

/// `backup FILE [--json]`.
fn args(file: &Path, json: bool) -> Vec<OsString> {
    let mut v = vec![OsString::from("backup"), file.as_os_str().to_owned()];
    if json {
        v.push("--json".into());
    }
    v
}

/// `mb-2fa-store backup FILE --json`, which must succeed: its document.
#[track_caller]
fn backup(env: &Env, file: &Path) -> Value {
    let run = env.run(STORE, args(file, true));
    run.ok_json()
}

/// The backup file opened read-only, bypassing the tools.
fn open_copy(file: &Path) -> Connection {
    Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open the backup")
}

fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check")
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn emails(conn: &Connection) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT email FROM accounts ORDER BY email")
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

fn last_step(conn: &Connection, email: &str) -> Option<i64> {
    conn.query_row(
        "SELECT last_step FROM accounts WHERE email = ?1",
        [email],
        |r| r.get(0),
    )
    .expect("last_step")
}

/// A tool run against another database (a backup) with `env`'s key.
fn run_at(env: &Env, db: &Path, tool: &str, args: &[&str]) -> Run {
    let mut cmd = env.bare_command(tool);
    cmd.arg("--db").arg(db).args(args);
    mb2fa_testkit::run_command(cmd, None)
}

/// The restore of README "Backups", with the writers stopped: the database
/// and its -wal/-shm moved aside, the backup copied into place, mode 0600.
fn restore(env: &Env, file: &Path) {
    let aside = env.path("2fa.db.before-restore");
    for suffix in ["", "-wal", "-shm"] {
        let from = with_suffix(&env.db, suffix);
        if from.exists() {
            std::fs::rename(&from, with_suffix(&aside, suffix)).expect("move aside");
        }
    }
    std::fs::copy(file, &env.db).expect("copy the backup into place");
    std::fs::set_permissions(&env.db, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

fn leftovers(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".mb-2fa-backup-"))
        })
        .collect()
}

#[test]
fn back_up_change_restore_and_the_old_state_is_back() {
    let env = Env::new();
    let alice = env.enroll(ALICE);
    env.activate(&alice);
    let bob = env.enroll(BOB);
    env.activate(&bob);
    let carol = env.enroll(CAROL);
    env.activate(&carol);
    // Alice's replay floor before the backup: the next step's code.
    let floor_code = totp_now(&alice.secret, 1);
    env.verify_json(ALICE, &floor_code).ok_json();
    let floor = last_step(&env.connect(), ALICE).expect("alice has a floor");

    let dir = env.path("backups");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let file = dir.join("2fa-backup.db");
    let doc = backup(&env, &file);
    assert_eq!(doc["accounts"], 3, "{doc}");
    assert_eq!(doc["key_included"], false, "{doc}");
    assert_eq!(doc["integrity"], "ok", "{doc}");
    assert_eq!(doc["file"], file.to_string_lossy().as_ref(), "{doc}");
    assert_eq!(mode(&file), 0o600);
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));

    // Change things after the backup.
    let spent = carol.backup_codes[0].clone();
    env.verify_json(CAROL, &spent).ok_json();
    let old_alice_code = alice.backup_codes[1].clone();
    let run = env.run(BACKUP_CODES, ["--json", "--email", ALICE]);
    let new_alice_codes: Vec<String> = run.ok_json()["backup_codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect();
    env.run(DISABLE, ["--json", "--yes", "--email", BOB])
        .ok_json();
    let dave = env.enroll(DAVE);
    env.activate(&dave);
    env.verify_json(CAROL, &totp_now(&carol.secret, 1))
        .ok_json();
    assert_eq!(env.accounts().len(), 3, "alice, carol, dave");

    restore(&env, &file);
    let run = env.run(STORE, ["check"]);
    run.expect_code(0);

    let listed: Vec<String> = env
        .accounts()
        .iter()
        .map(|a| a["email"].as_str().expect("email").to_string())
        .collect();
    assert_eq!(listed, [ALICE, BOB, CAROL], "dave is gone, bob is back");
    env.verify_json(DAVE, &totp_now(&dave.secret, 0))
        .fail_json(3, "not_enrolled");
    // Bob, disabled after the backup, verifies again with a fresh code.
    let run = env.verify_json(BOB, &oathtool(&bob.secret, 1));
    assert_eq!(run.ok_json()["method"], "totp", "{run}");
    // Carol's backup code spent after the backup works again (once).
    let run = env.verify_json(CAROL, &spent);
    assert_eq!(run.ok_json()["method"], "backup_code", "{run}");
    env.verify_json(CAROL, &spent).fail_json(1, "rejected");
    // Alice has her old backup codes again, not the regenerated ones.
    env.verify_json(ALICE, &new_alice_codes[0])
        .fail_json(1, "rejected");
    env.verify_json(ALICE, &old_alice_code).ok_json();
    // Alice's replay floor from before the backup holds.
    assert_eq!(last_step(&env.connect(), ALICE), Some(floor));
    let message = env.verify_json(ALICE, &floor_code).fail_json(1, "rejected");
    assert!(
        message.contains("already used"),
        "the code used before the backup is a replay: {message}"
    );
}

#[test]
fn the_backup_holds_what_is_still_in_the_wal_and_not_the_key() {
    let env = Env::new();
    let alice = env.enroll(ALICE);
    env.activate(&alice);
    // A login's write stays in 2fa.db-wal (no checkpoint on the hot path).
    let code = totp_now(&alice.secret, 1);
    env.verify_json(ALICE, &code).ok_json();
    let wal = with_suffix(&env.db, "-wal");
    assert!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 0,
        "the last verification is in the WAL"
    );
    let live = last_step(&env.connect(), ALICE);
    let file = env.path("copy.db");
    let run = env.run(STORE, args(&file, false));
    run.expect_code(0);
    assert!(run.stdout.contains("1 account(s)"), "{run}");
    assert!(run.stdout.contains(&file.display().to_string()), "{run}");
    assert!(run.stdout.contains("NOT in the backup"), "{run}");
    let copy = open_copy(&file);
    assert_eq!(
        last_step(&copy, ALICE),
        live,
        "the WAL's content is in the copy"
    );
    let mode: String = copy
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "delete", "the backup is one self-contained file");
    drop(copy);
    assert!(!with_suffix(&file, "-wal").exists());
    // No key in it, and without the key the copy opens no secret.
    let key = std::fs::read(&env.key).expect("key");
    assert!(!contains_bytes(&std::fs::read(&file).expect("copy"), &key));
    let mut cmd = env.bare_command(VERIFY);
    cmd.env("MB2FA_KEY_FILE", env.path("elsewhere/2fa.key"))
        .arg("--db")
        .arg(&file)
        .args([
            "--json",
            "--email",
            ALICE,
            "--code",
            &totp_now(&alice.secret, 0),
        ]);
    mb2fa_testkit::run_command(cmd, None).fail_json(10, "storage");
    // With the key it is a store like any other.
    let run = run_at(&env, &file, STORE, &["check"]);
    run.expect_code(0);
}

#[test]
fn file_must_be_new_in_an_existing_directory_and_not_the_store() {
    let env = Env::new();
    let alice = env.enroll(ALICE);
    env.activate(&alice);
    let store_before = env.snapshot();
    let fail = |file: &Path, code: i32, kind: &str, fragment: &str| {
        let run = env.run(STORE, args(file, true));
        let message = run.fail_json(code, kind);
        assert!(message.contains(fragment), "{fragment:?}\n{run}");
        let run = env.run(STORE, args(file, false));
        run.fail_line(code, STORE, fragment);
    };
    // An existing file is never replaced.
    let existing = env.path("existing.db");
    std::fs::write(&existing, b"precious").expect("write");
    fail(&existing, 5, "conflict", "already exists");
    assert_eq!(std::fs::read(&existing).expect("read"), b"precious");
    // Nor is a symlink followed, dangling or not.
    let target = env.path("target.db");
    let link = env.path("link.db");
    std::os::unix::fs::symlink(&target, &link).expect("symlink");
    fail(&link, 5, "conflict", "symbolic link");
    assert!(!target.exists(), "the symlink was not followed");
    std::fs::write(&target, b"x").expect("write");
    fail(&link, 5, "conflict", "symbolic link");
    assert_eq!(std::fs::read(&target).expect("read"), b"x");
    // The store itself, by its path, another spelling, or its WAL.
    fail(&env.db, 2, "usage", "is the store itself");
    fail(Path::new("./2fa.db"), 2, "usage", "is the store itself");
    std::fs::create_dir(env.path("sub")).expect("mkdir");
    fail(
        &env.path("sub/../2fa.db"),
        2,
        "usage",
        "is the store itself",
    );
    fail(
        &with_suffix(&env.db, "-wal"),
        2,
        "usage",
        "is the store itself",
    );
    // A missing directory, a directory, a file that is no directory, no name.
    fail(&env.path("missing/dir/b.db"), 2, "usage", "does not exist");
    fail(env.dir.path(), 2, "usage", "is a directory");
    fail(&existing.join("b.db"), 2, "usage", "is not a directory");
    fail(Path::new(""), 2, "usage", "names no file");
    fail(Path::new("/"), 2, "usage", "names no file");
    // A directory others may write, without the sticky bit.
    let loose = env.path("loose");
    std::fs::create_dir(&loose).expect("mkdir");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    fail(
        &loose.join("b.db"),
        10,
        "storage",
        "writable by group or others",
    );
    assert_eq!(std::fs::read_dir(&loose).expect("ls").count(), 0);
    assert_eq!(env.snapshot(), store_before, "nothing touched the store");
    // A store that is not there: exit 10, and no backup appears.
    let other = Env::new();
    let file = other.path("b.db");
    let run = other.run(STORE, args(&file, true));
    run.fail_json(10, "storage");
    assert!(!file.exists());
    assert!(leftovers(other.dir.path()).is_empty());
    // A MariaDB store is dumped with mariadb-dump (no server needed to say so).
    let url = format!(
        "mariadb://root@localhost/mb2fa?socket={}",
        env.path("no.sock").display()
    );
    let mut cmd = env.bare_command(STORE);
    cmd.args(["--db", &url, "--json", "backup"])
        .arg(env.path("m.db"));
    let run = mb2fa_testkit::run_command(cmd, None);
    let message = run.fail_json(2, "usage");
    assert!(
        message.contains("mariadb-dump --single-transaction") && message.contains("Backups"),
        "{run}"
    );
    assert!(!env.path("m.db").exists());
    // No argument, or two: usage.
    env.run(STORE, ["backup"]).expect_code(2);
    env.run(STORE, ["backup", "a.db", "b.db"]).expect_code(2);
}

#[test]
fn through_sudo_for_a_non_root_caller_file_is_refused() {
    let env = Env::new();
    let file = env.path("b.db");
    // No --db and no MB2FA_* variable: FILE is what is refused.
    let mut cmd = env.bare_command(STORE);
    cmd.args(args(&file, true))
        .env_remove("MB2FA_KEY_FILE")
        .env_remove("MB2FA_SYSLOG_SOCKET")
        .env("SUDO_UID", "1000")
        .env("SUDO_USER", "www-data");
    let run = mb2fa_testkit::run_command(cmd, None);
    let message = run.fail_json(2, "usage");
    assert!(message.contains("FILE is not accepted"), "{run}");
    assert!(!file.exists());
}

/// A backup taken again and again while many verifications (TOTP codes and
/// backup codes, each a write) run on the same store: every copy is
/// consistent (integrity, schema, every account, and each spent backup
/// code's audit record in the same copy as the spend), opens with the tools,
/// and no verification failed (none is exit 10 because of a backup).
#[test]
fn backups_during_a_burst_of_verifications_are_consistent_and_block_no_login() {
    const ACCOUNTS: usize = 6;
    const CODES_EACH: usize = 4;
    let env = Arc::new(Env::new());
    let enrolled: Vec<_> = (0..ACCOUNTS)
        .map(|i| {
            let e = env.enroll(&format!("user{i}@example.com"));
            env.activate(&e);
            e
        })
        .collect();
    let dir = env.path("backups");
    std::fs::create_dir(&dir).expect("mkdir");
    let stop = Arc::new(AtomicBool::new(false));
    let made: Arc<Mutex<Vec<PathBuf>>> = Arc::default();
    let backups = {
        let (env, stop, made, dir) = (
            Arc::clone(&env),
            Arc::clone(&stop),
            Arc::clone(&made),
            dir.clone(),
        );
        std::thread::spawn(move || {
            let mut runs = Vec::new();
            let mut n = 0;
            // At least two, and on until the burst is over.
            while n < 2 || !stop.load(Ordering::SeqCst) {
                let file = dir.join(format!("b{n}.db"));
                let run = env.run(STORE, args(&file, true));
                made.lock().expect("lock").push(file);
                runs.push(run);
                n += 1;
            }
            runs
        })
    };
    let mut cmds = Vec::new();
    for e in &enrolled {
        cmds.push(env.command(
            VERIFY,
            [
                "--json",
                "--email",
                &e.email,
                "--code",
                &totp_now(&e.secret, 1),
            ],
        ));
        for code in &e.backup_codes[..CODES_EACH] {
            cmds.push(env.command(VERIFY, ["--json", "--email", &e.email, "--code", code]));
        }
    }
    // Twice over, so the burst lasts long enough for several backups: the
    // second round's codes are all replays or spent (exit 1), still writes.
    let mut again = Vec::new();
    for e in &enrolled {
        for code in &e.backup_codes[..CODES_EACH] {
            again.push(env.command(VERIFY, ["--json", "--email", &e.email, "--code", code]));
        }
    }
    let first = run_all(cmds, None);
    let second = run_all(again, None);
    stop.store(true, Ordering::SeqCst);
    let backup_runs = backups.join().expect("backup thread");
    for run in &first {
        assert_eq!(run.code, 0, "every first use is accepted\n{run}");
    }
    for run in &second {
        assert_eq!(
            run.code, 1,
            "a spent backup code is rejected, not exit 10\n{run}"
        );
    }
    for run in &backup_runs {
        let doc = run.ok_json();
        assert_eq!(doc["accounts"], ACCOUNTS as u64, "{run}");
    }
    let expected: Vec<String> = {
        let mut v: Vec<String> = enrolled.iter().map(|e| e.email.clone()).collect();
        v.sort();
        v
    };
    let spends_and_records = |conn: &Connection| {
        (
            count(
                conn,
                "SELECT count(*) FROM backup_codes WHERE used_at IS NOT NULL",
            ),
            count(
                conn,
                "SELECT count(*) FROM audit WHERE action = 'verify' AND outcome = 'accepted' AND detail LIKE '%backup code%'",
            ),
        )
    };
    let (spent, records) = spends_and_records(&env.connect());
    assert_eq!(spent, (ACCOUNTS * CODES_EACH) as i64);
    assert_eq!(records, spent, "one accepted-backup-code record per spend");
    let files = made.lock().expect("lock").clone();
    assert!(files.len() >= 2);
    for file in &files {
        let conn = open_copy(file);
        assert_eq!(integrity(&conn), "ok", "{}", file.display());
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("user_version");
        assert_eq!(version, env.user_version(), "{}", file.display());
        assert_eq!(emails(&conn), expected, "{}", file.display());
        let (spent, records) = spends_and_records(&conn);
        assert_eq!(
            spent,
            records,
            "{}: a spend and its audit record are one transaction, so one snapshot has both or neither",
            file.display()
        );
        drop(conn);
        assert_eq!(mode(file), 0o600);
        let run = run_at(&env, file, LIST, &["--json"]);
        assert_eq!(
            run.ok_json()["accounts"]
                .as_array()
                .expect("accounts")
                .len(),
            ACCOUNTS
        );
        run_at(&env, file, STORE, &["check"]).expect_code(0);
    }
    assert!(leftovers(&dir).is_empty(), "{:?}", leftovers(&dir));
}

/// A backup killed (SIGKILL) at any moment leaves no FILE, or a complete
/// one: never a half file under FILE. The store is made large (audit rows
/// written directly) so that the kills land while the copy is being made.
#[test]
fn a_killed_backup_leaves_no_half_file() {
    let env = Env::new();
    let alice = env.enroll(ALICE);
    env.activate(&alice);
    {
        let conn = env.connect();
        let filler = "x".repeat(2000);
        conn.execute_batch("BEGIN").expect("begin");
        for i in 0..12_000 {
            conn.execute(
                "INSERT INTO audit (at, tool, action, email, outcome, actor, detail, node, via)
                 VALUES (?1, 'test', 'check', NULL, 'ok', 'root', ?2, 'n', '')",
                rusqlite::params![i, filler],
            )
            .expect("filler row");
        }
        conn.execute_batch("COMMIT; PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("commit");
    }
    let dir = env.path("backups");
    std::fs::create_dir(&dir).expect("mkdir");
    let mut killed = 0;
    for (i, delay_ms) in [0u64, 5, 15, 30, 60, 100, 150, 250, 400].iter().enumerate() {
        let file = dir.join(format!("k{i}.db"));
        let mut cmd = env.command(STORE, args(&file, false));
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = cmd.spawn().expect("spawn backup");
        std::thread::sleep(std::time::Duration::from_millis(*delay_ms));
        let _ = child.kill();
        let status = child.wait().expect("wait");
        if status.code().is_none() {
            killed += 1;
        }
        if file.exists() {
            let conn = open_copy(&file);
            assert_eq!(integrity(&conn), "ok", "{} after a kill", file.display());
            assert_eq!(emails(&conn), [ALICE]);
            assert_eq!(
                count(&conn, "SELECT count(*) FROM audit WHERE tool = 'test'"),
                12_000
            );
        } else {
            assert!(
                status.code().is_none(),
                "a backup that was not killed made its file"
            );
        }
    }
    assert!(
        killed > 0,
        "no backup was killed while it ran: the store is too small"
    );
    // The store is intact and a backup still works.
    env.run(STORE, ["check"]).expect_code(0);
    backup(&env, &dir.join("after.db"));
}
