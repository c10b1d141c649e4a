//! chartty's sign-in client against the real portal server over loopback
//! HTTP: the authorization code with PKCE taken on the loopback listener
//! and from a pasted address, the device code, refresh before expiry (with
//! the rotated token), revocation, and the lock screen unlocked by signing
//! in again — only by the same person. The browser is played by the test.

mod browser;
mod common;

use std::time::{Duration, Instant};

use chartty::api::ApiClient;
use chartty::api::http::HttpOptions;
use chartty::api::signin::loopback::{Callback, code_from_pasted};
use chartty::api::signin::{Bearer, SignIn, TokenSet, pkce};
use chartty::roles::Role;
use chartty::server::{self, DemoUser, RunningServer, ServerConfig, demo};
use chartty::tui::app::LockStep;
use chartty::tui::headless::Headless;
use chartty::tui::keymap::Keymap;
use chartty::tui::theme::Theme;
use chartty::tui::{App, Session};

struct Portal {
    srv: RunningServer,
    _dir: tempfile::TempDir,
}

async fn portal(access_ttl: Duration) -> Portal {
    portal_with(access_ttl, |_| {}).await
}

async fn portal_with(access_ttl: Duration, tune: impl FnOnce(&mut server::Options)) -> Portal {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = server::Options {
        device_interval: Duration::from_secs(1),
        access_ttl,
        ..server::Options::default()
    };
    tune(&mut options);
    let srv = server::start_with(
        ServerConfig {
            db: dir.path().join("portal.db"),
            demo: Some(demo::DemoOptions {
                patients: 10,
                seed: 4,
                anchor: common::anchor(),
            }),
        },
        listener,
        demo::staff(),
        options,
    )
    .await
    .unwrap();
    Portal { srv, _dir: dir }
}

impl Portal {
    fn user(&self, role: Role) -> &DemoUser {
        self.srv.users.iter().find(|u| u.role == role).unwrap()
    }
}

fn http() -> HttpOptions {
    HttpOptions::new(Duration::from_secs(20))
}

async fn whoami(p: &Portal, token: &str) -> (u16, serde_json::Value) {
    let r = reqwest::Client::new()
        .get(format!("{}/$whoami", p.srv.base_url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

fn login_of(who: &serde_json::Value) -> String {
    who["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "login")
        .and_then(|p| p["valueString"].as_str())
        .unwrap_or("")
        .to_string()
}

/// A whole browser sign-in as `role`: the tokens.
async fn browser_sign_in(p: &Portal, signin: &SignIn, role: Role, paste: bool) -> TokenSet {
    let cb = Callback::bind(0).await.unwrap();
    let verifier = pkce::random_text().unwrap();
    let state = pkce::random_text().unwrap();
    let url = signin
        .authorize_url(&cb.redirect_uri, &state, &verifier)
        .unwrap();
    let u = p.user(role);
    let location = browser::sign_in(&url, &u.login, &u.password).await;
    let code = if paste {
        // Nothing listens where the browser was sent (an SSH session
        // without a forward): the user pastes the address it ended on.
        code_from_pasted(&location, &state).unwrap()
    } else {
        let (code, page) = tokio::join!(cb.code(&state), browser::follow(&location));
        assert!(page.contains("return to your terminal"), "{page}");
        code.unwrap()
    };
    signin
        .exchange_code(&code, &verifier, &cb.redirect_uri)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_sign_in_works_by_loopback_and_by_pasted_address_and_names_the_user() {
    let p = portal(Duration::from_secs(3600)).await;
    let signin = SignIn::discover(&p.srv.base_url, &http()).await.unwrap();
    assert!(signin.config.v2(), "the portal takes SMART v2 scopes");
    assert!(signin.config.device_endpoint().is_some());

    for paste in [false, true] {
        let t = browser_sign_in(&p, &signin, Role::Nurse, paste).await;
        let nurse = p.user(Role::Nurse);
        let id = t.identity.clone().expect("an id_token");
        assert_eq!(id.subject, nurse.login);
        assert_eq!(
            id.fhir_user.as_deref(),
            Some(format!("{}/{}", p.srv.base_url, nurse.practitioner).as_str()),
            "fhirUser names the practitioner"
        );
        assert!(
            t.refresh_token.is_some(),
            "offline_access gives a refresh token"
        );
        let (status, who) = whoami(&p, &t.access_token).await;
        assert_eq!(status, 200);
        assert_eq!(login_of(&who), nurse.login);
    }

    // A code from someone else's sign-in (another state) is refused before
    // it is ever exchanged.
    let cb = Callback::bind(0).await.unwrap();
    let verifier = pkce::random_text().unwrap();
    let url = signin
        .authorize_url(&cb.redirect_uri, "theirs", &verifier)
        .unwrap();
    let u = p.user(Role::Attending);
    let location = browser::sign_in(&url, &u.login, &u.password).await;
    assert!(
        code_from_pasted(&location, "mine")
            .unwrap_err()
            .contains("does not match")
    );
    // The right code with the wrong verifier is refused by the server.
    let code = code_from_pasted(&location, "theirs").unwrap();
    let wrong = signin
        .exchange_code(&code, &pkce::random_text().unwrap(), &cb.redirect_uri)
        .await
        .unwrap_err();
    assert!(wrong.contains("refused"), "{wrong}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_code_is_approved_on_another_device_or_refused() {
    let p = portal(Duration::from_secs(3600)).await;
    let signin = SignIn::discover(&p.srv.base_url, &http()).await.unwrap();
    let u = p.user(Role::Attending).clone();

    let start = signin.device_start().await.unwrap();
    assert_eq!(start.user_code.len(), 9, "{}", start.user_code);
    let approve = {
        let (uri, code) = (start.verification_uri.clone(), start.user_code.clone());
        let u = u.clone();
        async move {
            // The person takes a moment: chartty polls meanwhile.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            browser::device(&uri, &code, &u.login, &u.password, true).await;
        }
    };
    let (tokens, ()) = tokio::join!(signin.device_wait(&start), approve);
    let tokens = tokens.unwrap();
    assert_eq!(tokens.identity.unwrap().subject, u.login);

    let start = signin.device_start().await.unwrap();
    let deny = browser::device(&start.verification_uri, &start.user_code, "", "", false);
    let (refused, ()) = tokio::join!(signin.device_wait(&start), deny);
    assert!(refused.unwrap_err().contains("refused"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_token_is_refreshed_before_it_expires_and_revocation_ends_it() {
    // Access tokens that live 2 s: due for a refresh in their last fifth.
    // No grace for the refresh token spent last: the copy below is
    // presented as a thief would, long after, not as a retry.
    let p = portal_with(Duration::from_secs(2), |o| {
        o.refresh_reuse_grace = Duration::ZERO
    })
    .await;
    let signin = SignIn::discover(&p.srv.base_url, &http()).await.unwrap();
    let first = browser_sign_in(&p, &signin, Role::Resident, false).await;
    let first_access = first.access_token.clone();
    let first_refresh = first.refresh_token.clone().unwrap();
    assert!(
        !first.due(Instant::now()),
        "not refreshed before every request"
    );
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert!(first.due(Instant::now()));

    let bearer = Bearer::signed_in(signin.clone(), first, None);
    let client = ApiClient::new(&p.srv.base_url, None, Duration::from_secs(20))
        .unwrap()
        .with_bearer(bearer.clone());
    let now_token = bearer.current().await.unwrap().unwrap();
    assert_ne!(now_token, first_access, "refreshed before use");
    assert_eq!(whoami(&p, &now_token).await.0, 200);
    drop(client);

    // The server rotated the refresh token: the first one is spent, and
    // using it again (a stolen copy) ends the whole sign-in.
    let reused = signin.refresh(&first_refresh).await.unwrap_err();
    assert!(
        matches!(reused, chartty::api::signin::RefreshFailed::Ended(_)),
        "{reused:?}"
    );
    assert_eq!(
        whoami(&p, &now_token).await.0,
        401,
        "reuse revoked the grant"
    );

    // Revocation (what `chartty logout` does) ends a fresh sign-in.
    let t = browser_sign_in(&p, &signin, Role::Resident, true).await;
    assert!(
        signin
            .revoke(t.refresh_token.as_ref().unwrap(), "refresh_token")
            .await
            .unwrap()
    );
    assert_eq!(whoami(&p, &t.access_token).await.0, 401);
    assert!(
        signin
            .refresh(t.refresh_token.as_ref().unwrap())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_access_token_is_renewed_and_the_request_sent_again() {
    let p = portal(Duration::from_secs(3600)).await;
    let (mut h, signin, first) = smart_app_with(&p, Role::Attending).await;
    // The access token alone is revoked (the grant lives on).
    assert!(
        signin
            .revoke(&first.access_token, "access_token")
            .await
            .unwrap()
    );
    assert_eq!(whoami(&p, &first.access_token).await.0, 401);
    let row = h.app.panes.search.listed()[0].clone();
    let query: String = row.name.chars().take(4).collect::<String>().to_lowercase();
    common::open(&mut h, &query, &row.id).await;
    assert!(h.app.locked().is_none(), "renewed, not locked");
    // The chart came in the batch sent again with the renewed token, and
    // the next request goes with the new token straight away.
    let chart = h.app.chart().expect("the chart opened");
    assert_eq!(chart.patient.id.as_deref(), Some(row.id.as_str()));
    h.keys("3").unwrap();
    h.settle().await;
    assert!(h.app.locked().is_none());
}

async fn smart_app(p: &Portal, role: Role) -> Headless {
    smart_app_with(p, role).await.0
}

/// The app signed in as `role`, and the sign-in's client and first tokens.
async fn smart_app_with(p: &Portal, role: Role) -> (Headless, SignIn, TokenSet) {
    let signin = SignIn::discover(&p.srv.base_url, &http()).await.unwrap();
    let tokens = browser_sign_in(p, &signin, role, false).await;
    let first = tokens.clone();
    let kept_signin = signin.clone();
    let bearer = Bearer::signed_in(signin, tokens, None);
    let session = Session {
        base_url: p.srv.base_url.clone(),
        role: Some(role),
        bearer: Some(bearer.clone()),
        ..Session::default()
    };
    let client = ApiClient::new(&p.srv.base_url, None, Duration::from_secs(20))
        .unwrap()
        .with_bearer(bearer)
        .with_request_log();
    let settings = common::settings();
    let mut app = App::new(
        &settings,
        session,
        Keymap::defaults(),
        Theme::default(),
        common::anchor(),
    );
    app.start();
    let mut h = Headless::new(app, client);
    h.settle().await;
    (h, kept_signin, first)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_revoked_elsewhere_locks_the_screen_and_signing_in_again_goes_on() {
    let p = portal(Duration::from_secs(3600)).await;
    let (mut h, signin, first) = smart_app_with(&p, Role::Nurse).await;
    let row = h.app.panes.search.listed()[0].clone();
    let query: String = row.name.chars().take(4).collect::<String>().to_lowercase();
    common::open(&mut h, &query, &row.id).await;

    // An administrator (or a logout on another machine) revokes it.
    assert!(
        signin
            .revoke(first.refresh_token.as_ref().unwrap(), "refresh_token")
            .await
            .unwrap()
    );
    h.keys("2r").unwrap();
    h.settle().await;
    let lock = h.app.locked().expect("a refused sign-in locks the screen");
    assert_eq!(lock.reason, chartty::tui::app::LockReason::SignInEnded);
    assert!(h.app.chart().is_none());
    let shown = common::screen(&mut h, 80, 24);
    assert!(shown.contains("Your sign-in has ended"), "{shown}");

    let me = p.user(Role::Nurse).clone();
    approve_shown_code(&mut h, &me).await;
    assert!(h.app.locked().is_none(), "{:?}", h.app.locked());
    assert_eq!(
        h.app.chart().and_then(|c| c.patient.id.clone()),
        Some(row.id)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_screen_unlocks_only_for_the_person_who_signed_in() {
    let p = portal(Duration::from_secs(3600)).await;
    let mut h = smart_app(&p, Role::Attending).await;
    let row = h.app.panes.search.listed()[0].clone();
    let query: String = row.name.chars().take(4).collect::<String>().to_lowercase();
    common::open(&mut h, &query, &row.id).await;

    h.keys("<c-l>").unwrap();
    h.settle().await;
    assert!(h.app.locked().is_some_and(|l| l.tokens_dropped));
    assert!(h.app.chart().is_none());
    let shown = common::screen(&mut h, 80, 24);
    assert!(
        !shown.contains("t  type or paste"),
        "no token to paste in a SMART session:\n{shown}"
    );

    // Someone else approves the code: refused, still locked.
    let nurse = p.user(Role::Nurse).clone();
    approve_shown_code(&mut h, &nurse).await;
    let lock = h.app.locked().expect("still locked");
    assert_eq!(lock.step, LockStep::Choose);
    let why = lock.problem.clone().unwrap_or_default();
    assert!(
        why.contains("unlocks only for the person who locked it"),
        "{why}"
    );

    // The same person: unlocked, the chart back.
    let me = p.user(Role::Attending).clone();
    approve_shown_code(&mut h, &me).await;
    assert!(h.app.locked().is_none(), "{:?}", h.app.locked());
    assert_eq!(
        h.app.chart().and_then(|c| c.patient.id.clone()),
        Some(row.id)
    );
}

/// Presses `d`, reads the code off the lock screen and approves it as `who`.
async fn approve_shown_code(h: &mut Headless, who: &DemoUser) {
    h.keys("d").unwrap();
    // The code arrives; the wait for its approval is then in flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    let start = loop {
        h.pump().await;
        if let Some(LockStep::Device(s)) = h.app.locked().map(|l| l.step.clone()) {
            break s;
        }
        assert!(Instant::now() < deadline, "no code shown");
    };
    let shown = common::screen(h, 80, 24);
    assert!(shown.contains(&start.user_code), "{shown}");
    browser::device(
        &start.verification_uri,
        &start.user_code,
        &who.login,
        &who.password,
        true,
    )
    .await;
    h.settle().await;
}
