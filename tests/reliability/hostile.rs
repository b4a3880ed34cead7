//! Hostile input: a corpus of bad emails and codes given to every tool that
//! takes them, in human and JSON mode, on the command line and on stdin.
//! Each is exit 2 with one clear line (or one JSON `usage` error), echoes no
//! code, and leaves the database byte-for-byte unchanged. Well-formed but
//! nasty values (SQL in an email) are plain data. Random argument vectors
//! never make a tool panic or leave the exit-code table.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

use mb2fa_testkit::{
    AUDIT, BACKUP_CODES, DISABLE, ENABLE, Enrolled, Env, IMPORT, LIST, POLICY, Run, STORE, TOOLS,
    UNLOCK, VERIFY, run_command,
};

use crate::support::{Rng, figure, no_panic, run_with_timeout};

const A: &str = "alice@example.com";

fn os(s: impl Into<String>) -> OsString {
    OsString::from(s.into())
}

fn bytes(b: &[u8]) -> OsString {
    OsString::from_vec(b.to_vec())
}

/// Invalid UTF-8 as it reaches a program: a lone 0xFF, an overlong NUL, an
/// encoded surrogate, a truncated sequence, a lone continuation byte, a
/// five-byte form.
const BAD_UTF8: [&[u8]; 6] = [
    b"\xff",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xe2\x82",
    b"\x80",
    b"\xf8\x88\x80\x80\x80",
];

/// Characters that must never be part of an account name: every C0 and C1
/// control, DEL, and the invisible and bidirectional formatting marks.
fn forbidden_chars() -> Vec<char> {
    let mut v: Vec<char> = (1u32..0x20)
        .chain([0x7f])
        .chain(0x80..0xa0)
        .filter_map(char::from_u32)
        .collect();
    v.extend([
        '\u{00ad}', '\u{061c}', '\u{200b}', '\u{200c}', '\u{200d}', '\u{200e}', '\u{200f}',
        '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
        '\u{2068}', '\u{2069}', '\u{feff}', '\u{a0}', '\u{3000}',
    ]);
    v
}

fn bad_emails() -> Vec<(String, OsString)> {
    let mut v: Vec<(String, OsString)> = vec![
        ("empty".into(), os("")),
        ("blank".into(), os("   ")),
        (
            "10 KB".into(),
            os(format!("{}@example.com", "a".repeat(10_000))),
        ),
        (
            "255 bytes".into(),
            os(format!(
                "{}@{}.{}.{}.com",
                "a".repeat(64),
                "b".repeat(63),
                "c".repeat(63),
                "d".repeat(58)
            )),
        ),
        (
            "65-byte local part".into(),
            os(format!("{}@example.com", "a".repeat(65))),
        ),
        ("no @".into(), os("alice.example.com")),
        ("two @".into(), os("alice@@example.com")),
        ("three parts".into(), os("a@b@c")),
        ("nothing before @".into(), os("@example.com")),
        ("nothing after @".into(), os("alice@")),
        ("double dot".into(), os("alice@example..com")),
        ("leading dot".into(), os("alice@.example.com")),
        ("trailing dot".into(), os("alice@example.com.")),
        ("leading dash".into(), os("-alice@example.com")),
        ("two leading dashes".into(), os("--alice@example.com")),
        ("a lone dash".into(), os("-")),
        ("SQL with spaces".into(), os("alice@example.com' OR '1'='1")),
        (
            "SQL statement".into(),
            os("x'; DROP TABLE accounts; --@example.com"),
        ),
    ];
    for c in forbidden_chars() {
        v.push((
            format!("U+{:04X}", c as u32),
            os(format!("al{c}ice@example.com")),
        ));
    }
    v.push(("RLO at the start".into(), os("\u{202e}moc.elpmaxe@ecila")));
    for b in BAD_UTF8 {
        let mut raw = b"al".to_vec();
        raw.extend_from_slice(b);
        raw.extend_from_slice(b"ice@example.com");
        v.push((format!("invalid UTF-8 {b:02x?}"), bytes(&raw)));
    }
    v
}

/// The email-taking command lines: tool and the arguments around `--email`.
fn email_forms() -> Vec<(&'static str, Vec<&'static str>, Vec<&'static str>)> {
    vec![
        (ENABLE, vec![], vec!["--qr", "none"]),
        (VERIFY, vec![], vec!["--code", "123456"]),
        (DISABLE, vec![], vec!["--yes"]),
        (BACKUP_CODES, vec![], vec![]),
        (UNLOCK, vec![], vec![]),
        (
            POLICY,
            vec!["exempt"],
            vec!["--kind", "service", "--reason", "probe"],
        ),
        (POLICY, vec!["unexempt"], vec![]),
        (POLICY, vec!["seal"], vec![]),
        (POLICY, vec!["check"], vec![]),
    ]
}

/// An environment with alice active, so "unchanged" means something.
fn enrolled() -> (Env, Enrolled) {
    let env = Env::new();
    let e = env.enroll(A);
    env.activate(&e);
    (env, e)
}

/// A usage error in both modes: human (exit 2, nothing on stdout, one line
/// `TOOL: ...` on stderr) and JSON (`usage`); the database unchanged; the
/// `secret` (a code), when given, never echoed.
#[track_caller]
fn expect_usage(
    env: &Env,
    tool: &str,
    args: &[OsString],
    stdin: Option<&[u8]>,
    secret: Option<&str>,
    case: &str,
) {
    let before = env.snapshot();
    for json in [false, true] {
        let mut cmd = env.command(tool, std::iter::empty::<&OsStr>());
        if json {
            cmd.arg("--json");
        }
        cmd.args(args);
        let run = run_command(cmd, stdin);
        no_panic(&run);
        assert_eq!(run.code, 2, "{case}\n{run}");
        if json {
            run.fail_json(2, "usage");
        } else {
            run.fail_line(2, tool, "");
        }
        if let Some(s) = secret.map(str::trim).filter(|s| s.chars().count() >= 4) {
            run.assert_not_echoed(s);
        }
        assert_eq!(
            env.snapshot(),
            before,
            "{case}: the database changed\n{run}"
        );
    }
}

#[test]
fn a_corpus_of_bad_emails_is_refused_by_every_tool() {
    let (env, _) = enrolled();
    let emails = bad_emails();
    let mut runs = 0;
    for (tool, before, after) in email_forms() {
        for (case, email) in &emails {
            let mut args: Vec<OsString> = before.iter().map(OsString::from).collect();
            args.push(os("--email"));
            args.push(email.clone());
            args.extend(after.iter().map(OsString::from));
            expect_usage(
                &env,
                tool,
                &args,
                None,
                None,
                &format!("{tool} {before:?}: {case}"),
            );
            runs += 2;
        }
        // `--email=-`, and the email given as `-` from stdin (not a thing).
        let mut args: Vec<OsString> = before.iter().map(OsString::from).collect();
        args.push(os("--email=-"));
        args.extend(after.iter().map(OsString::from));
        expect_usage(
            &env,
            tool,
            &args,
            Some(b"alice@example.com\n"),
            None,
            &format!("{tool}: --email=-"),
        );
        runs += 2;
    }
    figure(
        "hostile input, emails",
        format!(
            "{} bad emails x {} command forms, human and JSON: {runs} runs, all exit 2, database byte-identical",
            emails.len() + 1,
            email_forms().len()
        ),
    );
}

fn bad_codes(e: &Enrolled) -> Vec<(String, OsString)> {
    let backup = e.backup_codes[0].clone();
    let mut v: Vec<(String, OsString)> = vec![
        ("empty".into(), os("")),
        ("blank".into(), os("  ")),
        ("5 digits".into(), os("12345")),
        ("7 digits".into(), os("1234567")),
        // 8 digits are a code now: an 8-digit enrollment's TOTP code, or an
        // imported scratch code of a 6-digit one (tests/blackbox/import.rs).
        ("9 digits".into(), os("123456789")),
        ("7 digits with a space".into(), os("123 4567")),
        ("10 KB of digits".into(), os("1".repeat(10_240))),
        ("10 KB backup-like".into(), os("ABCD-".repeat(2048))),
        ("letters".into(), os("abcdef")),
        ("a hyphen in a TOTP code".into(), os("123-456")),
        ("SQL".into(), os("' OR 1=1 --")),
        (
            "SQL after digits".into(),
            os("123456; DROP TABLE backup_codes"),
        ),
        ("fullwidth digits".into(), os("１２３４５６")),
        ("Arabic-Indic digits".into(), os("١٢٣٤٥٦")),
        ("superscript digits".into(), os("¹²³⁴⁵⁶")),
        ("RLM inside".into(), os("123\u{200f}456")),
        ("RLO first".into(), os("\u{202e}123456")),
        ("zero-width space".into(), os("123\u{200b}456")),
        (
            "backup code with U".into(),
            os(format!("{}U", &backup[..backup.len() - 1])),
        ),
        (
            "backup code with !".into(),
            os(format!("!{}", &backup[1..])),
        ),
        (
            "backup code with é".into(),
            os(format!("{}é{}", &backup[..5], &backup[6..])),
        ),
        (
            "backup code one short".into(),
            os(backup[..backup.len() - 1].to_string()),
        ),
        ("backup code one long".into(), os(format!("{backup}7"))),
        ("two backup codes".into(), os(format!("{backup} {backup}"))),
    ];
    for c in forbidden_chars().into_iter().filter(|c| c.is_control()) {
        v.push((
            format!("U+{:04X} inside", c as u32),
            os(format!("123{c}456")),
        ));
    }
    for b in BAD_UTF8 {
        let mut raw = b"123".to_vec();
        raw.extend_from_slice(b);
        raw.extend_from_slice(b"456");
        v.push((format!("invalid UTF-8 {b:02x?}"), bytes(&raw)));
    }
    v
}

/// Codes that cannot be in argv, or are about stdin: given with `--code -`.
fn bad_stdin_codes() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("NUL inside", b"123\x00456\n".to_vec()),
        ("NUL alone", b"\x00\n".to_vec()),
        ("empty line", b"\n".to_vec()),
        ("nothing", Vec::new()),
        ("invalid UTF-8", b"123\xff456\n".to_vec()),
        (
            "a 10 KB line",
            [vec![b'1'; 10_240], b"\n".to_vec()].concat(),
        ),
        ("escape sequence", b"\x1b[31m123456\n".to_vec()),
        ("7 digits", b"1234567\n".to_vec()),
        ("5 digits", b"12345\r\n".to_vec()),
    ]
}

#[test]
fn a_corpus_of_bad_codes_is_refused_and_never_echoed() {
    let (env, e) = enrolled();
    let codes = bad_codes(&e);
    let mut runs = 0;
    for (case, code) in &codes {
        let text = code.to_string_lossy().into_owned();
        let forms: [(&str, Vec<OsString>); 2] = [
            (
                VERIFY,
                vec![os("--email"), os(A), os("--code"), code.clone()],
            ),
            (
                DISABLE,
                vec![
                    os("--email"),
                    os(A),
                    os("--yes"),
                    os("--code"),
                    code.clone(),
                ],
            ),
        ];
        for (tool, args) in forms {
            expect_usage(
                &env,
                tool,
                &args,
                None,
                Some(&text),
                &format!("{tool}: {case}"),
            );
            runs += 2;
        }
    }
    for (case, input) in bad_stdin_codes() {
        for (tool, args) in [
            (VERIFY, vec![os("--email"), os(A), os("--code"), os("-")]),
            (
                DISABLE,
                vec![os("--email"), os(A), os("--yes"), os("--code"), os("-")],
            ),
        ] {
            let text = String::from_utf8_lossy(&input).trim().replace('\0', "");
            expect_usage(
                &env,
                tool,
                &args,
                Some(&input),
                Some(&text),
                &format!("{tool} stdin: {case}"),
            );
            runs += 2;
        }
    }
    // After all of it, alice is as she was: nothing counted against her.
    let listed = env.account(A);
    assert_eq!(listed["failed_attempts"], 0, "{listed}");
    assert_eq!(listed["backup_codes_left"], 10, "{listed}");
    figure(
        "hostile input, codes",
        format!(
            "{} bad codes on the command line and {} on stdin, to verify and disable, human and JSON: {runs} runs, all exit 2, never echoed, database byte-identical",
            codes.len(),
            bad_stdin_codes().len()
        ),
    );
}

const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

#[test]
fn a_backup_code_with_one_wrong_character() {
    // Outside the alphabet it is malformed (exit 2, above). Inside it, it is a
    // well-formed wrong code: rejected (exit 1) and counted, while the right
    // code still works once. Look-alikes (O for 0, I and L for 1, any case,
    // spaces for hyphens) are the same code.
    let (env, e) = enrolled();
    let code = e.backup_codes[0].clone();
    let mut rejected = 0;
    for at in [0usize, 3, 5, 13] {
        let mut chars: Vec<char> = code.chars().collect();
        let old = chars[at];
        let new = CROCKFORD
            .chars()
            .find(|c| *c != old && !"01".contains(*c))
            .expect("another character");
        chars[at] = new;
        let wrong: String = chars.into_iter().collect();
        let run = env.verify_json(A, &wrong);
        no_panic(&run);
        run.fail_json(1, "rejected");
        run.assert_not_echoed(&wrong);
        rejected += 1;
    }
    assert_eq!(env.account(A)["failed_attempts"], rejected, "each counted");
    env.verify_json(A, &code).ok_json();
    env.verify_json(A, &code).fail_json(1, "rejected");
    // Look-alikes.
    let second = e.backup_codes[1]
        .to_lowercase()
        .replace('0', "o")
        .replace('1', "l")
        .replace('-', " ");
    let doc = env.verify_json(A, &second).ok_json();
    assert_eq!(doc["backup_codes_left"], 8);
    figure(
        "hostile input, one wrong character",
        format!(
            "{rejected} substitutions rejected (exit 1) and counted; the right code and a look-alike form accepted once"
        ),
    );
}

#[test]
fn nasty_but_valid_emails_are_plain_data() {
    // Quotes, `;`, `%` and the like are no longer account-name characters
    // (they broke pasted `Next: ...` suggestions): refused before any lookup.
    let env = Env::new();
    env.enroll(A);
    for email in [
        "o'brien+2fa@example.com",
        "x';drop-table-accounts;--@example.com",
        "\"quoted\"@example.com",
        "%00%27@example.com",
        "'or'1'='1@example.com",
    ] {
        let before = env.snapshot();
        env.run(ENABLE, ["--json", "--qr", "none", "--email", email])
            .fail_json(2, "usage");
        env.run(VERIFY, ["--json", "--email", email, "--code", "123456"])
            .fail_json(2, "usage");
        assert_eq!(env.snapshot(), before, "{email}: the database changed");
    }
    // What the character set still allows is plain data, stored verbatim.
    let nasty = [
        "x--drop.table_accounts+1@example.com",
        "select.from-accounts@example.com",
        "a.b_c+d-e@example.com",
    ];
    for email in nasty {
        let e = env.enroll(email);
        assert_eq!(e.email, email);
    }
    let mut listed: Vec<String> = env
        .accounts()
        .iter()
        .map(|a| a["email"].as_str().expect("email").to_string())
        .collect();
    listed.sort();
    let mut want: Vec<String> = nasty.iter().map(|s| s.to_string()).collect();
    want.push(A.to_string());
    want.sort();
    assert_eq!(listed, want, "stored verbatim, nothing else touched");
    // A lookup of a name that is not there says so only after looking.
    env.run(
        VERIFY,
        [
            "--json",
            "--email",
            "or.1-1@example.com",
            "--code",
            "123456",
        ],
    )
    .fail_json(3, "not_enrolled");
    assert_eq!(env.accounts().len(), nasty.len() + 1);
}

// ---------------------------------------------------------------------------
// Random argument vectors
// ---------------------------------------------------------------------------

fn token_pool(e: &Enrolled) -> Vec<OsString> {
    let mut v: Vec<OsString> = [
        "--email",
        "--code",
        "--json",
        "-q",
        "--quiet",
        "--yes",
        "--force",
        "--qr",
        "none",
        "ascii",
        "unicode",
        "auto",
        "sixel",
        "--qr-invert",
        "--issuer",
        "--diagnose",
        "--diagnose-minutes",
        "--resync",
        "--since",
        "--limit",
        "--role",
        "--kind",
        "--reason",
        "service",
        "break-glass",
        "set",
        "show",
        "check",
        "exempt",
        "unexempt",
        "seal",
        "--require-all",
        "on",
        "off",
        "--grace-days",
        "--mandatory-role",
        "--no-mandatory-roles",
        "-",
        "--",
        "-V",
        "--help",
        "-x",
        "--email=",
        "--code=",
        "--email=-",
        "--limit=0",
        A,
        "ALICE@EXAMPLE.COM",
        "bob@example.com",
        "123456",
        "000000",
        "12345",
        "1234567",
        "0",
        "-1",
        "1",
        "7d",
        "24h",
        "-7d",
        "99999999999999999999",
        "9223372036854775807",
        "-9223372036854775808",
        "1e9",
        "2026-11-28T09:00:00Z",
        "9999-12-31T23:59:59Z",
        "0000-00-00T00:00:00Z",
        "",
        " ",
        "\u{202e}",
        "--\u{1b}]0;pwned\u{7}",
        "\u{1b}[2J\u{1b}[H",
        "\u{9b}31m",
        "a\u{7f}b\rc",
        "--email\u{2028}x",
        "-\u{1b}",
        "' OR 1=1 --",
        "%s%n",
        "../../etc/passwd",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    v.push(os(e.backup_codes[2].clone()));
    v.push(os("x".repeat(5000)));
    for b in BAD_UTF8 {
        v.push(bytes(b));
    }
    v
}

/// Valid command lines of `tool`, to mutate.
fn skeletons(tool: &str, e: &Enrolled) -> Vec<Vec<OsString>> {
    let v = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
    let b = e.backup_codes[4].as_str();
    match tool {
        ENABLE => vec![
            v(&["--json", "--qr", "none", "--email", "bob@example.com"]),
            v(&["--qr", "ascii", "--force", "--email", A]),
        ],
        VERIFY => vec![
            v(&["--json", "--email", A, "--code", "123456"]),
            v(&["--email", A, "--code", b]),
            v(&[
                "--json",
                "--email",
                A,
                "--code",
                "123456",
                "--diagnose",
                "--diagnose-minutes",
                "5",
            ]),
            v(&["--email", A, "--resync", "123456", "654321"]),
        ],
        DISABLE => vec![
            v(&["--json", "--yes", "--email", "bob@example.com"]),
            v(&["--email", A, "--code", "123456", "--yes"]),
        ],
        BACKUP_CODES | UNLOCK => vec![v(&["--json", "--email", A])],
        LIST => vec![v(&["--json"]), v(&["-q"])],
        AUDIT => vec![v(&[
            "--json", "--email", A, "--since", "24h", "--limit", "5",
        ])],
        POLICY => vec![
            v(&["--json", "check", "--email", A, "--role", "admin"]),
            v(&["set", "--grace-days", "3", "--issuer", "Example"]),
            v(&[
                "exempt",
                "--email",
                "svc@example.com",
                "--kind",
                "service",
                "--reason",
                "probe",
            ]),
            v(&["--json", "show"]),
        ],
        // init and seal-plaintext refuse here (a store exists, with a key).
        STORE => vec![
            v(&["check"]),
            v(&["--json", "check"]),
            v(&["init", "--json"]),
            v(&["seal-plaintext"]),
        ],
        // A file relative to the test's directory (absent: exit 2), stdin
        // (empty), and a dry run.
        IMPORT => vec![
            v(&[
                "--json",
                "--from",
                "oath-users",
                "users.oath",
                "--domain",
                "example.com",
            ]),
            v(&["--from", "otpauth", "--dry-run"]),
            v(&[
                "--from",
                "google-authenticator",
                "ga",
                "--email",
                A,
                "--force",
            ]),
        ],
        other => panic!("no command lines for {other}"),
    }
}

#[test]
fn random_argument_vectors_never_panic() {
    let (env, e) = enrolled();
    let per_tool = crate::support::count_from_env("MB2FA_ARGV_TRIALS", 40);
    let pool = token_pool(&e);
    let mut rng = Rng::for_test("argv");
    let mut by_code = std::collections::BTreeMap::<i32, usize>::new();
    for tool in TOOLS {
        let skeletons = skeletons(tool, &e);
        for trial in 0..per_tool {
            let mut pick = |n: usize| usize::try_from(rng.below(n as u64)).expect("index");
            // Half the vectors are tokens drawn at random; half are a valid
            // command line with one to three tokens replaced, inserted or
            // dropped, so the tools get past argument parsing too.
            let args: Vec<OsString> = if trial % 2 == 0 {
                let n = pick(8);
                (0..n).map(|_| pool[pick(pool.len())].clone()).collect()
            } else {
                let mut v = skeletons[pick(skeletons.len())].clone();
                for _ in 0..=pick(2) {
                    let token = pool[pick(pool.len())].clone();
                    match pick(3) {
                        0 if !v.is_empty() => {
                            let at = pick(v.len());
                            v[at] = token;
                        }
                        1 if !v.is_empty() => {
                            let at = pick(v.len());
                            v.remove(at);
                        }
                        _ => {
                            let at = pick(v.len() + 1);
                            v.insert(at, token);
                        }
                    }
                }
                v
            };
            let before = env.snapshot();
            let cmd = env.command(tool, &args);
            let run: Run = run_with_timeout(cmd, Duration::from_secs(60))
                .unwrap_or_else(|| panic!("{tool} {args:?} hung"));
            no_panic(&run);
            if run.code == 2 {
                assert_eq!(
                    env.snapshot(),
                    before,
                    "a usage error changed the database\n{run}"
                );
                let json = args
                    .iter()
                    .take_while(|a| *a != "--")
                    .any(|a| a == "--json");
                // One line on stderr; or, for a bare subcommand-less call,
                // the help on stdout.
                let help = run.stderr.is_empty() && run.stdout.contains("Usage");
                if !json && !help {
                    assert_eq!(run.stderr.lines().count(), 1, "one line on stderr\n{run}");
                }
            }
            *by_code.entry(run.code).or_default() += 1;
        }
    }
    // The database survived whatever they did.
    no_panic(&env.run(LIST, ["--json"]));
    let summary: Vec<String> = by_code
        .iter()
        .map(|(c, n)| format!("exit {c}: {n}"))
        .collect();
    figure(
        "hostile input, random argv",
        format!(
            "{} tools x {per_tool} vectors: no panic, {}",
            TOOLS.len(),
            summary.join(", ")
        ),
    );
}

/// What a database writer plants in stored text (issue 12 item 10): an
/// account name, an issuer, an audit detail and actor, an exemption reason
/// with ESC sequences, C1 controls, DEL, bidi overrides and line
/// separators. No listing shows them raw, in human text or in JSON, and the
/// JSON still decodes to the stored value.
#[test]
fn stored_escapes_never_reach_the_terminal() {
    let (env, _e) = enrolled();
    env.run(
        POLICY,
        [
            "--json",
            "exempt",
            "--email",
            "svc@example.com",
            "--kind",
            "service",
            "--reason",
            "relay",
        ],
    )
    .ok_json();
    let nasty = "x\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}1m\u{7f}\u{202e}\u{2028}\r\ty";
    let conn = env.connect();
    conn.execute(
        "UPDATE accounts SET issuer = ?1 WHERE email = ?2",
        rusqlite::params![nasty, A],
    )
    .expect("issuer");
    conn.execute(
        "INSERT INTO audit (at, tool, action, email, outcome, actor, detail) VALUES (1, ?1, ?1, ?2, ?1, ?1, ?1)",
        rusqlite::params![nasty, format!("{nasty}@example.com")],
    )
    .expect("audit row");
    conn.execute(
        "UPDATE exemptions SET reason = ?1, created_by = ?1",
        rusqlite::params![nasty],
    )
    .expect("reason");
    drop(conn);
    let mut runs = 0;
    for (tool, args) in [
        (LIST, vec![]),
        (LIST, vec!["--json"]),
        (LIST, vec!["--quiet"]),
        (AUDIT, vec![]),
        (AUDIT, vec!["--json"]),
        (POLICY, vec!["show"]),
        (POLICY, vec!["--json", "show"]),
    ] {
        let run = env.run(tool, &args);
        no_panic(&run);
        assert_eq!(run.code, 0, "{run}");
        if args.contains(&"--json") {
            assert!(
                run.stdout.contains("pwned"),
                "the value is shown, escaped\n{run}"
            );
            let doc: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("JSON");
            fn holds(v: &serde_json::Value, want: &str) -> bool {
                match v {
                    serde_json::Value::String(s) => s.contains(want),
                    serde_json::Value::Array(a) => a.iter().any(|v| holds(v, want)),
                    serde_json::Value::Object(o) => o.values().any(|v| holds(v, want)),
                    _ => false,
                }
            }
            assert!(
                holds(&doc, nasty),
                "JSON decodes to the stored value\n{run}"
            );
        }
        runs += 1;
    }
    figure(
        "hostile stored text",
        format!(
            "{runs} listings of planted ESC/C1/DEL/bidi/U+2028 values: none raw on stdout or stderr"
        ),
    );
}
