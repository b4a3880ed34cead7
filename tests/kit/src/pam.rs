//! Real PAM for the tests: the freshly built `pam_mb2fa.so`, a service file
//! of the test's own, and pamtester (or sshd) run in a private mount
//! namespace where a copy of `/etc/pam.d` is bind-mounted over the real one,
//! so no test ever edits the machine's PAM configuration. `/dev/log` is
//! covered the same way by a socket of the test's, which collects what the
//! module and the tools send to syslog.
//!
//! Needs root (mount namespaces, a root-owned bindir) and pamtester; when
//! they are missing the tests say so and pass, unless `MB2FA_REQUIRE_PAM=1`
//! (CI) makes that a failure.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::env::Env;
use crate::runner::{Run, bin, run_command};

/// The tools a login runs, copied into the test's bindir.
const LOGIN_TOOLS: [&str; 1] = ["mb-2fa-verify"];

/// The PAM service name of the tests' service file.
pub const SERVICE: &str = "mb2fa-test";

/// The module's prompt when `prompt=` is not given.
pub const PROMPT: &str = "Verification code: ";

/// Whether PAM tests can run here; `None` with the reason when not (and
/// then a panic if `MB2FA_REQUIRE_PAM` is set).
pub fn available() -> bool {
    let missing = if !is_root() {
        Some("not root (mount namespaces and a root-owned bindir need it)")
    } else if !Path::new("/usr/bin/pamtester").exists() {
        Some("pamtester is not installed")
    } else if !private_mounts() {
        Some("`unshare --mount` fails here (no private mount namespaces)")
    } else if !module().exists() {
        Some("pam_mb2fa.so was not built (cargo build -p pam_mb2fa)")
    } else {
        None
    };
    gate("PAM", missing)
}

/// `true` when nothing is `missing`; else the tests of `what` are skipped
/// with the reason, or, under `MB2FA_REQUIRE_PAM=1` (CI), fail.
pub(crate) fn gate(what: &str, missing: Option<&str>) -> bool {
    match missing {
        None => true,
        Some(why) if std::env::var_os("MB2FA_REQUIRE_PAM").is_some_and(|v| v == "1") => {
            panic!("MB2FA_REQUIRE_PAM=1 but {why}")
        }
        Some(why) => {
            eprintln!("{what} tests not run: {why} (CI sets MB2FA_REQUIRE_PAM=1)");
            false
        }
    }
}

/// Whether this machine lets root make a private mount namespace (a
/// container without CAP_SYS_ADMIN does not).
fn private_mounts() -> bool {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// The module cargo built beside the tools. `cargo test` builds it as a
/// dev-dependency of the tests, into `deps/` (only `cargo build` copies it
/// up beside the tools), so that is where it is looked for.
pub fn module() -> PathBuf {
    bin("mb-2fa-verify")
        .parent()
        .map(|d| d.join("deps").join("libpam_mb2fa.so"))
        .expect("the tools live in a directory")
}

/// A test's PAM setup: its store ([`Env`]), a config file naming it, a
/// root-owned bindir with the tools, and a pam.d of its own.
pub struct PamEnv {
    pub env: Env,
    pub config: PathBuf,
    pub bindir: PathBuf,
    pub pamd: PathBuf,
    syslog: Option<(UnixDatagram, PathBuf)>,
}

impl PamEnv {
    /// The setup with the service file `auth required pam_mb2fa.so ARGS`
    /// (the config and bindir options are added unless `args` names them).
    pub fn new(args: &str) -> PamEnv {
        let env = Env::new();
        // The temp dir is 0700 and root's: the tools' store lives in it.
        let config = env.path("2fa.toml");
        std::fs::write(
            &config,
            format!(
                "[store]\npath = {:?}\n\n[key]\nfile = {:?}\n",
                env.db.display().to_string(),
                env.key.display().to_string()
            ),
        )
        .expect("write the config");
        chmod(&config, 0o600);
        let bindir = env.path("bin");
        std::fs::create_dir(&bindir).expect("bindir");
        chmod(&bindir, 0o755);
        for tool in LOGIN_TOOLS {
            let to = bindir.join(tool);
            std::fs::copy(bin(tool), &to).expect("copy a tool");
            chmod(&to, 0o755);
        }
        let pamd = env.path("pam.d");
        std::fs::create_dir(&pamd).expect("pam.d");
        let syslog = Path::new("/dev/log").exists().then(|| {
            let path = env.path("syslog.sock");
            let sock = UnixDatagram::bind(&path).expect("syslog socket");
            sock.set_nonblocking(true).expect("nonblocking");
            (sock, path)
        });
        let p = PamEnv {
            env,
            config,
            bindir,
            pamd,
            syslog,
        };
        p.service(SERVICE, args);
        p
    }

    /// (Re)write service `name` with one auth line for the module.
    pub fn service(&self, name: &str, args: &str) {
        let mut line = format!("auth required {} {args}", module().display());
        if !args.contains("config=") {
            line.push_str(&format!(" config={}", self.config.display()));
        }
        if !args.contains("bindir=") {
            line.push_str(&format!(" bindir={}", self.bindir.display()));
        }
        std::fs::write(
            self.pamd.join(name),
            format!(
                "{line}\naccount required pam_permit.so\n\
                 session required pam_permit.so\npassword required pam_deny.so\n"
            ),
        )
        .expect("write the service file");
    }

    /// `command` run inside a private mount namespace that sees this
    /// setup's pam.d as /etc/pam.d (and its syslog socket as /dev/log).
    pub fn in_namespace(&self, command: &[&str]) -> Command {
        self.in_namespace_with("", command)
    }

    /// [`in_namespace`](Self::in_namespace), running the shell lines
    /// `setup` (which `exit 99` when they fail) before `command`.
    pub fn in_namespace_with(&self, setup: &str, command: &[&str]) -> Command {
        let mut script = format!(
            "mount --bind {} /etc/pam.d || exit 99\n",
            shell_quote(&self.pamd.display().to_string())
        );
        script.push_str(setup);
        if let Some((_, path)) = &self.syslog {
            script.push_str(&format!(
                "mount --bind {} /dev/log || exit 99\n",
                shell_quote(&path.display().to_string())
            ));
        }
        script.push_str("exec");
        for word in command {
            script.push(' ');
            script.push_str(&shell_quote(word));
        }
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .current_dir(self.env.dir.path());
        cmd
    }

    /// `pamtester SERVICE USER authenticate`, `input` on its stdin (its
    /// conversation reads the prompts' answers from there).
    pub fn pamtester(&self, user: &str, input: &str) -> Run {
        self.pamtester_for(SERVICE, user, input)
    }

    pub fn pamtester_for(&self, service: &str, user: &str, input: &str) -> Run {
        let cmd = self.in_namespace(&["pamtester", "-v", service, user, "authenticate"]);
        let run = run_command(cmd, Some(input.as_bytes()));
        assert_ne!(run.code, 99, "the namespace could not be set up\n{run}");
        run
    }

    /// The audit records about `email`, oldest first (the tool lists the
    /// newest first).
    pub fn records(&self, email: &str) -> Vec<serde_json::Value> {
        let mut recs = self.env.audit(["--email", email]);
        recs.reverse();
        recs
    }

    /// What reached syslog since the last call (empty without /dev/log).
    pub fn syslog(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((sock, _)) = &self.syslog {
            let mut buf = vec![0u8; 64 * 1024];
            std::thread::sleep(Duration::from_millis(20));
            while let Ok(n) = sock.recv(&mut buf) {
                out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        out
    }
}

/// Whether pamtester said the authentication succeeded.
pub fn authenticated(run: &Run) -> bool {
    run.code == 0 && run.stdout.contains("successfully authenticated")
}

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// `s` quoted for sh.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
