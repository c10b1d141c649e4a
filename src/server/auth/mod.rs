//! The server as the OAuth 2 / SMART App Launch authorization server of its
//! own users: discovery, the authorization code grant with PKCE behind a
//! login page, the device grant for terminals without a browser, rotating
//! refresh tokens, revocation, and an OpenID Connect id_token.
//!
//! Access tokens are ordinary rows of `tokens`, so the FHIR side
//! authenticates them as it does any other; what a token may do is
//! decided by the user's role, narrowed by the token's scopes. Every sign-in attempt and every token
//! issued, refreshed or revoked is in the audit trail, naming the login and
//! the client address, never a password, code or token.

pub mod address;
mod authorize;
pub mod client;
mod codes;
mod device;
mod device_page;
mod discovery;
mod grants;
pub mod jwt;
pub mod limit;
mod login_page;
pub mod password;
pub mod pkce;
mod revoke;
pub mod scope;
mod signin;
mod token;
pub mod totp;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::audit::{self, Event};
use super::db::Db;
use super::options::Options;
use super::users::User;

/// Paths that take a form body without a bearer token (the guard lets
/// them through with a small body limit).
pub const FORM_PATHS: &[&str] = &[
    "/auth/authorize",
    "/auth/token",
    "/auth/device",
    "/auth/device/verify",
    "/auth/revoke",
];

/// The largest form body these paths accept.
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// What the endpoints share.
pub struct Auth {
    pub db: Arc<Db>,
    pub options: Options,
    pub limiter: limit::Limiter,
    pub signer: jwt::Signer,
    /// argon2 takes 19 MiB a hash: at most this many at once, whatever
    /// arrives.
    pub hashing: tokio::sync::Semaphore,
}

impl Auth {
    pub fn new(db: Arc<Db>, options: Options, signer: jwt::Signer) -> Auth {
        Auth {
            db,
            limiter: limit::Limiter::new(options.sign_in_limits),
            options,
            signer,
            hashing: tokio::sync::Semaphore::new(2),
        }
    }
}

/// The routes, to be merged beside the FHIR dispatcher.
pub fn router(auth: Arc<Auth>) -> Router {
    Router::new()
        .route(
            "/.well-known/smart-configuration",
            get(discovery::smart_configuration),
        )
        .route(
            "/fhir/.well-known/smart-configuration",
            get(discovery::smart_configuration),
        )
        .route("/auth/jwks", get(discovery::jwks))
        .route(
            "/auth/authorize",
            get(authorize::page).post(authorize::submit),
        )
        .route("/auth/token", post(token::token))
        .route("/auth/device", post(device::start))
        .route(
            "/auth/device/verify",
            get(device_page::page).post(device_page::submit),
        )
        .route("/auth/revoke", post(revoke::revoke))
        .with_state(auth)
}

/// The origin the server is reached at: `--public-url`, else `http://` and
/// the request's `Host` (the authority of an HTTP/2 request). `None` when
/// the request names no usable host.
pub fn origin(options: &Options, headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(public) = &options.public_url {
        return Some(public.trim_end_matches('/').to_string());
    }
    let host = match headers.get(header::HOST) {
        Some(h) => h.to_str().ok()?.to_string(),
        None => uri.authority()?.as_str().to_string(),
    };
    // Only a bare host[:port]: the origin is written into pages, headers
    // and tokens.
    let authority: axum::http::uri::Authority = host.parse().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    Some(format!(
        "http://{}",
        authority.as_str().to_ascii_lowercase()
    ))
}

/// Who is asking, as every sign-in route records and limits it: the audit
/// context and the client's IP: the peer's, or the client a trusted proxy
/// names.
pub struct Peer {
    pub ctx: audit::Context,
    pub ip: Option<IpAddr>,
}

impl axum::extract::FromRequestParts<Arc<Auth>> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        auth: &Arc<Auth>,
    ) -> Result<Peer, Self::Rejection> {
        let addr = parts
            .extensions
            .get::<axum::extract::ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        let c = address::client(addr, &parts.headers, &auth.options.trusted_proxies);
        Ok(Peer {
            ctx: audit::Context::new(c.source),
            ip: c.ip,
        })
    }
}

/// A form (or query) of `application/x-www-form-urlencoded` pairs. A
/// parameter sent twice counts as not sent (RFC 6749 §3.1: it is invalid).
pub struct Form(HashMap<String, Vec<String>>);

impl Form {
    pub fn parse(bytes: &[u8]) -> Form {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(bytes) {
            map.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Form(map)
    }

    /// The value of `name`, if sent once.
    pub fn get(&self, name: &str) -> Option<&str> {
        match self.0.get(name).map(Vec::as_slice) {
            Some([one]) => Some(one.as_str()),
            _ => None,
        }
    }

    /// The value of `name` if sent once and not empty.
    pub fn nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// Whether `name` was sent more than once.
    pub fn repeated(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|v| v.len() > 1)
    }
}

/// An audit record of the sign-in side, naming the user when there is
/// one. What someone typed as a login that matched no user is never
/// recorded: people type passwords into the login field.
pub fn event(
    ctx: &audit::Context,
    user: Option<&User>,
    action: &str,
    status: u16,
    detail: impl Into<String>,
) -> Event {
    let mut e = Event {
        at: super::store::now_ms(),
        request: ctx.request.clone(),
        source: ctx.source.clone(),
        action: action.to_string(),
        status,
        detail: Some(detail.into()),
        ..Event::default()
    };
    if let Some(u) = user {
        e.user = Some(u.login.clone());
        e.name = Some(u.name.clone());
        e.role = Some(u.role.code().to_string());
        e.who = u.practitioner.clone();
    }
    e
}

/// An OAuth error answer (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> OAuthError {
        OAuthError {
            error,
            description: description.into(),
        }
    }

    pub fn response(&self) -> Response {
        let status = if self.error == "invalid_client" {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        json_response(
            status,
            &json!({"error": self.error, "error_description": self.description}),
        )
    }
}

impl From<super::outcome::FhirError> for OAuthError {
    fn from(e: super::outcome::FhirError) -> Self {
        OAuthError::new("temporarily_unavailable", e.message)
    }
}

/// JSON that no cache keeps.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}
