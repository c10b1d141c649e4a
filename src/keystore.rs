//! The OS credential stores chartty keeps secrets in, through `keyring`:
//! the drafts key (`crate::drafts`) and the refresh token of a sign-in
//! (`crate::api::signin`). Never a plain file.
//!
//! Two stores on Linux, asked in this order:
//!
//! - the **Secret Service** (GNOME Keyring, KWallet…) over the D-Bus session
//!   bus, only when a session bus is there and its default collection is
//!   already unlocked: chartty never raises an unlock prompt (over SSH there
//!   is nobody to answer it, and the library would wait for ever). It keeps
//!   secrets on disk, encrypted with the login password.
//! - the **kernel keyring** (keyutils): the session keyring, linked into the
//!   user's persistent keyring where the kernel has one (shared by every
//!   login of the user, kept for `/proc/sys/kernel/keys/persistent_keyring_expiry`
//!   after the last use, 3 days by default; lost at reboot). Without a
//!   persistent keyring it is a session cache only, and its name says so.

use std::sync::mpsc;
use std::time::Duration;

use keyring::Entry;

/// Which OS credential store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// The freedesktop Secret Service over the D-Bus session bus.
    SecretService,
    /// The Linux kernel keyring (keyutils), persistent keyring where the kernel has it.
    KernelKeyring,
}

pub fn label(store: Store) -> &'static str {
    match store {
        Store::SecretService => "Secret Service",
        Store::KernelKeyring => "kernel keyring",
    }
}

/// The keyring entry for `store`, with how to name it, or why it cannot be
/// used.
pub fn entry(store: Store, service: &str, account: &str) -> Result<(Entry, String), String> {
    match store {
        Store::SecretService => {
            secret_service_usable()?;
            let cred =
                keyring::secret_service::SsCredential::new_with_target(None, service, account)
                    .map_err(|e| e.to_string())?;
            Ok((
                Entry::new_with_credential(Box::new(cred)),
                "Secret Service".to_string(),
            ))
        }
        Store::KernelKeyring => {
            let cred =
                keyring::keyutils::KeyutilsCredential::new_with_target(None, service, account)
                    .map_err(|e| format!("not reachable: {e}"))?;
            let name = if cred.persistent.is_some() {
                "kernel keyring (persistent)"
            } else {
                "kernel keyring (session only: lost at logout)"
            };
            Ok((Entry::new_with_credential(Box::new(cred)), name.to_string()))
        }
    }
}

/// Whether the Secret Service can be used without a prompt: a session bus,
/// a service on it, and a default collection that is already unlocked.
fn secret_service_usable() -> Result<(), String> {
    use dbus_secret_service::{EncryptionType, SecretService};
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none_or(|a| a.is_empty()) {
        return Err("no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set)".to_string());
    }
    let ss = SecretService::connect(EncryptionType::Plain)
        .map_err(|e| format!("not reachable on the session bus: {e}"))?;
    let collection = ss
        .get_default_collection()
        .map_err(|e| format!("no default collection: {e}"))?;
    if collection.is_locked().map_err(|e| e.to_string())? {
        return Err(
            "its default collection is locked (chartty does not prompt to unlock it)".into(),
        );
    }
    Ok(())
}

/// A process that has no session keyring of its own (started from a
/// daemon, a container's init, a tmux server started that way) falls back
/// to the user's shared user-session keyring, where what keyring adds
/// cannot be read back (every read ends in "no entry"). A login through
/// `pam_keyinit` gets a session keyring of its own; chartty then makes one
/// the same way. The persistent keyring, which keyring links into the
/// session keyring, carries secrets from one run to the next.
///
/// Credentials are per thread on Linux: this is called on the thread that
/// then asks the kernel keyring.
pub fn own_session_keyring() {
    const KEYCTL_GET_KEYRING_ID: libc::c_long = 0;
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    const KEY_SPEC_SESSION_KEYRING: libc::c_long = -3;
    const KEY_SPEC_USER_SESSION_KEYRING: libc::c_long = -5;
    // SAFETY: keyctl(2) with integer arguments and a null name; no memory is
    // shared with the kernel beyond the call.
    unsafe {
        let id = |spec: libc::c_long| {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_GET_KEYRING_ID,
                spec,
                0 as libc::c_long,
            )
        };
        let session = id(KEY_SPEC_SESSION_KEYRING);
        if session > 0 && session == id(KEY_SPEC_USER_SESSION_KEYRING) {
            let joined = libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_JOIN_SESSION_KEYRING,
                std::ptr::null::<libc::c_char>(),
            );
            if joined < 0 {
                tracing::info!("keystore: no session keyring of chartty's own could be made");
            }
        }
    }
}

type Reply<T> = mpsc::Sender<Result<T, String>>;

enum Job {
    Get(String, Reply<Option<(String, String)>>),
    GetAll(String, Reply<Vec<(String, String)>>),
    Set(String, String, Reply<String>),
    Delete(String, Reply<()>),
}

/// Text secrets under one service name, one per account, in the first
/// credential store that works. Every call runs on one thread of its own:
/// kernel keyring credentials are per thread (see [`own_session_keyring`]),
/// and a store that hangs must not hang the caller past the timeout.
pub struct Secrets {
    jobs: mpsc::Sender<Job>,
    timeout: Duration,
}

impl Secrets {
    /// Both stores, Secret Service first.
    pub fn new(service: &str) -> Secrets {
        Secrets::only(service, &[Store::SecretService, Store::KernelKeyring])
    }

    /// Only these stores, in this order (none: every call fails, which is
    /// how memory-only is tested).
    pub fn only(service: &str, stores: &[Store]) -> Secrets {
        let (jobs, rx) = mpsc::channel::<Job>();
        let service = service.to_string();
        let stores = stores.to_vec();
        let spawned = std::thread::Builder::new()
            .name("keystore".into())
            .spawn(move || {
                if stores.contains(&Store::KernelKeyring) {
                    own_session_keyring();
                }
                while let Ok(job) = rx.recv() {
                    match job {
                        Job::Get(account, reply) => {
                            let _ = reply.send(get(&stores, &service, &account));
                        }
                        Job::GetAll(account, reply) => {
                            let _ = reply.send(get_all(&stores, &service, &account));
                        }
                        Job::Set(account, secret, reply) => {
                            let _ = reply.send(set(&stores, &service, &account, &secret));
                        }
                        Job::Delete(account, reply) => {
                            let _ = reply.send(delete(&stores, &service, &account));
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::info!("keystore: no thread for the credential store: {e}");
        }
        Secrets {
            jobs,
            timeout: Duration::from_secs(10),
        }
    }

    fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, String> {
        let (tx, rx) = mpsc::channel();
        self.jobs
            .send(job(tx))
            .map_err(|_| "the credential store is not reachable".to_string())?;
        rx.recv_timeout(self.timeout).unwrap_or_else(|_| {
            Err(format!(
                "the credential store did not answer within {} s",
                self.timeout.as_secs()
            ))
        })
    }

    /// The secret of `account` and the store that holds it.
    pub fn get(&self, account: &str) -> Result<Option<(String, String)>, String> {
        self.ask(|r| Job::Get(account.to_string(), r))
    }

    /// Every copy of `account`'s secret, with the store holding it.
    pub fn get_all(&self, account: &str) -> Result<Vec<(String, String)>, String> {
        self.ask(|r| Job::GetAll(account.to_string(), r))
    }

    /// Keeps `secret` for `account`; says where.
    pub fn set(&self, account: &str, secret: &str) -> Result<String, String> {
        self.ask(|r| Job::Set(account.to_string(), secret.to_string(), r))
    }

    /// Removes `account` from every store.
    pub fn delete(&self, account: &str) -> Result<(), String> {
        self.ask(|r| Job::Delete(account.to_string(), r))
    }
}

fn get(stores: &[Store], service: &str, account: &str) -> Result<Option<(String, String)>, String> {
    let mut why = Vec::new();
    let mut reachable = false;
    for store in stores {
        match entry(*store, service, account) {
            Ok((e, name)) => match e.get_password() {
                Ok(secret) => return Ok(Some((secret, name))),
                Err(keyring::Error::NoEntry) => reachable = true,
                Err(err) => why.push(format!("{name}: {err}")),
            },
            Err(err) => why.push(format!("{}: {err}", label(*store))),
        }
    }
    if reachable {
        Ok(None)
    } else {
        Err(reasons(why))
    }
}

fn get_all(
    stores: &[Store],
    service: &str,
    account: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut found = Vec::new();
    let mut why = Vec::new();
    let mut reachable = false;
    for store in stores {
        match entry(*store, service, account) {
            Ok((e, name)) => match e.get_password() {
                Ok(secret) => found.push((secret, name)),
                Err(keyring::Error::NoEntry) => reachable = true,
                Err(err) => why.push(format!("{name}: {err}")),
            },
            Err(err) => why.push(format!("{}: {err}", label(*store))),
        }
    }
    if found.is_empty() && !reachable {
        Err(reasons(why))
    } else {
        Ok(found)
    }
}

fn set(stores: &[Store], service: &str, account: &str, secret: &str) -> Result<String, String> {
    let mut why = Vec::new();
    for (i, store) in stores.iter().enumerate() {
        let (e, name) = match entry(*store, service, account) {
            Ok(found) => found,
            Err(err) => {
                why.push(format!("{}: {err}", label(*store)));
                continue;
            }
        };
        // Write, then read back: a store that takes a secret but cannot
        // give it back is no store.
        match e.set_password(secret).and_then(|()| e.get_password()) {
            Ok(back) if back == secret => {
                // An older copy in a store asked later would be read after
                // this one is deleted; none is left behind.
                let _ = delete(&stores[i + 1..], service, account);
                return Ok(name);
            }
            Ok(_) => why.push(format!(
                "{name}: gave back something else than it was given"
            )),
            Err(err) => why.push(format!("{name}: {err}")),
        }
    }
    Err(reasons(why))
}

fn delete(stores: &[Store], service: &str, account: &str) -> Result<(), String> {
    let mut why = Vec::new();
    for store in stores {
        let (e, name) = match entry(*store, service, account) {
            Ok(found) => found,
            // Without a session bus nothing was ever kept there; a store
            // that is there but locked or unreachable may hold a copy.
            Err(e) if e.starts_with("no D-Bus session") => continue,
            Err(e) => {
                why.push(format!("{}: {e}", label(*store)));
                continue;
            }
        };
        match e.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => {}
            Err(err) => why.push(format!("{name}: {err}")),
        }
    }
    if why.is_empty() {
        Ok(())
    } else {
        Err(why.join("; "))
    }
}

fn reasons(why: Vec<String>) -> String {
    if why.is_empty() {
        "no credential store to ask".to_string()
    } else {
        why.join("; ")
    }
}
