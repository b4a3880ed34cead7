//! Crashes: every writing tool is killed with SIGKILL at a random moment, on
//! a fresh copy of a prepared database, many times. Afterwards the database
//! opens (the tools list it), passes `PRAGMA integrity_check`, every account
//! is whole (10 backup codes, a sealed secret), and the change the tool was
//! making is either wholly there or wholly absent — with its audit record,
//! which commits in the same transaction.
//!
//! The delay before the kill is random: half the trials anywhere from 0 to
//! 1.5 times the tool's run time (measured again every 6 trials), half
//! between 0.7 and 1.4 times it, around the end, where the transaction
//! commits. `MB2FA_CRASH_TRIALS` sets the trials per
//! tool; the figures printed give how many kills landed before and after the
//! commit.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use mb2fa_testkit::{
    BACKUP_CODES, DISABLE, ENABLE, Env, LIST, POLICY, STORE, UNLOCK, VERIFY, decode_secret,
    fixtures, mode, now_unix, previous_step_time, totp_at, totp_now, wrong_codes,
};
use rusqlite::Connection;

use crate::support::{
    Ending, Rng, Row, Stored, assert_accounts_whole, assert_intact, audit_rows, copy_env,
    crash_trials, figure, kill_after, open, rows, schema_objects, setting, stored, time_one,
    user_version,
};

const A: &str = "alice@example.com";
const C: &str = "carol@example.com";
const NEW: &str = "new@example.com";

/// Default kill trials per scenario (CI).
const DEFAULT_TRIALS: usize = 30;

/// Where a trial left the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    /// Wholly before the change.
    Before,
    /// An intermediate state that is itself a state a finished run of
    /// another tool leaves (only the version 1 upgrade has one: the schema
    /// migrated by a keyless step, the secrets not yet sealed).
    Between,
    /// Wholly after.
    After,
}

/// Tally of a scenario's trials.
#[derive(Default)]
struct Tally {
    killed: usize,
    finished: usize,
    sides: BTreeMap<Side, usize>,
}

impl Tally {
    fn line(&self, max_delay: Duration) -> String {
        let side = |s| self.sides.get(&s).copied().unwrap_or(0);
        let between = side(Side::Between);
        format!(
            "{} trials (delays up to {} ms): killed mid-run {}, finished first {}; left before {}, {}after {}; torn or corrupt 0",
            self.killed + self.finished,
            max_delay.as_millis(),
            self.killed,
            self.finished,
            side(Side::Before),
            if between > 0 {
                format!("between (schema migrated, secrets not yet sealed) {between}, ")
            } else {
                String::new()
            },
            side(Side::After)
        )
    }
}

/// Run `trials` kill trials of the command `make` builds, each on a fresh
/// copy of `template` (its database and key file, when it has them);
/// `classify` says where the trial left the database, and fails the test on
/// anything torn. Then the tools must open it.
fn run_trials(
    name: &str,
    template: &Env,
    make: &dyn Fn(&Env) -> Command,
    classify: &dyn Fn(&Env, &Connection) -> Side,
    plaintext_ok: bool,
) {
    let trials = crash_trials(DEFAULT_TRIALS);
    let mut rng = Rng::for_test(name);
    let fresh = || {
        let env = Env::new();
        if template.db.exists() {
            copy_env(template, &env);
        }
        env
    };
    let mut tally = Tally::default();
    let mut full_us = 0;
    let mut max_delay = Duration::ZERO;
    for trial in 0..trials {
        // How long a whole run takes here, now (other tests load the
        // machine too): measured again every few trials.
        if trial % 6 == 0 {
            let full = time_one(make(&fresh()));
            full_us = u64::try_from(full.as_micros()).expect("micros").max(2000);
        }
        let env = fresh();
        let delay_us = if trial % 2 == 0 {
            rng.below(full_us * 3 / 2)
        } else {
            full_us * 7 / 10 + rng.below(full_us * 7 / 10)
        };
        max_delay = max_delay.max(Duration::from_micros(delay_us));
        let ending = kill_after(make(&env), Duration::from_micros(delay_us));
        let ctx = format!("{name}, trial {trial}: killed after {delay_us} us ({ending:?})");
        let side = if env.db.exists() {
            let conn = open(&env.db);
            let side = classify(&env, &conn);
            assert_accounts_whole(&conn, plaintext_ok);
            drop(conn);
            assert_intact(&env.db);
            // The tools open it again.
            let run = env.run(LIST, ["--json"]);
            assert_eq!(run.code, 0, "{ctx}: the database does not open\n{run}");
            side
        } else {
            Side::Before
        };
        match ending {
            Ending::Killed => tally.killed += 1,
            Ending::Exited(code) => {
                assert_eq!(code, 0, "{ctx}: the uninterrupted run failed");
                assert_eq!(
                    side,
                    Side::After,
                    "{ctx}: it finished, yet the change is not there"
                );
                tally.finished += 1;
            }
        }
        *tally.sides.entry(side).or_default() += 1;
        if env.key.exists() {
            key_whole(&env.key, &ctx);
        }
    }
    figure(&format!("crash, {name}"), tally.line(max_delay));
}

/// A key file, when there is one, is whole: 32 bytes, mode 0400.
#[track_caller]
fn key_whole(key: &Path, ctx: &str) {
    assert_eq!(
        std::fs::read(key).expect("key").len(),
        32,
        "{ctx}: a partial key file"
    );
    assert_eq!(mode(key), 0o400, "{ctx}: key file mode");
}

/// Audit records of `action` for `email` with `outcome`.
fn audited(conn: &Connection, action: &str, email: &str, outcome: &str) -> usize {
    audit_rows(conn)
        .iter()
        .filter(|r| {
            r["action"] == format!("'{action}'")
                && r["email"] == format!("'{email}'")
                && r["outcome"] == format!("'{outcome}'")
        })
        .count()
}

/// A prepared database: alice active with one spent backup code, carol
/// pending.
fn prepared() -> (Env, Stored, Stored) {
    let (env, a, c, _, _) = prepared_with_secrets();
    (env, a, c)
}

/// The same, with alice's and carol's secrets.
fn prepared_with_secrets() -> (Env, Stored, Stored, String, String) {
    let env = Env::new();
    let alice = env.enroll(A);
    let t = previous_step_time();
    env.verify_json(A, &totp_at(&decode_secret(&alice.secret), t, 6))
        .ok_json();
    env.verify_json(A, &alice.backup_codes[9]).ok_json();
    let carol = env.enroll(C);
    let conn = open(&env.db);
    let a = stored(&conn, A).expect("alice");
    let c = stored(&conn, C).expect("carol");
    drop(conn);
    (env, a, c, alice.secret, carol.secret)
}

#[test]
fn killed_enable_of_a_new_account() {
    let (tpl, alice, _) = prepared();
    run_trials(
        "enable (new account)",
        &tpl,
        &|env| env.command(ENABLE, ["--json", "--qr", "none", "--email", NEW]),
        &|_, conn| {
            assert_eq!(stored(conn, A).as_ref(), Some(&alice), "alice changed");
            let audits = audited(conn, "enable", NEW, "ok");
            match stored(conn, NEW) {
                None => {
                    assert_eq!(audits, 0, "an audit record without its enrollment");
                    Side::Before
                }
                Some(s) => {
                    assert_eq!(s.account["state"], "'pending'");
                    assert!(s.codes.iter().all(|c| c["used_at"] == "NULL"));
                    assert_eq!(audits, 1, "an enrollment without its audit record");
                    Side::After
                }
            }
        },
        false,
    );
}

#[test]
fn killed_enable_force_of_an_active_account() {
    let (tpl, alice, _) = prepared();
    let base = audited(&open(&tpl.db), "enable", A, "ok");
    run_trials(
        "enable --force (replacing an active account)",
        &tpl,
        &|env| env.command(ENABLE, ["--json", "--qr", "none", "--force", "--email", A]),
        &|_, conn| {
            let now = stored(conn, A).expect("alice is never without an enrollment");
            let audits = audited(conn, "enable", A, "ok") - base;
            if now == alice {
                assert_eq!(audits, 0, "an audit record without its change");
                return Side::Before;
            }
            assert_ne!(
                now.account["secret"], alice.account["secret"],
                "old secret, new row"
            );
            assert_eq!(now.account["state"], "'pending'");
            assert_eq!(now.account["last_step"], "NULL");
            let old: Vec<&String> = alice.codes.iter().map(|c| &c["hash"]).collect();
            assert!(
                now.codes
                    .iter()
                    .all(|c| c["used_at"] == "NULL" && !old.contains(&&c["hash"])),
                "old and new backup codes mixed: {now:?}"
            );
            assert_eq!(audits, 1, "a change without its audit record");
            Side::After
        },
        false,
    );
}

#[test]
fn killed_first_enable_on_an_empty_machine() {
    // No database and no key yet: the first enrollment creates both. Killed
    // anywhere, the next enrollment must work and its codes must verify.
    let tpl = Env::new();
    let trials = crash_trials(DEFAULT_TRIALS) / 2;
    let mut rng = Rng::for_test("first enable");
    let full = time_one(Env::new().command(ENABLE, ["--json", "--qr", "none", "--email", A]));
    let full_us = u64::try_from(full.as_micros()).expect("micros");
    let mut tally = Tally::default();
    for trial in 0..trials {
        let env = Env::new();
        let delay = Duration::from_micros(rng.below(full_us * 6 / 5));
        let ending = kill_after(
            env.command(ENABLE, ["--json", "--qr", "none", "--email", A]),
            delay,
        );
        let ctx = format!("first enable, trial {trial}: {delay:?} ({ending:?})");
        let side = if env.db.exists() {
            let conn = open(&env.db);
            // Killed before the schema was made: an empty database, or none.
            let has_accounts = schema_objects(&conn).contains(&"table accounts".to_string());
            if has_accounts {
                assert_accounts_whole(&conn, false);
            }
            let side = if has_accounts && stored(&conn, A).is_some() {
                Side::After
            } else {
                Side::Before
            };
            drop(conn);
            assert_intact(&env.db);
            side
        } else {
            Side::Before
        };
        if env.key.exists() {
            key_whole(&env.key, &ctx);
        }
        match ending {
            Ending::Killed => tally.killed += 1,
            Ending::Exited(code) => {
                assert_eq!(code, 0, "{ctx}");
                tally.finished += 1;
            }
        }
        *tally.sides.entry(side).or_default() += 1;
        // Recovery: enroll again (a pending enrollment is simply replaced)
        // and activate with the new secret.
        let e = env.enroll(A);
        env.activate(&e);
        assert_intact(&env.db);
    }
    drop(tpl);
    figure(
        "crash, first enable (creates the database and the key)",
        format!(
            "{}; the next enable and verify worked after every trial",
            tally.line(full * 6 / 5)
        ),
    );
}

#[test]
fn killed_verify_of_a_totp_code() {
    let (tpl, alice, _, secret, _) = prepared_with_secrets();
    let base = audited(&open(&tpl.db), "verify", A, "accepted");
    let step = std::cell::Cell::new(0i64);
    run_trials(
        "verify (TOTP code)",
        &tpl,
        &|env| {
            let t = now_unix();
            step.set(i64::try_from(t / 30).expect("step"));
            let code = totp_at(&decode_secret(&secret), t, 6);
            env.command(VERIFY, ["--json", "--email", A, "--code", &code])
        },
        &|_, conn| {
            let now = stored(conn, A).expect("alice");
            let accepted = audited(conn, "verify", A, "accepted") - base;
            if now == alice {
                assert_eq!(accepted, 0, "an audit record without its change");
                return Side::Before;
            }
            assert_eq!(now.account["last_step"], step.get().to_string(), "{now:?}");
            assert_eq!(now.codes, alice.codes);
            assert_eq!(accepted, 1, "an accepted code without its audit record");
            Side::After
        },
        false,
    );
}

#[test]
fn killed_verify_that_activates() {
    let (tpl, _, carol, _, secret) = prepared_with_secrets();
    run_trials(
        "verify (activating a pending enrollment)",
        &tpl,
        &|env| {
            env.command(
                VERIFY,
                ["--json", "--email", C, "--code", &totp_now(&secret, 0)],
            )
        },
        &|_, conn| {
            let now = stored(conn, C).expect("carol");
            let activated = audited(conn, "verify", C, "activated");
            if now == carol {
                assert_eq!(activated, 0);
                return Side::Before;
            }
            assert_eq!(now.account["state"], "'active'");
            assert_ne!(now.account["activated_at"], "NULL");
            assert_ne!(now.account["last_step"], "NULL");
            assert_eq!(activated, 1);
            Side::After
        },
        false,
    );
}

#[test]
fn killed_verify_of_a_backup_code() {
    let env = Env::new();
    let alice = env.enroll(A);
    env.activate(&alice);
    let before = stored(&open(&env.db), A).expect("alice");
    let code = alice.backup_codes[3].clone();
    run_trials(
        "verify (backup code)",
        &env,
        &|e| e.command(VERIFY, ["--json", "--email", A, "--code", &code]),
        &|_, conn| {
            let now = stored(conn, A).expect("alice");
            let accepted = audited(conn, "verify", A, "accepted");
            let used = now.codes.iter().filter(|c| c["used_at"] != "NULL").count();
            if now == before {
                assert_eq!(accepted, 0);
                return Side::Before;
            }
            assert_eq!(used, 1, "{now:?}");
            assert_eq!(accepted, 1, "a spent code without its audit record");
            Side::After
        },
        false,
    );
}

#[test]
fn killed_backup_code_regeneration() {
    let (tpl, alice, _) = prepared();
    run_trials(
        "backup-codes",
        &tpl,
        &|env| env.command(BACKUP_CODES, ["--json", "--email", A]),
        &|_, conn| {
            let now = stored(conn, A).expect("alice");
            let audits = audited(conn, "backup_codes", A, "ok");
            if now == alice {
                assert_eq!(audits, 0);
                return Side::Before;
            }
            assert_eq!(now.account, alice.account, "only the codes change");
            let old: Vec<&String> = alice.codes.iter().map(|c| &c["hash"]).collect();
            assert!(
                now.codes
                    .iter()
                    .all(|c| c["used_at"] == "NULL" && !old.contains(&&c["hash"])),
                "old and new backup codes mixed: {now:?}"
            );
            assert_eq!(audits, 1);
            Side::After
        },
        false,
    );
}

#[test]
fn killed_disable() {
    let (tpl, alice, _) = prepared();
    run_trials(
        "disable",
        &tpl,
        &|env| env.command(DISABLE, ["--json", "--yes", "--email", A]),
        &|_, conn| {
            let audits = audited(conn, "disable", A, "ok");
            match stored(conn, A) {
                Some(now) => {
                    assert_eq!(now, alice, "a half-removed account");
                    assert_eq!(audits, 0);
                    Side::Before
                }
                None => {
                    assert_eq!(audits, 1);
                    Side::After
                }
            }
        },
        false,
    );
}

#[test]
fn killed_unlock() {
    let env = Env::new();
    let alice = env.enroll(A);
    env.activate(&alice);
    for code in wrong_codes(&alice.secret, 5) {
        env.verify_json(A, &code).fail_json(1, "rejected");
    }
    let locked = stored(&open(&env.db), A).expect("alice");
    assert_eq!(locked.account["failed_attempts"], "5");
    run_trials(
        "unlock",
        &env,
        &|e| e.command(UNLOCK, ["--json", "--email", A]),
        &|_, conn| {
            let now = stored(conn, A).expect("alice");
            let audits = audited(conn, "unlock", A, "ok");
            if now == locked {
                assert_eq!(audits, 0);
                return Side::Before;
            }
            assert_eq!(now.account["failed_attempts"], "0");
            assert_eq!(now.account["locked_until"], "NULL");
            assert_eq!(audits, 1);
            Side::After
        },
        false,
    );
}

fn policy_rows(conn: &Connection) -> Vec<Row> {
    rows(
        conn,
        "SELECT key, value FROM settings WHERE key LIKE 'policy.%' ORDER BY key",
        [],
    )
}

#[test]
fn killed_policy_set() {
    let (tpl, _, _) = prepared();
    let before = policy_rows(&open(&tpl.db));
    run_trials(
        "policy set (four values)",
        &tpl,
        &|env| {
            env.command(
                POLICY,
                [
                    "--json",
                    "set",
                    "--require-all",
                    "on",
                    "--grace-days",
                    "3",
                    "--issuer",
                    "Crash Test",
                    "--mandatory-role",
                    "auditor",
                ],
            )
        },
        &|_, conn| {
            let now = policy_rows(conn);
            let audits = audit_rows(conn)
                .iter()
                .filter(|r| r["action"] == "'policy_set'")
                .count();
            if now == before {
                assert_eq!(audits, 0);
                return Side::Before;
            }
            assert_eq!(setting(conn, "policy.require_all").as_deref(), Some("on"));
            assert_eq!(setting(conn, "policy.grace_days").as_deref(), Some("3"));
            assert_eq!(
                setting(conn, "policy.issuer").as_deref(),
                Some("Crash Test")
            );
            assert_eq!(
                setting(conn, "policy.mandatory_roles").as_deref(),
                Some("auditor")
            );
            assert!(
                setting(conn, "policy.require_all_since").is_some(),
                "{now:?}"
            );
            assert_eq!(audits, 4, "one audit record per changed value");
            Side::After
        },
        false,
    );
}

#[test]
fn killed_policy_exempt() {
    let (tpl, _, _) = prepared();
    run_trials(
        "policy exempt",
        &tpl,
        &|env| {
            env.command(
                POLICY,
                [
                    "--json",
                    "exempt",
                    "--email",
                    "probe@example.com",
                    "--kind",
                    "service",
                    "--reason",
                    "monitoring probe",
                ],
            )
        },
        &|_, conn| {
            let row = rows(
                conn,
                "SELECT * FROM exemptions WHERE email = 'probe@example.com'",
                [],
            );
            let audits = audited(conn, "exempt", "probe@example.com", "ok");
            assert_eq!(
                row.len(),
                audits,
                "an exemption and its audit record go together"
            );
            if row.is_empty() {
                Side::Before
            } else {
                Side::After
            }
        },
        false,
    );
}

// ---------------------------------------------------------------------------
// The version 1 → sealed upgrade
// ---------------------------------------------------------------------------

const V1_EMAILS: [&str; 3] = [A, "bob@example.com", C];

fn v1_secrets() -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(fixtures().join("schema-v1/accounts.json")).expect("accounts.json");
    let all: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    V1_EMAILS
        .iter()
        .map(|e| {
            (
                e.to_string(),
                all[e]["secret"].as_str().expect("secret").to_string(),
            )
        })
        .collect()
}

fn v1_template() -> Env {
    let env = Env::new();
    std::fs::copy(fixtures().join("schema-v1/2fa.db"), &env.db).expect("copy the fixture");
    std::fs::set_permissions(&env.db, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    env
}

/// The schema of a database made by the current tools.
fn current_schema() -> (i64, Vec<String>) {
    let env = Env::new();
    env.enroll(A);
    let conn = open(&env.db);
    (user_version(&conn), schema_objects(&conn))
}

/// Where an interrupted upgrade left a fixture copy. `verified` tells
/// whether alice's code is recorded (for the keyed run).
fn classify_v1(
    conn: &Connection,
    v1_schema: &[String],
    current: &(i64, Vec<String>),
    secrets: &BTreeMap<String, String>,
) -> Side {
    let version = user_version(conn);
    let schema = schema_objects(conn);
    if version == 1 {
        assert_eq!(schema, v1_schema, "a half-migrated schema at version 1");
    } else {
        assert_eq!(version, current.0, "an unknown schema version");
        assert_eq!(
            schema, current.1,
            "a half-migrated schema at version {version}"
        );
    }
    let fingerprint = setting(conn, "key_fingerprint");
    let lens: Vec<String> = rows(conn, "SELECT length(secret) AS n FROM accounts", [])
        .into_iter()
        .map(|r| r["n"].clone())
        .collect();
    if fingerprint.is_some() {
        assert!(
            lens.iter().all(|n| n == "61"),
            "a key recorded, not every secret sealed: {lens:?}"
        );
        assert_eq!(version, current.0);
        Side::After
    } else {
        for email in V1_EMAILS {
            let secret: Vec<u8> = conn
                .query_row(
                    "SELECT secret FROM accounts WHERE email = ?1",
                    [email],
                    |r| r.get(0),
                )
                .expect("secret");
            assert_eq!(
                secret,
                decode_secret(&secrets[email]),
                "{email}: a secret changed before the key was recorded (half-sealed)"
            );
        }
        if version == 1 {
            Side::Before
        } else {
            Side::Between
        }
    }
}

#[test]
fn killed_upgrade_from_version_1() {
    // `mb-2fa-store seal-plaintext` on a version 1 database migrates the
    // schema, creates the key and seals every secret. Killed anywhere, the
    // database is version 1 or current, all plaintext (no key recorded) or
    // all sealed (key recorded), and every account still verifies afterwards
    // (after running it again, moving away a key an interrupted run made, as
    // its message says).
    let tpl = v1_template();
    let v1_schema = schema_objects(&open(&tpl.db));
    let current = current_schema();
    let secrets = v1_secrets();
    run_trials(
        "upgrade of a version 1 database (mb-2fa-store seal-plaintext)",
        &tpl,
        &|env| env.command(STORE, ["seal-plaintext", "--json"]),
        &|env, conn| {
            let side = classify_v1(conn, &v1_schema, &current, &secrets);
            let probe = Env::new();
            copy_env(env, &probe);
            if side != Side::After {
                if probe.key.exists() {
                    let run = probe.run(STORE, ["seal-plaintext", "--json"]);
                    assert!(
                        run.fail_json(10, "storage").contains("move it away"),
                        "{run}"
                    );
                    std::fs::remove_file(&probe.key).expect("move the key away");
                }
                probe.run(STORE, ["seal-plaintext", "--json"]).ok_json();
            }
            for email in V1_EMAILS {
                let code = totp_now(&secrets[email], 0);
                let run = probe.run(
                    VERIFY,
                    ["--json", "--email", email, "--code", &code, "--diagnose"],
                );
                let f = run.ok_json()["finding"].as_str().unwrap_or("").to_string();
                assert!(f == "valid" || f == "already_used", "{email}: {f}\n{run}");
            }
            side
        },
        true,
    );
}

#[test]
fn killed_keyless_migration_of_version_1() {
    let tpl = v1_template();
    let v1_schema = schema_objects(&open(&tpl.db));
    let current = current_schema();
    let secrets = v1_secrets();
    run_trials(
        "upgrade of a version 1 database (keyless: unlock)",
        &tpl,
        &|env| env.command(UNLOCK, ["--json", "--email", A]),
        &|env, conn| {
            assert!(!env.key.exists(), "a keyless tool made a key");
            let side = classify_v1(conn, &v1_schema, &current, &secrets);
            assert_ne!(side, Side::After, "a keyless tool sealed");
            let unlocked = user_version(conn) > 1
                && audit_rows(conn).iter().any(|r| r["action"] == "'unlock'");
            if unlocked { Side::After } else { side }
        },
        true,
    );
}
