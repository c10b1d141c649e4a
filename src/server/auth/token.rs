//! `POST /auth/token`: exchanges an authorization code (with its PKCE
//! verifier), a refresh token, or an approved device code for tokens.
//! Each exchange, refusal worth noting and refresh-token reuse is recorded
//! in the same transaction as what it changed.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use rusqlite::Connection;
use serde_json::json;

use super::super::audit::{self, Event};
use super::super::outcome::FhirError;
use super::super::store;
use super::super::users;
use super::grants::{self, Issued, Refreshed, Ttls};
use super::{
    Auth, Form, OAuthError, Peer, client, codes, device, event, json_response, origin, pkce, scope,
};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

fn internal(e: anyhow::Error) -> FhirError {
    tracing::error!(error = %e, "token endpoint failed");
    FhirError::internal()
}

type Outcome = Result<Issued, OAuthError>;

/// `POST /auth/token`.
pub async fn token(
    State(auth): State<Arc<Auth>>,
    Peer { ctx, .. }: Peer,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let Some(o) = origin(&auth.options, &headers, &uri) else {
        return OAuthError::new("invalid_request", "the request names no usable Host").response();
    };
    let form = Form::parse(&body);
    let get = |name: &str| form.get(name).unwrap_or("").to_string();
    for p in [
        "grant_type",
        "code",
        "code_verifier",
        "redirect_uri",
        "client_id",
        "refresh_token",
        "device_code",
    ] {
        if form.repeated(p) {
            return OAuthError::new("invalid_request", format!("{p} is sent more than once"))
                .response();
        }
    }
    let client_id = get("client_id");
    if !client::known(&client_id) {
        return OAuthError::new("invalid_client", "unknown client_id").response();
    }
    let grant_type = get("grant_type");
    let ttls = Ttls::of(&auth.options);
    let now = store::now_ms();
    let outcome: Result<Outcome, FhirError> = match grant_type.as_str() {
        "authorization_code" => {
            let (code, verifier, redirect) =
                (get("code"), get("code_verifier"), get("redirect_uri"));
            auth.db
                .write(move |conn| {
                    exchange_code(
                        conn, &ctx, &code, &verifier, &redirect, &client_id, ttls, now,
                    )
                })
                .await
        }
        "refresh_token" => {
            let token = get("refresh_token");
            auth.db
                .write(move |conn| refresh(conn, &ctx, &token, &client_id, ttls, now))
                .await
        }
        DEVICE_GRANT => {
            let code = get("device_code");
            auth.db
                .write(move |conn| device_code(conn, &ctx, &code, &client_id, ttls, now))
                .await
        }
        "" => Ok(Err(OAuthError::new(
            "invalid_request",
            "grant_type is required",
        ))),
        _ => Ok(Err(OAuthError::new(
            "unsupported_grant_type",
            "authorization_code, refresh_token or the device_code grant",
        ))),
    };
    match outcome {
        Ok(Ok(issued)) => answer(&auth, &o, issued, &form_client(&form)),
        Ok(Err(e)) => e.response(),
        Err(e) => OAuthError::from(e).response(),
    }
}

fn form_client(form: &Form) -> String {
    form.get("client_id").unwrap_or("").to_string()
}

/// The token answer (with an id_token when `openid` was granted).
fn answer(auth: &Auth, origin: &str, issued: Issued, client_id: &str) -> Response {
    let mut body = json!({
        "access_token": issued.access,
        "token_type": "Bearer",
        "expires_in": issued.access_ms / 1000,
        "scope": issued.scope,
    });
    if let Some(r) = &issued.refresh {
        body["refresh_token"] = json!(r);
    }
    if scope::has(&issued.scope, "openid") {
        let now = store::now_ms() / 1000;
        let mut claims = json!({
            "iss": origin,
            "sub": issued.user.login,
            "aud": client_id,
            "iat": now,
            "exp": now + issued.access_ms / 1000,
            "name": issued.user.name,
        });
        if let Some(p) = &issued.user.practitioner {
            claims["fhirUser"] = json!(format!("{origin}/fhir/{p}"));
        }
        match auth.signer.sign(&claims) {
            Ok(jwt) => body["id_token"] = json!(jwt),
            Err(e) => {
                tracing::error!(error = %e, "could not sign an id_token");
                return OAuthError::new("server_error", "could not sign the id_token").response();
            }
        }
    }
    json_response(StatusCode::OK, &body)
}

fn record(conn: &Connection, events: &[Event]) -> Result<(), FhirError> {
    Ok(audit::append(conn, events)?)
}

fn issued_event(ctx: &audit::Context, i: &Issued, action: &str, how: &str) -> Event {
    let detail = format!("{how}, grant {}, scope {}", i.grant, i.scope);
    event(ctx, Some(&i.user), action, 200, detail)
}

#[allow(clippy::too_many_arguments)]
fn exchange_code(
    conn: &Connection,
    ctx: &audit::Context,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
    client_id: &str,
    ttls: Ttls,
    now: i64,
) -> Result<Outcome, FhirError> {
    let invalid = |d: &str| Ok(Err(OAuthError::new("invalid_grant", d)));
    if code.is_empty() {
        return Ok(Err(OAuthError::new("invalid_request", "code is required")));
    }
    let Some(c) = codes::take(conn, code, now)? else {
        return invalid("unknown code");
    };
    let account = users::account_by_id(conn, c.user_id)?;
    let user = account.as_ref().map(|a| a.user.clone());
    if let Some((_, grant)) = c.used {
        // Used before: whoever holds it now may have stolen it.
        let revoked = match grant {
            Some(g) => grants::revoke(conn, g, now)?,
            None => 0,
        };
        let detail = format!(
            "an authorization code presented again; its grant revoked ({revoked} live access tokens)"
        );
        record(
            conn,
            &[event(ctx, user.as_ref(), "code-reuse", 400, detail)],
        )?;
        return invalid("the code was used already");
    }
    if c.expires <= now {
        return invalid("the code has expired");
    }
    if c.client_id != client_id || c.redirect_uri != redirect_uri {
        return invalid("the code was issued to another client or redirect_uri");
    }
    if !pkce::verifies(verifier, &c.challenge) {
        record(
            conn,
            &[event(
                ctx,
                user.as_ref(),
                "token-issue",
                400,
                "wrong PKCE code_verifier",
            )],
        )?;
        return invalid("the code_verifier does not match the code_challenge");
    }
    let Some(account) = account.filter(|a| !a.disabled) else {
        return invalid("this user is disabled");
    };
    let grant = grants::create(conn, c.user_id, client_id, &c.scope, now)?;
    codes::made_grant(conn, code, grant)?;
    let issued = grants::issue(conn, account.user, grant, &c.scope, ttls, now).map_err(internal)?;
    record(
        conn,
        &[issued_event(
            ctx,
            &issued,
            "token-issue",
            "authorization code",
        )],
    )?;
    Ok(Ok(issued))
}

fn refresh(
    conn: &Connection,
    ctx: &audit::Context,
    token: &str,
    client_id: &str,
    ttls: Ttls,
    now: i64,
) -> Result<Outcome, FhirError> {
    if token.is_empty() {
        return Ok(Err(OAuthError::new(
            "invalid_request",
            "refresh_token is required",
        )));
    }
    match grants::refresh(conn, token, client_id, ttls, now).map_err(internal)? {
        Refreshed::Issued(i) => {
            record(
                conn,
                &[issued_event(ctx, &i, "token-refresh", "refresh token")],
            )?;
            Ok(Ok(i))
        }
        Refreshed::Retried(i) => {
            record(
                conn,
                &[issued_event(
                    ctx,
                    &i,
                    "refresh-retry",
                    "the refresh token spent last, again within the grace period",
                )],
            )?;
            Ok(Ok(i))
        }
        Refreshed::Reused { user, grant } => {
            let detail = format!("a spent refresh token presented again; grant {grant} revoked");
            record(
                conn,
                &[event(ctx, Some(&user), "refresh-reuse", 400, detail)],
            )?;
            Ok(Err(OAuthError::new(
                "invalid_grant",
                "the refresh token was used already",
            )))
        }
        Refreshed::Refused(e, user) => {
            if let Some(u) = &user {
                let ev = event(ctx, Some(u), "token-refresh", 400, e.description.clone());
                record(conn, &[ev])?;
            }
            Ok(Err(e))
        }
    }
}

fn device_code(
    conn: &Connection,
    ctx: &audit::Context,
    code: &str,
    client_id: &str,
    ttls: Ttls,
    now: i64,
) -> Result<Outcome, FhirError> {
    if code.is_empty() {
        return Ok(Err(OAuthError::new(
            "invalid_request",
            "device_code is required",
        )));
    }
    match device::poll(conn, code, client_id, now)? {
        device::Polled::Refused(e) => Ok(Err(e)),
        device::Polled::Approved { user_id, scope } => {
            let Some(account) = users::account_by_id(conn, user_id)?.filter(|a| !a.disabled) else {
                return Ok(Err(OAuthError::new(
                    "invalid_grant",
                    "this user is disabled",
                )));
            };
            let grant = grants::create(conn, user_id, client_id, &scope, now)?;
            let issued =
                grants::issue(conn, account.user, grant, &scope, ttls, now).map_err(internal)?;
            record(
                conn,
                &[issued_event(ctx, &issued, "token-issue", "device code")],
            )?;
            Ok(Ok(issued))
        }
    }
}
