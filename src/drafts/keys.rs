//! Where the drafts key lives: the OS credential store, through `keyring`.
//!
//! Two stores on Linux, asked in this order:
//!
//! - the **Secret Service** (GNOME Keyring, KWallet…) over the D-Bus session
//!   bus, only when a session bus is there and its default collection is
//!   already unlocked: chartty never raises an unlock prompt (over SSH there is
//!   nobody to answer it, and the library would wait for ever). It keeps the
//!   key on disk, encrypted with the login password: it survives a reboot.
//! - the **kernel keyring** (keyutils). keyring 3 adds the key to the session
//!   keyring and links it into the user's *persistent* keyring
//!   (`keyctl_get_persistent`), which is shared by every login of the user and
//!   outlives them by `/proc/sys/kernel/keys/persistent_keyring_expiry`
//!   (3 days by default, counted from the last use): a dropped SSH link or a
//!   logout does not lose it; a reboot does. Where the kernel has no
//!   persistent keyrings the key is in the session keyring only, and the
//!   description says so ("session only").
//!
//! The key is read from every store that works; the first one found is the
//! key, and it is copied into the working stores that hold none, so a later
//! session that has only one of them (an SSH login without D-Bus) still finds
//! it. A different key found in another store is kept for reading the drafts
//! it sealed ([`KeySource::other_keys`]); it is never overwritten.

use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use keyring::Entry;

use super::KeySource;
pub use crate::keystore::Store;
use crate::keystore::{entry, label, own_session_keyring};

/// The drafts key from the OS credential store (see the module docs).
/// Asked once, on the first [`KeySource::key`]; the answer is kept.
pub struct KeyringKeys {
    service: String,
    account: String,
    stores: Vec<Store>,
    timeout: Duration,
    state: OnceLock<Result<Found, String>>,
}

#[derive(Clone)]
struct Found {
    key: [u8; 32],
    others: Vec<[u8; 32]>,
    described: String,
}

/// The service name of the drafts key in the credential store.
pub const SERVICE: &str = "chartty";
/// The account name of the drafts key in the credential store.
pub const ACCOUNT: &str = "drafts-key";

impl Default for KeyringKeys {
    fn default() -> Self {
        KeyringKeys::named(SERVICE, ACCOUNT)
    }
}

impl KeyringKeys {
    /// The drafts key of this OS user: both stores, Secret Service first.
    pub fn new() -> KeyringKeys {
        KeyringKeys::default()
    }

    /// A key under another name (tests use a name of their own, and
    /// [`KeyringKeys::forget`] it afterwards).
    pub fn named(service: &str, account: &str) -> KeyringKeys {
        KeyringKeys {
            service: service.to_string(),
            account: account.to_string(),
            stores: vec![Store::SecretService, Store::KernelKeyring],
            timeout: Duration::from_secs(10),
            state: OnceLock::new(),
        }
    }

    /// Only these stores, in this order.
    pub fn only(mut self, stores: &[Store]) -> KeyringKeys {
        self.stores = stores.to_vec();
        self
    }

    /// How long the first [`KeySource::key`] waits for the stores to answer
    /// (10 s by default) before it gives up and the drafts stay in memory.
    pub fn timeout(mut self, timeout: Duration) -> KeyringKeys {
        self.timeout = timeout;
        self
    }

    /// Deletes the key from every store that holds it: every draft sealed
    /// with it becomes unreadable. For tests, and for a user who wants their
    /// local drafts gone for good.
    pub fn forget(&self) -> Result<(), String> {
        if self.stores.contains(&Store::KernelKeyring) {
            own_session_keyring();
        }
        let mut errors = Vec::new();
        for store in &self.stores {
            let Ok((entry, _)) = entry(*store, &self.service, &self.account) else {
                continue;
            };
            match entry.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => {}
                Err(e) => errors.push(format!("{}: {e}", label(*store))),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    fn found(&self) -> &Result<Found, String> {
        self.state.get_or_init(|| {
            let (tx, rx) = mpsc::channel();
            let (stores, service, account) = (
                self.stores.clone(),
                self.service.clone(),
                self.account.clone(),
            );
            // A thread of its own: a credential store that hangs (a D-Bus
            // service that never answers) must not hang the app. A thread that
            // outlives the deadline is left to finish on its own.
            let spawned = std::thread::Builder::new()
                .name("drafts-key".into())
                .spawn(move || {
                    let _ = tx.send(acquire(&stores, &service, &account));
                });
            if let Err(e) = spawned {
                return Err(format!("could not ask the credential store: {e}"));
            }
            match rx.recv_timeout(self.timeout) {
                Ok(found) => found,
                Err(_) => Err(format!(
                    "the credential store did not answer within {} s",
                    self.timeout.as_secs()
                )),
            }
        })
    }
}

impl KeySource for KeyringKeys {
    fn key(&self) -> Result<[u8; 32], String> {
        self.found().as_ref().map(|f| f.key).map_err(Clone::clone)
    }

    fn describe(&self) -> String {
        match self.state.get() {
            Some(Ok(f)) => f.described.clone(),
            Some(Err(e)) => format!("no credential store ({e})"),
            None => "the OS credential store (not asked yet)".to_string(),
        }
    }

    fn other_keys(&self) -> Vec<[u8; 32]> {
        match self.found() {
            Ok(f) => f.others.clone(),
            Err(_) => Vec::new(),
        }
    }
}

fn hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

/// A new key from the operating system's RNG.
pub(super) fn fresh_key() -> Result<[u8; 32], String> {
    use rand::TryRng;
    let mut key = [0u8; 32];
    rand::rngs::SysRng
        .try_fill_bytes(&mut key)
        .map_err(|e| format!("no randomness from the OS: {e}"))?;
    Ok(key)
}

fn reasons(why: Vec<String>) -> String {
    if why.is_empty() {
        "no credential store to ask".to_string()
    } else {
        why.join("; ")
    }
}

fn acquire(stores: &[Store], service: &str, account: &str) -> Result<Found, String> {
    if stores.contains(&Store::KernelKeyring) {
        own_session_keyring();
    }
    let mut why = Vec::new();
    // (entry, name, key it holds)
    let mut usable: Vec<(Entry, String, Option<[u8; 32]>)> = Vec::new();
    for store in stores {
        let (entry, name) = match entry(*store, service, account) {
            Ok(e) => e,
            Err(e) => {
                why.push(format!("{}: {e}", label(*store)));
                continue;
            }
        };
        match entry.get_password() {
            Ok(text) => match unhex(&text) {
                Some(key) => usable.push((entry, name, Some(key))),
                // Someone else's entry under our name: leave it alone.
                None => why.push(format!("{name}: holds something that is not a drafts key")),
            },
            Err(keyring::Error::NoEntry) => usable.push((entry, name, None)),
            Err(e) => why.push(format!("{name}: {e}")),
        }
    }
    let key = match usable.iter().find_map(|(_, _, k)| *k) {
        Some(k) => k,
        None if usable.is_empty() => return Err(reasons(why)),
        None => fresh_key()?,
    };
    let mut holders = Vec::new();
    let mut others = Vec::new();
    for (entry, name, held) in &usable {
        match held {
            Some(k) if *k == key => holders.push(name.clone()),
            Some(k) => {
                if !others.contains(k) {
                    others.push(*k);
                }
            }
            None => {
                // Write, then read back: a store that takes the key but cannot
                // give it back is no store.
                let back = entry
                    .set_password(&hex(&key))
                    .and_then(|()| entry.get_password());
                match back {
                    Ok(text) if unhex(&text) == Some(key) => holders.push(name.clone()),
                    Ok(_) => why.push(format!("{name}: gave back another key than it was given")),
                    Err(e) => why.push(format!("{name}: could not keep the key: {e}")),
                }
            }
        }
    }
    if holders.is_empty() {
        return Err(reasons(why));
    }
    for w in &why {
        tracing::info!("drafts key: {w}");
    }
    Ok(Found {
        key,
        others,
        described: holders.join(" + "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let k = [0xa5u8; 32];
        assert_eq!(unhex(&hex(&k)), Some(k));
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(&"g".repeat(64)), None);
    }
}
