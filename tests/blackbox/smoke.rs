//! Each tool's own surface, a test or two per tool (until issue 13 these were
//! the tool crates' `tests/cli.rs`; the binaries now belong to this package),
//! and the check that the binaries the suite runs are the ones cargo built.

use std::path::PathBuf;

use mb2fa_testkit::{
    AUDIT, BACKUP_CODES, DISABLE, ENABLE, Env, LIST, POLICY, STORE, TOOLS, UNLOCK, VERIFY, bin,
    run_command, run_in_terminal,
};

const A: &str = "a@example.com";

/// `bin()` hands out what cargo built for this run (`CARGO_BIN_EXE_<name>`
/// at build time), for every tool of [`TOOLS`] and for nothing else: never a
/// stale binary left elsewhere.
#[test]
fn the_tools_run_are_the_ones_cargo_built() {
    let built = mb2fa_testkit::built_tools!();
    let names: Vec<&str> = built.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, TOOLS, "built_tools! and TOOLS disagree");
    if std::env::var_os("MB2FA_BIN_DIR").is_some() {
        // Installed binaries are under test, on purpose.
        return;
    }
    for (name, path) in built {
        assert_eq!(bin(name), PathBuf::from(path), "{name}");
    }
}

#[test]
fn audit_help_names_the_options_and_a_missing_database_is_exit_10() {
    let env = Env::new();
    let run = env.run_bare(AUDIT, ["--help"], &[]);
    run.expect_code(0);
    for opt in ["--email", "--db", "--json"] {
        assert!(run.stdout.contains(opt), "{opt} missing from --help\n{run}");
    }
    env.run(AUDIT, ["--email", A]).expect_code(10);
    assert!(!env.db.exists());
}

#[test]
fn backup_codes_missing_email_is_a_one_line_usage_error() {
    let env = Env::new();
    let run = env.run(BACKUP_CODES, Vec::<&str>::new());
    run.expect_code(2);
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(run.stderr.contains("--email"), "{run}");
}

#[test]
fn disable_help_names_the_options() {
    let run = Env::new().run_bare(DISABLE, ["--help"], &[]);
    run.expect_code(0);
    for opt in ["--email", "--code", "--yes", "--db", "--json"] {
        assert!(run.stdout.contains(opt), "{opt} missing from --help\n{run}");
    }
}

/// Enroll, then run disable on a pseudo-terminal and answer its prompt: the
/// run (`None` without script(1), outside CI) and whether the account is
/// still enrolled.
fn disable_prompt_answer(answer: &[u8]) -> Option<(mb2fa_testkit::Run, bool)> {
    const TTY: &str = "tty@example.com";
    let env = Env::new();
    env.enroll(TTY);
    let run = run_in_terminal(&env.command(DISABLE, ["--email", TTY]), answer)?;
    let still_enrolled = env.accounts().iter().any(|a| a["email"] == TTY);
    Some((run, still_enrolled))
}

#[test]
fn disable_on_a_terminal_asks_and_no_keeps_the_enrollment() {
    let Some((run, enrolled)) = disable_prompt_answer(b"n\n") else {
        return;
    };
    assert!(
        run.stdout
            .contains("Remove 2FA (pending) for tty@example.com?"),
        "{run}"
    );
    assert_eq!(run.code, 2, "{run}");
    assert!(enrolled);
}

#[test]
fn disable_on_a_terminal_yes_removes_it() {
    let Some((run, enrolled)) = disable_prompt_answer(b"y\n") else {
        return;
    };
    assert_eq!(run.code, 0, "{run}");
    assert!(
        run.stdout.contains("2FA removed for tty@example.com"),
        "{run}"
    );
    assert!(!enrolled);
}

#[test]
fn enable_help_and_version() {
    let env = Env::new();
    let run = env.run_bare(ENABLE, ["--help"], &[]);
    run.expect_code(0);
    for opt in [
        "--email", "--issuer", "--force", "--qr", "--db", "--json", "--quiet",
    ] {
        assert!(run.stdout.contains(opt), "{opt} missing from --help\n{run}");
    }
    let run = env.run_bare(ENABLE, ["--version"], &[]);
    run.expect_code(0);
    // The workspace's version, which every package shares.
    assert!(run.stdout.contains(env!("CARGO_PKG_VERSION")), "{run}");
}

#[test]
fn enable_bad_qr_style_is_a_usage_error_and_creates_nothing() {
    let env = Env::new();
    let run = env.run(ENABLE, ["--email", A, "--qr", "sixel"]);
    run.expect_code(2);
    assert_eq!(run.stderr.lines().count(), 1, "{run}");
    assert!(!env.db.exists());
}

#[test]
fn list_missing_database_is_exit_10_in_json_too() {
    let env = Env::new();
    let run = env.run(LIST, ["--json"]);
    run.expect_code(10);
    assert!(run.stdout.contains(r#""ok":false"#), "{run}");
    assert!(run.stdout.contains(r#""kind":"storage""#), "{run}");
}

#[test]
fn policy_check_fails_closed_without_a_database() {
    let env = Env::new();
    let run = env.run(POLICY, ["check", "--email", A, "--json"]);
    assert_eq!(run.code, 10, "never 6 (let in) on a storage error\n{run}");
    assert!(run.stdout.contains(r#""kind":"storage""#), "{run}");
    assert!(!env.db.exists());
}

#[test]
fn store_init_creates_once_and_check_passes_then_fails_without_the_key() {
    let env = Env::new();
    // The key named on the command line only, not by MB2FA_KEY_FILE.
    let run = |args: &[&str]| {
        let mut cmd = env.command(STORE, args);
        cmd.arg("--key-file")
            .arg(&env.key)
            .env_remove("MB2FA_KEY_FILE");
        run_command(cmd, None)
    };
    // Without a database, check fails and creates nothing.
    run(&["check"]).expect_code(10);
    assert!(!env.db.exists());
    run(&["init"]).expect_code(0);
    assert!(env.db.exists() && env.key.exists());
    assert_eq!(run(&["init"]).code, 10, "only once");
    let out = run(&["check"]);
    out.expect_code(0);
    assert!(out.stdout.contains("ok   key"), "{out}");
    std::fs::remove_file(&env.key).expect("rm key");
    // A missing key is a failed check; check never makes one.
    run(&["check"]).expect_code(10);
    assert!(!env.key.exists());
}

#[test]
fn unlock_help_names_the_options_and_a_missing_database_is_exit_10() {
    let env = Env::new();
    let run = env.run_bare(UNLOCK, ["--help"], &[]);
    run.expect_code(0);
    for opt in ["--email", "--db", "--json"] {
        assert!(run.stdout.contains(opt), "{opt} missing from --help\n{run}");
    }
    env.run(UNLOCK, ["--email", A]).expect_code(10);
    assert!(!env.db.exists());
}

#[test]
fn verify_help_names_the_options() {
    let run = Env::new().run_bare(VERIFY, ["--help"], &[]);
    run.expect_code(0);
    for opt in ["--email", "--code", "--db", "--json"] {
        assert!(run.stdout.contains(opt), "{opt} missing from --help\n{run}");
    }
}

#[test]
fn verify_missing_database_is_a_storage_error_not_no_enrollment() {
    let env = Env::new();
    let run = env.run(VERIFY, ["--email", A, "--code", "123456"]);
    run.expect_code(10);
    assert!(!env.db.exists(), "verify must not create the database");
}
