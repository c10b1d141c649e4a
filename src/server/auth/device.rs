//! The device authorization grant (RFC 8628): a terminal asks for a pair
//! of codes, shows the user code, and polls the token endpoint while the
//! person approves (or denies) it on the verification page, signed in.
//!
//! User codes are 8 letters of the RFC's unambiguous consonants, shown as
//! `BCDF-GHJK` and read case-insensitively without the dash; device codes
//! are random and kept as SHA-256.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;

use super::super::outcome::FhirError;
use super::super::store;
use super::super::users::{fresh_token, token_hash};
use super::{Auth, Form, OAuthError, Peer, client, event, json_response, origin, scope};

const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// A fresh user code, stored form (8 letters, no dash).
fn new_user_code() -> anyhow::Result<String> {
    use rand::TryRng;
    let mut bytes = [0u8; 8];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    // 256 is not a multiple of 20: draw again past the last full round.
    let mut out = String::with_capacity(8);
    for b in bytes {
        let mut v = b;
        while v >= 240 {
            let mut one = [0u8; 1];
            rand::rngs::SysRng
                .try_fill_bytes(&mut one)
                .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
            v = one[0];
        }
        out.push(char::from(ALPHABET[usize::from(v % 20)]));
    }
    Ok(out)
}

/// `BCDFGHJK` as shown: `BCDF-GHJK`.
pub fn shown(code: &str) -> String {
    if code.len() == 8 && code.is_ascii() {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_string()
    }
}

/// A typed code as the page shows it back (normalised, with the dash).
pub fn shown_typed(typed: &str) -> String {
    shown(&normalise(typed))
}

/// What a person typed, in stored form (upper case, no dash or spaces).
pub fn normalise(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A new pair's particulars.
struct NewPair<'a> {
    client_id: &'a str,
    scope: &'a str,
    expires: i64,
    interval_s: i64,
    /// The asking client's address, for the approval page.
    address: Option<String>,
}

/// Stores a new pair; returns (device code, user code).
fn create(conn: &Connection, pair: &NewPair<'_>, now: i64) -> anyhow::Result<(String, String)> {
    conn.execute(
        "DELETE FROM auth_device WHERE expires < ?1",
        params![now - 86_400_000],
    )?;
    let device = fresh_token()?;
    for _ in 0..8 {
        let user = new_user_code()?;
        let inserted = conn.execute(
            "INSERT OR IGNORE INTO auth_device
                 (hash, user_code, client_id, scope, expires, interval_s, requested, address)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                token_hash(&device).as_slice(),
                user,
                pair.client_id,
                pair.scope,
                pair.expires,
                pair.interval_s,
                now,
                pair.address
            ],
        )?;
        if inserted == 1 {
            return Ok((device, user));
        }
    }
    anyhow::bail!("no free user code")
}

/// `POST /auth/device`.
pub async fn start(
    State(auth): State<Arc<Auth>>,
    Peer { ctx, ip }: Peer,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let Some(o) = origin(&auth.options, &headers, &uri) else {
        return OAuthError::new("invalid_request", "the request names no usable Host").response();
    };
    let form = Form::parse(&body);
    let client_id = form.get("client_id").unwrap_or("");
    if !client::known(client_id) {
        return OAuthError::new("invalid_client", "unknown client_id").response();
    }
    if form.repeated("scope") {
        return OAuthError::new("invalid_request", "scope is sent more than once").response();
    }
    let granted = scope::grant(form.get("scope").unwrap_or(""));
    if granted.is_empty() {
        return OAuthError::new("invalid_scope", "ask for at least one supported scope").response();
    }
    // Each start writes a row and a record; unauthenticated, so bounded
    // per client address.
    if let Err(refused) = auth.limiter.device_start(ip) {
        if refused.record {
            let e = event(
                &ctx,
                None,
                "device-start",
                429,
                "too many device codes asked for",
            );
            if let Err(e) = auth.db.append(vec![e]).await {
                return OAuthError::from(e).response();
            }
        }
        let secs = refused.wait.as_secs().max(1);
        let mut r = json_response(
            StatusCode::TOO_MANY_REQUESTS,
            &json!({
                "error": "slow_down",
                "error_description": format!("too many device codes asked for; try again in {secs} s"),
            }),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    let now = store::now_ms();
    let ttl_s = auth.options.device_ttl.as_secs().max(1) as i64;
    let interval_s = auth.options.device_interval.as_secs().max(1) as i64;
    let client_id = client_id.to_string();
    let made = auth
        .db
        .write(move |conn| -> Result<_, FhirError> {
            let new = NewPair {
                client_id: &client_id,
                scope: &granted,
                expires: now + ttl_s * 1000,
                interval_s,
                address: ip.map(|a| a.to_string()),
            };
            let pair = create(conn, &new, now).map_err(|e| {
                tracing::error!(error = %e, "device authorization failed");
                FhirError::internal()
            })?;
            let e = event(&ctx, None, "device-start", 200, format!("for {client_id}"));
            super::super::audit::append(conn, &[e])?;
            Ok(pair)
        })
        .await;
    let (device, user) = match made {
        Ok(p) => p,
        Err(e) => return OAuthError::from(e).response(),
    };
    let verify = format!("{o}/auth/device/verify");
    json_response(
        StatusCode::OK,
        &json!({
            "device_code": device,
            "user_code": shown(&user),
            "verification_uri": verify,
            "verification_uri_complete": format!("{verify}?user_code={}", shown(&user)),
            "expires_in": ttl_s,
            "interval": interval_s,
        }),
    )
}

/// Where a device code stands when polled.
pub enum Polled {
    /// Approved by this user, with this scope: issue tokens.
    Approved {
        user_id: i64,
        scope: String,
    },
    Refused(OAuthError),
}

/// A device code's row.
struct Waiting {
    client_id: String,
    scope: String,
    expires: i64,
    interval_s: i64,
    last_poll: Option<i64>,
    state: String,
    user_id: Option<i64>,
}

/// A poll of the token endpoint (in the writer's transaction).
pub fn poll(
    conn: &Connection,
    device_code: &str,
    client_id: &str,
    now: i64,
) -> rusqlite::Result<Polled> {
    let hash = token_hash(device_code);
    let row = conn
        .query_row(
            "SELECT client_id, scope, expires, interval_s, last_poll, state, user_id
             FROM auth_device WHERE hash = ?1",
            params![hash.as_slice()],
            |r| {
                Ok(Waiting {
                    client_id: r.get(0)?,
                    scope: r.get(1)?,
                    expires: r.get(2)?,
                    interval_s: r.get(3)?,
                    last_poll: r.get(4)?,
                    state: r.get(5)?,
                    user_id: r.get(6)?,
                })
            },
        )
        .optional()?;
    let refuse = |e: &'static str, d: &str| Ok(Polled::Refused(OAuthError::new(e, d)));
    let Some(Waiting {
        client_id: owner,
        scope,
        expires,
        interval_s,
        last_poll,
        state,
        user_id,
    }) = row
    else {
        return refuse("invalid_grant", "unknown device_code");
    };
    if owner != client_id {
        return refuse(
            "invalid_grant",
            "the device_code was issued to another client",
        );
    }
    if state == "done" {
        return refuse("invalid_grant", "the device_code was used already");
    }
    if expires <= now {
        return refuse("expired_token", "the device_code has expired; start again");
    }
    let too_soon = last_poll.is_some_and(|last| now - last < interval_s * 1000);
    let interval_s = if too_soon { interval_s + 5 } else { interval_s };
    conn.execute(
        "UPDATE auth_device SET last_poll = ?2, interval_s = ?3 WHERE hash = ?1",
        params![hash.as_slice(), now, interval_s],
    )?;
    if too_soon {
        return refuse("slow_down", &format!("poll every {interval_s} s at most"));
    }
    match (state.as_str(), user_id) {
        ("approved", Some(user_id)) => {
            conn.execute(
                "UPDATE auth_device SET state = 'done' WHERE hash = ?1",
                params![hash.as_slice()],
            )?;
            Ok(Polled::Approved { user_id, scope })
        }
        ("denied", _) => refuse("access_denied", "the sign-in was denied"),
        _ => refuse("authorization_pending", "waiting for the user to sign in"),
    }
}

/// What deciding a user code found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decided {
    Done,
    /// No such code, or no longer waiting.
    Unknown,
}

/// Approves (for `user`) or denies (`None`) a waiting user code.
pub fn decide(
    conn: &Connection,
    user_code: &str,
    user: Option<i64>,
    now: i64,
) -> rusqlite::Result<Decided> {
    let state = if user.is_some() { "approved" } else { "denied" };
    let changed = conn.execute(
        "UPDATE auth_device SET state = ?2, user_id = ?3
         WHERE user_code = ?1 AND state = 'pending' AND expires > ?4",
        params![normalise(user_code), state, user, now],
    )?;
    Ok(if changed == 1 {
        Decided::Done
    } else {
        Decided::Unknown
    })
}

/// What the approval page says of a waiting code.
#[derive(Debug, Clone)]
pub struct Pending {
    /// When it was asked for (ms; none for codes of an older server).
    pub requested: Option<i64>,
    /// The asking client's address.
    pub address: Option<String>,
    pub scope: String,
}

/// A waiting user code (for the page, before asking for a password).
pub fn pending(conn: &Connection, user_code: &str, now: i64) -> rusqlite::Result<Option<Pending>> {
    conn.query_row(
        "SELECT requested, address, scope FROM auth_device
         WHERE user_code = ?1 AND state = 'pending' AND expires > ?2",
        params![normalise(user_code), now],
        |r| {
            Ok(Pending {
                requested: r.get(0)?,
                address: r.get(1)?,
                scope: r.get(2)?,
            })
        },
    )
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_consonants_shown_with_a_dash() {
        for _ in 0..50 {
            let c = new_user_code().unwrap();
            assert_eq!(c.len(), 8);
            assert!(c.bytes().all(|b| ALPHABET.contains(&b)), "{c}");
            assert_eq!(normalise(&shown(&c).to_lowercase()), c);
        }
        assert_eq!(shown("BCDFGHJK"), "BCDF-GHJK");
        assert_eq!(normalise(" bcdf-ghjk"), "BCDFGHJK");
    }
}
