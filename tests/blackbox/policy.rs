//! Enforcement through the real `mb-2fa-policy`: the login decision and its
//! exit code, the grace period (aged in the database, not waited for), the
//! break-glass alert and seal, and failing closed.

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use mb2fa_testkit::{AUDIT, Env, LIST, POLICY, Run};

const BOB: &str = "bob@example.com";
const GLASS: &str = "glass@example.com";

fn check(env: &Env, email: &str, roles: &[&str]) -> Run {
    let mut args = vec!["--json", "check", "--email", email];
    for r in roles {
        args.extend(["--role", r]);
    }
    env.run(POLICY, &args)
}

#[track_caller]
fn decision(run: &Run, code: i32, want: &str) -> serde_json::Value {
    assert_eq!(run.code, code, "{run}");
    let doc: serde_json::Value =
        serde_json::from_str(run.stdout.trim()).expect("one JSON document");
    assert_eq!(doc["ok"], true, "{run}");
    assert_eq!(doc["decision"], want, "{run}");
    doc
}

fn sql(env: &Env, statement: &str) {
    let c = rusqlite::Connection::open(&env.db).expect("open");
    c.execute_batch(statement).expect(statement);
}

#[test]
fn decisions_and_exit_codes_through_the_binary() {
    let env = Env::new();
    env.init();
    // Policy off (the default): nobody is shut out, enrolled accounts still need a code.
    env.run(POLICY, ["set", "--grace-days", "7"]).expect_code(0);
    decision(&check(&env, BOB, &["super-admin"]), 6, "allow");
    env.enroll("alice@example.com");
    decision(&check(&env, "alice@example.com", &[]), 0, "code");

    env.run(POLICY, ["set", "--require-all", "on"])
        .expect_code(0);
    let d = decision(&check(&env, BOB, &[]), 6, "setup");
    assert_eq!(d["grace_days_left"], 7);
    assert!(d["deadline"].as_str().expect("deadline").ends_with('Z'));
    decision(
        &check(&env, "root@example.com", &["super-admin"]),
        7,
        "deny",
    );
    env.run(
        POLICY,
        [
            "exempt",
            "--email",
            "probe@example.com",
            "--kind",
            "service",
            "--reason",
            "monitoring",
        ],
    )
    .expect_code(0);
    let d = decision(
        &check(&env, "probe@example.com", &["super-admin"]),
        6,
        "allow",
    );
    assert!(
        d["reason"].as_str().expect("reason").contains("service"),
        "{d}"
    );

    // Tightening applies at once: setup becomes deny.
    env.run(POLICY, ["set", "--grace-days", "0"]).expect_code(0);
    decision(&check(&env, BOB, &[]), 7, "deny");
    // Loosening again brings the grace back (it is computed, not stored).
    env.run(POLICY, ["set", "--grace-days", "7"]).expect_code(0);
    decision(&check(&env, BOB, &[]), 6, "setup");
    // Human output and -q.
    let q = env.run(POLICY, ["-q", "check", "--email", BOB]);
    assert_eq!((q.code, q.stdout.trim()), (6, "setup"), "{q}");
}

#[test]
fn the_grace_period_runs_out() {
    let env = Env::new();
    env.init();
    env.run(POLICY, ["set", "--require-all", "on", "--grace-days", "7"])
        .expect_code(0);
    decision(&check(&env, BOB, &[]), 6, "setup");
    // Age both the switch-on time and the first sighting by 8 days.
    sql(
        &env,
        "UPDATE first_seen SET seen_at = seen_at - 8 * 86400;
         UPDATE settings SET value = CAST(value AS INTEGER) - 8 * 86400 WHERE key = 'policy.require_all_since';",
    );
    let d = decision(&check(&env, BOB, &[]), 7, "deny");
    assert!(
        d["reason"]
            .as_str()
            .expect("reason")
            .contains("grace period ended"),
        "{d}"
    );
    // Aged by 6 days only: one day left.
    let env = Env::new();
    env.init();
    env.run(POLICY, ["set", "--require-all", "on"])
        .expect_code(0);
    check(&env, BOB, &[]);
    sql(
        &env,
        "UPDATE first_seen SET seen_at = seen_at - 6 * 86400;
         UPDATE settings SET value = CAST(value AS INTEGER) - 6 * 86400 WHERE key = 'policy.require_all_since';",
    );
    let d = decision(&check(&env, BOB, &[]), 6, "setup");
    assert_eq!(d["grace_days_left"], 1);
}

#[test]
fn break_glass_use_is_alerted_marked_and_sealed_again() {
    let env = Env::new();
    env.init();
    env.run(POLICY, ["set", "--require-all", "on"])
        .expect_code(0);
    let show = env.run(POLICY, ["--json", "show"]).ok_json();
    assert!(
        show["warnings"][0]
            .as_str()
            .expect("warning")
            .contains("no break-glass account"),
        "{show}"
    );
    env.run(
        POLICY,
        [
            "exempt",
            "--email",
            GLASS,
            "--kind",
            "break-glass",
            "--reason",
            "envelope in the safe",
        ],
    )
    .expect_code(0);
    let show = env.run(POLICY, ["--json", "show"]).ok_json();
    assert_eq!(
        show["warnings"].as_array().expect("warnings").len(),
        0,
        "{show}"
    );

    let socket_path = env.path("log.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let run = env.run_env(
        POLICY,
        ["--json", "check", "--email", GLASS],
        &[("MB2FA_SYSLOG_SOCKET", socket_path.as_os_str())],
    );
    decision(&run, 6, "allow");
    let mut buf = [0u8; 2048];
    let n = socket.recv(&mut buf).expect("a syslog datagram");
    let msg = String::from_utf8_lossy(&buf[..n]);
    assert!(
        msg.starts_with("<33>mb-2fa["),
        "auth facility, alert priority: {msg}"
    );
    assert!(
        msg.contains("outcome=break_glass") && msg.contains(GLASS),
        "{msg}"
    );

    let audit = env
        .run(AUDIT, ["--json", "--email", GLASS, "--limit", "1"])
        .ok_json();
    assert_eq!(audit["records"][0]["outcome"], "break_glass");
    let list = env.run(LIST, ["--json"]).ok_json();
    assert_eq!(list["exemptions"][0]["email"], GLASS);
    assert_eq!(list["exemptions"][0]["used"], true);
    let human = env.run(LIST, Vec::<&str>::new());
    assert!(human.stdout.contains("USED since"), "{human}");
    let show = env.run(POLICY, ["--json", "show"]).ok_json();
    assert!(
        show["warnings"][0]
            .as_str()
            .expect("warning")
            .contains("was used"),
        "{show}"
    );

    env.run(POLICY, ["seal", "--email", GLASS]).expect_code(0);
    let list = env.run(LIST, ["--json"]).ok_json();
    assert_eq!(list["exemptions"][0]["used"], false);
    // Sealing a service exemption is a conflict; an unknown one is exit 3.
    env.run(
        POLICY,
        [
            "exempt", "--email", BOB, "--kind", "service", "--reason", "x",
        ],
    )
    .expect_code(0);
    env.run(POLICY, ["--json", "seal", "--email", BOB])
        .fail_json(5, "conflict");
    env.run(POLICY, ["--json", "seal", "--email", "nobody@example.com"])
        .fail_json(3, "not_enrolled");
    env.run(POLICY, ["unexempt", "--email", BOB]).expect_code(0);
    env.run(POLICY, ["--json", "unexempt", "--email", BOB])
        .fail_json(3, "not_enrolled");
}

#[test]
fn check_fails_closed_on_storage_errors() {
    let env = Env::new();
    check(&env, BOB, &[]).fail_json(10, "storage");
    assert!(!env.db.exists());
    fs::write(&env.db, b"not a database at all, just text\n".repeat(200)).expect("write");
    let run = check(&env, BOB, &[]);
    run.fail_json(10, "storage");
    assert_ne!(run.code, 6);
}

#[test]
fn policy_input_errors_are_usage_errors() {
    let env = Env::new();
    env.run(POLICY, ["--json", "set"]).fail_json(2, "usage");
    env.run(POLICY, ["--json", "set", "--grace-days", "-1"])
        .fail_json(2, "usage");
    env.run(POLICY, ["--json", "set", "--require-all", "maybe"])
        .fail_json(2, "usage");
    env.run(POLICY, ["--json", "set", "--mandatory-role", "a b"])
        .fail_json(2, "usage");
    env.run(
        POLICY,
        [
            "--json", "exempt", "--email", BOB, "--kind", "service", "--reason", " ",
        ],
    )
    .fail_json(2, "usage");
    env.run(
        POLICY,
        [
            "--json", "exempt", "--email", BOB, "--kind", "vip", "--reason", "x",
        ],
    )
    .fail_json(2, "usage");
    env.run(POLICY, ["--json", "check", "--email", "not-an-email"])
        .fail_json(2, "usage");
    assert!(!env.db.exists(), "usage errors create nothing");
}

#[test]
fn the_policy_issuer_is_the_default_for_new_enrollments() {
    let env = Env::new();
    env.init();
    env.run(POLICY, ["set", "--issuer", "Mailborder - example.com"])
        .expect_code(0);
    let e = env.enroll(BOB);
    assert!(
        e.uri.contains("issuer=Mailborder%20-%20example.com"),
        "{}",
        e.uri
    );
    let audit = env.run(AUDIT, ["--json", "--limit", "10"]).ok_json();
    let set = audit["records"]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["action"] == "policy_set")
        .expect("policy_set audited");
    assert!(
        set["detail"]
            .as_str()
            .expect("detail")
            .contains("-> \"Mailborder - example.com\""),
        "{set}"
    );
}
