//! `--json`: stdout is exactly one JSON document with the spec's fields, on
//! success and on failure, with the exit code of the spec's table.

use std::fs;

use mb2fa_testkit::{
    AUDIT, BACKUP_CODES, DISABLE, EMAIL_TOOLS, ENABLE, Env, IMPORT, LIST, OtpauthUri, POLICY,
    STORE, TOOLS, UNLOCK, VERIFY, is_backup_code, is_secret, totp_now,
};
use serde_json::Value;

const ALICE: &str = "alice@example.com";

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_string()
        })
        .collect()
}

#[test]
fn enable_json_has_the_spec_fields_and_no_art() {
    let env = Env::new();
    // No --qr none: --json alone must keep the art out of stdout.
    let run = env.run(ENABLE, ["--json", "--email", ALICE]);
    let doc = run.ok_json();
    assert_eq!(doc["email"], ALICE, "{run}");
    assert_eq!(doc["state"], "pending", "{run}");
    assert_eq!(doc["issuer"], "Mailborder", "{run}");
    assert_eq!(doc["replaced"], Value::Null, "{run}");
    let secret = doc["secret"].as_str().expect("secret");
    assert!(
        is_secret(secret),
        "secret {secret:?}: want 32 base32 chars, 20 bytes"
    );
    let codes = strings(&doc["backup_codes"]);
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| is_backup_code(c)), "{codes:?}");
    let mut unique = codes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 10, "duplicate backup codes: {codes:?}");

    let uri = doc["otpauth_uri"].as_str().expect("otpauth_uri");
    let u = OtpauthUri::parse(uri);
    assert_eq!(u.kind, "totp");
    assert_eq!(u.label, format!("Mailborder:{ALICE}"));
    assert_eq!(u.param("secret"), Some(secret));
    assert_eq!(u.param("issuer"), Some("Mailborder"));
    assert_eq!(u.param("algorithm"), Some("SHA1"));
    assert_eq!(u.param("digits"), Some("6"));
    assert_eq!(u.param("period"), Some("30"));
    assert!(!run.stdout.contains('\u{1b}'), "colour in JSON output");
}

#[test]
fn enable_json_with_a_custom_issuer() {
    let env = Env::new();
    let issuer = "Mailborder - mail.example.com";
    let e = env.enroll_with(ALICE, &["--issuer", issuer]);
    assert_eq!(e.doc["issuer"], issuer);
    let u = OtpauthUri::parse(&e.uri);
    assert_eq!(u.label, format!("{issuer}:{ALICE}"));
    assert_eq!(u.param("issuer"), Some(issuer));
    // Encoded, not raw, in the URI.
    assert!(!e.uri.contains(' '), "{}", e.uri);
    assert_eq!(env.account(ALICE)["issuer"], issuer);
}

#[test]
fn verify_json_success_and_failures() {
    let env = Env::new();
    let e = env.enroll(ALICE);

    // Backup code while pending: rejected.
    env.verify_json(ALICE, &e.backup_codes[0])
        .fail_json(1, "rejected");
    let v = env.activate(&e);
    assert_eq!(v["email"], ALICE);
    assert_eq!(v["method"], "totp");
    assert!(v["offset_steps"].is_i64(), "{v}");
    assert_eq!(v["backup_codes_left"], 10);

    let v = env.verify_json(ALICE, &e.backup_codes[0]).ok_json();
    assert_eq!(v["method"], "backup_code");
    assert_eq!(v["activated"], false);
    assert_eq!(v["offset_steps"], Value::Null);
    assert_eq!(v["backup_codes_left"], 9);

    env.verify_json("bob@example.com", "123456")
        .fail_json(3, "not_enrolled");
    env.verify_json(ALICE, "12345").fail_json(2, "usage");
}

#[test]
fn disable_json() {
    let env = Env::new();
    env.enroll(ALICE);
    let run = env.run(DISABLE, ["--json", "--yes", "--email", ALICE]);
    let doc = run.ok_json();
    assert_eq!(doc["email"], ALICE, "{run}");
    assert_eq!(doc["disabled"], true, "{run}");
    env.run(DISABLE, ["--json", "--yes", "--email", ALICE])
        .fail_json(3, "not_enrolled");
}

#[test]
fn backup_codes_json() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let run = env.run(BACKUP_CODES, ["--json", "--email", ALICE]);
    let doc = run.ok_json();
    assert_eq!(doc["email"], ALICE, "{run}");
    let codes = strings(&doc["backup_codes"]);
    assert_eq!(codes.len(), 10, "{run}");
    assert!(codes.iter().all(|c| is_backup_code(c)), "{run}");
    assert!(codes.iter().all(|c| !e.backup_codes.contains(c)), "{run}");
    assert_eq!(env.account(ALICE)["backup_codes_left"], 10);
    env.run(BACKUP_CODES, ["--json", "--email", "bob@example.com"])
        .fail_json(3, "not_enrolled");
}

#[test]
fn list_json_fields() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.enroll("bob@example.com");
    env.activate(&e);
    let run = env.run(LIST, ["--json"]);
    let doc = run.ok_json();
    let accounts = doc["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 2, "{run}");
    for a in accounts {
        for key in [
            "email",
            "state",
            "issuer",
            "created_at",
            "activated_at",
            "last_used_at",
            "backup_codes_left",
            "drift_steps",
            "locked_until",
        ] {
            assert!(a.get(key).is_some(), "{key} missing from {a}");
        }
        assert!(a["created_at"].is_string(), "{a}");
        assert!(a["backup_codes_left"].is_u64(), "{a}");
        assert!(a["drift_steps"].is_i64(), "{a}");
        assert!(
            !a.to_string().contains(&e.secret),
            "the list shows a secret"
        );
    }
    let alice = accounts
        .iter()
        .find(|a| a["email"] == ALICE)
        .expect("alice");
    let bob = accounts
        .iter()
        .find(|a| a["email"] == "bob@example.com")
        .expect("bob");
    assert_eq!(alice["state"], "active");
    assert!(alice["activated_at"].is_string());
    assert_eq!(bob["state"], "pending");
    assert_eq!(bob["activated_at"], Value::Null);
    assert_eq!(bob["last_used_at"], Value::Null);
    assert_eq!(bob["locked_until"], Value::Null);
    assert_eq!(bob["backup_codes_left"], 10);
}

#[test]
fn list_json_is_an_empty_array_when_nobody_is_enrolled() {
    let env = Env::new();
    env.enroll(ALICE);
    env.run(DISABLE, ["--yes", "--email", ALICE]).expect_code(0);
    let doc = env.run(LIST, ["--json"]).ok_json();
    assert_eq!(doc["accounts"], Value::Array(vec![]));
}

#[test]
fn enable_on_an_active_account_is_a_conflict() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    let before = env.accounts();
    let message = env
        .run(ENABLE, ["--json", "--email", ALICE])
        .fail_json(5, "conflict");
    assert!(message.contains("--force"), "{message}");
    // The refusal changes no account; it is only recorded in the audit trail.
    assert_eq!(env.accounts(), before);
    let audit = env
        .run(AUDIT, ["--json", "--email", ALICE, "--limit", "1"])
        .ok_json();
    assert_eq!(audit["records"][0]["action"], "enable");
    assert_eq!(audit["records"][0]["outcome"], "conflict");
}

/// A command line of `tool` that opens the store (after `--db`).
/// The input `opening(IMPORT)` names.
fn uris_file(env: &Env) {
    fs::write(
        env.path("uris.txt"),
        "otpauth://totp/alice@example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DP\n",
    )
    .expect("write uris.txt");
}

fn opening(tool: &str) -> Vec<&'static str> {
    match tool {
        ENABLE => vec!["--email", ALICE, "--qr", "none"],
        VERIFY => vec!["--email", ALICE, "--code", "123456"],
        DISABLE => vec!["--email", ALICE, "--yes"],
        BACKUP_CODES | UNLOCK => vec!["--email", ALICE],
        LIST | AUDIT => vec![],
        // The login decision, which must fail closed.
        POLICY => vec!["check", "--email", ALICE],
        // Opens the store as the others do (`check` reports on stdout
        // instead, and `init` refuses any file there).
        STORE => vec!["seal-plaintext"],
        // A well-formed file, so that it gets as far as the store
        // (written by `uris_file`, in the directory the tools run in).
        IMPORT => vec!["--from", "otpauth", "uris.txt"],
        other => panic!("no command line for {other}"),
    }
}

#[test]
fn a_missing_database_is_a_storage_error_and_is_not_created() {
    let env = Env::new();
    for tool in [VERIFY, DISABLE, BACKUP_CODES, LIST] {
        let args = opening(tool);
        // Not "not enrolled" (3): nothing was looked up.
        let mut json_args = vec!["--json"];
        json_args.extend(&args);
        let message = env.run(tool, &json_args).fail_json(10, "storage");
        assert!(message.contains(&env.db.display().to_string()), "{message}");
        env.run(tool, &args)
            .fail_line(10, tool, &env.db.display().to_string());
        assert!(!env.db.exists(), "{tool} created the database");
        let entries: Vec<_> = fs::read_dir(env.dir.path()).expect("dir").collect();
        assert!(entries.is_empty(), "{tool} left files: {entries:?}");
    }
}

#[test]
fn a_file_that_is_not_a_database_is_a_storage_error_and_is_left_alone() {
    let env = Env::new();
    let junk = b"this is not an SQLite database, it is a text file\n".repeat(100);
    fs::write(&env.db, &junk).expect("write junk");
    uris_file(&env);
    for tool in TOOLS {
        let args = opening(tool);
        let mut json_args = vec!["--json"];
        json_args.extend(&args);
        env.run(tool, &json_args).fail_json(10, "storage");
        env.run(tool, &args).fail_line(10, tool, "");
        assert_eq!(
            fs::read(&env.db).expect("read"),
            junk,
            "{tool} changed the file"
        );
    }
}

#[test]
fn a_directory_as_database_is_a_storage_error() {
    let env = Env::new();
    fs::create_dir(&env.db).expect("mkdir");
    uris_file(&env);
    for tool in TOOLS {
        let args = opening(tool);
        let mut json_args = vec!["--json"];
        json_args.extend(&args);
        env.run(tool, &json_args).fail_json(10, "storage");
    }
}

#[test]
fn usage_errors_are_json_for_every_tool() {
    let env = Env::new();
    for tool in TOOLS {
        env.run(tool, ["--json", "--no-such-flag"])
            .fail_json(2, "usage");
    }
    for tool in EMAIL_TOOLS {
        env.run(tool, ["--json", "--email", "nobody"])
            .fail_json(2, "usage");
    }
}

#[test]
fn json_failures_carry_no_code_or_secret() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let code = totp_now(&e.secret, 0);
    env.verify_json(ALICE, &code).ok_json();
    let run = env.verify_json(ALICE, &code);
    let message = run.fail_json(1, "rejected");
    assert!(!message.contains(&code), "{message}");
    assert!(!run.stdout.contains(&e.secret), "{run}");
    let run = env.verify_json(ALICE, &e.backup_codes[0].to_lowercase());
    run.ok_json();
    let run = env.verify_json(ALICE, &e.backup_codes[0]);
    run.fail_json(1, "rejected");
    run.assert_not_echoed(&e.backup_codes[0]);
    run.assert_not_echoed(&e.backup_codes[0].replace('-', ""));
}
