//! The module's options, from its line in the PAM service file, and the map
//! from PAM users to 2FA accounts.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the tools are when `bindir=` is not given.
pub const DEFAULT_BINDIR: &str = "/usr/sbin";
/// What the user is asked when `prompt=` is not given.
pub const DEFAULT_PROMPT: &str = "Verification code: ";
/// How long the tool may take to answer, each time it is asked.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest map file read.
const MAX_MAP_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// `account=TEMPLATE`: `%u` is the PAM user.
    Template(String),
    /// `map=FILE`: lines `user email`.
    Map(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub account: Account,
    pub prompt: String,
    pub config: Option<PathBuf>,
    pub bindir: PathBuf,
    pub timeout: Duration,
    pub roles: Vec<String>,
    pub debug: bool,
}

/// Parse the module's arguments. Anything unknown or malformed is an error
/// (the login then fails closed, and the reason goes to syslog).
pub fn parse(args: &[String]) -> Result<Options, String> {
    let mut account = None;
    let mut prompt = None;
    let mut config = None;
    let mut bindir = None;
    let mut timeout = None;
    let mut roles = Vec::new();
    let mut debug = false;
    for arg in args {
        let (key, value) = match arg.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (arg.as_str(), None),
        };
        let need = |v: Option<&str>| -> Result<String, String> {
            match v {
                Some(v) if !v.is_empty() => Ok(v.to_string()),
                _ => Err(format!("option {key}= needs a value")),
            }
        };
        let once = |seen: bool| -> Result<(), String> {
            if seen {
                Err(format!("option {key}= given twice"))
            } else {
                Ok(())
            }
        };
        match key {
            "account" => {
                once(account.is_some())?;
                let t = need(value)?;
                check_template(&t)?;
                account = Some(Account::Template(t));
            }
            "map" => {
                once(account.is_some())?;
                account = Some(Account::Map(absolute(key, &need(value)?)?));
            }
            "prompt" => {
                once(prompt.is_some())?;
                prompt = Some(need(value)?);
            }
            "config" => {
                once(config.is_some())?;
                config = Some(absolute(key, &need(value)?)?);
            }
            "bindir" => {
                once(bindir.is_some())?;
                bindir = Some(absolute(key, &need(value)?)?);
            }
            "timeout" => {
                once(timeout.is_some())?;
                let secs: u64 = need(value)?
                    .parse()
                    .ok()
                    .filter(|s| (1..=120).contains(s))
                    .ok_or("option timeout= takes whole seconds from 1 to 120")?;
                timeout = Some(Duration::from_secs(secs));
            }
            "role" => {
                let r = need(value)?;
                if !r
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                {
                    return Err("option role= takes letters, digits, -, _ and .".to_string());
                }
                roles.push(r);
            }
            "debug" if value.is_none() => debug = true,
            _ => {
                return Err(format!("unknown option {:?}", crate::printable(arg, 40)));
            }
        }
    }
    let account =
        account.ok_or("give account=TEMPLATE (e.g. account=%u@example.com) or map=FILE")?;
    Ok(Options {
        account,
        prompt: prompt.unwrap_or_else(|| DEFAULT_PROMPT.to_string()),
        config,
        bindir: bindir.unwrap_or_else(|| PathBuf::from(DEFAULT_BINDIR)),
        timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        roles,
        debug,
    })
}

fn absolute(key: &str, value: &str) -> Result<PathBuf, String> {
    let p = PathBuf::from(value);
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(format!("option {key}= takes an absolute path"))
    }
}

/// `%u` stands for the PAM user; `%%` for `%`; any other `%` is refused.
fn check_template(t: &str) -> Result<(), String> {
    let mut chars = t.chars();
    let mut has_user = false;
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('u') => has_user = true,
                Some('%') => {}
                _ => return Err("option account= knows only %u (the PAM user) and %%".to_string()),
            }
        }
    }
    if has_user {
        Ok(())
    } else {
        Err("option account= must contain %u (the PAM user)".to_string())
    }
}

/// A PAM user as it may go into an account name: what useradd, LDAP and
/// SSSD make (letters, digits, `.`, `_`, `-`, `@`, a trailing `$`), at most
/// 64 bytes, not starting with `-`.
pub fn plain_user(user: &str) -> bool {
    let body = user.strip_suffix('$').unwrap_or(user);
    !body.is_empty()
        && user.len() <= 64
        && !body.starts_with('-')
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
}

/// The 2FA account of `user` by the template.
pub fn from_template(template: &str, user: &str) -> String {
    let mut out = String::with_capacity(template.len() + user.len());
    let mut chars = template.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next() {
                Some('u') => out.push_str(user),
                Some('%') => out.push('%'),
                _ => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The 2FA account of `user` in the map file: `Ok(None)` when the file does
/// not list the user. The file must be a regular file owned by root and
/// writable by no one else (whoever can write it chooses whose code a login
/// asks for); a malformed line makes the whole file an error.
pub fn from_map(path: &Path, user: &str) -> Result<Option<String>, String> {
    let shown = path.display();
    let meta = fs::symlink_metadata(path).map_err(|e| format!("map file {shown}: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!("map file {shown} is not a regular file"));
    }
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "map file {shown} must be owned by root and writable only by root"
        ));
    }
    if meta.len() > MAX_MAP_BYTES {
        return Err(format!("map file {shown} is larger than 1 MiB"));
    }
    let text = fs::read_to_string(path).map_err(|e| format!("map file {shown}: {e}"))?;
    let mut found = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(u), Some(email), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(format!(
                "map file {shown} line {}: expected \"user email\"",
                i + 1
            ));
        };
        if !plain_user(u) || email.chars().any(|c| c.is_control()) {
            return Err(format!(
                "map file {shown} line {}: not a user name and an email",
                i + 1
            ));
        }
        if u == user {
            if found.is_some() {
                return Err(format!(
                    "map file {shown} line {}: user listed twice",
                    i + 1
                ));
            }
            found = Some(email.to_string());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_and_every_option() {
        let o = parse(&args(&["account=%u@example.com"])).unwrap();
        assert_eq!(o.account, Account::Template("%u@example.com".into()));
        assert_eq!(o.prompt, DEFAULT_PROMPT);
        assert_eq!(o.bindir, PathBuf::from("/usr/sbin"));
        assert_eq!(o.timeout, DEFAULT_TIMEOUT);
        assert!(!o.debug && o.config.is_none() && o.roles.is_empty());
        let o = parse(&args(&[
            "map=/etc/mailborder/2fa-users",
            "prompt=Code please: ",
            "config=/etc/mailborder/other.toml",
            "bindir=/opt/mb/sbin",
            "timeout=5",
            "role=super-admin",
            "role=ops",
            "debug",
        ]))
        .unwrap();
        assert_eq!(o.account, Account::Map("/etc/mailborder/2fa-users".into()));
        assert_eq!(o.prompt, "Code please: ");
        assert_eq!(o.config, Some("/etc/mailborder/other.toml".into()));
        assert_eq!(o.bindir, PathBuf::from("/opt/mb/sbin"));
        assert_eq!(o.timeout, Duration::from_secs(5));
        assert_eq!(o.roles, vec!["super-admin", "ops"]);
        assert!(o.debug);
    }

    #[test]
    fn bad_options_are_errors() {
        for bad in [
            &[][..],
            &["account=%u@example.com", "map=/etc/m"],
            &["account=alice@example.com"],
            &["account=%s@example.com"],
            &["account=%u@x", "bindir=usr/sbin"],
            &["account=%u@x", "timeout=0"],
            &["account=%u@x", "timeout=soon"],
            &["account=%u@x", "role=a b"],
            &["account=%u@x", "nullok"],
            &["account=%u@x", "debug=1"],
            &["account=%u@x", "prompt="],
        ] {
            assert!(parse(&args(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn templates() {
        assert_eq!(
            from_template("%u@example.com", "alice"),
            "alice@example.com"
        );
        assert_eq!(from_template("%u%%x@y", "bob"), "bob%x@y");
        assert!(plain_user("alice") && plain_user("svc$") && plain_user("a.b-c_d@corp"));
        for bad in ["", "-x", "a b", "a/b", "a\nb", "ä", &"x".repeat(65)] {
            assert!(!plain_user(bad), "{bad:?}");
        }
    }
}
