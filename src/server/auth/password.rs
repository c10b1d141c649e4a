//! Passwords, stored as argon2id PHC strings (`$argon2id$v=19$m=…`): the
//! cost travels with each hash, so raising it later leaves older hashes
//! readable.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

/// What one hash costs: memory in KiB, passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub memory_kib: u32,
    pub passes: u32,
    pub lanes: u32,
}

impl Default for Cost {
    /// OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Cost {
            memory_kib: 19_456,
            passes: 2,
            lanes: 1,
        }
    }
}

impl Cost {
    /// For passwords the server makes itself (demo users): ~99 random bits
    /// cannot be guessed whatever the hash costs, so a cheap one keeps
    /// every demo start fast.
    pub const GENERATED: Cost = Cost {
        memory_kib: 256,
        passes: 1,
        lanes: 1,
    };
}

/// The shortest password `set` accepts.
pub const MIN_LEN: usize = 8;

fn hasher(cost: Cost) -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(cost.memory_kib, cost.passes, cost.lanes, None)
        .map_err(|e| anyhow::anyhow!("argon2 cost {cost:?}: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The PHC string of `password` under a fresh random salt.
pub fn hash(password: &str, cost: Cost) -> anyhow::Result<String> {
    use rand::TryRng;
    let mut salt = [0u8; 16];
    rand::rngs::SysRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    let phc = hasher(cost)?
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))?;
    Ok(phc.to_string())
}

/// Whether `password` is the one `phc` was made from. A malformed stored
/// hash matches nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    // The parameters come from the PHC string; the default instance only
    // supplies the algorithm's code.
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// Spends about what [`verify`] spends, for a login that has no password
/// (unknown, or never given one), so the answer's timing does not tell.
pub fn verify_nothing(password: &str, cost: Cost) {
    if let Ok(h) = hasher(cost) {
        let mut out = [0u8; 32];
        let _ = h.hash_password_into(password.as_bytes(), b"chartty-no-user-salt", &mut out);
    }
}

/// Refuses a password too short to be one.
pub fn acceptable(password: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        password.chars().count() >= MIN_LEN,
        "a password has at least {MIN_LEN} characters"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let cost = Cost::GENERATED;
        let h = hash("correct horse", cost).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horsE", &h));
        assert!(!verify("correct horse", "not a hash"));
        // Same password, new salt.
        assert_ne!(h, hash("correct horse", cost).unwrap());
    }

    #[test]
    fn the_default_cost_is_owasp_and_is_written_into_the_hash() {
        let h = hash("a long password", Cost::default()).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("a long password", &h));
    }
}
