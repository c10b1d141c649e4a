//! How many failed sign-ins, device-code starts and unknown user codes
//! are allowed in a window before the server stops even checking (429).
//!
//! Failures are counted per login and client address together, so that
//! someone elsewhere cannot lock a clinician out with five wrong
//! passwords; per login across all addresses, with a much higher ceiling
//! that still stops a guesser spread over many addresses; and per client
//! address across logins. IPv6 addresses count by their /64.
//!
//! An attempt counts as failed from the moment it starts and is taken
//! back when it succeeds: a burst of parallel guesses is bounded too, not
//! only guesses made one after another. Kept in memory: a restart forgets
//! them, which costs an attacker a restart they cannot cause. The memory
//! is bounded: logins are kept as short hashes, a refused attempt adds
//! nothing, and past a fixed number of keys the oldest are dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::address::limit_key;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failures of one login from one client address.
    pub per_login_address: usize,
    /// Failures of one login from anywhere.
    pub per_login: usize,
    /// Failures from one client address, whatever the login.
    pub per_address: usize,
    /// Device codes one client address may ask for.
    pub device_starts: usize,
    /// User codes one client address may look up and not find: what
    /// answers "no such code" must not be a cheap way to find one.
    pub code_lookups: usize,
    pub window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_login_address: 5,
            per_login: 50,
            per_address: 20,
            device_starts: 10,
            code_lookups: 20,
            window: Duration::from_secs(15 * 60),
        }
    }
}

/// Keys kept per table; past it the oldest windows go first.
const MAX_KEYS: usize = 50_000;

/// A login as counted: trimmed, lower case, at most 64 characters, hashed
/// (what people type is kept neither long nor readable).
type LoginKey = [u8; 16];

fn login_key(login: &str) -> LoginKey {
    let normal: String = login
        .trim()
        .chars()
        .take(64)
        .collect::<String>()
        .to_lowercase();
    let digest = Sha256::digest(normal.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Attempts in the window, and when a lock-out of this key was last
/// recorded.
#[derive(Default)]
struct Window {
    times: Vec<Instant>,
    noted: Option<Instant>,
}

impl Window {
    fn live(&mut self, now: Instant, window: Duration) {
        self.times.retain(|t| now.duration_since(*t) < window);
    }

    /// When the oldest attempt leaves the window.
    fn free_in(&self, now: Instant, window: Duration) -> Duration {
        self.times.iter().min().map_or(Duration::ZERO, |t| {
            window.saturating_sub(now.duration_since(*t))
        })
    }

    fn newest(&self) -> Option<Instant> {
        self.times.iter().max().copied().max(self.noted)
    }
}

struct Table<K> {
    map: HashMap<K, Window>,
    cap: usize,
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn new(cap: usize) -> Self {
        Table {
            map: HashMap::new(),
            cap,
        }
    }

    /// Why `key` must wait, if it must: it has `limit` attempts in the
    /// window. The bool says whether this refusal is the first of the
    /// window (worth a record). Adds nothing.
    fn full(
        &mut self,
        key: &K,
        limit: usize,
        now: Instant,
        window: Duration,
    ) -> Option<(Duration, bool)> {
        let w = self.map.get_mut(key)?;
        w.live(now, window);
        if w.times.len() < limit {
            return None;
        }
        let first = w.noted.is_none_or(|n| now.duration_since(n) >= window);
        if first {
            w.noted = Some(now);
        }
        Some((w.free_in(now, window), first))
    }

    fn push(&mut self, key: K, now: Instant, window: Duration) {
        if !self.map.contains_key(&key) && self.map.len() >= self.cap {
            self.make_room(now, window);
        }
        self.map.entry(key).or_default().times.push(now);
    }

    /// Drops expired windows, then, if that is not enough, the tenth whose
    /// latest attempt is oldest: one sort per many inserts, not a scan per
    /// attempt.
    fn make_room(&mut self, now: Instant, window: Duration) {
        self.map.retain(|_, w| {
            w.live(now, window);
            !w.times.is_empty()
        });
        if self.map.len() < self.cap {
            return;
        }
        let mut ages: Vec<(Option<Instant>, K)> = self
            .map
            .iter()
            .map(|(k, w)| (w.newest(), k.clone()))
            .collect();
        ages.sort_unstable_by_key(|(t, _)| *t);
        let drop = (self.cap / 10).max(1).min(ages.len());
        for (_, k) in ages.into_iter().take(drop) {
            self.map.remove(&k);
        }
    }

    fn take_back(&mut self, key: &K, at: Instant) {
        if let Some(w) = self.map.get_mut(key)
            && let Some(i) = w.times.iter().position(|t| *t == at)
        {
            w.times.swap_remove(i);
        }
    }
}

struct Windows {
    pairs: Table<(LoginKey, Option<IpAddr>)>,
    logins: Table<LoginKey>,
    addresses: Table<Option<IpAddr>>,
    devices: Table<Option<IpAddr>>,
    lookups: Table<Option<IpAddr>>,
}

pub struct Limiter {
    limits: Limits,
    windows: Mutex<Windows>,
}

/// A refusal: how long to wait, and whether it is the first refusal of its
/// kind in the window (the others are not worth an audit record each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub wait: Duration,
    pub record: bool,
}

/// A user-code lookup under way, counted as a miss until
/// [`Limiter::code_found`].
#[derive(Debug)]
pub struct Lookup {
    address: Option<IpAddr>,
    at: Instant,
}

/// An attempt under way, counted as failed until [`Limiter::succeeded`].
#[derive(Debug)]
pub struct Attempt {
    login: LoginKey,
    address: Option<IpAddr>,
    at: Instant,
}

impl Limiter {
    pub fn new(limits: Limits) -> Limiter {
        Self::with_cap(limits, MAX_KEYS)
    }

    fn with_cap(limits: Limits, cap: usize) -> Limiter {
        Limiter {
            limits,
            windows: Mutex::new(Windows {
                pairs: Table::new(cap),
                logins: Table::new(cap),
                addresses: Table::new(cap),
                devices: Table::new(cap),
                lookups: Table::new(cap),
            }),
        }
    }

    /// Starts a sign-in attempt, or says how long until one is allowed.
    pub fn begin(&self, login: &str, address: Option<IpAddr>) -> Result<Attempt, Refused> {
        let now = Instant::now();
        let window = self.limits.window;
        let Ok(mut guard) = self.windows.lock() else {
            return Err(Refused {
                wait: window,
                record: false,
            });
        };
        let w = &mut *guard;
        let login = login_key(login);
        let address = address.map(limit_key);
        let pair = (login, address);
        let checks = [
            w.pairs
                .full(&pair, self.limits.per_login_address, now, window),
            w.logins.full(&login, self.limits.per_login, now, window),
            w.addresses
                .full(&address, self.limits.per_address, now, window),
        ];
        if let Some(refused) = checks
            .into_iter()
            .flatten()
            .reduce(|a, b| (a.0.max(b.0), a.1 || b.1))
        {
            return Err(Refused {
                wait: refused.0,
                record: refused.1,
            });
        }
        w.pairs.push(pair, now, window);
        w.logins.push(login, now, window);
        w.addresses.push(address, now, window);
        Ok(Attempt {
            login,
            address,
            at: now,
        })
    }

    /// The attempt succeeded: it is not a failure, and the earlier
    /// failures of this login from this address are forgiven (not the
    /// login's from elsewhere, nor the address's: one good password does
    /// not license guessing others).
    pub fn succeeded(&self, attempt: Attempt) {
        let Ok(mut w) = self.windows.lock() else {
            return;
        };
        w.pairs.map.remove(&(attempt.login, attempt.address));
        w.logins.take_back(&attempt.login, attempt.at);
        w.addresses.take_back(&attempt.address, attempt.at);
    }

    /// Counts a device-code start from `address`, or refuses it.
    pub fn device_start(&self, address: Option<IpAddr>) -> Result<(), Refused> {
        self.count_address(address, self.limits.device_starts, |w| &mut w.devices)
            .map(|_| ())
    }

    /// Starts a user-code lookup from `address`, or refuses it. Refused
    /// whether or not the code exists: answering a found code while
    /// refusing the others would still tell them apart.
    pub fn code_lookup(&self, address: Option<IpAddr>) -> Result<Lookup, Refused> {
        self.count_address(address, self.limits.code_lookups, |w| &mut w.lookups)
            .map(|(address, at)| Lookup { address, at })
    }

    /// Counts one event of `address` in the table `pick` names, or refuses
    /// it when the window already holds `max`; the key and time counted.
    fn count_address(
        &self,
        address: Option<IpAddr>,
        max: usize,
        pick: fn(&mut Windows) -> &mut Table<Option<IpAddr>>,
    ) -> Result<(Option<IpAddr>, Instant), Refused> {
        let now = Instant::now();
        let window = self.limits.window;
        let Ok(mut w) = self.windows.lock() else {
            return Err(Refused {
                wait: window,
                record: false,
            });
        };
        let address = address.map(limit_key);
        let table = pick(&mut w);
        if let Some((wait, record)) = table.full(&address, max, now, window) {
            return Err(Refused { wait, record });
        }
        table.push(address, now, window);
        Ok((address, now))
    }

    /// The code looked up was waiting: the lookup is not a miss.
    pub fn code_found(&self, lookup: Lookup) {
        if let Ok(mut w) = self.windows.lock() {
            w.lookups.take_back(&lookup.address, lookup.at);
        }
    }

    #[cfg(test)]
    fn keys(&self) -> usize {
        self.windows.lock().map_or(0, |w| {
            w.pairs.map.len()
                + w.logins.map.len()
                + w.addresses.map.len()
                + w.devices.map.len()
                + w.lookups.map.len()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn the_sixth_failure_of_a_login_from_one_address_waits_and_a_success_forgives() {
        let l = Limiter::new(Limits::default());
        let here = ip("127.0.0.1");
        for _ in 0..5 {
            l.begin("rosa", here).unwrap();
        }
        let refused = l.begin("rosa", here).unwrap_err();
        assert!(refused.wait > Duration::from_secs(14 * 60), "{refused:?}");
        assert!(refused.record, "the first refusal is recorded");
        assert!(!l.begin("rosa", here).unwrap_err().record, "once a window");
        // The login is normalised: the same person typed differently.
        assert!(l.begin("  ROSA ", here).is_err());
        // Another login from the same address may still try, and Rosa from
        // another address.
        l.succeeded(l.begin("kevin", here).unwrap());
        l.succeeded(l.begin("rosa", ip("10.0.0.7")).unwrap());

        let l = Limiter::new(Limits::default());
        for _ in 0..4 {
            l.begin("rosa", here).unwrap();
        }
        l.succeeded(l.begin("rosa", here).unwrap());
        for _ in 0..5 {
            l.begin("rosa", here).unwrap();
        }
        assert!(l.begin("rosa", here).is_err());
    }

    #[test]
    fn a_login_has_a_ceiling_across_addresses() {
        let l = Limiter::new(Limits::default());
        for i in 0..50u8 {
            l.begin("rosa", ip(&format!("10.0.{i}.1"))).unwrap();
        }
        assert!(l.begin("rosa", ip("10.9.9.9")).is_err());
        assert!(l.begin("kevin", ip("10.9.9.9")).is_ok());
    }

    #[test]
    fn an_address_may_fail_twenty_times_across_logins() {
        let l = Limiter::new(Limits::default());
        let a = ip("10.0.0.9");
        for i in 0..20 {
            l.begin(&format!("user{i}"), a).unwrap();
        }
        assert!(l.begin("someone-else", a).is_err());
        assert!(l.begin("someone-else", ip("10.0.0.10")).is_ok());
        // IPv6: one /64 is one address.
        for i in 0..20 {
            l.begin(&format!("user{i}"), ip(&format!("2001:db8:0:1::{i:x}")))
                .unwrap();
        }
        assert!(l.begin("x", ip("2001:db8:0:1:ffff::1")).is_err());
        assert!(l.begin("x", ip("2001:db8:0:2::1")).is_ok());
    }

    #[test]
    fn a_refused_attempt_adds_nothing_and_the_keys_are_capped() {
        let l = Limiter::new(Limits::default());
        let a = ip("10.0.0.9");
        for i in 0..20 {
            l.begin(&format!("user{i}"), a).unwrap();
        }
        let before = l.keys();
        for i in 0..1000 {
            assert!(l.begin(&format!("another{i}"), a).is_err());
        }
        assert_eq!(l.keys(), before, "refusals are not kept");

        let l = Limiter::with_cap(Limits::default(), 100);
        let target = ip("192.0.2.1");
        for _ in 0..3 {
            l.begin("rosa", target).unwrap();
        }
        for i in 0..1000u32 {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            l.begin(&format!("guess{i}"), Some(IpAddr::V4(a))).unwrap();
            assert!(l.keys() <= 4 * 100, "{}", l.keys());
        }
        // The oldest went first: Rosa's early failures are forgotten.
        for _ in 0..5 {
            l.begin("rosa", target).unwrap();
        }
    }

    #[test]
    fn device_starts_are_limited_per_address() {
        let l = Limiter::new(Limits::default());
        let a = ip("10.0.0.9");
        for _ in 0..10 {
            l.device_start(a).unwrap();
        }
        let r = l.device_start(a).unwrap_err();
        assert!(r.record && r.wait > Duration::from_secs(60));
        assert!(!l.device_start(a).unwrap_err().record);
        assert!(l.device_start(ip("10.0.0.10")).is_ok());
    }

    #[test]
    fn unknown_codes_are_limited_per_address_and_found_ones_are_not_counted() {
        let l = Limiter::new(Limits::default());
        let a = ip("10.0.0.9");
        for _ in 0..30 {
            l.code_found(l.code_lookup(a).unwrap());
        }
        for _ in 0..20 {
            l.code_lookup(a).unwrap();
        }
        let r = l.code_lookup(a).unwrap_err();
        assert!(r.record && r.wait > Duration::from_secs(60));
        assert!(!l.code_lookup(a).unwrap_err().record);
        assert!(l.code_lookup(ip("10.0.0.10")).is_ok());
    }
}
