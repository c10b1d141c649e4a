//! Time-based one-time passwords (RFC 6238): HMAC-SHA1, 6 digits, 30 s
//! steps, the step before and after accepted for clock drift. Which step a
//! code was taken from is returned, so the caller can refuse a step used
//! before (a code seen over someone's shoulder is spent).

use ring::hmac;

pub const DIGITS: u32 = 6;
pub const STEP_SECONDS: i64 = 30;

/// The code of `secret` for time step `step` (RFC 4226 with the step as
/// the counter), with `digits` digits.
pub fn code_at(secret: &[u8], step: i64, digits: u32) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    binary % 10u32.pow(digits)
}

/// The step of `unix_seconds`.
pub fn step_of(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The step (now, or one either side) whose code `typed` is, if any.
pub fn matching_step(secret: &[u8], typed: &str, unix_seconds: i64) -> Option<i64> {
    let typed = typed.trim();
    if typed.len() != DIGITS as usize || !typed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let want: u32 = typed.parse().ok()?;
    let now = step_of(unix_seconds);
    // Each candidate is checked, so the time taken does not say which one
    // matched.
    let mut found = None;
    for step in [now - 1, now, now + 1] {
        if code_at(secret, step, DIGITS) == want {
            found = found.or(Some(step));
        }
    }
    found
}

/// A new 160-bit secret (RFC 4226's recommended length).
pub fn new_secret() -> anyhow::Result<Vec<u8>> {
    use rand::TryRng;
    let mut s = vec![0u8; 20];
    rand::rngs::SysRng
        .try_fill_bytes(&mut s)
        .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(s)
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps take it.
pub fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://` URI an authenticator app reads (as a QR code or typed).
pub fn otpauth_uri(login: &str, secret: &[u8]) -> String {
    let label: String = url::form_urlencoded::byte_serialize(login.as_bytes()).collect();
    format!(
        "otpauth://totp/chartty:{label}?secret={}&issuer=chartty",
        base32(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits; the key is the ASCII
    /// string "12345678901234567890").
    #[test]
    fn rfc_6238_sha1_vectors() {
        let secret = b"12345678901234567890";
        for (time, code) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(code_at(secret, step_of(time), 8), code, "T = {time}");
        }
        // And the same at six digits, as the server reads them.
        assert_eq!(code_at(secret, step_of(59), 6), 287082);
    }

    #[test]
    fn a_code_is_accepted_one_step_either_side_only() {
        let secret = b"12345678901234567890";
        let now = 1_111_111_111;
        let code = |step: i64| format!("{:06}", code_at(secret, step, 6));
        let here = step_of(now);
        assert_eq!(matching_step(secret, &code(here), now), Some(here));
        assert_eq!(matching_step(secret, &code(here - 1), now), Some(here - 1));
        assert_eq!(matching_step(secret, &code(here + 1), now), Some(here + 1));
        assert_eq!(matching_step(secret, &code(here - 2), now), None);
        assert_eq!(matching_step(secret, &code(here + 2), now), None);
        assert_eq!(matching_step(secret, "12345", now), None);
        assert_eq!(matching_step(secret, "abcdef", now), None);
    }

    #[test]
    fn base32_is_rfc_4648() {
        for (raw, encoded) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(raw.as_bytes()), encoded);
        }
        assert_eq!(
            otpauth_uri("rosa", b"12345678901234567890"),
            "otpauth://totp/chartty:rosa?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=chartty"
        );
    }
}
