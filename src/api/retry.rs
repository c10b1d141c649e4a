//! When to try a request again, and how long to wait first: exponential
//! backoff with full jitter (a random wait between zero and the doubled
//! step), so many clients that lost the same server do not return in step;
//! a server's `Retry-After` is honoured up to a cap.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Tries in all, the first included.
    pub attempts: u32,
    pub base: Duration,
    /// Longest wait between tries, `Retry-After` included.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            attempts: 3,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// Never try again (tests that count requests).
    pub const ONCE: Backoff = Backoff {
        attempts: 1,
        base: Duration::ZERO,
        cap: Duration::ZERO,
    };

    /// The wait before try `attempt + 1` (after `attempt` failures, from 1);
    /// `unit` is a random number in `[0, 1)`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.cap);
        let jittered = step.mul_f64(unit.clamp(0.0, 1.0));
        match retry_after {
            Some(r) => r.min(self.cap).max(jittered),
            None => jittered,
        }
    }
}

/// Whether a failure is worth another try: the server was not reached, or
/// said it is overloaded or briefly away.
pub fn retryable(status: Option<u16>) -> bool {
    matches!(status, None | Some(429 | 502 | 503 | 504))
}

/// `Retry-After` as seconds (`120`); an HTTP date is read as "soon" (one
/// second) rather than trusted against a local clock.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    match v.parse::<u64>() {
        Ok(s) => Some(Duration::from_secs(s)),
        Err(_) if v.contains("GMT") => Some(Duration::from_secs(1)),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn waits_grow_and_honour_retry_after() {
        let b = Backoff::default();
        assert_eq!(b.delay(1, None, 0.999_999).as_millis(), 199);
        assert_eq!(b.delay(2, None, 0.5), Duration::from_millis(200));
        assert_eq!(
            b.delay(3, None, 0.0),
            Duration::ZERO,
            "full jitter reaches zero"
        );
        assert_eq!(
            b.delay(1, Some(Duration::from_secs(3)), 0.1),
            Duration::from_secs(3)
        );
        assert_eq!(b.delay(1, Some(Duration::from_secs(3600)), 0.1), b.cap);
        assert!(retryable(None) && retryable(Some(503)) && retryable(Some(429)));
        assert!(!retryable(Some(404)) && !retryable(Some(412)) && !retryable(Some(400)));
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2026 07:28:00 GMT"),
            Some(Duration::from_secs(1))
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    proptest! {
        #[test]
        fn a_wait_never_exceeds_the_cap(attempt in 0u32..100, unit in 0.0f64..1.0, after in proptest::option::of(0u64..100_000)) {
            let b = Backoff::default();
            prop_assert!(b.delay(attempt, after.map(Duration::from_secs), unit) <= b.cap);
        }
    }
}
