//! A real OpenSSH server for the login tests: `sshd` on 127.0.0.1 with a
//! port of its own, in the private mount namespace of a [`PamEnv`] (its
//! pam.d holds an `sshd` service that loads the freshly built module), with
//! `AuthenticationMethods publickey,keyboard-interactive:pam`, host keys,
//! a client key and a Unix user of the test's own. The user is removed and
//! the server killed when the [`Sshd`] is dropped.
//!
//! Logins are driven like a person at a terminal: `tests/pam/ssh_login.py`
//! runs the OpenSSH client under pexpect, answers the code prompt, and
//! reports what the client printed and its exit status.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::mariadb::free_port;
use crate::pam::{PamEnv, chmod};

/// What the remote command prints: seen only when a shell ran.
pub const LOGGED_IN: &str = "mb2fa-login-ok";

/// useradd and userdel lock /etc/passwd; tests of this binary take turns.
static USERS: Mutex<()> = Mutex::new(());
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Whether sshd tests can run: the PAM prerequisites, OpenSSH server and
/// client, pexpect and useradd. Missing pieces fail when `MB2FA_REQUIRE_PAM=1`.
pub fn available() -> bool {
    if !crate::pam::available() {
        return false;
    }
    let pexpect = Command::new("/usr/bin/python3")
        .args(["-c", "import pexpect"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing = [
        ("/usr/sbin/sshd", "openssh-server is not installed"),
        ("/usr/bin/ssh", "openssh-client is not installed"),
        ("/usr/bin/ssh-keygen", "ssh-keygen is not installed"),
        ("/usr/sbin/useradd", "useradd is not installed"),
    ]
    .into_iter()
    .find(|(path, _)| !Path::new(path).exists())
    .map(|(_, why)| why)
    .or((!pexpect).then_some("python3-pexpect is not installed"));
    crate::pam::gate("sshd", missing)
}

/// One login attempt as the client saw it.
#[derive(Debug)]
pub struct Login {
    /// How many times the code prompt was shown.
    pub prompts: u64,
    /// Everything the client printed (prompts and PAM messages included).
    pub output: String,
    /// The client's exit status (255: the login failed).
    pub status: i64,
}

impl Login {
    /// Whether a shell ran the remote command.
    pub fn got_a_shell(&self) -> bool {
        self.status == 0 && self.output.contains(LOGGED_IN)
    }
}

impl std::fmt::Display for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "status {}, {} prompt(s), output:\n{}",
            self.status, self.prompts, self.output
        )
    }
}

/// A running sshd and its user.
pub struct Sshd {
    pub pam: PamEnv,
    /// The Unix user that logs in.
    pub user: String,
    pub port: u16,
    /// The client key in the user's authorized keys, and one that is not.
    pub key: PathBuf,
    pub stranger_key: PathBuf,
    known_hosts: PathBuf,
    log: PathBuf,
    /// World-readable: sshd reads authorized keys as the user.
    _keys: tempfile::TempDir,
    child: Child,
    /// Dropped after the server is killed (fields drop after `drop`).
    _account: UnixUser,
}

impl Sshd {
    /// Start sshd with the module's options `args` (e.g.
    /// `account=%u@example.com`) and a fresh user.
    pub fn start(args: &str) -> Sshd {
        let pam = PamEnv::new(args);
        let user = format!(
            "mb2fa{}x{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let keys = tempfile::Builder::new()
            .prefix("mb2fa-keys")
            .tempdir()
            .expect("keys dir");
        chmod(keys.path(), 0o755);
        let key = pam.env.path("id_user");
        let stranger_key = pam.env.path("id_stranger");
        let host_key = pam.env.path("host_key");
        for k in [&key, &stranger_key, &host_key] {
            keygen(k);
        }
        let authorized = keys.path().join(format!("{user}.keys"));
        std::fs::copy(with_pub(&key), &authorized).expect("authorized keys");
        chmod(&authorized, 0o644);
        let port = free_port();
        let known_hosts = pam.env.path("known_hosts");
        let host_pub = std::fs::read_to_string(with_pub(&host_key)).expect("host key");
        std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_pub}"))
            .expect("known_hosts");
        let config = pam.env.path("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress 127.0.0.1:{port}\n\
                 HostKey {host}\n\
                 PidFile {pid}\n\
                 AuthorizedKeysFile {keys}/%u.keys\n\
                 # The keys file lives under /tmp (world-writable), which\n\
                 # StrictModes refuses; it is root's and read-only here.\n\
                 StrictModes no\n\
                 UsePAM yes\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication yes\n\
                 AuthenticationMethods publickey,keyboard-interactive:pam\n\
                 PermitRootLogin no\n\
                 AllowUsers {user}\n\
                 UseDNS no\n\
                 PrintMotd no\n\
                 PrintLastLog no\n\
                 LogLevel VERBOSE\n",
                host = host_key.display(),
                pid = pam.env.path("sshd.pid").display(),
                keys = keys.path().display(),
            ),
        )
        .expect("sshd_config");
        pam.service("sshd", args);
        let account = UnixUser::add(&user);
        let log = pam.env.path("sshd.log");
        let log_file = std::fs::File::create(&log).expect("sshd log");
        let config_arg = config.display().to_string();
        // sshd wants its privilege separation directory, /run/sshd; a tmpfs
        // over /run in the namespace gives it one without touching the host.
        let mut cmd = pam.in_namespace_with(
            "mount -t tmpfs -o mode=0755 mb2fa-run /run || exit 99\n\
             mkdir -m 0755 /run/sshd || exit 99\n",
            &["/usr/sbin/sshd", "-D", "-e", "-f", &config_arg],
        );
        cmd.stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file);
        let child = cmd.spawn().expect("start sshd");
        let mut sshd = Sshd {
            pam,
            user,
            port,
            key,
            stranger_key,
            known_hosts,
            log,
            _keys: keys,
            child,
            _account: account,
        };
        sshd.wait_ready();
        sshd
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("sshd exited ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on port {}:\n{}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The 2FA account of the user under `account=%u@example.com`.
    pub fn email(&self) -> String {
        format!("{}@example.com", self.user)
    }

    /// What sshd logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Log in with the user's key, answering the code prompt with `code`.
    pub fn login(&self, code: &str) -> Login {
        self.login_with(&self.key, code)
    }

    /// Log in with `key`, answering the code prompt (if one comes) with `code`.
    pub fn login_with(&self, key: &Path, code: &str) -> Login {
        let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pam/ssh_login.py");
        let port = self.port.to_string();
        let known = format!("UserKnownHostsFile={}", self.known_hosts.display());
        let target = format!("{}@127.0.0.1", self.user);
        let remote = format!("echo {LOGGED_IN} $(id -un)");
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(&driver)
            .arg(crate::pam::PROMPT)
            .arg("--")
            .args(["/usr/bin/ssh", "-F", "/dev/null", "-p", &port, "-i"])
            .arg(key)
            .args(["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"])
            .args(["-o", &known, "-o", "StrictHostKeyChecking=yes"])
            .args([
                "-o",
                "PreferredAuthentications=publickey,keyboard-interactive",
            ])
            .args(["-o", "NumberOfPasswordPrompts=1", "-o", "ConnectTimeout=20"])
            // LogLevel stays INFO: the client shows the server's PAM
            // messages (a keyboard-interactive "instruction") at INFO.
            .args([&target, &remote])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", self.pam.env.dir.path())
            .env("TERM", "dumb")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("run the ssh driver");
        if let Some(mut stdin) = child.stdin.take() {
            let _ = writeln!(stdin, "{code}");
        }
        let out = child.wait_with_output().expect("the ssh driver");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "the ssh driver printed no JSON ({e}): {}\n{}\nsshd log:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            )
        });
        Login {
            prompts: doc["prompts"].as_u64().unwrap_or(0),
            output: doc["output"].as_str().unwrap_or_default().to_string(),
            status: doc["status"].as_i64().unwrap_or(-1),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Unix user of the test's, removed when dropped.
struct UnixUser(String);

impl UnixUser {
    fn add(name: &str) -> UnixUser {
        let _turn = USERS.lock().unwrap_or_else(|e| e.into_inner());
        let ok = Command::new("useradd")
            .args(["--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--shell", "/bin/sh", name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "useradd {name}");
        UnixUser(name.to_string())
    }
}

impl Drop for UnixUser {
    fn drop(&mut self) {
        let _turn = USERS.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("userdel").arg(&self.0).status();
    }
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "mb2fa-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ssh-keygen {}", path.display());
}

fn with_pub(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}
