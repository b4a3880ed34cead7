//! Backups of a MariaDB store (issue 16; README "Backups"): `mb-2fa-store
//! backup` refuses one and points to the recipe, and the recipe itself,
//! `mariadb-dump --single-transaction` of the `mb2fa_%` tables while
//! verifications run, restored with the `mariadb` client into a fresh
//! database, gives a store that `check` passes and that keeps the old state.

use std::path::Path;
use std::process::{Command, Stdio};

use mb2fa_testkit::mariadb::Server;
use mb2fa_testkit::{STORE, VERIFY, oathtool, run_all, totp_now};

use crate::support::{Db, at, server};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

/// The README's recipe, as root over the server's socket: the `mb2fa_%`
/// tables of `db`, from one snapshot, into `out`.
fn dump(server: &Server, db: &str, out: &Path) {
    let tables = server.sql(
        None,
        &format!(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = '{db}' AND table_name LIKE 'mb2fa\\_%'"
        ),
    );
    let tables: Vec<&str> = tables.split_whitespace().collect();
    assert!(tables.len() >= 7, "the store's tables: {tables:?}");
    let file = std::fs::File::create(out).expect("dump file");
    let status = Command::new("mariadb-dump")
        .args(["--no-defaults", "-u", "root"])
        .arg("-S")
        .arg(&server.socket)
        .args(["--single-transaction", "--skip-add-locks", "--hex-blob", db])
        .args(&tables)
        .stdout(file)
        .stderr(Stdio::inherit())
        .status()
        .expect("run mariadb-dump");
    assert!(status.success(), "mariadb-dump failed: {status}");
}

/// `mariadb DB < dump`, as the README restores it.
fn load(server: &Server, db: &str, dump: &Path) {
    let status = Command::new("mariadb")
        .args(["--no-defaults", "-u", "root"])
        .arg("-S")
        .arg(&server.socket)
        .arg(db)
        .stdin(std::fs::File::open(dump).expect("open dump"))
        .status()
        .expect("run mariadb");
    assert!(status.success(), "mariadb < dump failed: {status}");
}

fn count(server: &Server, db: &str, sql: &str) -> i64 {
    server
        .sql(Some(db), sql)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Spent backup codes and their audit records: one transaction each, so a
/// consistent snapshot has as many of one as of the other.
fn spends_and_records(server: &Server, db: &str) -> (i64, i64) {
    (
        count(
            server,
            db,
            "SELECT COUNT(*) FROM mb2fa_backup_codes WHERE used_at IS NOT NULL",
        ),
        count(
            server,
            db,
            "SELECT COUNT(*) FROM mb2fa_audit WHERE action = 'verify' AND outcome = 'accepted' AND detail LIKE '%backup code%'",
        ),
    )
}

#[test]
fn store_backup_refuses_mariadb_and_points_to_the_recipe() {
    let Some(server) = server() else { return };
    let db = Db::on(server);
    db.run(STORE, &["init"]).expect_code(0);
    let file = db.env.path("b.db");
    let run = db.run(STORE, &["backup", &file.display().to_string(), "--json"]);
    let message = run.fail_json(2, "usage");
    assert!(
        message.contains("mariadb-dump --single-transaction") && message.contains("mb2fa_%"),
        "{run}"
    );
    assert!(!file.exists(), "nothing was written");
}

#[test]
fn the_readme_dump_taken_during_verifications_restores_the_old_state() {
    let Some(server) = server() else { return };
    let db = Db::on(server);
    let alice = db.enroll(ALICE);
    db.activate(&alice);
    let bob = db.enroll(BOB);
    db.activate(&bob);
    // Before the dump: alice's replay floor moves to the next step, and
    // she spends a backup code.
    let floor_code = totp_now(&alice.secret, 1);
    db.run(VERIFY, &["--json", "--email", ALICE, "--code", &floor_code])
        .ok_json();
    let spent = alice.backup_codes[0].clone();
    db.run(VERIFY, &["--json", "--email", ALICE, "--code", &spent])
        .ok_json();

    // Bob's backup codes are spent while the dump runs.
    let burst: Vec<Command> = bob.backup_codes[..8]
        .iter()
        .map(|code| db.command(VERIFY, &["--json", "--email", BOB, "--code", code]))
        .collect();
    let out = db.env.path("2fa.sql");
    let runs = std::thread::scope(|s| {
        let verifying = s.spawn(|| run_all(burst, None));
        dump(server, &db.name, &out);
        verifying.join().expect("verifications")
    });
    for run in &runs {
        assert_eq!(run.code, 0, "no verification failed during the dump\n{run}");
    }
    // After the dump: bob is disabled, alice's codes regenerated.
    db.run(mb2fa_testkit::DISABLE, &["--json", "--yes", "--email", BOB])
        .ok_json();
    db.run(mb2fa_testkit::BACKUP_CODES, &["--json", "--email", ALICE])
        .ok_json();

    let restored = server.create_database();
    load(server, &restored, &out);
    let (spent_n, records) = spends_and_records(server, &restored);
    assert_eq!(spent_n, records, "the dump is one snapshot");
    assert!(
        (1..=9).contains(&spent_n),
        "alice's one and 0..=8 of bob's: {spent_n}"
    );
    let url = server.url(&restored);
    let run = mb2fa_testkit::run_command(at(&db.env, &url, STORE, &["check"]), None);
    run.expect_code(0);
    let verify = |email: &str, code: &str| {
        mb2fa_testkit::run_command(
            at(
                &db.env,
                &url,
                VERIFY,
                &["--json", "--email", email, "--code", code],
            ),
            None,
        )
    };
    // The old state: alice's floor holds, her spent code stays spent, an
    // unspent one of her old codes works; bob is there and verifies.
    let message = verify(ALICE, &floor_code).fail_json(1, "rejected");
    assert!(message.contains("already used"), "{message}");
    verify(ALICE, &spent).fail_json(1, "rejected");
    let doc = verify(ALICE, &alice.backup_codes[1]).ok_json();
    assert_eq!(doc["method"], "backup_code", "{doc}");
    let doc = verify(BOB, &oathtool(&bob.secret, 1)).ok_json();
    assert_eq!(doc["method"], "totp", "{doc}");
    // The live store went on without it: bob is disabled there.
    db.run(
        VERIFY,
        &["--json", "--email", BOB, "--code", &bob.backup_codes[9]],
    )
    .fail_json(3, "not_enrolled");
}
