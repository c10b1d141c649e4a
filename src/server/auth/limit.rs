//! How many failed sign-ins a login, and a client address, may have in a
//! window before sign-in stops even checking the password (429).
//!
//! An attempt counts as failed from the moment it starts and is taken
//! back when it succeeds: a burst of parallel guesses is bounded too, not
//! only guesses made one after another. Kept in memory: a restart forgets
//! them, which costs an attacker a restart they cannot cause.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_login: usize,
    pub per_address: usize,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_login: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Keys kept before expired ones are swept (logins are whatever people
/// type, so the map must not grow without end).
const SWEEP_ABOVE: usize = 10_000;

#[derive(Default)]
struct Windows {
    logins: HashMap<String, Vec<Instant>>,
    addresses: HashMap<IpAddr, Vec<Instant>>,
}

pub struct Limiter {
    limits: Limits,
    windows: Mutex<Windows>,
}

/// An attempt under way, counted as failed until [`Limiter::succeeded`].
#[derive(Debug)]
pub struct Attempt {
    login: String,
    address: Option<IpAddr>,
    at: Instant,
}

fn live(times: &mut Vec<Instant>, now: Instant, window: Duration) {
    times.retain(|t| now.duration_since(*t) < window);
}

/// When the oldest of `times` leaves the window.
fn free_in(times: &[Instant], now: Instant, window: Duration) -> Duration {
    times.iter().min().map_or(Duration::ZERO, |t| {
        window.saturating_sub(now.duration_since(*t))
    })
}

impl Limiter {
    pub fn new(limits: Limits) -> Limiter {
        Limiter {
            limits,
            windows: Mutex::new(Windows::default()),
        }
    }

    /// Starts an attempt, or says how long until one is allowed.
    pub fn begin(&self, login: &str, address: Option<IpAddr>) -> Result<Attempt, Duration> {
        let now = Instant::now();
        let window = self.limits.window;
        let Ok(mut guard) = self.windows.lock() else {
            return Err(window);
        };
        let w = &mut *guard;
        if w.logins.len() > SWEEP_ABOVE {
            w.logins.retain(|_, t| {
                live(t, now, window);
                !t.is_empty()
            });
        }
        if w.addresses.len() > SWEEP_ABOVE {
            w.addresses.retain(|_, t| {
                live(t, now, window);
                !t.is_empty()
            });
        }
        let mut wait = Duration::ZERO;
        if let Some(a) = address {
            let times = w.addresses.entry(a).or_default();
            live(times, now, window);
            if times.len() >= self.limits.per_address {
                wait = wait.max(free_in(times, now, window));
            }
        }
        let times = w.logins.entry(login.to_string()).or_default();
        live(times, now, window);
        if times.len() >= self.limits.per_login {
            wait = wait.max(free_in(times, now, window));
        }
        if !wait.is_zero() {
            return Err(wait);
        }
        times.push(now);
        if let Some(a) = address {
            w.addresses.entry(a).or_default().push(now);
        }
        Ok(Attempt {
            login: login.to_string(),
            address,
            at: now,
        })
    }

    /// The attempt succeeded: it is not a failure, and the login's earlier
    /// failures are forgiven (the address's are not: one good password
    /// does not license guessing others).
    pub fn succeeded(&self, attempt: Attempt) {
        let Ok(mut w) = self.windows.lock() else {
            return;
        };
        w.logins.remove(&attempt.login);
        if let Some(a) = attempt.address
            && let Some(times) = w.addresses.get_mut(&a)
            && let Some(i) = times.iter().position(|t| *t == attempt.at)
        {
            times.swap_remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sixth_failure_of_a_login_waits_and_a_success_forgives() {
        let l = Limiter::new(Limits::default());
        let ip: Option<IpAddr> = "127.0.0.1".parse().ok();
        for _ in 0..5 {
            l.begin("rosa", ip).unwrap();
        }
        let wait = l.begin("rosa", ip).unwrap_err();
        assert!(wait > Duration::from_secs(14 * 60), "{wait:?}");
        // Another login from the same address may still try.
        let ok = l.begin("kevin", ip).unwrap();
        l.succeeded(ok);
        let l = Limiter::new(Limits::default());
        for _ in 0..4 {
            l.begin("rosa", ip).unwrap();
        }
        let good = l.begin("rosa", ip).unwrap();
        l.succeeded(good);
        for _ in 0..5 {
            l.begin("rosa", ip).unwrap();
        }
        assert!(l.begin("rosa", ip).is_err());
    }

    #[test]
    fn an_address_may_fail_twenty_times_across_logins() {
        let l = Limiter::new(Limits::default());
        let ip: Option<IpAddr> = "10.0.0.9".parse().ok();
        for i in 0..20 {
            l.begin(&format!("user{i}"), ip).unwrap();
        }
        assert!(l.begin("someone-else", ip).is_err());
        assert!(l.begin("someone-else", "10.0.0.10".parse().ok()).is_ok());
    }
}
