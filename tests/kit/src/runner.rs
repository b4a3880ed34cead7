//! Finding the tool binaries, running them (alone or many at once, with a
//! timeout) and what a run gave: exit code, output, the JSON document.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest a single tool run may take before the test gives up on it.
pub const RUN_TIMEOUT: Duration = Duration::from_secs(120);

/// Path of one of the tool binaries: the one cargo built for this test run.
///
/// The binaries are `[[bin]]`s of the package mb2fa-tests, so cargo builds
/// them before it builds and runs its integration tests, and passes each
/// one's path in `CARGO_BIN_EXE_<name>`: at build time to the test crate
/// (where [`built_tools!`](crate::built_tools) reads it) and, since cargo
/// 1.94, in the running test's environment, where this reads it. With an
/// older cargo it falls back to where cargo puts them, `target/<profile>/`,
/// beside the test executable's `deps/`. The black-box suite checks that
/// this is what cargo built (`smoke::the_tools_run_are_the_ones_cargo_built`).
/// `MB2FA_BIN_DIR` overrides both, to test installed binaries
/// (`MB2FA_BIN_DIR=/usr/sbin`).
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

/// Spawn `cmd` with stdin, stdout and stderr on /dev/null: a child a test
/// may kill, whose output nobody reads.
pub fn spawn_quiet(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
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
