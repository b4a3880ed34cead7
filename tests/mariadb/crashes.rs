//! Tools killed with SIGKILL mid-transaction against MariaDB (the crash
//! class of docs/RELIABILITY.md): the change is wholly there, with its
//! audit record, or wholly absent; never a half-changed account.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mb2fa_testkit::mariadb::Server;
use mb2fa_testkit::{BACKUP_CODES, VERIFY, spawn};

use crate::support::{Db, server};

/// Trials per scenario (`MB2FA_CRASH_TRIALS`, default 15).
fn trials() -> usize {
    std::env::var("MB2FA_CRASH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15)
}

/// A pseudo-random delay in `0..max` (the clock's nanoseconds).
fn jitter(max: Duration) -> Duration {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    max.mul_f64(f64::from(n % 1000) / 1000.0)
}

/// Run `cmd`, SIGKILL it after `delay` if it still runs; whether it finished.
fn kill_after(mut cmd: Command, delay: Duration) -> bool {
    let mut child = spawn(&mut cmd, false);
    std::thread::sleep(delay);
    let finished = child.try_wait().ok().flatten().is_some();
    let _ = child.kill();
    let _ = child.wait();
    finished
}

fn time_one(mut cmd: Command) -> Duration {
    let t = Instant::now();
    let _ = spawn(&mut cmd, false).wait();
    t.elapsed()
}

/// Wait until no connection but the asking one uses database `name`: a
/// client killed after sending `COMMIT` (or mid-transaction) leaves the
/// server finishing (or rolling back) its transaction, and reading before
/// it has could see a commit land between two reads.
fn settled(server: &Server, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let sql = format!(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '{name}' AND ID <> CONNECTION_ID()"
    );
    while server.sql(None, &sql).trim() != "0" {
        assert!(
            Instant::now() < deadline,
            "a killed client's connection to {name} is still open after 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn killed_backup_code_verification_and_regeneration_leave_whole_accounts() {
    let Some(server) = server() else { return };
    let db = Db::on(server);
    let q = |sql: &str| server.sql(Some(&db.name), sql).trim().to_string();
    let mut landed = (0, 0);
    for trial in 0..trials() {
        let email = format!("crash{trial}@example.com");
        let e = db.enroll(&email);
        db.activate(&e);
        let where_ = format!(
            "FROM mb2fa_backup_codes b JOIN mb2fa_accounts a ON a.id = b.account_id WHERE a.email = '{email}'"
        );
        // A backup code, killed anywhere from start to a bit after its run time.
        let cmd = || db.command(VERIFY, &["--email", &email, "--code", &e.backup_codes[0]]);
        let spent_q = format!("SELECT COUNT(*) {where_} AND b.used_at IS NOT NULL");
        let accepted_q = format!(
            "SELECT COUNT(*) FROM mb2fa_audit WHERE email = '{email}' AND action = 'verify' AND outcome = 'accepted' AND detail LIKE '%backup%'"
        );
        // The run time of the same kind of run: another backup code.
        let took = time_one(db.command(VERIFY, &["--email", &email, "--code", &e.backup_codes[9]]));
        let count = |sql: &str| -> u32 { q(sql).parse().unwrap() };
        let (spent0, accepted0) = (count(&spent_q), count(&accepted_q));
        assert_eq!(
            (spent0, accepted0),
            (1, 1),
            "trial {trial}: the timing run spent one code"
        );
        let _finished = kill_after(cmd(), jitter(took.mul_f64(1.5)));
        settled(server, &db.name);
        // Both counts from one snapshot.
        let both = q(&format!("SELECT ({spent_q}), ({accepted_q})"));
        let (spent, accepted) = both
            .split_once('\t')
            .map(|(s, a)| (s.parse::<u32>().unwrap(), a.parse::<u32>().unwrap()))
            .unwrap_or_else(|| panic!("two counts: {both:?}"));
        let (spent, accepted) = (spent - spent0, accepted - accepted0);
        assert!(spent <= 1, "trial {trial}: {spent} codes spent");
        assert_eq!(
            spent, accepted,
            "trial {trial}: a spent code has its audit record, and only then"
        );
        assert_eq!(
            q(&format!("SELECT COUNT(*) {where_}")),
            "10",
            "trial {trial}: 10 codes"
        );
        if spent == 1 {
            landed.1 += 1
        } else {
            landed.0 += 1
        }

        // Regeneration: the old ten or the new ten, never a mix.
        let hashes = || {
            q(&format!(
                "SET SESSION group_concat_max_len = 1000000; SELECT GROUP_CONCAT(b.hash ORDER BY b.tag SEPARATOR '|') {where_}"
            ))
        };
        let before = hashes();
        let regen = db.command(BACKUP_CODES, &["--email", &email]);
        kill_after(regen, jitter(took.mul_f64(1.5)));
        settled(server, &db.name);
        let after = hashes();
        let audited: u32 = q(&format!(
            "SELECT COUNT(*) FROM mb2fa_audit WHERE email = '{email}' AND action = 'backup_codes'"
        ))
        .parse()
        .unwrap();
        assert_eq!(
            q(&format!("SELECT COUNT(*) {where_}")),
            "10",
            "trial {trial}: 10 codes after a killed regeneration"
        );
        let old: Vec<&str> = before.split('|').collect();
        let new: Vec<&str> = after.split('|').collect();
        let kept = new.iter().filter(|h| old.contains(h)).count();
        assert!(
            kept == 10 || kept == 0,
            "trial {trial}: {kept} of 10 old codes kept: a mix"
        );
        assert_eq!(
            u32::from(kept == 0),
            audited,
            "trial {trial}: a regeneration is audited iff it happened"
        );
    }
    eprintln!(
        "killed backup-code verifications: {} before the commit, {} after",
        landed.0, landed.1
    );
}
