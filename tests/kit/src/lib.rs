//! What the black-box and reliability tests of the mb-2fa binaries share.
//!
//! The tests run the shipped binaries as a sysadmin or a script would, each
//! against its own database in a temporary directory, and check only what the
//! contract (SPEC.md) promises: exit codes, stdout/stderr, JSON fields and the
//! files on disk. Nothing here calls into `mb2fa-core`: the TOTP reference, the
//! QR decoding (rqrr) and the checks are independent of the code under test.
//!
//! A module a concern; everything is re-exported here, so a test says
//! `use mb2fa_testkit::{Env, VERIFY, totp_now}`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod db;
pub mod env;
pub mod files;
pub mod mariadb;
pub mod pam;
pub mod qr;
pub mod rotation;
pub mod runner;
pub mod sshd;
pub mod terminal;
pub mod text;
pub mod tools;
pub mod totp;

pub use db::{DbSnapshot, db_bytes, with_suffix};
pub use env::{Enrolled, Env};
pub use files::{chmod, fixtures, mode, write_key_file};
pub use qr::{
    QrStyle, art_lines, art_to_modules, decode_art, decode_modules, decode_one, invert, quiet_zone,
    strip_ansi, svg_to_modules,
};
pub use runner::{RUN_TIMEOUT, Run, bin, finish, json, run_all, run_command, spawn, spawn_quiet};
pub use terminal::run_in_terminal;
pub use text::{
    OtpauthUri, backup_codes_in, contains_bytes, is_backup_code, is_secret, non_utf8,
    parse_rfc3339_utc, percent_decode, uri_in,
};
pub use tools::{
    AUDIT, BACKUP_CODES, DISABLE, EMAIL_TOOLS, ENABLE, IMPORT, LIST, POLICY, STORE, TOOLS, UNLOCK,
    VERIFY,
};
pub use totp::{
    PERIOD, decode_secret, hotp, in_one_step, now_unix, oathtool, oathtool_at, previous_step_code,
    previous_step_time, totp_at, totp_now, wrong_code, wrong_codes,
};
