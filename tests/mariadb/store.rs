//! One `mariadbd`: the store's life on MariaDB, what fails closed, copies
//! both ways, migrations cut short.

use std::os::unix::fs::PermissionsExt;

use mb2fa_testkit::{
    AUDIT, BACKUP_CODES, Env, LIST, POLICY, STORE, VERIFY, oathtool, run_command, totp_now,
    write_key_file, wrong_codes,
};
use serde_json::Value;

use crate::support::{Db, at, server};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";

#[test]
fn a_database_without_the_schema_is_exit_10_and_left_alone() {
    let Some(server) = server() else { return };
    let db = Db::on(server);
    for (tool, args) in [
        (VERIFY, vec!["--email", ALICE, "--code", "123456"]),
        (LIST, vec![]),
        (BACKUP_CODES, vec!["--email", ALICE]),
    ] {
        let run = db.run(tool, &args);
        run.fail_line(10, tool, "holds no mb-2fa store");
    }
    let tables = server.sql(Some(&db.name), "SHOW TABLES");
    assert_eq!(tables.trim(), "", "no tool created anything: {tables}");
    // A store made on purpose is then used.
    db.run(STORE, &["init", "--json"]).ok_json();
    let run = db.run(VERIFY, &["--email", ALICE, "--code", "123456"]);
    run.fail_line(3, VERIFY, "no 2FA enrollment");
}

#[test]
fn the_lifecycle_on_mariadb_with_an_independent_view_of_the_rows() {
    let Some(server) = server() else { return };
    let db = Db::on(server);
    let e = db.enroll(ALICE);
    // The secret is sealed: the row never holds it in base32 or raw.
    let stored = server.sql(
        Some(&db.name),
        "SELECT HEX(secret), state FROM mb2fa_accounts WHERE email = 'alice@example.com'",
    );
    let raw_hex: String = mb2fa_testkit::decode_secret(&e.secret)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert!(stored.contains("\tpending"), "{stored}");
    assert!(!stored.contains(&raw_hex), "the secret is stored sealed");
    let code = oathtool(&e.secret, 0);
    let run = db.run(VERIFY, &["--json", "--email", ALICE, "--code", &code]);
    assert_eq!(run.ok_json()["activated"], Value::Bool(true));
    db.run(VERIFY, &["--email", ALICE, "--code", &code])
        .fail_line(1, VERIFY, "already used");
    let backup = e.backup_codes[0].clone();
    db.run(VERIFY, &["--email", ALICE, "--code", &backup])
        .expect_code(0);
    db.run(VERIFY, &["--email", ALICE, "--code", &backup])
        .expect_code(1);
    let left = server.sql(
        Some(&db.name),
        "SELECT COUNT(*) FROM mb2fa_backup_codes b JOIN mb2fa_accounts a ON a.id = b.account_id
         WHERE a.email = 'alice@example.com' AND b.used_at IS NULL",
    );
    assert_eq!(left.trim(), "9");
    // Audit rows name the node they were written on.
    let run = db.run(AUDIT, &["--json"]);
    let doc = run.ok_json();
    let records = doc["records"].as_array().expect("records");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert!(
        records.iter().all(|r| r["node"] == host.trim()),
        "every record names this host {host}: {doc}"
    );
    let nodes = server.sql(Some(&db.name), "SELECT DISTINCT node FROM mb2fa_audit");
    assert_eq!(nodes.trim(), host.trim());
}

#[test]
fn passwords_come_from_a_password_file_over_tcp() {
    let Some(server) = server() else { return };
    let db = Db::on(server);
    db.run(STORE, &["init"]).expect_code(0);
    let user = format!("pw_{}", db.name);
    server.create_password_user(&user, "Corr3ct-horse");
    server.sql(
        None,
        &format!("GRANT ALL ON `{}`.* TO '{user}'@'%'", db.name),
    );
    let pw = db.env.path("db.password");
    let write = |text: &str, mode: u32| {
        std::fs::write(&pw, text).expect("write");
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(mode)).expect("chmod");
    };
    let url = format!(
        "{}?password_file={}",
        server.tcp_url(&db.name, &user),
        pw.display()
    );
    write("Corr3ct-horse\n", 0o400);
    let run = run_command(at(&db.env, &url, LIST, &["--json"]), None);
    run.ok_json();
    write("wrong-horse\n", 0o400);
    let run = run_command(at(&db.env, &url, LIST, &[]), None);
    run.fail_line(10, LIST, "access denied");
    run.assert_not_echoed("wrong-horse");
    write("Corr3ct-horse\n", 0o644);
    let run = run_command(at(&db.env, &url, LIST, &[]), None);
    run.fail_line(10, LIST, "password file");
    // No password file: only unix_socket could work, and it is not this.
    let bare = server.tcp_url(&db.name, &user);
    let run = run_command(at(&db.env, &bare, LIST, &[]), None);
    run.fail_line(10, LIST, "access denied");
    // A wrong database name.
    let missing = server.url("no_such_database_here");
    let run = run_command(at(&db.env, &missing, LIST, &[]), None);
    run.fail_line(10, LIST, "no database");
}

#[test]
fn a_newer_schema_and_a_foreign_key_are_exit_10() {
    let Some(server) = server() else { return };
    let db = Db::on(server);
    let e = db.enroll(ALICE);
    // The key of another store.
    let other = Env::new();
    write_key_file(&other.key, &[7u8; 32], 0o400);
    let mut cmd = other.bare_command(VERIFY);
    cmd.args(["--db", &db.url, "--email", ALICE, "--code"])
        .arg(totp_now(&e.secret, 0));
    run_command(cmd, None).fail_line(10, VERIFY, "is not the key of");
    // A newer mb-2fa migrated the store.
    server.sql(
        Some(&db.name),
        "INSERT INTO mb2fa_schema (version, applied_at) VALUES (99, 0)",
    );
    let before = server.sql(Some(&db.name), "SELECT * FROM mb2fa_accounts");
    for (tool, args) in [
        (VERIFY, vec!["--email", ALICE, "--code", "123456"]),
        (LIST, vec![]),
    ] {
        db.run(tool, &args)
            .fail_line(10, tool, "newer than this mb-2fa understands");
    }
    assert_eq!(
        server.sql(Some(&db.name), "SELECT * FROM mb2fa_accounts"),
        before
    );
    let run = db.run(STORE, &["check"]);
    assert_eq!(run.code, 10, "{run}");
}

#[test]
fn a_migration_cut_short_is_finished_by_init() {
    let Some(server) = server() else { return };
    let db = Db::on(server);
    // As if init died after its first two statements: tables, no version.
    server.sql(
        Some(&db.name),
        "CREATE TABLE mb2fa_schema (version INT NOT NULL PRIMARY KEY, applied_at BIGINT NOT NULL) ENGINE=InnoDB;
         CREATE TABLE mb2fa_settings (name VARCHAR(191) NOT NULL PRIMARY KEY, value TEXT NOT NULL) ENGINE=InnoDB",
    );
    db.run(LIST, &[])
        .fail_line(10, LIST, "holds no mb-2fa store");
    db.run(STORE, &["init", "--json"]).ok_json();
    let run = db.run(STORE, &["check", "--json"]);
    let doc = run.ok_json();
    assert_eq!(doc["healthy"], Value::Bool(true), "{run}");
    let names: Vec<&str> = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert!(
        names.contains(&"clock"),
        "check compares the clocks: {names:?}"
    );
    let version = server.sql(Some(&db.name), "SELECT MAX(version) FROM mb2fa_schema");
    assert_eq!(version.trim(), "7");
    // A second init refuses: the store exists now.
    db.run(STORE, &["init"])
        .fail_line(10, STORE, "already holds");
}

#[test]
fn an_upgrade_step_waits_for_the_user_that_may_alter_tables() {
    let Some(server) = server() else { return };
    let db = Db::on(server);
    let e = db.enroll(ALICE);
    db.activate(&e);
    // The store as an mb-2fa of schema 5 left it.
    server.sql(
        Some(&db.name),
        "DROP INDEX mb2fa_backup_codes_unused ON mb2fa_backup_codes;
         DELETE FROM mb2fa_schema WHERE version > 5",
    );
    // The README's everyday user: table grants, the audit trail append-only.
    let user = format!("ev_{}", db.name);
    server.create_password_user(&user, "Everyday-horse");
    for table in [
        "mb2fa_schema",
        "mb2fa_accounts",
        "mb2fa_backup_codes",
        "mb2fa_settings",
        "mb2fa_exemptions",
        "mb2fa_first_seen",
    ] {
        server.sql(
            None,
            &format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON `{}`.{table} TO '{user}'@'%'",
                db.name
            ),
        );
    }
    server.sql(
        None,
        &format!(
            "GRANT SELECT, INSERT ON `{}`.mb2fa_audit TO '{user}'@'%'",
            db.name
        ),
    );
    let pw = db.env.path("db.password");
    std::fs::write(&pw, "Everyday-horse\n").expect("write");
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o400)).expect("chmod");
    let everyday = format!(
        "{}?password_file={}",
        server.tcp_url(&db.name, &user),
        pw.display()
    );
    let before = server.sql(Some(&db.name), "SELECT * FROM mb2fa_accounts");
    let run = run_command(at(&db.env, &everyday, LIST, &[]), None);
    run.fail_line(10, LIST, "INDEX command denied");
    run.fail_line(10, LIST, "upgrades the store from schema 5 to 6");
    let version = server.sql(Some(&db.name), "SELECT MAX(version) FROM mb2fa_schema");
    assert_eq!(version.trim(), "5", "the step was not recorded: {run}");
    assert_eq!(
        server.sql(Some(&db.name), "SELECT * FROM mb2fa_accounts"),
        before
    );
    // The admin's check applies it; the everyday user is then served.
    let run = db.run(STORE, &["check", "--json"]);
    assert_eq!(run.ok_json()["healthy"], Value::Bool(true), "{run}");
    let version = server.sql(Some(&db.name), "SELECT MAX(version) FROM mb2fa_schema");
    assert_eq!(version.trim(), "7");
    let index = server.sql(
        Some(&db.name),
        "SELECT COUNT(*) FROM information_schema.statistics
         WHERE table_schema = DATABASE() AND index_name = 'mb2fa_backup_codes_unused'",
    );
    assert_eq!(index.trim(), "2", "(account_id, used_at)");
    let run = run_command(at(&db.env, &everyday, LIST, &["--json"]), None);
    assert_eq!(
        run.ok_json()["accounts"][0]["backup_codes_left"],
        10,
        "{run}"
    );
    let mut verify = at(
        &db.env,
        &everyday,
        VERIFY,
        &["--json", "--email", ALICE, "--code"],
    );
    verify.arg(&e.backup_codes[0]);
    run_command(verify, None).ok_json();
}

/// What `list --json` says of every account, without the volatile parts.
fn listing(env: &Env, url: &str) -> Vec<Value> {
    let run = run_command(at(env, url, LIST, &["--json"]), None);
    run.ok_json()["accounts"]
        .as_array()
        .expect("accounts")
        .clone()
}

#[test]
fn copy_moves_everything_from_sqlite_to_mariadb_and_back() {
    let Some(server) = server() else { return };
    let env = Env::new();
    let a = env.enroll(ALICE);
    let used = oathtool(&a.secret, 0);
    env.verify_json(ALICE, &used).ok_json();
    env.verify_json(ALICE, &a.backup_codes[0]).ok_json();
    let b = env.enroll(BOB);
    for code in wrong_codes(&b.secret, 5) {
        env.run(VERIFY, ["--email", BOB, "--code", &code]);
    }
    // The lock the five failures set lasts 30 s; an hour, so that it surely
    // outlasts the copies below on a slow machine.
    let locked = rusqlite::Connection::open(&env.db)
        .expect("open the SQLite store")
        .execute(
            "UPDATE accounts SET locked_until = locked_until + 3570 WHERE email = ?1 AND failed_attempts = 5 AND locked_until IS NOT NULL",
            [BOB],
        )
        .expect("extend the lock");
    assert_eq!(locked, 1, "five wrong codes locked bob");
    env.run(POLICY, ["set", "--require-all", "on", "--grace-days", "7"])
        .expect_code(0);
    env.run(
        POLICY,
        [
            "exempt",
            "--email",
            "svc@example.com",
            "--kind",
            "service",
            "--reason",
            "monitoring",
        ],
    )
    .expect_code(0);
    let before = env.accounts();

    let db = Db::on(server);
    let run = env.run(STORE, ["copy", "--to", &db.url, "--json"]);
    let doc = run.ok_json();
    assert_eq!(doc["copied"]["accounts"], 2, "{run}");
    assert_eq!(doc["copied"]["backup_codes"], 20, "{run}");
    // The MariaDB store is the SQLite one: same key, same rows.
    let on_maria = |tool: &str, args: &[&str]| run_command(at(&env, &db.url, tool, args), None);
    assert_eq!(listing(&env, &db.url), before);
    on_maria(VERIFY, &["--email", ALICE, "--code", &used]).fail_line(1, VERIFY, "already used");
    on_maria(VERIFY, &["--email", ALICE, "--code", &a.backup_codes[0]]).expect_code(1);
    on_maria(VERIFY, &["--email", ALICE, "--code", &a.backup_codes[1]]).expect_code(0);
    on_maria(VERIFY, &["--email", BOB, "--code", &totp_now(&b.secret, 0)]).expect_code(4);
    let policy = on_maria(POLICY, &["show", "--json"]).ok_json();
    assert_eq!(
        policy["policy"]["require_all"],
        Value::Bool(true),
        "{policy}"
    );
    assert_eq!(
        policy["exemptions"][0]["email"], "svc@example.com",
        "{policy}"
    );
    let audit = on_maria(AUDIT, &["--json", "--limit", "1000"]).ok_json();
    let n = audit["records"].as_array().expect("records").len();
    assert!(n >= 12, "the audit trail came along ({n} records)");
    assert_eq!(
        audit["records"][0]["action"], "verify",
        "newest first: {audit}"
    );

    // A target with accounts is refused; nothing changes there.
    let snapshot = server.sql(Some(&db.name), "SELECT * FROM mb2fa_accounts ORDER BY id");
    env.run(STORE, ["copy", "--to", &db.url])
        .fail_line(5, STORE, "already holds 2 account");
    assert_eq!(
        server.sql(Some(&db.name), "SELECT * FROM mb2fa_accounts ORDER BY id"),
        snapshot
    );

    // And back, to a new SQLite file.
    let back = env.path("back/2fa.db");
    std::fs::create_dir(env.path("back")).expect("mkdir");
    std::fs::set_permissions(env.path("back"), std::fs::Permissions::from_mode(0o700))
        .expect("chmod");
    let run = run_command(
        at(
            &env,
            &db.url,
            STORE,
            &["copy", "--to", back.to_str().expect("utf-8")],
        ),
        None,
    );
    run.expect_code(0);
    let back_url = back.to_str().expect("utf-8");
    let listed = listing(&env, back_url);
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["backup_codes_left"], 8, "{listed:?}");
    run_command(
        at(
            &env,
            back_url,
            VERIFY,
            &["--email", ALICE, "--code", &a.backup_codes[1]],
        ),
        None,
    )
    .expect_code(1);
    run_command(
        at(
            &env,
            back_url,
            VERIFY,
            &["--email", ALICE, "--code", &a.backup_codes[2]],
        ),
        None,
    )
    .expect_code(0);
    // --force replaces the accounts of a target that has some.
    let run = run_command(
        at(
            &env,
            &db.url,
            STORE,
            &["copy", "--to", back_url, "--force", "--json"],
        ),
        None,
    );
    assert_eq!(run.ok_json()["copied"]["accounts"], 2);
    assert_eq!(listing(&env, back_url)[0]["backup_codes_left"], 8);
}
