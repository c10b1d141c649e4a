//! `/auth/device/verify`: where a person approves, signed in, the sign-in
//! a terminal asked for, or denies it. Two steps, so that no password is
//! asked for before the page has said what the code is for: the code
//! (skipped when the address carries it), then its details and the
//! sign-in.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::Response;

use super::super::audit;
use super::super::outcome::FhirError;
use super::super::store;
use super::device::{self, Decided};
use super::limit::Refused;
use super::login_page::{SignInForm, code_form, message, respond};
use super::signin::{self, Credentials, SignIn};
use super::{Auth, Form, Peer, event, scope};

const TITLE: &str = "Sign in to chartty";
const INTRO_CODE: &str = "Enter the code your terminal shows.";
const INTRO_APPROVE: &str =
    "Check what this code is for, then sign in to let that terminal in, or deny it.";
const NOT_KNOWN: &str = "This code is not known or has expired; check the code on your terminal";
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
fn about(code: &str, p: &device::Pending, now: i64) -> Vec<(&'static str, Vec<String>)> {
    let mut out = vec![("Code", vec![code.to_string()])];
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

/// Step 1: the code alone.
fn code_page(status: StatusCode, typed: &str, error: Option<&str>) -> Response {
    let html = code_form(
        TITLE,
        INTRO_CODE,
        &device::shown_typed(typed),
        error,
        WARNING,
    );
    respond(status, html, None)
}

/// Step 2: what the waiting code is for, and the sign-in that approves
/// it. The code goes along unseen: the details shown are of this code, so
/// the form must not approve another.
fn approve_page(
    status: StatusCode,
    typed: &str,
    error: Option<&str>,
    pending: &device::Pending,
    now: i64,
) -> Response {
    let code = device::shown_typed(typed);
    let html = SignInForm {
        title: TITLE,
        action: "/auth/device/verify",
        intro: INTRO_APPROVE,
        hidden: vec![("user_code", &code)],
        error,
        deny: true,
        about: about(&code, pending, now),
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

/// Counts a lookup of `typed` against the client address's unknown
/// codes, then looks it up; `Err` is the answer when it may not be
/// looked up or the store fails.
async fn find(
    auth: &Auth,
    ctx: &audit::Context,
    ip: Option<IpAddr>,
    typed: &str,
    now: i64,
) -> Result<Option<device::Pending>, Response> {
    let counted = match auth.limiter.code_lookup(ip) {
        Ok(c) => c,
        Err(refused) => return Err(too_many_codes(auth, ctx, refused).await),
    };
    match lookup(auth, typed, now).await {
        Ok(Some(p)) => {
            auth.limiter.code_found(counted);
            Ok(Some(p))
        }
        Ok(None) => Ok(None),
        Err(e) => {
            // The store failing says nothing of the code.
            auth.limiter.code_found(counted);
            Err(unavailable(&e))
        }
    }
}

async fn too_many_codes(auth: &Auth, ctx: &audit::Context, refused: Refused) -> Response {
    if refused.record {
        let e = event(
            ctx,
            None,
            "device-lookup",
            429,
            "too many unknown user codes",
        );
        if let Err(e) = auth.db.append(vec![e]).await {
            return unavailable(&e);
        }
    }
    let secs = refused.wait.as_secs().max(1);
    let mut r = respond(
        StatusCode::TOO_MANY_REQUESTS,
        message(
            TITLE,
            &format!(
                "Too many codes that are not known were tried from your address; \
                 try again in {} minutes.",
                secs.div_ceil(60)
            ),
        ),
        None,
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// `GET /auth/device/verify[?user_code=]`: without a code, a field for
/// one (step 1); with a waiting code, what approving it would let in and
/// the sign-in that does (step 2).
pub async fn page(State(auth): State<Arc<Auth>>, Peer { ctx, ip }: Peer, uri: Uri) -> Response {
    let q = Form::parse(uri.query().unwrap_or("").as_bytes());
    let typed = q.get("user_code").unwrap_or("").trim();
    if typed.is_empty() {
        return code_page(StatusCode::OK, "", None);
    }
    let now = store::now_ms();
    match find(&auth, &ctx, ip, typed, now).await {
        Ok(Some(p)) => approve_page(StatusCode::OK, typed, None, &p, now),
        Ok(None) => code_page(StatusCode::OK, typed, Some(NOT_KNOWN)),
        Err(r) => r,
    }
}

/// `POST /auth/device/verify`.
pub async fn submit(
    State(auth): State<Arc<Auth>>,
    Peer { ctx, ip }: Peer,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let user_code = form.get("user_code").unwrap_or("").to_string();
    let now = store::now_ms();
    if form.get("action") == Some("deny") {
        return deny(&auth, &ctx, ip, &user_code, now).await;
    }
    let pending = match find(&auth, &ctx, ip, &user_code, now).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return code_page(
                StatusCode::BAD_REQUEST,
                &user_code,
                Some("That code is unknown or has expired; start again in your terminal"),
            );
        }
        Err(r) => return r,
    };
    let credentials = Credentials::from_form(&form);
    let user = match signin::check(&auth, &ctx, ip, &credentials).await {
        Ok(SignIn::Ok(user)) => user,
        Ok(SignIn::Refused) => {
            return approve_page(
                StatusCode::UNAUTHORIZED,
                &user_code,
                Some(signin::WRONG),
                &pending,
                now,
            );
        }
        Ok(SignIn::Limited(wait)) => {
            let mut r = approve_page(
                StatusCode::TOO_MANY_REQUESTS,
                &user_code,
                Some("Too many failed sign-ins; try again later"),
                &pending,
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

/// Denies a waiting code: no password is needed to say no. A code that
/// is not waiting counts as a miss, as a lookup's does.
async fn deny(
    auth: &Arc<Auth>,
    ctx: &audit::Context,
    ip: Option<IpAddr>,
    user_code: &str,
    now: i64,
) -> Response {
    let counted = match auth.limiter.code_lookup(ip) {
        Ok(c) => c,
        Err(refused) => return too_many_codes(auth, ctx, refused).await,
    };
    let code = user_code.to_string();
    let record = ctx.clone();
    let decided = auth
        .db
        .write(move |conn| -> Result<Decided, FhirError> {
            let d = device::decide(conn, &code, None, now)?;
            if d == Decided::Done {
                let e = event(&record, None, "device-deny", 200, "device sign-in denied");
                audit::append(conn, &[e])?;
            }
            Ok(d)
        })
        .await;
    if !matches!(decided, Ok(Decided::Unknown)) {
        auth.limiter.code_found(counted);
    }
    match decided {
        Ok(Decided::Done) => respond(
            StatusCode::OK,
            message(
                TITLE,
                "Denied. The terminal that asked will not be signed in.",
            ),
            None,
        ),
        Ok(Decided::Unknown) => code_page(
            StatusCode::BAD_REQUEST,
            user_code,
            Some("That code is unknown or has expired"),
        ),
        Err(e) => unavailable(&e),
    }
}
