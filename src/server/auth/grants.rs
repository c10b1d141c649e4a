//! Grants: what one sign-in of one user for one client allows, and the
//! tokens that descend from it. Access tokens are rows of `tokens` (with
//! the grant and the scope noted); refresh tokens rotate: each refresh
//! spends the token presented and hands out a new one, and a spent token
//! presented again revokes the whole grant, every refresh and access token
//! of it (RFC 9700 §4.14.2: one of the two presenters stole it).
//!
//! Except shortly after it was spent, for the token spent last: the
//! answer to that refresh may have been lost on the way, or two copies of
//! one client (two terminals sharing a kept sign-in) refreshed at once.
//! Revoking then would sign a clinician out for a network hiccup; within
//! the grace period the token buys another pair in the same grant.

use rusqlite::{Connection, OptionalExtension, params};

use super::super::users::{self, User, fresh_token, token_hash};
use super::{OAuthError, scope};

/// Lifetimes, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Ttls {
    pub access_ms: i64,
    pub refresh_ms: i64,
    /// How long after it was spent the last spent refresh token of a grant
    /// still buys a pair.
    pub reuse_grace_ms: i64,
}

impl Ttls {
    pub fn of(options: &super::super::options::Options) -> Ttls {
        let ms = |d: std::time::Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Ttls {
            access_ms: ms(options.access_ttl),
            refresh_ms: ms(options.refresh_ttl),
            reuse_grace_ms: ms(options.refresh_reuse_grace),
        }
    }
}

/// Tokens handed out.
pub struct Issued {
    pub user: User,
    pub grant: i64,
    pub access: String,
    pub access_ms: i64,
    pub refresh: Option<String>,
    pub scope: String,
}

/// A new grant.
pub fn create(
    conn: &Connection,
    user_id: i64,
    client_id: &str,
    scope: &str,
    now: i64,
) -> rusqlite::Result<i64> {
    // Refresh tokens a month past their expiry are of no use, even to
    // recognise a reuse.
    conn.execute(
        "DELETE FROM auth_refresh WHERE expires < ?1",
        params![now - 30 * 86_400_000],
    )?;
    conn.execute(
        "INSERT INTO auth_grants (user_id, client_id, scope, created) VALUES (?1, ?2, ?3, ?4)",
        params![user_id, client_id, scope, now],
    )?;
    Ok(conn.last_insert_rowid())
}

/// An access token (and a refresh token when the scope asks for one) of
/// a grant.
pub fn issue(
    conn: &Connection,
    user: User,
    grant: i64,
    scope: &str,
    ttls: Ttls,
    now: i64,
) -> anyhow::Result<Issued> {
    let access = fresh_token()?;
    conn.execute(
        "INSERT INTO tokens (hash, user_id, issued, expires, revoked, label, grant_id, scope)
         VALUES (?1, ?2, ?3, ?4, NULL, 'oauth', ?5, ?6)",
        params![
            token_hash(&access).as_slice(),
            user.id,
            now,
            now.saturating_add(ttls.access_ms),
            grant,
            scope
        ],
    )?;
    let refresh = if scope::refreshable(scope) {
        let r = fresh_token()?;
        conn.execute(
            "INSERT INTO auth_refresh (hash, grant_id, issued, expires) VALUES (?1, ?2, ?3, ?4)",
            params![
                token_hash(&r).as_slice(),
                grant,
                now,
                now.saturating_add(ttls.refresh_ms)
            ],
        )?;
        Some(r)
    } else {
        None
    };
    Ok(Issued {
        user,
        grant,
        access,
        access_ms: ttls.access_ms,
        refresh,
        scope: scope.to_string(),
    })
}

/// Revokes a grant and every token of it; returns the access tokens
/// that were still live.
pub fn revoke(conn: &Connection, grant: i64, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE auth_grants SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
        params![grant, now],
    )?;
    conn.execute(
        "UPDATE auth_refresh SET spent = ?2 WHERE grant_id = ?1 AND spent IS NULL",
        params![grant, now],
    )?;
    conn.execute(
        "UPDATE tokens SET revoked = ?2 WHERE grant_id = ?1 AND revoked IS NULL",
        params![grant, now],
    )
}

/// What a refresh did.
pub enum Refreshed {
    Issued(Issued),
    /// The token spent last, again within the grace period: a new pair,
    /// the grant kept.
    Retried(Issued),
    /// Refused; the user (if the token named one) and why, for the record.
    Refused(OAuthError, Option<User>),
    /// A spent token again: the grant is revoked.
    Reused {
        user: User,
        grant: i64,
    },
}

struct Found {
    grant: i64,
    client_id: String,
    scope: String,
    user_id: i64,
    issued: i64,
    expires: i64,
    spent: Option<i64>,
    grant_revoked: bool,
}

fn find(conn: &Connection, token: &str) -> rusqlite::Result<Option<Found>> {
    conn.query_row(
        "SELECT g.id, g.client_id, g.scope, g.user_id, r.issued, r.expires, r.spent,
                g.revoked IS NOT NULL
         FROM auth_refresh r JOIN auth_grants g ON g.id = r.grant_id WHERE r.hash = ?1",
        params![token_hash(token).as_slice()],
        |r| {
            Ok(Found {
                grant: r.get(0)?,
                client_id: r.get(1)?,
                scope: r.get(2)?,
                user_id: r.get(3)?,
                issued: r.get(4)?,
                expires: r.get(5)?,
                spent: r.get(6)?,
                grant_revoked: r.get(7)?,
            })
        },
    )
    .optional()
}

/// Spends a refresh token for new tokens.
pub fn refresh(
    conn: &Connection,
    token: &str,
    client_id: &str,
    ttls: Ttls,
    now: i64,
) -> anyhow::Result<Refreshed> {
    let invalid = |why: &str| OAuthError::new("invalid_grant", why);
    let Some(f) = find(conn, token)? else {
        return Ok(Refreshed::Refused(invalid("unknown refresh token"), None));
    };
    let Some(account) = users::account_by_id(conn, f.user_id)? else {
        return Ok(Refreshed::Refused(invalid("unknown refresh token"), None));
    };
    let user = account.user;
    if f.grant_revoked {
        return Ok(Refreshed::Refused(
            invalid("the refresh token was revoked"),
            Some(user),
        ));
    }
    let retry = match f.spent {
        None => false,
        Some(spent) if now - spent < ttls.reuse_grace_ms && spent_last(conn, &f)? => true,
        Some(_) => {
            revoke(conn, f.grant, now)?;
            return Ok(Refreshed::Reused {
                user,
                grant: f.grant,
            });
        }
    };
    if f.client_id != client_id {
        return Ok(Refreshed::Refused(
            invalid("the refresh token was issued to another client"),
            Some(user),
        ));
    }
    if f.expires <= now {
        return Ok(Refreshed::Refused(
            invalid("the refresh token has expired; sign in again"),
            Some(user),
        ));
    }
    if account.disabled {
        return Ok(Refreshed::Refused(
            invalid("this user is disabled"),
            Some(user),
        ));
    }
    if retry {
        // Spent already; the pair it bought stays good too (its holder may
        // be the other copy of the client).
        return Ok(Refreshed::Retried(issue(
            conn, user, f.grant, &f.scope, ttls, now,
        )?));
    }
    conn.execute(
        "UPDATE auth_refresh SET spent = ?2 WHERE hash = ?1",
        params![token_hash(token).as_slice(), now],
    )?;
    Ok(Refreshed::Issued(issue(
        conn, user, f.grant, &f.scope, ttls, now,
    )?))
}

/// Whether `f` is the newest of its grant's spent refresh tokens: an
/// older one presented again is not a lost answer but a copy.
fn spent_last(conn: &Connection, f: &Found) -> rusqlite::Result<bool> {
    let newer: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM auth_refresh
                        WHERE grant_id = ?1 AND spent IS NOT NULL AND issued > ?2)",
        params![f.grant, f.issued],
        |r| r.get(0),
    )?;
    Ok(!newer)
}

/// What revoking a token did: the user it belonged to and what went.
pub fn revoke_token(
    conn: &Connection,
    token: &str,
    now: i64,
) -> anyhow::Result<Option<(User, String)>> {
    if let Some(f) = find(conn, token)? {
        let tokens = revoke(conn, f.grant, now)?;
        let user = users::account_by_id(conn, f.user_id)?.map(|a| a.user);
        return Ok(user.map(|u| {
            (
                u,
                format!("a refresh token: its grant and {tokens} live access tokens"),
            )
        }));
    }
    let hash = token_hash(token);
    let user_id: Option<i64> = conn
        .query_row(
            "SELECT user_id FROM tokens WHERE hash = ?1",
            params![hash.as_slice()],
            |r| r.get(0),
        )
        .optional()?;
    let Some(user_id) = user_id else {
        return Ok(None);
    };
    conn.execute(
        "UPDATE tokens SET revoked = ?2 WHERE hash = ?1 AND revoked IS NULL",
        params![hash.as_slice(), now],
    )?;
    let user = users::account_by_id(conn, user_id)?.map(|a| a.user);
    Ok(user.map(|u| (u, "an access token".to_string())))
}
