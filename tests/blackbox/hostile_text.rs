//! Hostile text: account names that would look like another one, or that
//! would break a pasted command line, are refused (exit 2) before anything
//! is stored; canonically equal spellings are one account.

use mb2fa_testkit::{DISABLE, ENABLE, Env, LIST, VERIFY};

#[test]
fn look_alike_account_names_are_refused() {
    let env = Env::new();
    env.enroll("alice@example.com");
    let cases = [
        ("al\u{34f}ice@example.com", "U+034F"),
        ("al\u{200b}ice@example.com", "U+200B"),
        ("al\u{2800}ice@example.com", "U+2800"),
        ("al\u{3164}ice@example.com", "U+3164"),
        ("al\u{115f}ice@example.com", "U+115F"),
        ("al\u{ffa0}ice@example.com", "U+FFA0"),
        ("alice\u{fe0f}@example.com", "U+FE0F"),
        ("alice\u{e0041}@example.com", "U+E0041"),
        ("\u{430}lice@example.com", "mixes scripts"),
        ("alice@ex\u{430}mple.com", "mixes scripts"),
    ];
    for (email, why) in cases {
        let before = env.snapshot();
        for tool in [ENABLE, VERIFY] {
            let mut args = vec!["--email", email];
            if tool == VERIFY {
                args.extend(["--code", "123456"]);
            } else {
                args.extend(["--qr", "none"]);
            }
            let run = env.run(tool, &args);
            let line = run.fail_line(2, tool, why);
            // Named by its code point, never shown raw.
            assert!(line.is_ascii(), "{line}");
            let mut json = vec!["--json"];
            json.extend(&args);
            env.run(tool, &json).fail_json(2, "usage");
        }
        assert_eq!(env.snapshot(), before, "{email:?}: the database changed");
    }
    assert_eq!(env.accounts().len(), 1);
}

#[test]
fn nfd_and_nfc_twins_are_one_account() {
    let env = Env::new();
    let nfd = "jose\u{301}@example.com";
    let nfc = "jos\u{e9}@example.com";
    let e = env.enroll(nfd);
    assert_eq!(e.email, nfc);
    // The other spelling is the same account: already enrolled.
    let doc = env.enroll(&nfc.to_uppercase());
    assert_eq!(doc.email, nfc);
    assert_eq!(doc.doc["replaced"], "pending", "{}", doc.doc);
    let listed: Vec<_> = env.accounts().iter().map(|a| a["email"].clone()).collect();
    assert_eq!(listed, vec![serde_json::Value::from(nfc)]);
    // Single-script and Japanese names are fine.
    env.enroll("иван@пример.рф");
    env.enroll("やまだ太郎カタカナ@example.jp");
    assert_eq!(env.accounts().len(), 3);
}

#[test]
fn shell_metacharacters_in_an_email_are_refused() {
    let env = Env::new();
    let marker = env.path("p");
    let email = format!("x$(touch${{IFS}}{})@e.com", marker.display());
    for args in [
        vec!["--qr", "none", "--email", email.as_str()],
        vec!["--json", "--qr", "none", "--email", email.as_str()],
    ] {
        let run = env.run(ENABLE, &args);
        run.expect_code(2);
        assert!(!run.stdout.contains("Next:"), "{run}");
        assert!(
            run.stderr.contains("U+0024") || run.stdout.contains("U+0024"),
            "{run}"
        );
    }
    for email in ["o'hara@example.com", "a`id`@example.com", "a;b@example.com"] {
        env.run(ENABLE, ["--json", "--qr", "none", "--email", email])
            .fail_json(2, "usage");
    }
    assert!(!marker.exists());
    assert!(!env.db.exists(), "nothing was stored");
}

/// Parse errors never quote what may be a code (issue 12 item 9) and never
/// echo a terminal escape (item 10): extra values, a third resync code,
/// a second backup code, an escape-laden option.
#[test]
fn parse_errors_quote_no_code_and_no_escape() {
    let env = Env::new();
    let cases: Vec<(&str, Vec<&str>, &str)> = vec![
        (
            VERIFY,
            vec!["--email", "a@example.com", "--code", "492039", "582913"],
            "582913",
        ),
        (
            VERIFY,
            vec![
                "--email",
                "a@example.com",
                "--resync",
                "111111",
                "222222",
                "333333",
            ],
            "333333",
        ),
        (
            DISABLE,
            vec![
                "--json",
                "--email",
                "a@example.com",
                "--code",
                "2C87-QC97-5JZ7",
                "7K3M-QC97-5JZ8",
            ],
            "7K3M",
        ),
        (
            DISABLE,
            vec![
                "--email",
                "a@example.com",
                "--code",
                "2c87-qc97-5jz7",
                "7k3m-qc97-5jz8",
            ],
            "7k3m",
        ),
        (VERIFY, vec!["--email", "--\u{1b}]0;pwned\u{7}"], "pwned"),
        (LIST, vec!["--\u{9b}31mx"], "31m"),
    ];
    for (tool, args, secret) in cases {
        let run = env.run(tool, &args);
        assert_eq!(run.code, 2, "{run}");
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{secret} echoed\n{run}"
        );
        for text in [&run.stdout, &run.stderr] {
            assert!(
                !text.chars().any(|c| c.is_control() && c != '\n'),
                "a raw control character reached the terminal\n{run}"
            );
        }
    }
    // A plain misspelt option is still named, with the suggestion.
    let run = env.run(VERIFY, ["--emial", "a@example.com"]);
    assert!(
        run.stderr.contains("--emial") && run.stderr.contains("--email"),
        "{run}"
    );
}
