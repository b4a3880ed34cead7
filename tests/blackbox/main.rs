//! Black-box tests of the mb-2fa binaries: each test runs the shipped tools
//! against its own database in a temporary directory and checks the contract
//! of SPEC.md (exit codes, output, JSON fields, files on disk).
//!
//! Run with `cargo test --workspace` or `cargo test -p mb2fa-tests`: the
//! binaries are this package's, so cargo builds them first.

// Helpers outside #[test] functions panic on purpose: a failed check is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod at_rest;
mod audit;
mod backends;
mod backup;
mod concurrency;
mod config;
mod db_writer;
mod delivery;
mod environment;
mod extremes;
mod hostile_text;
mod import;
mod input;
mod json;
mod lifecycle;
mod list_stream;
mod lockout;
mod login_check;
mod lost_store;
mod migration;
mod oath;
mod options;
mod permissions;
mod planted;
mod policy;
mod qr;
mod quiet;
mod reference;
mod rekey;
mod skew;
mod smoke;
mod stdin;
mod tty;
