//! A terminal, through script(1).

use std::ffi::OsStr;
use std::process::{Command, Stdio};
use std::sync::Once;

use crate::runner::{Run, run_command};

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
