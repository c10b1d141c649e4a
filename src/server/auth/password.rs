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

impl Cost {
    /// The cost written into a PHC string (`$argon2id$v=19$m=…,t=…,p=…$…`).
    pub fn of_phc(phc: &str) -> Option<Cost> {
        let params = phc.split('$').nth(3)?;
        let (mut m, mut t, mut p) = (None, None, None);
        for kv in params.split(',') {
            match kv.split_once('=')? {
                ("m", v) => m = v.parse().ok(),
                ("t", v) => t = v.parse().ok(),
                ("p", v) => p = v.parse().ok(),
                _ => {}
            }
        }
        Some(Cost {
            memory_kib: m?,
            passes: t?,
            lanes: p?,
        })
    }

    /// The cost most of `costs` have (the dearer of equals), if any.
    pub fn usual(costs: impl IntoIterator<Item = Cost>) -> Option<Cost> {
        let mut counted: Vec<(Cost, usize)> = Vec::new();
        for c in costs {
            match counted.iter_mut().find(|(k, _)| *k == c) {
                Some((_, n)) => *n += 1,
                None => counted.push((c, 1)),
            }
        }
        counted
            .into_iter()
            .max_by_key(|(c, n)| (*n, c.memory_kib, c.passes, c.lanes))
            .map(|(c, _)| c)
    }
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

/// Spends about what [`verify`] spends on a hash of `cost`, for a login
/// that has no password (unknown, or never given one), so the answer's
/// timing does not tell.
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
    fn the_cost_is_read_back_from_a_hash_and_the_usual_one_found() {
        let h = hash("correct horse", Cost::GENERATED).unwrap();
        assert_eq!(Cost::of_phc(&h), Some(Cost::GENERATED));
        assert_eq!(Cost::of_phc("not a hash"), None);
        assert_eq!(Cost::of_phc("$argon2id$v=19$m=x,t=1,p=1$a$b"), None);
        let d = Cost::default();
        let g = Cost::GENERATED;
        assert_eq!(Cost::usual([g, d, g]), Some(g));
        assert_eq!(Cost::usual([g, d]), Some(d), "the dearer of equals");
        assert_eq!(Cost::usual([]), None);
    }

    /// What the choice of `verify_nothing`'s cost rests on: a hash of one
    /// cost takes about as long as an unknown login at that cost, so the
    /// cost must follow the stored hashes, not the configured one.
    #[test]
    fn verify_nothing_costs_what_a_hash_of_the_same_cost_does() {
        let g = Cost::GENERATED;
        let h = hash("correct horse", g).unwrap();
        // Each kind timed call by call, interleaved, and the fastest call
        // of each compared: a busy machine slows some calls, never speeds
        // one up, so the minimums compare the work itself.
        let once = |f: &dyn Fn()| {
            let t = std::time::Instant::now();
            f();
            t.elapsed()
        };
        let (mut known, mut unknown) = (std::time::Duration::MAX, std::time::Duration::MAX);
        for _ in 0..20 {
            known = known.min(once(&|| {
                verify("wrong horse", &h);
            }));
            unknown = unknown.min(once(&|| verify_nothing("wrong horse", g)));
        }
        let ratio = known.as_secs_f64() / unknown.as_secs_f64().max(1e-9);
        assert!((0.33..3.0).contains(&ratio), "{known:?} vs {unknown:?}");
    }

    #[test]
    fn the_default_cost_is_owasp_and_is_written_into_the_hash() {
        let h = hash("a long password", Cost::default()).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("a long password", &h));
    }
}
