//! A lost or foreign database fails closed (issue 12, item 5; SPEC
//! "Storage"): with the key present and the database gone, or with a valid
//! SQLite file that is not an mb-2fa database, every tool exits 10 and
//! creates nothing. Only `mb-2fa-store init` and the first enrollment on a
//! fresh appliance (no key, no database) make a store.

use mb2fa_testkit::{ENABLE, Env, POLICY, STORE, VERIFY, db_bytes};

const ALICE: &str = "alice@example.com";

/// Every way a tool could turn a missing database into a new one.
fn attempts() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (POLICY, vec!["--json", "set", "--require-all", "on"]),
        (
            POLICY,
            vec![
                "--json", "exempt", "--email", ALICE, "--kind", "service", "--reason", "x",
            ],
        ),
        (POLICY, vec!["--json", "check", "--email", ALICE]),
        (ENABLE, vec!["--json", "--qr", "none", "--email", ALICE]),
        (VERIFY, vec!["--json", "--email", ALICE, "--code", "123456"]),
    ]
}

#[test]
fn key_present_database_gone_is_exit_10_and_creates_nothing() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(mb2fa_testkit::with_suffix(&env.db, suffix));
    }
    for (tool, args) in attempts() {
        let run = env.run(tool, &args);
        let message = run.fail_json(10, "storage");
        assert!(
            message.contains("lost") || message.contains("no 2FA database"),
            "{run}"
        );
        assert!(!env.db.exists(), "{tool} created a database\n{run}");
    }
    // The admin decides to start over: init does it, once.
    env.init();
    let run = env.run(STORE, ["init", "--json"]);
    assert!(
        run.fail_json(10, "storage").contains("already exists"),
        "{run}"
    );
    env.run(POLICY, ["--json", "set", "--require-all", "on"])
        .ok_json();
}

#[test]
fn a_valid_but_empty_sqlite_file_is_foreign_not_unenrolled() {
    let env = Env::new();
    rusqlite::Connection::open(&env.db)
        .expect("open")
        .execute_batch("PRAGMA page_size=4096; VACUUM;")
        .expect("vacuum");
    std::fs::set_permissions(&env.db, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let before = db_bytes(&env.db);
    for (tool, args) in attempts() {
        let run = env.run(tool, &args);
        let message = run.fail_json(10, "storage");
        assert!(
            message.contains("not an initialised mb-2fa database"),
            "{run}"
        );
        assert_eq!(db_bytes(&env.db), before, "{tool} changed the file\n{run}");
    }
}

#[test]
fn store_check_says_what_is_wrong() {
    let env = Env::new();
    let run = env.run(STORE, ["check", "--json"]);
    assert_eq!(run.code, 10, "{run}");
    assert_eq!(run.json()["healthy"], false, "{run}");
    assert!(!env.db.exists(), "check created a database\n{run}");
    let alice = env.enroll(ALICE);
    env.activate(&alice);
    let run = env.run(STORE, ["check"]);
    run.expect_code(0);
    for name in ["open", "schema", "integrity", "key", "secrets"] {
        assert!(
            run.stdout
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(name)),
            "{run}"
        );
    }
    // A tampered secret: check fails on it (exit 10) and names the account.
    let mut blob = env.stored_secret(ALICE);
    let last = blob.len() - 1;
    blob[last] ^= 1;
    env.connect()
        .execute(
            "UPDATE accounts SET secret = ?1 WHERE email = ?2",
            rusqlite::params![blob, ALICE],
        )
        .expect("tamper");
    let run = env.run(STORE, ["check", "--json"]);
    assert_eq!(run.code, 10, "{run}");
    let doc = run.json();
    assert_eq!(doc["healthy"], false, "{run}");
    let secrets = doc["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "secrets")
        .expect("a secrets check")
        .clone();
    assert_eq!(secrets["ok"], false, "{run}");
    assert!(
        secrets["detail"].as_str().expect("detail").contains(ALICE),
        "{run}"
    );
}
