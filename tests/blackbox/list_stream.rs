//! `mb-2fa-list --json` and `-q` write the accounts as they read them: the
//! document keeps its shape and values, a reader that stops early (`| head`)
//! costs no panic and no error storm, and a damaged row midway still ends in
//! exit 10 with one line on stderr, never a second document.

use std::io::Read;
use std::process::Stdio;

use mb2fa_testkit::{Env, LIST, POLICY, Run, finish};
use serde_json::{Value, json};

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const CAROL: &str = "carol@example.com";
const DAVE: &str = "dave@example.com";

/// 2100-01-01T00:00:00Z: a lock that is still running.
const FUTURE: i64 = 4_102_444_800;
/// 2000-01-01T00:00:00Z: long past.
const PAST: i64 = 946_684_800;

const KEYS: [&str; 11] = [
    "email",
    "state",
    "issuer",
    "created_at",
    "activated_at",
    "last_used_at",
    "backup_codes_left",
    "drift_steps",
    "failed_attempts",
    "locked_until",
    "exemption",
];

fn sql(env: &Env, statement: &str) {
    env.connect().execute_batch(statement).expect(statement);
}

/// Enroll `emails` (in that order) through the real binary.
fn enroll_all(env: &Env, emails: &[&str]) {
    for email in emails {
        env.enroll(email);
    }
}

/// Copies of the first account as `user00000@example.com`...: the list does
/// not open secrets, so sealed-for-another-email copies list fine.
fn add_copies(env: &Env, n: u32) {
    sql(
        env,
        &format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {n})
             INSERT INTO accounts (email, state, secret, algorithm, digits, period, issuer,
                                   created_at, recent_offsets)
             SELECT printf('user%05d@example.com', n.i), a.state, a.secret, a.algorithm,
                    a.digits, a.period, a.issuer, a.created_at, a.recent_offsets
             FROM n, (SELECT * FROM accounts ORDER BY id LIMIT 1) a;"
        ),
    );
}

#[test]
fn json_lists_every_account_in_email_order_with_the_same_shape() {
    let env = Env::new();
    enroll_all(&env, &[CAROL, DAVE, BOB]);
    let alice = env.enroll(ALICE);
    env.activate(&alice);
    env.run(
        POLICY,
        [
            "exempt", "--email", BOB, "--kind", "service", "--reason", "relay",
        ],
    )
    .expect_code(0);
    sql(
        &env,
        &format!(
            "UPDATE accounts SET failed_attempts = 5, locked_until = {FUTURE} WHERE email = '{CAROL}';
             UPDATE accounts SET failed_attempts = 7, locked_until = {PAST},
                    last_used_at = {PAST}, drift_steps = -2 WHERE email = '{DAVE}';
             UPDATE backup_codes SET used_at = {PAST}
              WHERE id IN (SELECT b.id FROM backup_codes b JOIN accounts a ON a.id = b.account_id
                           WHERE a.email = '{BOB}' LIMIT 3);"
        ),
    );

    let run = env.run(LIST, ["--json"]);
    let doc = run.ok_json();
    // One line, the same shape as ever: ok, accounts, exemptions.
    assert!(
        run.stdout
            .starts_with(r#"{"ok":true,"accounts":[{"email":"#),
        "{run}"
    );
    assert!(run.stdout.ends_with("}\n"), "{run}");
    assert_eq!(run.stdout.lines().count(), 1, "{run}");
    let top: Vec<&str> = doc
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(top, ["ok", "accounts", "exemptions"], "{run}");

    let accounts = doc["accounts"].as_array().expect("accounts");
    let emails: Vec<&str> = accounts
        .iter()
        .map(|a| a["email"].as_str().expect("email"))
        .collect();
    assert_eq!(emails, [ALICE, BOB, CAROL, DAVE], "{run}");
    for a in accounts {
        let keys: Vec<&str> = a
            .as_object()
            .expect("account")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, KEYS, "{a}");
        assert_eq!(a["issuer"], "Mailborder", "{a}");
        assert!(
            a["created_at"].as_str().expect("created_at").ends_with('Z'),
            "{a}"
        );
    }
    let [a, b, c, d] = [&accounts[0], &accounts[1], &accounts[2], &accounts[3]];
    assert_eq!(a["state"], "active", "{a}");
    assert!(a["activated_at"].is_string(), "{a}");
    assert!(a["last_used_at"].is_string(), "{a}");
    assert_eq!(a["backup_codes_left"], 10, "{a}");
    assert_eq!(a["exemption"], Value::Null, "{a}");

    assert_eq!(b["state"], "pending", "{b}");
    assert_eq!(b["activated_at"], Value::Null, "{b}");
    assert_eq!(b["backup_codes_left"], 7, "{b}");
    assert_eq!(b["exemption"], "service", "{b}");

    assert_eq!(c["failed_attempts"], 5, "{c}");
    assert_eq!(c["locked_until"], "2100-01-01T00:00:00Z", "{c}");
    assert_eq!(c["exemption"], Value::Null, "{c}");

    // An expired lock is shown as none; the count of failures stays.
    assert_eq!(d["failed_attempts"], 7, "{d}");
    assert_eq!(d["locked_until"], Value::Null, "{d}");
    assert_eq!(d["last_used_at"], "2000-01-01T00:00:00Z", "{d}");
    assert_eq!(d["drift_steps"], -2, "{d}");
    assert_eq!(d["backup_codes_left"], 10, "{d}");

    let exemptions = doc["exemptions"].as_array().expect("exemptions");
    assert_eq!(exemptions.len(), 1, "{run}");
    assert_eq!(exemptions[0]["email"], BOB);
    assert_eq!(exemptions[0]["kind"], "service");
    assert_eq!(exemptions[0]["reason"], "relay");
}

#[test]
fn json_of_many_accounts_is_one_document() {
    let env = Env::new();
    env.enroll(ALICE);
    add_copies(&env, 1500);
    let run = env.run(LIST, ["--json"]);
    let doc = run.ok_json();
    let accounts = doc["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 1501);
    assert_eq!(accounts[0]["email"], ALICE);
    assert_eq!(accounts[1]["email"], "user00000@example.com");
    assert_eq!(accounts[1500]["email"], "user01499@example.com");
    assert!(accounts.iter().all(|a| a["backup_codes_left"].is_u64()));
    assert_eq!(doc["exemptions"], json!([]));
    assert!(run.stderr.is_empty(), "{run}");
}

#[test]
fn quiet_prints_one_email_per_line_in_order() {
    let env = Env::new();
    enroll_all(&env, &[CAROL, ALICE, BOB]);
    let run = env.run(LIST, ["-q"]);
    run.expect_code(0);
    assert_eq!(run.stdout, format!("{ALICE}\n{BOB}\n{CAROL}\n"), "{run}");
    assert!(run.stderr.is_empty(), "{run}");

    add_copies(&env, 1200);
    let run = env.run(LIST, ["-q"]);
    run.expect_code(0);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1203, "{run}");
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted);
    assert!(lines.iter().all(|l| l.ends_with("@example.com")));
}

/// The tool with its stdout read for `keep` bytes, then closed, as
/// `mb-2fa-list ARGS | head -c KEEP` does.
fn closed_early(env: &Env, args: &[&str], keep: usize) -> (Vec<u8>, Run) {
    let mut cmd = env.command(LIST, args);
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null());
    let mut child = cmd.spawn().expect("spawn mb-2fa-list");
    let mut head = vec![0; keep];
    let mut out = child.stdout.take().expect("stdout pipe");
    out.read_exact(&mut head).expect("the first bytes");
    drop(out);
    (
        head,
        finish(child, format!("mb-2fa-list {args:?} | head -c {keep}")),
    )
}

#[test]
fn a_reader_that_stops_early_costs_no_panic_and_no_error_storm() {
    let env = Env::new();
    env.enroll(ALICE);
    // Far more than a pipe holds, so the tool does write into a closed pipe.
    add_copies(&env, 3000);
    for args in [&["--json"][..], &["-q"][..]] {
        let (head, run) = closed_early(&env, args, 20);
        // Nobody reads any more: nothing to complain about, and no signal
        // death either (that would fail `finish`).
        assert!(!run.stderr.contains("panicked"), "{run}");
        assert_eq!(run.stderr, "", "{run}");
        run.expect_code(0);
        let want = if args == ["--json"] {
            r#"{"ok":true,"accounts":[{"#.to_string()
        } else {
            format!("{ALICE}\nuser00000")
        };
        assert_eq!(head, want.as_bytes()[..20], "{run}");
    }
}

/// `PRAGMA ignore_check_constraints` lets a test store a state the schema
/// refuses, as a damaged file could hold.
fn damage_state(env: &Env, email: &str) {
    sql(
        env,
        &format!(
            "PRAGMA ignore_check_constraints = ON;
             UPDATE accounts SET state = 'bogus' WHERE email = '{email}';"
        ),
    );
}

#[test]
fn a_damaged_row_before_any_output_is_the_one_error_document() {
    let env = Env::new();
    enroll_all(&env, &[ALICE, BOB, CAROL]);
    damage_state(&env, CAROL);
    let message = env.run(LIST, ["--json"]).fail_json(10, "storage");
    assert!(message.contains("damaged"), "{message}");
    env.run(LIST, ["-q"]).fail_line(10, LIST, "damaged");
    env.run(LIST, Vec::<&str>::new())
        .fail_line(10, LIST, "damaged");
}

#[test]
fn a_damaged_row_midway_ends_with_exit_10_and_one_line_on_stderr() {
    let env = Env::new();
    env.enroll(ALICE);
    // More than a chunk of output even for -q (22 bytes a line).
    add_copies(&env, 4000);
    // Sorted after every copy: reached once output has left.
    env.enroll("zed@example.com");
    damage_state(&env, "zed@example.com");

    let run = env.run(LIST, ["--json"]);
    run.expect_code(10);
    assert!(
        run.stdout.starts_with(r#"{"ok":true,"accounts":[{"#),
        "{run}"
    );
    // Incomplete, and no second document after it.
    assert!(serde_json::from_str::<Value>(&run.stdout).is_err(), "{run}");
    assert!(!run.stdout.contains(r#""ok":false"#), "{run}");
    assert_eq!(run.stdout.matches(r#"{"ok":"#).count(), 1, "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(run.stderr.starts_with("mb-2fa-list: "), "{run}");
    assert!(run.stderr.contains("damaged"), "{run}");

    let run = env.run(LIST, ["-q"]);
    run.expect_code(10);
    assert!(run.stdout.starts_with(&format!("{ALICE}\n")), "{run}");
    assert!(!run.stdout.contains("zed@"), "{run}");
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(run.stderr.starts_with("mb-2fa-list: "), "{run}");
    assert!(run.stderr.contains("damaged"), "{run}");
}
