//! The device authorization grant (RFC 8628): a short code and an address
//! to approve it at, on any device (a phone); chartty asks the token
//! endpoint at the pace the server sets.

use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::fhir::sanitize::sanitize;

/// What the device endpoint gave: shown to the user, then polled.
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct DeviceStart {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    #[serde(default = "default_expiry")]
    pub expires_in: u64,
    #[serde(default = "default_interval")]
    pub interval: u64,
}

impl std::fmt::Debug for DeviceStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The device code is a bearer secret until it is used.
        f.debug_struct("DeviceStart")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .finish_non_exhaustive()
    }
}

fn default_expiry() -> u64 {
    600
}

/// RFC 8628 §3.2: 5 seconds when the server does not say.
fn default_interval() -> u64 {
    5
}

impl DeviceStart {
    /// The server's text made safe to show.
    pub fn cleaned(mut self) -> DeviceStart {
        self.user_code = sanitize(&self.user_code).into_owned();
        self.verification_uri = sanitize(&self.verification_uri).into_owned();
        self.verification_uri_complete = self
            .verification_uri_complete
            .map(|u| sanitize(&u).into_owned());
        self
    }
}

/// What one poll of the token endpoint means.
#[derive(Debug, PartialEq, Eq)]
pub enum Poll {
    /// Not approved yet: ask again after the interval.
    Pending,
    /// Asked too often: the interval grows by 5 seconds (§3.5).
    SlowDown,
    /// Refused, expired, or something else the user must hear.
    Failed(String),
}

/// Reads an error answer to a device code poll.
pub fn poll_error(error: &str, description: Option<&str>) -> Poll {
    match error {
        "authorization_pending" => Poll::Pending,
        "slow_down" => Poll::SlowDown,
        "access_denied" => Poll::Failed("the sign-in was refused on the approving device".into()),
        "expired_token" => {
            Poll::Failed("the code expired before it was approved; try again".into())
        }
        other => Poll::Failed(format!(
            "the server refused the sign-in: {}",
            sanitize(description.unwrap_or(other))
        )),
    }
}

/// The pace of polling: the server's interval, grown on `slow_down`, and a
/// deadline at the code's expiry.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub interval: Duration,
    pub deadline: Instant,
}

impl Pace {
    /// The server's numbers, within sense: polls 1 to 60 s apart, a code
    /// good for at most 30 minutes (a hostile number must not overflow the
    /// clock or stall the wait for ever).
    pub fn new(start: &DeviceStart, now: Instant) -> Pace {
        Pace {
            interval: Duration::from_secs(start.interval.clamp(1, 60)),
            deadline: now + Duration::from_secs(start.expires_in.min(1800)),
        }
    }

    pub fn slow_down(&mut self) {
        self.interval = (self.interval + Duration::from_secs(5)).min(Duration::from_secs(120));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_answers_and_pace() {
        assert_eq!(poll_error("authorization_pending", None), Poll::Pending);
        assert_eq!(poll_error("slow_down", None), Poll::SlowDown);
        assert!(
            matches!(poll_error("access_denied", None), Poll::Failed(m) if m.contains("refused"))
        );
        assert!(
            matches!(poll_error("expired_token", None), Poll::Failed(m) if m.contains("expired"))
        );
        assert!(
            matches!(poll_error("odd", Some("\u{1b}]52;c;x\u{7}")), Poll::Failed(m) if !m.contains('\u{1b}'))
        );
        let start: DeviceStart = serde_json::from_value(serde_json::json!({
            "device_code": "d", "user_code": "BCDF-GHJK", "verification_uri": "https://a/v"
        }))
        .unwrap();
        let now = Instant::now();
        let mut pace = Pace::new(&start, now);
        assert_eq!(pace.interval, Duration::from_secs(5));
        assert_eq!(pace.deadline, now + Duration::from_secs(600));
        pace.slow_down();
        assert_eq!(pace.interval, Duration::from_secs(10));
        for _ in 0..100 {
            pace.slow_down();
        }
        assert_eq!(pace.interval, Duration::from_secs(120));
        let hostile: DeviceStart = serde_json::from_value(serde_json::json!({
            "device_code": "d", "user_code": "X", "verification_uri": "https://a/v",
            "expires_in": u64::MAX, "interval": u64::MAX
        }))
        .unwrap();
        let pace = Pace::new(&hostile, now);
        assert_eq!(pace.interval, Duration::from_secs(60));
        assert_eq!(pace.deadline, now + Duration::from_secs(1800));
        assert!(!format!("{start:?}").contains("\"d\""));
    }
}
