//! Which of the scopes a client asked for are granted: the OpenID and
//! refresh scopes, and user-level resource scopes in SMART v1
//! (`user/Observation.read`) and v2 (`user/Observation.rs`) form. Others
//! (patient-level scopes need a patient picker this server has not) are
//! left out of the grant, as RFC 6749 §3.3 allows; the token answer says
//! what was granted.
//!
//! Access is decided by the user's role whatever the scope: the scopes
//! are recorded with each token, not enforced.

use super::super::params;

/// What discovery lists (the resource forms stand for every type).
pub const SUPPORTED: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "offline_access",
    "online_access",
    "user/*.read",
    "user/*.write",
    "user/*.*",
    "user/*.cruds",
    "user/*.rs",
];

const PLAIN: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "offline_access",
    "online_access",
];

/// SMART v2 permissions: a non-empty subsequence of `cruds`.
fn v2_permissions(p: &str) -> bool {
    let mut rest = "cruds";
    !p.is_empty()
        && p.chars().all(|c| match rest.find(c) {
            Some(i) => {
                rest = &rest[i + 1..];
                true
            }
            None => false,
        })
}

fn resource_scope(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("user/") else {
        return false;
    };
    let Some((ty, perm)) = rest.split_once('.') else {
        return false;
    };
    (ty == "*" || params::type_params(ty).is_some())
        && (matches!(perm, "read" | "write" | "*") || v2_permissions(perm))
}

/// The granted part of a requested `scope`, space-separated, in the order
/// asked, each once.
pub fn grant(requested: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for s in requested.split_ascii_whitespace() {
        if (PLAIN.contains(&s) || resource_scope(s)) && !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(" ")
}

/// Whether a granted scope string holds `name`.
pub fn has(granted: &str, name: &str) -> bool {
    granted.split_ascii_whitespace().any(|s| s == name)
}

/// Whether the grant comes with a refresh token.
pub fn refreshable(granted: &str) -> bool {
    has(granted, "offline_access") || has(granted, "online_access")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_what_it_knows_in_order_once() {
        assert_eq!(
            grant(
                "openid fhirUser openid offline_access user/*.cruds launch/patient patient/*.read user/Observation.rs user/Nope.read user/Patient.sc user/Patient.x"
            ),
            "openid fhirUser offline_access user/*.cruds user/Observation.rs"
        );
        assert_eq!(
            grant("user/*.read user/*.* user/*.write"),
            "user/*.read user/*.* user/*.write"
        );
        assert_eq!(grant(""), "");
        assert!(refreshable("openid online_access"));
        assert!(!refreshable("openid"));
    }
}
