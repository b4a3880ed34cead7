//! Running `mb-2fa-verify --login`: a fixed argv, a clean environment, the
//! code on stdin, a time limit on every answer, and the tool killed if it
//! overruns. The tool prints one JSON line (the decision) and, when that is
//! `code`, reads the code and prints a second (the verification).

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The tool the module runs.
pub const TOOL: &str = "mb-2fa-verify";
/// The environment the tool gets: nothing of sshd's or the user's.
const PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// Longest line read from the tool.
const MAX_LINE: u64 = 64 * 1024;

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The tool cannot be trusted or started.
    Tool(String),
    /// It did not answer in time (it was killed).
    Timeout,
    /// It answered something that is not the protocol.
    Protocol(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Tool(why) => write!(f, "{why}"),
            Failure::Timeout => write!(f, "{TOOL} did not answer in time and was killed"),
            Failure::Protocol(why) => write!(f, "{TOOL} answered out of protocol: {why}"),
        }
    }
}

/// The tool in `bindir`, if root owns it and the directory and only root can
/// change them: a tool someone else could replace would decide logins.
pub fn trusted_tool(bindir: &Path) -> Result<PathBuf, Failure> {
    let dir = fs::metadata(bindir)
        .map_err(|e| Failure::Tool(format!("bindir {}: {e}", bindir.display())))?;
    if !dir.is_dir() || dir.uid() != 0 || dir.mode() & 0o022 != 0 {
        return Err(Failure::Tool(format!(
            "bindir {} must be a directory owned by root and writable only by root",
            bindir.display()
        )));
    }
    let tool = bindir.join(TOOL);
    let meta = fs::symlink_metadata(&tool)
        .map_err(|e| Failure::Tool(format!("{}: {e}", tool.display())))?;
    if !meta.file_type().is_file()
        || meta.uid() != 0
        || meta.mode() & 0o022 != 0
        || meta.mode() & 0o100 == 0
    {
        return Err(Failure::Tool(format!(
            "{} must be an executable regular file owned by root and writable only by root",
            tool.display()
        )));
    }
    Ok(tool)
}

/// A running `mb-2fa-verify --login`.
pub struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Result<String, String>>,
    timeout: Duration,
}

/// What the tool said last, and how it ended.
#[derive(Debug)]
pub struct Answer {
    pub doc: Value,
    pub exit: Option<i32>,
}

impl Running {
    pub fn start(tool: &Path, args: &[OsString], timeout: Duration) -> Result<Running, Failure> {
        let mut child = Command::new(tool)
            .args(args)
            .env_clear()
            .env("PATH", PATH)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Failure::Tool(format!("cannot run {}: {e}", tool.display())))?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| Failure::Tool("no pipe from the tool".to_string()))?;
        let (tx, lines) = channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut buf) {
                    Ok(0) => return,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).into_owned();
                        if tx.send(Ok(line)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
            }
        });
        Ok(Running {
            child,
            stdin,
            lines,
            timeout,
        })
    }

    /// The next JSON line; `Ok(None)` when the tool closed its output.
    pub fn next_doc(&mut self) -> Result<Option<Value>, Failure> {
        match self.lines.recv_timeout(self.timeout) {
            Ok(Ok(line)) => serde_json::from_str(line.trim_end())
                .map(Some)
                .map_err(|_| Failure::Protocol("a line that is not JSON".to_string())),
            Ok(Err(e)) => Err(Failure::Protocol(format!("cannot read its output: {e}"))),
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                Err(Failure::Timeout)
            }
        }
    }

    /// Give the tool the code (or nothing: close its stdin, so it stops).
    pub fn send(&mut self, code: Option<&str>) {
        if let Some(mut stdin) = self.stdin.take()
            && let Some(code) = code
        {
            let mut line = zeroize::Zeroizing::new(String::with_capacity(code.len() + 1));
            line.push_str(code);
            line.push('\n');
            let _ = stdin.write_all(line.as_bytes());
        }
    }

    /// Wait for the tool to end (within the time limit), its last document
    /// being `last`.
    pub fn finish(mut self, last: Value) -> Result<Answer, Failure> {
        self.stdin = None;
        let status = self.wait()?;
        Ok(Answer {
            doc: last,
            exit: status.code(),
        })
    }

    /// The tool's end: first the end of its output (the reader thread
    /// hangs up when the tool's stdout closes, which it does as it exits),
    /// waited for without polling; then its exit status, which follows at
    /// once. Output after the last document is a protocol error (fail
    /// closed). Polling the child every few milliseconds instead cost a
    /// login about 2 ms (docs/BENCHMARKS.md, scripts/bench-pam).
    fn wait(&mut self) -> Result<ExitStatus, Failure> {
        let deadline = Instant::now() + self.timeout;
        match self.lines.recv_timeout(self.timeout) {
            Ok(_) => {
                self.kill();
                return Err(Failure::Protocol(
                    "more output after its last answer".to_string(),
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {}
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                return Err(Failure::Timeout);
            }
        }
        // Output closed: the exit follows within a millisecond or so (the
        // process is torn down), so look every 100 µs for the first 50 ms
        // (a longer back-off made a login wait up to 1.3 ms more, half the
        // time: scripts/bench-pam); a tool that closed stdout and lingers is
        // then looked at every 2 ms until the deadline.
        let closed = Instant::now();
        let mut pause = Duration::from_micros(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    thread::sleep(pause);
                    let cap = if closed.elapsed() < Duration::from_millis(50) {
                        Duration::from_micros(100)
                    } else {
                        Duration::from_millis(2)
                    };
                    pause = (pause * 2).min(cap);
                }
                Ok(None) => {
                    self.kill();
                    return Err(Failure::Timeout);
                }
                Err(e) => return Err(Failure::Tool(format!("cannot wait for {TOOL}: {e}"))),
            }
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Never leave the tool behind (an abandoned login, an early return).
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
    }
}
