//! Token endpoint answers (RFC 6749 §5): the tokens, how long the access
//! token lasts, and who is signed in, read from the `id_token`.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::fhir::sanitize::sanitize;

/// Who a sign-in is, from the OpenID Connect `id_token`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// `iss` and `sub`: the same person at the same server.
    pub issuer: String,
    pub subject: String,
    pub name: Option<String>,
    /// `fhirUser`: the Practitioner (or other) resource of this person.
    pub fhir_user: Option<String>,
}

impl Identity {
    /// The same person: same issuer and subject (a lock is undone only by
    /// the person who was signed in).
    pub fn same_person(&self, other: &Identity) -> bool {
        self.issuer == other.issuer && self.subject == other.subject
    }

    /// A name for messages: the display name, else the `fhirUser`, else the subject.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.fhir_user.clone())
            .unwrap_or_else(|| self.subject.clone())
    }
}

/// What a token endpoint gave. `Debug` names no token.
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: String,
    pub issued_at: Instant,
    pub expires_at: Instant,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub identity: Option<Identity>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &self.refresh_token.is_some())
            .field("scope", &self.scope)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Raw {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

/// An error answer (RFC 6749 §5.2, RFC 8628 §3.5).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OAuthError {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The server's words are untrusted text.
        match &self.error_description {
            Some(d) => write!(f, "{} ({})", sanitize(&self.error), sanitize(d)),
            None => write!(f, "{}", sanitize(&self.error)),
        }
    }
}

/// An access token without `expires_in` is taken to last 5 minutes: it is
/// refreshed early rather than found dead.
const UNSTATED_LIFE: Duration = Duration::from_secs(300);
/// A longer stated life is taken as a day: a hostile or broken server's
/// huge number must not overflow the clock (and a day-old access token is
/// refreshed anyway).
const LONGEST_LIFE: Duration = Duration::from_secs(86_400);

impl TokenSet {
    /// Reads a successful token answer received at `now`.
    pub fn from_answer(body: &[u8], now: Instant) -> Result<TokenSet, String> {
        let raw: Raw = serde_json::from_slice(body)
            .map_err(|e| format!("the token endpoint gave no token: {e}"))?;
        if let Some(t) = &raw.token_type
            && !t.eq_ignore_ascii_case("bearer")
        {
            return Err(format!(
                "the token endpoint gave a `{}` token; chartty uses bearer tokens",
                sanitize(t)
            ));
        }
        let identity = match &raw.id_token {
            Some(jwt) => Some(identity_of(jwt)?),
            None => None,
        };
        let life = raw
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(UNSTATED_LIFE)
            .min(LONGEST_LIFE);
        Ok(TokenSet {
            access_token: raw.access_token,
            issued_at: now,
            expires_at: now + life,
            refresh_token: raw.refresh_token,
            scope: raw.scope,
            identity,
        })
    }

    /// Due for a refresh: less than a minute left, or less than a fifth of
    /// its life for a short-lived token (which would otherwise be refreshed
    /// before every request).
    pub fn due(&self, now: Instant) -> bool {
        let life = self.expires_at.saturating_duration_since(self.issued_at);
        let margin = Duration::from_secs(60).min(life / 5);
        self.expires_at.saturating_duration_since(now) <= margin
    }
}

/// The claims of an `id_token`. Its signature is not checked: it came
/// straight from the token endpoint over TLS, which OpenID Connect Core
/// §3.1.3.7 accepts in place of the signature, and chartty uses it only to
/// name who signed in (the server decides what they may do).
pub fn identity_of(jwt: &str) -> Result<Identity, String> {
    let payload = jwt.split('.').nth(1).ok_or("the id_token is not a JWT")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "the id_token is not base64url")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| "the id_token's claims are not JSON")?;
    let text = |k: &str| {
        claims
            .get(k)
            .and_then(|v| v.as_str())
            .map(|s| sanitize(s).into_owned())
    };
    Ok(Identity {
        issuer: text("iss").unwrap_or_default(),
        subject: text("sub").ok_or("the id_token names no subject")?,
        name: text("name"),
        fhir_user: text("fhirUser"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(claims: serde_json::Value) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn a_token_answer_with_an_id_token_names_the_user() {
        let now = Instant::now();
        let body = serde_json::json!({
            "access_token": "a", "token_type": "Bearer", "expires_in": 3600,
            "refresh_token": "r", "scope": "openid fhirUser",
            "id_token": jwt(serde_json::json!({
                "iss": "https://ehr", "sub": "rosa", "name": "Rosa\u{1b}[2J Delgado",
                "fhirUser": "https://ehr/fhir/Practitioner/pr-1"
            }))
        });
        let t = TokenSet::from_answer(body.to_string().as_bytes(), now).unwrap();
        assert_eq!(t.expires_at, now + Duration::from_secs(3600));
        assert_eq!(t.refresh_token.as_deref(), Some("r"));
        let id = t.identity.unwrap();
        assert_eq!(
            id.fhir_user.as_deref(),
            Some("https://ehr/fhir/Practitioner/pr-1")
        );
        // A hostile name is neutralised, not passed on.
        assert!(!id.name.unwrap().contains('\u{1b}'));
        assert!(
            !format!(
                "{:?}",
                TokenSet::from_answer(body.to_string().as_bytes(), now).unwrap()
            )
            .contains("\"a\"")
        );
    }

    #[test]
    fn refused_answers_and_odd_tokens() {
        let now = Instant::now();
        assert!(TokenSet::from_answer(b"<html>", now).is_err());
        let mac = serde_json::json!({"access_token": "a", "token_type": "mac"});
        assert!(
            TokenSet::from_answer(mac.to_string().as_bytes(), now)
                .unwrap_err()
                .contains("bearer")
        );
        let bare = serde_json::json!({"access_token": "a"});
        let t = TokenSet::from_answer(bare.to_string().as_bytes(), now).unwrap();
        assert!(!t.due(now));
        assert!(!t.due(now + Duration::from_secs(239)));
        assert!(
            t.due(now + Duration::from_secs(240)),
            "a minute before the 5 minutes"
        );
        // A 10 s token: refreshed in its last 2 s, not before every request.
        let short = serde_json::json!({"access_token": "a", "expires_in": 10});
        let t = TokenSet::from_answer(short.to_string().as_bytes(), now).unwrap();
        assert!(!t.due(now + Duration::from_secs(7)));
        assert!(t.due(now + Duration::from_secs(8)));
        // A huge stated life is a day, not an overflow.
        let huge = serde_json::json!({"access_token": "a", "expires_in": u64::MAX});
        let t = TokenSet::from_answer(huge.to_string().as_bytes(), now).unwrap();
        assert_eq!(t.expires_at, now + Duration::from_secs(86_400));
        assert!(identity_of("not a jwt").is_err());
        assert!(identity_of(&jwt(serde_json::json!({"iss": "x"}))).is_err());
    }

    #[test]
    fn same_person_is_issuer_and_subject() {
        let a = Identity {
            issuer: "i".into(),
            subject: "s".into(),
            ..Identity::default()
        };
        let mut b = a.clone();
        b.name = Some("other name".into());
        assert!(a.same_person(&b));
        b.subject = "t".into();
        assert!(!a.same_person(&b));
    }
}
