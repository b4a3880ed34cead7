//! `mb-2fa-import` (issue 16): enrollments from google-authenticator-libpam
//! files written by the real `google-authenticator` command, otpauth URIs
//! and a pam_oath `users.oath` written as its documentation shows, verified
//! afterwards with codes from `oathtool`, the independent reference.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use mb2fa_testkit::{AUDIT, Env, IMPORT, LIST, VERIFY, now_unix};
use serde_json::Value;

const ALICE: &str = "alice@example.com";
const GA: &str = "/usr/bin/google-authenticator";

/// The implementations these tests check against: `oathtool` and the real
/// `google-authenticator`. Where one is missing the test says so on stderr
/// and passes, so `cargo test --workspace` works on a fresh machine; with
/// `MB2FA_REQUIRE_PEERS=1` (set by `.ci/run`, which installs both) it fails.
fn peers() -> bool {
    let have = |cmd: &str, arg: &str| {
        Command::new(cmd)
            .arg(arg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    };
    let missing: Vec<&str> = [
        ("oathtool", "oathtool"),
        (GA, "libpam-google-authenticator"),
    ]
    .into_iter()
    .filter(|(cmd, _)| !have(cmd, "--help"))
    .map(|(_, package)| package)
    .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("MB2FA_REQUIRE_PEERS").is_none_or(|v| v != "1"),
        "MB2FA_REQUIRE_PEERS=1 but not installed: apt-get install {}",
        missing.join(" ")
    );
    eprintln!(
        "note: import test skipped: not installed: {} (apt-get install {0})",
        missing.join(" ")
    );
    false
}

/// `oathtool --totp=ALG --digits=D --time-step-size=Ps --now @T [-b] SECRET`,
/// `offset_steps` from now. `base32`: the secret is base32, else hex.
fn oath(secret: &str, base32: bool, alg: &str, digits: u32, period: u64, offset: i64) -> String {
    let t = now_unix()
        .checked_add_signed(offset * period as i64)
        .expect("time");
    oath_at(secret, base32, alg, digits, period, t)
}

/// The same at Unix time `t`.
fn oath_at(secret: &str, base32: bool, alg: &str, digits: u32, period: u64, t: u64) -> String {
    let mut cmd = Command::new("oathtool");
    cmd.arg(format!("--totp={alg}"))
        .arg(format!("--digits={digits}"))
        .arg(format!("--time-step-size={period}s"))
        .arg("--now")
        .arg(format!("@{t}"));
    if base32 {
        cmd.arg("-b");
    }
    let out = cmd
        .arg(secret)
        .stdin(Stdio::null())
        .output()
        .expect("oathtool is installed (apt-get install oathtool)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(code.len(), digits as usize, "{code:?}");
    code
}

/// SHA1, 6 digits, 30 s from a base32 secret: what google-authenticator uses.
fn ga_code(secret: &str, offset: i64) -> String {
    oath(secret, true, "SHA1", 6, 30, offset)
}

/// A `~/.google_authenticator` written by the real command:
/// `google-authenticator -t -d -f -r 3 -R 30 -w 3 -Q NONE -q -s FILE` plus
/// `extra`. Returns its path, secret and scratch codes.
fn ga_file(env: &Env, name: &str, extra: &[&str]) -> (PathBuf, String, Vec<String>) {
    let path = env.path(name);
    let out = Command::new(GA)
        .args([
            "-t", "-d", "-f", "-r", "3", "-R", "30", "-w", "3", "-Q", "NONE", "-q",
        ])
        .args(extra)
        .arg("-s")
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("google-authenticator is installed (libpam-google-authenticator)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).expect("read the file");
    let mut lines = text.lines();
    let secret = lines.next().expect("secret line").to_string();
    let scratch = lines
        .filter(|l| l.len() == 8 && l.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_string)
        .collect();
    (path, secret, scratch)
}

/// Rewrite the file's `" DISALLOW_REUSE` line to list `steps`, as the PAM
/// module does after logins.
fn add_used_steps(path: &PathBuf, steps: &[u64]) {
    let text = std::fs::read_to_string(path).expect("read");
    let list: Vec<String> = steps.iter().map(u64::to_string).collect();
    let new = text.replace(
        "\" DISALLOW_REUSE\n",
        &format!("\" DISALLOW_REUSE {}\n", list.join(" ")),
    );
    assert_ne!(new, text, "the file has a DISALLOW_REUSE line");
    let mut perms = std::fs::metadata(path).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(path, perms).expect("chmod");
    std::fs::write(path, new).expect("write");
}

fn import_ga(env: &Env, path: &PathBuf, email: &str, extra: &[&str]) -> mb2fa_testkit::Run {
    let mut cmd = env.command(IMPORT, ["--json", "--from", "google-authenticator"]);
    cmd.arg(path).args(["--email", email]).args(extra);
    mb2fa_testkit::run_command(cmd, None)
}

fn verify(env: &Env, email: &str, code: &str) -> mb2fa_testkit::Run {
    env.run(VERIFY, ["--json", "--email", email, "--code", code])
}

/// No audit record holds any of `secrets`.
fn audit_holds_none_of(env: &Env, secrets: &[&str]) {
    let run = env.run(AUDIT, ["--json", "--limit", "1000"]);
    run.ok_json();
    for s in secrets {
        assert!(
            !run.stdout.contains(s),
            "the audit trail holds {s:?}\n{run}"
        );
    }
    if env.is_mariadb() {
        // The audit tool's view above is the check on MariaDB; the rows
        // themselves are read directly on SQLite.
        return;
    }
    let rows: Vec<String> = env
        .connect()
        .prepare("SELECT detail FROM audit")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    for s in secrets {
        assert!(rows.iter().all(|d| !d.contains(s)), "{s:?} in {rows:?}");
    }
}

#[test]
fn import_google_authenticator_file_keeps_secret_floor_and_scratch_codes() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let (path, secret, scratch) = ga_file(&env, "ga", &[]);
    assert_eq!(
        secret.len(),
        26,
        "google-authenticator writes 16-byte secrets"
    );
    assert_eq!(scratch.len(), 5);
    let step = now_unix() / 30;
    add_used_steps(&path, &[step - 3, step, step - 1]);
    let run = import_ga(&env, &path, ALICE, &[]);
    let doc = run.ok_json();
    run.assert_not_echoed(&secret);
    let a = &doc["accounts"][0];
    assert_eq!(a["email"], ALICE);
    assert_eq!(a["replay_floor"], Value::from(step));
    assert_eq!(a["backup_codes"], 5);
    assert_eq!(
        (
            a["algorithm"].clone(),
            a["digits"].clone(),
            a["period"].clone()
        ),
        (Value::from("SHA1"), Value::from(6), Value::from(30))
    );
    assert_eq!(doc["imported"], 1);
    let listed = env.account(ALICE);
    assert_eq!(listed["state"], "active");
    assert_eq!(listed["backup_codes_left"], 5);
    // Active, but no code was used here yet.
    assert_eq!(listed["last_used_at"], Value::Null, "{listed}");
    // The floor's step was used by the old module: a replay. (The codes are
    // those of the floor's step and the one after it, not of "now": the
    // step may have ended since.)
    let message = verify(
        &env,
        ALICE,
        &oath_at(&secret, true, "SHA1", 6, 30, step * 30),
    )
    .fail_json(1, "rejected");
    assert!(message.contains("already used"), "{message}");
    // The next step's code (oathtool) is accepted, and only once.
    let next = oath_at(&secret, true, "SHA1", 6, 30, (step + 1) * 30);
    let ok = verify(&env, ALICE, &next).ok_json();
    assert_eq!(
        (ok["method"].clone(), ok["activated"].clone()),
        (Value::from("totp"), Value::from(false))
    );
    assert!(
        env.account(ALICE)["last_used_at"].is_string(),
        "a login is the first use"
    );
    verify(&env, ALICE, &next).fail_json(1, "rejected");
    // A scratch code, typed as its 8 digits (an inner space is fine), works
    // once, as a backup code.
    let typed = format!("{} {}", &scratch[2][..4], &scratch[2][4..]);
    let ok = verify(&env, ALICE, &typed).ok_json();
    assert_eq!(ok["method"], "backup_code");
    assert_eq!(ok["backup_codes_left"], 4);
    verify(&env, ALICE, &scratch[2]).fail_json(1, "rejected");
    // Another scratch code still works; an 8-digit number that is none is
    // a wrong code.
    verify(&env, ALICE, &scratch[4]).ok_json();
    let wrong = (10_000_000u32..)
        .map(|n| n.to_string())
        .find(|n| !scratch.contains(n))
        .expect("n");
    verify(&env, ALICE, &wrong).fail_json(1, "rejected");
    // The audit trail: one import record naming the source, no secret, no code.
    let records = env.audit(["--email", ALICE]);
    let import: Vec<&Value> = records.iter().filter(|r| r["action"] == "import").collect();
    assert_eq!(import.len(), 1, "{records:?}");
    assert_eq!(import[0]["outcome"], "ok");
    assert!(
        import[0]["detail"]
            .as_str()
            .expect("detail")
            .contains("google-authenticator")
    );
    let mut secrets: Vec<&str> = scratch.iter().map(String::as_str).collect();
    secrets.push(&secret);
    audit_holds_none_of(&env, &secrets);
}

#[test]
fn import_google_authenticator_step_size_and_human_output() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let (path, secret, _) = ga_file(&env, "ga60", &["-S", "60"]);
    let mut cmd = env.command(IMPORT, ["--from", "google-authenticator"]);
    cmd.arg(&path).args(["--email", ALICE]);
    let run = mb2fa_testkit::run_command(cmd, None);
    run.expect_code(0);
    assert!(run.stdout.contains("imported alice@example.com (line 1): SHA1, 6 digits, 60 s, no replay floor, 5 backup codes"), "{run}");
    assert!(run.stdout.contains("note: WINDOW_SIZE 3 not kept"), "{run}");
    run.assert_not_echoed(&secret);
    let code = oath(&secret, true, "SHA1", 6, 60, 0);
    verify(&env, ALICE, &code).ok_json();
}

#[test]
fn import_google_authenticator_hotp_file_is_refused() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let path = env.path("hotp");
    let out = Command::new(GA)
        .args([
            "-c", "-f", "-r", "3", "-R", "30", "-w", "3", "-Q", "NONE", "-q", "-s",
        ])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .expect("google-authenticator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let message = import_ga(&env, &path, ALICE, &[]).fail_json(2, "usage");
    assert!(message.contains("HOTP is not supported"), "{message}");
    assert!(message.contains(" line "), "{message}");
    assert!(!env.db.exists(), "a refused import created a store");
}

#[test]
fn import_otpauth_uris_keep_period_digits_and_algorithm() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let s256 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";
    // The RFC 6238 seeds of SHA256 (32 bytes) and SHA512 (64 bytes).
    let s512 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNA";
    let s1 = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let uris = format!(
        "# from the old server\n\
         otpauth://totp/Old%20Co:bob@example.com?secret={s256}&issuer=Old%20Co&algorithm=SHA256&digits=8&period=60\n\
         \n\
         otpauth://totp/carol@example.com?secret={s512}&algorithm=SHA512&digits=8&period=60\n\
         otpauth://totp/Mail:dave@example.com?secret={s1}\n"
    );
    let run = env.run_stdin(IMPORT, ["--json", "--from", "otpauth"], uris.as_bytes());
    let doc = run.ok_json();
    for s in [s256, s512, s1] {
        run.assert_not_echoed(s);
    }
    assert_eq!(doc["imported"], 3);
    assert_eq!(doc["accounts"][0]["issuer"], "Old Co");
    assert_eq!(doc["accounts"][0]["line"], 2);
    assert_eq!(doc["accounts"][1]["algorithm"], "SHA512");
    // oathtool's codes of each enrollment's own parameters are accepted.
    let code = oath(s256, true, "SHA256", 8, 60, 0);
    let ok = verify(&env, "bob@example.com", &code).ok_json();
    assert_eq!(ok["method"], "totp");
    verify(&env, "bob@example.com", &code).fail_json(1, "rejected");
    let code = oath(s512, true, "SHA512", 8, 60, 0);
    verify(
        &env,
        "carol@example.com",
        &format!("{} {}", &code[..4], &code[4..]),
    )
    .ok_json();
    verify(&env, "dave@example.com", &ga_code(s1, 0)).ok_json();
    // A 6-digit code for an 8-digit enrollment is malformed, not a guess.
    let message = verify(&env, "carol@example.com", "123456").fail_json(2, "usage");
    assert!(message.contains("have 8 digits"), "{message}");
    // Through stdin and --login, as the PAM module passes it.
    let code = oath(s512, true, "SHA512", 8, 60, 1);
    let run = env.run_stdin(
        VERIFY,
        ["--json", "--login", "--email", "carol@example.com"],
        format!("{code}\n").as_bytes(),
    );
    run.expect_code(0);
    assert!(
        run.stdout
            .lines()
            .last()
            .is_some_and(|l| l.contains("\"method\":\"totp\"")),
        "{run}"
    );
    let list = env.accounts();
    assert!(list.iter().all(|a| a["state"] == "active"), "{list:?}");
    audit_holds_none_of(&env, &[s256, s512, s1]);
}

#[test]
fn import_otpauth_email_only_for_one_uri_and_hotp_is_refused() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let one = "otpauth://totp/Phone?secret=JBSWY3DPEHPK3PXPJBSWY3DP\n";
    let run = env.run_stdin(
        IMPORT,
        ["--json", "--from", "otpauth", "--email", ALICE],
        one.as_bytes(),
    );
    assert_eq!(run.ok_json()["accounts"][0]["email"], ALICE);
    let env = Env::new();
    let two = format!("{one}{one}");
    let message = env
        .run_stdin(
            IMPORT,
            ["--json", "--from", "otpauth", "--email", ALICE],
            two.as_bytes(),
        )
        .fail_json(2, "usage");
    assert!(message.contains("--email names one account"), "{message}");
    let message = env
        .run_stdin(IMPORT, ["--json", "--from", "otpauth"], one.as_bytes())
        .fail_json(2, "usage");
    assert!(
        message.contains("line 1: the label's account is not a usable email address"),
        "{message}"
    );
    let hotp = "otpauth://totp/a@example.com?secret=JBSWY3DPEHPK3PXP\notpauth://hotp/b@example.com?secret=JBSWY3DPEHPK3PXP&counter=0\n";
    let message = env
        .run_stdin(IMPORT, ["--json", "--from", "otpauth"], hotp.as_bytes())
        .fail_json(2, "usage");
    assert!(
        message.contains("stdin line 2: an otpauth://hotp URI"),
        "{message}"
    );
    assert!(!env.db.exists(), "a refused import created a store");
}

#[test]
fn import_oath_users_file_per_pam_oath_documentation() {
    if !peers() {
        return;
    }
    let env = Env::new();
    // As pam_oath's README and the Arch wiki show it: type, user, pin, hex
    // secret; a second user as an email address with 60 s and 8 digits.
    let alice_hex = "3132333435363738393031323334353637383930";
    let bob_hex = "00112233445566778899aabbccddeeff01234567";
    let file = env.path("users.oath");
    std::fs::write(
        &file,
        format!(
            "# Option User Prefix Seed\n\
             HOTP/T30/6 alice - {alice_hex}\n\
             HOTP/T60/8\tbob@example.org\t-\t{bob_hex}\n"
        ),
    )
    .expect("write");
    let mut cmd = env.command(IMPORT, ["--json", "--from", "oath-users"]);
    cmd.arg(&file);
    let message = mb2fa_testkit::run_command(cmd, None).fail_json(2, "usage");
    assert!(
        message.contains("line 2: the user is not an email address; give --domain"),
        "{message}"
    );
    let mut cmd = env.command(
        IMPORT,
        ["--json", "--from", "oath-users", "--domain", "example.com"],
    );
    cmd.arg(&file);
    let run = mb2fa_testkit::run_command(cmd, None);
    let doc = run.ok_json();
    run.assert_not_echoed(alice_hex);
    assert_eq!(doc["accounts"][0]["email"], ALICE);
    assert_eq!(doc["accounts"][1]["email"], "bob@example.org");
    assert_eq!(doc["accounts"][1]["digits"], 8);
    verify(&env, ALICE, &oath(alice_hex, false, "SHA1", 6, 30, 0)).ok_json();
    verify(
        &env,
        "bob@example.org",
        &oath(bob_hex, false, "SHA1", 8, 60, 0),
    )
    .ok_json();
    audit_holds_none_of(&env, &[alice_hex, bob_hex]);
}

#[test]
fn import_dry_run_changes_no_byte_of_the_store() {
    if !peers() {
        return;
    }
    let env = Env::new();
    env.enroll("zed@example.com");
    let (path, secret, scratch) = ga_file(&env, "ga", &[]);
    let before = env.snapshot();
    let key_before = std::fs::read(&env.key).expect("key");
    let run = import_ga(&env, &path, ALICE, &["--dry-run"]);
    let doc = run.ok_json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["imported"], 0);
    assert_eq!(doc["accounts"][0]["backup_codes"], 5);
    run.assert_not_echoed(&secret);
    for c in &scratch {
        run.assert_not_echoed(c);
    }
    let mut cmd = env.command(
        IMPORT,
        [
            "--from",
            "google-authenticator",
            "--dry-run",
            "--email",
            ALICE,
        ],
    );
    cmd.arg(&path);
    let human = mb2fa_testkit::run_command(cmd, None);
    human.expect_code(0);
    assert!(
        human.stdout.contains("would import alice@example.com"),
        "{human}"
    );
    assert!(human.stdout.contains("nothing was changed"), "{human}");
    assert_eq!(env.snapshot(), before, "a dry run changed the store");
    assert_eq!(std::fs::read(&env.key).expect("key"), key_before);
    let run = env.run(LIST, ["--json", "-q"]);
    assert!(!run.stdout.contains(ALICE), "{run}");
}

#[test]
fn import_an_enrolled_account_is_a_conflict_unless_force() {
    if !peers() {
        return;
    }
    let env = Env::new();
    let old = env.enroll(ALICE);
    env.activate(&old);
    let (path, secret, _) = ga_file(&env, "ga", &[]);
    let uri = format!("otpauth://totp/bob@example.com?secret={secret}\n");
    let bob = env.path("bob.txt");
    std::fs::write(&bob, &uri).expect("write");
    let before_accounts = env.accounts();
    let message = import_ga(&env, &path, ALICE, &[]).fail_json(5, "conflict");
    assert!(
        message.contains("already enrolled: alice@example.com (active, line 1)"),
        "{message}"
    );
    assert!(message.contains("--force"), "{message}");
    assert_eq!(env.accounts(), before_accounts);
    // The old phone still works; the imported secret does not.
    verify(&env, ALICE, &ga_code(&secret, 0)).fail_json(1, "rejected");
    let run = import_ga(&env, &path, ALICE, &["--force"]);
    assert_eq!(run.ok_json()["accounts"][0]["replaced"], "active");
    verify(&env, ALICE, &ga_code(&secret, 1)).ok_json();
    verify(&env, ALICE, &old.backup_codes[0]).fail_json(1, "rejected");
    let records = env.audit(["--email", ALICE]);
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "import" && r["outcome"] == "conflict"),
        "{records:?}"
    );
    assert!(
        records.iter().any(|r| r["action"] == "import"
            && r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("replaced the active enrollment (--force)"))),
        "{records:?}"
    );
}

#[test]
fn import_malformed_input_names_the_line_and_imports_nothing() {
    if !peers() {
        return;
    }
    let env = Env::new();
    env.init();
    let before = env.snapshot();
    let ok_uri = "otpauth://totp/a@example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DP";
    let long = format!("otpauth://totp/a@example.com?secret={}", "A".repeat(5000));
    let cases: Vec<(&str, String, &str)> = vec![
        ("google-authenticator", "JBSWY3DP1HPK3PXP\n\" TOTP_AUTH\n".into(), "line 1: the secret is not base32"),
        ("google-authenticator", "".into(), "line 1: the file is empty"),
        ("google-authenticator", "JBSWY3DPEH\n".into(), "line 1: the secret is 6 bytes"),
        ("google-authenticator", "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n\" DISALLOW_REUSE 123x\n".into(), "line 3: DISALLOW_REUSE takes numbers only"),
        ("google-authenticator", "JBSWY3DPEHPK3PXP\n\" NO_SUCH_OPTION 1\n".into(), "line 2: an unknown option line"),
        ("google-authenticator", "JBSWY3DPEHPK3PXP\n\" HOTP_COUNTER 1\n".into(), "line 2: this is a counter-based (HOTP) file"),
        ("google-authenticator", "JBSWY3DPEHPK3PXP\n\" TOTP_AUTH\n1234\x1b[2J5678\n".into(), "line 3: a control character (U+001B)"),
        ("google-authenticator", format!("JBSWY3DPEHPK3PXP\n{}\n", "1".repeat(10_000)), "line 2: the line is longer than 4096 bytes"),
        ("otpauth", format!("{ok_uri}\n{ok_uri}&digits=eight\n"), "line 2: digits must be 6 or 8"),
        ("otpauth", format!("{ok_uri}\n\n{long}\n"), "line 3: the line is longer than 4096 bytes"),
        ("otpauth", format!("{ok_uri}&period=30\u{202e}\n"), "line 1: a right-to-left formatting character"),
        ("otpauth", "otpauth://totp/a@example.com?secret=JBSW\n".into(), "line 1: the secret is 2 bytes"),
        ("oath-users", "HOTP/T30 alice - 3132333435363738393031323334353637383930\nHOTP bob - 3132333435363738393031323334353637383930\n".into(), "line 2: a counter-based (HOTP) user"),
        ("oath-users", "HOTP/T30/x alice - 3132333435363738393031323334353637383930\n".into(), "line 1: the type's digits must be 6 or 8"),
        ("oath-users", "# ok\nHOTP/T30 alice - 31323334353637383930zz\n".into(), "line 2: the secret is not hexadecimal"),
    ];
    for (i, (format, content, fragment)) in cases.iter().enumerate() {
        let file = env.path(&format!("bad{i}"));
        std::fs::write(&file, content).expect("write");
        let mut args = vec![
            "--from".to_string(),
            format.to_string(),
            file.display().to_string(),
        ];
        match *format {
            "google-authenticator" => args.extend(["--email".to_string(), ALICE.to_string()]),
            "oath-users" => args.extend(["--domain".to_string(), "example.com".to_string()]),
            _ => {}
        }
        let mut json_args = vec!["--json".to_string()];
        json_args.extend(args.iter().cloned());
        let message = env.run(IMPORT, &json_args).fail_json(2, "usage");
        assert!(message.contains(fragment), "case {i}: {message}");
        assert!(
            message.ends_with("nothing was imported"),
            "case {i}: {message}"
        );
        let run = env.run(IMPORT, &args);
        let line = run.fail_line(2, IMPORT, fragment);
        assert!(
            !line.contains('\u{1b}') && !line.contains('\u{202e}'),
            "case {i}: {line:?}"
        );
        for secret in ["JBSWY3DP", "3132333435", "AAAAAAAAAAAA"] {
            run.assert_not_echoed(secret);
        }
        assert_eq!(env.snapshot(), before, "case {i} changed the store");
    }
    assert!(env.accounts().is_empty());
}
