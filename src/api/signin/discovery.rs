//! What a server says about signing in: `.well-known/smart-configuration`
//! (SMART App Launch 2.x), read from the FHIR base.

use serde::Deserialize;

/// The parts of a SMART configuration chartty uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SmartConfig {
    #[serde(default)]
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: String,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
}

pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

impl SmartConfig {
    /// SMART v2 scopes (`.cruds`) where the server says it takes them.
    pub fn v2(&self) -> bool {
        self.capabilities.iter().any(|c| c == "permission-v2")
    }

    /// The device authorization grant (RFC 8628), where advertised: a
    /// device endpoint and, when the server lists its grants, that grant.
    pub fn device_endpoint(&self) -> Option<&str> {
        let listed = self.grant_types_supported.is_empty()
            || self.grant_types_supported.iter().any(|g| g == DEVICE_GRANT);
        self.device_authorization_endpoint
            .as_deref()
            .filter(|_| listed)
    }

    /// The authorization code grant with PKCE S256 (a public client may
    /// use nothing weaker).
    pub fn code_endpoint(&self) -> Option<&str> {
        let s256 = self.code_challenge_methods_supported.is_empty()
            || self
                .code_challenge_methods_supported
                .iter()
                .any(|m| m == "S256");
        self.authorization_endpoint.as_deref().filter(|_| s256)
    }

    /// Every endpoint must be https, except on a loopback server (the demo,
    /// tests): a token or a password must never cross the network in clear.
    pub fn check_endpoints(&self) -> Result<(), String> {
        let all = [
            self.authorization_endpoint.as_deref(),
            Some(self.token_endpoint.as_str()),
            self.device_authorization_endpoint.as_deref(),
            self.revocation_endpoint.as_deref(),
        ];
        for url in all.into_iter().flatten() {
            super::require_https(url)?;
        }
        Ok(())
    }
}

/// The scopes to ask for: everything chartty reads, the writes it makes,
/// who is signed in (`openid fhirUser`) and a refresh token.
pub fn scopes(v2: bool) -> String {
    const READ: &[&str] = &[
        "Patient",
        "Observation",
        "Condition",
        "AllergyIntolerance",
        "MedicationRequest",
        "Encounter",
        "Practitioner",
    ];
    const WRITE: &[&str] = &["DocumentReference", "Task", "Communication"];
    let mut out = vec!["openid", "fhirUser", "offline_access"]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    for r in READ {
        out.push(if v2 {
            format!("user/{r}.rs")
        } else {
            format!("user/{r}.read")
        });
    }
    for r in WRITE {
        if v2 {
            out.push(format!("user/{r}.cruds"));
        } else {
            out.push(format!("user/{r}.read"));
            out.push(format!("user/{r}.write"));
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(v: serde_json::Value) -> SmartConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn v2_scopes_only_where_advertised() {
        let v2 = scopes(true);
        assert!(v2.contains("user/DocumentReference.cruds"));
        assert!(v2.contains("user/Patient.rs"));
        assert!(v2.starts_with("openid fhirUser offline_access"));
        let v1 = scopes(false);
        assert!(v1.contains("user/DocumentReference.write"));
        assert!(v1.contains("user/Patient.read"));
        assert!(!v1.contains(".rs"));
        let c = config(serde_json::json!({
            "token_endpoint": "https://a/token",
            "capabilities": ["permission-v2"]
        }));
        assert!(c.v2());
    }

    #[test]
    fn device_grant_and_pkce_as_advertised() {
        let c = config(serde_json::json!({
            "authorization_endpoint": "https://a/authorize",
            "token_endpoint": "https://a/token",
            "device_authorization_endpoint": "https://a/device",
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["plain"]
        }));
        // Listed grants without the device grant: not offered.
        assert_eq!(c.device_endpoint(), None);
        // No S256: no code flow for a public client.
        assert_eq!(c.code_endpoint(), None);
        let c = config(serde_json::json!({
            "authorization_endpoint": "https://a/authorize",
            "token_endpoint": "https://a/token",
            "device_authorization_endpoint": "https://a/device"
        }));
        assert_eq!(c.device_endpoint(), Some("https://a/device"));
        assert_eq!(c.code_endpoint(), Some("https://a/authorize"));
    }

    #[test]
    fn plain_http_endpoints_only_on_loopback() {
        let c = config(serde_json::json!({
            "authorization_endpoint": "http://127.0.0.1:8080/auth/authorize",
            "token_endpoint": "http://localhost:8080/auth/token"
        }));
        assert!(c.check_endpoints().is_ok());
        let c = config(serde_json::json!({
            "authorization_endpoint": "https://idp.example.org/authorize",
            "token_endpoint": "http://idp.example.org/token"
        }));
        let err = c.check_endpoints().unwrap_err();
        assert!(err.contains("http://idp.example.org/token"), "{err}");
    }
}
