//! The portal as the OAuth 2 / SMART authorization server of its users,
//! over real HTTP against the real server: discovery; the authorization
//! code grant with PKCE, played as a browser would (the login page, its
//! form, the redirect) and its token then used on `/fhir`; what is refused
//! (wrong verifier, a code used twice, foreign redirects, no PKCE, unknown
//! clients); refresh-token rotation and reuse; revocation; the device
//! grant; sign-in limits and their audit records; TOTP; disabled users; the
//! page's escaping; the id_token's claims and signature.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use chartty::roles::Role;
use chartty::server::{self, DemoUser, RunningServer, ServerConfig, demo};
use reqwest::{Client, StatusCode, header};
use serde_json::Value;
use sha2::{Digest, Sha256};

const REDIRECT: &str = "http://127.0.0.1:53682/callback";
const VERIFIER: &str = "a-verifier-long-enough-to-be-one.0123456789_abcdefghijklmnop~";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn b64url(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn form(pairs: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Failures collected, to be reported all at once.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn check(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.0.push(what.into());
        }
    }

    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, got: T, want: T, what: &str) {
        if got != want {
            self.0.push(format!("{what}: got {got:?}, want {want:?}"));
        }
    }

    fn done(self) {
        assert!(self.0.is_empty(), "\n{}", self.0.join("\n"));
    }
}

struct Portal {
    srv: RunningServer,
    c: Client,
    db: PathBuf,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    headers: header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `code` and `state` of a redirect to the client.
    fn redirected(&self) -> Option<(String, Option<String>)> {
        let url = url::Url::parse(self.header("location")).ok()?;
        let get = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        Some((get("code")?, get("state")))
    }
}

async fn portal_with(tune: impl FnOnce(&mut server::Options)) -> Portal {
    portal_on(None, tune).await
}

async fn portal_on(
    demo_data: Option<demo::DemoOptions>,
    tune: impl FnOnce(&mut server::Options),
) -> Portal {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("portal.db");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut options = server::Options {
        device_interval: Duration::from_secs(1),
        ..server::Options::default()
    };
    tune(&mut options);
    let srv = server::start_with(
        ServerConfig {
            db: db.clone(),
            demo: demo_data,
        },
        listener,
        demo::staff(),
        options,
    )
    .await
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Portal {
        srv,
        c,
        db,
        _dir: dir,
    }
}

async fn portal() -> Portal {
    portal_with(|_| {}).await
}

impl Portal {
    fn origin(&self) -> String {
        format!("http://{}", self.srv.addr)
    }

    fn user(&self, role: Role) -> &DemoUser {
        self.srv.users.iter().find(|u| u.role == role).unwrap()
    }

    async fn answer(r: reqwest::Response) -> Answer {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            text,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        let r = self
            .c
            .get(format!("{}{path}", self.origin()))
            .send()
            .await
            .unwrap();
        Self::answer(r).await
    }

    /// A GET that names a client in `X-Forwarded-For`, as a proxy does.
    async fn get_from(&self, forwarded_for: &str, path: &str) -> Answer {
        let r = self
            .c
            .get(format!("{}{path}", self.origin()))
            .header("x-forwarded-for", forwarded_for)
            .send()
            .await
            .unwrap();
        Self::answer(r).await
    }

    async fn post(&self, path: &str, pairs: &[(&str, &str)]) -> Answer {
        self.post_from(None, path, pairs).await
    }

    /// A post that names a client in `X-Forwarded-For`, as a proxy does.
    async fn post_from(
        &self,
        forwarded_for: Option<&str>,
        path: &str,
        pairs: &[(&str, &str)],
    ) -> Answer {
        let mut b = self
            .c
            .post(format!("{}{path}", self.origin()))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(xff) = forwarded_for {
            b = b.header("x-forwarded-for", xff);
        }
        let r = b.body(form(pairs)).send().await.unwrap();
        Self::answer(r).await
    }

    async fn whoami(&self, token: &str) -> (StatusCode, Value) {
        let r = self
            .c
            .get(format!("{}/$whoami", self.srv.base_url))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The authorization request's parameters (for the query or the form).
    fn authorize_params<'a>(&self, scope: &'a str, state: &'a str) -> Vec<(&'a str, String)> {
        vec![
            ("response_type", "code".into()),
            ("client_id", "chartty".into()),
            ("redirect_uri", REDIRECT.into()),
            ("scope", scope.into()),
            ("state", state.into()),
            ("code_challenge", challenge(VERIFIER)),
            ("code_challenge_method", "S256".into()),
            ("aud", self.srv.base_url.clone()),
        ]
    }

    /// Posts the login form as a browser would.
    async fn sign_in(&self, login: &str, password: &str, totp: &str, scope: &str) -> Answer {
        self.sign_in_from(None, login, password, totp, scope).await
    }

    /// [`Portal::sign_in`] through a proxy that names the browser.
    async fn sign_in_from(
        &self,
        forwarded_for: Option<&str>,
        login: &str,
        password: &str,
        totp: &str,
        scope: &str,
    ) -> Answer {
        let mut pairs: Vec<(&str, String)> = self.authorize_params(scope, "st-1");
        pairs.push(("login", login.into()));
        pairs.push(("password", password.into()));
        pairs.push(("totp", totp.into()));
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.post_from(forwarded_for, "/auth/authorize", &borrowed)
            .await
    }

    async fn exchange(&self, code: &str, verifier: &str) -> Answer {
        self.post(
            "/auth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("code_verifier", verifier),
                ("redirect_uri", REDIRECT),
                ("client_id", "chartty"),
            ],
        )
        .await
    }

    /// Signs `role` in through the code grant; the token answer.
    async fn tokens(&self, role: Role, scope: &str) -> Value {
        let u = self.user(role);
        let signed = self.sign_in(&u.login, &u.password, "", scope).await;
        assert_eq!(signed.status, StatusCode::FOUND, "{}", signed.text);
        let (code, _) = signed.redirected().unwrap();
        let t = self.exchange(&code, VERIFIER).await;
        assert_eq!(t.status, StatusCode::OK, "{}", t.text);
        t.json()
    }

    async fn refresh(&self, token: &str) -> Answer {
        self.post(
            "/auth/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token),
                ("client_id", "chartty"),
            ],
        )
        .await
    }
}

/// (action, user, status, detail, source) of an audit record.
type Record = (String, Option<String>, i64, Option<String>, Option<String>);

/// Every audit record.
fn audit(db: &Path) -> Vec<Record> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT action, user, status, detail, source FROM audit ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Every text column of every audit record, for "never written" checks.
fn audit_text(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT COALESCE(source,'') || COALESCE(user,'') || COALESCE(name,'') || action || \
             COALESCE(query,'') || COALESCE(detail,'') || entities FROM audit",
        )
        .unwrap();
    stmt.query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .join("\n")
}

fn oauth_error(a: &Answer) -> String {
    a.json()["error"].as_str().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_names_every_endpoint_at_the_servers_origin() {
    let p = portal().await;
    let o = p.origin();
    let mut c = Checks::default();
    for path in [
        "/.well-known/smart-configuration",
        "/fhir/.well-known/smart-configuration",
    ] {
        let a = p.get(path).await;
        c.eq(a.status, StatusCode::OK, path);
        let d = a.json();
        for (field, want) in [
            ("issuer", o.clone()),
            ("authorization_endpoint", format!("{o}/auth/authorize")),
            ("token_endpoint", format!("{o}/auth/token")),
            ("device_authorization_endpoint", format!("{o}/auth/device")),
            ("revocation_endpoint", format!("{o}/auth/revoke")),
            ("jwks_uri", format!("{o}/auth/jwks")),
        ] {
            c.eq(
                d[field].as_str(),
                Some(want.as_str()),
                &format!("{path} {field}"),
            );
        }
        let list = |f: &str| -> Vec<String> {
            d[f].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        c.eq(
            list("grant_types_supported"),
            vec![
                "authorization_code".to_string(),
                "refresh_token".into(),
                "urn:ietf:params:oauth:grant-type:device_code".into(),
            ],
            "grant types",
        );
        c.eq(
            list("token_endpoint_auth_methods_supported"),
            vec!["none".to_string()],
            "auth methods",
        );
        c.eq(
            list("code_challenge_methods_supported"),
            vec!["S256".to_string()],
            "PKCE methods",
        );
        c.eq(
            list("response_types_supported"),
            vec!["code".to_string()],
            "response types",
        );
        for s in ["openid", "fhirUser", "offline_access", "user/*.cruds"] {
            c.check(
                list("scopes_supported").contains(&s.to_string()),
                format!("scope {s}"),
            );
        }
        c.eq(
            list("capabilities"),
            [
                "launch-standalone",
                "client-public",
                "permission-v1",
                "permission-v2",
                "permission-offline",
                "permission-user",
                "sso-openid-connect",
            ]
            .map(String::from)
            .to_vec(),
            "capabilities",
        );
    }
    let jwks = p.get("/auth/jwks").await.json();
    c.eq(jwks["keys"][0]["alg"].as_str(), Some("ES256"), "jwks alg");
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_url_is_the_origin_behind_a_proxy() {
    let p = portal_with(|o| o.public_url = Some("https://portal.example".into())).await;
    let d = p.get("/fhir/.well-known/smart-configuration").await.json();
    assert_eq!(d["issuer"], "https://portal.example");
    assert_eq!(d["token_endpoint"], "https://portal.example/auth/token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_grant_with_pkce_signs_a_user_in_for_fhir() {
    let p = portal().await;
    let nurse = p.user(Role::Nurse);
    let mut c = Checks::default();

    // The browser opens the login page.
    let q: Vec<(&str, String)> =
        p.authorize_params("openid fhirUser offline_access user/*.cruds", "st-1");
    let query = form(&q.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());
    let page = p.get(&format!("/auth/authorize?{query}")).await;
    c.eq(page.status, StatusCode::OK, "login page");
    c.check(
        page.header("content-security-policy")
            .starts_with("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"),
        format!("CSP: {}", page.header("content-security-policy")),
    );
    c.eq(page.header("x-frame-options"), "DENY", "X-Frame-Options");
    c.eq(
        page.header("cache-control"),
        "no-store",
        "page Cache-Control",
    );
    c.check(
        page.header("content-type").starts_with("text/html"),
        "page is HTML",
    );
    for field in [
        "name=\"login\"",
        "name=\"password\"",
        "name=\"totp\"",
        "name=\"code_challenge\"",
    ] {
        c.check(page.text.contains(field), format!("page has {field}"));
    }

    // It posts the form and is sent back to the client with a code.
    let signed = p
        .sign_in(
            &nurse.login,
            &nurse.password,
            "",
            "openid fhirUser offline_access user/*.cruds",
        )
        .await;
    c.eq(signed.status, StatusCode::FOUND, "sign-in redirects");
    c.check(
        signed.header("location").starts_with(REDIRECT),
        format!("Location {}", signed.header("location")),
    );
    let (code, state) = signed.redirected().expect("a code in the redirect");
    c.eq(state.as_deref(), Some("st-1"), "state comes back");

    // The client exchanges it.
    let t = p.exchange(&code, VERIFIER).await;
    c.eq(t.status, StatusCode::OK, "token answer");
    c.eq(t.header("cache-control"), "no-store", "token Cache-Control");
    let body = t.json();
    c.eq(body["token_type"].as_str(), Some("Bearer"), "token_type");
    c.eq(body["expires_in"].as_i64(), Some(3600), "expires_in");
    c.eq(
        body["scope"].as_str(),
        Some("openid fhirUser offline_access user/*.cruds"),
        "granted scope",
    );
    c.check(
        body["refresh_token"].is_string(),
        "a refresh token (offline_access)",
    );
    let access = body["access_token"].as_str().unwrap_or("");
    let (status, who) = p.whoami(access).await;
    c.eq(status, StatusCode::OK, "$whoami with the access token");
    let login = who["parameter"]
        .as_array()
        .and_then(|ps| ps.iter().find(|x| x["name"] == "login"))
        .and_then(|x| x["valueString"].as_str())
        .unwrap_or("")
        .to_string();
    c.eq(
        login.as_str(),
        nurse.login.as_str(),
        "$whoami names the nurse",
    );

    // The id_token: claims, and an ES256 signature the JWKS verifies.
    let id_token = body["id_token"].as_str().unwrap_or("");
    let parts: Vec<&str> = id_token.split('.').collect();
    assert_eq!(parts.len(), 3, "{id_token}");
    let header: Value = serde_json::from_slice(&b64url(parts[0])).unwrap();
    let claims: Value = serde_json::from_slice(&b64url(parts[1])).unwrap();
    c.eq(header["alg"].as_str(), Some("ES256"), "JWS alg");
    c.eq(claims["iss"].as_str(), Some(p.origin().as_str()), "iss");
    c.eq(claims["sub"].as_str(), Some(nurse.login.as_str()), "sub");
    c.eq(claims["aud"].as_str(), Some("chartty"), "aud");
    c.eq(claims["name"].as_str(), Some(nurse.name.as_str()), "name");
    c.eq(
        claims["fhirUser"].as_str().map(String::from),
        Some(format!("{}/fhir/{}", p.origin(), nurse.practitioner)),
        "fhirUser",
    );
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    c.check(
        exp > iat && (iat - chrono::Utc::now().timestamp()).abs() < 60,
        format!("iat {iat} exp {exp}"),
    );
    let jwks = p.get("/auth/jwks").await.json();
    let key = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kid"] == header["kid"]))
        .expect("the id_token's key is in the JWKS");
    let mut point = vec![4u8];
    point.extend(b64url(key["x"].as_str().unwrap()));
    point.extend(b64url(key["y"].as_str().unwrap()));
    let public =
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point);
    let signed_part = format!("{}.{}", parts[0], parts[1]);
    c.check(
        public
            .verify(signed_part.as_bytes(), &b64url(parts[2]))
            .is_ok(),
        "the id_token's signature verifies",
    );
    let mut forged = claims.clone();
    forged["sub"] = "someone-else".into();
    let forged_part = format!(
        "{}.{}",
        parts[0],
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string())
    );
    c.check(
        public
            .verify(forged_part.as_bytes(), &b64url(parts[2]))
            .is_err(),
        "a changed id_token does not verify",
    );

    // The record names the nurse and where she signed in from; no secret.
    let records = audit(&p.db);
    let issued = records.iter().find(|r| {
        r.0 == "token-issue" && r.1.as_deref() == Some(nurse.login.as_str()) && r.2 == 200
    });
    c.check(issued.is_some(), "token-issue recorded");
    c.check(
        records.iter().any(|r| {
            r.0 == "sign-in"
                && r.2 == 200
                && r.4.as_deref().is_some_and(|s| s.starts_with("127.0.0.1:"))
        }),
        "sign-in recorded with the client address",
    );
    let text = audit_text(&p.db);
    for secret in [
        nurse.password.as_str(),
        code.as_str(),
        access,
        body["refresh_token"].as_str().unwrap_or("-"),
    ] {
        c.check(
            !text.contains(secret),
            "no password, code or token in the audit",
        );
    }
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_requests_that_fail_the_checks_get_a_page_not_a_redirect() {
    let p = portal().await;
    let mut c = Checks::default();
    let good = p.authorize_params("openid user/*.cruds", "s");
    // (case, parameters replaced: None removes one)
    type Change<'a> = (&'a str, Option<&'a str>);
    let cases: Vec<(&str, Vec<Change>)> = vec![
        (
            "non-loopback redirect",
            vec![("redirect_uri", Some("http://evil.example/cb"))],
        ),
        (
            "https loopback is not the native redirect",
            vec![("redirect_uri", Some("https://127.0.0.1:1/cb"))],
        ),
        (
            "missing PKCE",
            vec![("code_challenge", None), ("code_challenge_method", None)],
        ),
        ("plain PKCE", vec![("code_challenge_method", Some("plain"))]),
        ("no PKCE method", vec![("code_challenge_method", None)]),
        ("unknown client", vec![("client_id", Some("someone-else"))]),
        (
            "wrong response_type",
            vec![("response_type", Some("token"))],
        ),
        (
            "foreign aud",
            vec![("aud", Some("https://other.example/fhir"))],
        ),
        ("no known scope", vec![("scope", Some("launch/patient"))]),
    ];
    let nurse = p.user(Role::Nurse);
    for (name, changes) in cases {
        let mut params: Vec<(&str, String)> = good.clone();
        for (k, v) in &changes {
            params.retain(|(n, _)| n != k);
            if let Some(v) = v {
                params.push((k, v.to_string()));
            }
        }
        let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let get = p.get(&format!("/auth/authorize?{}", form(&pairs))).await;
        c.eq(get.status, StatusCode::BAD_REQUEST, &format!("GET {name}"));
        c.check(
            get.header("location").is_empty(),
            format!("GET {name} does not redirect"),
        );
        let mut posted = pairs.clone();
        posted.extend([
            ("login", nurse.login.as_str()),
            ("password", nurse.password.as_str()),
        ]);
        let post = p.post("/auth/authorize", &posted).await;
        c.eq(
            post.status,
            StatusCode::BAD_REQUEST,
            &format!("POST {name}"),
        );
        c.check(
            post.header("location").is_empty(),
            format!("POST {name} does not redirect"),
        );
    }
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_state_is_escaped_on_the_page() {
    let p = portal().await;
    let hostile = "\"><script>alert(1)</script><img src=x onerror=alert(2)>";
    let q = p.authorize_params("openid", hostile);
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = p.get(&format!("/auth/authorize?{}", form(&pairs))).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.text.contains("<script>"), "{}", page.text);
    assert!(!page.text.contains("<img"), "{}", page.text);
    assert!(
        page.text
            .contains("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{}",
        page.text
    );
    // And on the page that answers a wrong password.
    let mut posted = pairs.clone();
    posted.extend([("login", "nobody"), ("password", "wrong password")]);
    let wrong = p.post("/auth/authorize", &posted).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(!wrong.text.contains("<script>"), "{}", wrong.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_needs_its_verifier_and_a_second_use_revokes_the_first() {
    let p = portal().await;
    let mut c = Checks::default();
    let u = p.user(Role::Attending);

    // Wrong verifier: refused, and the code is spent.
    let signed = p
        .sign_in(&u.login, &u.password, "", "openid user/*.cruds")
        .await;
    let (code, _) = signed.redirected().unwrap();
    let wrong = p
        .exchange(&code, "another-verifier-that-is-long-enough-for-pkce-0000")
        .await;
    c.eq(wrong.status, StatusCode::BAD_REQUEST, "wrong verifier");
    c.eq(
        oauth_error(&wrong).as_str(),
        "invalid_grant",
        "wrong verifier error",
    );
    let after = p.exchange(&code, VERIFIER).await;
    c.eq(
        oauth_error(&after).as_str(),
        "invalid_grant",
        "a code is presented once",
    );

    // Reused: the second exchange is refused and the first one's token dies.
    let signed = p
        .sign_in(
            &u.login,
            &u.password,
            "",
            "openid offline_access user/*.cruds",
        )
        .await;
    let (code, _) = signed.redirected().unwrap();
    let first = p.exchange(&code, VERIFIER).await.json();
    let access = first["access_token"].as_str().unwrap_or("").to_string();
    c.eq(
        p.whoami(&access).await.0,
        StatusCode::OK,
        "first token works",
    );
    let second = p.exchange(&code, VERIFIER).await;
    c.eq(
        oauth_error(&second).as_str(),
        "invalid_grant",
        "reused code",
    );
    c.eq(
        p.whoami(&access).await.0,
        StatusCode::UNAUTHORIZED,
        "reuse revokes the first token",
    );
    let refresh = p
        .refresh(first["refresh_token"].as_str().unwrap_or(""))
        .await;
    c.eq(
        oauth_error(&refresh).as_str(),
        "invalid_grant",
        "and its refresh token",
    );
    c.check(
        audit(&p.db).iter().any(|r| r.0 == "code-reuse"),
        "code reuse recorded",
    );

    // A code for another redirect_uri, and unknown clients and grants.
    let signed = p.sign_in(&u.login, &u.password, "", "openid").await;
    let (code, _) = signed.redirected().unwrap();
    let other = p
        .post(
            "/auth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
                ("redirect_uri", "http://127.0.0.1:1/other"),
                ("client_id", "chartty"),
            ],
        )
        .await;
    c.eq(
        oauth_error(&other).as_str(),
        "invalid_grant",
        "another redirect_uri",
    );
    let unknown = p
        .post(
            "/auth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", "x"),
                ("client_id", "nope"),
            ],
        )
        .await;
    c.eq(
        unknown.status,
        StatusCode::UNAUTHORIZED,
        "unknown client status",
    );
    c.eq(
        oauth_error(&unknown).as_str(),
        "invalid_client",
        "unknown client",
    );
    let grant = p
        .post(
            "/auth/token",
            &[("grant_type", "password"), ("client_id", "chartty")],
        )
        .await;
    c.eq(
        oauth_error(&grant).as_str(),
        "unsupported_grant_type",
        "password grant",
    );
    c.check(
        grant.json()["error_description"].is_string(),
        "error_description",
    );
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_rotate_and_a_spent_one_revokes_the_grant() {
    // No grace: any spent token presented again is a copy.
    let p = portal_with(|o| o.refresh_reuse_grace = Duration::ZERO).await;
    let mut c = Checks::default();
    let first = p
        .tokens(Role::Resident, "openid offline_access user/*.read")
        .await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();

    let a = p.refresh(&r1).await;
    c.eq(a.status, StatusCode::OK, "refresh");
    c.eq(
        a.header("cache-control"),
        "no-store",
        "refresh Cache-Control",
    );
    let second = a.json();
    let r2 = second["refresh_token"].as_str().unwrap_or("").to_string();
    let a2 = second["access_token"].as_str().unwrap_or("").to_string();
    c.check(!r2.is_empty() && r2 != r1, "a new refresh token");
    c.eq(
        second["scope"].as_str(),
        Some("openid offline_access user/*.read"),
        "same scope",
    );
    c.check(second["id_token"].is_string(), "an id_token again (openid)");
    c.eq(
        p.whoami(&a2).await.0,
        StatusCode::OK,
        "the new access token works",
    );

    // The spent one again: refused, and everything of the grant revoked.
    let again = p.refresh(&r1).await;
    c.eq(
        oauth_error(&again).as_str(),
        "invalid_grant",
        "spent refresh token",
    );
    c.eq(
        p.whoami(&a2).await.0,
        StatusCode::UNAUTHORIZED,
        "descendant access token revoked",
    );
    c.eq(
        oauth_error(&p.refresh(&r2).await).as_str(),
        "invalid_grant",
        "descendant refresh token revoked",
    );
    let resident = p.user(Role::Resident).login.clone();
    c.check(
        audit(&p.db)
            .iter()
            .any(|r| r.0 == "refresh-reuse" && r.1.as_deref() == Some(&resident)),
        "reuse recorded with the login",
    );

    // No offline_access or online_access: no refresh token.
    let plain = p.tokens(Role::Resident, "openid user/*.read").await;
    c.check(
        plain.get("refresh_token").is_none(),
        "no refresh token without offline/online_access",
    );
    let online = p.tokens(Role::Resident, "online_access").await;
    c.check(
        online["refresh_token"].is_string(),
        "online_access gives one",
    );
    c.check(
        online.get("id_token").is_none(),
        "no id_token without openid",
    );
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_token_spent_last_may_be_retried_within_the_grace_period() {
    let p = portal_with(|o| o.refresh_reuse_grace = Duration::from_millis(1500)).await;
    let mut c = Checks::default();
    let resident = p.user(Role::Resident).login.clone();
    let first = p.tokens(Role::Resident, "openid offline_access").await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    // The answer to this refresh is "lost": the client tries r1 again.
    let lost = p.refresh(&r1).await.json();
    let retried = p.refresh(&r1).await;
    c.eq(
        retried.status,
        StatusCode::OK,
        "a retry within the grace period",
    );
    let fresh = retried.json();
    let r3 = fresh["refresh_token"].as_str().unwrap_or("").to_string();
    let a3 = fresh["access_token"].as_str().unwrap_or("").to_string();
    c.check(!r3.is_empty() && r3 != r1, "a new refresh token");
    c.eq(
        p.whoami(&a3).await.0,
        StatusCode::OK,
        "its access token works",
    );
    let a2 = lost["access_token"].as_str().unwrap_or("").to_string();
    c.eq(
        p.whoami(&a2).await.0,
        StatusCode::OK,
        "the lost answer's token is not revoked",
    );
    c.check(
        audit(&p.db)
            .iter()
            .any(|r| r.0 == "refresh-retry" && r.1.as_deref() == Some(&resident) && r.2 == 200),
        "the retry recorded",
    );
    c.check(
        !audit(&p.db).iter().any(|r| r.0 == "refresh-reuse"),
        "not as a reuse",
    );
    // The grant goes on from the new pair; r1 is now older than the token
    // spent last, and presenting it revokes the grant even in the grace
    // period.
    let r4 = p.refresh(&r3).await.json()["refresh_token"]
        .as_str()
        .unwrap_or("")
        .to_string();
    c.check(!r4.is_empty(), "refresh from the retried pair");
    c.eq(
        oauth_error(&p.refresh(&r1).await).as_str(),
        "invalid_grant",
        "an older spent token",
    );
    c.eq(
        oauth_error(&p.refresh(&r4).await).as_str(),
        "invalid_grant",
        "the grant is revoked",
    );
    c.eq(
        p.whoami(&a3).await.0,
        StatusCode::UNAUTHORIZED,
        "and its tokens",
    );

    // Past the grace period the token spent last revokes too.
    let t = p.tokens(Role::Resident, "openid offline_access").await;
    let r1 = t["refresh_token"].as_str().unwrap().to_string();
    let next = p.refresh(&r1).await.json();
    tokio::time::sleep(Duration::from_millis(1600)).await;
    c.eq(
        oauth_error(&p.refresh(&r1).await).as_str(),
        "invalid_grant",
        "after the grace period",
    );
    c.eq(
        oauth_error(
            &p.refresh(next["refresh_token"].as_str().unwrap_or(""))
                .await,
        )
        .as_str(),
        "invalid_grant",
        "its grant revoked",
    );
    c.eq(
        audit(&p.db)
            .iter()
            .filter(|r| r.0 == "refresh-reuse" && r.1.as_deref() == Some(&resident))
            .count(),
        2,
        "both reuses recorded",
    );
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_tokens_expire() {
    let p = portal_with(|o| o.refresh_ttl = Duration::from_millis(300)).await;
    let t = p.tokens(Role::Nurse, "offline_access").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let a = p.refresh(t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(oauth_error(&a), "invalid_grant", "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_refresh_token_takes_its_grant_and_an_access_token_goes_alone() {
    let p = portal().await;
    let mut c = Checks::default();
    let t = p.tokens(Role::Nurse, "openid offline_access").await;
    let (access, refresh) = (
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
    );
    let r = p
        .post(
            "/auth/revoke",
            &[
                ("token", &refresh),
                ("token_type_hint", "refresh_token"),
                ("client_id", "chartty"),
            ],
        )
        .await;
    c.eq(r.status, StatusCode::OK, "revoke refresh");
    c.eq(
        p.whoami(&access).await.0,
        StatusCode::UNAUTHORIZED,
        "its access token",
    );
    c.eq(
        oauth_error(&p.refresh(&refresh).await).as_str(),
        "invalid_grant",
        "the refresh token",
    );

    let t = p.tokens(Role::Nurse, "openid offline_access").await;
    let (access, refresh) = (
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
    );
    let r = p
        .post(
            "/auth/revoke",
            &[("token", &access), ("client_id", "chartty")],
        )
        .await;
    c.eq(r.status, StatusCode::OK, "revoke access");
    c.eq(
        p.whoami(&access).await.0,
        StatusCode::UNAUTHORIZED,
        "the access token",
    );
    c.eq(
        p.refresh(&refresh).await.status,
        StatusCode::OK,
        "its refresh token lives on",
    );

    let r = p
        .post(
            "/auth/revoke",
            &[("token", "not-a-token"), ("client_id", "chartty")],
        )
        .await;
    c.eq(r.status, StatusCode::OK, "an unknown token is 200 too");
    let nurse = p.user(Role::Nurse).login.clone();
    let revocations = audit(&p.db)
        .into_iter()
        .filter(|r| r.0 == "token-revoke" && r.1.as_deref() == Some(&nurse))
        .count();
    c.eq(revocations, 2, "revocations recorded");
    c.done();
}

async fn start_device(p: &Portal, scope: &str) -> Value {
    let a = p
        .post(
            "/auth/device",
            &[("client_id", "chartty"), ("scope", scope)],
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json()
}

async fn poll(p: &Portal, device_code: &str) -> Answer {
    p.post(
        "/auth/token",
        &[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("device_code", device_code),
            ("client_id", "chartty"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_grant_waits_slows_down_and_is_approved_or_denied() {
    let p = portal().await;
    let mut c = Checks::default();
    let u = p.user(Role::Attending);
    let o = p.origin();

    let d = start_device(&p, "openid offline_access user/*.cruds").await;
    let user_code = d["user_code"].as_str().unwrap().to_string();
    let device_code = d["device_code"].as_str().unwrap().to_string();
    c.check(
        user_code.len() == 9
            && user_code.as_bytes()[4] == b'-'
            && user_code
                .chars()
                .filter(|c| *c != '-')
                .all(|c| "BCDFGHJKLMNPQRSTVWXZ".contains(c)),
        format!("user code {user_code}"),
    );
    c.eq(
        d["verification_uri"].as_str().map(String::from),
        Some(format!("{o}/auth/device/verify")),
        "verification_uri",
    );
    c.eq(
        d["verification_uri_complete"].as_str().map(String::from),
        Some(format!("{o}/auth/device/verify?user_code={user_code}")),
        "verification_uri_complete",
    );
    c.eq(d["expires_in"].as_i64(), Some(600), "expires_in");
    c.eq(d["interval"].as_i64(), Some(1), "interval");

    c.eq(
        oauth_error(&poll(&p, &device_code).await).as_str(),
        "authorization_pending",
        "first poll",
    );
    c.eq(
        oauth_error(&poll(&p, &device_code).await).as_str(),
        "slow_down",
        "a poll too soon",
    );

    // The person opens the complete URI, signs in wrongly, then rightly
    // (typing the code in lower case and without the dash).
    let page = p
        .get(&format!("/auth/device/verify?user_code={user_code}"))
        .await;
    c.eq(page.status, StatusCode::OK, "verify page");
    c.check(page.text.contains(&user_code), "the page shows the code");
    c.eq(
        page.header("x-frame-options"),
        "DENY",
        "verify page X-Frame-Options",
    );
    let typed = user_code.replace('-', "").to_lowercase();
    let wrong = p
        .post(
            "/auth/device/verify",
            &[
                ("user_code", &typed),
                ("login", &u.login),
                ("password", "not it at all"),
                ("action", "approve"),
            ],
        )
        .await;
    c.eq(
        wrong.status,
        StatusCode::UNAUTHORIZED,
        "wrong password on the verify page",
    );
    c.check(
        wrong.text.contains("Wrong login, password or code"),
        "says what every refusal says",
    );
    let ok = p
        .post(
            "/auth/device/verify",
            &[
                ("user_code", &typed),
                ("login", &u.login),
                ("password", &u.password),
                ("action", "approve"),
            ],
        )
        .await;
    c.eq(ok.status, StatusCode::OK, "approved");
    c.check(
        ok.text
            .contains("Signed in. You can return to your terminal."),
        ok.text.clone(),
    );

    // After slow_down the interval is 1 + 5 s.
    c.eq(
        oauth_error(&poll(&p, &device_code).await).as_str(),
        "slow_down",
        "still too soon",
    );
    let d2 = start_device(&p, "openid user/*.read").await;
    let code2 = d2["device_code"].as_str().unwrap().to_string();
    let user_code2 = d2["user_code"].as_str().unwrap().to_string();
    let ok = p
        .post(
            "/auth/device/verify",
            &[
                ("user_code", &user_code2),
                ("login", &u.login),
                ("password", &u.password),
                ("action", "approve"),
            ],
        )
        .await;
    c.eq(ok.status, StatusCode::OK, "second approved");
    let t = poll(&p, &code2).await;
    c.eq(t.status, StatusCode::OK, "tokens after approval");
    let access = t.json()["access_token"].as_str().unwrap_or("").to_string();
    c.eq(
        p.whoami(&access).await.0,
        StatusCode::OK,
        "device token works on /fhir",
    );
    c.eq(
        t.json()["scope"].as_str(),
        Some("openid user/*.read"),
        "device scope",
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    c.eq(
        oauth_error(&poll(&p, &code2).await).as_str(),
        "invalid_grant",
        "a device code gives tokens once",
    );

    // Denied.
    let d3 = start_device(&p, "openid").await;
    let denied = p
        .post(
            "/auth/device/verify",
            &[
                ("user_code", d3["user_code"].as_str().unwrap()),
                ("action", "deny"),
            ],
        )
        .await;
    c.eq(denied.status, StatusCode::OK, "deny");
    c.eq(
        oauth_error(&poll(&p, d3["device_code"].as_str().unwrap()).await).as_str(),
        "access_denied",
        "denied",
    );

    // An unknown code on the verify page.
    let unknown = p
        .post(
            "/auth/device/verify",
            &[
                ("user_code", "BBBB-BBBB"),
                ("login", &u.login),
                ("password", &u.password),
            ],
        )
        .await;
    c.eq(unknown.status, StatusCode::BAD_REQUEST, "unknown user code");
    let unknown_client = p
        .post(
            "/auth/device",
            &[("client_id", "nope"), ("scope", "openid")],
        )
        .await;
    c.eq(
        oauth_error(&unknown_client).as_str(),
        "invalid_client",
        "device: unknown client",
    );
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_page_says_what_is_being_approved_and_escapes_it() {
    let p = portal_behind_proxy(|_| {}).await;
    let mut c = Checks::default();
    let started = p
        .post_from(
            Some("203.0.113.44"),
            "/auth/device",
            &[
                ("client_id", "chartty"),
                (
                    "scope",
                    "openid fhirUser offline_access user/Patient.rs user/Task.cruds",
                ),
            ],
        )
        .await
        .json();
    let code = started["user_code"].as_str().unwrap_or("").to_string();
    let page = p
        .get(&format!("/auth/device/verify?user_code={code}"))
        .await;
    c.eq(page.status, StatusCode::OK, "page");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    for want in [
        "Only enter a code shown on your own screen. Never approve a code someone sent you.",
        "Asked for",
        today.as_str(),
        "UTC",
        "seconds ago",
        "By a terminal at",
        "203.0.113.44",
        "Know who you are (your name and login)",
        "Read and search: Patient",
        "Create, read, change, delete and search: Task",
        "Keep its access renewing until you sign out",
        "No more than your role allows",
    ] {
        c.check(page.text.contains(want), format!("the page says {want:?}"));
    }
    // After a wrong password it still says so.
    let u = p.user(Role::Nurse);
    let wrong = p
        .post(
            "/auth/device/verify",
            &[
                ("user_code", &code),
                ("login", &u.login),
                ("password", "not it"),
                ("action", "approve"),
            ],
        )
        .await;
    c.eq(wrong.status, StatusCode::UNAUTHORIZED, "wrong password");
    c.check(
        wrong.text.contains("203.0.113.44"),
        "still names the address",
    );
    // Without a waiting code: the warning, nothing about a request.
    let hostile = p
        .get("/auth/device/verify?user_code=%22%3E%3Cscript%3Ealert(1)%3C/script%3E")
        .await;
    c.eq(hostile.status, StatusCode::OK, "hostile code");
    c.check(
        !hostile.text.to_lowercase().contains("<script"),
        format!("escaped: {}", hostile.text),
    );
    c.check(
        hostile.text.contains("&quot;&gt;&lt;SCRIPT&gt;"),
        "shown escaped",
    );
    c.check(
        hostile
            .text
            .contains("Never approve a code someone sent you.")
            && !hostile.text.contains("Asked for"),
        "warning only",
    );
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_page_asks_for_the_code_first_then_says_what_it_is_for() {
    let p = portal_behind_proxy(|_| {}).await;
    let mut c = Checks::default();
    let u = p.user(Role::Nurse);

    // Step 1: the code alone, sent back as a GET; no password yet.
    let bare = p.get("/auth/device/verify").await;
    c.eq(bare.status, StatusCode::OK, "bare page");
    c.check(
        bare.text
            .contains("<form method=\"get\" action=\"/auth/device/verify\">")
            && bare.text.contains("name=\"user_code\""),
        format!("a code field sent by GET: {}", bare.text),
    );
    c.check(
        !bare.text.contains("name=\"password\"") && !bare.text.contains("name=\"login\""),
        "no password field on the bare page",
    );
    c.check(
        bare.text.contains("Never approve a code someone sent you."),
        "the warning on the bare page",
    );
    c.eq(
        bare.header("x-frame-options"),
        "DENY",
        "bare X-Frame-Options",
    );

    // Step 2: the code as typed by hand (lower case, no dash), as the
    // form's GET sends it.
    let started = p
        .post_from(
            Some("203.0.113.44"),
            "/auth/device",
            &[
                ("client_id", "chartty"),
                ("scope", "openid offline_access user/Patient.rs"),
            ],
        )
        .await
        .json();
    let code = started["user_code"].as_str().unwrap_or("").to_string();
    let device_code = started["device_code"].as_str().unwrap_or("").to_string();
    let typed = code.replace('-', "").to_lowercase();
    let details = p
        .get(&format!(
            "/auth/device/verify?{}",
            form(&[("user_code", &typed)])
        ))
        .await;
    c.eq(details.status, StatusCode::OK, "the code's page");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    for want in [
        code.as_str(),
        "Asked for",
        today.as_str(),
        "UTC",
        "seconds ago",
        "By a terminal at",
        "203.0.113.44",
        "Read and search: Patient",
        "Keep its access renewing until you sign out",
        "No more than your role allows",
        "Never approve a code someone sent you.",
        "<form method=\"post\" action=\"/auth/device/verify\">",
        "name=\"login\"",
        "name=\"password\"",
        "name=\"totp\"",
        "value=\"approve\"",
        "value=\"deny\"",
    ] {
        c.check(details.text.contains(want), format!("step 2 says {want:?}"));
    }
    // The form approves the code the page describes, not one typed anew.
    c.check(
        details.text.contains(&format!(
            "<input type=\"hidden\" name=\"user_code\" value=\"{code}\">"
        )),
        "the code goes along unseen",
    );
    let ok = p
        .post(
            "/auth/device/verify",
            &[
                ("user_code", &code),
                ("login", &u.login),
                ("password", &u.password),
                ("totp", ""),
                ("action", "approve"),
            ],
        )
        .await;
    c.eq(ok.status, StatusCode::OK, "approved from step 2");
    c.eq(
        poll(&p, &device_code).await.status,
        StatusCode::OK,
        "tokens",
    );

    // A code that is not waiting: said so, the code field again, no
    // password; the approved code is not waiting any more either.
    for unknown in ["BBBB-BBBB", code.as_str()] {
        let a = p
            .get(&format!("/auth/device/verify?user_code={unknown}"))
            .await;
        c.eq(a.status, StatusCode::OK, "unknown code page");
        c.check(
            a.text
                .contains("This code is not known or has expired; check the code on your terminal"),
            format!("says {unknown} is not known: {}", a.text),
        );
        c.check(
            a.text.contains("name=\"user_code\"")
                && a.text.contains(&format!("value=\"{unknown}\"")),
            "the code field again, with the code",
        );
        c.check(
            !a.text.contains("name=\"password\"") && !a.text.contains("Asked for"),
            "no password field, no details",
        );
    }
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_codes_are_limited_per_client_address() {
    let p = portal_behind_proxy(|_| {}).await;
    let mut c = Checks::default();
    let guesser = "203.0.113.9";
    let started = p
        .post_from(
            Some("198.51.100.3"),
            "/auth/device",
            &[("client_id", "chartty"), ("scope", "openid")],
        )
        .await
        .json();
    let code = started["user_code"].as_str().unwrap_or("").to_string();
    let waiting = format!("/auth/device/verify?user_code={code}");

    // Codes found do not count; unknown ones do, looked up or posted.
    for i in 0..19 {
        let a = p
            .get_from(
                guesser,
                &format!("/auth/device/verify?user_code=BBBB-BB{i:02}"),
            )
            .await;
        c.eq(a.status, StatusCode::OK, &format!("lookup {i}"));
        c.eq(
            p.get_from(guesser, &waiting).await.status,
            StatusCode::OK,
            "a waiting code",
        );
    }
    let posted = p
        .post_from(
            Some(guesser),
            "/auth/device/verify",
            &[
                ("user_code", "BBBB-BBBB"),
                ("login", "x"),
                ("password", "y"),
                ("action", "approve"),
            ],
        )
        .await;
    c.eq(
        posted.status,
        StatusCode::BAD_REQUEST,
        "a posted unknown code",
    );

    for what in ["/auth/device/verify?user_code=CCCC-CCCC", waiting.as_str()] {
        let a = p.get_from(guesser, what).await;
        c.eq(a.status, StatusCode::TOO_MANY_REQUESTS, what);
        let retry: u64 = a.header("retry-after").parse().unwrap_or(0);
        c.check(
            retry > 0 && retry <= 15 * 60,
            format!("Retry-After {retry}"),
        );
        c.check(
            !a.text.contains("name=\"password\"") && !a.text.contains("Asked for"),
            "the refusal says nothing of the code",
        );
    }
    let denied = p
        .post_from(
            Some(guesser),
            "/auth/device/verify",
            &[("user_code", &code), ("action", "deny")],
        )
        .await;
    c.eq(
        denied.status,
        StatusCode::TOO_MANY_REQUESTS,
        "nor may it deny codes",
    );
    // Another client, and the bare page, are not held up.
    c.eq(
        p.get_from("198.51.100.3", &waiting).await.status,
        StatusCode::OK,
        "another client",
    );
    c.eq(
        p.get_from(guesser, "/auth/device/verify").await.status,
        StatusCode::OK,
        "the bare page",
    );
    let records = audit(&p.db);
    c.eq(
        records
            .iter()
            .filter(|r| r.0 == "device-lookup" && r.2 == 429)
            .count(),
        1,
        "one record of the refusals",
    );
    c.eq(
        records.iter().filter(|r| r.0 == "device-deny").count(),
        0,
        "nothing denied",
    );
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_code_expires() {
    let p = portal_with(|o| o.device_ttl = Duration::from_secs(1)).await;
    let d = start_device(&p, "openid").await;
    assert_eq!(d["expires_in"], 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let a = poll(&p, d["device_code"].as_str().unwrap()).await;
    assert_eq!(oauth_error(&a), "expired_token", "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_limited_and_recorded_without_the_password() {
    let p = portal().await;
    let mut c = Checks::default();
    let u = p.user(Role::Frontdesk);
    let wrong = "Tr0ub4dor&3-not-it";
    for i in 1..=5 {
        let a = p.sign_in(&u.login, wrong, "", "openid").await;
        c.eq(a.status, StatusCode::UNAUTHORIZED, &format!("attempt {i}"));
        c.check(
            a.text.contains("Wrong login, password or code"),
            format!("attempt {i} message"),
        );
        c.check(
            a.header("location").is_empty(),
            format!("attempt {i} no redirect"),
        );
    }
    // The sixth is not even checked: the right password is refused too.
    let sixth = p.sign_in(&u.login, &u.password, "", "openid").await;
    c.eq(sixth.status, StatusCode::TOO_MANY_REQUESTS, "sixth attempt");
    let retry: u64 = sixth.header("retry-after").parse().unwrap_or(0);
    c.check(
        retry > 0 && retry <= 15 * 60,
        format!("Retry-After {retry}"),
    );
    // Another user from the same address may still sign in.
    let other = p.user(Role::Billing);
    c.eq(
        p.sign_in(&other.login, &other.password, "", "openid")
            .await
            .status,
        StatusCode::FOUND,
        "another login",
    );
    // An unknown login is refused the same way.
    let unknown = p.sign_in("no-such-user", wrong, "", "openid").await;
    c.eq(unknown.status, StatusCode::UNAUTHORIZED, "unknown login");
    c.check(
        unknown.text.contains("Wrong login, password or code"),
        "unknown login message",
    );

    let records = audit(&p.db);
    let mine: Vec<_> = records
        .iter()
        .filter(|r| r.0 == "sign-in" && r.1.as_deref() == Some(&u.login))
        .collect();
    c.eq(
        mine.iter().map(|r| r.2).collect::<Vec<_>>(),
        vec![401, 401, 401, 401, 401, 429],
        "sign-in records",
    );
    c.check(
        mine.iter()
            .take(5)
            .all(|r| r.3.as_deref() == Some("wrong password")),
        format!("{mine:?}"),
    );
    c.check(
        mine.iter()
            .all(|r| r.4.as_deref().is_some_and(|s| s.starts_with("127.0.0.1:"))),
        "client address",
    );
    c.check(
        records.iter().any(|r| {
            r.0 == "sign-in"
                && r.1.is_none()
                && r.3.as_deref() == Some("unknown login (12 characters)")
        }),
        "unknown login recorded by its length",
    );
    let text = audit_text(&p.db);
    c.check(
        !text.contains("no-such-user"),
        "what was typed as an unknown login is not in the audit",
    );
    c.check(
        !text.contains(wrong),
        "the wrong password is not in the audit",
    );
    c.check(!text.contains(&u.password), "the right one neither");
    c.done();
}

/// A portal behind a proxy on loopback, as with `--trusted-proxy 127.0.0.1`.
async fn portal_behind_proxy(tune: impl FnOnce(&mut server::Options)) -> Portal {
    portal_with(|o| {
        o.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        tune(o);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_failures_from_one_client_address_stop_every_login_from_it_only() {
    let p = portal_behind_proxy(|_| {}).await;
    let here = Some("203.0.113.5");
    for i in 0..20 {
        let a = p
            .sign_in_from(here, &format!("guess{i}"), "wrong-password", "", "openid")
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let u = p.user(Role::Nurse);
    let a = p
        .sign_in_from(here, &u.login, &u.password, "", "openid")
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(!a.header("retry-after").is_empty());
    // The same proxy, another client: the clinic goes on signing in.
    let a = p
        .sign_in_from(Some("198.51.100.9"), &u.login, &u.password, "", "openid")
        .await;
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.text);
    // IPv6 clients count by their /64.
    for i in 0..20 {
        let xff = format!("2001:db8:1:2::{i:x}");
        p.sign_in_from(
            Some(&xff),
            &format!("v6guess{i}"),
            "wrong-password",
            "",
            "openid",
        )
        .await;
    }
    let a = p
        .sign_in_from(
            Some("2001:db8:1:2:ffff::1"),
            &u.login,
            &u.password,
            "",
            "openid",
        )
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "same /64");
    let a = p
        .sign_in_from(Some("2001:db8:1:3::1"), &u.login, &u.password, "", "openid")
        .await;
    assert_eq!(a.status, StatusCode::FOUND, "another /64");
    // The record names the client and the proxy it came by.
    assert!(
        audit(&p.db).iter().any(|r| r.0 == "sign-in"
            && r.4
                .as_deref()
                .is_some_and(|s| s.starts_with("198.51.100.9 via 127.0.0.1:"))),
        "client address in the audit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let p = portal().await;
    // Each guess claims another client; the server counts its peer.
    for i in 0..20 {
        let xff = format!("203.0.113.{i}");
        let a = p
            .sign_in_from(
                Some(&xff),
                &format!("guess{i}"),
                "wrong-password",
                "",
                "openid",
            )
            .await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let u = p.user(Role::Nurse);
    let a = p
        .sign_in_from(Some("198.51.100.9"), &u.login, &u.password, "", "openid")
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        audit(&p.db)
            .iter()
            .all(|r| r.4.as_deref().is_none_or(|s| s.starts_with("127.0.0.1:"))),
        "the audit names the peer, not what it claimed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_locked_out_from_one_address_still_signs_in_from_another() {
    let p = portal_behind_proxy(|o| o.sign_in_limits.per_login = 8).await;
    let mut c = Checks::default();
    let u = p.user(Role::Nurse);
    let attacker = Some("203.0.113.66");
    for i in 0..5 {
        let a = p
            .sign_in_from(attacker, &u.login, "not-her-password", "", "openid")
            .await;
        c.eq(a.status, StatusCode::UNAUTHORIZED, &format!("guess {i}"));
    }
    for i in 0..3 {
        let a = p
            .sign_in_from(attacker, &u.login, &u.password, "", "openid")
            .await;
        c.eq(
            a.status,
            StatusCode::TOO_MANY_REQUESTS,
            &format!("locked {i}"),
        );
    }
    let ward = Some("198.51.100.20");
    let a = p
        .sign_in_from(ward, &u.login, &u.password, "", "openid")
        .await;
    c.eq(a.status, StatusCode::FOUND, "the nurse at the ward");
    // One record of the lock-out a window, not one a refusal.
    let locked: Vec<_> = audit(&p.db)
        .into_iter()
        .filter(|r| r.0 == "sign-in" && r.2 == 429)
        .collect();
    c.eq(locked.len(), 1, "lock-out records");
    c.eq(
        locked.first().and_then(|r| r.1.clone()),
        Some(u.login.clone()),
        "the lock-out names the user",
    );
    // A guesser spread over many addresses meets the login's ceiling (8
    // here): 5 failures above, and 3 more from elsewhere.
    for i in 0..3 {
        let xff = format!("192.0.2.{i}");
        let a = p
            .sign_in_from(Some(&xff), &u.login, "not-her-password", "", "openid")
            .await;
        c.eq(
            a.status,
            StatusCode::UNAUTHORIZED,
            &format!("spread guess {i}"),
        );
    }
    let a = p
        .sign_in_from(Some("192.0.2.200"), &u.login, &u.password, "", "openid")
        .await;
    c.eq(
        a.status,
        StatusCode::TOO_MANY_REQUESTS,
        "the login's ceiling",
    );
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_typed_as_the_login_is_not_recorded() {
    let p = portal().await;
    let typed = "my-Secret-passw0rd";
    let a = p.sign_in(typed, "", "", "openid").await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // Locked out under that "login" too: still not recorded.
    for _ in 0..5 {
        p.sign_in(typed, "x", "", "openid").await;
    }
    let records = audit(&p.db);
    assert!(
        records
            .iter()
            .any(|r| r.3.as_deref() == Some("unknown login (18 characters)")),
        "{records:?}"
    );
    assert!(
        records.iter().any(|r| r.2 == 429
            && r.1.is_none()
            && r.3.as_deref()
                == Some("locked out: too many failed sign-ins, unknown login (18 characters)")),
        "{records:?}"
    );
    let text = audit_text(&p.db);
    assert!(!text.contains(typed));
    assert!(!text.to_lowercase().contains(&typed.to_lowercase()));
}

/// The median time of a sign-in answer.
async fn median_sign_in(p: &Portal, logins: &[String], password: &str) -> Duration {
    let mut times = Vec::new();
    for l in logins {
        let t = std::time::Instant::now();
        let a = p.sign_in(l, password, "", "openid").await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        times.push(t.elapsed());
    }
    times.sort();
    times[times.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_login_takes_as_long_as_a_demo_users_wrong_password() {
    // The demo users' hashes are cheap; an unknown login must not cost the
    // configured (dear) cost, or timing would tell the logins apart.
    let p = portal().await;
    let demo: Vec<String> = p
        .srv
        .users
        .iter()
        .take(5)
        .map(|u| u.login.clone())
        .collect();
    let unknown: Vec<String> = (0..5).map(|i| format!("nobody{i}")).collect();
    let known = median_sign_in(&p, &demo, "wrong-password").await;
    let none = median_sign_in(&p, &unknown, "wrong-password").await;
    let ratio = none.as_secs_f64() / known.as_secs_f64().max(1e-6);
    assert!(ratio < 4.0, "unknown {none:?}, demo user {known:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_codes_are_limited_per_client_address() {
    let p = portal_behind_proxy(|_| {}).await;
    let mut c = Checks::default();
    let start = |xff: &'static str| {
        let p = &p;
        async move {
            p.post_from(
                Some(xff),
                "/auth/device",
                &[("client_id", "chartty"), ("scope", "openid")],
            )
            .await
        }
    };
    for i in 0..10 {
        c.eq(
            start("203.0.113.7").await.status,
            StatusCode::OK,
            &format!("start {i}"),
        );
    }
    for i in 0..3 {
        let a = start("203.0.113.7").await;
        c.eq(
            a.status,
            StatusCode::TOO_MANY_REQUESTS,
            &format!("refused {i}"),
        );
        c.eq(oauth_error(&a).as_str(), "slow_down", "error");
        let retry: u64 = a.header("retry-after").parse().unwrap_or(0);
        c.check(
            retry > 0 && retry <= 15 * 60,
            format!("Retry-After {retry}"),
        );
    }
    c.eq(
        start("198.51.100.3").await.status,
        StatusCode::OK,
        "another client",
    );
    let records = audit(&p.db);
    c.eq(
        records
            .iter()
            .filter(|r| r.0 == "device-start" && r.2 == 200)
            .count(),
        11,
        "one record a code",
    );
    c.eq(
        records
            .iter()
            .filter(|r| r.0 == "device-start" && r.2 == 429)
            .count(),
        1,
        "one record of the refusals",
    );
    let rows: i64 = rusqlite::Connection::open(&p.db)
        .unwrap()
        .query_row("SELECT count(*) FROM auth_device", [], |r| r.get(0))
        .unwrap();
    c.eq(rows, 11, "no row for a refused start");
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_is_required_once_set_and_a_code_is_used_once() {
    let p = portal().await;
    let mut c = Checks::default();
    let u = p.user(Role::Nurse);
    // Set while the server runs, as `chartty serve user totp` does.
    let secret = server::admin::set_totp(&p.db, &u.login, true)
        .unwrap()
        .unwrap();
    let code = || {
        let step = server::auth::totp::step_of(chrono::Utc::now().timestamp());
        format!("{:06}", server::auth::totp::code_at(&secret, step, 6))
    };
    c.eq(
        p.sign_in(&u.login, &u.password, "", "openid").await.status,
        StatusCode::UNAUTHORIZED,
        "no code",
    );
    let now = code();
    let wrong = format!("{:06}", (now.parse::<u32>().unwrap() + 1) % 1_000_000);
    c.eq(
        p.sign_in(&u.login, &u.password, &wrong, "openid")
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "wrong code",
    );
    let right = code();
    c.eq(
        p.sign_in(&u.login, &u.password, &right, "openid")
            .await
            .status,
        StatusCode::FOUND,
        "right code",
    );
    c.eq(
        p.sign_in(&u.login, &u.password, &right, "openid")
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "replayed code",
    );
    let details: Vec<String> = audit(&p.db)
        .into_iter()
        .filter(|r| r.0 == "sign-in" && r.1.as_deref() == Some(&u.login) && r.2 == 401)
        .filter_map(|r| r.3)
        .collect();
    c.eq(
        details,
        [
            "TOTP code missing",
            "wrong TOTP code",
            "TOTP code already used",
        ]
        .map(String::from)
        .to_vec(),
        "TOTP refusals recorded",
    );
    c.check(
        !audit_text(&p.db).contains(&right),
        "the code is not in the audit",
    );
    // Off again: the password alone does.
    server::admin::set_totp(&p.db, &u.login, false).unwrap();
    c.eq(
        p.sign_in(&u.login, &u.password, "", "openid").await.status,
        StatusCode::FOUND,
        "TOTP off",
    );
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_user_can_neither_sign_in_nor_refresh() {
    let p = portal().await;
    let mut c = Checks::default();
    let u = p.user(Role::Billing);
    let t = p.tokens(Role::Billing, "offline_access").await;
    server::admin::set_disabled(&p.db, &u.login, true).unwrap();
    c.eq(
        p.sign_in(&u.login, &u.password, "", "openid").await.status,
        StatusCode::UNAUTHORIZED,
        "sign-in",
    );
    let r = p.refresh(t["refresh_token"].as_str().unwrap()).await;
    c.eq(oauth_error(&r).as_str(), "invalid_grant", "refresh");
    c.eq(
        p.whoami(t["access_token"].as_str().unwrap()).await.0,
        StatusCode::UNAUTHORIZED,
        "access token",
    );
    // A device approval by a disabled user is refused at sign-in too.
    let d = start_device(&p, "openid").await;
    let a = p
        .post(
            "/auth/device/verify",
            &[
                ("user_code", d["user_code"].as_str().unwrap()),
                ("login", &u.login),
                ("password", &u.password),
            ],
        )
        .await;
    c.eq(a.status, StatusCode::UNAUTHORIZED, "device approval");
    c.check(
        audit(&p.db)
            .iter()
            .any(|r| r.0 == "sign-in" && r.3.as_deref() == Some("user disabled")),
        "recorded as a disabled user",
    );
    c.done();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_set_by_the_cli_signs_in() {
    let p = portal().await;
    let login = p.user(Role::Resident).login.clone();
    server::admin::set_password(&p.db, &login, "a new long password").unwrap();
    assert!(server::admin::set_password(&p.db, &login, "short").is_err());
    let a = p.sign_in(&login, "a new long password", "", "openid").await;
    assert_eq!(a.status, StatusCode::FOUND, "{}", a.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_paths_take_small_forms_and_fhir_is_unchanged() {
    let p = portal().await;
    let mut c = Checks::default();
    let o = p.origin();
    // A form to /fhir without a token is still refused.
    let r =
        p.c.post(format!("{o}/fhir/Patient/_search"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("name=x")
            .send()
            .await
            .unwrap();
    c.eq(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "form to /fhir without a token",
    );
    // JSON to the token endpoint.
    let r =
        p.c.post(format!("{o}/auth/token"))
            .header(header::CONTENT_TYPE, "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
    c.eq(
        r.status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "JSON to /auth/token",
    );
    // More than 16 KiB.
    let big = format!(
        "grant_type=refresh_token&client_id=chartty&refresh_token={}",
        "a".repeat(17 * 1024)
    );
    let r =
        p.c.post(format!("{o}/auth/token"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(big)
            .send()
            .await
            .unwrap();
    c.eq(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "a large form");
    // A path that only looks like a sign-in path is not one.
    let r =
        p.c.post(format!("{o}/auth/token/../../fhir/Patient"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("x=1")
            .send()
            .await
            .unwrap();
    c.check(
        r.status() != StatusCode::OK && r.status() != StatusCode::CREATED,
        format!("dot-dot path: {}", r.status()),
    );
    c.done();
}

/// What chartty asks for when the server takes SMART v2 scopes.
const CHARTTY_SCOPES: &str = "openid fhirUser offline_access user/Patient.rs user/Observation.rs \
     user/Condition.rs user/AllergyIntolerance.rs user/MedicationRequest.rs user/Encounter.rs \
     user/Practitioner.rs user/DocumentReference.cruds user/Task.cruds user/Communication.cruds";

impl Portal {
    async fn fhir(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> Answer {
        let url = format!("{}/{path}", self.srv.base_url);
        let b = match method {
            "POST" => self.c.post(url),
            "PUT" => self.c.put(url),
            _ => self.c.get(url),
        };
        let b = b.bearer_auth(token);
        let b = match body {
            Some(v) => b
                .header(header::CONTENT_TYPE, "application/fhir+json")
                .body(v.to_string()),
            None => b,
        };
        Self::answer(b.send().await.unwrap()).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tokens_scopes_narrow_what_its_role_allows() {
    let p = portal_on(Some(demo::DemoOptions::new(8, 3)), |_| {}).await;
    let mut c = Checks::default();
    let attending = p.user(Role::Attending).clone();
    let cli_token = attending.token.clone();
    let token = |scope: &'static str| {
        let p = &p;
        async move {
            p.tokens(Role::Attending, scope).await["access_token"]
                .as_str()
                .unwrap_or("")
                .to_string()
        }
    };
    let patient_only = token("openid user/Patient.rs").await;
    let v1_read = token("openid user/*.read").await;
    let full = token(CHARTTY_SCOPES).await;
    let found = p.fhir(&full, "GET", "Patient?_count=1", None).await.json();
    let pid = found["entry"][0]["resource"]["id"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(!pid.is_empty(), "a demo patient: {found}");
    let note = |status: &str| {
        serde_json::json!({
            "resourceType": "DocumentReference", "status": "current", "docStatus": status,
            "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3"}]},
            "subject": {"reference": format!("Patient/{pid}")},
            "date": "2026-01-10T10:00:00Z",
            "author": [{"reference": attending.practitioner.clone()}],
            "content": [{"attachment": {"contentType": "text/plain", "data": "Uzogd2VsbC4="}}]
        })
    };
    let batch = serde_json::json!({
        "resourceType": "Bundle", "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": format!("Patient/{pid}")}},
            {"request": {"method": "GET", "url": format!("Observation?patient={pid}")}}
        ]
    });
    let lastn = format!("Observation/$lastn?patient={pid}");
    let obs = format!("Observation?patient={pid}");
    let read = format!("Patient/{pid}");
    let me = attending.practitioner.clone();
    // (who, token, method, path, body, status)
    type Case<'a> = (&'a str, &'a str, &'a str, &'a str, Option<Value>, u16);
    let cases: Vec<Case> = vec![
        ("Patient.rs", &patient_only, "GET", &read, None, 200),
        (
            "Patient.rs",
            &patient_only,
            "GET",
            "Patient?_count=2",
            None,
            200,
        ),
        ("Patient.rs", &patient_only, "GET", &obs, None, 403),
        ("Patient.rs", &patient_only, "GET", &lastn, None, 403),
        (
            "Patient.rs",
            &patient_only,
            "POST",
            "DocumentReference",
            Some(note("preliminary")),
            403,
        ),
        ("Patient.rs", &patient_only, "GET", "$whoami", None, 200),
        (
            "Patient.rs",
            &patient_only,
            "POST",
            "",
            Some(batch.clone()),
            200,
        ),
        ("*.read", &v1_read, "GET", &obs, None, 200),
        ("*.read", &v1_read, "GET", "Condition?_count=1", None, 200),
        (
            "*.read",
            &v1_read,
            "POST",
            "DocumentReference",
            Some(note("preliminary")),
            403,
        ),
        ("chartty's", &full, "GET", &read, None, 200),
        ("chartty's", &full, "GET", &obs, None, 200),
        ("chartty's", &full, "GET", &lastn, None, 200),
        (
            "chartty's",
            &full,
            "GET",
            "Task?_include=Task:patient",
            None,
            200,
        ),
        ("chartty's", &full, "GET", &me, None, 200),
        ("chartty's", &full, "GET", "Encounter?_count=1", None, 200),
        ("chartty's", &full, "GET", "$whoami", None, 200),
        (
            "chartty's",
            &full,
            "POST",
            "DocumentReference",
            Some(note("preliminary")),
            201,
        ),
        ("chartty's", &full, "GET", "AuditEvent?_count=1", None, 403),
        (
            "no scope (CLI)",
            &cli_token,
            "POST",
            "DocumentReference",
            Some(note("preliminary")),
            201,
        ),
        ("no scope (CLI)", &cli_token, "GET", &obs, None, 200),
    ];
    for (who, token, method, path, body, want) in cases {
        let a = p.fhir(token, method, path, body).await;
        let what = format!("{who}: {method} {path}");
        c.eq(a.status.as_u16(), want, &what);
        if want == 403 && path != "AuditEvent?_count=1" {
            c.check(
                a.text.contains("the token's scopes do not allow"),
                format!("{what} says why: {}", a.text),
            );
        }
        if path.is_empty() {
            let statuses: Vec<String> = a.json()["entry"]
                .as_array()
                .map(|es| {
                    es.iter()
                        .map(|e| e["response"]["status"].as_str().unwrap_or("").to_string())
                        .collect()
                })
                .unwrap_or_default();
            c.check(
                statuses.len() == 2
                    && statuses[0].starts_with("200")
                    && statuses[1].starts_with("403"),
                format!("{what}: each entry decided alone: {statuses:?}"),
            );
        }
    }
    // Included resources the scopes do not cover are left out.
    let included_patients = |v: Value| {
        v["entry"]
            .as_array()
            .map(|es| {
                es.iter()
                    .filter(|e| e["resource"]["resourceType"] == "Patient")
                    .count()
            })
            .unwrap_or(0)
    };
    let tasks_only = token("openid user/Task.rs").await;
    let q = "Task?_include=Task:patient&_count=50";
    let with = included_patients(p.fhir(&full, "GET", q, None).await.json());
    c.check(with > 0, "chartty's scopes include the tasks' patients");
    let without = included_patients(p.fhir(&tasks_only, "GET", q, None).await.json());
    c.eq(without, 0, "no Patient without a Patient scope");
    c.done();
}
