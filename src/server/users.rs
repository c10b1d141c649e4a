//! The people who use the server, and the bearer tokens they hold.
//!
//! A user has a login, a display name, a role, the `Practitioner` they
//! are in the record, and a disabled flag; `issuer`/`subject` are kept
//! for SMART on FHIR sign-in (an OpenID Connect `iss` and `sub`), so that
//! a user signed in by an identity provider is the same row as the one
//! created here. A token is stored only as its SHA-256, with when it was
//! issued, when it expires and when it was revoked: the database never
//! holds a token that works.

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};

use crate::roles::Role;

use super::store;

/// A signed-in user, as the audit and the access rules see them.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub login: String,
    pub name: String,
    pub role: Role,
    /// `Practitioner/<id>` of this person, if they are one.
    pub practitioner: Option<String>,
    /// What the token this user signed in with allows, when it was issued
    /// with scopes (by signing in); `None`: the role decides alone.
    pub scopes: Option<super::auth::scope::Scopes>,
}

impl User {
    /// The reference the server writes as author, sender, signer: the
    /// practitioner, else the user's login as a display-only reference.
    pub fn reference(&self) -> serde_json::Value {
        match &self.practitioner {
            Some(p) => serde_json::json!({"reference": p, "display": self.name}),
            None => serde_json::json!({"display": self.name}),
        }
    }
}

/// SHA-256 of a token, as stored.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 32 bytes from the operating system's RNG, hex encoded.
pub fn fresh_token() -> anyhow::Result<String> {
    use rand::TryRng;
    let mut bytes = [0u8; 32];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(store::hex(&bytes))
}

/// Creates the user `login`, or updates its name, role and practitioner
/// (and enables it); returns its id.
pub fn upsert(
    conn: &Connection,
    login: &str,
    name: &str,
    role: Role,
    practitioner: Option<&str>,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO users (login, name, role, practitioner, disabled, created)
         VALUES (?1, ?2, ?3, ?4, 0, ?5)
         ON CONFLICT (login) DO UPDATE SET name = ?2, role = ?3, practitioner = ?4, disabled = 0",
        params![login, name, role.code(), practitioner, store::now_ms()],
    )?;
    conn.query_row(
        "SELECT id FROM users WHERE login = ?1",
        params![login],
        |r| r.get(0),
    )
}

/// Issues a new token for a user, valid for `ttl`; returns the token (the
/// only time it is seen).
pub fn issue(
    conn: &Connection,
    user: i64,
    ttl: std::time::Duration,
    label: &str,
) -> anyhow::Result<String> {
    let token = fresh_token()?;
    let now = store::now_ms();
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    conn.execute(
        "INSERT INTO tokens (hash, user_id, issued, expires, revoked, label)
         VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
        params![
            token_hash(&token).as_slice(),
            user,
            now,
            now.saturating_add(ttl_ms),
            label
        ],
    )?;
    Ok(token)
}

fn row_to_user(
    r: &rusqlite::Row<'_>,
) -> rusqlite::Result<(i64, String, String, String, Option<String>)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn user_of(
    (id, login, name, role, practitioner): (i64, String, String, String, Option<String>),
) -> Option<User> {
    Some(User {
        id,
        login,
        name,
        role: role.parse().ok()?,
        practitioner,
        scopes: None,
    })
}

/// Why a token does not sign anyone in (said to the client as is: it names
/// no user).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Unknown,
    Expired,
    Revoked,
    Disabled,
}

impl Refused {
    pub fn says(self) -> &'static str {
        match self {
            Refused::Unknown => "unknown token",
            Refused::Expired => "the token has expired; sign in again",
            Refused::Revoked => "the token was revoked",
            Refused::Disabled => "this user is disabled",
        }
    }
}

/// The user a token signs in, at `now`.
pub fn authenticate(
    conn: &Connection,
    token: &str,
    now: i64,
) -> rusqlite::Result<Result<User, Refused>> {
    let found = conn
        .prepare_cached(
            "SELECT u.id, u.login, u.name, u.role, u.practitioner, t.expires, t.revoked, u.disabled,
                    t.scope
             FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
        )?
        .query_row(params![token_hash(token).as_slice()], |r| {
            Ok((
                row_to_user(r)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, i64>(7)? != 0,
                r.get::<_, Option<String>>(8)?,
            ))
        })
        .optional()?;
    let Some((user, expires, revoked, disabled, scope)) = found else {
        return Ok(Err(Refused::Unknown));
    };
    Ok(if revoked.is_some() {
        Err(Refused::Revoked)
    } else if disabled {
        Err(Refused::Disabled)
    } else if expires <= now {
        Err(Refused::Expired)
    } else {
        user_of(user)
            .map(|u| User {
                scopes: scope.as_deref().map(super::auth::scope::Scopes::parse),
                ..u
            })
            .ok_or(Refused::Disabled)
    })
}

/// The login of the user a token was issued to, whatever its state (for
/// the audit record of a refused sign-in; never told to the client).
pub fn owner(conn: &Connection, token: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT u.login FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
    )?
    .query_row(params![token_hash(token).as_slice()], |r| r.get(0))
    .optional()
}

/// Forgets tokens that expired or were revoked more than `keep_ms` ago.
pub fn prune(conn: &Connection, now: i64, keep_ms: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "DELETE FROM tokens WHERE expires < ?1 OR revoked < ?1",
        params![now - keep_ms],
    )
}

/// Whether any enabled user exists (then the server asks for tokens).
pub fn any_enabled(conn: &Connection) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM users WHERE disabled = 0)",
        [],
        |r| r.get(0),
    )
}

/// What `revoke` did.
#[derive(Debug, PartialEq, Eq)]
pub enum Revoked {
    /// One token, of this user.
    Token {
        login: String,
    },
    /// Every live token of this user.
    User {
        login: String,
        tokens: usize,
    },
    Nothing,
}

/// Revokes a token (given as itself), or every live token of a user (given
/// by login).
pub fn revoke(conn: &Connection, token_or_login: &str, now: i64) -> rusqlite::Result<Revoked> {
    let hash = token_hash(token_or_login);
    let login: Option<String> = conn
        .query_row(
            "SELECT u.login FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.hash = ?1",
            params![hash.as_slice()],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(login) = login {
        conn.execute(
            "UPDATE tokens SET revoked = ?2 WHERE hash = ?1 AND revoked IS NULL",
            params![hash.as_slice(), now],
        )?;
        return Ok(Revoked::Token { login });
    }
    let user: Option<i64> = conn
        .query_row(
            "SELECT id FROM users WHERE login = ?1",
            params![token_or_login],
            |r| r.get(0),
        )
        .optional()?;
    let Some(user) = user else {
        return Ok(Revoked::Nothing);
    };
    let tokens = conn.execute(
        "UPDATE tokens SET revoked = ?2 WHERE user_id = ?1 AND revoked IS NULL",
        params![user, now],
    )?;
    Ok(Revoked::User {
        login: token_or_login.to_string(),
        tokens,
    })
}

/// Disables (or enables) a user: their tokens stop working at once.
pub fn set_disabled(conn: &Connection, login: &str, disabled: bool) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE users SET disabled = ?2 WHERE login = ?1",
        params![login, disabled as i64],
    )? > 0)
}

/// One line per user: login, role, name, practitioner, disabled, live tokens.
pub fn list(conn: &Connection, now: i64) -> rusqlite::Result<Vec<(User, bool, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT u.id, u.login, u.name, u.role, u.practitioner, u.disabled,
                (SELECT COUNT(*) FROM tokens t WHERE t.user_id = u.id AND t.revoked IS NULL AND t.expires > ?1)
         FROM users u ORDER BY u.login",
    )?;
    let rows = stmt.query_map(params![now], |r| {
        Ok((
            row_to_user(r)?,
            r.get::<_, i64>(5)? != 0,
            r.get::<_, i64>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (u, disabled, live) = row?;
        if let Some(u) = user_of(u) {
            out.push((u, disabled, live));
        }
    }
    Ok(out)
}

/// A fresh password for a demo user: 20 characters of an alphabet without
/// look-alikes (about 99 bits), in groups of five. Random, not derived from
/// the login: a demo server may listen beyond loopback.
fn demo_password() -> anyhow::Result<String> {
    use rand::TryRng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 20];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let mut out = String::with_capacity(23);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 5 == 0 {
            out.push('-');
        }
        // 256 % 31 = 8: the first 8 letters are a little likelier; at 20
        // characters that costs well under a bit.
        out.push(char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]));
    }
    Ok(out)
}

/// Creates (or refreshes) a user per staff member, each with a fresh token
/// valid for `ttl` and a fresh password; the login of a staff member is
/// its practitioner id.
pub fn start_staff(
    conn: &Connection,
    staff: Vec<super::demo::DemoStaff>,
    ttl: std::time::Duration,
) -> anyhow::Result<Vec<super::DemoUser>> {
    // Tokens of earlier starts are kept a month after they stop working
    // (the audit names their users; the table does not grow without end).
    prune(conn, store::now_ms(), 30 * 86_400_000)?;
    let mut out = Vec::with_capacity(staff.len());
    for s in staff {
        let practitioner = format!("Practitioner/{}", s.practitioner_id);
        let id = upsert(
            conn,
            &s.practitioner_id,
            &s.name,
            s.role,
            Some(&practitioner),
        )?;
        let token = issue(conn, id, ttl, "issued at start")?;
        let password = demo_password()?;
        let phc = super::auth::password::hash(&password, super::auth::password::Cost::GENERATED)?;
        set_password(conn, &s.practitioner_id, Some(&phc))?;
        out.push(super::DemoUser {
            role: s.role,
            login: s.practitioner_id,
            name: s.name,
            practitioner,
            token,
            password,
        });
    }
    Ok(out)
}

/// The demo's patient app: an intake service account (no practitioner, no
/// password: it only ever uses its token), with a fresh token.
pub fn start_intake(
    conn: &Connection,
    ttl: std::time::Duration,
) -> anyhow::Result<super::DemoUser> {
    const LOGIN: &str = "patient-app";
    let name = "Patient app (demo)";
    let id = upsert(conn, LOGIN, name, Role::Intake, None)?;
    let token = issue(conn, id, ttl, "issued at start")?;
    Ok(super::DemoUser {
        role: Role::Intake,
        login: LOGIN.into(),
        name: name.into(),
        practitioner: String::new(),
        token,
        password: String::new(),
    })
}

/// The user with this login.
pub fn find(conn: &Connection, login: &str) -> rusqlite::Result<Option<User>> {
    Ok(conn
        .query_row(
            "SELECT id, login, name, role, practitioner FROM users WHERE login = ?1",
            params![login],
            row_to_user,
        )
        .optional()?
        .and_then(user_of))
}

/// A user with what signing in checks: the disabled flag, the password
/// hash and the TOTP secret.
pub struct Account {
    pub user: User,
    pub disabled: bool,
    /// argon2id PHC string; none until one is set.
    pub password: Option<String>,
    pub totp_secret: Option<Vec<u8>>,
}

impl std::fmt::Debug for Account {
    // The hash and the secret stay out of any debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("user", &self.user)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

// Two fixed statements rather than one with a spliced clause: nothing
// built at run time reaches the SQL.
const ACCOUNT_BY_LOGIN: &str = "SELECT id, login, name, role, practitioner, disabled, password, totp_secret \
     FROM users WHERE login = ?1";
const ACCOUNT_BY_ID: &str = "SELECT id, login, name, role, practitioner, disabled, password, totp_secret \
     FROM users WHERE id = ?1";

type AccountRow = (
    (i64, String, String, String, Option<String>),
    bool,
    Option<String>,
    Option<Vec<u8>>,
);

fn account_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AccountRow> {
    Ok((
        row_to_user(r)?,
        r.get::<_, i64>(5)? != 0,
        r.get::<_, Option<String>>(6)?,
        r.get::<_, Option<Vec<u8>>>(7)?,
    ))
}

fn to_account(row: Option<AccountRow>) -> Option<Account> {
    row.and_then(|(u, disabled, password, totp_secret)| {
        Some(Account {
            user: user_of(u)?,
            disabled,
            password,
            totp_secret,
        })
    })
}

/// The account with this login.
pub fn account(conn: &Connection, login: &str) -> rusqlite::Result<Option<Account>> {
    let row = conn
        .prepare_cached(ACCOUNT_BY_LOGIN)?
        .query_row(params![login], account_row)
        .optional()?;
    Ok(to_account(row))
}

/// The account with this id.
pub fn account_by_id(conn: &Connection, id: i64) -> rusqlite::Result<Option<Account>> {
    let row = conn
        .prepare_cached(ACCOUNT_BY_ID)?
        .query_row(params![id], account_row)
        .optional()?;
    Ok(to_account(row))
}

/// The cost most stored password hashes have, for the work done on a
/// login without one (demo users' hashes are cheap, people's are not:
/// the unknown must look like the many).
pub fn usual_password_cost(
    conn: &Connection,
) -> rusqlite::Result<Option<super::auth::password::Cost>> {
    let mut stmt = conn.prepare_cached("SELECT password FROM users WHERE password IS NOT NULL")?;
    let hashes = stmt.query_map([], |r| r.get::<_, String>(0))?;
    let mut costs = Vec::new();
    for h in hashes {
        if let Some(c) = super::auth::password::Cost::of_phc(&h?) {
            costs.push(c);
        }
    }
    Ok(super::auth::password::Cost::usual(costs))
}

/// Sets (or, with `None`, removes) a user's password hash.
pub fn set_password(conn: &Connection, login: &str, phc: Option<&str>) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE users SET password = ?2 WHERE login = ?1",
        params![login, phc],
    )? > 0)
}

/// Sets (or, with `None`, removes) a user's TOTP secret; the record of
/// used codes starts again.
pub fn set_totp(conn: &Connection, login: &str, secret: Option<&[u8]>) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE users SET totp_secret = ?2, totp_last_step = NULL WHERE login = ?1",
        params![login, secret],
    )? > 0)
}

/// Marks a TOTP time step as used by this user; false when it (or a later
/// one) was used already.
pub fn claim_totp_step(conn: &Connection, id: i64, step: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "UPDATE users SET totp_last_step = ?2
         WHERE id = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
        params![id, step],
    )? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = store::connect(&dir.path().join("u.db")).unwrap();
        store::migrate(&conn).unwrap();
        (dir, conn)
    }

    #[test]
    fn tokens_sign_in_until_they_expire_or_are_revoked() {
        let (_dir, conn) = db();
        let id = upsert(
            &conn,
            "rosa",
            "Rosa Delgado, RN",
            Role::Nurse,
            Some("Practitioner/pr-nurse"),
        )
        .unwrap();
        let day = std::time::Duration::from_secs(86_400);
        let a = issue(&conn, id, day, "test").unwrap();
        let b = issue(&conn, id, day, "test").unwrap();
        assert_ne!(a, b);
        let now = store::now_ms();
        let user = authenticate(&conn, &a, now).unwrap().unwrap();
        assert_eq!((user.login.as_str(), user.role), ("rosa", Role::Nurse));
        assert_eq!(
            authenticate(&conn, &a, now + 86_400_001).unwrap(),
            Err(Refused::Expired)
        );
        assert_eq!(
            authenticate(&conn, "nope", now).unwrap(),
            Err(Refused::Unknown)
        );
        // The database holds no token in the clear.
        let stored: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM tokens WHERE hash = ?1",
                params![a.as_bytes()],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(stored, 0);

        assert_eq!(
            revoke(&conn, &a, now).unwrap(),
            Revoked::Token {
                login: "rosa".into()
            }
        );
        assert_eq!(authenticate(&conn, &a, now).unwrap(), Err(Refused::Revoked));
        assert!(authenticate(&conn, &b, now).unwrap().is_ok());
        assert_eq!(
            revoke(&conn, "rosa", now).unwrap(),
            Revoked::User {
                login: "rosa".into(),
                tokens: 1
            }
        );
        assert_eq!(authenticate(&conn, &b, now).unwrap(), Err(Refused::Revoked));
        assert_eq!(revoke(&conn, "nobody", now).unwrap(), Revoked::Nothing);

        let c = issue(&conn, id, day, "test").unwrap();
        assert!(set_disabled(&conn, "rosa", true).unwrap());
        assert_eq!(
            authenticate(&conn, &c, now).unwrap(),
            Err(Refused::Disabled)
        );
        assert!(!any_enabled(&conn).unwrap());
        // Upserting again enables, keeps the id.
        let again = upsert(&conn, "rosa", "Rosa Delgado", Role::Nurse, None).unwrap();
        assert_eq!(again, id);
        assert!(any_enabled(&conn).unwrap());
        assert_eq!(list(&conn, now).unwrap().len(), 1);
    }
}
