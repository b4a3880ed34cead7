//! A 3-node Galera cluster on loopback: the promises that must hold across
//! nodes. Each test has its own database on a cluster shared by this
//! process; the node-kill test has a cluster of its own.

use std::io::Write;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mb2fa_testkit::mariadb::Cluster;
use mb2fa_testkit::{
    Enrolled, Env, Run, VERIFY, finish, previous_step_code, run_command, spawn, totp_now,
    wrong_codes,
};
use serde_json::Value;

use crate::support::{at, enroll_at};

const NODES: usize = 3;

fn shared() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    let c = CLUSTER
        .get_or_init(|| {
            let started = Instant::now();
            let c = Cluster::start(NODES);
            if c.is_some() {
                eprintln!(
                    "Galera cluster of {NODES} up in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            c
        })
        .as_ref();
    if c.is_none() {
        eprintln!("Galera is not installed here: test not run (CI sets MB2FA_REQUIRE_MARIADB=1)");
    }
    c
}

/// Rounds of the race tests (`MB2FA_CLUSTER_ROUNDS`, default 20).
fn rounds() -> usize {
    std::env::var("MB2FA_CLUSTER_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

/// A database on the cluster and one URL per node.
struct ClusterDb {
    env: Env,
    name: String,
    urls: Vec<String>,
}

impl ClusterDb {
    fn on(cluster: &Cluster) -> ClusterDb {
        let name = cluster.create_database();
        let urls = cluster.nodes.iter().map(|n| n.url(&name)).collect();
        ClusterDb {
            env: Env::new(),
            name,
            urls,
        }
    }

    fn run(&self, node: usize, args: &[&str]) -> Run {
        run_command(at(&self.env, &self.urls[node], VERIFY, args), None)
    }

    /// Enroll on node 0 and activate with the previous step's code on
    /// `node`, so the current step is still unused.
    fn active(&self, email: &str, node: usize) -> Enrolled {
        let e = enroll_at(&self.env, &self.urls[0], email);
        let run = self.run(
            node,
            &[
                "--json",
                "--email",
                email,
                "--code",
                &previous_step_code(&e.secret),
            ],
        );
        assert_eq!(run.ok_json()["activated"], Value::Bool(true), "{run}");
        e
    }
}

/// Start every `(node, code)` verification of `email` at once (each reads
/// its code from stdin, written only once all have started); their runs
/// in the same order.
fn race(db: &ClusterDb, email: &str, attempts: &[(usize, String)]) -> Vec<Run> {
    let mut children = Vec::new();
    for (node, _) in attempts {
        let mut cmd: Command = at(
            &db.env,
            &db.urls[*node],
            VERIFY,
            &["--email", email, "--code", "-"],
        );
        let line = format!("node {node}: mb-2fa-verify --email {email} --code -");
        children.push((spawn(&mut cmd, true), line));
    }
    for ((child, _), (_, code)) in children.iter_mut().zip(attempts) {
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(format!("{code}\n").as_bytes());
        }
    }
    children
        .into_iter()
        .map(|(child, line)| finish(child, line))
        .collect()
}

fn codes_of(runs: &[Run]) -> Vec<i32> {
    runs.iter().map(|r| r.code).collect()
}

#[test]
fn one_totp_code_and_one_backup_code_are_accepted_once_across_nodes() {
    let Some(cluster) = shared() else { return };
    let db = ClusterDb::on(cluster);
    let started = Instant::now();
    for round in 0..rounds() {
        let email = format!("racer{round}@example.com");
        let e = db.active(&email, round % NODES);
        let code = totp_now(&e.secret, 0);
        let backup = e.backup_codes[round % 10].clone();
        // 24 processes, 8 per node: 12 with the TOTP code, 12 with one backup code.
        let attempts: Vec<(usize, String)> = (0..24)
            .map(|i| {
                (
                    i % NODES,
                    if i % 2 == 0 {
                        code.clone()
                    } else {
                        backup.clone()
                    },
                )
            })
            .collect();
        let runs = race(&db, &email, &attempts);
        let (totp, backups): (Vec<_>, Vec<_>) =
            runs.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        for (what, group) in [("TOTP code", totp), ("backup code", backups)] {
            let exits: Vec<i32> = group.iter().map(|(_, r)| r.code).collect();
            let accepted = exits.iter().filter(|c| **c == 0).count();
            let rejected = exits.iter().filter(|c| **c == 1).count();
            if (accepted, rejected) != (1, 11) {
                // What the store recorded, in commit order per node, to
                // tell a double accept from a floor that went back.
                let trail = cluster.nodes[0].sql(
                    Some(&db.name),
                    &format!(
                        "SET SESSION wsrep_sync_wait = 1; SELECT id, at, node, outcome, detail FROM mb2fa_audit WHERE email = '{email}' ORDER BY id"
                    ),
                );
                panic!(
                    "round {round}: the {what} must be accepted exactly once, every other try rejected (exit 1), never exit 10: {exits:?}\naudit trail:\n{trail}\n{}",
                    group
                        .iter()
                        .map(|(_, r)| r.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
        }
        // Every node agrees: one backup code spent, the step recorded.
        for node in &cluster.nodes {
            let spent = node.sql(
                Some(&db.name),
                &format!(
                    "SET SESSION wsrep_sync_wait = 1; SELECT COUNT(*) FROM mb2fa_backup_codes b JOIN mb2fa_accounts a ON a.id = b.account_id WHERE a.email = '{email}' AND b.used_at IS NOT NULL"
                ),
            );
            assert_eq!(
                spent.trim(),
                "1",
                "round {round}: one backup code spent, seen on every node"
            );
        }
        // The accepted code stays used on every node.
        for n in 0..NODES {
            db.run(n, &["--email", &email, "--code", &code])
                .expect_code(1);
        }
    }
    eprintln!(
        "{} rounds of 24 racing verifications over {NODES} nodes in {:.1} s",
        rounds(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn thirty_wrong_codes_over_the_nodes_are_five_failures_and_a_lock() {
    let Some(cluster) = shared() else { return };
    let db = ClusterDb::on(cluster);
    let email = "guessed@example.com";
    let e = db.active(email, 1);
    let attempts: Vec<(usize, String)> = wrong_codes(&e.secret, 30)
        .into_iter()
        .enumerate()
        .map(|(i, c)| (i % NODES, c))
        .collect();
    let runs = race(&db, email, &attempts);
    let exits = codes_of(&runs);
    let evaluated = exits.iter().filter(|c| **c == 1).count();
    let locked = exits.iter().filter(|c| **c == 4).count();
    assert_eq!(
        (evaluated, locked),
        (5, 25),
        "exactly 5 wrong codes evaluated (exit 1), the other 25 refused as locked (exit 4): {exits:?}"
    );
    for node in &cluster.nodes {
        let row = node.sql(
            Some(&db.name),
            &format!("SET SESSION wsrep_sync_wait = 1; SELECT failed_attempts, locked_until IS NOT NULL FROM mb2fa_accounts WHERE email = '{email}'"),
        );
        assert_eq!(
            row.trim(),
            "5\t1",
            "every node counts 5 failures and the lock"
        );
    }
    // Even the right code is refused now, on every node.
    for n in 0..NODES {
        db.run(n, &["--email", email, "--code", &totp_now(&e.secret, 0)])
            .expect_code(4);
    }
}

#[test]
fn an_enrollment_made_on_one_node_verifies_on_another_at_once() {
    let Some(cluster) = shared() else { return };
    let db = ClusterDb::on(cluster);
    for i in 0..10 {
        let email = format!("roaming{i}@example.com");
        let from = i % NODES;
        let to = (i + 1) % NODES;
        let e = enroll_at(&db.env, &db.urls[from], &email);
        let code = totp_now(&e.secret, 0);
        let run = db.run(to, &["--json", "--email", &email, "--code", &code]);
        assert_eq!(
            run.ok_json()["activated"],
            Value::Bool(true),
            "enrolled on node {from}, verified on node {to}\n{run}"
        );
        let third = (i + 2) % NODES;
        db.run(third, &["--email", &email, "--code", &code])
            .fail_line(1, VERIFY, "already used");
    }
}

/// A storage error a survivor may give while the cluster re-forms after a
/// node died: busy, a conflict whose retries ran out, or not (yet) primary.
fn reconfiguring(stderr: &str) -> bool {
    stderr.lines().count() == 1
        && [
            "is busy",
            "the retries ran out",
            "not part of the primary component",
            "not ready",
        ]
        .iter()
        .any(|m| stderr.contains(m))
}

#[test]
fn a_node_killed_mid_race_loses_nothing_and_the_others_keep_serving() {
    let Some(cluster) = Cluster::start(NODES) else {
        return;
    };
    let db = ClusterDb::on(&cluster);
    let mut accounts = Vec::new();
    for i in 0..4 {
        accounts.push(db.active(&format!("survivor{i}@example.com"), i % NODES));
    }
    // Race the first account's code; kill node 2 while the tools run.
    let victim = &accounts[0];
    let code = totp_now(&victim.secret, 0);
    let attempts: Vec<(usize, String)> = (0..24).map(|i| (i % NODES, code.clone())).collect();
    let killer = {
        let pid = cluster.node(2).pid().expect("node 2 pid");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(60));
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        })
    };
    let runs = race(&db, &victim.email, &attempts);
    killer.join().expect("killer");
    let mut accepted = 0;
    for (run, (node, _)) in runs.iter().zip(&attempts) {
        match (run.code, node) {
            (0, _) => accepted += 1,
            (1, _) => {}
            (10, 2) => {}
            // Until the survivors evict the dead node (the suspect timeout,
            // 3 s here), their commits wait, and one waiting behind them may
            // give up: failing closed, with the message saying why.
            (10, _) if reconfiguring(&run.stderr) => {}
            (other, n) => panic!(
                "node {n}: exit {other} is neither accept, reject nor (on the killed node, or while the cluster re-forms) a storage error\n{run}"
            ),
        }
    }
    assert!(
        accepted <= 1,
        "a code accepted twice across nodes: {:?}",
        codes_of(&runs)
    );
    for n in 0..2 {
        cluster.wait_member(n, 2, Duration::from_secs(60));
    }
    // What was reported accepted is durable on the survivors.
    for n in 0..2 {
        db.run(n, &["--email", &victim.email, "--code", &code])
            .expect_code(1);
    }
    // The survivors serve: each verifies an account with its next code.
    for (i, e) in accounts[1..].iter().enumerate() {
        let n = i % 2;
        let run = db.run(
            n,
            &[
                "--json",
                "--email",
                &e.email,
                "--code",
                &totp_now(&e.secret, 0),
            ],
        );
        run.ok_json();
    }
    let fresh = enroll_at(&db.env, &db.urls[0], "after-the-crash@example.com");
    db.run(
        1,
        &[
            "--email",
            &fresh.email,
            "--code",
            &totp_now(&fresh.secret, 0),
        ],
    )
    .expect_code(0);
    // A tool pointed at the dead node fails closed.
    let run = db.run(2, &["--email", &accounts[1].email, "--code", "123456"]);
    assert_eq!(
        run.code, 10,
        "the dead node is exit 10, never 'not enrolled'\n{run}"
    );
}
