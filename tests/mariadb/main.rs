//! The MariaDB backend against real servers the tests start: a `mariadbd`
//! (store selection, fail-closed cases, `copy`, migrations, crashes), and
//! a 3-node Galera cluster on loopback (races across nodes, a node killed
//! mid-race). The whole black-box suite also runs against MariaDB (see
//! `blackbox/backends.rs`); this binary holds what only a server can show.
//!
//! Without MariaDB installed, every test here says so and passes, unless
//! `MB2FA_REQUIRE_MARIADB=1` (CI), which makes its absence a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod backup;
mod cluster;
mod crashes;
mod rekey;
mod store;
mod support;
