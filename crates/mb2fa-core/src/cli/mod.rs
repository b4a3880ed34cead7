//! Command-line plumbing shared by every tool: the global options and how a
//! tool gets its store ([`open_store`] and co., here), arguments
//! (`args.rs`), running a tool and its errors and exit codes (`run.rs`),
//! streamed output (`stream.rs`), and what is printed (`render.rs`: one JSON
//! document or human text on stdout).
//!
//! Each tool crate builds its `clap::Command` on [`command`] and hands its
//! work to [`run`]; nothing here knows about any single tool.

mod args;
mod render;
mod run;
mod stream;

use std::path::PathBuf;

use clap::ArgMatches;

pub use args::{command, confirm, email, email_arg, key_file_arg, secret_value};
pub use render::{Report, exemption_json, human_time, json_time, push_table, short_time, table};
pub use run::{run, run_streaming};
pub use stream::{JsonArray, Stream, emit_line};

use crate::error::Result;
use crate::store::{Location, OpenMode, Store};

/// The options every tool takes.
#[derive(Debug, Clone)]
pub struct Globals {
    /// The store (`--db`, `MB2FA_DB`, the config file, the default).
    pub db: Location,
    /// The key file (`--key-file`, `MB2FA_KEY_FILE`, the config file, the default).
    pub key_file: PathBuf,
    pub json: bool,
    pub quiet: bool,
}

/// Open the database and load the key: what every tool that reads or
/// writes a secret does first.
pub fn open_unlocked(_m: &ArgMatches, g: &Globals) -> Result<Store> {
    let mut store = open_store(g)?;
    store.unlock(&g.key_file)?;
    say_key_note(&store, g);
    Ok(store)
}

/// Open and unlock without the note of [`open_unlocked`]: for
/// `mb-2fa-store`, whose answer says which key file it used.
pub fn open_unlocked_quietly(g: &Globals) -> Result<Store> {
    let mut store = open_store(g)?;
    store.unlock(&g.key_file)?;
    Ok(store)
}

/// When the key came from `2fa.key.new` or `2fa.key.old` (a key rotation
/// under way), one line on stderr says so and what to run.
fn say_key_note(store: &Store, g: &Globals) {
    if let Some(note) = store.keyring().and_then(|k| k.note(&g.key_file)) {
        let tool = std::env::args_os()
            .next()
            .map(PathBuf::from)
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "mb-2fa".to_string());
        eprintln!(
            "{}: note: {}",
            crate::text::escape_for_terminal(&tool),
            crate::text::escape_for_terminal(&note)
        );
    }
}

/// Open the store named by the global options, as every tool does that
/// needs no secret (exit 10 if there is no initialised store): the one way a
/// tool gets a store, so no tool names a backend.
pub fn open_store(g: &Globals) -> Result<Store> {
    Store::open(&g.db, OpenMode::MustExist)
}

/// [`open_unlocked`] for `mb-2fa-verify`, which every login runs.
pub fn open_for_logins(m: &ArgMatches, g: &Globals) -> Result<Store> {
    let mut store = open_unlocked(m, g)?;
    store.tune_for_logins();
    Ok(store)
}

/// [`open_unlocked`] for `mb-2fa-enable`: on a fresh appliance (neither
/// database nor key file) the first enrollment creates both.
pub fn open_for_enrollment(_m: &ArgMatches, g: &Globals) -> Result<Store> {
    let key = &g.key_file;
    let mut store = Store::open(&g.db, OpenMode::CreateIfFresh { key_file: key })?;
    store.unlock(key)?;
    say_key_note(&store, g);
    Ok(store)
}
