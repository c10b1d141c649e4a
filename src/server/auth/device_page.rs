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
use super::{Auth, Form, event, peer};

const TITLE: &str = "Sign in to chartty";
const INTRO: &str = "Enter the code your terminal shows, then sign in to let it in.";

fn form_page(status: StatusCode, user_code: &str, error: Option<&str>) -> Response {
    let html = SignInForm {
        title: TITLE,
        action: "/auth/device/verify",
        intro: INTRO,
        hidden: Vec::new(),
        user_code: Some(user_code),
        error,
        deny: true,
    }
    .html();
    respond(status, html, None)
}

fn unavailable(e: &FhirError) -> Response {
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        message(TITLE, &e.message),
        None,
    )
}

/// `GET /auth/device/verify[?user_code=]`.
pub async fn page(uri: Uri) -> Response {
    let q = Form::parse(uri.query().unwrap_or("").as_bytes());
    let code = q
        .get("user_code")
        .map(device::shown_typed)
        .unwrap_or_default();
    form_page(StatusCode::OK, &code, None)
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
    let code = user_code.clone();
    let waiting = auth
        .db
        .read(move |conn| -> Result<bool, FhirError> { Ok(device::waiting(conn, &code, now)?) })
        .await;
    match waiting {
        Ok(true) => {}
        Ok(false) => {
            return form_page(
                StatusCode::BAD_REQUEST,
                &user_code,
                Some("That code is unknown or has expired; start again in your terminal"),
            );
        }
        Err(e) => return unavailable(&e),
    }
    let credentials = Credentials::from_form(&form);
    let user = match signin::check(&auth, &ctx, ip, &credentials).await {
        Ok(SignIn::Ok(user)) => user,
        Ok(SignIn::Refused) => {
            return form_page(StatusCode::UNAUTHORIZED, &user_code, Some(signin::WRONG));
        }
        Ok(SignIn::Limited(wait)) => {
            let mut r = form_page(
                StatusCode::TOO_MANY_REQUESTS,
                &user_code,
                Some("Too many failed sign-ins; try again later"),
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
        ),
        Err(e) => unavailable(&e),
    }
}
