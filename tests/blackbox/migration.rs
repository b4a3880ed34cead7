//! Upgrading a version 1 database (plaintext secrets, made by mb-2fa built
//! from source before secrets were sealed; `tests/fixtures/schema-v1`).
//! Keyless tools migrate its schema and leave the secrets alone; keyed tools
//! refuse it (exit 10) instead of sealing, since a database writer can make
//! any database look like this (issue 12, item 1); the explicit, audited
//! `mb-2fa-store seal-plaintext` seals it once, creating the key, and then
//! every account keeps working with its phone and its backup codes.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use mb2fa_testkit::{
    AUDIT, ENABLE, Env, LIST, STORE, UNLOCK, VERIFY, contains_bytes, decode_secret, fixtures, mode,
    run_all, totp_now, write_key_file,
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

/// An environment whose database is a fresh copy of the fixture (no key
/// file), with the modes the tools demand.
fn from_fixture() -> Env {
    let env = Env::new();
    for suffix in ["", "-wal", "-shm"] {
        let from = fixture_dir().join(format!("2fa.db{suffix}"));
        let to = mb2fa_testkit::with_suffix(&env.db, suffix);
        std::fs::copy(&from, &to).expect("copy the fixture");
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    assert!(!env.key.exists());
    assert_eq!(env.user_version(), 1, "the fixture is a version 1 database");
    assert_plaintext(&env);
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
            "{email}: the secret changed"
        );
    }
}

/// `mb-2fa-store seal-plaintext --json`, which must succeed: how many.
#[track_caller]
fn seal(env: &Env) -> u64 {
    let run = env.run(STORE, ["seal-plaintext", "--json"]);
    run.ok_json()["sealed"].as_u64().expect("sealed count")
}

#[test]
fn keyed_tools_refuse_a_version_1_database_and_seal_nothing() {
    let env = from_fixture();
    // Let the keyless schema steps happen first, so only the secrets are left.
    env.run(LIST, ["--json"]).ok_json();
    let before = env.snapshot();
    let alice = known(ALICE);
    let code = totp_now(&alice.secret, 0);
    let run = env.verify_json(ALICE, &code);
    let message = run.fail_json(10, "storage");
    assert!(message.contains("records no key fingerprint"), "{run}");
    assert!(message.contains("mb-2fa-store seal-plaintext"), "{run}");
    let run = env.run(
        ENABLE,
        ["--json", "--qr", "none", "--email", "dave@example.com"],
    );
    run.fail_json(10, "storage");
    assert_eq!(
        env.snapshot(),
        before,
        "a refusing tool changed the database"
    );
    assert_plaintext(&env);
    assert!(!env.key.exists(), "a refusing tool created the key file");
}

#[test]
fn every_account_still_verifies_after_seal_plaintext() {
    let fixture_before = std::fs::read(fixture_dir().join("2fa.db")).expect("fixture");
    let env = from_fixture();
    let alice = known(ALICE);
    let bob = known(BOB);
    let carol = known(CAROL);
    assert_eq!(alice.state, "active");
    assert_eq!(bob.state, "active");
    assert_eq!(carol.state, "pending");

    assert_eq!(seal(&env), 3);
    assert!(env.key.is_file(), "the key file was not created");
    assert_eq!(mode(&env.key), 0o400);
    assert_eq!(mode(env.key.parent().expect("dir")), 0o700);
    assert_eq!(std::fs::read(&env.key).expect("key").len(), 32);
    assert_sealed(&env);
    assert_eq!(env.user_version(), current_version());
    let records: Vec<Value> = env
        .audit(Vec::<&str>::new())
        .into_iter()
        .filter(|r| r["action"] == "seal-plaintext")
        .collect();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["tool"], "mb-2fa-store", "{records:#?}");
    assert!(
        records[0]["detail"]
            .as_str()
            .expect("detail")
            .contains("3 plaintext secrets"),
        "{records:#?}"
    );
    // Only once.
    let run = env.run(STORE, ["seal-plaintext", "--json"]);
    assert!(
        run.fail_json(5, "conflict").contains("already records key"),
        "{run}"
    );

    // Every account works with the codes its phone shows.
    let alice_code = totp_now(&alice.secret, 0);
    let run = env.verify_json(ALICE, &alice_code);
    let doc = run.ok_json();
    assert_eq!(doc["activated"], false, "{run}");
    assert_eq!(doc["method"], "totp", "{run}");
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
    let records = env.audit(["--email", CAROL]);
    assert_eq!(records[0]["outcome"], "activated", "{records:#?}");
    // Once sealed, the key is required.
    let key = std::fs::read(&env.key).expect("key");
    std::fs::remove_file(&env.key).expect("rm");
    env.verify_json(BOB, &totp_now(&bob.secret, 1))
        .fail_json(10, "storage");
    assert!(!env.key.exists());
    write_key_file(&env.key, &key, 0o400);
    env.verify_json(BOB, &totp_now(&bob.secret, 1)).ok_json();

    assert_eq!(
        std::fs::read(fixture_dir().join("2fa.db")).expect("fixture"),
        fixture_before,
        "the fixture itself must never change"
    );
}

#[test]
fn keyless_tools_work_on_a_version_1_database_and_leave_the_secrets_alone() {
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
    assert_eq!(keyless, current_version());
    assert_plaintext(&env);
    assert!(!env.key.exists(), "a keyless tool created the key file");
    assert_eq!(env.audit(["--email", CAROL])[0]["action"], "unlock");
}

#[test]
fn seal_plaintext_refuses_an_existing_key_file_or_a_bad_one() {
    let env = from_fixture();
    env.run(LIST, ["--json"]).ok_json();
    let before = env.snapshot();
    for (bytes, mode) in [
        (vec![7u8; 32], 0o400),
        (vec![7u8; 32], 0o644),
        (vec![7u8; 31], 0o400),
    ] {
        write_key_file(&env.key, &bytes, mode);
        let run = env.run(STORE, ["seal-plaintext", "--json"]);
        run.fail_json(10, "storage");
        assert_eq!(
            env.snapshot(),
            before,
            "a refused seal changed the database\n{run}"
        );
        assert_plaintext(&env);
        assert_eq!(
            std::fs::read(&env.key).expect("key"),
            bytes,
            "the key was replaced"
        );
    }
}

#[test]
fn seal_plaintext_never_seals_a_sealed_database() {
    // A current database whose key record a database writer deleted.
    let env = Env::new();
    let alice = env.enroll(ALICE);
    env.activate(&alice);
    env.connect()
        .execute("DELETE FROM settings WHERE key = 'key_fingerprint'", [])
        .expect("delete");
    let before = env.snapshot();
    let key = std::fs::read(&env.key).expect("key");
    let run = env.run(STORE, ["seal-plaintext", "--json"]);
    run.fail_json(10, "storage");
    std::fs::remove_file(&env.key).expect("rm");
    let run = env.run(STORE, ["seal-plaintext", "--json"]);
    let message = run.fail_json(10, "storage");
    assert!(
        message.contains("not a plaintext version 1 secret"),
        "{run}"
    );
    assert_eq!(env.snapshot(), before, "{run}");
    assert!(!env.key.exists(), "{run}");
    write_key_file(&env.key, &key, 0o400);
}

#[test]
fn many_tools_at_once_on_a_version_1_database_agree_on_one_key() {
    let env = from_fixture();
    let (alice, bob) = (known(ALICE), known(BOB));
    let mut cmds = Vec::new();
    for _ in 0..3 {
        cmds.push(env.command(STORE, ["seal-plaintext", "--json"]));
    }
    cmds.push(env.command(
        VERIFY,
        ["--json", "--email", ALICE, "--code", &alice.backup_codes[5]],
    ));
    cmds.push(env.command(LIST, ["--json"]));
    cmds.push(env.command(AUDIT, ["--json"]));
    let runs = run_all(cmds, None);
    let sealed = runs[..3].iter().filter(|r| r.code == 0).count();
    assert_eq!(sealed, 1, "exactly one seal-plaintext seals:\n{runs:#?}");
    for r in &runs[..3] {
        assert!(matches!(r.code, 0 | 5 | 10), "{r}");
    }
    // The verify ran before (refused, exit 10) or after the seal (accepted).
    assert!(matches!(runs[3].code, 0 | 10), "{}", runs[3]);
    runs[4].ok_json();
    runs[5].ok_json();
    assert_sealed(&env);
    // One key, and it opens every secret.
    env.verify_json(ALICE, &totp_now(&alice.secret, 1))
        .ok_json();
    env.verify_json(BOB, &totp_now(&bob.secret, 1)).ok_json();
    let leftovers: Vec<_> = std::fs::read_dir(env.key.parent().expect("dir"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");
}

#[test]
fn no_plaintext_secret_is_left_in_the_database_file_after_sealing() {
    let env = from_fixture();
    seal(&env);
    env.verify_json(ALICE, &totp_now(&known(ALICE).secret, 0))
        .ok_json();
    assert_sealed(&env);
    // All tools have exited: the WAL is checkpointed into the file. A copy
    // of it (a backup) must not give away the secrets it used to hold in
    // plaintext, not even in freed space.
    let mut files = vec![("db", std::fs::read(&env.db).expect("db"))];
    for suffix in ["-wal", "-shm"] {
        if let Ok(b) = std::fs::read(mb2fa_testkit::with_suffix(&env.db, suffix)) {
            files.push((suffix, b));
        }
    }
    let mut leaks = Vec::new();
    for email in EMAILS {
        let raw = decode_secret(&known(email).secret);
        for (name, bytes) in &files {
            if contains_bytes(bytes, &raw) {
                leaks.push(format!("{email}'s secret in the {name} file"));
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "plaintext left after sealing:\n{}",
        leaks.join("\n")
    );
}
