//! mb2fa-core: the rules and the storage behind the mb-2fa tools.
//!
//! One module a concern: [`model`] (the domain's types), [`secret`]
//! (generation, base32), [`uri`] (otpauth), [`totp`] (codes, window, replay),
//! [`backup_codes`], [`email`] and [`code`] (input), [`store`] (the store
//! interface and its SQLite backend), [`keyring`], [`crypto`] and
//! [`key_file`] (secrets at rest), [`policy`] (enforcement), [`throttle`]
//! (lockout), [`skew`] (drift, resync, diagnosis), [`audit`] (the trail and
//! syslog), [`qr`] (terminal art), [`clock`] (time), [`error`] (exit codes),
//! [`import`] (enrollments from other 2FA tools), and [`account`], which
//! ties them into the operations the tools perform.
//! [`cli`] holds the plumbing every tool shares.

pub mod account;
pub mod audit;
pub mod backup_codes;
pub mod clock;
pub mod code;
pub mod config;
pub mod crypto;
pub mod email;
pub mod error;
pub mod import;
pub mod key_file;
pub mod keyring;
pub mod maintenance;
pub mod model;
pub mod policy;
pub mod process;
pub mod qr;
pub mod rekey;
pub mod secret;
pub mod secure_open;
pub mod skew;
pub mod store;
pub mod text;
pub mod throttle;
pub mod totp;
pub mod uri;

#[cfg(feature = "cli")]
pub mod cli;

pub use error::{Error, ErrorKind, Result};
