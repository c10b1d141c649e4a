//! PKCE (RFC 7636), S256 only: `plain` would hand the verifier to anyone
//! who sees the authorization request.

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The characters of a verifier (and of an S256 challenge, a subset).
fn unreserved(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `challenge` can be an S256 challenge: the base64url of 32 bytes.
pub fn challenge_ok(challenge: &str) -> bool {
    challenge.len() == 43 && unreserved(challenge)
}

/// Whether `verifier` is well formed (43 to 128 unreserved characters).
pub fn verifier_ok(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && unreserved(verifier)
}

/// The S256 challenge of a verifier.
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` answers `challenge`.
pub fn verifies(verifier: &str, challenge: &str) -> bool {
    verifier_ok(verifier) && constant_eq(s256(verifier).as_bytes(), challenge.as_bytes())
}

/// Compares without stopping at the first difference.
pub fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(s256(verifier), challenge);
        assert!(challenge_ok(challenge));
        assert!(verifies(verifier, challenge));
        assert!(!verifies(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            challenge
        ));
        assert!(!verifies(challenge, challenge), "plain is not S256");
        assert!(!verifier_ok("short"));
        assert!(!verifier_ok(&"a".repeat(129)));
        assert!(!challenge_ok("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"));
    }
}
