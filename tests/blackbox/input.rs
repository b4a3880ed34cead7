//! Bad input: every malformed email, code and argument is exit 2 with one
//! line on stderr naming the problem (or a `usage` JSON error), echoes no
//! code, and leaves the database byte-for-byte unchanged.

use std::ffi::{OsStr, OsString};

use mb2fa_testkit::{
    BACKUP_CODES, DISABLE, EMAIL_TOOLS, ENABLE, Env, LIST, TOOLS, VERIFY, non_utf8, totp_now,
};

const ALICE: &str = "alice@example.com";

/// 255 characters: one more than the limit.
fn too_long_email() -> String {
    let e = format!(
        "{}@{}.{}.{}.com",
        "a".repeat(64),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(58)
    );
    assert_eq!(e.len(), 255);
    e
}

/// 254 characters, every label within DNS limits: the longest accepted.
fn longest_email() -> String {
    let e = format!(
        "{}@{}.{}.{}.com",
        "a".repeat(64),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(57)
    );
    assert_eq!(e.len(), 254);
    e
}

fn bad_emails() -> Vec<(&'static str, OsString)> {
    vec![
        ("empty", OsString::from("")),
        ("blank", OsString::from("   ")),
        ("no @", OsString::from("alice.example.com")),
        ("two @", OsString::from("alice@bob@example.com")),
        ("nothing before @", OsString::from("@example.com")),
        ("nothing after @", OsString::from("alice@")),
        ("inner space", OsString::from("al ice@example.com")),
        (
            "escape sequence",
            OsString::from("alice\u{1b}[31m@example.com"),
        ),
        ("tab", OsString::from("ali\tce@example.com")),
        (
            "right-to-left override",
            OsString::from("alice\u{202E}moc.elpmaxe@example.com"),
        ),
        (
            "zero-width space",
            OsString::from("al\u{200B}ice@example.com"),
        ),
        ("255 characters", OsString::from(too_long_email())),
        ("a lone dash", OsString::from("-")),
        ("not UTF-8", non_utf8("al", "ce@example.com")),
    ]
}

fn bad_codes() -> Vec<(&'static str, OsString)> {
    vec![
        ("empty", OsString::from("")),
        ("blank", OsString::from("   ")),
        ("5 digits", OsString::from("12345")),
        ("7 digits", OsString::from("1234567")),
        ("letters", OsString::from("abcdef")),
        ("digits and a letter", OsString::from("12345a")),
        ("a hyphen in a TOTP code", OsString::from("123-456")),
        ("SQL", OsString::from("' OR 1=1; DROP TABLE accounts; --")),
        ("tab", OsString::from("123\t456")),
        ("escape", OsString::from("123\u{1b}456")),
        ("Arabic-Indic digits", OsString::from("١٢٣٤٥٦")),
        ("fullwidth digits", OsString::from("１２３４５６")),
        ("backup code with U", OsString::from("ABCD-EFGH-JKMU")),
        ("backup code too short", OsString::from("ABCD-EFGH-JKM")),
        ("backup code too long", OsString::from("ABCD-EFGH-JKMN-P")),
        ("very long", OsString::from("1".repeat(5000))),
        ("not UTF-8", non_utf8("123", "456")),
    ]
}

/// An environment with an active account, so the database exists and
/// "unchanged" means something.
fn enrolled_env() -> (Env, String) {
    let env = Env::new();
    let e = env.enroll(ALICE);
    env.activate(&e);
    (env, e.secret)
}

/// Run `tool --db DB args`, expecting a usage error, in human mode and with
/// `--json`; the database must be unchanged by either.
#[track_caller]
fn expect_usage(env: &Env, tool: &str, args: &[&OsStr], fragment: &str, case: &str) {
    let before = env.snapshot();
    let run = env.run(tool, args);
    assert_eq!(run.code, 2, "case {case}\n{run}");
    run.fail_line(2, tool, fragment);
    let mut json_args: Vec<&OsStr> = vec![OsStr::new("--json")];
    json_args.extend_from_slice(args);
    let run = env.run(tool, &json_args);
    let message = run.fail_json(2, "usage");
    assert!(
        message.to_lowercase().contains(&fragment.to_lowercase()),
        "case {case}: error.message must mention {fragment:?}\n{run}"
    );
    assert_eq!(
        env.snapshot(),
        before,
        "case {case}: the database changed\n{run}"
    );
}

#[test]
fn bad_emails_are_usage_errors_for_every_tool() {
    let (env, _) = enrolled_env();
    for tool in EMAIL_TOOLS {
        for (case, email) in bad_emails() {
            let mut args: Vec<&OsStr> = vec![OsStr::new("--email"), &email];
            match tool {
                VERIFY => args.extend([OsStr::new("--code"), OsStr::new("123456")]),
                DISABLE => args.push(OsStr::new("--yes")),
                ENABLE => args.extend([OsStr::new("--qr"), OsStr::new("none")]),
                _ => {}
            }
            expect_usage(
                &env,
                tool,
                &args,
                "invalid email",
                &format!("{tool}: {case}"),
            );
        }
    }
}

#[test]
fn equals_dash_email_is_an_invalid_email() {
    let (env, _) = enrolled_env();
    let arg = OsString::from("--email=-");
    let args: Vec<&OsStr> = vec![&arg, OsStr::new("--code"), OsStr::new("123456")];
    expect_usage(&env, VERIFY, &args, "invalid email", "--email=-");
}

#[test]
fn the_longest_valid_email_is_accepted() {
    let env = Env::new();
    let email = longest_email();
    let e = env.enroll(&email);
    assert_eq!(e.email, email);
    env.activate(&e);
}

#[test]
fn bad_codes_are_usage_errors_that_do_not_echo_the_code() {
    let (env, secret) = enrolled_env();
    for (case, code) in bad_codes() {
        let args: Vec<&OsStr> = vec![
            OsStr::new("--email"),
            OsStr::new(ALICE),
            OsStr::new("--code"),
            &code,
        ];
        expect_usage(&env, VERIFY, &args, "malformed code", case);
        let text = code.to_string_lossy().trim().to_string();
        if text.chars().count() >= 4 {
            let run = env.run(VERIFY, &args);
            run.assert_not_echoed(&text);
            let mut json_args = vec![OsStr::new("--json")];
            json_args.extend_from_slice(&args);
            env.run(VERIFY, &json_args).assert_not_echoed(&text);
        }
        // The same through disable's self-service path.
        let args: Vec<&OsStr> = vec![
            OsStr::new("--email"),
            OsStr::new(ALICE),
            OsStr::new("--yes"),
            OsStr::new("--code"),
            &code,
        ];
        expect_usage(&env, DISABLE, &args, "malformed code", case);
    }
    // After all that the account is intact and a good code still works.
    let run = env.verify_json(ALICE, &totp_now(&secret, 1));
    run.ok_json();
}

#[test]
fn argument_errors_are_usage_errors() {
    let (env, _) = enrolled_env();
    let s = |v: &'static str| OsStr::new(v);
    let cases: Vec<(&str, Vec<&OsStr>, &str)> = vec![
        (
            VERIFY,
            vec![
                s("--frobnicate"),
                s("--email"),
                s(ALICE),
                s("--code"),
                s("123456"),
            ],
            "unexpected argument",
        ),
        (VERIFY, vec![s("--code"), s("123456")], "--email"),
        (VERIFY, vec![s("--email"), s(ALICE)], "--code"),
        (VERIFY, vec![s("--email"), s(ALICE), s("--code")], "--code"),
        (
            VERIFY,
            vec![s("--email"), s(ALICE), s("--code"), s("123456"), s("stray")],
            "unexpected argument",
        ),
        (ENABLE, vec![s("--qr"), s("none")], "--email"),
        (
            ENABLE,
            vec![s("--email"), s(ALICE), s("--qr"), s("sixel")],
            "sixel",
        ),
        (DISABLE, vec![s("--yes")], "--email"),
        (BACKUP_CODES, vec![], "--email"),
        (LIST, vec![s("--email"), s(ALICE)], "unexpected argument"),
    ];
    for (tool, args, fragment) in &cases {
        expect_usage(&env, tool, args, fragment, &format!("{tool} {args:?}"));
    }
    for tool in TOOLS {
        expect_usage(
            &env,
            tool,
            &[s("--no-such-flag")],
            "unexpected argument",
            tool,
        );
    }
    let bad = non_utf8("--wat", "");
    expect_usage(
        &env,
        VERIFY,
        &[&bad, s("--email"), s(ALICE), s("--code"), s("123456")],
        "",
        "non-UTF-8 flag",
    );
}

#[test]
fn bad_issuer_is_a_usage_error() {
    let (env, _) = enrolled_env();
    let s = |v: &'static str| OsStr::new(v);
    for issuer in ["", "Mail:border", "Mail\u{1b}border"] {
        let args = [
            s("--force"),
            s("--qr"),
            s("none"),
            s("--email"),
            s(ALICE),
            s("--issuer"),
            OsStr::new(issuer),
        ];
        expect_usage(&env, ENABLE, &args, "issuer", issuer);
    }
    assert_eq!(env.account(ALICE)["state"], "active");
}

#[test]
fn bad_input_to_enable_creates_no_database() {
    let env = Env::new();
    let run = env.run(ENABLE, ["--email", "not-an-email", "--qr", "none"]);
    run.fail_line(2, ENABLE, "invalid email");
    let run = env.run(ENABLE, ["--email", ALICE, "--qr", "none", "--bogus"]);
    run.fail_line(2, ENABLE, "unexpected argument");
    assert!(
        !env.db.exists(),
        "a refused enable created {}",
        env.db.display()
    );
    let entries: Vec<_> = std::fs::read_dir(env.dir.path()).expect("dir").collect();
    assert!(
        entries.is_empty(),
        "a refused enable left files: {entries:?}"
    );
}
