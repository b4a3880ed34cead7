//! Where the store is: `--db`, `MB2FA_DB`, `--config FILE` and its
//! `[store]`/`[key]`, and store URLs that would leak a password.

use std::ffi::OsStr;

use mb2fa_testkit::{ENABLE, Env, LIST, STORE, VERIFY, chmod, totp_now};

const ALICE: &str = "alice@example.com";

/// A config file in the test's directory naming `store` and `key`.
fn config(env: &Env, name: &str, text: &str) -> std::path::PathBuf {
    let path = env.path(name);
    std::fs::write(&path, text).expect("write config");
    chmod(&path, 0o644);
    path
}

#[test]
fn config_file_names_the_store_and_the_key() {
    let env = Env::new();
    let db = env.path("from-config/2fa.db");
    let key = env.path("config-keys/2fa.key");
    let cfg = config(
        &env,
        "2fa.toml",
        &format!(
            "[store]\npath = \"{}\"\n\n[key]\nfile = \"{}\"\n",
            db.display(),
            key.display()
        ),
    );
    // No --db, no MB2FA_DB, no MB2FA_KEY_FILE: the config file decides both.
    let mut cmd = env.bare_command(ENABLE);
    cmd.env_remove("MB2FA_KEY_FILE").args([
        OsStr::new("--config"),
        cfg.as_os_str(),
        OsStr::new("--json"),
        OsStr::new("--qr"),
        OsStr::new("none"),
        OsStr::new("--email"),
        OsStr::new(ALICE),
    ]);
    let run = mb2fa_testkit::run_command(cmd, None);
    let doc = run.ok_json();
    assert!(
        db.exists(),
        "the store was made where the config says\n{run}"
    );
    assert!(
        key.exists(),
        "the key was made where the config says\n{run}"
    );
    assert!(!env.db.exists(), "nothing at the test's default db");
    let secret = doc["secret"].as_str().expect("secret").to_string();
    let mut cmd = env.bare_command(VERIFY);
    cmd.env_remove("MB2FA_KEY_FILE").args([
        OsStr::new("--config"),
        cfg.as_os_str(),
        OsStr::new("--email"),
        OsStr::new(ALICE),
        OsStr::new("--code"),
        OsStr::new(&totp_now(&secret, 0)),
    ]);
    mb2fa_testkit::run_command(cmd, None).expect_code(0);

    // --db and MB2FA_DB come before the config file.
    let other = env.path("other.db");
    let run = env.run_bare(
        LIST,
        [
            OsStr::new("--config"),
            cfg.as_os_str(),
            OsStr::new("--db"),
            other.as_os_str(),
        ],
        &[],
    );
    run.fail_line(10, "mb-2fa-list", "other.db");
    let run = env.run_bare(
        LIST,
        [OsStr::new("--config"), cfg.as_os_str()],
        &[("MB2FA_DB", other.as_os_str())],
    );
    run.fail_line(10, "mb-2fa-list", "other.db");
    let run = env.run_bare(
        LIST,
        [
            OsStr::new("--config"),
            cfg.as_os_str(),
            OsStr::new("--json"),
        ],
        &[],
    );
    assert_eq!(run.ok_json()["accounts"][0]["email"], ALICE, "{run}");
}

#[test]
fn a_config_file_that_cannot_be_trusted_or_read_is_exit_10() {
    let env = Env::new();
    let good = format!("[store]\npath = \"{}\"\n", env.db.display());
    let cases: Vec<(&str, String, u32, &str)> = vec![
        (
            "loose.toml",
            good.clone(),
            0o666,
            "writable by group or others",
        ),
        (
            "typo.toml",
            "[store]\npaht = \"/x\"\n".into(),
            0o644,
            "line 2",
        ),
        (
            "both.toml",
            format!("{good}url = \"mariadb://u@h/d\"\n"),
            0o644,
            "both path and url",
        ),
        ("broken.toml", "[store\n".into(), 0o644, "not valid"),
    ];
    for (name, text, mode, fragment) in cases {
        let path = config(&env, name, &text);
        chmod(&path, mode);
        let run = env.run_bare(LIST, [OsStr::new("--config"), path.as_os_str()], &[]);
        run.fail_line(10, "mb-2fa-list", fragment);
        assert!(!env.db.exists(), "{name}: nothing was created");
    }
    let missing = env.path("missing.toml");
    let run = env.run_bare(LIST, [OsStr::new("--config"), missing.as_os_str()], &[]);
    run.fail_line(10, "mb-2fa-list", "missing.toml");
}

#[test]
fn a_password_in_a_store_url_is_refused_and_never_echoed() {
    let env = Env::new();
    for url in [
        "mariadb://mb2fa:Hunter2pw@db.example.com/mailborder",
        "mariadb://mb2fa:@db.example.com/mailborder",
        "mariadb://mb2fa@db.example.com/mailborder?password=Hunter2pw",
    ] {
        let run = env.run_bare(LIST, ["--db", url], &[]);
        run.fail_line(2, "mb-2fa-list", "password");
        run.assert_not_echoed("Hunter2pw");
        let run = env.run_bare(LIST, ["--json"], &[("MB2FA_DB", OsStr::new(url))]);
        assert!(run.fail_json(2, "usage").contains("MB2FA_DB"), "{run}");
        run.assert_not_echoed("Hunter2pw");
        let cfg = config(&env, "pw.toml", &format!("[store]\nurl = \"{url}\"\n"));
        let run = env.run_bare(
            STORE,
            [OsStr::new("--config"), cfg.as_os_str(), OsStr::new("check")],
            &[],
        );
        run.fail_line(2, "mb-2fa-store", "password");
        run.assert_not_echoed("Hunter2pw");
    }
    // copy's target is held to the same rule.
    env.enroll(ALICE);
    let run = env.run(
        STORE,
        [
            "copy",
            "--to",
            "mariadb://u:Hunter2pw@localhost/mb?socket=/nonexistent",
        ],
    );
    run.fail_line(2, "mb-2fa-store", "password");
    run.assert_not_echoed("Hunter2pw");
}

#[test]
fn malformed_store_urls_are_usage_errors() {
    let env = Env::new();
    for url in [
        "mariadb://db.example.com/mailborder",
        "mariadb://u@db.example.com/",
        "mariadb://u@db.example.com/mail-border",
        "mariadb://u@db.example.com/mb?sockt=/x",
        "postgres://u@db.example.com/mb",
    ] {
        let run = env.run_bare(LIST, ["--db", url], &[]);
        assert_eq!(run.code, 2, "{url}\n{run}");
    }
}

#[test]
fn an_unreachable_server_is_exit_10_never_not_enrolled() {
    let env = Env::new();
    let sock = env.path("no-server.sock");
    let url = format!("mariadb://root@localhost/mb?socket={}", sock.display());
    for tool in [VERIFY, LIST] {
        let mut args = vec!["--db", url.as_str()];
        if tool == VERIFY {
            args.extend(["--email", ALICE, "--code", "123456"]);
        }
        let run = env.run_bare(tool, args, &[]);
        run.fail_line(10, tool, "cannot connect");
    }
    // A TCP port nobody listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = format!("mariadb://mb2fa@127.0.0.1:{port}/mb");
    let run = env.run_bare(
        VERIFY,
        ["--db", &url, "--email", ALICE, "--code", "123456"],
        &[],
    );
    run.fail_line(10, VERIFY, "cannot connect");
}
