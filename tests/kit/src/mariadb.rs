//! Real MariaDB servers for the tests: one `mariadbd` per test process
//! ([`Server::shared`]) and 3-node Galera clusters on loopback
//! ([`Cluster::start`]), each in its own temporary directory, on its own
//! socket and ports, never the machine's own service.
//!
//! A server must not outlive the test process, and no `unsafe` is allowed
//! (so no `PR_SET_PDEATHSIG`, which libtest's short-lived threads would
//! trigger anyway). Each `mariadbd` is started by a small `sh` wrapper whose
//! stdin is a pipe this process holds: when the process ends, however it
//! ends, the pipe closes, the wrapper's `read` returns, and it kills the
//! server and removes its directory.
//!
//! `MB2FA_REQUIRE_MARIADB=1` (set by `.ci/run`) turns missing binaries
//! into a failure instead of a skipped MariaDB run.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

const MARIADBD: &str = "/usr/sbin/mariadbd";
const GALERA: &str = "/usr/lib/galera/libgalera_smm.so";

/// Whether the tests must have MariaDB (CI).
pub fn required() -> bool {
    std::env::var_os("MB2FA_REQUIRE_MARIADB").is_some_and(|v| v == "1")
}

fn have(path: &str) -> bool {
    Path::new(path).exists()
}

fn on_path(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether a MariaDB server can be started here; panics when it cannot but
/// must ([`required`]).
pub fn available() -> bool {
    let ok = have(MARIADBD) && on_path("mariadb-install-db") && on_path("mariadb");
    assert!(
        ok || !required(),
        "MB2FA_REQUIRE_MARIADB=1 but {MARIADBD}, mariadb-install-db or the mariadb client is missing: apt-get install mariadb-server"
    );
    ok
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// The OS user a server runs as: `mysql` when root (mariadbd refuses root).
fn server_user() -> Option<&'static str> {
    is_root().then_some("mysql")
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn temp_dir(prefix: &str) -> PathBuf {
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temporary directory")
        .keep();
    if let Some(user) = server_user() {
        let ok = Command::new("chown")
            .args(["-R", user])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "chown {user} {}", dir.display());
    }
    // The tools (root) and the server (mysql) both reach the socket.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    dir
}

fn install_db(datadir: &Path, log: &Path) {
    let mut cmd = Command::new("mariadb-install-db");
    cmd.args([
        "--no-defaults",
        "--auth-root-authentication-method=socket",
        "--skip-test-db",
        "--skip-name-resolve",
    ])
    .arg(format!("--datadir={}", datadir.display()));
    if let Some(user) = server_user() {
        cmd.arg(format!("--user={user}"));
    }
    let out = cmd.output().expect("mariadb-install-db");
    std::fs::write(log, [&out.stdout[..], &out.stderr[..]].concat()).ok();
    assert!(
        out.status.success(),
        "mariadb-install-db failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One running `mariadbd`.
pub struct Node {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub port: u16,
    /// The wrapper; dropping its stdin (process exit) stops the server.
    wrapper: Mutex<Option<Child>>,
}

static DATABASES: AtomicU32 = AtomicU32::new(0);

impl Node {
    fn launch(dir: PathBuf, datadir: PathBuf, extra: &[String]) -> Node {
        let socket = dir.join("mysqld.sock");
        let port = free_port();
        let mut args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", datadir.display()),
            format!("--socket={}", socket.display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".into(),
            format!("--pid-file={}", dir.join("mysqld.pid").display()),
            format!("--log-error={}", dir.join("error.log").display()),
            "--innodb-buffer-pool-size=64M".into(),
            "--innodb-log-file-size=16M".into(),
            "--skip-name-resolve".into(),
            "--innodb-flush-log-at-trx-commit=1".into(),
            "--max-connections=300".into(),
        ];
        if let Some(user) = server_user() {
            args.push(format!("--user={user}"));
        }
        args.extend(extra.iter().cloned());
        // The wrapper: start the server, wait for stdin to close, kill it,
        // remove the directory.
        let script = format!(
            "{MARIADBD} \"$@\" </dev/null >/dev/null 2>&1 & pid=$!; read _ ; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf '{}'",
            dir.display()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("mariadbd")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mariadbd");
        Node {
            dir,
            socket,
            port,
            wrapper: Mutex::new(Some(child)),
        }
    }

    /// Wait until `SELECT 1` answers (and, with `cluster`, the node is a
    /// ready member of a cluster of that size).
    fn wait_ready(&self, cluster: Option<usize>, limit: Duration) {
        let started = Instant::now();
        loop {
            let ok = match cluster {
                None => self.try_sql(None, "SELECT 1").is_ok(),
                Some(n) => self
                    .try_sql(
                        None,
                        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('wsrep_cluster_size','wsrep_ready') ORDER BY VARIABLE_NAME",
                    )
                    .is_ok_and(|out| out.split_whitespace().collect::<Vec<_>>() == [n.to_string().as_str(), "ON"]),
            };
            if ok {
                return;
            }
            if started.elapsed() > limit {
                let log = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!(
                    "mariadbd in {} did not come up in {limit:?}; error log tail:\n{}",
                    self.dir.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Run SQL through the `mariadb` client as root over the socket.
    pub fn try_sql(&self, db: Option<&str>, sql: &str) -> Result<String, String> {
        let mut cmd = Command::new("mariadb");
        cmd.args(["--no-defaults", "-N", "-B", "-u", "root"])
            .arg("-S")
            .arg(&self.socket);
        if let Some(db) = db {
            cmd.arg(db);
        }
        let out = cmd.arg("-e").arg(sql).output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// [`Node::try_sql`], which must succeed: the tests' own view of the
    /// database, independent of the tools.
    #[track_caller]
    pub fn sql(&self, db: Option<&str>, sql: &str) -> String {
        self.try_sql(db, sql)
            .unwrap_or_else(|e| panic!("SQL failed on {}: {sql}\n{e}", self.socket.display()))
    }

    /// A fresh, uniquely named database (`utf8mb4`).
    pub fn create_database(&self) -> String {
        let name = format!(
            "t_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::Relaxed)
        );
        self.sql(
            None,
            &format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"),
        );
        name
    }

    /// The store URL of `db` on this node: root over the local socket.
    pub fn url(&self, db: &str) -> String {
        format!(
            "mariadb://root@localhost/{db}?socket={}",
            self.socket.display()
        )
    }

    /// `mariadb://USER@127.0.0.1:PORT/DB`.
    pub fn tcp_url(&self, db: &str, user: &str) -> String {
        format!("mariadb://{user}@127.0.0.1:{}/{db}", self.port)
    }

    /// A MariaDB account that logs in with a password from anywhere.
    pub fn create_password_user(&self, user: &str, password: &str) {
        self.sql(
            None,
            &format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"),
        );
    }

    /// The server's pid (from its pid file).
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("mysqld.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    pub fn is_alive(&self) -> bool {
        self.pid()
            .is_some_and(|p| Path::new(&format!("/proc/{p}")).exists())
            && self.try_sql(None, "SELECT 1").is_ok()
    }

    /// Kill the server with SIGKILL, as a crash or power cut would.
    pub fn kill9(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            let started = Instant::now();
            while Path::new(&format!("/proc/{pid}")).exists()
                && started.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Node {
    /// Close the wrapper's stdin: it kills the server and removes the dir.
    fn drop(&mut self) {
        if let Ok(mut w) = self.wrapper.lock()
            && let Some(mut child) = w.take()
        {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// One standalone server shared by a test process.
pub type Server = Node;

static SHARED: OnceLock<Option<Node>> = OnceLock::new();

impl Node {
    /// The process's server, started on first use; `None` when MariaDB is
    /// not installed (and not [`required`]).
    pub fn shared() -> Option<&'static Server> {
        SHARED
            .get_or_init(|| available().then(Server::start))
            .as_ref()
    }

    /// A new standalone server.
    pub fn start() -> Server {
        let dir = temp_dir("mb2fa-mariadb-");
        let datadir = dir.join("data");
        install_db(&datadir, &dir.join("install.log"));
        let node = Node::launch(dir, datadir, &[]);
        node.wait_ready(None, Duration::from_secs(60));
        node
    }
}

/// A Galera cluster on loopback.
pub struct Cluster {
    pub nodes: Vec<Node>,
}

impl Cluster {
    /// Whether Galera can run here (panics if it must and cannot).
    pub fn available() -> bool {
        let ok = available() && have(GALERA) && on_path("rsync");
        assert!(
            ok || !required(),
            "MB2FA_REQUIRE_MARIADB=1 but galera-4 ({GALERA}) or rsync is missing: apt-get install galera-4 rsync"
        );
        ok
    }

    /// `n` nodes, the first bootstrapping (`--wsrep-new-cluster`), the
    /// others joining by rsync SST; returns once every node is a ready
    /// member of a cluster of `n`. `None` if Galera is not installed.
    pub fn start(n: usize) -> Option<Cluster> {
        if !Cluster::available() {
            return None;
        }
        let gcomm: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let address = format!(
            "gcomm://{}",
            gcomm
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        let name = format!("mb2fa{}", std::process::id());
        let mut nodes = Vec::new();
        for (i, port) in gcomm.iter().enumerate() {
            let dir = temp_dir("mb2fa-galera-");
            let datadir = dir.join("data");
            if i == 0 {
                install_db(&datadir, &dir.join("install.log"));
            } else {
                std::fs::create_dir(&datadir).expect("datadir");
                if let Some(user) = server_user() {
                    let _ = Command::new("chown").arg(user).arg(&datadir).status();
                }
            }
            let (ist, sst) = (free_port(), free_port());
            let mut extra = vec![
                "--wsrep-on=ON".to_string(),
                format!("--wsrep-provider={GALERA}"),
                format!("--wsrep-cluster-name={name}"),
                format!("--wsrep-cluster-address={address}"),
                format!("--wsrep-node-address=127.0.0.1:{port}"),
                format!("--wsrep-node-name=n{i}"),
                format!(
                    "--wsrep-provider-options=gmcast.listen_addr=tcp://127.0.0.1:{port}; ist.recv_addr=127.0.0.1:{ist}; gcache.size=32M; evs.suspect_timeout=PT3S; evs.inactive_timeout=PT6S; evs.keepalive_period=PT0.5S; evs.inactive_check_period=PT0.5S"
                ),
                format!("--wsrep-sst-receive-address=127.0.0.1:{sst}"),
                "--wsrep-sst-method=rsync".into(),
                "--binlog-format=ROW".into(),
                "--default-storage-engine=InnoDB".into(),
                "--innodb-autoinc-lock-mode=2".into(),
            ];
            if i == 0 {
                extra.push("--wsrep-new-cluster".into());
            }
            let node = Node::launch(dir, datadir, &extra);
            node.wait_ready(Some(i + 1), Duration::from_secs(120));
            nodes.push(node);
        }
        Some(Cluster { nodes })
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// Wait (up to `limit`) until node `i` is a ready member of a primary
    /// component of `size` nodes: after a kill, the survivors evict the dead
    /// node only after the suspect timeout.
    pub fn wait_member(&self, i: usize, size: usize, limit: Duration) {
        self.nodes[i].wait_ready(Some(size), limit);
    }

    /// A fresh database, made on node 0 and replicated to all.
    pub fn create_database(&self) -> String {
        let name = self.nodes[0].create_database();
        for node in &self.nodes[1..] {
            node.sql(Some(&name), "SET SESSION wsrep_sync_wait = 1; SELECT 1");
        }
        name
    }
}
