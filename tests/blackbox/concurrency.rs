//! Races: many processes at once on one database. A backup code is spent once
//! and a TOTP step accepted once, whatever the interleaving, and nobody gives
//! up with "database is busy" (exit 10).

use mb2fa_testkit::{ENABLE, Env, Run, VERIFY, run_all, totp_now};

const ALICE: &str = "alice@example.com";
const N: usize = 16;

#[track_caller]
fn exactly_one_winner(runs: &[Run]) {
    let report: String = runs.iter().map(|r| format!("{r}\n")).collect();
    assert!(
        runs.iter().all(|r| r.code != 10),
        "a process failed on storage (busy?):\n{report}"
    );
    let winners = runs.iter().filter(|r| r.code == 0).count();
    let losers = runs.iter().filter(|r| r.code == 1).count();
    assert_eq!(winners, 1, "exactly one process must win:\n{report}");
    assert_eq!(
        losers,
        N - 1,
        "every other process must be rejected (exit 1):\n{report}"
    );
    for r in runs.iter().filter(|r| r.code == 1) {
        r.fail_json(1, "rejected");
    }
}

#[test]
fn sixteen_processes_one_backup_code() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    // All processes are started and wait for the code on stdin; then every
    // one gets it at once.
    let cmds = (0..N)
        .map(|_| env.command(VERIFY, ["--json", "--email", ALICE, "--code", "-"]))
        .collect();
    let input = format!("{}\n", e.backup_codes[3]);
    let runs = run_all(cmds, Some(input.as_bytes()));
    exactly_one_winner(&runs);
    let winner = runs.iter().find(|r| r.code == 0).expect("winner").json();
    assert_eq!(winner["backup_codes_left"], 9);
    assert_eq!(env.account(ALICE)["backup_codes_left"], 9);
}

#[test]
fn sixteen_processes_one_totp_code() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    // A step after the activation's, so it is fresh.
    let code = totp_now(&e.secret, 1);
    let cmds = (0..N)
        .map(|_| {
            env.command(
                VERIFY,
                ["--json", "--email", ALICE, "--code", code.as_str()],
            )
        })
        .collect();
    let runs = run_all(cmds, None);
    exactly_one_winner(&runs);
}

#[test]
fn sixteen_processes_activate_one_pending_enrollment() {
    let env = Env::new();
    let e = env.enroll(ALICE);
    let code = totp_now(&e.secret, 0);
    let cmds = (0..N)
        .map(|_| env.command(VERIFY, ["--json", "--email", ALICE, "--code", "-"]))
        .collect();
    let input = format!("{code}\n");
    let runs = run_all(cmds, Some(input.as_bytes()));
    exactly_one_winner(&runs);
    let winner = runs.iter().find(|r| r.code == 0).expect("winner").json();
    assert_eq!(winner["activated"], true);
    assert_eq!(env.account(ALICE)["state"], "active");
}

#[test]
fn concurrent_first_use_creates_one_database() {
    // Several enrollments race to create and migrate a fresh database.
    let env = Env::new();
    let emails: Vec<String> = (0..6).map(|i| format!("user{i}@example.com")).collect();
    let cmds = emails
        .iter()
        .map(|m| env.command(ENABLE, ["--json", "--qr", "none", "--email", m.as_str()]))
        .collect();
    let runs = run_all(cmds, None);
    for r in &runs {
        r.ok_json();
    }
    let mut listed: Vec<String> = env
        .accounts()
        .iter()
        .map(|a| a["email"].as_str().expect("email").to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, emails);
}
