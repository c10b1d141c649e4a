//! Drafts kept on this machine, off the UI task: a thread applies the app's
//! draft effects (load, save, remove) to a [`DraftKeeper`] in order and
//! answers with events. Quitting waits for it ([`KeeperWorker::finish`]),
//! so the last save reaches the disk before the terminal is given back.

use std::sync::mpsc;
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};

use crate::drafts::{Draft, DraftKey, DraftStore};
use crate::notes::document::NoteState;
use crate::tui::app::{DraftEffect, SavedDraft};
use crate::tui::command::NoteSnapshot;
use crate::tui::event::Event;

/// Where drafts are kept.
pub trait DraftKeeper: Send {
    /// How they are kept, for the status bar, and whether it survives a
    /// crash of chartty (false: in memory only).
    fn describe(&self) -> (String, bool);
    fn save(&mut self, draft: &SavedDraft) -> Result<DateTime<Utc>, String>;
    fn load(&mut self, user: &str, server: &str) -> Vec<SavedDraft>;
    fn remove(&mut self, draft: &SavedDraft);
    /// Keep the outbox of `user` on `server` (JSON), replacing the last.
    fn save_outbox(
        &mut self,
        user: &str,
        server: &str,
        content: &str,
        at: DateTime<Utc>,
    ) -> Result<(), String>;
    fn load_outbox(&mut self, user: &str, server: &str) -> Option<String>;
}

/// Drafts in this process's memory only (no credential store to encrypt
/// them with): they are also on the server while the link is up.
#[derive(Default)]
pub struct MemoryDrafts {
    drafts: Vec<SavedDraft>,
    /// Per (user, server).
    outboxes: Vec<((String, String), String)>,
    why: String,
}

impl MemoryDrafts {
    pub fn new(why: impl Into<String>) -> MemoryDrafts {
        MemoryDrafts {
            drafts: Vec::new(),
            outboxes: Vec::new(),
            why: why.into(),
        }
    }
}

impl DraftKeeper for MemoryDrafts {
    fn describe(&self) -> (String, bool) {
        tracing::info!("drafts in memory only: {}", self.why);
        ("drafts in memory only".to_string(), false)
    }

    fn save(&mut self, draft: &SavedDraft) -> Result<DateTime<Utc>, String> {
        self.drafts
            .retain(|d| d.note.client_id != draft.note.client_id);
        self.drafts.push(draft.clone());
        Ok(draft.saved_at)
    }

    fn load(&mut self, user: &str, server: &str) -> Vec<SavedDraft> {
        self.drafts
            .iter()
            .filter(|d| d.user == user && d.server == server)
            .cloned()
            .collect()
    }

    fn remove(&mut self, draft: &SavedDraft) {
        self.drafts
            .retain(|d| d.note.client_id != draft.note.client_id);
    }

    fn save_outbox(
        &mut self,
        user: &str,
        server: &str,
        content: &str,
        _at: DateTime<Utc>,
    ) -> Result<(), String> {
        let owner = (user.to_string(), server.to_string());
        self.outboxes.retain(|(o, _)| *o != owner);
        if !content.is_empty() {
            self.outboxes.push((owner, content.to_string()));
        }
        Ok(())
    }

    fn load_outbox(&mut self, user: &str, server: &str) -> Option<String> {
        self.outboxes
            .iter()
            .find(|((u, s), _)| u == user && s == server)
            .map(|(_, c)| c.clone())
    }
}

/// The keeper's thread.
pub struct KeeperWorker {
    tx: Option<mpsc::Sender<DraftEffect>>,
    thread: Option<JoinHandle<()>>,
}

impl KeeperWorker {
    /// `open` runs on the keeper's thread: asking the credential store for
    /// the key may take seconds (a slow D-Bus service), and the screen must
    /// not wait for it. How drafts are kept is delivered as
    /// [`Event::DraftProtection`] first.
    pub fn spawn(
        open: impl FnOnce() -> Box<dyn DraftKeeper> + Send + 'static,
        deliver: impl Fn(Event) + Send + 'static,
    ) -> KeeperWorker {
        let (tx, rx) = mpsc::channel::<DraftEffect>();
        let thread = std::thread::Builder::new()
            .name("chartty-drafts".into())
            .spawn(move || {
                let mut keeper = open();
                let (text, on_disk) = keeper.describe();
                deliver(Event::DraftProtection { text, on_disk });
                while let Ok(effect) = rx.recv() {
                    match effect {
                        DraftEffect::Load { user, server } => {
                            deliver(Event::DraftsRecovered(keeper.load(&user, &server)));
                        }
                        DraftEffect::Save(d) => {
                            let result = keeper.save(&d);
                            if let Err(e) = &result {
                                // The reason only: never the text or the patient.
                                tracing::warn!(error = %e, "draft not saved");
                            }
                            deliver(Event::DraftPersisted {
                                client_id: d.note.client_id.clone(),
                                result,
                            });
                        }
                        DraftEffect::Remove(d) => keeper.remove(&d),
                        DraftEffect::SaveOutbox {
                            user,
                            server,
                            content,
                            at,
                        } => {
                            if let Err(e) = keeper.save_outbox(&user, &server, &content, at) {
                                tracing::warn!(error = %e, "outbox not saved");
                            }
                        }
                        DraftEffect::LoadOutbox { user, server } => {
                            deliver(Event::OutboxRecovered(keeper.load_outbox(&user, &server)));
                        }
                    }
                }
            });
        if let Err(e) = &thread {
            tracing::error!("cannot start the drafts thread: {e}");
        }
        KeeperWorker {
            tx: Some(tx),
            thread: thread.ok(),
        }
    }

    /// Whether `effect` will be answered with an event.
    pub fn answers(effect: &DraftEffect) -> bool {
        !matches!(
            effect,
            DraftEffect::Remove(_) | DraftEffect::SaveOutbox { .. }
        )
    }

    pub fn send(&self, effect: DraftEffect) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(effect);
        }
    }

    /// Apply everything sent so far, then stop.
    pub fn finish(mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The encrypted store of `crate::drafts` (which itself falls back to
/// memory where no credential store works).
impl DraftKeeper for DraftStore {
    fn describe(&self) -> (String, bool) {
        // The whole reason goes to the log (it names stores, never a
        // patient); the status bar gets a few words.
        let p = self.protection();
        tracing::info!("{}", p.summary());
        if p.on_disk() {
            ("drafts encrypted".to_string(), true)
        } else {
            ("drafts in memory only (no keyring)".to_string(), false)
        }
    }

    fn save(&mut self, draft: &SavedDraft) -> Result<DateTime<Utc>, String> {
        DraftStore::save(self, &to_stored(draft))
            .map(|()| draft.saved_at)
            .map_err(|e| e.to_string())
    }

    fn load(&mut self, user: &str, server: &str) -> Vec<SavedDraft> {
        self.drafts_of(user, server)
            .into_iter()
            .map(from_stored)
            .collect()
    }

    fn remove(&mut self, draft: &SavedDraft) {
        if let Err(e) = DraftStore::remove(self, &to_stored(draft).key) {
            tracing::warn!(error = %e, "signed note's draft not removed");
        }
    }

    fn save_outbox(
        &mut self,
        user: &str,
        server: &str,
        content: &str,
        at: DateTime<Utc>,
    ) -> Result<(), String> {
        DraftStore::save_outbox(self, user, server, content.to_string(), at)
            .map_err(|e| e.to_string())
    }

    fn load_outbox(&mut self, user: &str, server: &str) -> Option<String> {
        self.outbox_of(user, server)
    }
}

fn to_stored(d: &SavedDraft) -> Draft {
    let n = &d.note;
    Draft {
        key: DraftKey {
            user: d.user.clone(),
            server: d.server.clone(),
            patient_id: n.patient_id.clone(),
            client_id: n.client_id.clone(),
        },
        text: n.text.clone(),
        template: n.template.clone(),
        title: n.title.clone(),
        patient_label: n.patient_label.clone(),
        saved_at: d.saved_at,
        server_id: n.server_id.clone(),
        server_version: n.server_version.clone(),
        relates_to: n.appends.clone(),
        loinc: n.loinc.clone(),
        loinc_display: n.loinc_display.clone(),
    }
}

fn from_stored(d: Draft) -> SavedDraft {
    SavedDraft {
        user: d.key.user,
        server: d.key.server,
        saved_at: d.saved_at,
        note: NoteSnapshot {
            patient_id: d.key.patient_id,
            patient_label: d.patient_label,
            template: d.template,
            title: d.title,
            loinc: d.loinc,
            loinc_display: d.loinc_display,
            client_id: d.key.client_id,
            server_id: d.server_id,
            server_version: d.server_version,
            appends: d.relates_to,
            text: d.text,
            // Only drafts are kept here: a signed note's draft is removed.
            state: NoteState::Draft,
        },
    }
}
