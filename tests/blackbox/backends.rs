//! The whole black-box suite again, against MariaDB: this test re-runs this
//! very test binary with `MB2FA_TEST_STORE=mariadb`, so every tool run of
//! every test below gets `--db mariadb://…` (a fresh database per test on a
//! `mariadbd` the child starts) instead of an SQLite file.
//!
//! Left out are only the tests that look inside the SQLite file itself:
//! they tamper with it, seed or age it with rusqlite, or are about its path
//! and modes. The MariaDB counterparts of those promises (fail closed on a
//! missing or foreign schema, a newer schema, migrations, crashes) are in
//! `tests/mariadb`.

use std::process::Command;

use mb2fa_testkit::mariadb;

/// Modules and tests that are about the SQLite file, with why.
const SQLITE_ONLY: &[(&str, &str)] = &[
    ("at_rest::", "reads the SQLite file's bytes and pages"),
    (
        "permissions::",
        "owner and mode of the database file and directory",
    ),
    ("lost_store::", "a deleted or emptied SQLite file"),
    ("planted::", "values planted with rusqlite"),
    (
        "migration::",
        "SQLite schema versions 1 to 7 (PRAGMA user_version)",
    ),
    (
        "db_writer::",
        "a writer with rusqlite holding SQLite's locks",
    ),
    ("list_stream::", "seeds thousands of rows with rusqlite"),
    ("backends::", "this test itself"),
    (
        "rekey::a_copy_from_before_the_rotation_still_opens_and_is_resealed_on_request",
        "copies the SQLite file (VACUUM INTO) and restores it",
    ),
    (
        "rekey::finish_is_refused_while_a_secret_still_needs_the_old_key",
        "plants a row with rusqlite",
    ),
    (
        "audit::no_audit_row_holds_a_code_or_the_secret",
        "greps the SQLite file",
    ),
    (
        "audit::the_audit_table_is_append_only",
        "SQLite's triggers (MariaDB: grants)",
    ),
    (
        "environment::through_sudo_for_a_non_root_user_no_file_is_taken_from_the_caller",
        "SQLite paths",
    ),
    (
        "extremes::a_lock_in_the_far_future",
        "plants a value with rusqlite",
    ),
    (
        "extremes::an_impossible_grace_period",
        "plants a value with rusqlite",
    ),
    (
        "json::a_directory_as_database",
        "an SQLite path that is a directory",
    ),
    (
        "json::a_file_that_is_not_a_database",
        "a non-SQLite file at the path",
    ),
    ("json::a_missing_database", "a missing SQLite file"),
    (
        "lockout::after_the_lock_runs_out",
        "ages the lock with rusqlite",
    ),
    (
        "login_check::the_readme_snippet",
        "the README's SQLite paths",
    ),
    (
        "backup::",
        "mb-2fa-store backup copies an SQLite file (MariaDB: tests/mariadb/backup.rs)",
    ),
    ("options::db_wins_over_mb2fa_db", "two SQLite paths"),
    (
        "policy::the_grace_period_runs_out",
        "ages the grace period with rusqlite",
    ),
    (
        "quiet::store_init_and_check_say_only_what_failed",
        "SQLite file checks",
    ),
    (
        "smoke::store_init_creates_once",
        "an SQLite file created by init",
    ),
];

#[test]
fn whole_suite_on_mariadb() {
    if std::env::var_os("MB2FA_TEST_STORE").is_some() {
        return;
    }
    if !mariadb::available() {
        eprintln!(
            "MariaDB is not installed here: the suite ran on SQLite only (CI sets MB2FA_REQUIRE_MARIADB=1)"
        );
        return;
    }
    let exe = std::env::current_exe().expect("this test binary");
    let mut cmd = Command::new(exe);
    cmd.env("MB2FA_TEST_STORE", "mariadb")
        .args(["--test-threads=2", "-q"]);
    for (skip, _why) in SQLITE_ONLY {
        cmd.args(["--skip", skip]);
    }
    let out = cmd.output().expect("run the suite on MariaDB");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout
        .lines()
        .filter(|l| l.starts_with("test result:"))
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!("black-box suite on MariaDB: {summary}");
    assert!(
        out.status.success() && summary.contains(" 0 failed"),
        "the black-box suite failed on MariaDB:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // It ran, and ran most of the suite.
    let passed: usize = summary
        .split_whitespace()
        .skip_while(|w| *w != "ok." && *w != "FAILED.")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        passed >= 100,
        "only {passed} tests ran on MariaDB: {summary}"
    );
}
