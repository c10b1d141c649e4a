//! How one draft becomes one file and back: names, sealing, opening.
//!
//! A file is `MAGIC (8) · key id (8) · nonce (24) · ciphertext + tag`, the
//! ciphertext being XChaCha20-Poly1305 over `length (4) · JSON · zero padding`
//! (to a multiple of [`PAD`], so the size tells little about the note). The
//! authenticated data binds the file to the key it was sealed with, to its
//! user and server and to its own file name, which is itself a keyed hash of
//! the whole draft key: a file copied from another user's folder, another
//! server's drafts or another patient's name is refused, not decrypted.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Draft, DraftKey};

pub(super) const MAGIC: &[u8; 8] = b"CHDRAFT1";
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
pub(super) const HEADER_LEN: usize = MAGIC.len() + KEY_ID_LEN + NONCE_LEN;
const TAG_LEN: usize = 16;
/// Plaintexts are padded to a multiple of this many bytes.
pub(super) const PAD: usize = 512;
/// A draft file larger than this is not read (a note is text; this is 1000
/// pages of it).
pub(super) const MAX_FILE: u64 = 16 * 1024 * 1024;
/// Suffix of a draft file.
pub(super) const SUFFIX: &str = ".draft";

/// One key as the store uses it: subkeys for encryption and for names, and
/// the id written in each file it seals.
pub(super) struct KeyMaterial {
    pub id: [u8; KEY_ID_LEN],
    cipher: XChaCha20Poly1305,
    names: [u8; 32],
}

fn derive(label: &str, key: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"chartty-drafts/v1/");
    h.update(label.as_bytes());
    h.update([0u8]);
    h.update(key);
    h.finalize().into()
}

/// A length-prefixed field, so that no two field lists hash alike.
fn field(h: &mut Sha256, s: &str) {
    h.update((s.len() as u64).to_be_bytes());
    h.update(s.as_bytes());
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl KeyMaterial {
    pub fn new(key: &[u8; 32]) -> KeyMaterial {
        let id = derive("key-id", key);
        let enc = derive("encrypt", key);
        KeyMaterial {
            id: id[..KEY_ID_LEN].try_into().expect("8 bytes"),
            cipher: XChaCha20Poly1305::new(&enc.into()),
            names: derive("names", key),
        }
    }

    /// 16 hex digits naming a user on a server (the first part of every
    /// file name of theirs under this key).
    pub fn owner_tag(&self, user: &str, server: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.names);
        h.update(b"owner");
        field(&mut h, user);
        field(&mut h, server);
        hex(&h.finalize()[..8])
    }

    /// The file name of a draft under this key: no patient id, no name,
    /// nothing that can be read back without the key.
    pub fn file_name(&self, key: &DraftKey) -> String {
        let mut h = Sha256::new();
        h.update(self.names);
        h.update(b"draft");
        field(&mut h, &key.user);
        field(&mut h, &key.server);
        field(&mut h, &key.patient_id);
        field(&mut h, &key.client_id);
        format!(
            "{}-{}{SUFFIX}",
            self.owner_tag(&key.user, &key.server),
            hex(&h.finalize()[..16])
        )
    }

    fn aad(&self, user: &str, server: &str, file_name: &str) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64 + user.len() + server.len() + file_name.len());
        aad.extend_from_slice(MAGIC);
        aad.extend_from_slice(&self.id);
        for s in [user, server, file_name] {
            aad.extend_from_slice(&(s.len() as u64).to_be_bytes());
            aad.extend_from_slice(s.as_bytes());
        }
        aad
    }

    /// The bytes of the file for `draft` (named [`Self::file_name`]).
    pub fn seal(&self, draft: &Draft, nonce: [u8; NONCE_LEN]) -> Result<Vec<u8>, String> {
        let json = serde_json::to_vec(&Stored::from(draft)).map_err(|e| e.to_string())?;
        let len = u32::try_from(json.len()).map_err(|_| "draft too large".to_string())?;
        let plain_len = (4 + json.len()).div_ceil(PAD) * PAD;
        let mut buf = Vec::with_capacity(HEADER_LEN + plain_len + TAG_LEN);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&self.id);
        buf.extend_from_slice(&nonce);
        let mut body = Vec::with_capacity(plain_len + TAG_LEN);
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(&json);
        body.resize(plain_len, 0);
        let aad = self.aad(
            &draft.key.user,
            &draft.key.server,
            &self.file_name(&draft.key),
        );
        self.cipher
            .encrypt_in_place(&XNonce::from(nonce), &aad, &mut body)
            .map_err(|_| "encryption failed".to_string())?;
        buf.extend_from_slice(&body);
        Ok(buf)
    }

    /// The draft in `bytes`, read from the file `file_name`, if it was
    /// sealed with this key for `user` on `server` under that very name.
    /// The error says why not, without patient data.
    pub fn open(
        &self,
        bytes: &[u8],
        user: &str,
        server: &str,
        file_name: &str,
    ) -> Result<Draft, &'static str> {
        if bytes.len() < HEADER_LEN + TAG_LEN + 4 {
            return Err("truncated");
        }
        if &bytes[..MAGIC.len()] != MAGIC {
            return Err("not a chartty draft file");
        }
        if bytes[MAGIC.len()..MAGIC.len() + KEY_ID_LEN] != self.id {
            return Err("sealed with another key");
        }
        let nonce: [u8; NONCE_LEN] = bytes[MAGIC.len() + KEY_ID_LEN..HEADER_LEN]
            .try_into()
            .expect("24 bytes");
        let mut body = bytes[HEADER_LEN..].to_vec();
        let aad = self.aad(user, server, file_name);
        self.cipher
            .decrypt_in_place(&XNonce::from(nonce), &aad, &mut body)
            .map_err(
                |_| "authentication failed (damaged, or sealed for another user, server or name)",
            )?;
        let len = u32::from_be_bytes(body[..4].try_into().expect("4 bytes")) as usize;
        let json = body.get(4..4 + len).ok_or("bad length")?;
        let stored: Stored = serde_json::from_slice(json).map_err(|_| "undecodable content")?;
        let draft = Draft::from(stored);
        if draft.key.user != user || draft.key.server != server {
            return Err("content is for another user or server");
        }
        if self.file_name(&draft.key) != file_name {
            return Err("content does not match its file name");
        }
        Ok(draft)
    }
}

/// A key id read from a file's header, if it has one.
pub(super) fn key_id_of(header: &[u8]) -> Option<[u8; KEY_ID_LEN]> {
    if header.len() < MAGIC.len() + KEY_ID_LEN || &header[..MAGIC.len()] != MAGIC {
        return None;
    }
    header[MAGIC.len()..MAGIC.len() + KEY_ID_LEN]
        .try_into()
        .ok()
}

/// The sealed content, kept apart from the public structs so their shape can
/// change without changing the file format.
#[derive(Serialize, Deserialize)]
struct Stored {
    v: u32,
    user: String,
    server: String,
    patient_id: String,
    client_id: String,
    text: String,
    template: String,
    title: String,
    patient_label: String,
    saved_at: DateTime<Utc>,
    server_id: Option<String>,
    server_version: Option<String>,
    relates_to: Option<String>,
    #[serde(default)]
    loinc: String,
    #[serde(default)]
    loinc_display: String,
}

impl From<&Draft> for Stored {
    fn from(d: &Draft) -> Stored {
        Stored {
            v: 1,
            user: d.key.user.clone(),
            server: d.key.server.clone(),
            patient_id: d.key.patient_id.clone(),
            client_id: d.key.client_id.clone(),
            text: d.text.clone(),
            template: d.template.clone(),
            title: d.title.clone(),
            patient_label: d.patient_label.clone(),
            saved_at: d.saved_at,
            server_id: d.server_id.clone(),
            server_version: d.server_version.clone(),
            relates_to: d.relates_to.clone(),
            loinc: d.loinc.clone(),
            loinc_display: d.loinc_display.clone(),
        }
    }
}

impl From<Stored> for Draft {
    fn from(s: Stored) -> Draft {
        Draft {
            key: DraftKey {
                user: s.user,
                server: s.server,
                patient_id: s.patient_id,
                client_id: s.client_id,
            },
            text: s.text,
            template: s.template,
            title: s.title,
            patient_label: s.patient_label,
            saved_at: s.saved_at,
            server_id: s.server_id,
            server_version: s.server_version,
            relates_to: s.relates_to,
            loinc: s.loinc,
            loinc_display: s.loinc_display,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(user: &str, patient: &str, text: &str) -> Draft {
        Draft {
            key: DraftKey {
                user: user.into(),
                server: "https://fhir.example".into(),
                patient_id: patient.into(),
                client_id: "c-1".into(),
            },
            text: text.into(),
            template: "progress".into(),
            title: "Progress note".into(),
            patient_label: "Nguyễn, Thị Lan · MRN 00100001".into(),
            saved_at: "2026-11-28T10:00:00.123456789Z".parse().unwrap(),
            server_id: Some("doc-1".into()),
            server_version: Some("3".into()),
            relates_to: None,
            loinc: "11506-3".into(),
            loinc_display: "Progress note".into(),
        }
    }

    #[test]
    fn round_trip_and_bindings() {
        let k = KeyMaterial::new(&[7; 32]);
        let d = draft("alice", "p1", "S: cough ×3 days\n");
        let name = k.file_name(&d.key);
        assert!(name.starts_with(&k.owner_tag("alice", "https://fhir.example")));
        assert!(!name.contains("p1") && !name.contains("alice"));
        let bytes = k.seal(&d, [1; 24]).unwrap();
        assert_eq!((bytes.len() - HEADER_LEN - TAG_LEN) % PAD, 0);
        assert_eq!(
            k.open(&bytes, "alice", "https://fhir.example", &name),
            Ok(d.clone())
        );
        // Another user, another server, another name, another key: refused.
        assert!(
            k.open(&bytes, "bob", "https://fhir.example", &name)
                .is_err()
        );
        assert!(k.open(&bytes, "alice", "https://other", &name).is_err());
        let other = k.file_name(&draft("alice", "p2", "").key);
        assert!(
            k.open(&bytes, "alice", "https://fhir.example", &other)
                .is_err()
        );
        let k2 = KeyMaterial::new(&[8; 32]);
        assert_eq!(
            k2.open(&bytes, "alice", "https://fhir.example", &name),
            Err("sealed with another key")
        );
        // Every single flipped bit is caught.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(
                k.open(&b, "alice", "https://fhir.example", &name).is_err(),
                "byte {i}"
            );
        }
        // And every truncation.
        for n in 0..bytes.len() {
            assert!(
                k.open(&bytes[..n], "alice", "https://fhir.example", &name)
                    .is_err()
            );
        }
    }

    #[test]
    fn names_differ_per_key_and_field_boundaries() {
        let k = KeyMaterial::new(&[7; 32]);
        let a = DraftKey {
            user: "ab".into(),
            server: "c".into(),
            patient_id: "p".into(),
            client_id: "x".into(),
        };
        let b = DraftKey {
            user: "a".into(),
            server: "bc".into(),
            ..a.clone()
        };
        assert_ne!(k.file_name(&a), k.file_name(&b));
        assert_ne!(k.file_name(&a), KeyMaterial::new(&[9; 32]).file_name(&a));
    }
}
