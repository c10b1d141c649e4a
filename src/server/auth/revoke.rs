//! `POST /auth/revoke` (RFC 7009): a refresh token takes its grant with it
//! (every access token of it); an access token goes alone. The answer is
//! 200 whatever was sent, so it tells nothing about a token.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::super::audit;
use super::super::outcome::FhirError;
use super::super::store;
use super::{Auth, Form, Peer, event, grants};

pub async fn revoke(
    State(auth): State<Arc<Auth>>,
    Peer { ctx, .. }: Peer,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let token = form.get("token").unwrap_or("").to_string();
    if !token.is_empty() {
        let now = store::now_ms();
        let done = auth
            .db
            .write(move |conn| -> Result<(), FhirError> {
                let revoked = grants::revoke_token(conn, &token, now).map_err(|e| {
                    tracing::error!(error = %e, "revocation failed");
                    FhirError::internal()
                })?;
                if let Some((user, what)) = revoked {
                    let e = event(&ctx, Some(&user), "token-revoke", 200, what);
                    audit::append(conn, &[e])?;
                }
                Ok(())
            })
            .await;
        if let Err(e) = done {
            // RFC 7009 §2.2.1: the client may try again later.
            let mut r = (StatusCode::SERVICE_UNAVAILABLE, e.message).into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
    }
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}
