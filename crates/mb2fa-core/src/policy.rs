//! Enforcement: is 2FA required, with what grace, for whom, and what a login
//! front end should do when an account logs in (`mb-2fa-policy check`).
//!
//! The decision, in order:
//! 1. a break-glass exemption: allow, and raise an alert (every time);
//! 2. a service exemption: allow;
//! 3. an enrollment, active or pending: ask for a code;
//! 4. 2FA not required (`require_all` off): allow;
//! 5. a mandatory role (default `super-admin`): deny, no grace;
//! 6. inside the grace period: let in and prompt to enroll (`setup`);
//! 7. otherwise: deny.
//!
//! Mandatory roles bite only while 2FA is required: with the policy off (the
//! state of a fresh install) nobody is shut out of their own appliance.
//! Grace starts when the policy was switched on or when `check` first saw the
//! account, whichever is later; changing `grace_days` applies at once.

use crate::account::Ctx;
use crate::audit::{Action, Outcome};
use crate::clock::rfc3339;
use crate::email::Email;
use crate::error::{Error, Result};
pub use crate::model::ExemptionKind as Kind;
use crate::model::{Exemption, State};
use crate::store::{Store, Tx, Verdict};
use crate::uri;

pub const DEFAULT_GRACE_DAYS: i64 = 7;
pub const MAX_GRACE_DAYS: i64 = 365;
pub const DEFAULT_MANDATORY_ROLE: &str = "super-admin";
const DAY: i64 = 86_400;

const K_REQUIRE_ALL: &str = "policy.require_all";
const K_SINCE: &str = "policy.require_all_since";
const K_GRACE: &str = "policy.grace_days";
const K_ROLES: &str = "policy.mandatory_roles";
const K_ISSUER: &str = "policy.issuer";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub require_all: bool,
    /// When `require_all` was last switched on.
    pub since: Option<i64>,
    pub grace_days: i64,
    pub mandatory_roles: Vec<String>,
    /// Default issuer for new enrollments.
    pub issuer: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            require_all: false,
            since: None,
            grace_days: DEFAULT_GRACE_DAYS,
            mandatory_roles: vec![DEFAULT_MANDATORY_ROLE.to_string()],
            issuer: uri::DEFAULT_ISSUER.to_string(),
        }
    }
}

/// What the rules need to know about an account logging in.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub enrolled: Option<State>,
    pub exemption: Option<Kind>,
    pub roles: &'a [String],
    /// When `check` first saw the account.
    pub first_seen: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Code,
    Allow { reason: String },
    Setup { deadline: i64, grace_days_left: i64 },
    Deny { reason: String },
}

impl Decision {
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Code => "code",
            Decision::Allow { .. } => "allow",
            Decision::Setup { .. } => "setup",
            Decision::Deny { .. } => "deny",
        }
    }

    /// 0 ask for a code, 6 let in without one, 7 keep out.
    pub fn exit_code(&self) -> u8 {
        match self {
            Decision::Code => 0,
            Decision::Allow { .. } | Decision::Setup { .. } => 6,
            Decision::Deny { .. } => 7,
        }
    }
}

/// The login decision (pure: no storage, no clock).
pub fn decide(p: &Policy, f: &Facts<'_>, now: i64) -> Decision {
    match f.exemption {
        Some(Kind::BreakGlass) => {
            return Decision::Allow {
                reason: "exempt: break-glass account (this use is alerted)".to_string(),
            };
        }
        Some(Kind::Service) => {
            return Decision::Allow {
                reason: "exempt: service account".to_string(),
            };
        }
        None => {}
    }
    if f.enrolled.is_some() {
        return Decision::Code;
    }
    if !p.require_all {
        return Decision::Allow {
            reason: "2FA is not required".to_string(),
        };
    }
    if let Some(role) = f.roles.iter().find(|r| p.mandatory_roles.contains(r)) {
        return Decision::Deny {
            reason: format!("2FA is mandatory for role {role} and not set up"),
        };
    }
    let start = f.first_seen.max(p.since.unwrap_or(f.first_seen));
    let deadline = start.saturating_add(p.grace_days.saturating_mul(DAY));
    if now < deadline {
        let left = deadline.saturating_sub(now).saturating_add(DAY - 1) / DAY;
        return Decision::Setup {
            deadline,
            grace_days_left: left,
        };
    }
    Decision::Deny {
        reason: format!(
            "2FA is required and the grace period ended {}",
            rfc3339(deadline)
        ),
    }
}

/// What the person logging in is told about a decision that lets them in
/// without a code or keeps them out (a PAM module shows it as it is). Only
/// said after the first factor: the stack orders that (pam_mb2fa(8)).
pub fn login_message(d: &Decision) -> Option<String> {
    match d {
        Decision::Code | Decision::Allow { .. } => None,
        Decision::Setup {
            deadline,
            grace_days_left,
        } => Some(format!(
            "Two-factor authentication is required for this account from {} ({grace_days_left} day{} left): ask an administrator to enroll it (mb-2fa-enable) before then.",
            rfc3339(*deadline),
            if *grace_days_left == 1 { "" } else { "s" }
        )),
        Decision::Deny { reason } => Some(format!("Access denied: {reason}.")),
    }
}

/// Roles are short names: letters, digits, `-`, `_`, `.`.
pub fn parse_role(raw: &str) -> Result<String> {
    let r = raw.trim().to_ascii_lowercase();
    let ok = !r.is_empty()
        && r.len() <= 64
        && r.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(r)
    } else {
        Err(Error::usage(
            "invalid role: use 1 to 64 letters, digits, '-', '_' or '.'",
        ))
    }
}

/// An exemption's reason: required, one line, at most 200 characters.
pub fn parse_reason(raw: &str) -> Result<String> {
    let r = raw.trim();
    if r.is_empty() {
        return Err(Error::usage(
            "invalid reason: it is empty; say why this account is exempt",
        ));
    }
    if r.chars().count() > 200 || r.chars().any(char::is_control) {
        return Err(Error::usage(
            "invalid reason: one line of at most 200 characters",
        ));
    }
    // Bidi controls, line separators and invisible characters.
    crate::text::check_one_line("invalid reason", r)?;
    Ok(r.to_string())
}

fn load(tx: &Tx<'_>) -> Result<Policy> {
    let d = Policy::default();
    let bad = |what: &str| {
        Error::storage(format!(
            "the stored policy has an invalid {what}: set it again with mb-2fa-policy set"
        ))
    };
    let require_all = match tx.setting(K_REQUIRE_ALL)?.as_deref() {
        None | Some("off") => false,
        Some("on") => true,
        Some(_) => return Err(bad("require-all")),
    };
    // Bounded like every stored value: a planted grace of 1e12 days or a
    // start in the year 300000 is exit 10 naming the setting, not an
    // overflow further on.
    let since = tx
        .setting(K_SINCE)?
        .map(|s| {
            s.parse::<i64>()
                .ok()
                .filter(|t| (0..=crate::clock::MAX_TIME).contains(t))
                .ok_or_else(|| bad("start time (policy.require_all_since)"))
        })
        .transpose()?;
    let grace_days = tx
        .setting(K_GRACE)?
        .map(|s| {
            s.parse::<i64>()
                .ok()
                .filter(|d| (0..=MAX_GRACE_DAYS).contains(d))
                .ok_or_else(|| bad("grace period (policy.grace_days)"))
        })
        .transpose()?
        .unwrap_or(d.grace_days);
    let mandatory_roles = match tx.setting(K_ROLES)? {
        None => d.mandatory_roles,
        Some(s) => s
            .split(',')
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect(),
    };
    // Held to the rule `--issuer` is held to: a planted escape sequence
    // would otherwise reach every new enrollment and its screen.
    let issuer = match tx.setting(K_ISSUER)? {
        None => d.issuer,
        Some(i) => uri::parse_issuer(&i)
            .ok()
            .filter(|v| *v == i)
            .ok_or_else(|| bad("issuer (policy.issuer)"))?,
    };
    Ok(Policy {
        require_all,
        since,
        grace_days,
        mandatory_roles,
        issuer,
    })
}

/// The current policy.
pub fn current(store: &mut Store) -> Result<Policy> {
    store.read(load)
}

/// Changes to make; `None` leaves a value as it is.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub require_all: Option<bool>,
    pub grace_days: Option<i64>,
    pub mandatory_roles: Option<Vec<String>>,
    pub issuer: Option<String>,
}

/// Apply `changes` in one transaction; each changed value is audited with its
/// old and new value. Returns the new policy.
pub fn set(store: &mut Store, ctx: &Ctx<'_>, changes: &Changes) -> Result<Policy> {
    let now = ctx.clock.now()?;
    store.write(|tx| {
        let old = load(tx)?;
        let audit = |what: &str, from: String, to: String| {
            tx.append_audit(ctx.record(
                now,
                Action::PolicySet,
                None,
                Outcome::Ok,
                format!("{what}: {from} -> {to}"),
            ))
        };
        if let Some(on) = changes.require_all.filter(|on| *on != old.require_all) {
            tx.set_setting(K_REQUIRE_ALL, if on { "on" } else { "off" })?;
            if on {
                tx.set_setting(K_SINCE, &now.to_string())?;
            }
            let show = |b: bool| if b { "on" } else { "off" }.to_string();
            audit("require-all", show(old.require_all), show(on))?;
        }
        if let Some(days) = changes.grace_days.filter(|d| *d != old.grace_days) {
            tx.set_setting(K_GRACE, &days.to_string())?;
            audit("grace-days", old.grace_days.to_string(), days.to_string())?;
        }
        if let Some(roles) = changes
            .mandatory_roles
            .as_ref()
            .filter(|r| **r != old.mandatory_roles)
        {
            tx.set_setting(K_ROLES, &roles.join(","))?;
            audit(
                "mandatory-roles",
                old.mandatory_roles.join(","),
                roles.join(","),
            )?;
        }
        if let Some(issuer) = changes.issuer.as_ref().filter(|i| **i != old.issuer) {
            tx.set_setting(K_ISSUER, issuer)?;
            audit("issuer", format!("{:?}", old.issuer), format!("{issuer:?}"))?;
        }
        load(tx)
    })
}

/// Exempt an account (replacing any earlier exemption of it).
pub fn exempt(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    kind: Kind,
    reason: &str,
) -> Result<Exemption> {
    let now = ctx.clock.now()?;
    store.write(|tx| {
        let old = tx.exemption(email.as_str())?;
        let e = Exemption {
            email: email.as_str().to_string(),
            kind,
            reason: reason.to_string(),
            created_at: now,
            created_by: ctx.actor.clone(),
            used_at: None,
            sealed_at: Some(now),
        };
        tx.put_exemption(&e)?;
        let detail = match old {
            Some(o) => format!(
                "{} (was {}); reason: {reason}",
                kind.as_str(),
                o.kind.as_str()
            ),
            None => format!("{}; reason: {reason}", kind.as_str()),
        };
        tx.append_audit(ctx.record(now, Action::Exempt, Some(email), Outcome::Ok, detail))?;
        Ok(e)
    })
}

fn no_exemption(email: &Email) -> Error {
    Error::new(
        crate::ErrorKind::NotEnrolled,
        format!("no exemption for {email}"),
    )
}

/// Remove an exemption; exit 3 when there is none.
pub fn unexempt(store: &mut Store, ctx: &Ctx<'_>, email: &Email) -> Result<Exemption> {
    let now = ctx.clock.now()?;
    store.decide(|tx| {
        let Some(old) = tx.exemption(email.as_str())? else {
            return Ok(Verdict::Refused(no_exemption(email)));
        };
        tx.delete_exemption(email.as_str())?;
        tx.append_audit(ctx.record(
            now,
            Action::Unexempt,
            Some(email),
            Outcome::Ok,
            format!("was {}", old.kind.as_str()),
        ))?;
        Ok(Verdict::Done(old))
    })
}

/// Re-arm a used break-glass account (after its password was rotated).
pub fn seal(store: &mut Store, ctx: &Ctx<'_>, email: &Email) -> Result<Exemption> {
    let now = ctx.clock.now()?;
    store.decide(|tx| {
        let Some(old) = tx.exemption(email.as_str())? else {
            return Ok(Verdict::Refused(no_exemption(email)));
        };
        if old.kind != Kind::BreakGlass {
            return Ok(Verdict::Refused(Error::conflict(format!(
                "{email} is a {} exemption, not a break-glass account: nothing to seal",
                old.kind.as_str()
            ))));
        }
        tx.reseal(email.as_str(), now)?;
        let detail = match old.used_at {
            Some(t) => format!("re-sealed; it was used since {}", rfc3339(t)),
            None => "re-sealed; it was not used".to_string(),
        };
        tx.append_audit(ctx.record(now, Action::Seal, Some(email), Outcome::Ok, detail))?;
        Ok(Verdict::Done(tx.exemption(email.as_str())?.unwrap_or(old)))
    })
}

pub fn exemptions(store: &mut Store) -> Result<Vec<Exemption>> {
    store.read(|tx| tx.exemptions())
}

/// Warnings about the policy as a whole, for `show`.
pub fn warnings(p: &Policy, exemptions: &[Exemption]) -> Vec<String> {
    let mut out = Vec::new();
    let break_glass: Vec<&Exemption> = exemptions
        .iter()
        .filter(|e| e.kind == Kind::BreakGlass)
        .collect();
    if p.require_all && break_glass.is_empty() {
        out.push("2FA is required for all but there is no break-glass account: if 2FA breaks, nobody can log in; add one with: mb-2fa-policy exempt --email E --kind break-glass --reason TEXT".to_string());
    }
    if p.require_all && break_glass.len() > 1 {
        out.push(format!(
            "{} break-glass accounts exist: keep exactly one, documented and sealed",
            break_glass.len()
        ));
    }
    for e in break_glass.iter().filter(|e| e.used_at.is_some()) {
        out.push(format!(
            "break-glass account {} was used since {}: rotate its password, then mb-2fa-policy seal --email {}",
            e.email,
            e.used_at.map_or_else(String::new, rfc3339),
            e.email
        ));
    }
    out
}

/// The outcome of a login check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub decision: Decision,
    pub enrolled: Option<State>,
    pub exemption: Option<Kind>,
}

/// The login decision for `email` with `roles`, recorded where it matters:
/// the first sighting (grace start), every break-glass use (alert-level audit
/// and the "used" mark), and every denial.
pub fn check(store: &mut Store, ctx: &Ctx<'_>, email: &Email, roles: &[String]) -> Result<Checked> {
    check_recorded(store, ctx, email, roles, false)
}

/// [`check`] for a login that the decision ends (a PAM login): every
/// decision but `code` is recorded, so the audit trail has one row for
/// every login, however it was let in. (A `code` decision is recorded by the
/// verification that follows it.)
pub fn check_login(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    roles: &[String],
) -> Result<Checked> {
    check_recorded(store, ctx, email, roles, true)
}

fn check_recorded(
    store: &mut Store,
    ctx: &Ctx<'_>,
    email: &Email,
    roles: &[String],
    every: bool,
) -> Result<Checked> {
    let now = ctx.clock.now()?;
    store.write(|tx| {
        let p = load(tx)?;
        let enrolled = tx.enrollment(email.as_str())?.map(|r| r.state);
        let exemption = tx.exemption(email.as_str())?.map(|e| e.kind);
        let first_seen = tx.first_seen(email.as_str(), now)?;
        let decision = decide(
            &p,
            &Facts {
                enrolled,
                exemption,
                roles,
                first_seen,
            },
            now,
        );
        let roles_text = if roles.is_empty() { "-".to_string() } else { roles.join(",") };
        match &decision {
            Decision::Allow { .. } if exemption == Some(Kind::BreakGlass) => {
                tx.mark_used(email.as_str(), now)?;
                tx.append_audit(ctx.record(
                    now,
                    Action::Check,
                    Some(email),
                    Outcome::BreakGlass,
                    format!("break-glass login allowed; roles {roles_text}; seal it again after rotating its password"),
                ))?;
            }
            Decision::Deny { reason } => {
                tx.append_audit(ctx.record(
                    now,
                    Action::Check,
                    Some(email),
                    Outcome::Denied,
                    format!("{reason}; roles {roles_text}"),
                ))?;
            }
            Decision::Setup { deadline, .. } if first_seen == now || every => {
                let what = if first_seen == now {
                    "grace period started"
                } else {
                    "let in without a code during the grace period"
                };
                tx.append_audit(ctx.record(
                    now,
                    Action::Check,
                    Some(email),
                    Outcome::Setup,
                    format!("{what}; enroll by {}", rfc3339(*deadline)),
                ))?;
            }
            Decision::Allow { reason } if every => {
                tx.append_audit(ctx.record(
                    now,
                    Action::Check,
                    Some(email),
                    Outcome::Allowed,
                    format!("let in without a code: {reason}; roles {roles_text}"),
                ))?;
            }
            _ => {}
        }
        Ok(Checked {
            decision,
            enrolled,
            exemption,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn policy(on: bool) -> Policy {
        Policy {
            require_all: on,
            since: on.then_some(NOW - 30 * DAY),
            ..Policy::default()
        }
    }

    /// The whole matrix: policy × enrollment × exemption × role × grace.
    #[test]
    fn decision_matrix() {
        let admin = vec!["super-admin".to_string()];
        let plain = vec!["user".to_string()];
        let mut rows = 0;
        for on in [false, true] {
            for enrolled in [None, Some(State::Pending), Some(State::Active)] {
                for exemption in [None, Some(Kind::Service), Some(Kind::BreakGlass)] {
                    for mandatory in [false, true] {
                        for grace_inside in [true, false] {
                            let roles = if mandatory { &admin } else { &plain };
                            let first_seen = if grace_inside {
                                NOW - DAY
                            } else {
                                NOW - 8 * DAY
                            };
                            let f = Facts {
                                enrolled,
                                exemption,
                                roles,
                                first_seen,
                            };
                            let got = decide(&policy(on), &f, NOW);
                            let want = match (exemption, enrolled, on, mandatory, grace_inside) {
                                (Some(_), ..) => "allow",
                                (None, Some(_), ..) => "code",
                                (None, None, false, ..) => "allow",
                                (None, None, true, true, _) => "deny",
                                (None, None, true, false, true) => "setup",
                                (None, None, true, false, false) => "deny",
                            };
                            assert_eq!(
                                got.as_str(),
                                want,
                                "on={on} enrolled={enrolled:?} exemption={exemption:?} mandatory={mandatory} inside={grace_inside}: {got:?}"
                            );
                            let code = match want {
                                "code" => 0,
                                "deny" => 7,
                                _ => 6,
                            };
                            assert_eq!(got.exit_code(), code);
                            rows += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(rows, 72);
    }

    #[test]
    fn grace_starts_at_the_later_of_switch_on_and_first_sighting() {
        let plain = vec![];
        // Seen long before the policy was switched on: grace runs from the switch.
        let p = Policy {
            require_all: true,
            since: Some(NOW - DAY),
            ..Policy::default()
        };
        let f = Facts {
            enrolled: None,
            exemption: None,
            roles: &plain,
            first_seen: NOW - 100 * DAY,
        };
        assert_eq!(
            decide(&p, &f, NOW),
            Decision::Setup {
                deadline: NOW + 6 * DAY,
                grace_days_left: 6
            }
        );
        // Tightening the grace to 0 days turns setup into deny at once.
        let p0 = Policy {
            grace_days: 0,
            ..p.clone()
        };
        assert_eq!(decide(&p0, &f, NOW).as_str(), "deny");
        // Seen after the switch: grace runs from the sighting.
        let f = Facts {
            first_seen: NOW - 2 * 3600,
            ..f
        };
        assert_eq!(
            decide(&p, &f, NOW),
            Decision::Setup {
                deadline: NOW - 2 * 3600 + 7 * DAY,
                grace_days_left: 7
            }
        );
    }

    #[test]
    fn roles_and_reasons_are_validated() {
        assert_eq!(parse_role(" Super-Admin "), Ok("super-admin".to_string()));
        for bad in ["", "a b", "x;y", &"r".repeat(65)] {
            assert_eq!(parse_role(bad).map_err(|e| e.exit_code()), Err(2), "{bad}");
        }
        assert_eq!(
            parse_reason(" monitoring probe "),
            Ok("monitoring probe".to_string())
        );
        for bad in [
            "",
            "  ",
            "two\nlines",
            &"r".repeat(201),
            "two\u{2028}lines",
            "rtl\u{202e}txt",
            "in\u{200b}visible",
            "a\u{9b}31m",
        ] {
            assert_eq!(
                parse_reason(bad).map_err(|e| e.exit_code()),
                Err(2),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn warnings_about_break_glass() {
        let e = |email: &str, kind: &str, used: Option<i64>| Exemption {
            email: email.into(),
            kind: Kind::parse(kind).expect("kind"),
            reason: "r".into(),
            created_at: 0,
            created_by: "me".into(),
            used_at: used,
            sealed_at: Some(0),
        };
        assert_eq!(warnings(&policy(false), &[]).len(), 0);
        assert!(warnings(&policy(true), &[])[0].contains("no break-glass account"));
        let two = [e("a@x", "break-glass", None), e("b@x", "break-glass", None)];
        assert!(warnings(&policy(true), &two)[0].contains("2 break-glass accounts"));
        let used = [e("a@x", "break-glass", Some(5)), e("s@x", "service", None)];
        let w = warnings(&policy(true), &used);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("seal --email a@x"));
    }
}
