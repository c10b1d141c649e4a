//! The refresh token of a sign-in, with who it signs in, kept in the OS
//! credential store under the server's FHIR base ([`crate::keystore`]);
//! never in a file. Where no store works, nothing is kept and the next
//! start signs in again.

use serde::{Deserialize, Serialize};

use super::Identity;
use crate::keystore::Secrets;

/// The service name sign-ins are kept under.
pub const SERVICE: &str = "chartty";

/// What is kept for one server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub refresh_token: String,
    pub issuer: String,
    pub subject: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub fhir_user: Option<String>,
    /// When it was kept (ms since the epoch): where two stores hold a copy
    /// (one was locked when the other was written), the newer wins.
    #[serde(default)]
    pub kept_at: i64,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl Kept {
    pub fn new(refresh_token: String, identity: Option<&Identity>) -> Kept {
        let id = identity.cloned().unwrap_or_default();
        Kept {
            refresh_token,
            issuer: id.issuer,
            subject: id.subject,
            name: id.name,
            fhir_user: id.fhir_user,
            kept_at: chrono::Utc::now().timestamp_millis(),
        }
    }

    /// Who it signs in; `None` when the server named nobody.
    pub fn identity(&self) -> Option<Identity> {
        (!self.subject.is_empty()).then(|| Identity {
            issuer: self.issuer.clone(),
            subject: self.subject.clone(),
            name: self.name.clone(),
            fhir_user: self.fhir_user.clone(),
        })
    }
}

/// Sign-ins kept in the OS credential store.
pub struct KeptSignIns {
    secrets: Secrets,
}

impl KeptSignIns {
    /// The OS stores (Secret Service, then the kernel keyring).
    pub fn os() -> KeptSignIns {
        KeptSignIns::with(Secrets::new(SERVICE))
    }

    pub fn with(secrets: Secrets) -> KeptSignIns {
        KeptSignIns { secrets }
    }

    fn account(base: &str) -> String {
        format!("sign-in {}", base.trim_end_matches('/'))
    }

    /// The sign-in kept for `base`, and the store that holds it.
    pub fn load(&self, base: &str) -> Result<Option<(Kept, String)>, String> {
        let all = self.secrets.get_all(&Self::account(base))?;
        // Not ours, or from a version that kept something else: as if
        // nothing were kept (signing in again replaces it).
        Ok(all
            .into_iter()
            .filter_map(|(text, store)| Some((serde_json::from_str::<Kept>(&text).ok()?, store)))
            .max_by_key(|(k, _)| k.kept_at))
    }

    /// Keeps `kept` for `base`; says where.
    pub fn keep(&self, base: &str, kept: &Kept) -> Result<String, String> {
        let text = serde_json::to_string(kept).map_err(|e| e.to_string())?;
        self.secrets.set(&Self::account(base), &text)
    }

    pub fn forget(&self, base: &str) -> Result<(), String> {
        self.secrets.delete(&Self::account(base))
    }
}
