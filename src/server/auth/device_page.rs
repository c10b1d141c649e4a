//! `/auth/device/verify`: where a person approves, signed in, the sign-in
//! a terminal asked for, or denies it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;

use super::super::audit;
use super::super::outcome::FhirError;
use super::super::store;
use super::device::{self, Decided};
use super::login_page::{SignInForm, message, respond};
use super::signin::{self, Credentials, SignIn};
use super::{Auth, Form, event, peer, scope};

const TITLE: &str = "Sign in to chartty";
const INTRO: &str = "Enter the code your terminal shows, then sign in to let it in.";
/// Device codes are phished by sending someone a code to approve: the
/// approver then signs the sender's terminal in.
pub const WARNING: &str =
    "Only enter a code shown on your own screen. Never approve a code someone sent you.";

/// When, in UTC (the server cannot know the reader's zone) and how long ago.
fn when(requested_ms: i64, now_ms: i64) -> String {
    let at = chrono::DateTime::from_timestamp_millis(requested_ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default();
    let ago = (now_ms - requested_ms).max(0) / 1000;
    if ago < 120 {
        format!("{at} ({ago} seconds ago)")
    } else {
        format!("{at} ({} minutes ago)", ago / 60)
    }
}

/// What the page says of a waiting code.
fn about(p: &device::Pending, now: i64) -> Vec<(&'static str, Vec<String>)> {
    let mut out = Vec::new();
    if let Some(r) = p.requested {
        out.push(("Asked for", vec![when(r, now)]));
    }
    if let Some(a) = &p.address {
        out.push(("By a terminal at", vec![a.clone()]));
    }
    let mut grants = scope::plain(&p.scope);
    grants.push("No more than your role allows".to_string());
    out.push(("Approving lets that terminal", grants));
    out
}

fn form_page(
    status: StatusCode,
    user_code: &str,
    error: Option<&str>,
    pending: Option<&device::Pending>,
    now: i64,
) -> Response {
    let html = SignInForm {
        title: TITLE,
        action: "/auth/device/verify",
        intro: INTRO,
        hidden: Vec::new(),
        user_code: Some(user_code),
        error,
        deny: true,
        about: pending.map(|p| about(p, now)).unwrap_or_default(),
        warning: Some(WARNING),
    }
    .html();
    respond(status, html, None)
}

/// The waiting code `typed`, if it is one.
async fn lookup(auth: &Auth, typed: &str, now: i64) -> Result<Option<device::Pending>, FhirError> {
    let code = typed.to_string();
    auth.db
        .read(move |conn| -> Result<_, FhirError> { Ok(device::pending(conn, &code, now)?) })
        .await
}

fn unavailable(e: &FhirError) -> Response {
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        message(TITLE, &e.message),
        None,
    )
}

/// `GET /auth/device/verify[?user_code=]`: with a waiting code, what
/// approving it would let in.
pub async fn page(State(auth): State<Arc<Auth>>, uri: Uri) -> Response {
    let q = Form::parse(uri.query().unwrap_or("").as_bytes());
    let typed = q.get("user_code").unwrap_or("");
    let code = device::shown_typed(typed);
    let now = store::now_ms();
    let pending = if typed.is_empty() {
        None
    } else {
        match lookup(&auth, typed, now).await {
            Ok(p) => p,
            Err(e) => return unavailable(&e),
        }
    };
    form_page(StatusCode::OK, &code, None, pending.as_ref(), now)
}

/// `POST /auth/device/verify`.
pub async fn submit(
    State(auth): State<Arc<Auth>>,
    peer_addr: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ctx, ip) = peer(
        &auth.options,
        peer_addr.map(|Extension(ConnectInfo(a))| a),
        &headers,
    );
    let form = Form::parse(&body);
    let user_code = form.get("user_code").unwrap_or("").to_string();
    let now = store::now_ms();
    if form.get("action") == Some("deny") {
        return deny(&auth, &ctx, &user_code, now).await;
    }
    let pending = match lookup(&auth, &user_code, now).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return form_page(
                StatusCode::BAD_REQUEST,
                &user_code,
                Some("That code is unknown or has expired; start again in your terminal"),
                None,
                now,
            );
        }
        Err(e) => return unavailable(&e),
    };
    let credentials = Credentials::from_form(&form);
    let user = match signin::check(&auth, &ctx, ip, &credentials).await {
        Ok(SignIn::Ok(user)) => user,
        Ok(SignIn::Refused) => {
            return form_page(
                StatusCode::UNAUTHORIZED,
                &user_code,
                Some(signin::WRONG),
                Some(&pending),
                now,
            );
        }
        Ok(SignIn::Limited(wait)) => {
            let mut r = form_page(
                StatusCode::TOO_MANY_REQUESTS,
                &user_code,
                Some("Too many failed sign-ins; try again later"),
                Some(&pending),
                now,
            );
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        Err(e) => return unavailable(&e),
    };
    let decided = auth
        .db
        .write(move |conn| -> Result<Decided, FhirError> {
            let d = device::decide(conn, &user_code, Some(user.id), now)?;
            let (status, detail) = match d {
                Decided::Done => (200, "device sign-in approved"),
                Decided::Unknown => (400, "device code no longer waiting"),
            };
            let e = event(&ctx, Some(&user), "sign-in", status, detail);
            audit::append(conn, &[e])?;
            Ok(d)
        })
        .await;
    match decided {
        Ok(Decided::Done) => respond(
            StatusCode::OK,
            message(TITLE, "Signed in. You can return to your terminal."),
            None,
        ),
        Ok(Decided::Unknown) => respond(
            StatusCode::BAD_REQUEST,
            message(
                TITLE,
                "That code is unknown or has expired; start again in your terminal.",
            ),
            None,
        ),
        Err(e) => unavailable(&e),
    }
}

/// Denies a waiting code: no password is needed to say no.
async fn deny(auth: &Arc<Auth>, ctx: &audit::Context, user_code: &str, now: i64) -> Response {
    let code = user_code.to_string();
    let ctx = ctx.clone();
    let decided = auth
        .db
        .write(move |conn| -> Result<Decided, FhirError> {
            let d = device::decide(conn, &code, None, now)?;
            if d == Decided::Done {
                let e = event(&ctx, None, "device-deny", 200, "device sign-in denied");
                audit::append(conn, &[e])?;
            }
            Ok(d)
        })
        .await;
    match decided {
        Ok(Decided::Done) => respond(
            StatusCode::OK,
            message(
                TITLE,
                "Denied. The terminal that asked will not be signed in.",
            ),
            None,
        ),
        Ok(Decided::Unknown) => form_page(
            StatusCode::BAD_REQUEST,
            user_code,
            Some("That code is unknown or has expired"),
            None,
            now,
        ),
        Err(e) => unavailable(&e),
    }
}
