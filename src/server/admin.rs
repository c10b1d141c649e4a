//! What `chartty serve audit|token|user` does to a database, each change
//! recorded in the audit trail (source `cli`, the operating-system user)
//! in the same transaction.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rusqlite::Connection;

use crate::roles::Role;

use super::audit::{self, Event};
use super::store;
use super::users;

fn open(db: &Path) -> anyhow::Result<Connection> {
    anyhow::ensure!(
        db.exists(),
        "{} does not exist (chartty serve creates it)",
        db.display()
    );
    let conn = store::connect(db)?;
    store::migrate(&conn)?;
    Ok(conn)
}

/// The record of an administrative action.
fn event(action: &str, detail: String) -> Event {
    let os_user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok();
    Event {
        at: store::now_ms(),
        request: "cli".into(),
        source: Some("cli".into()),
        user: os_user.clone(),
        name: os_user.map(|u| format!("{u} (operating-system user)")),
        action: action.into(),
        status: 200,
        detail: Some(detail),
        ..Event::default()
    }
}

/// Runs `f` in a transaction and records `action` with what it returns.
fn audited<T>(
    conn: &mut Connection,
    action: &str,
    f: impl FnOnce(&Connection) -> anyhow::Result<(T, String)>,
) -> anyhow::Result<T> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let (out, detail) = f(&tx)?;
    audit::append(&tx, &[event(action, detail)])?;
    tx.commit()?;
    Ok(out)
}

/// `audit verify`: the chain in the database, and the archives before it.
pub fn verify(db: &Path, archives: &[PathBuf]) -> anyhow::Result<audit::Verdict> {
    let conn = open(db)?;
    if archives.is_empty() {
        Ok(audit::verify(&conn)?)
    } else {
        audit::verify_with_archives(&conn, archives)
    }
}

/// `audit archive`: records before `before` (a FHIR date or dateTime) to `out`.
pub fn archive(db: &Path, before: &str, out: &Path) -> anyhow::Result<audit::Archived> {
    let (at, _) = crate::fhir::time::range_ms(before)
        .with_context(|| format!("{before:?} is not a date (YYYY-MM-DD or a dateTime)"))?;
    let mut conn = open(db)?;
    let done = audit::archive(&mut conn, at, out)?;
    if done.records > 0 {
        audited(&mut conn, "audit-archive", |_| {
            Ok((
                (),
                format!(
                    "records {} to {} moved to {}",
                    done.first,
                    done.last,
                    out.display()
                ),
            ))
        })?;
    }
    Ok(done)
}

/// `token revoke`.
pub fn revoke(db: &Path, token_or_login: &str) -> anyhow::Result<users::Revoked> {
    let mut conn = open(db)?;
    audited(&mut conn, "token-revoke", |c| {
        let r = users::revoke(c, token_or_login, store::now_ms())?;
        let detail = match &r {
            users::Revoked::Token { login } => format!("one token of {login}"),
            users::Revoked::User { login, tokens } => format!("{tokens} tokens of {login}"),
            users::Revoked::Nothing => "no such token or user".to_string(),
        };
        Ok((r, detail))
    })
}

/// `token issue`: a new token for `login`, valid `hours`.
pub fn issue(db: &Path, login: &str, hours: u64) -> anyhow::Result<String> {
    let mut conn = open(db)?;
    audited(&mut conn, "token-issue", |c| {
        let user = users::find(c, login)?.with_context(|| format!("no user {login:?}"))?;
        let ttl = std::time::Duration::from_secs(hours.saturating_mul(3600));
        let token = users::issue(c, user.id, ttl, "issued by chartty serve token issue")?;
        Ok((token, format!("a token for {login}, valid {hours} h")))
    })
}

/// `user add`.
pub fn add_user(
    db: &Path,
    login: &str,
    name: &str,
    role: Role,
    practitioner: Option<&str>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        !login.trim().is_empty() && login.chars().all(|c| c.is_ascii_graphic()),
        "a login is one word of printable ASCII"
    );
    let practitioner = practitioner.map(|p| {
        if p.starts_with("Practitioner/") {
            p.to_string()
        } else {
            format!("Practitioner/{p}")
        }
    });
    if let Some(p) = &practitioner {
        anyhow::ensure!(
            super::params::normalize_reference(p).as_deref() == Some(p.as_str()),
            "{p:?} is not a Practitioner reference"
        );
    }
    let mut conn = open(db)?;
    audited(&mut conn, "user-add", |c| {
        users::upsert(c, login, name, role, practitioner.as_deref())?;
        Ok(((), format!("{login} as {role}")))
    })
}

/// `user disable` / `user enable`.
pub fn set_disabled(db: &Path, login: &str, disabled: bool) -> anyhow::Result<bool> {
    let mut conn = open(db)?;
    let action = if disabled {
        "user-disable"
    } else {
        "user-enable"
    };
    audited(&mut conn, action, |c| {
        Ok((users::set_disabled(c, login, disabled)?, login.to_string()))
    })
}

/// `user password`: sets a user's password (hashed at the default cost).
pub fn set_password(db: &Path, login: &str, password: &str) -> anyhow::Result<()> {
    super::auth::password::acceptable(password)?;
    let phc = super::auth::password::hash(password, super::auth::password::Cost::default())?;
    let mut conn = open(db)?;
    audited(&mut conn, "user-password", |c| {
        anyhow::ensure!(
            users::set_password(c, login, Some(&phc))?,
            "no user {login:?}"
        );
        Ok(((), format!("password of {login} set")))
    })
}

/// `user totp`: turns TOTP on (a new secret, returned) or off.
pub fn set_totp(db: &Path, login: &str, on: bool) -> anyhow::Result<Option<Vec<u8>>> {
    let secret = if on {
        Some(super::auth::totp::new_secret()?)
    } else {
        None
    };
    let mut conn = open(db)?;
    let action = if on { "user-totp-on" } else { "user-totp-off" };
    audited(&mut conn, action, |c| {
        anyhow::ensure!(
            users::set_totp(c, login, secret.as_deref())?,
            "no user {login:?}"
        );
        Ok((secret.clone(), login.to_string()))
    })
}

/// `user list`.
pub fn list_users(db: &Path) -> anyhow::Result<Vec<(users::User, bool, i64)>> {
    let conn = open(db)?;
    Ok(users::list(&conn, store::now_ms())?)
}
