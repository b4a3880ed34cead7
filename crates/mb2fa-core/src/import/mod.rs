//! `mb-2fa-import`: enrollments taken over from other 2FA tools, so that
//! users keep the phone they have. Three formats, a parser each, all with
//! the same result ([`Entry`]): google-authenticator-libpam's
//! `~/.google_authenticator` ([`google_authenticator`]), otpauth URIs
//! ([`otpauth`]) and pam_oath's `users.oath` ([`oath_users`]). Input is
//! read bounded and checked line by line ([`input`]); a bad line is exit 2
//! naming its number and what is wrong (never its text, which may hold a
//! secret), and nothing is imported.
//!
//! [`import`] is the operation: every entry checked first (one account
//! once, a replay floor not in the future, scratch codes that can be told
//! apart), the scratch codes hashed (argon2id, outside the write lock),
//! then one deciding transaction for the whole run: an account that
//! already has an enrollment is a conflict (exit 5, nothing imported)
//! unless `force`; every imported enrollment is active, keeps its
//! parameters and replay floor, and gets an audit record (action `import`,
//! the source format in the detail; never a secret or a code). A dry run
//! reads only and writes nothing, not even an audit record.
//!
//! Scratch codes and TOTP codes: google-authenticator enrollments are
//! always 6 digits and their scratch codes 8, so for a 6-digit enrollment
//! an 8-digit input is a scratch code (`account::verify`). An 8-digit
//! enrollment cannot have scratch codes (the rule is here: they are
//! refused), so an 8-digit input there is only ever a TOTP code.

pub mod google_authenticator;
pub mod input;
pub mod oath_users;
pub mod otpauth;

use crate::account::Ctx;
use crate::audit::{Action, Outcome};
use crate::backup_codes::BackupCode;
use crate::code::TOTP_DIGITS;
use crate::email::Email;
use crate::error::{Error, Result};
use crate::model::{EnrollmentRef, Lock, NewAccount, Premise, State, Success, TotpProgress};
use crate::secret::Secret;
use crate::store::{Store, Verdict};
use crate::totp::TotpParams;

/// Where the enrollments come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    GoogleAuthenticator,
    Otpauth,
    OathUsers,
}

impl Source {
    /// The name `--from` takes, and the audit detail names.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::GoogleAuthenticator => "google-authenticator",
            Source::Otpauth => "otpauth",
            Source::OathUsers => "oath-users",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        [
            Source::GoogleAuthenticator,
            Source::Otpauth,
            Source::OathUsers,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

/// A step already used, and the line that said so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Floor {
    pub step: i64,
    pub line: usize,
}

/// One enrollment as a parser read it. `Debug` never shows the secret or
/// the codes (their types redact themselves).
#[derive(Debug)]
pub struct Entry {
    /// The line it came from (its first line).
    pub line: usize,
    pub email: Email,
    pub secret: Secret,
    pub params: TotpParams,
    /// The issuer the source named; `None`: the policy's.
    pub issuer: Option<String>,
    /// The highest step already used: codes of it and before are refused.
    pub floor: Option<Floor>,
    /// Scratch codes with their lines, to become backup codes.
    pub scratch_codes: Vec<(usize, BackupCode)>,
    /// What the source said that our rules replace (shown, not stored).
    pub notes: Vec<String>,
}

/// What an import did (or, in a dry run, would do) for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub email: Email,
    pub line: usize,
    pub params: TotpParams,
    pub issuer: String,
    /// The replay floor (a step number of the enrollment's period).
    pub replay_floor: Option<i64>,
    pub backup_codes: usize,
    /// The state of the enrollment it replaced (`force`), if any.
    pub replaced: Option<State>,
    pub notes: Vec<String>,
}

/// How far in the future a used step may lie (google-authenticator's
/// largest window reaches 10 steps ahead): further, a clock was wrong, and
/// the floor would refuse every code until then.
const MAX_FLOOR_AHEAD: i64 = 10;

/// Import `entries` from `source` in one transaction (see the module's
/// documentation). `name` names the input in messages. The store must be
/// unlocked unless `dry_run`.
pub fn import(
    store: &mut Store,
    ctx: &Ctx<'_>,
    source: Source,
    name: &str,
    entries: Vec<Entry>,
    force: bool,
    dry_run: bool,
) -> Result<Vec<Imported>> {
    let now = ctx.clock.now()?;
    check(&entries, name, now)?;
    let policy_issuer = crate::policy::current(store)?.issuer;
    let issuer = |e: &Entry| e.issuer.clone().unwrap_or_else(|| policy_issuer.clone());
    let planned = |e: &Entry, replaced: Option<State>| Imported {
        email: e.email.clone(),
        line: e.line,
        params: e.params,
        issuer: issuer(e),
        replay_floor: e.floor.map(|f| f.step),
        backup_codes: e.scratch_codes.len(),
        replaced,
        notes: e.notes.clone(),
    };
    let conflict = |taken: &[(&Entry, State)]| {
        let names: Vec<String> = taken
            .iter()
            .map(|(e, s)| format!("{} ({}, line {})", e.email, s.as_str(), e.line))
            .collect();
        Error::conflict(format!(
            "already enrolled: {}; pass --force to replace {} (the old secret and backup codes \
             stop working); nothing was imported",
            names.join(", "),
            if taken.len() == 1 { "it" } else { "them" }
        ))
    };
    if dry_run {
        let existing = store.read(|tx| {
            entries
                .iter()
                .map(|e| Ok(tx.enrollment(e.email.as_str())?.map(|r| r.state)))
                .collect::<Result<Vec<_>>>()
        })?;
        let taken: Vec<(&Entry, State)> = entries
            .iter()
            .zip(&existing)
            .filter_map(|(e, s)| s.map(|s| (e, s)))
            .collect();
        if !force && !taken.is_empty() {
            return Err(conflict(&taken));
        }
        return Ok(entries
            .iter()
            .zip(existing)
            .map(|(e, s)| planned(e, s))
            .collect());
    }
    // argon2 before the write lock, so a slow hash never blocks logins.
    let hashed: Vec<Vec<(String, String)>> = entries
        .iter()
        .map(|e| {
            e.scratch_codes
                .iter()
                .map(|(_, c)| Ok((c.tag(), c.hash()?)))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    let record = |e: &Entry, outcome, detail: String| {
        ctx.record(now, Action::Import, Some(&e.email), outcome, detail)
    };
    store.decide(|tx| {
        let mut existing: Vec<Option<EnrollmentRef>> = Vec::with_capacity(entries.len());
        for e in &entries {
            existing.push(tx.enrollment_for_update(e.email.as_str())?);
        }
        let taken: Vec<(&Entry, State)> = entries
            .iter()
            .zip(&existing)
            .filter_map(|(e, r)| r.map(|r| (e, r.state)))
            .collect();
        if !force && !taken.is_empty() {
            for (e, state) in &taken {
                tx.append_audit(record(
                    e,
                    Outcome::Conflict,
                    format!(
                        "import from {}: already enrolled ({}); --force not given; nothing imported",
                        source.as_str(),
                        state.as_str()
                    ),
                ))?;
            }
            return Ok(Verdict::Refused(conflict(&taken)));
        }
        let mut done = Vec::with_capacity(entries.len());
        for ((e, old), rows) in entries.iter().zip(&existing).zip(&hashed) {
            if let Some(old) = old {
                tx.delete_account(old.id)?;
            }
            let issuer = issuer(e);
            let id = tx.insert_account(&NewAccount {
                email: e.email.as_str(),
                secret: &e.secret,
                params: e.params,
                issuer: &issuer,
                created_at: now,
            })?;
            // Active at once, with the floor the old tool had reached.
            tx.record_success(
                id,
                &Success {
                    // Activated, but no code was used here yet: `list`
                    // shows it as never used until the first login.
                    used_at: None,
                    totp: e.floor.map(|f| TotpProgress {
                        last_step: f.step,
                        drift_steps: 0,
                        recent_offsets: Vec::new(),
                    }),
                    state: State::Active,
                    activated_at: Some(now),
                    lock: Lock::CLEAR,
                },
                Premise {
                    lock: Lock::CLEAR,
                    last_step: Some(None),
                },
            )?;
            if !rows.is_empty() {
                tx.replace_backup_codes(id, rows, now)?;
            }
            let p = e.params;
            let mut detail = format!(
                "imported from {} (line {}): active, {}, {} digits, {} s, issuer {issuer:?}",
                source.as_str(),
                e.line,
                p.algorithm.as_str(),
                p.digits,
                p.period
            );
            if let Some(f) = e.floor {
                detail.push_str(&format!(", replay floor step {}", f.step));
            }
            if !rows.is_empty() {
                detail.push_str(&format!(
                    ", {} scratch codes as backup codes",
                    rows.len()
                ));
            }
            if let Some(old) = old {
                detail.push_str(&format!(
                    "; replaced the {} enrollment (--force)",
                    old.state.as_str()
                ));
            }
            tx.append_audit(record(e, Outcome::Ok, detail))?;
            done.push(planned(e, old.map(|o| o.state)));
        }
        Ok(Verdict::Done(done))
    })
}

/// The checks of a whole run, before the store is touched.
fn check(entries: &[Entry], name: &str, now: i64) -> Result<()> {
    if entries.is_empty() {
        return Err(Error::usage(format!(
            "{name} holds no enrollment to import; nothing was imported"
        )));
    }
    for (i, e) in entries.iter().enumerate() {
        if let Some(first) = entries[..i].iter().find(|o| o.email == e.email) {
            return Err(input::at(
                name,
                e.line,
                format!("{} is imported on line {} already", e.email, first.line),
            ));
        }
        if let Some(f) = e.floor
            && f.step > e.params.step_at(now) + MAX_FLOOR_AHEAD
        {
            return Err(input::at(
                name,
                f.line,
                "a used step lies in the future (a clock was wrong when it was written); \
                 remove the step numbers from the line to import without a replay floor",
            ));
        }
        if !e.scratch_codes.is_empty() && usize::from(e.params.digits) != TOTP_DIGITS {
            return Err(input::at(
                name,
                e.line,
                "scratch codes are kept only for 6-digit enrollments (an 8-digit scratch code \
                 could not be told from an 8-digit TOTP code)",
            ));
        }
        for (j, (line, code)) in e.scratch_codes.iter().enumerate() {
            if let Some((other, _)) = e.scratch_codes[..j]
                .iter()
                .find(|(_, c)| c.tag() == code.tag())
            {
                return Err(input::at(
                    name,
                    *line,
                    format!(
                        "this scratch code and the one on line {other} cannot both be kept \
                         (their lookup tags collide); delete one of the two lines"
                    ),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
