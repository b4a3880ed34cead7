//! Running the tools against a MariaDB URL.

use std::process::Command;

use mb2fa_testkit::mariadb::Server;
use mb2fa_testkit::{ENABLE, Enrolled, Env, Run, VERIFY, run_command, totp_now};
use serde_json::Value;

/// The shared server, or `None` (after saying so) when MariaDB is not
/// installed and not required.
pub fn server() -> Option<&'static Server> {
    let s = Server::shared();
    if s.is_none() {
        eprintln!("MariaDB is not installed here: test not run (CI sets MB2FA_REQUIRE_MARIADB=1)");
    }
    s
}

/// A test's store on a server: a fresh database, and a temporary directory
/// with the key file every tool run through it uses.
pub struct Db {
    pub env: Env,
    pub name: String,
    pub url: String,
}

impl Db {
    pub fn on(server: &Server) -> Db {
        let name = server.create_database();
        let url = server.url(&name);
        Db {
            env: Env::new(),
            name,
            url,
        }
    }

    /// `tool --db <url> args...` with the environment of [`Env`].
    pub fn command(&self, tool: &str, args: &[&str]) -> Command {
        at(&self.env, &self.url, tool, args)
    }

    pub fn run(&self, tool: &str, args: &[&str]) -> Run {
        run_command(self.command(tool, args), None)
    }

    #[track_caller]
    pub fn enroll(&self, email: &str) -> Enrolled {
        enroll_at(&self.env, &self.url, email)
    }

    #[track_caller]
    pub fn activate(&self, e: &Enrolled) {
        let run = self.run(
            VERIFY,
            &[
                "--json",
                "--email",
                &e.email,
                "--code",
                &totp_now(&e.secret, 0),
            ],
        );
        assert_eq!(run.ok_json()["activated"], Value::Bool(true), "{run}");
    }
}

/// `tool --db <url> args...` with `env`'s key file and clean environment.
pub fn at(env: &Env, url: &str, tool: &str, args: &[&str]) -> Command {
    let mut cmd = env.bare_command(tool);
    cmd.arg("--db").arg(url).args(args);
    cmd
}

/// Enroll `email` through the store at `url`.
#[track_caller]
pub fn enroll_at(env: &Env, url: &str, email: &str) -> Enrolled {
    let run = run_command(
        at(
            env,
            url,
            ENABLE,
            &["--json", "--qr", "none", "--email", email],
        ),
        None,
    );
    let doc = run.ok_json();
    Enrolled::parse(&doc, &run)
}
