//! Authorization codes: random, kept as SHA-256, good for 60 seconds and
//! one exchange, bound to the client, the redirect URI, the PKCE challenge,
//! the user and the scope. The grant an exchange made is noted on the
//! code, so that a second exchange can revoke it (RFC 6749 §4.1.2: a code
//! used twice was stolen).

use rusqlite::{Connection, OptionalExtension, params};

use super::super::users::{fresh_token, token_hash};

pub const LIFETIME_MS: i64 = 60_000;

/// What a code was issued for.
pub struct Code {
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub user_id: i64,
    pub scope: String,
    pub expires: i64,
    /// When it was exchanged before, and the grant that made.
    pub used: Option<(i64, Option<i64>)>,
}

/// A new code for a signed-in user.
pub fn create(
    conn: &Connection,
    client_id: &str,
    redirect_uri: &str,
    challenge: &str,
    user_id: i64,
    scope: &str,
    now: i64,
) -> anyhow::Result<String> {
    // Codes nobody exchanged are of no use to keep.
    conn.execute(
        "DELETE FROM auth_codes WHERE expires < ?1",
        params![now - 86_400_000],
    )?;
    let code = fresh_token()?;
    conn.execute(
        "INSERT INTO auth_codes (hash, client_id, redirect_uri, challenge, user_id, scope, expires)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            token_hash(&code).as_slice(),
            client_id,
            redirect_uri,
            challenge,
            user_id,
            scope,
            now + LIFETIME_MS
        ],
    )?;
    Ok(code)
}

/// The code, marked used from now on (whatever the exchange then decides:
/// a code is presented once).
pub fn take(conn: &Connection, code: &str, now: i64) -> rusqlite::Result<Option<Code>> {
    let hash = token_hash(code);
    let found = conn
        .query_row(
            "SELECT client_id, redirect_uri, challenge, user_id, scope, expires, used, grant_id
             FROM auth_codes WHERE hash = ?1",
            params![hash.as_slice()],
            |r| {
                let used: Option<i64> = r.get(6)?;
                let grant: Option<i64> = r.get(7)?;
                Ok(Code {
                    client_id: r.get(0)?,
                    redirect_uri: r.get(1)?,
                    challenge: r.get(2)?,
                    user_id: r.get(3)?,
                    scope: r.get(4)?,
                    expires: r.get(5)?,
                    used: used.map(|u| (u, grant)),
                })
            },
        )
        .optional()?;
    if found.as_ref().is_some_and(|c| c.used.is_none()) {
        conn.execute(
            "UPDATE auth_codes SET used = ?2 WHERE hash = ?1",
            params![hash.as_slice(), now],
        )?;
    }
    Ok(found)
}

/// Notes the grant the code's exchange made.
pub fn made_grant(conn: &Connection, code: &str, grant: i64) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE auth_codes SET grant_id = ?2 WHERE hash = ?1",
        params![token_hash(code).as_slice(), grant],
    )?;
    Ok(())
}
