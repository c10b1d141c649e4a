//! `/auth/authorize`: the login page of the authorization code grant, and
//! its post. A request that fails the checks (unknown client, a redirect
//! that is not a loopback URI, no S256 challenge, …) gets a 400 page, not a
//! redirect: an error must not go to an unverified redirect URI.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::super::audit;
use super::super::outcome::FhirError;
use super::super::store;
use super::login_page::{SignInForm, message, respond};
use super::signin::{self, Credentials, SignIn};
use super::{Auth, Form, Peer, client, codes, event, origin, pkce, scope};

const TITLE: &str = "Sign in to chartty";

/// The OAuth parameters carried by the page and its post.
const CARRIED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "aud",
];

/// A request that passed the checks.
struct Checked {
    client_id: String,
    redirect_uri: String,
    redirect_origin: String,
    scope: String,
    state: Option<String>,
    challenge: String,
}

fn check(form: &Form, origin: &str) -> Result<Checked, String> {
    if let Some(p) = CARRIED.iter().find(|p| form.repeated(p)) {
        return Err(format!("{p} is sent more than once."));
    }
    let client_id = form.get("client_id").unwrap_or("");
    if !client::known(client_id) {
        return Err("This application (client_id) is not known here.".into());
    }
    let redirect_uri = form.get("redirect_uri").unwrap_or("");
    let Some(redirect_origin) = client::loopback_redirect(redirect_uri) else {
        return Err(
            "The redirect_uri must be a loopback http address (127.0.0.1, localhost or [::1])."
                .into(),
        );
    };
    if form.get("response_type") != Some("code") {
        return Err("Only response_type=code is supported.".into());
    }
    let challenge = form.get("code_challenge").unwrap_or("");
    if form.get("code_challenge_method") != Some("S256") || !pkce::challenge_ok(challenge) {
        return Err("PKCE is required: a code_challenge with code_challenge_method=S256.".into());
    }
    if let Some(aud) = form.nonempty("aud") {
        let base = format!("{origin}/fhir");
        if aud.trim_end_matches('/') != base {
            return Err(format!("aud must be this server's FHIR base, {base}."));
        }
    }
    let scope = scope::grant(form.get("scope").unwrap_or(""));
    if scope.is_empty() {
        return Err("Ask for at least one supported scope.".into());
    }
    Ok(Checked {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        redirect_origin,
        scope,
        state: form.get("state").map(str::to_string),
        challenge: challenge.to_string(),
    })
}

fn bad_request(text: &str) -> Response {
    respond(StatusCode::BAD_REQUEST, message(TITLE, text), None)
}

fn sign_in_page(
    status: StatusCode,
    form: &Form,
    checked: &Checked,
    error: Option<&str>,
) -> Response {
    let hidden = CARRIED
        .iter()
        .filter_map(|p| form.get(p).map(|v| (*p, v)))
        .collect();
    let intro = format!("chartty asks to sign you in (scope: {}).", checked.scope);
    let html = SignInForm {
        title: TITLE,
        action: "/auth/authorize",
        intro: &intro,
        hidden,
        error,
        deny: false,
        about: Vec::new(),
        warning: None,
    }
    .html();
    respond(status, html, Some(&checked.redirect_origin))
}

/// `GET /auth/authorize?…`: the login page.
pub async fn page(State(auth): State<Arc<Auth>>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(o) = origin(&auth.options, &headers, &uri) else {
        return bad_request("The request names no usable Host.");
    };
    let form = Form::parse(uri.query().unwrap_or("").as_bytes());
    match check(&form, &o) {
        Ok(checked) => sign_in_page(StatusCode::OK, &form, &checked, None),
        Err(why) => bad_request(&why),
    }
}

/// `POST /auth/authorize`: signs in, then redirects with a code.
pub async fn submit(
    State(auth): State<Arc<Auth>>,
    Peer { ctx, ip }: Peer,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let Some(o) = origin(&auth.options, &headers, &uri) else {
        return bad_request("The request names no usable Host.");
    };
    let form = Form::parse(&body);
    let checked = match check(&form, &o) {
        Ok(c) => c,
        Err(why) => return bad_request(&why),
    };
    let credentials = Credentials::from_form(&form);
    let user = match signin::check(&auth, &ctx, ip, &credentials).await {
        Ok(SignIn::Ok(user)) => user,
        Ok(SignIn::Refused) => {
            return sign_in_page(
                StatusCode::UNAUTHORIZED,
                &form,
                &checked,
                Some(signin::WRONG),
            );
        }
        Ok(SignIn::Limited(wait)) => {
            let mut r = sign_in_page(
                StatusCode::TOO_MANY_REQUESTS,
                &form,
                &checked,
                Some("Too many failed sign-ins; try again later"),
            );
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        Err(e) => return unavailable(&e),
    };
    let now = store::now_ms();
    let c = (
        checked.client_id.clone(),
        checked.redirect_uri.clone(),
        checked.challenge.clone(),
        checked.scope.clone(),
    );
    let made = auth
        .db
        .write(move |conn| -> Result<String, FhirError> {
            let code = codes::create(conn, &c.0, &c.1, &c.2, user.id, &c.3, now).map_err(|e| {
                tracing::error!(error = %e, "could not make an authorization code");
                FhirError::internal()
            })?;
            let detail = format!("authorization code for {} ({})", c.0, c.3);
            let e = event(&ctx, Some(&user), "sign-in", 200, detail);
            audit::append(conn, &[e])?;
            Ok(code)
        })
        .await;
    let code = match made {
        Ok(code) => code,
        Err(e) => return unavailable(&e),
    };
    redirect(&checked, &code)
}

fn unavailable(e: &FhirError) -> Response {
    respond(
        StatusCode::SERVICE_UNAVAILABLE,
        message(TITLE, &e.message),
        None,
    )
}

/// `302` to the redirect URI with the code and the state.
fn redirect(checked: &Checked, code: &str) -> Response {
    let Ok(mut url) = url::Url::parse(&checked.redirect_uri) else {
        return bad_request("The redirect_uri is not a URI.");
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("code", code);
        if let Some(s) = &checked.state {
            q.append_pair("state", s);
        }
    }
    let Ok(location) = HeaderValue::from_str(url.as_str()) else {
        return bad_request("The redirect_uri is not a URI.");
    };
    let mut r = StatusCode::FOUND.into_response();
    let h = r.headers_mut();
    h.insert(header::LOCATION, location);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}
