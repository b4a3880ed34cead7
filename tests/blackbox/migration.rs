//! Upgrading a database made by the previous release (schema version 1,
//! plaintext secrets; `tests/fixtures/schema-v1`): the first tool that loads
//! the key seals every secret, creating the key file, and every account keeps
//! working with its phone and its backup codes. Keyless tools work on it
//! before that, and leave the secrets alone.

use std::path::PathBuf;

use mb2fa_tests::{
    AUDIT, Env, LIST, UNLOCK, VERIFY, contains_bytes, decode_secret, fixtures, mode, run_all,
    totp_now, write_key_file,
};
use serde_json::Value;

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";
const EMAILS: [&str; 3] = [ALICE, BOB, CAROL];

/// Length of a sealed secret: format byte, nonce, secret, tag.
const SEALED_LEN: usize = 1 + 24 + 20 + 16;

fn fixture_dir() -> PathBuf {
    fixtures().join("schema-v1")
}

/// What `accounts.json` says about one account of the fixture.
struct Known {
    secret: String,
    backup_codes: Vec<String>,
    used_backup_codes: Vec<String>,
    state: String,
    issuer: String,
}

fn known(email: &str) -> Known {
    let text = std::fs::read_to_string(fixture_dir().join("accounts.json")).expect("accounts.json");
    let all: Value = serde_json::from_str(&text).expect("accounts.json is JSON");
    let a = &all[email];
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s.as_str().expect("string").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    Known {
        secret: a["secret"].as_str().expect("secret").to_string(),
        backup_codes: strings(&a["backup_codes"]),
        used_backup_codes: strings(&a["used_backup_codes"]),
        state: a["state"].as_str().expect("state").to_string(),
        issuer: a["issuer"].as_str().expect("issuer").to_string(),
    }
}

/// An environment whose database is a fresh copy of the fixture (no key file).
fn from_fixture() -> Env {
    let env = Env::new();
    std::fs::copy(fixture_dir().join("2fa.db"), &env.db).expect("copy the fixture");
    assert!(!env.key.exists());
    assert_eq!(env.user_version(), 1, "the fixture is a version 1 database");
    for email in EMAILS {
        assert_eq!(
            env.stored_secret(email),
            decode_secret(&known(email).secret),
            "the fixture stores {email}'s secret in plaintext"
        );
    }
    env
}

/// The schema version of a database made by the current tools.
fn current_version() -> i64 {
    let env = Env::new();
    env.enroll(ALICE);
    env.user_version()
}

#[track_caller]
fn assert_sealed(env: &Env) {
    for email in EMAILS {
        let stored = env.stored_secret(email);
        assert_eq!(stored.len(), SEALED_LEN, "{email}: {stored:?}");
        assert!(
            !contains_bytes(&stored, &decode_secret(&known(email).secret)),
            "{email}"
        );
    }
}

#[track_caller]
fn assert_plaintext(env: &Env) {
    for email in EMAILS {
        assert_eq!(
            env.stored_secret(email),
            decode_secret(&known(email).secret),
            "{email}: a keyless tool changed the secret"
        );
    }
}

#[test]
fn every_account_still_verifies_after_the_upgrade() {
    let fixture_before = std::fs::read(fixture_dir().join("2fa.db")).expect("fixture");
    let env = from_fixture();
    let alice = known(ALICE);
    let bob = known(BOB);
    let carol = known(CAROL);
    assert_eq!(alice.state, "active");
    assert_eq!(bob.state, "active");
    assert_eq!(carol.state, "pending");

    // The first keyed tool: seals everything and creates the key.
    let alice_code = totp_now(&alice.secret, 0);
    let run = env.verify_json(ALICE, &alice_code);
    let doc = run.ok_json();
    assert_eq!(doc["activated"], false, "{run}");
    assert_eq!(doc["method"], "totp", "{run}");
    assert!(env.key.is_file(), "the key file was not created");
    assert_eq!(mode(&env.key), 0o400);
    assert_eq!(mode(env.key.parent().expect("dir")), 0o700);
    assert_eq!(std::fs::read(&env.key).expect("key").len(), 32);
    assert_sealed(&env);
    assert_eq!(env.user_version(), current_version());

    // Every account works with the codes its phone shows.
    let run = env.verify_json(BOB, &totp_now(&bob.secret, 0));
    assert_eq!(run.ok_json()["activated"], false, "{run}");
    let run = env.verify_json(CAROL, &totp_now(&carol.secret, 0));
    assert_eq!(
        run.ok_json()["activated"],
        true,
        "carol's pending enrollment activates\n{run}"
    );

    // Backup codes: unused ones work once, the one spent before the upgrade does not.
    assert_eq!(alice.used_backup_codes.len(), 1);
    let used = &alice.used_backup_codes[0];
    env.verify_json(ALICE, used).fail_json(1, "rejected");
    let unused = alice
        .backup_codes
        .iter()
        .find(|c| !alice.used_backup_codes.contains(c))
        .expect("an unused code");
    let run = env.verify_json(ALICE, unused);
    let doc = run.ok_json();
    assert_eq!(doc["method"], "backup_code", "{run}");
    assert_eq!(doc["backup_codes_left"], 8, "{run}");
    env.verify_json(ALICE, unused).fail_json(1, "rejected");
    env.verify_json(BOB, &bob.backup_codes[9]).ok_json();
    // A spent code is no guess: nothing counted.
    assert_eq!(env.account(ALICE)["failed_attempts"], 0);

    // What list shows survived: states, issuers.
    for (email, k) in [(ALICE, &alice), (BOB, &bob), (CAROL, &carol)] {
        let a = env.account(email);
        assert_eq!(a["state"], "active", "{a}");
        assert_eq!(a["issuer"], k.issuer.as_str(), "{a}");
    }
    // Replay protection works on the upgraded rows.
    env.verify_json(ALICE, &alice_code).fail_json(1, "rejected");
    // The trail started with the upgrade.
    let records = env.audit(["--email", CAROL]);
    assert_eq!(records[0]["outcome"], "activated", "{records:#?}");

    assert_eq!(
        std::fs::read(fixture_dir().join("2fa.db")).expect("fixture"),
        fixture_before,
        "the fixture itself must never change"
    );
}

#[test]
fn keyless_tools_first_leave_the_secrets_plaintext_then_a_keyed_tool_seals() {
    let env = from_fixture();
    let run = env.run(LIST, ["--json"]);
    let doc = run.ok_json();
    let emails: Vec<&str> = doc["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| a["email"].as_str().expect("email"))
        .collect();
    assert_eq!(emails, EMAILS, "{run}");
    for a in doc["accounts"].as_array().expect("accounts") {
        assert_eq!(a["failed_attempts"], 0, "{a}");
        assert_eq!(a["locked_until"], Value::Null, "{a}");
    }
    env.run(AUDIT, ["--json"]).ok_json();
    env.run(UNLOCK, ["--json", "--email", CAROL]).ok_json();

    // The schema moved on (there is an audit table now), the secrets did not,
    // and no key was made.
    let keyless = env.user_version();
    assert!(keyless > 1, "user_version {keyless}");
    assert_plaintext(&env);
    assert!(!env.key.exists(), "a keyless tool created the key file");
    assert_eq!(env.audit(["--email", CAROL])[0]["action"], "unlock");

    // Then the first keyed tool seals.
    let alice = known(ALICE);
    env.verify_json(ALICE, &totp_now(&alice.secret, 0))
        .ok_json();
    assert_sealed(&env);
    assert!(env.key.is_file());
    let sealed = env.user_version();
    assert!(
        sealed >= keyless,
        "user_version went from {keyless} to {sealed}"
    );
    assert_eq!(sealed, current_version());
    // Once sealed, the key is required.
    let key = std::fs::read(&env.key).expect("key");
    std::fs::remove_file(&env.key).expect("rm");
    env.verify_json(BOB, &totp_now(&known(BOB).secret, 0))
        .fail_json(10, "storage");
    assert!(!env.key.exists());
    write_key_file(&env.key, &key, 0o400);
    env.verify_json(BOB, &totp_now(&known(BOB).secret, 0))
        .ok_json();
}

#[test]
fn an_existing_key_file_is_used_for_sealing() {
    let env = from_fixture();
    let key: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    write_key_file(&env.key, &key, 0o400);
    env.verify_json(BOB, &totp_now(&known(BOB).secret, 0))
        .ok_json();
    assert_sealed(&env);
    assert_eq!(
        std::fs::read(&env.key).expect("key"),
        key,
        "the key was replaced"
    );
}

#[test]
fn a_bad_key_file_leaves_the_old_database_untouched() {
    let env = from_fixture();
    // Let the keyless schema steps happen first, so only sealing is left.
    env.run(LIST, ["--json"]).ok_json();
    let before = env.snapshot();
    let alice = known(ALICE);
    for (bytes, mode) in [(vec![7u8; 32], 0o644), (vec![7u8; 31], 0o400)] {
        write_key_file(&env.key, &bytes, mode);
        env.verify_json(ALICE, &totp_now(&alice.secret, 0))
            .fail_json(10, "storage");
        assert_eq!(env.snapshot(), before, "a refused key changed the database");
        assert_plaintext(&env);
    }
}

#[test]
fn many_tools_upgrading_at_once_agree_on_one_key() {
    let env = from_fixture();
    let (alice, bob, carol) = (known(ALICE), known(BOB), known(CAROL));
    let cmds = vec![
        env.command(
            VERIFY,
            [
                "--json",
                "--email",
                ALICE,
                "--code",
                &totp_now(&alice.secret, 0),
            ],
        ),
        env.command(
            VERIFY,
            [
                "--json",
                "--email",
                BOB,
                "--code",
                &totp_now(&bob.secret, 0),
            ],
        ),
        env.command(
            VERIFY,
            [
                "--json",
                "--email",
                CAROL,
                "--code",
                &totp_now(&carol.secret, 0),
            ],
        ),
        env.command(
            VERIFY,
            ["--json", "--email", ALICE, "--code", &alice.backup_codes[5]],
        ),
        env.command(
            VERIFY,
            ["--json", "--email", BOB, "--code", &bob.backup_codes[5]],
        ),
        env.command(LIST, ["--json"]),
        env.command(AUDIT, ["--json"]),
    ];
    let runs = run_all(cmds, None);
    for r in &runs {
        r.ok_json();
    }
    assert_sealed(&env);
    // One key, and it opens every secret.
    env.verify_json(ALICE, &totp_now(&alice.secret, 1))
        .ok_json();
    env.verify_json(BOB, &totp_now(&bob.secret, 1)).ok_json();
    env.verify_json(CAROL, &totp_now(&carol.secret, 1))
        .ok_json();
    let leftovers: Vec<_> = std::fs::read_dir(env.key.parent().expect("dir"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

/// A first keyed tool run after the upgrade: what it is, and how to run it.
type FirstTool = (&'static str, fn(&Env));

#[test]
fn no_plaintext_secret_is_left_in_the_upgraded_database_file() {
    // Whatever the first keyed tool after the upgrade is.
    let firsts: [FirstTool; 4] = [
        ("enable of a new account", |env| {
            env.enroll("dave@example.com");
        }),
        ("a wrong code", |env| {
            let wrong = mb2fa_tests::wrong_code(&known(ALICE).secret);
            env.verify_json(ALICE, &wrong).fail_json(1, "rejected");
        }),
        ("carol's activation", |env| {
            env.verify_json(CAROL, &totp_now(&known(CAROL).secret, 0))
                .ok_json();
        }),
        ("alice's code", |env| {
            env.verify_json(ALICE, &totp_now(&known(ALICE).secret, 0))
                .ok_json();
        }),
    ];
    let mut leaks = Vec::new();
    for (first, run) in firsts {
        let env = from_fixture();
        run(&env);
        assert_sealed(&env);
        // All tools have exited: the WAL is checkpointed into the file. A
        // copy of it (a backup) must not give away the secrets it used to
        // hold in plaintext, not even in freed space.
        let mut files = vec![("db", std::fs::read(&env.db).expect("db"))];
        for suffix in ["-wal", "-shm"] {
            if let Ok(b) = std::fs::read(mb2fa_tests::with_suffix(&env.db, suffix)) {
                files.push((suffix, b));
            }
        }
        for email in EMAILS {
            let raw = decode_secret(&known(email).secret);
            for (name, bytes) in &files {
                if contains_bytes(bytes, &raw) {
                    leaks.push(format!(
                        "after {first}: {email}'s secret in the {name} file"
                    ));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "old plaintext secrets are still readable in the database after sealing \
         (freed space is not overwritten):\n{}",
        leaks.join("\n")
    );
}
