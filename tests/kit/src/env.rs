//! A test's private environment: a temporary directory, its database and
//! key, the tools run against them, and what they enrolled.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use tempfile::TempDir;

use crate::db::{self, DbSnapshot, db_bytes};
use crate::runner::{Run, bin, run_command};
use crate::tools::{AUDIT, ENABLE, LIST, STORE, VERIFY};
use crate::totp::totp_now;

/// A private temporary directory with a database path in it. Every tool run
/// through it gets `--db <dir>/2fa.db` and a clean environment (`MB2FA_DB`
/// removed, `MB2FA_KEY_FILE` in the directory, syslog off), so tests never
/// share state or touch /var/lib/mailborder, /etc/mailborder or syslog.
pub struct Env {
    pub dir: TempDir,
    pub db: PathBuf,
    /// With `MB2FA_TEST_STORE=mariadb`: the URL of this test's own database
    /// on the test process's `mariadbd`, which every tool run gets as `--db`
    /// instead of [`Env::db`].
    pub url: Option<String>,
    /// The key file every tool run through this environment uses
    /// (`MB2FA_KEY_FILE`); created by the first enrollment.
    pub key: PathBuf,
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

impl Env {
    pub fn new() -> Env {
        let dir = tempfile::Builder::new()
            .prefix("mb2fa-test-")
            .tempdir()
            .expect("temporary directory");
        let db = dir.path().join("2fa.db");
        let key = dir.path().join("keys/2fa.key");
        let url =
            (std::env::var_os("MB2FA_TEST_STORE").is_some_and(|v| v == "mariadb")).then(|| {
                let server = crate::mariadb::Server::shared().unwrap_or_else(|| {
                    panic!("MB2FA_TEST_STORE=mariadb, but MariaDB is not installed here")
                });
                server.url(&server.create_database())
            });
        Env { dir, db, url, key }
    }

    /// Whether the tools run against MariaDB (`MB2FA_TEST_STORE=mariadb`).
    pub fn is_mariadb(&self) -> bool {
        self.url.is_some()
    }

    /// What `--db` gets: the SQLite path, or the MariaDB URL.
    pub fn store_arg(&self) -> std::ffi::OsString {
        match &self.url {
            Some(u) => u.into(),
            None => self.db.clone().into_os_string(),
        }
    }

    /// A path inside the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `tool` with a clean environment and no `--db`.
    pub fn bare_command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(bin(tool));
        cmd.env_remove("MB2FA_DB")
            // The test harness's own switches are not the tools' business
            // (and through sudo any MB2FA_* variable is refused).
            .env_remove("MB2FA_REQUIRE_MARIADB")
            .env_remove("MB2FA_REQUIRE_PAM")
            .env_remove("MB2FA_REQUIRE_PEERS")
            .env_remove("MB2FA_TEST_STORE")
            .env_remove("NO_COLOR")
            .env_remove("SUDO_USER")
            // Tests may run under sudo; the tools would take that as a
            // front end's delegated call and refuse --db.
            .env_remove("SUDO_UID")
            .env_remove("SUDO_GID")
            .env_remove("SUDO_COMMAND")
            .env("MB2FA_KEY_FILE", &self.key)
            // Tests must not write into the machine's syslog.
            .env("MB2FA_SYSLOG_SOCKET", "")
            .current_dir(self.dir.path());
        cmd
    }

    /// `tool --db <db> args...`.
    pub fn command<I, S>(&self, tool: &str, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.bare_command(tool);
        cmd.arg("--db").arg(self.store_arg()).args(args);
        cmd
    }

    /// Run `tool --db <db> args...` with no stdin.
    pub fn run<I, S>(&self, tool: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_command(self.command(tool, args), None)
    }

    /// Run with `input` on stdin.
    pub fn run_stdin<I, S>(&self, tool: &str, args: I, input: &[u8]) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_command(self.command(tool, args), Some(input))
    }

    /// Run with extra environment variables.
    pub fn run_env<I, S>(&self, tool: &str, args: I, vars: &[(&str, &OsStr)]) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(tool, args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        run_command(cmd, None)
    }

    /// Run without `--db` (for tests of `MB2FA_DB` and of argument parsing).
    pub fn run_bare<I, S>(&self, tool: &str, args: I, vars: &[(&str, &OsStr)]) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.bare_command(tool);
        cmd.args(args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        run_command(cmd, None)
    }

    /// `mb-2fa-store init`, which must succeed: an empty store (and key)
    /// for tests that set a policy before anyone enrolls.
    #[track_caller]
    pub fn init(&self) {
        self.run(STORE, ["init", "--json"]).ok_json();
    }

    /// `mb-2fa-enable --json --qr none --email E [extra...]`, which must
    /// succeed; the enrollment it printed.
    #[track_caller]
    pub fn enroll_with(&self, email: &str, extra: &[&str]) -> Enrolled {
        let mut args = vec!["--json", "--qr", "none", "--email", email];
        args.extend_from_slice(extra);
        let run = self.run(ENABLE, &args);
        let doc = run.ok_json();
        Enrolled::from_json(&doc, &run)
    }

    /// Enroll `email` with the defaults.
    #[track_caller]
    pub fn enroll(&self, email: &str) -> Enrolled {
        self.enroll_with(email, &[])
    }

    /// Verify `code` for `email` with `--json`.
    pub fn verify_json(&self, email: &str, code: &str) -> Run {
        self.run(VERIFY, ["--json", "--email", email, "--code", code])
    }

    /// Activate a pending enrollment with the current TOTP code.
    #[track_caller]
    pub fn activate(&self, e: &Enrolled) -> Value {
        let run = self.verify_json(&e.email, &totp_now(&e.secret, 0));
        let doc = run.ok_json();
        assert_eq!(doc["activated"], Value::Bool(true), "{run}");
        doc
    }

    /// `mb-2fa-list --json`: the accounts array.
    #[track_caller]
    pub fn accounts(&self) -> Vec<Value> {
        let run = self.run(LIST, ["--json"]);
        let doc = run.ok_json();
        doc["accounts"]
            .as_array()
            .unwrap_or_else(|| panic!("`accounts` is not an array\n{run}"))
            .clone()
    }

    /// The `mb-2fa-list --json` entry of `email`.
    #[track_caller]
    pub fn account(&self, email: &str) -> Value {
        self.accounts()
            .into_iter()
            .find(|a| a["email"] == email)
            .unwrap_or_else(|| panic!("{email} is not listed"))
    }

    /// Snapshot of the database files.
    pub fn snapshot(&self) -> DbSnapshot {
        db_bytes(&self.db)
    }

    /// A direct connection to the database ([`db::open`]), to look at (or
    /// tamper with) what the tools stored, bypassing them.
    pub fn connect(&self) -> rusqlite::Connection {
        db::open(&self.db)
    }

    /// `PRAGMA user_version` of the database.
    pub fn user_version(&self) -> i64 {
        db::user_version(&self.connect())
    }

    /// The stored `accounts.secret` of `email`, as the tools left it.
    pub fn stored_secret(&self, email: &str) -> Vec<u8> {
        self.connect()
            .query_row(
                "SELECT secret FROM accounts WHERE email = ?1",
                [email],
                |r| r.get(0),
            )
            .unwrap_or_else(|e| panic!("secret of {email}: {e}"))
    }

    /// Run a tool with `SUDO_USER` set, as an admin behind sudo would.
    pub fn run_as<I, S>(&self, sudo_user: &str, tool: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_env(tool, args, &[("SUDO_USER", OsStr::new(sudo_user))])
    }

    /// `mb-2fa-audit --json [args...]`, which must succeed: its records.
    #[track_caller]
    pub fn audit<I, S>(&self, args: I) -> Vec<Value>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(AUDIT, ["--json"]);
        cmd.args(args);
        let run = run_command(cmd, None);
        let doc = run.ok_json();
        doc["records"]
            .as_array()
            .unwrap_or_else(|| panic!("`records` is not an array\n{run}"))
            .clone()
    }
}

/// What `mb-2fa-enable --json` printed.
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub email: String,
    pub secret: String,
    pub uri: String,
    pub backup_codes: Vec<String>,
    pub doc: Value,
}

impl Enrolled {
    /// What `mb-2fa-enable --json` printed in `doc` (`run` for messages).
    #[track_caller]
    pub fn parse(doc: &Value, run: &Run) -> Enrolled {
        Self::from_json(doc, run)
    }

    #[track_caller]
    fn from_json(doc: &Value, run: &Run) -> Enrolled {
        let s = |k: &str| {
            doc[k]
                .as_str()
                .unwrap_or_else(|| panic!("`{k}` is not a string\n{run}"))
                .to_string()
        };
        let backup_codes = doc["backup_codes"]
            .as_array()
            .unwrap_or_else(|| panic!("`backup_codes` is not an array\n{run}"))
            .iter()
            .map(|c| c.as_str().expect("backup code string").to_string())
            .collect();
        Enrolled {
            email: s("email"),
            secret: s("secret"),
            uri: s("otpauth_uri"),
            backup_codes,
            doc: doc.clone(),
        }
    }
}
