//! The id_token signing key (ES256, P-256) and JWTs signed with it.
//!
//! The key is made once per database and kept in it (`auth_keys`), so an
//! id_token stays verifiable across restarts; `jwks_uri` serves its public
//! half, named by its RFC 7638 thumbprint.

use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::super::store;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub struct Signer {
    key: EcdsaKeyPair,
    kid: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).finish()
    }
}

/// `x` and `y` of an uncompressed P-256 point (`04 ‖ x ‖ y`).
fn coordinates(public: &[u8]) -> Option<(&[u8], &[u8])> {
    match public {
        [4, rest @ ..] if rest.len() == 64 => Some(rest.split_at(32)),
        _ => None,
    }
}

impl Signer {
    /// The database's key, made and stored first if it has none.
    pub fn load_or_create(conn: &Connection) -> anyhow::Result<Signer> {
        let rng = SystemRandom::new();
        let stored: Option<Vec<u8>> = conn
            .query_row(
                "SELECT pkcs8 FROM auth_keys ORDER BY created LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let pkcs8 = match stored {
            Some(p) => p,
            None => {
                let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| anyhow::anyhow!("could not make a signing key"))?;
                let pkcs8 = doc.as_ref().to_vec();
                let signer = Signer::from_pkcs8(&pkcs8, rng.clone())?;
                // Two servers starting on one new database at once: the
                // first key stored is the one both use.
                conn.execute(
                    "INSERT OR IGNORE INTO auth_keys (kid, pkcs8, created) VALUES (?1, ?2, ?3)",
                    params![signer.kid, pkcs8, store::now_ms()],
                )?;
                conn.query_row(
                    "SELECT pkcs8 FROM auth_keys ORDER BY created LIMIT 1",
                    [],
                    |r| r.get(0),
                )?
            }
        };
        Signer::from_pkcs8(&pkcs8, rng)
    }

    fn from_pkcs8(pkcs8: &[u8], rng: SystemRandom) -> anyhow::Result<Signer> {
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
            .map_err(|e| anyhow::anyhow!("the stored signing key is unusable: {e}"))?;
        let (x, y) = coordinates(key.public_key().as_ref())
            .ok_or_else(|| anyhow::anyhow!("the signing key is not a P-256 point"))?;
        // RFC 7638: SHA-256 of the required members, in lexical order.
        let canonical = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64(x),
            b64(y)
        );
        let kid = b64(&Sha256::digest(canonical.as_bytes()));
        Ok(Signer { key, kid, rng })
    }

    /// The public key as a JWK Set.
    pub fn jwks(&self) -> Value {
        let Some((x, y)) = coordinates(self.key.public_key().as_ref()) else {
            return json!({"keys": []});
        };
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y),
            "use": "sig", "alg": "ES256", "kid": self.kid,
        }]})
    }

    /// `claims` as a compact JWS.
    pub fn sign(&self, claims: &Value) -> anyhow::Result<String> {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| anyhow::anyhow!("could not sign an id_token"))?;
        Ok(format!("{input}.{}", b64(sig.as_ref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{ECDSA_P256_SHA256_FIXED, UnparsedPublicKey};

    #[test]
    fn one_key_per_database_and_its_signatures_verify() {
        let dir = tempfile::tempdir().unwrap();
        let conn = store::connect(&dir.path().join("k.db")).unwrap();
        store::migrate(&conn).unwrap();
        let a = Signer::load_or_create(&conn).unwrap();
        let b = Signer::load_or_create(&conn).unwrap();
        assert_eq!(a.kid, b.kid, "the stored key is reused");
        let jwt = a.sign(&json!({"sub": "rosa"})).unwrap();
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap();
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, b.key.public_key().as_ref());
        assert!(public.verify(input.as_bytes(), &sig).is_ok());
        let jwk = &a.jwks()["keys"][0];
        assert_eq!(
            (jwk["kty"].as_str(), jwk["crv"].as_str()),
            (Some("EC"), Some("P-256"))
        );
    }
}
