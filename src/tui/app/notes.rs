//! Writing notes, for the app: starting one from a template, saving drafts
//! on this machine (through the runner) and on the server (through the one
//! write path), signing, a resident's signature with its co-signature task,
//! an attending's co-signature.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{App, Origin};
use crate::api::{ApiReply, ApiRequest, Write};
use crate::chart::note_text;
use crate::fhir::model::DocumentReference;
use crate::notes::document::{self, NoteDoc, NoteState};
use crate::notes::fill::{NoteContext, fill};
use crate::notes::{Template, TemplateSet};
use crate::roles::Role;
use crate::tui::command::{Command, NoteSnapshot, PaneReply};
use crate::tui::panes::PaneId;
use crate::tui::panes::editor::Editing;
use crate::tui::popups::templates::Choice;
use crate::tui::popups::{Confirm, Popup, TemplatePicker};

/// A draft kept on this machine: the note, whose it is, when it was saved.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedDraft {
    pub user: String,
    pub server: String,
    pub note: NoteSnapshot,
    pub saved_at: DateTime<Utc>,
}

/// Work on drafts kept on this machine, for the runner (it owns the store
/// and does the I/O off the UI task).
#[derive(Debug, Clone, PartialEq)]
pub enum DraftEffect {
    /// Load the drafts of this user on this server (answered with
    /// [`crate::tui::event::Event::DraftsRecovered`]).
    Load { user: String, server: String },
    /// Save (answered with [`crate::tui::event::Event::DraftPersisted`]).
    Save(SavedDraft),
    /// The note was signed: its draft goes.
    Remove(SavedDraft),
    /// Keep the outbox (changes waiting for the link) as it now is.
    SaveOutbox {
        user: String,
        server: String,
        /// The waiting changes as JSON (patient data: kept sealed); empty:
        /// nothing waits, nothing is kept.
        content: String,
        at: DateTime<Utc>,
    },
    /// Read the outbox kept for this user on this server (answered with
    /// [`crate::tui::event::Event::OutboxRecovered`]).
    LoadOutbox { user: String, server: String },
}

/// The server's id of a resource it wrote.
fn id_of(resource: &Value) -> String {
    resource
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// A fresh id for a note, unique per intended write.
fn client_id() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The addendum template for a note.
fn addendum_template(of: &DocumentReference) -> Template {
    let kind = of.r#type.as_ref();
    let title = kind.and_then(|t| t.label()).unwrap_or("note").to_string();
    let loinc = kind
        .and_then(|t| t.code_in(crate::fhir::codes::LOINC))
        .unwrap_or(crate::fhir::codes::LOINC_NOTE)
        .to_string();
    Template {
        name: "addendum".into(),
        title: format!("Addendum to {title}"),
        loinc,
        loinc_display: title.clone(),
        roles: vec![Role::Attending, Role::Resident, Role::Nurse],
        text: format!(
            "ADDENDUM to {title} of {}\n***\n\n{{{{author}}}}, {{{{today}}}}",
            of.date
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(10)
                .collect::<String>()
        ),
    }
}

impl App {
    /// The site's and the user's templates and phrases, read by the runner
    /// (before [`App::start`], which says what could not be read).
    pub fn use_notes_library(&mut self, templates: TemplateSet, phrases: crate::notes::Phrases) {
        self.notes.templates = templates;
        self.notes.phrases = phrases;
    }

    /// Saving and removing drafts here, for the runner.
    pub fn take_draft_effects(&mut self) -> Vec<crate::tui::app::DraftEffect> {
        std::mem::take(&mut self.draft_effects)
    }

    /// How drafts are kept here, said on the status bar (`safe` false:
    /// in memory only).
    pub fn set_draft_protection(&mut self, text: String, safe: bool) {
        self.draft_protection = Some((text, safe));
        self.dirty = true;
    }

    pub fn draft_protection(&self) -> Option<&(String, bool)> {
        self.draft_protection.as_ref()
    }

    /// Whose drafts: the signed-in user on this server.
    pub(super) fn draft_owner(&self) -> Option<(String, String)> {
        let user = self
            .session
            .user
            .clone()
            .or_else(|| self.anonymous_owner.clone())?;
        Some((user, self.session.base_url.clone()))
    }

    /// A server that does not say who is signed in (no `$whoami`): drafts
    /// belong to the credential instead, by a hash of the token (never the
    /// token itself), so another token's drafts are not offered.
    pub(super) fn owner_without_name(&mut self) {
        if self.session.user.is_some() || self.anonymous_owner.is_some() {
            return;
        }
        use sha2::{Digest, Sha256};
        let who = match &self.session.token {
            _ if self.session.identity.is_some() => {
                self.session.identity.clone().unwrap_or_default()
            }
            Some(t) => {
                let h = Sha256::digest(t.as_bytes());
                let hex: String = h.iter().take(8).map(|b| format!("{b:02x}")).collect();
                format!("token {hex}")
            }
            None => "no sign-in".to_string(),
        };
        self.anonymous_owner = Some(who);
        self.load_drafts();
    }

    /// Ask the runner for this user's drafts (once the user is known).
    pub(super) fn load_drafts(&mut self) {
        if let Some((user, server)) = self.draft_owner() {
            // Saves made before the owner was known go first.
            for (note, saved_at) in std::mem::take(&mut self.unowned) {
                self.draft_effects.push(DraftEffect::Save(SavedDraft {
                    user: user.clone(),
                    server: server.clone(),
                    note,
                    saved_at,
                }));
            }
            self.draft_effects.push(DraftEffect::Load {
                user: user.clone(),
                server: server.clone(),
            });
            self.draft_effects
                .push(DraftEffect::LoadOutbox { user, server });
        }
    }

    /// The drafts found here at start: offered back when their patient's
    /// chart opens.
    pub(super) fn drafts_recovered(&mut self, drafts: Vec<SavedDraft>) {
        // From now on a draft on the server may be offered: the copy on this
        // machine, newer where it exists, had the first word.
        self.drafts_loaded = true;
        if drafts.is_empty() {
            self.offer_recovered();
            return;
        }
        let names: Vec<String> = drafts
            .iter()
            .map(|d| format!("{} ({})", d.note.patient_label, d.note.title))
            .collect();
        self.inform(format!(
            "{} unsigned draft(s) kept from before: {} — opening the chart offers it back",
            drafts.len(),
            names.join("; ")
        ));
        self.recovered = drafts;
        self.offer_recovered();
    }

    /// A recovered draft of the open chart's patient goes into the editor.
    pub(super) fn offer_recovered(&mut self) {
        let Some(pid) = self.chart.as_ref().and_then(|c| c.patient.id.clone()) else {
            return;
        };
        if self.panes.editor.editing.is_some() {
            return;
        }
        // A kept draft of a note the server has since signed (the process
        // ended between the signature and the removal) is not offered.
        if let Some(chart) = &self.chart {
            let signed: Vec<String> = chart
                .notes
                .items
                .iter()
                .filter(|d| document::state_of(d) != NoteState::Draft)
                .filter_map(document::client_id_of)
                .collect();
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut self.recovered)
                .into_iter()
                .partition(|d| signed.contains(&d.note.client_id));
            self.recovered = kept;
            self.draft_effects
                .extend(gone.into_iter().map(DraftEffect::Remove));
        }
        let Some(at) = self.recovered.iter().position(|d| d.note.patient_id == pid) else {
            self.offer_server_draft();
            return;
        };
        let d = self.recovered.remove(at);
        let n = d.note;
        let template = Template {
            name: n.template.clone(),
            title: n.title.clone(),
            loinc: n.loinc.clone(),
            loinc_display: n.loinc_display.clone(),
            roles: Vec::new(),
            text: String::new(),
        };
        let mut e = Editing::new(
            n.patient_id.clone(),
            n.patient_label.clone(),
            &template,
            n.client_id.clone(),
            &n.text,
            Vec::new(),
            d.saved_at,
            n.appends.clone(),
        );
        e.server_id = n.server_id;
        e.server_version = n.server_version;
        e.saved_local = Some(d.saved_at);
        self.panes.editor.open(e);
        self.inform(format!(
            "Your unsigned {} of {} is back in the editor (6)",
            crate::notes::lower_first(&n.title),
            crate::chart::timefmt::instant_short(d.saved_at, self.clock.now, self.prefs.tz)
        ));
    }

    /// The runner saved a draft here, or could not.
    pub(super) fn draft_persisted(
        &mut self,
        client_id: String,
        result: Result<DateTime<Utc>, String>,
    ) {
        match result {
            Ok(at) => self.reply_to(
                PaneId::Editor,
                PaneReply::DraftSaved {
                    client_id,
                    local: Some(at),
                    server: None,
                },
            ),
            Err(why) => self.warn(format!(
                "The draft could not be saved on this machine: {why}"
            )),
        }
    }

    pub(super) fn note_command(&mut self, c: Command) {
        match c {
            Command::Confirm { question, yes } => {
                self.popup = Some(Popup::Confirm(Confirm { question, yes }));
            }
            Command::PickTemplate => self.pick_template(),
            Command::StartNote { template, appends } => self.start_note(&template, appends),
            Command::ResumeNote { document } => self.resume_note(document),
            Command::SaveDraft { note, to_server } => self.save_draft(note, to_server),
            Command::SignNote(note) => self.sign_note(note),
            Command::CoSign { task } => {
                self.submit(ApiRequest::CoSign { task }, Origin::CoSign);
            }
            // The app's own commands never reach here.
            _ => {}
        }
    }

    fn templates(&self) -> &TemplateSet {
        &self.notes.templates
    }

    fn pick_template(&mut self) {
        if self.chart.is_none() {
            self.inform("Open a chart first: a note is for the patient on screen".into());
            return;
        }
        let role = self.session.role;
        let choices: Vec<Choice> = self
            .templates()
            .for_role(role)
            .into_iter()
            .map(|t| Choice {
                name: t.name.clone(),
                title: t.title.clone(),
                kind: t.loinc_display.clone(),
            })
            .collect();
        if choices.is_empty() {
            let who = role.map_or("this sign-in", |r| r.label());
            self.warn(format!(
                "No note templates for {who}: notes are written by clinicians"
            ));
            return;
        }
        self.popup = Some(Popup::Templates(TemplatePicker::new(choices)));
    }

    fn start_note(&mut self, name: &str, appends: Option<String>) {
        let Some(chart) = self.chart.as_ref() else {
            return;
        };
        if let Some(e) = &self.panes.editor.editing {
            self.warn(format!(
                "Finish or sign the open {} of {} first (6 shows it)",
                crate::notes::lower_first(&e.title),
                e.patient_label
            ));
            return;
        }
        let template = match &appends {
            Some(target) => {
                let id = target.trim_start_matches("DocumentReference/");
                let Some(doc) = chart
                    .notes
                    .items
                    .iter()
                    .find(|d| d.id.as_deref() == Some(id))
                else {
                    return;
                };
                let t = addendum_template(doc);
                // An addendum is a note of the same type: written by whoever
                // may write that type (a nurse adds to a nursing note).
                let role = self.session.role;
                let physician = matches!(role, Some(Role::Attending | Role::Resident));
                let may = physician
                    || self
                        .templates()
                        .templates
                        .iter()
                        .any(|x| x.loinc == t.loinc && x.allows(role));
                if !may {
                    let who = role.map_or("this sign-in", |r| r.label());
                    self.warn(format!(
                        "No addendum to a {} for {who}: ask its author",
                        crate::notes::lower_first(&t.loinc_display)
                    ));
                    return;
                }
                t
            }
            None => match self.templates().get(name) {
                Some(t) if t.allows(self.session.role) => t.clone(),
                _ => {
                    self.warn(format!("No template {name:?} for your role"));
                    return;
                }
            },
        };
        let ctx = NoteContext {
            chart,
            now: self.clock.now,
            tz: self.prefs.tz,
            author: self.session.user.as_deref().unwrap_or(""),
            records: &self.records,
        };
        let filled = fill(&template.text, &ctx);
        let p = &chart.patient;
        let label = match self.records.label(p) {
            Some((v, false)) => format!("{} · MRN {v}", p.display_name()),
            Some((v, true)) => format!("{} · ID {v}", p.display_name()),
            None => p.display_name(),
        };
        let e = Editing::new(
            p.id.clone().unwrap_or_default(),
            label,
            &template,
            client_id(),
            &filled.text,
            filled.blocks,
            self.clock.now,
            appends,
        );
        self.panes.editor.open(e);
        self.focus = PaneId::Editor;
    }

    /// No draft of this chart's patient was kept here (another machine, no
    /// credential store, a reboot): the newest own draft on the server is
    /// offered back instead.
    fn offer_server_draft(&mut self) {
        if !self.drafts_loaded {
            return;
        }
        let Some(me) = self.notes.practitioner.clone() else {
            return;
        };
        let Some(chart) = self.chart.as_ref() else {
            return;
        };
        let mine = chart
            .notes
            .items
            .iter()
            .filter(|d| document::state_of(d) == NoteState::Draft)
            .filter(|d| d.author.first().and_then(|a| a.reference.as_deref()) == Some(me.as_str()))
            .max_by(|a, b| a.date.cmp(&b.date));
        let Some(doc) = mine.and_then(|d| serde_json::to_value(d).ok()) else {
            return;
        };
        let focus = self.focus;
        self.resume_note(doc);
        self.focus = focus;
        if let Some(e) = &self.panes.editor.editing {
            let title = crate::notes::lower_first(&e.title);
            self.inform(format!(
                "Your unsigned {title} saved on the server is back in the editor (6)"
            ));
        }
    }

    /// An own draft on the server, opened in the editor to go on with it.
    fn resume_note(&mut self, document: Value) {
        let Ok(doc) = serde_json::from_value::<DocumentReference>(document) else {
            return;
        };
        let Some(chart) = self.chart.as_ref() else {
            return;
        };
        if self.panes.editor.editing.is_some() {
            self.focus = PaneId::Editor;
            return;
        }
        if !self.drafts_loaded {
            self.inform(
                "Looking for drafts kept on this machine first; try again in a moment".into(),
            );
            return;
        }
        let kind = doc.r#type.as_ref();
        let loinc = kind
            .and_then(|t| t.code_in(crate::fhir::codes::LOINC))
            .unwrap_or(crate::fhir::codes::LOINC_NOTE);
        let template = self
            .templates()
            .templates
            .iter()
            // Ties go to the first template (max_by_key keeps the last).
            .rev()
            .filter(|t| t.loinc == loinc)
            // Two templates of one type (telephone, nurse triage): the title
            // the note was written under tells which.
            .max_by_key(|t| doc.description.as_deref() == Some(t.title.as_str()))
            .cloned()
            .unwrap_or_else(|| Template {
                name: "note".into(),
                title: kind.and_then(|t| t.label()).unwrap_or("Note").into(),
                loinc: loinc.into(),
                loinc_display: kind.and_then(|t| t.label()).unwrap_or("Note").into(),
                roles: Vec::new(),
                text: String::new(),
            });
        let client = document::client_id_of(&doc).unwrap_or_else(client_id);
        let p = &chart.patient;
        let mut e = Editing::new(
            p.id.clone().unwrap_or_default(),
            p.display_name(),
            &template,
            client,
            &note_text::decode(&doc),
            Vec::new(),
            self.clock.now,
            // An addendum's draft stays an addendum.
            doc.relates_to
                .iter()
                .find(|r| r.code.as_deref() == Some("appends"))
                .and_then(|r| r.target.as_ref()?.reference.clone()),
        );
        e.server_id = doc.id.clone();
        e.server_version = doc.meta.as_ref().and_then(|m| m.version_id.clone());
        self.panes.editor.open(e);
        self.focus = PaneId::Editor;
    }

    fn resource_of(&self, note: &NoteSnapshot, state: NoteState) -> Value {
        document::resource(&NoteDoc {
            id: note.server_id.as_deref(),
            patient_id: &note.patient_id,
            loinc: &note.loinc,
            loinc_display: &note.loinc_display,
            title: &note.title,
            text: &note.text,
            state,
            appends: note.appends.as_deref(),
            date: self.clock.now,
            client_id: &note.client_id,
        })
    }

    /// The write of a note: an update of the version the editor holds, or
    /// a create conditional on the note's own id.
    fn note_write(&self, note: &NoteSnapshot, state: NoteState) -> Write {
        let resource = self.resource_of(note, state);
        match (&note.server_id, &note.server_version) {
            (Some(_), Some(version)) => Write::Update {
                resource,
                version: version.clone(),
            },
            _ => Write::Create {
                resource,
                client_id: note.client_id.clone(),
                conditional: self.features.conditional_create,
                replace_existing: true,
            },
        }
    }

    fn save_draft(&mut self, note: NoteSnapshot, to_server: bool) {
        match self.draft_owner() {
            Some((user, server)) => self.draft_effects.push(DraftEffect::Save(SavedDraft {
                user,
                server,
                note: note.clone(),
                saved_at: self.clock.now,
            })),
            // Whose it is is not known yet (the server has not said who
            // is signed in): kept until it is, the newest copy per note.
            None => {
                self.unowned.retain(|(n, _)| n.client_id != note.client_id);
                self.unowned.push((note.clone(), self.clock.now));
            }
        }
        if to_server {
            let write = self.note_write(&note, NoteState::Draft);
            self.submit(
                ApiRequest::Write(write),
                Origin::NoteSave {
                    client_id: note.client_id,
                },
            );
        }
    }

    fn sign_note(&mut self, note: NoteSnapshot) {
        // A resident's note already written as awaiting co-signature (its
        // task could not be made): only the task is left to make; the
        // server takes no more changes to the note itself.
        if note.state == NoteState::AwaitingCosign
            && let Some(id) = self.awaiting_written.get(&note.client_id).cloned()
        {
            self.make_cosign_task(&note, &id);
            return;
        }
        let write = self.note_write(&note, note.state);
        self.submit(
            ApiRequest::Write(write),
            Origin::NoteSign {
                note: Box::new(note),
            },
        );
    }

    /// A reply to one of the note requests.
    pub(super) fn note_reply(
        &mut self,
        origin: Origin,
        result: Result<ApiReply, crate::api::ApiError>,
    ) {
        match origin {
            Origin::NoteSave { client_id } => match result {
                Ok(ApiReply::Written { resource, version }) => {
                    let id = id_of(&resource);
                    self.reply_to(
                        PaneId::Editor,
                        PaneReply::DraftSaved {
                            client_id,
                            local: None,
                            server: Some((id, version)),
                        },
                    );
                }
                Ok(_) => {}
                Err(e) => self.reply_to(
                    PaneId::Editor,
                    PaneReply::DraftNotSaved {
                        client_id,
                        why: e.to_string(),
                        // 412: someone else changed the note; 4xx: the
                        // server will not take it as it is.
                        retry: e.status.is_none_or(|s| s >= 500 || s == 429 || s == 408),
                    },
                ),
            },
            Origin::NoteSign { note } => match result {
                Ok(ApiReply::Written { resource, version }) => {
                    let id = id_of(&resource);
                    if note.state == NoteState::AwaitingCosign {
                        // The editor holds the note until the task is made:
                        // a retry must update the version just written.
                        self.reply_to(
                            PaneId::Editor,
                            PaneReply::DraftSaved {
                                client_id: note.client_id.clone(),
                                local: None,
                                server: Some((id.clone(), version)),
                            },
                        );
                        self.awaiting_written
                            .insert(note.client_id.clone(), id.clone());
                        self.make_cosign_task(&note, &id);
                    } else {
                        self.note_done(&note, format!("Signed: {}", note.title));
                    }
                }
                Ok(_) => {}
                Err(e) => self.reply_to(
                    PaneId::Editor,
                    PaneReply::NoteNotSigned {
                        client_id: note.client_id.clone(),
                        why: e.to_string(),
                    },
                ),
            },
            Origin::CosignTask { client_id } => {
                let note = self
                    .panes
                    .editor
                    .editing
                    .as_ref()
                    .filter(|e| e.client_id == client_id)
                    .map(|e| e.snapshot(NoteState::AwaitingCosign));
                match (result, note) {
                    (Ok(_), Some(note)) => self.note_done(
                        &note,
                        "Signed, awaiting an attending's co-signature (in the attending queue)"
                            .into(),
                    ),
                    (Ok(_), None) => {}
                    (Err(e), _) => self.reply_to(
                        PaneId::Editor,
                        PaneReply::NoteNotSigned {
                            client_id,
                            why: format!(
                                "the note is signed but the co-signature task was not made ({e}); sign again to retry"
                            ),
                        },
                    ),
                }
            }
            Origin::CoSign => match result {
                Ok(_) => {
                    self.inform("Co-signed; the task is done".into());
                    self.load_queue();
                    self.note_command_reload();
                }
                Err(e) => self.warn_failure(format!("Not co-signed: {e}")),
            },
            _ => {}
        }
    }

    /// The attending queue's task to co-sign note `id`, made once whatever
    /// the retries (conditional on an id made from the note's).
    fn make_cosign_task(&mut self, note: &NoteSnapshot, id: &str) {
        let task = document::cosign_task(id, &note.patient_id, &note.title, self.clock.now);
        self.submit(
            ApiRequest::Write(Write::Create {
                resource: task,
                client_id: format!("cosign-{id}"),
                conditional: self.features.conditional_create,
                replace_existing: false,
            }),
            Origin::CosignTask {
                client_id: note.client_id.clone(),
            },
        );
    }

    /// Signed: the draft here goes, the editor closes, the notes reload.
    fn note_done(&mut self, note: &NoteSnapshot, message: String) {
        self.recovered
            .retain(|d| d.note.client_id != note.client_id);
        if let Some((user, server)) = self.draft_owner() {
            self.draft_effects.push(DraftEffect::Remove(SavedDraft {
                user,
                server,
                note: note.clone(),
                saved_at: self.clock.now,
            }));
        }
        self.reply_to(
            PaneId::Editor,
            PaneReply::NoteSigned {
                client_id: note.client_id.clone(),
            },
        );
        self.inform(message);
        self.note_command_reload();
    }

    fn note_command_reload(&mut self) {
        self.run_commands(vec![Command::ReloadChart]);
    }

    /// The session ends however it ends (quit, a signal, a hung-up
    /// terminal): what the editor holds is saved; the runner then waits for
    /// the keeper before it exits.
    pub fn end_session(&mut self) {
        self.quit();
    }

    /// Quitting: save what the editor holds, then stop. The runner waits
    /// for the saves before it gives the terminal back.
    pub(super) fn quit(&mut self) {
        self.work_stop();
        if let Some(save) = self.panes.editor.due_save(None) {
            self.run_commands(vec![save]);
        }
        self.quit = true;
    }
}
