//! Helpers for the black-box tests of the mb-2fa binaries.
//!
//! The tests run the shipped binaries as a sysadmin or a script would, each
//! against its own database in a temporary directory, and check only what the
//! contract (SPEC.md) promises: exit codes, stdout/stderr, JSON fields and the
//! files on disk. Nothing here calls into `mb2fa-core`: the TOTP reference, the
//! QR decoding (rqrr) and the checks are independent of the code under test.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::Once;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha1::Sha1;
use tempfile::TempDir;

/// The one list of the tools: a constant for each name, [`TOOLS`], and
/// [`built_tools!`] (their paths as cargo built them), from the same lines.
macro_rules! tools {
    ($($konst:ident = $name:literal,)*) => {
        $(#[doc = concat!("`", $name, "`")] pub const $konst: &str = $name;)*

        /// Every tool of the set (each is a `[[bin]]` of tests/Cargo.toml).
        pub const TOOLS: [&str; [$($name),*].len()] = [$($konst),*];

        /// `[(name, path)]` of every tool, the paths being what cargo built
        /// for the integration test that expands this (`CARGO_BIN_EXE_<name>`,
        /// which cargo sets only there, not for this library). A tool missing
        /// from tests/Cargo.toml's `[[bin]]`s fails that build.
        #[macro_export]
        macro_rules! built_tools {
            () => {
                [$(($name, env!(concat!("CARGO_BIN_EXE_", $name)))),*]
            };
        }
    };
}

tools! {
    ENABLE = "mb-2fa-enable",
    VERIFY = "mb-2fa-verify",
    DISABLE = "mb-2fa-disable",
    BACKUP_CODES = "mb-2fa-backup-codes",
    LIST = "mb-2fa-list",
    UNLOCK = "mb-2fa-unlock",
    AUDIT = "mb-2fa-audit",
    POLICY = "mb-2fa-policy",
    STORE = "mb-2fa-store",
}

/// The tools that act on one account named by a top-level `--email` (audit's
/// `--email` is an optional filter; policy's is a subcommand's).
pub const EMAIL_TOOLS: [&str; 5] = [ENABLE, VERIFY, DISABLE, BACKUP_CODES, UNLOCK];

/// TOTP period of the product's defaults (seconds).
pub const PERIOD: u64 = 30;

/// Longest a single tool run may take before the test gives up on it.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------
// Locating and running the binaries
// ---------------------------------------------------------------------------

/// Path of one of the tool binaries: the one cargo built for this test run.
///
/// The binaries are `[[bin]]`s of the package mb2fa-tests, so cargo builds
/// them before it builds and runs its integration tests, and passes each
/// one's path in `CARGO_BIN_EXE_<name>`: at build time to the test crate
/// (where [`built_tools!`] reads it) and, since cargo 1.94, in the running
/// test's environment, where this reads it. With an older cargo it falls
/// back to where cargo puts them, `target/<profile>/`, beside the test
/// executable's `deps/`. The black-box suite checks that this is what cargo
/// built (`smoke::the_tools_run_are_the_ones_cargo_built`). `MB2FA_BIN_DIR`
/// overrides both, to test installed binaries (`MB2FA_BIN_DIR=/usr/sbin`).
pub fn bin(name: &str) -> PathBuf {
    let path = if let Some(dir) = std::env::var_os("MB2FA_BIN_DIR") {
        PathBuf::from(dir).join(name)
    } else if let Some(built) = std::env::var_os(format!("CARGO_BIN_EXE_{name}")) {
        PathBuf::from(built)
    } else {
        let exe = std::env::current_exe().expect("path of the test executable");
        exe.parent()
            .and_then(Path::parent)
            .map(|dir| dir.join(name))
            .expect("the test executable lives in target/<profile>/deps")
    };
    if !path.is_file() {
        panic!(
            "{} is missing: the tests run the tool binaries that cargo builds with them; \
             run them with `cargo test` (or set MB2FA_BIN_DIR to where the tools are installed)",
            path.display()
        );
    }
    path
}

/// The outcome of one tool run.
pub struct Run {
    /// What was run, for failure messages.
    pub cmdline: String,
    /// The exit code (a death by signal fails the test).
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub output: Output,
}

impl Run {
    fn new(cmdline: String, output: Output) -> Run {
        let code = output
            .status
            .code()
            .unwrap_or_else(|| panic!("{cmdline}: killed by a signal ({:?})", output.status));
        Run {
            cmdline,
            code,
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            output,
        }
    }

    /// stdout as the one JSON document it must be.
    pub fn json(&self) -> Value {
        json(&self.output)
    }

    /// Assert the exit code.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "unexpected exit code\n{self}");
        self
    }

    /// Assert success with `--json`: exit 0, `"ok": true`; the document.
    #[track_caller]
    pub fn ok_json(&self) -> Value {
        self.expect_code(0);
        let doc = self.json();
        assert_eq!(doc["ok"], Value::Bool(true), "{self}");
        doc
    }

    /// Assert a `--json` failure: the exit code, `"ok": false`, the error
    /// kind and a non-empty message; the message.
    #[track_caller]
    pub fn fail_json(&self, code: i32, kind: &str) -> String {
        self.expect_code(code);
        let doc = self.json();
        assert_eq!(doc["ok"], Value::Bool(false), "{self}");
        assert_eq!(doc["error"]["kind"], Value::from(kind), "{self}");
        let message = doc["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("error.message is not a string\n{self}"));
        assert!(!message.trim().is_empty(), "empty error.message\n{self}");
        assert!(!message.contains('\n'), "multi-line error.message\n{self}");
        message.to_string()
    }

    /// Assert a human-mode failure: the exit code, nothing on stdout, and
    /// exactly one line on stderr, `TOOL: message`, that contains `fragment`
    /// (case-insensitive). Returns the line.
    #[track_caller]
    pub fn fail_line(&self, code: i32, tool: &str, fragment: &str) -> String {
        self.expect_code(code);
        assert!(self.stdout.is_empty(), "stdout must be empty\n{self}");
        assert_eq!(
            self.stderr.lines().count(),
            1,
            "stderr must hold exactly one line\n{self}"
        );
        assert!(self.stderr.ends_with('\n'), "{self}");
        let line = self.stderr.trim_end_matches('\n').to_string();
        assert!(
            line.starts_with(&format!("{tool}: ")),
            "stderr must start with `{tool}: `\n{self}"
        );
        assert!(
            line.to_lowercase().contains(&fragment.to_lowercase()),
            "stderr must mention {fragment:?}\n{self}"
        );
        line
    }

    /// Assert `needle` appears in neither stdout nor stderr.
    #[track_caller]
    pub fn assert_not_echoed(&self, needle: &str) {
        assert!(
            !self.stdout.contains(needle) && !self.stderr.contains(needle),
            "{needle:?} must not be echoed\n{self}"
        );
    }
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "  command: {}\n  exit: {}\n  stdout: {:?}\n  stderr: {:?}",
            self.cmdline, self.code, self.stdout, self.stderr
        )
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// stdout of a `--json` run, which must be exactly one JSON object with a
/// boolean `ok` (and nothing else: no art, no second document).
pub fn json(out: &Output) -> Value {
    let text = std::str::from_utf8(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not UTF-8 ({e}): {:?}", out.stdout));
    let doc: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("stdout is not exactly one JSON document ({e}):\n{text}"));
    assert!(
        doc.is_object(),
        "the JSON document is not an object: {text}"
    );
    assert!(doc["ok"].is_boolean(), "`ok` is not a boolean: {text}");
    doc
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&format!("{:?}", a.to_string_lossy()));
    }
    s
}

/// Spawn `cmd` with stdout and stderr captured.
pub fn spawn(cmd: &mut Command, stdin: bool) -> Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin { Stdio::piped() } else { Stdio::null() });
    cmd.spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", describe(cmd)))
}

/// Wait for a child (its stdin already closed or written), collecting its
/// output; a child that takes longer than [`RUN_TIMEOUT`] is killed and the
/// test fails.
pub fn finish(mut child: Child, cmdline: String) -> Run {
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status: ExitStatus = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmdline}: still running after {RUN_TIMEOUT:?}; killed");
        }
        thread::sleep(Duration::from_millis(2));
    };
    let output = Output {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
    };
    Run::new(cmdline, output)
}

/// Run a prepared command, optionally feeding `input` on stdin.
pub fn run_command(mut cmd: Command, input: Option<&[u8]>) -> Run {
    let cmdline = describe(&cmd);
    let mut child = spawn(&mut cmd, input.is_some());
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // The tool may exit before reading (bad input): a broken pipe is fine.
        let _ = stdin.write_all(input);
    }
    finish(child, cmdline)
}

/// Spawn every command before waiting for any, so they run at once; then
/// collect them all. With `input`, each child gets a stdin pipe that stays
/// open until all are spawned, and then receives `input`: a start barrier for
/// tools that read a value from stdin (`--code -`).
pub fn run_all(cmds: Vec<Command>, input: Option<&[u8]>) -> Vec<Run> {
    let mut children = Vec::new();
    for mut cmd in cmds {
        let cmdline = describe(&cmd);
        children.push((spawn(&mut cmd, input.is_some()), cmdline));
    }
    if let Some(input) = input {
        for (child, _) in &mut children {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(input);
            }
        }
    }
    children
        .into_iter()
        .map(|(child, cmdline)| finish(child, cmdline))
        .collect()
}

/// A private temporary directory with a database path in it. Every tool run
/// through it gets `--db <dir>/2fa.db` and a clean environment (`MB2FA_DB`
/// removed, `MB2FA_KEY_FILE` in the directory, syslog off), so tests never
/// share state or touch /var/lib/mailborder, /etc/mailborder or syslog.
pub struct Env {
    pub dir: TempDir,
    pub db: PathBuf,
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
        Env { dir, db, key }
    }

    /// A path inside the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `tool` with a clean environment and no `--db`.
    pub fn bare_command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(bin(tool));
        cmd.env_remove("MB2FA_DB")
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
        cmd.arg("--db").arg(&self.db).args(args);
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

// ---------------------------------------------------------------------------
// Independent RFC 6238 reference
// ---------------------------------------------------------------------------

/// RFC 4226 HOTP with HMAC-SHA1 and dynamic truncation, `digits` long.
pub fn hotp(key: &[u8], counter: u64, digits: u32) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&counter.to_be_bytes());
    let h = mac.finalize().into_bytes();
    // RFC 4226 §5.4: the low nibble of the last byte picks 4 bytes.
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let binary = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    let modulus = 10u64.pow(digits);
    let value = u64::from(binary) % modulus;
    format!("{value:0width$}", width = digits as usize)
}

/// RFC 6238 TOTP (SHA1, 30 s, T0 = 0) at `unix` seconds.
pub fn totp_at(key: &[u8], unix: u64, digits: u32) -> String {
    hotp(key, unix / PERIOD, digits)
}

/// Decode an RFC 4648 base32 secret (padding and case tolerated).
pub fn decode_secret(secret_base32: &str) -> Vec<u8> {
    let clean = secret_base32
        .trim_end_matches('=')
        .to_ascii_uppercase()
        .replace(' ', "");
    base32::decode(base32::Alphabet::Rfc4648 { padding: false }, &clean)
        .unwrap_or_else(|| panic!("not base32: {secret_base32:?}"))
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn shifted(offset_steps: i64) -> u64 {
    let delta = offset_steps * PERIOD as i64;
    now_unix().checked_add_signed(delta).expect("time in range")
}

/// The 6-digit code of the real current time shifted by `offset_steps` steps
/// (the binaries have no clock override; compute it just before running).
pub fn totp_now(secret_base32: &str, offset_steps: i64) -> String {
    totp_at(&decode_secret(secret_base32), shifted(offset_steps), 6)
}

/// A 6-digit code that matches none of the steps `-3..=3` around now: surely
/// wrong for the account, yet well-formed.
pub fn wrong_code(secret_base32: &str) -> String {
    let key = decode_secret(secret_base32);
    let now = now_unix();
    let valid: Vec<String> = (-3i64..=3)
        .map(|o| {
            let t = now.checked_add_signed(o * PERIOD as i64).expect("time");
            totp_at(&key, t, 6)
        })
        .collect();
    (0..1000u32)
        .map(|i| format!("{:06}", (i * 7919 + 271_828) % 1_000_000))
        .find(|c| !valid.contains(c))
        .expect("a wrong code exists")
}

// ---------------------------------------------------------------------------
// oathtool, the reference implementation users already have
// ---------------------------------------------------------------------------

static OATHTOOL_NOTE: Once = Once::new();

/// The code `oathtool --totp -b SECRET` prints at now + `offset_steps` steps.
///
/// Policy when oathtool is not installed: with `CI` set in the environment
/// the test fails (CI must install the `oathtool` package, so the check stays
/// independent of this crate); without `CI` a note goes to stderr and the
/// built-in RFC 6238 reference stands in, so `cargo test --workspace` works
/// on a fresh machine.
pub fn oathtool(secret_base32: &str, offset_steps: i64) -> String {
    oathtool_at(secret_base32, shifted(offset_steps), 6)
}

/// `oathtool --totp -b -d DIGITS --now @UNIX SECRET` (same fallback policy).
pub fn oathtool_at(secret_base32: &str, unix: u64, digits: u32) -> String {
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "-d", &digits.to_string()])
        .arg("--now")
        .arg(format!("@{unix}"))
        .arg(secret_base32)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(out) => {
            assert!(
                out.status.success(),
                "oathtool failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let code = String::from_utf8_lossy(&out.stdout).trim().to_string();
            assert!(
                code.len() == digits as usize && code.bytes().all(|b| b.is_ascii_digit()),
                "oathtool printed {code:?}"
            );
            code
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "oathtool is not installed, and CI is set: install the oathtool package \
                     (apt-get install oathtool) so codes are checked against an independent tool"
                );
            }
            OATHTOOL_NOTE.call_once(|| {
                eprintln!(
                    "note: oathtool not found; using the built-in RFC 6238 reference instead \
                     (install the oathtool package for a fully independent check)"
                );
            });
            totp_at(&decode_secret(secret_base32), unix, digits)
        }
        Err(e) => panic!("cannot run oathtool: {e}"),
    }
}

// ---------------------------------------------------------------------------
// A terminal, through script(1)
// ---------------------------------------------------------------------------

static SCRIPT_NOTE: Once = Once::new();

fn shell_quote(s: &OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"))
}

/// Run `cmd` with a pseudo-terminal as stdin, stdout and stderr, through
/// util-linux `script -qec CMD /dev/null`, feeding `input` to the terminal.
/// Output comes back with `\r\n` turned into `\n` (stdout and stderr are
/// merged, as on a real terminal).
///
/// `script` is in bsdutils, which every Debian and Ubuntu system has. Same
/// policy as oathtool: missing with `CI` set fails the test; missing
/// otherwise prints a note and returns `None` (the caller skips).
pub fn run_in_terminal(cmd: &Command, input: &[u8]) -> Option<Run> {
    let mut line = shell_quote(cmd.get_program());
    for a in cmd.get_args() {
        line.push(' ');
        line.push_str(&shell_quote(a));
    }
    let mut script = Command::new("script");
    script.args(["-q", "-e", "-c"]).arg(&line).arg("/dev/null");
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => script.env(k, v),
            None => script.env_remove(k),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        script.current_dir(dir);
    }
    let available = Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !available {
        if std::env::var_os("CI").is_some() {
            panic!("script(1) is not installed, and CI is set: install util-linux / bsdutils");
        }
        SCRIPT_NOTE.call_once(|| {
            eprintln!("note: script(1) not found; skipping the terminal tests");
        });
        return None;
    }
    let mut run = run_command(script, Some(input));
    run.stdout = run.stdout.replace("\r\n", "\n");
    run.cmdline = format!("(on a terminal) {line}");
    Some(run)
}

// ---------------------------------------------------------------------------
// Database snapshots
// ---------------------------------------------------------------------------

/// The bytes of a database file and of its write-ahead log, if any.
#[derive(Clone, PartialEq, Eq)]
pub struct DbSnapshot {
    pub db: Option<Vec<u8>>,
    pub wal: Option<Vec<u8>>,
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl fmt::Debug for DbSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |b: &Option<Vec<u8>>| match b {
            None => "absent".to_string(),
            Some(b) => format!("{} bytes, fnv {:016x}", b.len(), fnv(b)),
        };
        write!(f, "db: {}, wal: {}", show(&self.db), show(&self.wal))
    }
}

fn wal_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_os_string();
    p.push("-wal");
    PathBuf::from(p)
}

/// Snapshot `path` and `path-wal` to prove later that a command left the
/// database byte-for-byte unchanged. (The shared-memory index `-shm` is not
/// content and is not compared.)
pub fn db_bytes(path: &Path) -> DbSnapshot {
    let read = |p: &Path| std::fs::read(p).ok();
    DbSnapshot {
        db: read(path),
        wal: read(&wal_path(path)),
    }
}

// ---------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------

/// Parse an RFC 3339 UTC timestamp (`YYYY-MM-DDTHH:MM:SS[.frac]Z`) into Unix
/// seconds; `None` if it is not one.
pub fn parse_rfc3339_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || !s.ends_with('Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = &s[19..s.len() - 1];
    if !(rest.is_empty()
        || (rest.len() > 1
            && rest.starts_with('.')
            && rest[1..].bytes().all(|c| c.is_ascii_digit())))
    {
        return None;
    }
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + mi * 60 + sec)
}

/// Is `s` a backup code as shown to people: `XXXX-XXXX-XXXX` in Crockford
/// base32 (upper case, no I, L, O, U)?
pub fn is_backup_code(s: &str) -> bool {
    const CROCKFORD: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 3
        && groups
            .iter()
            .all(|g| g.len() == 4 && g.chars().all(|c| CROCKFORD.contains(c)))
}

/// Is `s` an RFC 4648 base32 secret without padding, of 20 bytes (32 chars)?
pub fn is_secret(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        && decode_secret(s).len() == 20
}

/// Percent-decode (RFC 3986) a URI component.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).expect("percent-decoded UTF-8")
}

/// An otpauth URI taken apart: the decoded label and the decoded query.
#[derive(Debug)]
pub struct OtpauthUri {
    pub kind: String,
    pub label: String,
    pub params: Vec<(String, String)>,
}

impl OtpauthUri {
    pub fn parse(uri: &str) -> OtpauthUri {
        let rest = uri
            .strip_prefix("otpauth://")
            .unwrap_or_else(|| panic!("not an otpauth URI: {uri}"));
        let (path, query) = rest
            .split_once('?')
            .unwrap_or_else(|| panic!("no query in {uri}"));
        let (kind, label) = path
            .split_once('/')
            .unwrap_or_else(|| panic!("no label in {uri}"));
        let params = query
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        OtpauthUri {
            kind: kind.to_string(),
            label: percent_decode(label),
            params,
        }
    }

    /// The one value of query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        let mut found = self.params.iter().filter(|(k, _)| k == key);
        let first = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "parameter {key} given twice");
        first
    }
}

/// The backup codes (`XXXX-XXXX-XXXX` tokens) in human output, in order.
pub fn backup_codes_in(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|t| is_backup_code(t))
        .map(str::to_string)
        .collect()
}

/// The otpauth URI in human output: the one token starting `otpauth://`.
pub fn uri_in(text: &str) -> String {
    let found: Vec<&str> = text
        .split_whitespace()
        .filter(|t| t.starts_with("otpauth://"))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one otpauth URI expected in:\n{text}"
    );
    found[0].to_string()
}

// ---------------------------------------------------------------------------
// QR codes: terminal art and SVG back to modules, decoded with rqrr
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrStyle {
    /// Half blocks: each character is two modules, top and bottom.
    Unicode,
    /// `##` for a dark module, two spaces for a light one; a line per row.
    Ascii,
}

/// Remove ANSI escape sequences (`ESC [ ... final`) from `s`.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte @..~.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

fn art_char(c: char, style: QrStyle) -> bool {
    match style {
        QrStyle::Unicode => matches!(c, '█' | '▀' | '▄' | ' '),
        QrStyle::Ascii => matches!(c, '#' | ' '),
    }
}

fn has_ink(line: &str, style: QrStyle) -> bool {
    line.chars().any(|c| c != ' ') && line.chars().all(|c| art_char(c, style))
}

/// The QR art in human output: the first run of lines made only of art
/// characters that holds ink, widened by up to `context` whitespace-only
/// lines on each side (the quiet zone above and below, where the renderer
/// prints it). ANSI sequences are stripped. Panics when there is no art.
pub fn art_lines(text: &str, style: QrStyle, context: usize) -> Vec<String> {
    let lines: Vec<String> = text.lines().map(strip_ansi).collect();
    let start = lines
        .iter()
        .position(|l| has_ink(l, style))
        .unwrap_or_else(|| panic!("no {style:?} QR art in:\n{text}"));
    let mut end = start;
    while end + 1 < lines.len() && lines[end + 1].chars().all(|c| art_char(c, style)) {
        end += 1;
    }
    while !has_ink(&lines[end], style) {
        end -= 1;
    }
    let blank = |l: &String| l.chars().all(|c| c == ' ');
    let mut first = start;
    while first > 0 && start - first < context && blank(&lines[first - 1]) {
        first -= 1;
    }
    let mut last = end;
    while last + 1 < lines.len() && last - end < context && blank(&lines[last + 1]) {
        last += 1;
    }
    lines[first..=last].to_vec()
}

/// Turn art lines into modules (`true` = ink). In ASCII mode ink must come
/// in `##` pairs aligned on the symbol's left edge.
pub fn art_to_modules(lines: &[String], style: QrStyle) -> Vec<Vec<bool>> {
    match style {
        QrStyle::Unicode => lines
            .iter()
            .flat_map(|l| {
                let top = l.chars().map(|c| matches!(c, '█' | '▀')).collect();
                let bottom = l.chars().map(|c| matches!(c, '█' | '▄')).collect();
                [top, bottom]
            })
            .collect(),
        QrStyle::Ascii => {
            let chars: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
            // The left edge of the art (ink in the left finder pattern, or the
            // quiet zone when inverted) fixes where module pairs begin.
            let edge = chars
                .iter()
                .filter_map(|l| l.iter().position(|c| *c == '#'))
                .min()
                .unwrap_or(0);
            let lead = edge % 2;
            chars
                .iter()
                .map(|l| {
                    let body = if l.len() >= lead { &l[lead..] } else { &[][..] };
                    body.chunks(2)
                        .map(|pair| {
                            let dark = pair.iter().filter(|c| **c == '#').count();
                            assert!(
                                dark == 0 || dark == pair.len() && pair.len() == 2,
                                "ASCII art must draw a module as `##` or two spaces: {:?}",
                                l.iter().collect::<String>()
                            );
                            dark == 2
                        })
                        .collect()
                })
                .collect()
        }
    }
}

/// The negative of a module grid.
pub fn invert(grid: &[Vec<bool>]) -> Vec<Vec<bool>> {
    grid.iter()
        .map(|r| r.iter().map(|d| !d).collect())
        .collect()
}

/// Light modules around the dark ones: (top, left, bottom) counts within the
/// grid. Rows may be ragged (trailing light modules trimmed).
pub fn quiet_zone(grid: &[Vec<bool>]) -> (usize, usize, usize) {
    let dark_rows: Vec<usize> = (0..grid.len())
        .filter(|y| grid[*y].iter().any(|d| *d))
        .collect();
    let (Some(first), Some(last)) = (dark_rows.first(), dark_rows.last()) else {
        return (0, 0, 0);
    };
    let left = grid
        .iter()
        .filter_map(|r| r.iter().position(|d| *d))
        .min()
        .unwrap_or(0);
    (*first, left, grid.len() - 1 - last)
}

/// Decode a module grid (`true` = dark) with rqrr: every QR code found.
/// The grid is drawn at 6 px per module on a light margin of 4 modules.
pub fn decode_modules(grid: &[Vec<bool>]) -> Vec<Result<String, String>> {
    const PX: usize = 6;
    const MARGIN: usize = 4;
    let h = grid.len();
    let w = grid.iter().map(Vec::len).max().unwrap_or(0);
    let (iw, ih) = ((w + 2 * MARGIN) * PX, (h + 2 * MARGIN) * PX);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(iw, ih, |x, y| {
        let (mx, my) = (x / PX, y / PX);
        let dark = mx >= MARGIN
            && my >= MARGIN
            && grid
                .get(my - MARGIN)
                .and_then(|r| r.get(mx - MARGIN))
                .copied()
                .unwrap_or(false);
        if dark { 0 } else { 255 }
    });
    img.detect_grids()
        .iter()
        .map(|g| g.decode().map(|(_, s)| s).map_err(|e| format!("{e:?}")))
        .collect()
}

/// Decode a grid that must hold exactly one readable QR code.
#[track_caller]
pub fn decode_one(grid: &[Vec<bool>]) -> String {
    let found = decode_modules(grid);
    assert_eq!(found.len(), 1, "exactly one QR code expected: {found:?}");
    found
        .into_iter()
        .next()
        .expect("one")
        .unwrap_or_else(|e| panic!("the QR code does not decode: {e}"))
}

/// Decode the QR art in a tool's human output.
#[track_caller]
pub fn decode_art(text: &str, style: QrStyle) -> String {
    decode_one(&art_to_modules(&art_lines(text, style, 0), style))
}

fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = tag;
    loop {
        let at = rest.find(name)?;
        let before = rest[..at].chars().last();
        let after = &rest[at + name.len()..];
        if before.is_some_and(char::is_whitespace) && after.starts_with("=\"") {
            let value = &after[2..];
            return value.find('"').map(|end| &value[..end]);
        }
        rest = &rest[at + name.len()..];
    }
}

fn light_fill(fill: Option<&str>) -> bool {
    matches!(
        fill.map(str::to_ascii_lowercase).as_deref(),
        Some("#fff" | "#ffffff" | "white" | "none" | "transparent")
    )
}

fn path_boxes(d: &str) -> Vec<(f64, f64, f64, f64)> {
    // Axis-aligned subpaths only (M/m, H/h, V/v, L/l, Z/z): each subpath is
    // taken as the rectangle it bounds, which is how QR SVGs draw modules.
    let mut tokens = Vec::new();
    let mut cur = String::new();
    for c in d.chars() {
        if c.is_ascii_alphabetic() {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
            tokens.push(c.to_string());
        } else if c == ',' || c.is_whitespace() || (c == '-' && !cur.is_empty()) {
            if !cur.is_empty() {
                tokens.push(std::mem::take(&mut cur));
            }
            if c == '-' {
                cur.push(c);
            }
        } else {
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    let mut boxes = Vec::new();
    let (mut x, mut y) = (0.0f64, 0.0f64);
    let mut start = (0.0f64, 0.0f64);
    let mut points: Vec<(f64, f64)> = Vec::new();
    let mut cmd = 'M';
    let mut i = 0;
    let flush = |points: &mut Vec<(f64, f64)>, boxes: &mut Vec<(f64, f64, f64, f64)>| {
        if points.len() > 1 {
            let x0 = points.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
            let x1 = points.iter().map(|p| p.0).fold(f64::NEG_INFINITY, f64::max);
            let y0 = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
            let y1 = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
            boxes.push((x0, y0, x1, y1));
        }
        points.clear();
    };
    let num = |t: &str| -> f64 {
        t.parse()
            .unwrap_or_else(|_| panic!("unsupported SVG path token {t:?}"))
    };
    while i < tokens.len() {
        let t = &tokens[i];
        if t.len() == 1 && t.chars().all(|c| c.is_ascii_alphabetic()) {
            cmd = t.chars().next().expect("command");
            i += 1;
            if cmd == 'Z' || cmd == 'z' {
                flush(&mut points, &mut boxes);
                (x, y) = start;
            }
            continue;
        }
        match cmd {
            'M' | 'm' | 'L' | 'l' => {
                let (a, b) = (num(&tokens[i]), num(&tokens[i + 1]));
                i += 2;
                if cmd.is_ascii_lowercase() {
                    x += a;
                    y += b;
                } else {
                    (x, y) = (a, b);
                }
                if cmd == 'M' || cmd == 'm' {
                    flush(&mut points, &mut boxes);
                    start = (x, y);
                    cmd = if cmd == 'M' { 'L' } else { 'l' };
                }
            }
            'H' => (x, i) = (num(t), i + 1),
            'h' => (x, i) = (x + num(t), i + 1),
            'V' => (y, i) = (num(t), i + 1),
            'v' => (y, i) = (y + num(t), i + 1),
            other => panic!("unsupported SVG path command {other:?}"),
        }
        points.push((x, y));
    }
    flush(&mut points, &mut boxes);
    boxes
}

/// Read the dark rectangles (`<rect>` and axis-aligned `<path>`s with a dark
/// fill) of a QR SVG back into modules.
pub fn svg_to_modules(svg: &str) -> Vec<Vec<bool>> {
    let mut boxes = Vec::new();
    for piece in svg.split('<').skip(1) {
        let tag = piece.split('>').next().unwrap_or("");
        let fill = attr(tag, "fill");
        if tag.starts_with("rect") && !light_fill(fill) {
            let n = |k: &str| attr(tag, k).map_or(0.0, |v| v.parse::<f64>().unwrap_or(0.0));
            let (x, y) = (n("x"), n("y"));
            boxes.push((x, y, x + n("width"), y + n("height")));
        } else if tag.starts_with("path")
            && !light_fill(fill)
            && let Some(d) = attr(tag, "d")
        {
            boxes.extend(path_boxes(d));
        }
    }
    assert!(!boxes.is_empty(), "no dark shapes in the SVG:\n{svg}");
    let module = boxes
        .iter()
        .flat_map(|b| [b.2 - b.0, b.3 - b.1])
        .filter(|s| *s > 0.0)
        .fold(f64::INFINITY, f64::min);
    let cells = |v: f64| (v / module).round() as usize;
    let w = boxes.iter().map(|b| cells(b.2)).max().unwrap_or(0);
    let h = boxes.iter().map(|b| cells(b.3)).max().unwrap_or(0);
    let mut grid = vec![vec![false; w]; h];
    for (x0, y0, x1, y1) in boxes {
        for row in grid.iter_mut().take(cells(y1)).skip(cells(y0)) {
            for cell in row.iter_mut().take(cells(x1)).skip(cells(x0)) {
                *cell = true;
            }
        }
    }
    grid
}

// ---------------------------------------------------------------------------
// Unix file modes
// ---------------------------------------------------------------------------

/// The permission bits of a file or directory.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Build an argument that is not valid UTF-8: `prefix`, a 0xFF byte, `suffix`.
pub fn non_utf8(prefix: &str, suffix: &str) -> OsString {
    use std::os::unix::ffi::OsStringExt;
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.push(0xff);
    bytes.extend_from_slice(suffix.as_bytes());
    OsString::from_vec(bytes)
}

// ---------------------------------------------------------------------------
// Looking inside: the database, the key file, the audit trail
// ---------------------------------------------------------------------------

/// `path` with `suffix` appended to its file name (`2fa.db` → `2fa.db-wal`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_os_string();
    p.push(suffix);
    PathBuf::from(p)
}

/// Does `haystack` contain `needle` (a non-empty byte string)?
pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// `n` distinct well-formed 6-digit codes that match none of the steps
/// `-3..=3` around now for `secret_base32`.
pub fn wrong_codes(secret_base32: &str, n: usize) -> Vec<String> {
    let key = decode_secret(secret_base32);
    let now = now_unix();
    let valid: Vec<String> = (-3i64..=3)
        .map(|o| {
            let t = now.checked_add_signed(o * PERIOD as i64).expect("time");
            totp_at(&key, t, 6)
        })
        .collect();
    let codes: Vec<String> = (0..10_000u32)
        .map(|i| format!("{:06}", (i * 7919 + 314_159) % 1_000_000))
        .filter(|c| !valid.contains(c))
        .take(n)
        .collect();
    assert_eq!(codes.len(), n, "not enough wrong codes");
    codes
}

/// Write a key file of `bytes` with permission bits `mode` (replacing any
/// file there), creating its directory (0700) if needed.
pub fn write_key_file(path: &Path, bytes: &[u8], mode: u32) {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    }
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Change the permission bits of an existing file.
pub fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// The directory of the fixtures (`tests/fixtures`).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/kit is in tests/")
        .join("fixtures")
}

impl Env {
    /// A direct SQLite connection to the database, to look at (or tamper
    /// with) what the tools stored, bypassing them.
    pub fn connect(&self) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_with_flags(
            &self.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE,
        )
        .unwrap_or_else(|e| panic!("open {}: {e}", self.db.display()));
        conn.busy_timeout(Duration::from_secs(10))
            .expect("busy timeout");
        // As the tools do: closing must not checkpoint, or merely looking
        // would change the files that tests compare byte for byte.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .expect("no checkpoint on close");
        conn
    }

    /// `PRAGMA user_version` of the database.
    pub fn user_version(&self) -> i64 {
        self.connect()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("PRAGMA user_version")
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
