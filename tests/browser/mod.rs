//! The person at the browser: opens the login page chartty printed, signs
//! in with a password, and either follows the redirect (to chartty's
//! loopback listener) or copies the address it ended on; or approves a
//! device code. Real HTTP against the real portal server.

#![allow(dead_code)] // each test binary uses part of this

use reqwest::{Client, StatusCode, header};

fn client() -> Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Signs in on the page at `authorize_url`; the address the server sends
/// the browser to (the redirect with the code).
pub async fn sign_in(authorize_url: &str, login: &str, password: &str) -> String {
    let c = client();
    let page = c.get(authorize_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the login page");
    let html = page.text().await.unwrap();
    assert!(html.contains("name=\"password\""), "{html}");
    let url = url::Url::parse(authorize_url).unwrap();
    // The page's hidden fields are the request's own parameters.
    let mut fields: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    fields.push(("login".into(), login.into()));
    fields.push(("password".into(), password.into()));
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let posted = c
        .post(
            format!(
                "{}://{}{}",
                url.scheme(),
                url.host_str().unwrap(),
                url.port().map(|p| format!(":{p}")).unwrap_or_default()
            ) + url.path(),
        )
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&pairs))
        .send()
        .await
        .unwrap();
    assert_eq!(
        posted.status(),
        StatusCode::FOUND,
        "signed in: {}",
        posted.text().await.unwrap_or_default()
    );
    posted
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_string()
}

/// Follows a redirect as the browser would (to chartty's listener).
pub async fn follow(location: &str) -> String {
    let r = client().get(location).send().await.unwrap();
    r.text().await.unwrap_or_default()
}

/// Approves (or denies) a device code on the verification page: types the
/// code first when the address does not carry it, as a person does.
pub async fn device(
    verification_uri: &str,
    user_code: &str,
    login: &str,
    password: &str,
    approve: bool,
) {
    let c = client();
    let bare = verification_uri.split('?').next().unwrap();
    let mut details = verification_uri.to_string();
    if !verification_uri.contains("user_code=") {
        let page = c.get(verification_uri).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "the device page");
        let html = page.text().await.unwrap();
        assert!(
            html.contains("method=\"get\"") && html.contains("name=\"user_code\""),
            "asks for the code: {html}"
        );
        assert!(!html.contains("name=\"password\""), "{html}");
        details = format!("{bare}?{}", form(&[("user_code", user_code)]));
    }
    let page = c.get(&details).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the code's page");
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Approving lets that terminal") && html.contains("name=\"password\""),
        "says what the code is for: {html}"
    );
    let action = if approve { "approve" } else { "deny" };
    let r = c
        .post(bare)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&[
            ("user_code", user_code),
            ("login", login),
            ("password", password),
            ("action", action),
        ]))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(
        status,
        StatusCode::OK,
        "{action}: {}",
        r.text().await.unwrap_or_default()
    );
}
