//! Signing in to a FHIR server as SMART App Launch describes it, as a
//! public client (`client_id` `chartty`, no secret): the authorization code
//! flow with PKCE, its redirect taken on a loopback port or pasted back, or
//! the device authorization grant where the server offers it; refresh and
//! revocation. Refresh tokens are kept only in the OS credential store
//! ([`kept`]); access tokens only in memory ([`bearer`]).

pub mod bearer;
pub mod device;
pub mod discovery;
pub mod kept;
pub mod loopback;
pub mod pkce;
pub mod tokens;

use std::time::Instant;

pub use bearer::Bearer;
pub use device::DeviceStart;
pub use discovery::SmartConfig;
pub use tokens::{Identity, OAuthError, TokenSet};

use crate::fhir::sanitize::sanitize;

/// How chartty is known to authorization servers.
pub const CLIENT_ID: &str = "chartty";

/// Plain http only to a loopback host: the demo and tests; anywhere else a
/// token or a password would cross the network in clear.
pub fn require_https(url: &str) -> Result<(), String> {
    let parsed =
        url::Url::parse(url).map_err(|e| format!("`{}` is not a URL: {e}", sanitize(url)))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        _ => Err(format!(
            "refusing {}: sign-in needs https (plain http only to this machine)",
            sanitize(url)
        )),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// One server's sign-in: its SMART configuration and an HTTP client that
/// follows no redirect (a token endpoint that redirects is not followed
/// with a code or a refresh token in hand).
#[derive(Clone)]
pub struct SignIn {
    http: reqwest::Client,
    /// The FHIR base, sent as `aud`.
    pub base: String,
    pub config: SmartConfig,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn").field("base", &self.base).finish()
    }
}

/// How a refresh failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshFailed {
    /// The server will not refresh this token again (`invalid_grant`):
    /// sign in again.
    Ended(String),
    /// No answer, or an answer to try again later.
    Passing(String),
}

impl SignIn {
    /// Reads `[base]/.well-known/smart-configuration`.
    pub async fn discover(base: &str, opts: &super::http::HttpOptions) -> Result<SignIn, String> {
        require_https(base)?;
        let http = super::http::sign_in_client(opts).map_err(|e| format!("{e:#}"))?;
        let base = base.trim_end_matches('/').to_string();
        let url = format!("{base}/.well-known/smart-configuration");
        let resp = http
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("could not reach {}: {}", sanitize(&url), reason(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!(
                "{} offers no SMART sign-in (HTTP {}); use a token from the server's administrator (--token)",
                sanitize(&base),
                status.as_u16()
            ));
        }
        let bytes = limited(resp).await?;
        let config: SmartConfig = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the server's smart-configuration could not be read: {e}"))?;
        config.check_endpoints()?;
        Ok(SignIn { http, base, config })
    }

    /// The address the user opens to sign in (authorization code + PKCE).
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        verifier: &str,
    ) -> Result<String, String> {
        let endpoint = self
            .config
            .code_endpoint()
            .ok_or("the server offers no authorization code sign-in with PKCE (S256)")?;
        let mut url =
            url::Url::parse(endpoint).map_err(|e| format!("authorization endpoint: {e}"))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", CLIENT_ID)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &discovery::scopes(self.config.v2()))
            .append_pair("state", state)
            .append_pair("aud", &self.base)
            .append_pair("code_challenge", &pkce::challenge(verifier))
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    async fn post(&self, url: &str, form: &[(&str, &str)]) -> Result<(u16, Vec<u8>), String> {
        let body = form_body(form);
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| format!("no answer from the sign-in server: {}", reason(&e)))?;
        let status = resp.status().as_u16();
        Ok((status, limited(resp).await?))
    }

    async fn token(&self, form: &[(&str, &str)]) -> Result<Result<TokenSet, OAuthError>, String> {
        let (status, body) = self.post(&self.config.token_endpoint, form).await?;
        if (200..300).contains(&status) {
            return TokenSet::from_answer(&body, Instant::now()).map(Ok);
        }
        match serde_json::from_slice::<OAuthError>(&body) {
            Ok(e) => Ok(Err(e)),
            Err(_) => Err(format!("the token endpoint answered HTTP {status}")),
        }
    }

    /// Exchanges an authorization code (with its PKCE verifier).
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<TokenSet, String> {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", redirect_uri),
            ("client_id", CLIENT_ID),
        ])
        .await?
        .map_err(|e| format!("the server refused the code: {e}"))
    }

    /// Starts a device sign-in: the code to show and where to approve it.
    pub async fn device_start(&self) -> Result<DeviceStart, String> {
        let endpoint = self
            .config
            .device_endpoint()
            .ok_or("the server offers no device sign-in")?
            .to_string();
        let scope = discovery::scopes(self.config.v2());
        let (status, body) = self
            .post(&endpoint, &[("client_id", CLIENT_ID), ("scope", &scope)])
            .await?;
        if !(200..300).contains(&status) {
            let why = serde_json::from_slice::<OAuthError>(&body)
                .map(|e| e.to_string())
                .unwrap_or_else(|_| format!("HTTP {status}"));
            return Err(format!(
                "the server would not start a device sign-in: {why}"
            ));
        }
        serde_json::from_slice::<DeviceStart>(&body)
            .map(DeviceStart::cleaned)
            .map_err(|e| format!("the device sign-in answer could not be read: {e}"))
    }

    /// Polls until the device sign-in is approved, refused or expired.
    pub async fn device_wait(&self, start: &DeviceStart) -> Result<TokenSet, String> {
        let mut pace = device::Pace::new(start, Instant::now());
        loop {
            tokio::time::sleep(pace.interval).await;
            if Instant::now() > pace.deadline {
                return Err("the code expired before it was approved; try again".into());
            }
            let answer = self
                .token(&[
                    ("grant_type", discovery::DEVICE_GRANT),
                    ("device_code", &start.device_code),
                    ("client_id", CLIENT_ID),
                ])
                .await;
            match answer {
                Ok(Ok(tokens)) => return Ok(tokens),
                Ok(Err(e)) => match device::poll_error(&e.error, e.error_description.as_deref()) {
                    device::Poll::Pending => {}
                    device::Poll::SlowDown => pace.slow_down(),
                    device::Poll::Failed(why) => return Err(why),
                },
                // A dropped poll is asked again at the next interval.
                Err(why) => tracing::info!("device sign-in poll: {why}"),
            }
        }
    }

    /// New tokens for a refresh token (which the server may rotate).
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenSet, RefreshFailed> {
        match self
            .token(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", CLIENT_ID),
            ])
            .await
        {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) if e.error == "invalid_grant" || e.error == "invalid_client" => Err(
                RefreshFailed::Ended(format!("the sign-in has ended ({e}); sign in again")),
            ),
            Ok(Err(e)) => Err(RefreshFailed::Passing(e.to_string())),
            Err(why) => Err(RefreshFailed::Passing(why)),
        }
    }

    /// Revokes a token at the server (RFC 7009), where it offers that.
    pub async fn revoke(&self, token: &str, hint: &str) -> Result<bool, String> {
        let Some(endpoint) = self.config.revocation_endpoint.clone() else {
            return Ok(false);
        };
        let (status, _) = self
            .post(
                &endpoint,
                &[
                    ("token", token),
                    ("token_type_hint", hint),
                    ("client_id", CLIENT_ID),
                ],
            )
            .await?;
        if (200..300).contains(&status) {
            Ok(true)
        } else {
            Err(format!(
                "the server did not revoke the sign-in (HTTP {status})"
            ))
        }
    }
}

/// The most a sign-in answer may hold (they are a few hundred bytes): a
/// hostile or broken server cannot fill the memory.
const MAX_ANSWER: usize = 64 * 1024;

async fn limited(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let too_big = || {
        format!(
            "the sign-in server's answer is over {} KiB",
            MAX_ANSWER / 1024
        )
    };
    if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
        return Err(too_big());
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("the sign-in server's answer was cut off: {}", reason(&e)))?
    {
        if out.len() + chunk.len() > MAX_ANSWER {
            return Err(too_big());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

fn form_body(form: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish()
}

fn reason(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    sanitize(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_everywhere_but_this_machine() {
        for ok in [
            "https://fhir.example.org/r4",
            "http://127.0.0.1:8080/fhir",
            "http://localhost/fhir",
            "http://[::1]:9/fhir",
        ] {
            assert!(require_https(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://fhir.example.org/r4",
            "http://10.0.0.1/fhir",
            "ftp://x/",
            "not a url",
            "http://localhost.example.org/",
        ] {
            assert!(require_https(bad).is_err(), "{bad}");
        }
    }
}
