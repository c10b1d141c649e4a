//! Drafts that are never lost: each note in progress is kept on local disk,
//! encrypted, written so that a crash, a kill or a dropped SSH link at any
//! moment leaves either the previous or the new copy, never a torn one.
//!
//! - One file per draft in a private folder (0700; files 0600). A save writes
//!   a temporary file in the same folder, fsyncs it, renames it over the
//!   draft's file and fsyncs the folder ([`DraftStore::save`]).
//! - Each file is sealed with XChaCha20-Poly1305 under a key that lives only in
//!   the OS credential store ([`KeyringKeys`]); file names are keyed hashes, so
//!   neither names nor contents show a patient (see `seal.rs` for the format
//!   and what the authenticated data binds).
//! - Where no credential store works, the store says why
//!   ([`Protection::MemoryOnly`]) and keeps drafts in memory only: nothing
//!   about a patient is written in plain.
//!
//! `docs/drafts.md` says where the files live and which store survives what.

mod keys;
mod seal;

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use keys::{ACCOUNT, KeyringKeys, SERVICE, Store};
use seal::KeyMaterial;

/// Whose draft, of which patient, on which server; `client_id` is the
/// identifier the client made for the note (the conditional-create
/// identifier), so two notes on one patient are two drafts.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DraftKey {
    pub user: String,
    pub server: String,
    pub patient_id: String,
    pub client_id: String,
}

/// A note in progress, as last saved.
#[derive(Clone, PartialEq)]
pub struct Draft {
    pub key: DraftKey,
    /// The note as typed.
    pub text: String,
    /// Template name it came from.
    pub template: String,
    /// E.g. "Progress note" (kept encrypted like everything else).
    pub title: String,
    /// "Nguyễn, Thị Lan · MRN 00100001", for offering it back (encrypted).
    pub patient_label: String,
    pub saved_at: chrono::DateTime<chrono::Utc>,
    /// DocumentReference id once the server has it.
    pub server_id: Option<String>,
    /// `meta.versionId` last written.
    pub server_version: Option<String>,
    /// Addendum target ("DocumentReference/x"), if any.
    pub relates_to: Option<String>,
    /// LOINC document type and its display, as the template named them.
    pub loinc: String,
    pub loinc_display: String,
}

// Debug shows no patient data: a draft that reaches a log by `{:?}` says
// whose and how long, not what.
impl fmt::Debug for DraftKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DraftKey")
            .field("user", &self.user)
            .field("server", &self.server)
            .field(
                "patient_id",
                &format_args!("<{} chars>", self.patient_id.chars().count()),
            )
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl fmt::Debug for Draft {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = |s: &str| format!("<{} chars>", s.chars().count());
        f.debug_struct("Draft")
            .field("key", &self.key)
            .field("text", &format_args!("{}", len(&self.text)))
            .field("template", &self.template)
            .field("title", &format_args!("{}", len(&self.title)))
            .field(
                "patient_label",
                &format_args!("{}", len(&self.patient_label)),
            )
            .field("saved_at", &self.saved_at)
            .field("server_id", &self.server_id)
            .field("server_version", &self.server_version)
            .field("relates_to", &self.relates_to)
            .finish()
    }
}

/// The client id of the outbox's file: no note's id (a UUID) looks like it.
const OUTBOX_CLIENT_ID: &str = "\u{1}outbox";

fn outbox_key(user: &str, server: &str) -> DraftKey {
    DraftKey {
        user: user.to_string(),
        server: server.to_string(),
        patient_id: String::new(),
        client_id: OUTBOX_CLIENT_ID.to_string(),
    }
}

/// How drafts are kept, for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protection {
    /// Encrypted files on disk; the key is in `store` (e.g. "Secret Service",
    /// "kernel keyring (persistent)", or both joined by " + ").
    Keyring { store: String },
    /// No credential store: drafts stay in this process's memory (and on the
    /// server); `why` says what failed.
    MemoryOnly { why: String },
}

impl Protection {
    /// Whether drafts outlive this process on this machine.
    pub fn on_disk(&self) -> bool {
        matches!(self, Protection::Keyring { .. })
    }

    /// One line for the status bar or a notice.
    pub fn summary(&self) -> String {
        match self {
            Protection::Keyring { store } => format!("drafts saved encrypted (key in {store})"),
            Protection::MemoryOnly { why } => {
                format!("drafts kept in memory and on the server only: {why}")
            }
        }
    }
}

/// Why a draft could not be saved or removed. No patient data in the text.
#[derive(Debug, thiserror::Error)]
pub enum DraftError {
    #[error("could not {op} the local draft: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("could not seal the local draft: {0}")]
    Seal(String),
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> DraftError {
    move |source| DraftError::Io { op, source }
}

/// Where the drafts key comes from. [`KeyringKeys`] is the OS credential
/// store; tests inject their own.
pub trait KeySource: Send + Sync {
    /// The key new drafts are sealed with, or why there is none.
    fn key(&self) -> Result<[u8; 32], String>;
    /// Where the key is kept, for [`Protection::Keyring`].
    fn describe(&self) -> String;
    /// Older keys the source still holds: drafts sealed with them stay
    /// readable (and move to [`KeySource::key`] when saved again).
    fn other_keys(&self) -> Vec<[u8; 32]> {
        Vec::new()
    }
}

/// The local drafts of this OS user. `Send + Sync`: save from any thread.
pub struct DraftStore {
    dir: PathBuf,
    protection: Protection,
    /// The key new drafts are sealed with first, then older ones; empty when
    /// memory only.
    keys: Vec<KeyMaterial>,
    /// Every draft saved or read by this process (and not removed): a save
    /// that could not reach the disk is still offered back by this process.
    memory: Mutex<HashMap<DraftKey, Draft>>,
}

impl fmt::Debug for DraftStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DraftStore")
            .field("dir", &self.dir)
            .field("protection", &self.protection)
            .finish()
    }
}

/// The folder for drafts: `$XDG_DATA_HOME/chartty/drafts` (by default
/// `~/.local/share/chartty/drafts`), created 0700. `None` when there is no
/// home or it cannot be created.
pub fn default_dir() -> Option<PathBuf> {
    let dir = dirs::data_dir()?.join("chartty").join("drafts");
    match private_dir(&dir) {
        Ok(()) => Some(dir),
        Err(e) => {
            tracing::warn!("drafts folder {}: {e}", dir.display());
            None
        }
    }
}

/// Creates `dir` (and missing parents) 0700, or checks that it is a folder
/// of ours and makes it 0700.
fn private_dir(dir: &Path) -> Result<(), String> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create it: {e}"))?;
    let meta = fs::metadata(dir).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_dir() {
        return Err("not a folder".into());
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err("owned by another user".into());
    }
    if meta.mode() & 0o777 != 0o700 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot make it private: {e}"))?;
    }
    Ok(())
}

const TMP_PREFIX: &str = ".tmp-";

impl DraftStore {
    /// The store in `dir`, keyed by the OS credential store. Never fails: where
    /// the folder or the credential store cannot be used it keeps drafts in
    /// memory and [`DraftStore::protection`] says why.
    pub fn open(dir: &Path) -> DraftStore {
        DraftStore::open_with(dir, Box::new(KeyringKeys::new()))
    }

    /// The store in `dir` with the key from `keys`.
    pub fn open_with(dir: &Path, keys: Box<dyn KeySource>) -> DraftStore {
        let memory_only = |why: String| {
            tracing::warn!("drafts in memory only: {why}");
            DraftStore {
                dir: dir.to_path_buf(),
                protection: Protection::MemoryOnly { why },
                keys: Vec::new(),
                memory: Mutex::new(HashMap::new()),
            }
        };
        if let Err(e) = private_dir(dir) {
            return memory_only(format!("the drafts folder {}: {e}", dir.display()));
        }
        let key = match keys.key() {
            Ok(k) => k,
            Err(e) => return memory_only(format!("no key for local drafts: {e}")),
        };
        let mut materials = vec![KeyMaterial::new(&key)];
        for k in keys.other_keys() {
            let m = KeyMaterial::new(&k);
            if materials.iter().all(|x| x.id != m.id) {
                materials.push(m);
            }
        }
        let store = DraftStore {
            dir: dir.to_path_buf(),
            protection: Protection::Keyring {
                store: keys.describe(),
            },
            keys: materials,
            memory: Mutex::new(HashMap::new()),
        };
        store.tidy();
        store
    }

    /// How drafts are kept.
    pub fn protection(&self) -> &Protection {
        &self.protection
    }

    /// The drafts folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, HashMap<DraftKey, Draft>> {
        // A panic elsewhere while holding the lock leaves a map that is still
        // whole (every write is one insert or remove).
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `draft` (replacing the previous copy of its key): in memory, and
    /// unless memory only, on disk — sealed, atomically and durably. When this
    /// returns `Ok` the draft survives a crash or a power cut.
    pub fn save(&self, draft: &Draft) -> Result<(), DraftError> {
        self.memory().insert(draft.key.clone(), draft.clone());
        let Some(primary) = self.keys.first() else {
            return Ok(());
        };
        let name = primary.file_name(&draft.key);
        let bytes = primary.seal(draft, nonce()?).map_err(DraftError::Seal)?;
        self.write_atomically(&name, &bytes)?;
        // The same draft sealed with an older key is now stale.
        let mut removed = false;
        for old in &self.keys[1..] {
            removed |= remove_file(&self.dir.join(old.file_name(&draft.key)))?;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    fn write_atomically(&self, name: &str, bytes: &[u8]) -> Result<(), DraftError> {
        let tmp = self.dir.join(format!(
            "{TMP_PREFIX}{}-{}",
            std::process::id(),
            u64::from_be_bytes(nonce()?[..8].try_into().expect("8 bytes"))
        ));
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io("create"))?;
            f.write_all(bytes).map_err(io("write"))?;
            f.sync_all().map_err(io("flush"))?;
            drop(f);
            fs::rename(&tmp, self.dir.join(name)).map_err(io("replace"))
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written?;
        sync_dir(&self.dir)
    }

    /// Every draft of `user` on `server`, each as last saved; one per
    /// [`DraftKey`]. A damaged file, or one sealed for someone else, is
    /// skipped and logged (file name and reason only).
    pub fn drafts_of(&self, user: &str, server: &str) -> Vec<Draft> {
        let mut found: HashMap<DraftKey, Draft> = HashMap::new();
        let keep = |d: Draft, found: &mut HashMap<DraftKey, Draft>| match found.get(&d.key) {
            Some(have) if have.saved_at >= d.saved_at => {}
            _ => {
                found.insert(d.key.clone(), d);
            }
        };
        for d in self.memory().values() {
            if d.key.user == user && d.key.server == server {
                keep(d.clone(), &mut found);
            }
        }
        if !self.keys.is_empty() {
            for d in self.read_disk(user, server) {
                keep(d, &mut found);
            }
        }
        found.retain(|k, _| k.client_id != OUTBOX_CLIENT_ID);
        let mut drafts: Vec<Draft> = found.into_values().collect();
        drafts.sort_by(|a, b| {
            b.saved_at
                .cmp(&a.saved_at)
                .then_with(|| a.key.patient_id.cmp(&b.key.patient_id))
                .then_with(|| a.key.client_id.cmp(&b.key.client_id))
        });
        drafts
    }

    fn read_disk(&self, user: &str, server: &str) -> Vec<Draft> {
        let owners: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("{}-", k.owner_tag(user, server)))
            .collect();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("drafts folder {} unreadable: {e}", self.dir.display());
                return Vec::new();
            }
        };
        let mut drafts = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.ends_with(seal::SUFFIX) {
                continue;
            }
            let Some(k) = owners.iter().position(|o| name.starts_with(o)) else {
                continue; // another user's or server's, or sealed with a key we do not have
            };
            let bytes = match read_limited(&entry.path()) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("draft file {name} skipped: {e}");
                    continue;
                }
            };
            match self.keys[k].open(&bytes, user, server, name) {
                Ok(d) => drafts.push(d),
                Err(why) => tracing::warn!("draft file {name} skipped: {why}"),
            }
        }
        drafts
    }

    /// Keeps the outbox of `user` on `server` (changes waiting for the
    /// link, as JSON) the way a draft is kept: sealed, atomically, durably.
    /// It is one more file of theirs, told apart from drafts by a client id
    /// no note can have. An empty outbox leaves no file.
    pub fn save_outbox(
        &self,
        user: &str,
        server: &str,
        content: String,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), DraftError> {
        if content.is_empty() {
            return self.remove(&outbox_key(user, server));
        }
        self.save(&Draft {
            key: outbox_key(user, server),
            text: content,
            template: String::new(),
            title: String::new(),
            patient_label: String::new(),
            saved_at: at,
            server_id: None,
            server_version: None,
            relates_to: None,
            loinc: String::new(),
            loinc_display: String::new(),
        })
    }

    /// The outbox last kept for `user` on `server`, if any.
    pub fn outbox_of(&self, user: &str, server: &str) -> Option<String> {
        let key = outbox_key(user, server);
        if let Some(d) = self.memory().get(&key) {
            return Some(d.text.clone());
        }
        if self.keys.is_empty() {
            return None;
        }
        self.read_disk(user, server)
            .into_iter()
            .filter(|d| d.key == key)
            .max_by_key(|d| d.saved_at)
            .map(|d| d.text)
    }

    /// Forgets the draft of `key` (after it was signed): from memory and
    /// from disk, durably.
    pub fn remove(&self, key: &DraftKey) -> Result<(), DraftError> {
        self.memory().remove(key);
        let mut removed = false;
        for k in &self.keys {
            removed |= remove_file(&self.dir.join(k.file_name(key)))?;
        }
        if removed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Removes temporary files left by writers that died (their process is
    /// gone), and says how many draft files no key here can open.
    fn tidy(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut unreadable = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(rest) = name.strip_prefix(TMP_PREFIX) {
                let pid = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
                let alive = pid
                    .and_then(rustix::process::Pid::from_raw)
                    .is_some_and(|p| {
                        !matches!(
                            rustix::process::test_kill_process(p),
                            Err(rustix::io::Errno::SRCH)
                        )
                    });
                if !alive {
                    let _ = fs::remove_file(entry.path());
                }
            } else if name.ends_with(seal::SUFFIX) {
                let mut header = [0u8; seal::HEADER_LEN];
                let id = File::open(entry.path())
                    .and_then(|mut f| f.read_exact(&mut header))
                    .ok()
                    .and_then(|()| seal::key_id_of(&header));
                if !id.is_some_and(|id| self.keys.iter().any(|k| k.id == id)) {
                    unreadable += 1;
                }
            }
        }
        if unreadable > 0 {
            tracing::warn!(
                "{unreadable} draft file(s) in {} cannot be opened with the key in {} \
                 (damaged, or sealed with a key the credential store no longer holds, e.g. after a reboot)",
                self.dir.display(),
                match &self.protection {
                    Protection::Keyring { store } => store.as_str(),
                    Protection::MemoryOnly { .. } => "memory",
                }
            );
        }
    }
}

fn nonce() -> Result<[u8; 24], DraftError> {
    use rand::TryRng;
    let mut n = [0u8; 24];
    rand::rngs::SysRng
        .try_fill_bytes(&mut n)
        .map_err(|e| DraftError::Seal(format!("no randomness from the OS: {e}")))?;
    Ok(n)
}

fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    let f = File::open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a file"));
    }
    let mut bytes = Vec::new();
    f.take(seal::MAX_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > seal::MAX_FILE {
        return Err(std::io::Error::other("too large"));
    }
    Ok(bytes)
}

/// Whether it was there.
fn remove_file(path: &Path) -> Result<bool, DraftError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(DraftError::Io {
            op: "remove",
            source: e,
        }),
    }
}

fn sync_dir(dir: &Path) -> Result<(), DraftError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("flush the folder of"))
}
