//! Races between real processes on one database.
//!
//! - 32 processes verify one backup code at once: exactly one wins.
//! - 32 processes verify one TOTP code at once: exactly one wins, and the
//!   others are told it is a replay (not counted as failures).
//! - Enrollments, re-enrollments, regenerations, disables, unlocks, verifies
//!   and lists of the same and of different accounts, all at once: nobody
//!   gets "database is busy" (exit 10), and the outcome is one a serial order
//!   could produce. The serial order is the commit order, read back from the
//!   audit trail (each process runs with its own `SUDO_USER`, so every audit
//!   record names the process that wrote it); a model replays that order,
//!   checks each process's exit code against its place in it, and predicts
//!   the final state, which is then compared with the database.
//!
//! Each race repeats `MB2FA_RELIABILITY_ROUNDS` times (default below).

use std::collections::BTreeMap;

use mb2fa_testkit::{
    BACKUP_CODES, DISABLE, ENABLE, Enrolled, Env, LIST, Run, UNLOCK, VERIFY, decode_secret,
    now_unix, previous_step_code, previous_step_time, run_all, totp_at, totp_now, wrong_code,
};

use crate::support::{
    Rng, assert_accounts_whole, assert_intact, audit_rows, copy_env, figure, no_panic, open, rounds,
};

/// Processes per race of one code.
const N: usize = 32;
/// Default rounds of each race (CI); see docs/RELIABILITY.md for larger runs.
const DEFAULT_ROUNDS: usize = 20;

#[track_caller]
fn exactly_one_winner(runs: &[Run], what: &str) {
    let report: String = runs.iter().map(|r| format!("{r}\n")).collect();
    for r in runs {
        no_panic(r);
        assert_ne!(
            r.code, 10,
            "{what}: a process gave up on storage (busy?)\n{report}"
        );
    }
    let winners = runs.iter().filter(|r| r.code == 0).count();
    assert_eq!(winners, 1, "{what}: exactly one process must win\n{report}");
    for r in runs.iter().filter(|r| r.code != 0) {
        let message = r.fail_json(1, "rejected");
        assert!(
            message.contains("already used"),
            "{what}: a loser must be told the code was already used\n{r}"
        );
    }
}

fn stdin_verifies(env: &Env, email: &str) -> Vec<std::process::Command> {
    (0..N)
        .map(|_| env.command(VERIFY, ["--json", "--email", email, "--code", "-"]))
        .collect()
}

#[test]
fn thirty_two_processes_spend_one_backup_code_once() {
    let rounds = rounds(DEFAULT_ROUNDS);
    let env = Env::new();
    let mut account: Option<Enrolled> = None;
    for round in 0..rounds {
        let index = round % 10;
        if index == 0 {
            let e = env.enroll(&format!("user{}@example.com", round / 10));
            env.activate(&e);
            account = Some(e);
        }
        let e = account.as_ref().expect("an account");
        // The same code in the forms people type it.
        let code = match round % 3 {
            0 => e.backup_codes[index].clone(),
            1 => e.backup_codes[index].to_lowercase(),
            _ => e.backup_codes[index].replace('-', " "),
        };
        let runs = run_all(
            stdin_verifies(&env, &e.email),
            Some(format!("{code}\n").as_bytes()),
        );
        exactly_one_winner(&runs, &format!("round {round}"));
        let winner = runs.iter().find(|r| r.code == 0).expect("winner").json();
        assert_eq!(winner["method"], "backup_code");
        assert_eq!(winner["backup_codes_left"], 9 - index, "round {round}");
        let listed = env.account(&e.email);
        assert_eq!(listed["backup_codes_left"], 9 - index, "round {round}");
        // Losers are not failures: the code was right once.
        assert_eq!(listed["failed_attempts"], 0, "round {round}: {listed}");
    }
    let conn = open(&env.db);
    let accepted = audit_rows(&conn)
        .iter()
        .filter(|r| r["outcome"] == "'accepted'")
        .count();
    drop(conn);
    assert_intact(&env.db);
    assert_eq!(accepted, rounds, "one accepted audit record per round");
    figure(
        "backup-code race",
        format!(
            "{rounds} rounds x {N} processes: {rounds} winners, {} rejected as already used, 0 storage errors",
            rounds * (N - 1)
        ),
    );
}

#[test]
fn thirty_two_processes_accept_one_totp_code_once() {
    let rounds = rounds(DEFAULT_ROUNDS);
    let env = Env::new();
    // One account per round (a step is accepted once per account), enrolled
    // a few at a time. Even rounds race the activation of a pending
    // enrollment, odd rounds an active account.
    let emails: Vec<String> = (0..rounds).map(|i| format!("u{i}@example.com")).collect();
    let mut enrolled = Vec::new();
    for chunk in emails.chunks(4) {
        let cmds = chunk
            .iter()
            .map(|m| env.command(ENABLE, ["--json", "--qr", "none", "--email", m.as_str()]))
            .collect();
        for run in run_all(cmds, None) {
            let doc = run.ok_json();
            enrolled.push((
                doc["email"].as_str().expect("email").to_string(),
                doc["secret"].as_str().expect("secret").to_string(),
            ));
        }
    }
    let mut activations = 0;
    for (round, (email, secret)) in enrolled.iter().enumerate() {
        let pending = round % 2 == 0;
        if !pending {
            // Activate with the previous step's code; race on the current one.
            env.verify_json(email, &previous_step_code(secret))
                .ok_json();
        }
        let code = totp_now(secret, 0);
        let runs = run_all(
            stdin_verifies(&env, email),
            Some(format!("{code}\n").as_bytes()),
        );
        exactly_one_winner(&runs, &format!("round {round}"));
        let winner = runs.iter().find(|r| r.code == 0).expect("winner").json();
        assert_eq!(winner["method"], "totp");
        assert_eq!(winner["activated"], pending, "round {round}");
        activations += usize::from(pending);
        let listed = env.account(email);
        assert_eq!(listed["state"], "active");
        assert_eq!(listed["failed_attempts"], 0, "round {round}: {listed}");
    }
    assert_intact(&env.db);
    figure(
        "TOTP race",
        format!(
            "{rounds} rounds x {N} processes ({activations} racing an activation): {rounds} winners, {} rejected as replays, 0 storage errors",
            rounds * (N - 1)
        ),
    );
}

// ---------------------------------------------------------------------------
// The mixed race and its serial model
// ---------------------------------------------------------------------------

const A: &str = "alice@example.com";
const B: &str = "bob@example.com";
const C: &str = "carol@example.com";
const D: &str = "dave@example.com";

/// Which enrollment a secret or a set of backup codes came from: the
/// prepared database's, or the one printed by process `i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Made {
    Template,
    Process(usize),
    /// A code that belongs to no enrollment.
    Nobody,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Enable { force: bool },
    Disable,
    Regenerate,
    Unlock,
    Totp { made: Made },
    Backup { set: Made, index: usize },
    List,
}

#[derive(Debug, Clone)]
struct Op {
    email: &'static str,
    kind: Kind,
}

/// The model of one account.
#[derive(Debug, Clone)]
struct Model {
    made: Made,
    active: bool,
    set: Made,
    used: [bool; 10],
    last_step: Option<i64>,
    failed: i64,
}

/// The failure number an audit detail reports (`...; failure 3 of 5`).
fn failure_number(detail: &str) -> Option<i64> {
    let at = detail.find("failure ")?;
    detail[at + 8..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn exit_of(outcome: &str) -> i32 {
    match outcome {
        "ok" | "accepted" | "activated" => 0,
        "rejected" => 1,
        "not_enrolled" => 3,
        "locked" => 4,
        "conflict" => 5,
        other => panic!("unexpected audit outcome {other:?}"),
    }
}

fn unquote(v: &str) -> &str {
    v.trim_matches('\'')
}

/// Replay the audit records of the round in commit order against the model,
/// checking that each outcome is the one the model allows at that point.
/// `step` is the TOTP step the round's codes were made for. Returns the
/// number of records per process.
fn replay(
    ops: &[Op],
    records: &[crate::support::Row],
    model: &mut BTreeMap<&'static str, Option<Model>>,
    runs: &[Run],
    step: i64,
) -> Vec<usize> {
    let mut per_process = vec![0usize; ops.len()];
    let mut was_pending: BTreeMap<&str, bool> = model
        .iter()
        .map(|(k, m)| (*k, m.as_ref().is_some_and(|m| !m.active)))
        .collect();
    let mut replaced: BTreeMap<&str, bool> = BTreeMap::new();
    for rec in records {
        let actor = unquote(&rec["actor"]);
        let Some(i) = actor
            .strip_prefix('p')
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        per_process[i] += 1;
        let op = &ops[i];
        let outcome = unquote(&rec["outcome"]);
        let detail = unquote(&rec["detail"]);
        let ctx = format!("record {rec:?} of process {i} ({op:?})\n{}", runs[i]);
        assert_eq!(unquote(&rec["email"]), op.email, "{ctx}");
        let slot = model.get_mut(op.email).expect("modelled email");
        match (op.kind, outcome) {
            (_, "not_enrolled") => assert!(slot.is_none(), "not_enrolled, but enrolled: {ctx}"),
            (Kind::Enable { force }, "ok") => {
                assert!(
                    force || slot.as_ref().is_none_or(|m| !m.active),
                    "an active enrollment replaced without --force: {ctx}"
                );
                *slot = Some(Model {
                    made: Made::Process(i),
                    active: false,
                    set: Made::Process(i),
                    used: [false; 10],
                    last_step: None,
                    failed: 0,
                });
                was_pending.insert(op.email, true);
                replaced.insert(op.email, true);
            }
            (Kind::Enable { force }, "conflict") => {
                assert!(
                    !force && slot.as_ref().is_some_and(|m| m.active),
                    "conflict, but nothing active to protect: {ctx}"
                );
            }
            // The enrollment was made or replaced between the look that
            // disable showed (or found nothing) and its removal: nothing is
            // removed, and there is an enrollment at that point.
            (Kind::Disable, "conflict") => assert!(slot.is_some(), "{ctx}"),
            (Kind::Disable, "ok") => {
                assert!(slot.is_some(), "{ctx}");
                *slot = None;
                replaced.insert(op.email, true);
            }
            (Kind::Regenerate, "ok") => {
                let m = slot.as_mut().unwrap_or_else(|| panic!("{ctx}"));
                m.set = Made::Process(i);
                m.used = [false; 10];
            }
            (Kind::Unlock, "ok") => {
                let m = slot.as_mut().unwrap_or_else(|| panic!("{ctx}"));
                m.failed = 0;
            }
            (Kind::Totp { .. } | Kind::Backup { .. }, "locked") => {
                let m = slot.as_ref().unwrap_or_else(|| panic!("{ctx}"));
                assert!(
                    m.failed >= 5,
                    "locked after only {} failures: {ctx}",
                    m.failed
                );
            }
            (Kind::Totp { made }, "accepted" | "activated") => {
                let m = slot.as_mut().unwrap_or_else(|| panic!("{ctx}"));
                assert!(m.failed < 5, "accepted while locked: {ctx}");
                assert_eq!(m.made, made, "a code of another secret accepted: {ctx}");
                assert!(
                    m.last_step.is_none_or(|l| l < step),
                    "a used step accepted again (replay): {ctx}"
                );
                assert_eq!(outcome == "activated", !m.active, "{ctx}");
                m.active = true;
                m.last_step = Some(step);
                m.failed = 0;
            }
            (Kind::Totp { made }, "rejected") => {
                let m = slot.as_mut().unwrap_or_else(|| panic!("{ctx}"));
                assert!(m.failed < 5, "judged while locked: {ctx}");
                if m.made == made {
                    assert!(
                        m.last_step.is_some_and(|l| l >= step) && detail.contains("already used"),
                        "a fresh code of this secret rejected: {ctx}"
                    );
                } else {
                    assert_eq!(
                        failure_number(detail),
                        Some(m.failed + 1),
                        "a lost or double-counted failure: {ctx}"
                    );
                    m.failed += 1;
                }
            }
            (Kind::Backup { set, index }, "accepted") => {
                let m = slot.as_mut().unwrap_or_else(|| panic!("{ctx}"));
                assert!(m.active, "a backup code accepted while pending: {ctx}");
                assert!(m.failed < 5, "accepted while locked: {ctx}");
                assert_eq!(m.set, set, "a revoked backup code accepted: {ctx}");
                assert!(!m.used[index], "a backup code accepted twice: {ctx}");
                m.used[index] = true;
                m.failed = 0;
            }
            // The enrollment was replaced or removed while the argon2 check
            // ran: refused before anything else is looked at.
            (Kind::Backup { .. }, "rejected") if detail.contains("changed meanwhile") => {
                assert!(replaced.get(op.email).copied().unwrap_or(false), "{ctx}");
            }
            (Kind::Backup { set, index }, "rejected") => {
                let m = slot.as_mut().unwrap_or_else(|| panic!("{ctx}"));
                assert!(m.failed < 5, "judged while locked: {ctx}");
                if detail.contains("pending") {
                    assert!(was_pending.get(op.email).copied().unwrap_or(false), "{ctx}");
                } else if detail.contains("already used") {
                    assert!(
                        m.set != set || m.used[index],
                        "an unused backup code called used: {ctx}"
                    );
                } else if detail.contains("revoked meanwhile") {
                    // New codes were made while the argon2 check ran (issue
                    // 12 item 6): refused, not counted.
                    assert_ne!(m.set, set, "a current backup code called revoked: {ctx}");
                } else {
                    assert_ne!(m.set, set, "a valid backup code counted as wrong: {ctx}");
                    assert_eq!(
                        failure_number(detail),
                        Some(m.failed + 1),
                        "a lost or double-counted failure: {ctx}"
                    );
                    m.failed += 1;
                }
            }
            _ => panic!("an outcome the model does not allow: {ctx}"),
        }
        assert_eq!(
            runs[i].code,
            exit_of(outcome),
            "exit code and audit record disagree: {ctx}"
        );
    }
    per_process
}

struct Template {
    env: Env,
    accounts: BTreeMap<&'static str, Enrolled>,
    models: BTreeMap<&'static str, Option<Model>>,
    last_audit_id: i64,
}

/// alice and bob active (bob has spent nothing, alice one backup code),
/// carol pending, dave not enrolled.
fn template() -> Template {
    let env = Env::new();
    let mut accounts = BTreeMap::new();
    let mut models = BTreeMap::new();
    for email in [A, B, C] {
        let e = env.enroll(email);
        let active = email != C;
        let mut last_step = None;
        if active {
            let t = previous_step_time();
            env.verify_json(email, &totp_at(&decode_secret(&e.secret), t, 6))
                .ok_json();
            last_step = Some(i64::try_from(t / 30).expect("step"));
        }
        let mut used = [false; 10];
        if email == A {
            env.verify_json(email, &e.backup_codes[7]).ok_json();
            used[7] = true;
        }
        models.insert(
            email,
            Some(Model {
                made: Made::Template,
                active,
                set: Made::Template,
                used,
                last_step,
                failed: 0,
            }),
        );
        accounts.insert(email, e);
    }
    models.insert(D, None);
    let conn = open(&env.db);
    let last_audit_id = conn
        .query_row("SELECT max(id) FROM audit", [], |r| r.get(0))
        .expect("audit");
    Template {
        env,
        accounts,
        models,
        last_audit_id,
    }
}

fn ops_for_round(rng: &mut Rng) -> Vec<Op> {
    let t = Made::Template;
    let mut ops = Vec::new();
    let mut add = |email, kind, n: usize| {
        for _ in 0..n {
            ops.push(Op { email, kind });
        }
    };
    add(A, Kind::Totp { made: t }, 4);
    add(A, Kind::Backup { set: t, index: 0 }, 3);
    add(A, Kind::Backup { set: t, index: 1 }, 1);
    add(A, Kind::Backup { set: t, index: 7 }, 1);
    add(A, Kind::Totp { made: Made::Nobody }, 2);
    add(A, Kind::Unlock, 1);
    add(A, Kind::Regenerate, 1);
    add(A, Kind::List, 2);
    add(B, Kind::Enable { force: true }, 1);
    add(B, Kind::Totp { made: t }, 2);
    add(B, Kind::Backup { set: t, index: 0 }, 2);
    add(B, Kind::Disable, 1);
    add(B, Kind::Unlock, 1);
    add(C, Kind::Enable { force: false }, 1);
    add(C, Kind::Totp { made: t }, 3);
    add(C, Kind::Regenerate, 1);
    add(C, Kind::Backup { set: t, index: 0 }, 1);
    add(D, Kind::Enable { force: false }, 2);
    add(D, Kind::Totp { made: Made::Nobody }, 1);
    add(D, Kind::Unlock, 1);
    add(D, Kind::Disable, 1);
    // Vary the mix and the start order from round to round.
    ops.retain(|_| !rng.chance(20));
    rng.shuffle(&mut ops);
    ops
}

fn args_of(op: &Op, tpl: &Template, totp: &BTreeMap<&str, String>, wrong: &str) -> Vec<String> {
    let s = |v: &str| v.to_string();
    let email = s(op.email);
    match op.kind {
        Kind::Enable { force } => {
            let mut a = vec![s("--json"), s("--qr"), s("none"), s("--email"), email];
            if force {
                a.push(s("--force"));
            }
            a
        }
        Kind::Disable => vec![s("--json"), s("--yes"), s("--email"), email],
        Kind::Regenerate | Kind::Unlock => vec![s("--json"), s("--email"), email],
        Kind::Totp { made } => {
            let code = match made {
                Made::Template => totp[op.email].clone(),
                _ => s(wrong),
            };
            vec![s("--json"), s("--email"), email, s("--code"), code]
        }
        Kind::Backup { index, .. } => {
            let code = tpl.accounts[op.email].backup_codes[index].clone();
            vec![s("--json"), s("--email"), email, s("--code"), code]
        }
        Kind::List => vec![s("--json")],
    }
}

fn tool_of(kind: Kind) -> &'static str {
    match kind {
        Kind::Enable { .. } => ENABLE,
        Kind::Disable => DISABLE,
        Kind::Regenerate => BACKUP_CODES,
        Kind::Unlock => UNLOCK,
        Kind::Totp { .. } | Kind::Backup { .. } => VERIFY,
        Kind::List => LIST,
    }
}

/// `mb-2fa-verify --diagnose --json`: the finding for `code`.
fn finding(env: &Env, email: &str, code: &str) -> String {
    let run = env.run(
        VERIFY,
        ["--json", "--email", email, "--code", code, "--diagnose"],
    );
    run.ok_json()["finding"]
        .as_str()
        .unwrap_or_else(|| panic!("no finding\n{run}"))
        .to_string()
}

/// Compare the database with the model at the end of a round.
fn check_final(
    env: &Env,
    tpl: &Template,
    model: &BTreeMap<&'static str, Option<Model>>,
    runs: &[Run],
    round: usize,
) {
    let conn = open(&env.db);
    assert_accounts_whole(&conn, false);
    let secret_of = |made: Made, email: &str| -> String {
        match made {
            Made::Template => tpl.accounts[email].secret.clone(),
            Made::Process(i) => runs[i].json()["secret"]
                .as_str()
                .expect("secret")
                .to_string(),
            Made::Nobody => unreachable!("no enrollment is made by nobody"),
        }
    };
    let codes_of = |set: Made, email: &str| -> Vec<String> {
        match set {
            Made::Template => tpl.accounts[email].backup_codes.clone(),
            Made::Process(i) => runs[i].json()["backup_codes"]
                .as_array()
                .expect("codes")
                .iter()
                .map(|c| c.as_str().expect("code").to_string())
                .collect(),
            Made::Nobody => unreachable!(),
        }
    };
    for (email, m) in model {
        let row = crate::support::stored(&conn, email);
        let ctx = format!("round {round}, {email}: model {m:?}, stored {row:?}");
        let (Some(m), Some(row)) = (m, &row) else {
            assert!(m.is_none() && row.is_none(), "{ctx}");
            continue;
        };
        let a = &row.account;
        let state = if m.active { "'active'" } else { "'pending'" };
        assert_eq!(a["state"], state, "{ctx}");
        assert_eq!(a["failed_attempts"], m.failed.to_string(), "{ctx}");
        let last = m
            .last_step
            .map_or_else(|| "NULL".to_string(), |s| s.to_string());
        assert_eq!(a["last_step"], last, "{ctx}");
        let unused = row.codes.iter().filter(|c| c["used_at"] == "NULL").count();
        assert_eq!(unused, m.used.iter().filter(|u| !**u).count(), "{ctx}");
        // The secret is the model's: its current code matches (fresh or used).
        let secret = secret_of(m.made, email);
        let f = finding(env, email, &totp_now(&secret, 0));
        assert!(f == "valid" || f == "already_used", "{ctx}: finding {f}");
        // The backup codes are the model's set: an unused one is valid, a
        // used one is used.
        let codes = codes_of(m.set, email);
        assert_eq!(finding(env, email, &codes[9]), "backup_code_valid", "{ctx}");
        if let Some(i) = m.used.iter().position(|u| *u) {
            assert_eq!(finding(env, email, &codes[i]), "backup_code_used", "{ctx}");
        }
    }
    drop(conn);
    assert_intact(&env.db);
}

#[test]
fn everything_at_once_ends_in_a_serial_state() {
    let rounds = rounds(DEFAULT_ROUNDS);
    let mut rng = Rng::for_test("mixed race");
    let tpl = template();
    let (mut processes, mut outcomes) = (0usize, BTreeMap::<String, usize>::new());
    for round in 0..rounds {
        let env = Env::new();
        copy_env(&tpl.env, &env);
        let t = now_unix();
        let step = i64::try_from(t / 30).expect("step");
        let totp: BTreeMap<&str, String> = tpl
            .accounts
            .iter()
            .map(|(k, e)| (*k, totp_at(&decode_secret(&e.secret), t, 6)))
            .collect();
        let wrong = wrong_code(&tpl.accounts[A].secret);
        let ops = ops_for_round(&mut rng);
        let cmds = ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let mut cmd = env.command(tool_of(op.kind), args_of(op, &tpl, &totp, &wrong));
                cmd.env("SUDO_USER", format!("p{i}"));
                cmd
            })
            .collect();
        let runs = run_all(cmds, None);
        let report: String = runs.iter().map(|r| format!("{r}\n")).collect();
        for r in &runs {
            no_panic(r);
            assert_ne!(r.code, 10, "round {round}: storage error (busy?)\n{report}");
        }
        let records: Vec<_> = audit_rows(&open(&env.db))
            .into_iter()
            .filter(|r| r["id"].parse::<i64>().expect("id") > tpl.last_audit_id)
            .collect();
        let mut model = tpl.models.clone();
        let per_process = replay(&ops, &records, &mut model, &runs, step);
        for (i, op) in ops.iter().enumerate() {
            let n = per_process[i];
            let ctx = format!(
                "round {round}, process {i} ({op:?}): {n} audit records\n{}",
                runs[i]
            );
            match op.kind {
                Kind::List => {
                    assert_eq!(n, 0, "{ctx}");
                    let doc = runs[i].ok_json();
                    for a in doc["accounts"].as_array().expect("accounts") {
                        let left = a["backup_codes_left"].as_u64().expect("left");
                        assert!(left <= 10, "{ctx}");
                    }
                }
                // Regenerating an enrollment that was replaced meanwhile is
                // refused (exit 5) before any change, and not audited.
                Kind::Regenerate if runs[i].code == 5 => {
                    assert_eq!(n, 0, "{ctx}");
                    assert!(
                        ops.iter().enumerate().any(|(j, o)| o.email == op.email
                            && matches!(o.kind, Kind::Enable { .. } | Kind::Disable)
                            && runs[j].code == 0),
                        "{ctx}"
                    );
                }
                _ => assert_eq!(n, 1, "exactly one audit record per process: {ctx}"),
            }
            let key = format!("{} exit {}", tool_of(op.kind), runs[i].code);
            *outcomes.entry(key).or_default() += 1;
        }
        check_final(&env, &tpl, &model, &runs, round);
        processes += ops.len();
    }
    let summary: Vec<String> = outcomes.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    figure(
        "mixed race",
        format!(
            "{rounds} rounds, {processes} processes, 0 storage errors, 0 states off the serial model; outcomes: {}",
            summary.join(", ")
        ),
    );
}

// ---------------------------------------------------------------------------
// What a reader sees while writers run
// ---------------------------------------------------------------------------

/// One consistent read of the invariants a reader (a login, `mb-2fa-list`)
/// relies on: every account has its 10 backup codes, all made together; and
/// the key fingerprint is recorded exactly when every secret is sealed.
fn snapshot_violations(conn: &rusqlite::Connection) -> Vec<String> {
    let tx = conn.unchecked_transaction().expect("read transaction");
    let mut bad: Vec<String> = Vec::new();
    if crate::support::schema_objects(&tx).contains(&"table accounts".to_string()) {
        let rows = crate::support::rows(
            &tx,
            "SELECT a.email, length(a.secret) AS len,
                    (SELECT count(*) FROM backup_codes b WHERE b.account_id = a.id) AS codes,
                    (SELECT count(DISTINCT created_at) FROM backup_codes b WHERE b.account_id = a.id) AS batches
             FROM accounts a",
            [],
        );
        let fingerprint = crate::support::setting(&tx, "key_fingerprint").is_some();
        for r in &rows {
            if r["codes"] != "10" || r["batches"] != "1" {
                bad.push(format!("a half-made set of backup codes: {r:?}"));
            }
            let sealed = r["len"] == "61";
            if sealed != fingerprint {
                bad.push(format!(
                    "sealed {sealed} but key recorded {fingerprint}: {r:?}"
                ));
            }
        }
    }
    drop(tx);
    bad
}

/// Run `cmds` at once while this thread reads the database as fast as it
/// can; returns the runs and the number of snapshots read.
fn observe(db: &std::path::Path, cmds: Vec<std::process::Command>) -> (Vec<Run>, usize) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    let writers = std::thread::spawn(move || {
        let runs = run_all(cmds, None);
        flag.store(true, Ordering::SeqCst);
        runs
    });
    let conn = open(db);
    let mut snapshots = 0;
    while !done.load(Ordering::SeqCst) {
        let bad = snapshot_violations(&conn);
        assert!(bad.is_empty(), "a reader saw a half-made change: {bad:?}");
        snapshots += 1;
    }
    (writers.join().expect("writers"), snapshots)
}

#[test]
fn readers_never_see_a_half_made_change() {
    // Re-enrollments, new enrollments and regenerations commit an account
    // and its ten codes together; the first keyed tool on a version 1
    // database seals every secret and records the key together. A reader
    // polling between their statements never sees one without the other.
    let rounds = (rounds(DEFAULT_ROUNDS) / 4).max(1);
    let mut snapshots = 0;
    let mut writes = 0;
    for round in 0..rounds {
        let env = Env::new();
        let e = env.enroll(A);
        env.activate(&e);
        let mut cmds = Vec::new();
        for i in 0..4 {
            cmds.push(env.command(ENABLE, ["--json", "--qr", "none", "--force", "--email", A]));
            cmds.push(env.command(BACKUP_CODES, ["--json", "--email", A]));
            let other = format!("user{i}@example.com");
            cmds.push(env.command(
                ENABLE,
                ["--json", "--qr", "none", "--email", other.as_str()],
            ));
        }
        writes += cmds.len();
        let (runs, n) = observe(&env.db, cmds);
        snapshots += n;
        for r in &runs {
            no_panic(r);
            assert!(r.code == 0 || r.code == 5, "round {round}\n{r}");
        }
        assert_intact(&env.db);

        // The version 1 upgrade, by several seal-plaintext runs at once.
        let v1 = Env::new();
        std::fs::copy(mb2fa_testkit::fixtures().join("schema-v1/2fa.db"), &v1.db).expect("fixture");
        std::fs::set_permissions(&v1.db, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod");
        let cmds = (0..3)
            .map(|_| v1.command(mb2fa_testkit::STORE, ["seal-plaintext", "--json"]))
            .collect();
        let (runs, n) = observe(&v1.db, cmds);
        snapshots += n;
        writes += runs.len();
        for r in &runs {
            no_panic(r);
            assert!(r.code == 0 || r.code == 5, "round {round}\n{r}");
        }
        assert_eq!(
            runs.iter().filter(|r| r.code == 0).count(),
            1,
            "round {round}: one seal"
        );
    }
    figure(
        "readers during writes",
        format!(
            "{rounds} rounds, {writes} writing processes, {snapshots} snapshots read while they ran: 0 half-made changes seen"
        ),
    );
}

#[test]
fn four_first_enrollments_at_once_on_a_new_database() {
    // Found by the benchmarks: on a database nobody had used, concurrent
    // first tools each wanted the exclusive lock to switch it to WAL, and
    // SQLite refused all but one at once ("busy"), 2-3% of the time.
    let rounds = rounds(DEFAULT_ROUNDS);
    for round in 0..rounds {
        let env = Env::new();
        let cmds = (0..4)
            .map(|i| {
                let email = format!("u{i}@example.com");
                env.command(
                    ENABLE,
                    ["--json", "--qr", "none", "--email", email.as_str()],
                )
            })
            .collect();
        for run in run_all(cmds, None) {
            assert_eq!(run.code, 0, "round {round}\n{run}");
        }
        assert_eq!(env.accounts().len(), 4, "round {round}");
    }
    figure(
        "first use",
        format!("{rounds} new databases, 4 enrollments at once each: all stored, no busy error"),
    );
}

/// A regeneration of the backup codes racing a verification of an old one
/// (issue 12 item 6): the old code is accepted only if its spend committed
/// before the new batch, and a new batch is never touched by the spend of an
/// old code (row ids of the new batch reuse the old ones).
#[test]
fn a_revoked_backup_code_never_works_after_the_regeneration() {
    let trials = rounds(DEFAULT_ROUNDS);
    let mut rng = Rng::for_test("a_revoked_backup_code_never_works_after_the_regeneration");
    let mut accepted_before = 0;
    let mut rejected = 0;
    let probe = Env::new();
    let p = probe.enroll(A);
    probe.activate(&p);
    let mut regen_time = std::time::Duration::ZERO;
    for trial in 0..trials {
        if trial % 5 == 0 {
            regen_time =
                crate::support::time_one(probe.command(BACKUP_CODES, ["--json", "--email", A]));
        }
        let env = Env::new();
        let e = env.enroll(A);
        env.activate(&e);
        let old = e.backup_codes[trial % 10].clone();
        let mut regen = env.command(BACKUP_CODES, ["--json", "--email", A]);
        let regen_child = mb2fa_testkit::spawn(&mut regen, false);
        let wait = regen_time.as_micros() as u64 * (40 + rng.below(70)) / 100;
        std::thread::sleep(std::time::Duration::from_micros(wait));
        let verify = env.verify_json(A, &old);
        let regen = mb2fa_testkit::finish(regen_child, "mb-2fa-backup-codes".into());
        let new_codes = regen.ok_json()["backup_codes"]
            .as_array()
            .expect("backup_codes")
            .len();
        assert_eq!(new_codes, 10);
        let conn = open(&env.db);
        let order: Vec<String> = audit_rows(&conn)
            .into_iter()
            .filter(|r| r["action"] != "'diagnose'")
            .map(|r| format!("{} {}", r["action"], r["outcome"]))
            .collect();
        let left: i64 = conn
            .query_row(
                "SELECT count(*) FROM backup_codes WHERE used_at IS NULL",
                [],
                |r| r.get(0),
            )
            .expect("count");
        let ctx = format!("trial {trial}, verify after {wait} us\n{verify}\n{order:#?}");
        match verify.code {
            0 => {
                // Its spend must precede the regeneration in commit order.
                let spent = order
                    .iter()
                    .position(|o| o == "'verify' 'accepted'")
                    .expect("the accepted verify is audited");
                let regenerated = order
                    .iter()
                    .position(|o| o == "'backup_codes' 'ok'")
                    .expect("the regeneration is audited");
                assert!(spent < regenerated, "a revoked code was accepted: {ctx}");
                accepted_before += 1;
            }
            1 => rejected += 1,
            _ => panic!("unexpected exit: {ctx}"),
        }
        assert_eq!(left, 10, "the new batch lost a code: {ctx}");
        // And the old code never works now.
        env.verify_json(A, &old).fail_json(1, "rejected");
    }
    figure(
        "revoked backup codes",
        format!(
            "{trials} regenerations raced by a verify of an old code: {accepted_before} spent before the new batch, {rejected} refused, 0 accepted after it"
        ),
    );
}
