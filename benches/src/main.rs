//! `mb2fa-bench`: the driver behind `scripts/bench`. Not shipped, not a test.
//!
//! - `seed`: a database of N active accounts, written through the core's own
//!   store (sealed secrets, backup-code rows, audit records), in big
//!   transactions so 100k accounts take seconds. Every account gets the same
//!   ten backup-code hashes (ten real argon2id hashes, made once): hashing a
//!   million codes would take hours and measure nothing new.
//! - `code`, `secret`: what the script needs to call the tools.
//! - `rewind`: undo what one timed verification changed (the accepted step,
//!   spent backup codes), so hyperfine can time the accepting path again.
//! - `argon2`: N bare argon2id evaluations with the core's parameters: the
//!   floor for backup-code verification and enrollment.
//! - `load`: W concurrent verifiers for S seconds, each process a real
//!   `mb-2fa-verify` with a fresh code for a different account.
//! - `report`: the results directory as a markdown table with ratios.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use argon2::Argon2;
use mb2fa_core::audit::{self, Action, Record};
use mb2fa_core::backup_codes;
use mb2fa_core::model::{Lock, NewAccount, Premise, State, Success, TotpProgress};
use mb2fa_core::secret::Secret;
use mb2fa_core::store::{Location, OpenMode, Store};
use mb2fa_core::totp::{self, TotpParams};
use serde_json::{Value, json};

const USAGE: &str = "usage: mb2fa-bench <command> [options]
  seed   --db P --key-file K --accounts N --secrets F --backup-codes F
  secret --secrets F --email E
  code   --secrets F --email E
  rewind --db P --email E
  argon2 --count N
  load   --bin PATH --db P --key-file K --secrets F --workers W --seconds S --out F
  report DIR";

fn main() {
    if let Err(e) = run() {
        eprintln!("mb2fa-bench: {e:#}");
        std::process::exit(1);
    }
}

/// `--name value` pairs after the subcommand.
struct Opts(BTreeMap<String, String>);

impl Opts {
    fn parse(args: &[String]) -> Result<Opts> {
        let mut map = BTreeMap::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let name = a
                .strip_prefix("--")
                .ok_or_else(|| anyhow!("unexpected argument {a:?}\n{USAGE}"))?;
            let value = it.next().ok_or_else(|| anyhow!("--{name} needs a value"))?;
            map.insert(name.to_string(), value.clone());
        }
        Ok(Opts(map))
    }

    fn str(&self, name: &str) -> Result<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("--{name} is required\n{USAGE}"))
    }

    fn path(&self, name: &str) -> Result<PathBuf> {
        self.str(name).map(PathBuf::from)
    }

    fn num(&self, name: &str) -> Result<u64> {
        self.str(name)?
            .parse()
            .with_context(|| format!("--{name} must be a whole number"))
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        bail!("{USAGE}");
    };
    if cmd == "report" {
        let dir = rest.first().ok_or_else(|| anyhow!("{USAGE}"))?;
        return report(Path::new(dir));
    }
    let o = Opts::parse(rest)?;
    match cmd.as_str() {
        "seed" => seed(&o),
        "secret" => {
            let secret = lookup_secret(&o.path("secrets")?, o.str("email")?)?;
            println!("{}", secret.to_base32().as_str());
            Ok(())
        }
        "code" => {
            let secret = lookup_secret(&o.path("secrets")?, o.str("email")?)?;
            println!("{}", current_code(&secret)?.as_str());
            Ok(())
        }
        "rewind" => rewind(&o.path("db")?, o.str("email")?),
        "argon2" => bare_argon2(o.num("count")?),
        "load" => load(&o),
        _ => bail!("unknown command {cmd:?}\n{USAGE}"),
    }
}

fn now() -> Result<i64> {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    Ok(i64::try_from(secs)?)
}

fn email_of(i: u64) -> String {
    format!("user{i:06}@bench.example")
}

fn seed(o: &Opts) -> Result<()> {
    let db = o.path("db")?;
    let n = o.num("accounts")?;
    let started = Instant::now();
    let mut store = Store::open(&Location::Sqlite(db.to_path_buf()), OpenMode::Init)?;
    store.unlock(&o.path("key-file")?)?;
    let set = backup_codes::generate_set()?;
    let mut codes = fs::File::create(o.path("backup-codes")?)?;
    for c in &set.codes {
        writeln!(codes, "{}", c.formatted().as_str())?;
    }
    let mut secrets = std::io::BufWriter::new(fs::File::create(o.path("secrets")?)?);
    let params = TotpParams::default();
    let t = now()?;
    // Accepted a while ago, so the current code is fresh for every account.
    let last_step = params.step_at(t) - 10;
    const BATCH: u64 = 10_000;
    let mut i = 0;
    while i < n {
        let end = (i + BATCH).min(n);
        let mut batch = Vec::new();
        for j in i..end {
            batch.push((email_of(j), Secret::generate()?));
        }
        store.write(|tx| {
            for (email, secret) in &batch {
                let id = tx.insert_account(&NewAccount {
                    email,
                    secret,
                    params,
                    issuer: "Mailborder",
                    created_at: t,
                })?;
                tx.replace_backup_codes(id, &set.rows, t)?;
                tx.record_success(
                    id,
                    &Success {
                        used_at: Some(t),
                        totp: Some(TotpProgress {
                            last_step,
                            drift_steps: 0,
                            recent_offsets: vec![0],
                        }),
                        state: State::Active,
                        activated_at: Some(t),
                        lock: Lock::CLEAR,
                    },
                    Premise::lock(Lock::CLEAR),
                )?;
                tx.append_audit(Record {
                    at: t,
                    tool: "mb2fa-bench".into(),
                    action: Action::Enable,
                    email: Some(email.clone()),
                    outcome: audit::Outcome::Ok,
                    actor: "bench".into(),
                    detail: "seeded".into(),
                    node: "bench".into(),
                    via: String::new(),
                })?;
            }
            Ok(())
        })?;
        for (email, secret) in &batch {
            writeln!(secrets, "{email} {}", secret.to_base32().as_str())?;
        }
        i = end;
    }
    secrets.flush()?;
    drop(store);
    let size = fs::metadata(&db)?.len();
    eprintln!(
        "seeded {n} accounts into {} ({:.1} MiB) in {:.1} s",
        db.display(),
        size as f64 / 1048576.0,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn read_secrets(path: &Path) -> Result<Vec<(String, Secret)>> {
    let file = fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        let (email, b32) = line
            .split_once(' ')
            .ok_or_else(|| anyhow!("bad line in {}", path.display()))?;
        let bytes = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, b32)
            .ok_or_else(|| anyhow!("bad secret in {}", path.display()))?;
        out.push((email.to_string(), Secret::from_bytes(bytes)));
    }
    Ok(out)
}

fn lookup_secret(path: &Path, email: &str) -> Result<Secret> {
    read_secrets(path)?
        .into_iter()
        .find(|(e, _)| e == email)
        .map(|(_, s)| s)
        .ok_or_else(|| anyhow!("{email} is not in {}", path.display()))
}

fn current_code(secret: &Secret) -> Result<zeroize::Zeroizing<String>> {
    let params = TotpParams::default();
    Ok(totp::code_for_step(secret, &params, params.step_at(now()?)))
}

/// Undo one verification: the accepted step goes back, spent backup codes
/// come back, the failure count is cleared. Raw SQL on purpose: the store
/// has (rightly) no way to do this.
fn rewind(db: &Path, email: &str) -> Result<()> {
    let conn = rusqlite::Connection::open(db)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // As the tools do: leave the WAL as the timed run left it.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )?;
    let step = TotpParams::default().step_at(now()?) - 10;
    let tx = conn.unchecked_transaction()?;
    let n = tx.execute(
        "UPDATE accounts SET last_step = ?2, failed_attempts = 0, locked_until = NULL WHERE email = ?1",
        rusqlite::params![email, step],
    )?;
    if n != 1 {
        bail!("no account {email} in {}", db.display());
    }
    tx.execute(
        "UPDATE backup_codes SET used_at = NULL
         WHERE account_id = (SELECT id FROM accounts WHERE email = ?1)",
        rusqlite::params![email],
    )?;
    tx.commit()?;
    Ok(())
}

/// N argon2id evaluations with the parameters the core uses (the crate's
/// defaults: m = 19 MiB, t = 2, p = 1, OWASP's minimum).
fn bare_argon2(count: u64) -> Result<()> {
    let argon = Argon2::default();
    let mut out = [0u8; 32];
    for i in 0..count {
        let password = format!("bench password {i}");
        argon
            .hash_password_into(password.as_bytes(), b"mb2fa-bench-salt", &mut out)
            .map_err(|e| anyhow!("argon2: {e}"))?;
    }
    std::hint::black_box(out);
    Ok(())
}

struct Outcome {
    ok: usize,
    busy: usize,
    other: usize,
    first_other: Option<String>,
    latencies: Vec<Duration>,
}

fn load(o: &Opts) -> Result<()> {
    let bin = o.path("bin")?;
    let db = o.path("db")?;
    let key = o.path("key-file")?;
    let workers = usize::try_from(o.num("workers")?)?;
    let seconds = o.num("seconds")?;
    let accounts = read_secrets(&o.path("secrets")?)?;
    if accounts.len() < workers {
        bail!("need at least one account per worker");
    }
    let per = accounts.len() / workers;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let launched = AtomicUsize::new(0);
    let outcomes: Vec<Result<Outcome>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let mine = &accounts[w * per..(w + 1) * per];
                let (bin, db, key, launched) = (&bin, &db, &key, &launched);
                s.spawn(move || -> Result<Outcome> {
                    let mut out = Outcome {
                        ok: 0,
                        busy: 0,
                        other: 0,
                        first_other: None,
                        latencies: Vec::new(),
                    };
                    // Each account at most once per run: its code is then
                    // always fresh, as for a real login.
                    for (email, secret) in mine {
                        if Instant::now() >= deadline {
                            break;
                        }
                        let code = current_code(secret)?;
                        launched.fetch_add(1, Ordering::Relaxed);
                        let t = Instant::now();
                        let res = Command::new(bin)
                            .arg("--db")
                            .arg(db)
                            .arg("--key-file")
                            .arg(key)
                            .args(["--email", email, "--code", code.as_str()])
                            .env("MB2FA_SYSLOG_SOCKET", "")
                            .stdout(Stdio::null())
                            .stderr(Stdio::piped())
                            .output()?;
                        out.latencies.push(t.elapsed());
                        let stderr = String::from_utf8_lossy(&res.stderr);
                        if res.status.success() {
                            out.ok += 1;
                        } else if stderr.contains("busy") || stderr.contains("locked") {
                            out.busy += 1;
                        } else {
                            out.other += 1;
                            out.first_other.get_or_insert_with(|| {
                                format!("exit {:?}: {}", res.status.code(), stderr.trim())
                            });
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("worker panicked"))))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let (mut ok, mut busy, mut other) = (0, 0, 0);
    let mut first_other = None;
    let mut lat = Vec::new();
    for o in outcomes {
        let o = o?;
        ok += o.ok;
        busy += o.busy;
        other += o.other;
        if first_other.is_none() {
            first_other = o.first_other;
        }
        lat.extend(o.latencies);
    }
    lat.sort();
    let pct = |p: f64| {
        let i = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let doc = json!({
        "workers": workers,
        "seconds": elapsed,
        "launched": launched.load(Ordering::Relaxed),
        "accepted": ok,
        "busy_errors": busy,
        "other_errors": other,
        "first_other_error": first_other,
        "per_second": ok as f64 / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
    });
    fs::write(o.path("out")?, serde_json::to_string_pretty(&doc)? + "\n")?;
    println!("{doc}");
    Ok(())
}

/// One hyperfine export: command name → (mean, stddev) in seconds.
fn hyperfine(dir: &Path, file: &str) -> Result<BTreeMap<String, (f64, f64)>> {
    let path = dir.join(file);
    let text = fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let doc: Value = serde_json::from_str(&text)?;
    let mut out = BTreeMap::new();
    for r in doc["results"].as_array().into_iter().flatten() {
        let name = r["command"].as_str().unwrap_or_default().to_string();
        let mean = r["mean"].as_f64().unwrap_or(f64::NAN);
        let sd = r["stddev"].as_f64().unwrap_or(f64::NAN);
        out.insert(name, (mean, sd));
    }
    Ok(out)
}

fn get(m: &BTreeMap<String, (f64, f64)>, name: &str) -> Result<(f64, f64)> {
    m.get(name)
        .copied()
        .ok_or_else(|| anyhow!("no result named {name}"))
}

fn ms((mean, sd): (f64, f64)) -> String {
    if mean >= 0.1 {
        format!("{:.0} ± {:.0} ms", mean * 1000.0, sd * 1000.0)
    } else {
        format!("{:.2} ± {:.2} ms", mean * 1000.0, sd * 1000.0)
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

fn report(dir: &Path) -> Result<()> {
    let mut rows: Vec<[String; 4]> = Vec::new();

    let t = hyperfine(dir, "totp.json")?;
    let (oath, v100k, v1k) = (
        get(&t, "oathtool")?,
        get(&t, "verify-100k")?,
        get(&t, "verify-1k")?,
    );
    let r = v100k.0 / oath.0;
    rows.push([
        "`mb-2fa-verify` TOTP code accepted, 100k accounts".into(),
        format!("{} vs oathtool {} = **{r:.2}×**", ms(v100k), ms(oath)),
        "≤ 2× oathtool".into(),
        met(r <= 2.0).into(),
    ]);
    let size = (v100k.0 / v1k.0 - 1.0) * 100.0;
    rows.push([
        "the same, 1k vs 100k accounts".into(),
        format!("{} vs {} = **{size:+.1}%**", ms(v1k), ms(v100k)),
        "within 15%".into(),
        met(size.abs() <= 15.0).into(),
    ]);

    let rp = hyperfine(dir, "replay.json")?;
    let (oath2, replay) = (get(&rp, "oathtool")?, get(&rp, "replay-100k")?);
    rows.push([
        "`mb-2fa-verify` replayed TOTP code (rejected), 100k".into(),
        format!(
            "{} vs oathtool {} = {:.2}×",
            ms(replay),
            ms(oath2),
            replay.0 / oath2.0
        ),
        "(context)".into(),
        "-".into(),
    ]);

    let f = hyperfine(dir, "floor.json")?;
    let oath3 = get(&f, "oathtool")?;
    for (name, what) in [
        (
            "rust-noop",
            "a Rust process that does nothing (`mb2fa-bench argon2 --count 0`)",
        ),
        (
            "verify-usage-error",
            "`mb-2fa-verify` refusing a malformed code: start-up and argument parsing, no file opened",
        ),
        (
            "sqlite3-update",
            "the sqlite3 shell committing one UPDATE (synchronous=FULL) to a copy of the 100k database",
        ),
    ] {
        let t = get(&f, name)?;
        rows.push([
            format!("floor: {what}"),
            format!("{} = {:.2}× oathtool {}", ms(t), t.0 / oath3.0, ms(oath3)),
            "(context)".into(),
            "-".into(),
        ]);
    }

    let b = hyperfine(dir, "backup.json")?;
    let (a1, bc) = (get(&b, "argon2x1")?, get(&b, "backup-100k")?);
    let r = bc.0 / a1.0;
    rows.push([
        "`mb-2fa-verify` backup code accepted, 100k".into(),
        format!("{} vs one bare argon2id {} = **{r:.2}×**", ms(bc), ms(a1)),
        "one argon2id evaluation (m=19 MiB, t=2, p=1)".into(),
        met(r < 1.5).into(),
    ]);

    let e = hyperfine(dir, "enable.json")?;
    let (a10, en) = (get(&e, "argon2x10")?, get(&e, "enable-100k")?);
    let r = en.0 / a10.0;
    rows.push([
        "`mb-2fa-enable --qr none --json`, 100k".into(),
        format!("{} vs ten bare argon2id {} = **{r:.2}×**", ms(en), ms(a10)),
        "≤ 1.5× ten argon2id".into(),
        met(r <= 1.5).into(),
    ]);

    let l = hyperfine(dir, "list.json")?;
    let (l1k, l100k) = (get(&l, "list-1k")?, get(&l, "list-100k")?);
    let rss = |name: &str| -> Result<u64> {
        let p = dir.join(format!("{name}.rss"));
        let text = fs::read_to_string(&p).with_context(|| format!("read {}", p.display()))?;
        text.trim()
            .parse()
            .with_context(|| format!("bad number in {}", p.display()))
    };
    let (m1k, m100k) = (rss("list-1k")?, rss("list-100k")?);
    rows.push([
        "`mb-2fa-list --json`, 100k accounts".into(),
        format!(
            "{}; max RSS {:.1} MiB (1k accounts: {} and {:.1} MiB)",
            ms(l100k),
            m100k as f64 / 1024.0,
            ms(l1k),
            m1k as f64 / 1024.0
        ),
        "< 1 s, memory flat".into(),
        met(l100k.0 < 1.0 && (m100k as f64) < (m1k as f64) * 1.25).into(),
    ]);

    let text = fs::read_to_string(dir.join("load.json"))?;
    let ld: Value = serde_json::from_str(&text)?;
    let busy = ld["busy_errors"].as_u64().unwrap_or(u64::MAX);
    let other = ld["other_errors"].as_u64().unwrap_or(u64::MAX);
    rows.push([
        format!(
            "{} concurrent verifiers, 100k accounts, {:.0} s",
            ld["workers"],
            ld["seconds"].as_f64().unwrap_or(0.0)
        ),
        format!(
            "**{:.0} verifications/s**, {} accepted, {busy} busy, {other} other errors; latency p50 {:.1} ms, p99 {:.1} ms, worst {:.0} ms",
            ld["per_second"].as_f64().unwrap_or(0.0),
            ld["accepted"],
            ld["p50_ms"].as_f64().unwrap_or(0.0),
            ld["p99_ms"].as_f64().unwrap_or(0.0),
            ld["max_ms"].as_f64().unwrap_or(0.0),
        ),
        "no busy errors".into(),
        met(busy == 0 && other == 0).into(),
    ]);

    println!("| what | measured | target | |");
    println!("| --- | --- | --- | --- |");
    for [a, b, c, d] in rows {
        println!("| {a} | {b} | {c} | {d} |");
    }
    Ok(())
}
