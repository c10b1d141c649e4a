//! The note editor: a pane like the others, built on `ratatui-textarea`,
//! holding one note being written for one patient. The template's fields
//! are found in the text itself (`***` blanks, `{{pick: …}}` lists), so
//! `Tab` goes to the next one however the text around them changed; a
//! `.phrase` before the cursor expands first. A pick-list is chosen with
//! keys (`1`–`9`), never typed. The pane asks the app to save (two seconds
//! after the last key), to sign (after a confirmation) and to write; it
//! never does I/O itself.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui_textarea::{CursorMove, TextArea, WrapMode};

use crate::notes::document::NoteState;
use crate::notes::fields::{DataLink, Field, FieldKind, fields, next_field};
use crate::notes::fill::{NoteContext, refresh};
use crate::notes::phrases::phrase_before;
use crate::tui::action::Action;
use crate::tui::command::{Command, NoteSnapshot, PaneReply};
use crate::tui::keymap::Context;
use crate::tui::panes::{Pane, PaneId, View, pane_block, placeholder};

/// Quiet time after the last key before the draft is saved.
pub const AUTOSAVE_AFTER: Duration = Duration::from_secs(2);
/// Typing without a pause still saves this often.
pub const AUTOSAVE_AT_MOST: Duration = Duration::from_secs(10);
/// A save the server did not take is tried again after this, typing or not.
pub const SERVER_RETRY: Duration = Duration::from_secs(15);

/// A note being written.
pub struct Editing {
    pub patient_id: String,
    /// Name and MRN, for the pane title and a recovered draft.
    pub patient_label: String,
    pub template: String,
    pub title: String,
    pub loinc: String,
    pub loinc_display: String,
    /// Unique per note: the identifier its creates are conditional on.
    pub client_id: String,
    pub server_id: Option<String>,
    pub server_version: Option<String>,
    /// An addendum's note (`DocumentReference/<id>`).
    pub appends: Option<String>,
    pub blocks: Vec<(DataLink, String)>,
    pub pulled_at: DateTime<Utc>,
    textarea: TextArea<'static>,
    /// When the text last changed and was not yet saved.
    changed: Option<Instant>,
    /// When the first change not yet saved was made.
    unsaved_since: Option<Instant>,
    /// A save to the server is on its way; another waits for its answer.
    server_busy: bool,
    /// The text changed while a server save was on its way.
    server_behind: bool,
    /// A server save failed (not a conflict): try again at this time.
    retry_server_at: Option<Instant>,
    /// Saved on this machine (or, without a credential store, in memory).
    pub saved_local: Option<DateTime<Utc>>,
    pub saved_server: Option<DateTime<Utc>>,
    /// A signature is on its way to the server.
    signing: bool,
    picking: Option<Picking>,
}

/// A pick-list being chosen from.
struct Picking {
    field: Field,
    cursor: usize,
    chosen: Vec<usize>,
}

impl Editing {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        patient_id: String,
        patient_label: String,
        template: &crate::notes::Template,
        client_id: String,
        text: &str,
        blocks: Vec<(DataLink, String)>,
        pulled_at: DateTime<Utc>,
        appends: Option<String>,
    ) -> Editing {
        // Whatever the text came from (a template file, a kept draft, the
        // server), no control character reaches the terminal through it.
        let mut textarea = TextArea::new(
            text.lines()
                .map(|l| crate::fhir::sanitize::sanitize(l).into_owned())
                .collect(),
        );
        textarea.set_wrap_mode(WrapMode::Word);
        textarea.set_max_histories(200);
        let mut e = Editing {
            patient_id,
            patient_label,
            template: template.name.clone(),
            title: template.title.clone(),
            loinc: template.loinc.clone(),
            loinc_display: template.loinc_display.clone(),
            client_id,
            server_id: None,
            server_version: None,
            appends,
            blocks,
            pulled_at,
            textarea,
            changed: None,
            unsaved_since: None,
            server_busy: false,
            server_behind: false,
            retry_server_at: None,
            saved_local: None,
            saved_server: None,
            signing: false,
            picking: None,
        };
        e.goto_field(true);
        e
    }

    pub fn text(&self) -> String {
        self.textarea.lines().join("\n")
    }

    pub fn cursor(&self) -> (usize, usize) {
        let c = self.textarea.cursor();
        (c.0, c.1)
    }

    /// The fields still to fill.
    pub fn fields(&self) -> Vec<Field> {
        fields(self.textarea.lines())
    }

    fn touched(&mut self, now: Instant) {
        self.changed = Some(now);
        self.unsaved_since.get_or_insert(now);
        self.server_behind = true;
    }

    /// Put the cursor on a field: a blank is selected (typing replaces
    /// it), a pick-list opens.
    fn select(&mut self, f: Field) {
        self.textarea.cancel_selection();
        self.textarea
            .move_cursor(CursorMove::Jump(f.row as u16, f.col as u16));
        match &f.kind {
            FieldKind::Blank => {
                self.textarea.start_selection();
                for _ in 0..f.len {
                    self.textarea.move_cursor(CursorMove::Forward);
                }
            }
            FieldKind::Pick(_) => {
                self.picking = Some(Picking {
                    field: f,
                    cursor: 0,
                    chosen: Vec::new(),
                })
            }
        }
    }

    /// Go to the next (or previous) field; false when none is left.
    fn goto_field(&mut self, forward: bool) -> bool {
        let fs = self.fields();
        // From a selected blank, "next" starts after it.
        let from = match self.textarea.selection_range() {
            Some((start, _)) => (start.0, start.1),
            None => self.cursor(),
        };
        match next_field(&fs, from, forward).cloned() {
            Some(f) => {
                self.select(f);
                true
            }
            None => false,
        }
    }

    /// Replace the pick-list marker under choice with what was chosen.
    fn put_choice(&mut self) {
        let Some(p) = self.picking.take() else { return };
        let FieldKind::Pick(list) = &p.field.kind else {
            return;
        };
        let mut picks = p.chosen.clone();
        if picks.is_empty() {
            picks.push(p.cursor);
        }
        picks.sort_unstable();
        let text = list.chosen(&picks);
        self.textarea.cancel_selection();
        self.textarea
            .move_cursor(CursorMove::Jump(p.field.row as u16, p.field.col as u16));
        self.textarea.start_selection();
        for _ in 0..p.field.len {
            self.textarea.move_cursor(CursorMove::Forward);
        }
        self.textarea.insert_str(&text);
    }

    /// The note as it stands, for saving or signing.
    pub fn snapshot(&self, state: NoteState) -> NoteSnapshot {
        NoteSnapshot {
            patient_id: self.patient_id.clone(),
            patient_label: self.patient_label.clone(),
            template: self.template.clone(),
            title: self.title.clone(),
            loinc: self.loinc.clone(),
            loinc_display: self.loinc_display.clone(),
            client_id: self.client_id.clone(),
            server_id: self.server_id.clone(),
            server_version: self.server_version.clone(),
            appends: self.appends.clone(),
            text: self.text(),
            state,
        }
    }

    /// Unsaved work: typed since the last local save.
    /// A signature still on its way counts: it may yet fail.
    pub fn unsaved(&self) -> bool {
        self.changed.is_some() || self.signing
    }

    /// Why the note cannot be signed at this moment, if so.
    fn not_now(&self) -> Option<String> {
        if self.signing {
            return Some("The note is being signed; wait for the answer".into());
        }
        // A draft save on its way could land after the signature and
        // write older text over it.
        if self.server_busy {
            return Some(
                "A save of this note is on its way to the server; sign again in a moment".into(),
            );
        }
        None
    }
}

#[derive(Default)]
pub struct EditorPane {
    pub editing: Option<Editing>,
    /// Shown above the text: why a signature was refused, what was saved.
    pub note: Option<String>,
}

impl EditorPane {
    pub fn open(&mut self, e: Editing) {
        self.editing = Some(e);
        self.note = None;
    }

    pub fn close(&mut self) {
        self.editing = None;
    }

    /// The draft to save now, if one is due: two seconds after the last
    /// key, or at once when `now` is `None` (quitting).
    pub fn due_save(&mut self, now: Option<Instant>) -> Option<Command> {
        let e = self.editing.as_mut()?;
        let Some(changed) = e.changed else {
            // Nothing typed since: only a failed server save may be due again.
            let due = now.zip(e.retry_server_at).is_some_and(|(n, at)| n >= at);
            if !due || e.server_busy || !e.server_behind || e.signing {
                return None;
            }
            e.retry_server_at = None;
            e.server_busy = true;
            e.server_behind = false;
            return Some(Command::SaveDraft {
                note: e.snapshot(NoteState::Draft),
                to_server: true,
            });
        };
        let since = e.unsaved_since.unwrap_or(changed);
        let wait = now.is_some_and(|n| {
            n.duration_since(changed) < AUTOSAVE_AFTER && n.duration_since(since) < AUTOSAVE_AT_MOST
        });
        if wait || e.signing {
            return None;
        }
        e.changed = None;
        e.unsaved_since = None;
        let to_server = !e.server_busy && e.server_behind;
        if to_server {
            e.server_busy = true;
            e.server_behind = false;
            e.retry_server_at = None;
        }
        Some(Command::SaveDraft {
            note: e.snapshot(NoteState::Draft),
            to_server,
        })
    }

    /// The note's data blocks pulled again from the chart on screen.
    fn refresh_data(&mut self, view: &View) -> Option<Vec<DataLink>> {
        let e = self.editing.as_mut()?;
        let chart = view.chart?;
        if chart.patient.id.as_deref() != Some(e.patient_id.as_str()) {
            return None;
        }
        let ctx = NoteContext {
            chart,
            now: view.now,
            tz: view.prefs.tz,
            author: view.user.unwrap_or(""),
            records: view.records,
        };
        let (filled, edited) = refresh(&e.text(), &e.blocks, &ctx);
        let cursor = e.cursor();
        let mut textarea = TextArea::new(filled.text.lines().map(str::to_string).collect());
        textarea.set_wrap_mode(WrapMode::Word);
        textarea.move_cursor(CursorMove::Jump(cursor.0 as u16, cursor.1 as u16));
        e.textarea = textarea;
        e.blocks = filled.blocks;
        e.pulled_at = view.now;
        Some(edited)
    }

    fn expand_phrase(&mut self, view: &View) -> Result<bool, String> {
        let Some(e) = self.editing.as_mut() else {
            return Ok(false);
        };
        let (row, col) = e.cursor();
        let line = e.textarea.lines().get(row).cloned().unwrap_or_default();
        let Some((name, dot)) = phrase_before(&line, col) else {
            return Ok(false);
        };
        let Some(chart) = view
            .chart
            .filter(|c| c.patient.id.as_deref() == Some(e.patient_id.as_str()))
        else {
            return Err("open this patient's chart to expand phrases".into());
        };
        let ctx = NoteContext {
            chart,
            now: view.now,
            tz: view.prefs.tz,
            author: view.user.unwrap_or(""),
            records: view.records,
        };
        let Some(filled) = view.notes.phrases.expand(&name, &ctx) else {
            return Err(format!(
                ".{name} is not a phrase (chartty phrases lists them)"
            ));
        };
        e.textarea.cancel_selection();
        e.textarea
            .move_cursor(CursorMove::Jump(row as u16, dot as u16));
        e.textarea.start_selection();
        for _ in dot..col {
            e.textarea.move_cursor(CursorMove::Forward);
        }
        e.textarea.insert_str(&filled.text);
        e.blocks.extend(filled.blocks);
        Ok(true)
    }
}

impl Pane for EditorPane {
    fn id(&self) -> PaneId {
        PaneId::Editor
    }

    fn input_context(&self) -> Option<Context> {
        let e = self.editing.as_ref()?;
        Some(if e.picking.is_some() {
            Context::Picklist
        } else {
            Context::Editor
        })
    }

    fn insert_text(&mut self, text: &str, view: &View) -> Vec<Command> {
        let Some(e) = self.editing.as_mut() else {
            return Vec::new();
        };
        if e.signing {
            return vec![Command::Notify(
                "The note is being signed; wait for the answer".into(),
            )];
        }
        if let Some(p) = &mut e.picking {
            // Digits choose; space toggles the option under the cursor.
            let FieldKind::Pick(list) = &p.field.kind else {
                return Vec::new();
            };
            let n = list.options.len();
            let multiple = list.multiple;
            for c in text.chars() {
                let pick = match c {
                    '1'..='9' => c as usize - '1' as usize,
                    ' ' => p.cursor,
                    _ => continue,
                };
                if pick >= n {
                    continue;
                }
                p.cursor = pick;
                if multiple {
                    match p.chosen.iter().position(|x| *x == pick) {
                        Some(i) => {
                            p.chosen.remove(i);
                        }
                        None => p.chosen.push(pick),
                    }
                } else {
                    p.chosen = vec![pick];
                    e.put_choice();
                    e.touched(view.instant);
                    e.goto_field(true);
                    return Vec::new();
                }
            }
            return Vec::new();
        }
        // A paste may carry escape sequences or bidi overrides: they land as
        // visible markers, never as control characters.
        e.textarea
            .insert_str(crate::fhir::sanitize::sanitize(text).as_ref());
        e.touched(view.instant);
        Vec::new()
    }

    fn raw_key(&mut self, key: KeyEvent, view: &View) -> Vec<Command> {
        let Some(e) = self.editing.as_mut() else {
            return Vec::new();
        };
        if e.picking.is_some() || e.signing {
            return Vec::new();
        }
        if e.textarea.input(key) {
            e.touched(view.instant);
        }
        Vec::new()
    }

    fn update(&mut self, action: Action, view: &View) -> Vec<Command> {
        if self.editing.is_none() {
            return match action {
                Action::Back | Action::Cancel => vec![Command::Focus(PaneId::Notes)],
                _ => Vec::new(),
            };
        }
        // A pick-list is open: its keys.
        if let Some(e) = self.editing.as_mut()
            && let Some(p) = e.picking.as_mut()
        {
            let n = match &p.field.kind {
                FieldKind::Pick(l) => l.options.len(),
                FieldKind::Blank => 0,
            };
            match action {
                Action::MoveDown => p.cursor = (p.cursor + 1).min(n.saturating_sub(1)),
                Action::MoveUp => p.cursor = p.cursor.saturating_sub(1),
                Action::Open => {
                    e.put_choice();
                    e.touched(view.instant);
                    e.goto_field(true);
                }
                Action::Cancel | Action::Back => e.picking = None,
                _ => {}
            }
            return Vec::new();
        }
        match action {
            Action::NextField => {
                match self.expand_phrase(view) {
                    Ok(true) => {
                        if let Some(e) = self.editing.as_mut() {
                            e.touched(view.instant);
                        }
                        return Vec::new();
                    }
                    Ok(false) => {}
                    Err(why) => return vec![Command::Notify(why)],
                }
                if let Some(e) = self.editing.as_mut()
                    && !e.goto_field(true)
                {
                    return vec![Command::Notify(
                        "No blank or pick-list is left: ctrl-s signs".into(),
                    )];
                }
            }
            Action::PrevField => {
                if let Some(e) = self.editing.as_mut() {
                    e.goto_field(false);
                }
            }
            Action::ExpandPhrase => match self.expand_phrase(view) {
                Ok(true) => {
                    if let Some(e) = self.editing.as_mut() {
                        e.touched(view.instant);
                    }
                }
                Ok(false) => {
                    return vec![Command::Notify(
                        "Type a phrase such as .vitals first (chartty phrases lists them)".into(),
                    )];
                }
                Err(why) => return vec![Command::Notify(why)],
            },
            Action::RefreshData => {
                let edited = self.refresh_data(view);
                if let Some(e) = self.editing.as_mut() {
                    e.touched(view.instant);
                }
                return vec![Command::Notify(match edited {
                    None => "Open this patient's chart to pull its data again".into(),
                    Some(e) if e.is_empty() => "Chart data pulled again".into(),
                    Some(e) => format!(
                        "Chart data pulled again, except {} block(s) you edited by hand",
                        e.len()
                    ),
                })];
            }
            Action::Sign => {
                let Some(e) = self.editing.as_mut() else {
                    return Vec::new();
                };
                if let Some(why) = e.not_now() {
                    return vec![Command::Notify(why)];
                }
                if let Some(first) = e.fields().first().cloned() {
                    let n = e.fields().len();
                    e.select(first);
                    return vec![Command::Notify(format!(
                        "Not signed: {n} blank(s) or pick-list(s) left; the cursor is on the first"
                    ))];
                }
                if view
                    .chart
                    .is_none_or(|c| c.patient.id.as_deref() != Some(e.patient_id.as_str()))
                {
                    return vec![Command::Notify(format!(
                        "Open the chart of {} to sign this note",
                        e.patient_label
                    ))];
                }
                return vec![Command::Confirm {
                    question: format!("Sign this {}? y / n", crate::notes::lower_first(&e.title)),
                    yes: Action::SignNow,
                }];
            }
            Action::SignNow => {
                let Some(e) = self.editing.as_ref() else {
                    return Vec::new();
                };
                if !e.fields().is_empty() {
                    return Vec::new();
                }
                if let Some(why) = e.not_now() {
                    return vec![Command::Notify(why)];
                }
                // The chart may have changed while the question was open.
                if view
                    .chart
                    .is_none_or(|c| c.patient.id.as_deref() != Some(e.patient_id.as_str()))
                {
                    return vec![Command::Notify(format!(
                        "Not signed: the chart on screen is no longer {}'s",
                        e.patient_label
                    ))];
                }
                // Data pulled into the note is refreshed at signing.
                let edited = self.refresh_data(view).unwrap_or_default();
                let Some(e) = self.editing.as_mut() else {
                    return Vec::new();
                };
                e.signing = true;
                e.changed = None;
                e.unsaved_since = None;
                let state = if view.role == Some(crate::roles::Role::Resident) {
                    NoteState::AwaitingCosign
                } else {
                    NoteState::Signed
                };
                // What is signed is on this machine first: if the signature
                // fails or the process dies, not a word typed is lost.
                let mut out = vec![
                    Command::SaveDraft {
                        note: e.snapshot(NoteState::Draft),
                        to_server: false,
                    },
                    Command::SignNote(e.snapshot(state)),
                ];
                if !edited.is_empty() {
                    out.push(Command::Notify(format!(
                        "{} data block(s) you edited by hand were not refreshed",
                        edited.len()
                    )));
                }
                return out;
            }
            Action::Back | Action::Cancel => {
                let mut out = Vec::new();
                if let Some(save) = self.due_save(None) {
                    out.push(save);
                }
                out.push(Command::Focus(PaneId::Notes));
                return out;
            }
            _ => {}
        }
        Vec::new()
    }

    fn on_reply(&mut self, reply: PaneReply, view: &View) -> Vec<Command> {
        let Some(e) = self.editing.as_mut() else {
            return Vec::new();
        };
        match reply {
            PaneReply::DraftSaved {
                client_id,
                server,
                local,
            } if client_id == e.client_id => {
                if let Some(at) = local {
                    e.saved_local = Some(at);
                }
                if let Some((id, version)) = server {
                    e.server_busy = false;
                    e.server_id = Some(id);
                    e.server_version = version;
                    e.saved_server = Some(view.now);
                    // Typed meanwhile: the next save goes to the server too.
                    if e.server_behind && e.changed.is_none() {
                        e.changed = Some(view.instant);
                    }
                    // The local copy learns the version the server holds:
                    // after a crash, the next write is an update of that
                    // version, not a conflict with our own last save.
                    return vec![Command::SaveDraft {
                        note: e.snapshot(NoteState::Draft),
                        to_server: false,
                    }];
                }
            }
            PaneReply::DraftNotSaved {
                client_id,
                why,
                retry,
            } if client_id == e.client_id => {
                e.server_busy = false;
                e.server_behind = true;
                // A link that failed may be back in a moment; a version
                // conflict stays one until somebody looks at it.
                e.retry_server_at = retry.then(|| view.instant + SERVER_RETRY);
                self.note = Some(format!("Not saved on the server: {why}"));
            }
            PaneReply::NoteSigned { client_id, .. } if client_id == e.client_id => {
                self.editing = None;
                self.note = None;
                return vec![Command::Focus(PaneId::Notes)];
            }
            PaneReply::NoteNotSigned { client_id, why } if client_id == e.client_id => {
                e.signing = false;
                e.server_busy = false;
                self.note = Some(format!("Not signed: {why} — the draft is kept"));
            }
            _ => {}
        }
        Vec::new()
    }

    fn on_tick(&mut self, view: &View) -> Vec<Command> {
        self.due_save(Some(view.instant)).into_iter().collect()
    }

    fn hint_actions(&self) -> &'static [Action] {
        match self.editing.as_ref().map(|e| e.picking.is_some()) {
            Some(true) => &[Action::MoveDown, Action::Open, Action::Cancel],
            _ => &[
                Action::NextField,
                Action::ExpandPhrase,
                Action::Sign,
                Action::Back,
            ],
        }
    }

    fn unsaved(&self) -> bool {
        self.editing.as_ref().is_some_and(Editing::unsaved)
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, view: &View) {
        let theme = view.theme;
        let Some(e) = self.editing.as_mut() else {
            let block = pane_block("6 Note", view);
            let inner = block.inner(area);
            frame.render_widget(block, area);
            frame.render_widget(
                placeholder(
                    theme.dim,
                    "No note open. In Notes (4), n starts one from a template; a on a signed note starts an addendum.",
                ),
                inner,
            );
            return;
        };
        let own_chart = view
            .chart
            .is_some_and(|c| c.patient.id.as_deref() == Some(e.patient_id.as_str()));
        let title = format!("6 {} — {}", e.title, e.patient_label);
        let block = pane_block(&title, view);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if !own_chart {
            // The banner above names another patient: never show the text
            // under it.
            frame.render_widget(
                placeholder(
                    theme.alert_critical,
                    &format!(
                        "This note belongs to {}. Open that chart to go on writing it (it is kept).",
                        e.patient_label
                    ),
                ),
                inner,
            );
            return;
        }
        let [status, text] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(inner);
        let left = e.fields().len();
        let mut spans = vec![Span::styled(
            match left {
                0 => "ready to sign (ctrl-s)".to_string(),
                n => format!("{n} to fill"),
            },
            if left == 0 {
                theme.link_ok
            } else {
                theme.link_warn
            },
        )];
        let saved = match (e.saved_local, e.saved_server) {
            _ if e.signing => " · signing…".to_string(),
            (_, Some(s)) => format!(
                " · saved {}",
                crate::chart::timefmt::instant_short(s, view.now, view.prefs.tz)
            ),
            (Some(l), None) => format!(
                " · saved here {}",
                crate::chart::timefmt::instant_short(l, view.now, view.prefs.tz)
            ),
            (None, None) => " · not saved yet".to_string(),
        };
        spans.push(Span::styled(saved, theme.dim));
        spans.push(Span::styled(
            format!(
                " · data as of {}",
                crate::chart::timefmt::instant_short(e.pulled_at, view.now, view.prefs.tz)
            ),
            theme.dim,
        ));
        if let Some(n) = &self.note {
            spans.push(Span::styled(format!(" · {n}"), theme.alert_critical));
        }
        frame.render_widget(
            Paragraph::new(crate::tui::panes::fit_line(
                Line::from(spans),
                usize::from(status.width),
            )),
            status,
        );
        e.textarea
            .set_cursor_line_style(ratatui::style::Style::default());
        e.textarea.set_selection_style(theme.selection);
        frame.render_widget(&e.textarea, text);
        if let Some(p) = &e.picking {
            let FieldKind::Pick(list) = &p.field.kind else {
                return;
            };
            let help = if list.multiple {
                "digits choose, enter puts them in"
            } else {
                "a digit chooses"
            };
            let height = (list.options.len() as u16 + 3).min(text.height);
            let width = list
                .options
                .iter()
                .map(|o| o.chars().count() as u16 + 8)
                .max()
                .unwrap_or(20)
                .max(list.label.chars().count() as u16 + 4)
                .max(help.chars().count() as u16 + 2)
                .min(text.width);
            // At the right edge: the note's lines, data blocks included, are
            // read from the left while choosing.
            let rect = Rect {
                x: text.x + text.width.saturating_sub(width),
                y: text.y + (text.height.saturating_sub(height)) / 2,
                width,
                height,
            };
            frame.render_widget(Clear, rect);
            let mut lines: Vec<Line> = list
                .options
                .iter()
                .enumerate()
                .map(|(i, o)| {
                    let mark = if list.multiple {
                        if p.chosen.contains(&i) {
                            "[x] "
                        } else {
                            "[ ] "
                        }
                    } else {
                        ""
                    };
                    let style = if i == p.cursor {
                        theme.selection
                    } else {
                        theme.base
                    };
                    Line::from(Span::styled(format!("{} {mark}{o}", i + 1), style))
                })
                .collect();
            lines.push(Line::from(Span::styled(help, theme.dim)));
            frame.render_widget(
                Paragraph::new(lines).block(
                    Block::default()
                        .borders(Borders::ALL)
                        .border_set(theme.border_set(false))
                        .border_style(theme.focus_border)
                        .title(Span::styled(format!(" {} ", list.label), theme.title)),
                ),
                rect,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notes::Template;
    use crate::tui::panes::{NotesEnv, Prefs};
    use crate::tui::theme::Theme;

    const TEXT: &str = "S: ***\nA: {{pick+: Assessment | Stable | Improving | Worse}}\nF/U: {{pick: Follow-up | 1 week | 1 month}}\nP: ***";

    fn template() -> Template {
        Template {
            name: "t".into(),
            title: "Progress note".into(),
            loinc: "11506-3".into(),
            loinc_display: "Progress note".into(),
            roles: Vec::new(),
            text: TEXT.into(),
        }
    }

    fn pane(text: &str, patient: &str) -> EditorPane {
        let mut p = EditorPane::default();
        p.open(Editing::new(
            patient.into(),
            "Nguyễn, Thị Lan · MRN 00100001".into(),
            &template(),
            "c1".into(),
            text,
            Vec::new(),
            Utc::now(),
            None,
        ));
        p
    }

    struct Env {
        theme: Theme,
        prefs: Prefs,
        notes: NotesEnv,
        role: Option<crate::roles::Role>,
        records: crate::chart::RecordNumber,
        chart: crate::chart::ChartData,
        at: Instant,
    }

    impl Env {
        fn new() -> Env {
            Env {
                theme: Theme::default(),
                prefs: Prefs::default(),
                notes: NotesEnv::default(),
                role: Some(crate::roles::Role::Attending),
                records: crate::chart::RecordNumber::default(),
                chart: crate::notes::fill::tests::chart(),
                at: Instant::now(),
            }
        }
        fn view(&self) -> View<'_> {
            View {
                chart: Some(&self.chart),
                now: Utc::now(),
                instant: self.at,
                theme: &self.theme,
                prefs: &self.prefs,
                notes: &self.notes,
                user: Some("Dr. Ama Mensah"),
                role: self.role,
                records: &self.records,
                work: None,
                focused: true,
            }
        }
    }

    fn text(p: &EditorPane) -> String {
        p.editing.as_ref().unwrap().text()
    }

    #[test]
    fn tab_walks_the_blanks_and_lists_and_typing_replaces_a_blank() {
        let env = Env::new();
        let mut p = pane(TEXT, "p1");
        // Opened on the first blank, selected: typing replaces it.
        assert_eq!(p.input_context(), Some(Context::Editor));
        p.insert_text("better", &env.view());
        assert!(text(&p).starts_with("S: better\n"), "{}", text(&p));
        // Next: the multiple-choice list opens; digits toggle, Enter puts them.
        p.update(Action::NextField, &env.view());
        assert_eq!(p.input_context(), Some(Context::Picklist));
        p.insert_text("13", &env.view());
        p.insert_text("3", &env.view()); // toggled off again
        p.insert_text("2", &env.view());
        p.update(Action::Open, &env.view());
        assert!(text(&p).contains("A: Stable, Improving\n"), "{}", text(&p));
        // A single choice lands at once and moves on.
        assert_eq!(p.input_context(), Some(Context::Picklist));
        p.insert_text("2", &env.view());
        assert!(text(&p).contains("F/U: 1 month\n"), "{}", text(&p));
        // On the last blank; Shift-Tab goes back to the first field left (none
        // before it), Tab past the end says nothing is left.
        p.insert_text("labs", &env.view());
        assert!(text(&p).ends_with("P: labs"), "{}", text(&p));
        let said = p.update(Action::NextField, &env.view());
        assert!(
            matches!(said.as_slice(), [Command::Notify(t)] if t.contains("No blank")),
            "{said:?}"
        );
        assert!(p.editing.as_ref().unwrap().fields().is_empty());
    }

    #[test]
    fn shift_tab_goes_back_and_esc_leaves_a_list_unchosen() {
        let env = Env::new();
        let mut p = pane(TEXT, "p1");
        p.update(Action::NextField, &env.view());
        assert_eq!(p.input_context(), Some(Context::Picklist));
        p.update(Action::Cancel, &env.view());
        assert_eq!(p.input_context(), Some(Context::Editor));
        assert!(text(&p).contains("{{pick+: Assessment"), "the field stays");
        p.update(Action::PrevField, &env.view());
        let e = p.editing.as_ref().unwrap();
        assert_eq!(e.cursor().0, 0, "back on the first blank");
        // Cursor keys in a list move the choice; Enter puts the one under it.
        let mut p = pane(TEXT, "p1");
        p.update(Action::NextField, &env.view());
        p.update(Action::MoveDown, &env.view());
        p.update(Action::MoveDown, &env.view());
        p.update(Action::Open, &env.view());
        assert!(text(&p).contains("A: Worse\n"), "{}", text(&p));
    }

    #[test]
    fn signing_is_refused_with_the_cursor_on_the_first_field_left() {
        let env = Env::new();
        let mut p = pane(TEXT, "p1");
        p.insert_text("better", &env.view());
        p.update(Action::NextField, &env.view());
        p.update(Action::Cancel, &env.view());
        // Somewhere else in the text.
        let out = p.update(Action::Sign, &env.view());
        assert!(
            matches!(out.as_slice(), [Command::Notify(t)] if t.contains("Not signed: 3")),
            "{out:?}"
        );
        assert_eq!(
            p.editing.as_ref().unwrap().cursor(),
            (1, 3),
            "on the assessment list"
        );
        assert_eq!(p.input_context(), Some(Context::Picklist));
        // Filled: signing asks first, and a resident's note waits for co-signature.
        let mut p = pane("S: fine", "p1");
        let out = p.update(Action::Sign, &env.view());
        assert!(
            matches!(
                out.as_slice(),
                [Command::Confirm {
                    yes: Action::SignNow,
                    ..
                }]
            ),
            "{out:?}"
        );
        let mut env = Env::new();
        env.role = Some(crate::roles::Role::Resident);
        let out = p.update(Action::SignNow, &env.view());
        assert!(
            matches!(out.as_slice(), [
                Command::SaveDraft { note: kept, to_server: false },
                Command::SignNote(n),
            ] if kept.text == "S: fine" && n.state == NoteState::AwaitingCosign && n.text == "S: fine"),
            "kept on this machine, then signed: {out:?}"
        );
        // While the signature is on its way, a second one is refused and
        // quitting asks.
        assert!(p.unsaved());
        let again = p.update(Action::Sign, &env.view());
        assert!(
            matches!(again.as_slice(), [Command::Notify(t)] if t.contains("being signed")),
            "{again:?}"
        );
    }

    #[test]
    fn pasted_control_characters_become_visible_markers() {
        let env = Env::new();
        let mut p = pane("S: ***", "p1");
        p.insert_text("ok\u{1b}]52;c;ZXZpbA==\u{7}\u{202e}gnp", &env.view());
        let t = text(&p);
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'), "{t:?}");
        assert!(t.contains('␛') && t.contains("U+202E"), "{t:?}");
        let hostile = pane("title \u{1b}[2J", "p1");
        assert!(
            !text(&hostile).contains('\u{1b}'),
            "a template or draft is cleaned too"
        );
    }

    #[test]
    fn a_note_is_signed_only_with_its_patients_chart_open() {
        let env = Env::new();
        let mut p = pane("S: fine", "someone-else");
        let out = p.update(Action::Sign, &env.view());
        assert!(
            matches!(out.as_slice(), [Command::Notify(t)] if t.contains("Open the chart of Nguyễn")),
            "{out:?}"
        );
    }

    #[test]
    fn phrases_expand_from_the_open_chart_in_place() {
        let env = Env::new();
        let mut p = pane("Meds: ", "p1");
        p.editing
            .as_mut()
            .unwrap()
            .textarea
            .move_cursor(CursorMove::End);
        p.insert_text(".meds", &env.view());
        p.update(Action::ExpandPhrase, &env.view());
        let t = text(&p);
        assert!(t.starts_with("Meds: "), "{t}");
        assert!(!t.contains(".meds"), "the phrase is replaced: {t}");
        assert!(
            t.contains("Metformin 500 MG") && t.contains("500 mg twice daily"),
            "{t}"
        );
        assert!(
            !t.contains("Lisinopril"),
            "a stopped medication is not listed: {t}"
        );
        // Tab expands too; an unknown phrase is said, the text kept.
        p.insert_text(" .nosuch", &env.view());
        let out = p.update(Action::NextField, &env.view());
        assert!(
            matches!(out.as_slice(), [Command::Notify(m)] if m.contains(".nosuch is not a phrase")),
            "{out:?}"
        );
        assert!(text(&p).ends_with(".nosuch"));
    }

    #[test]
    fn a_save_is_due_two_seconds_after_the_last_key() {
        let env = Env::new();
        let mut p = pane("S: ***", "p1");
        assert!(
            p.due_save(Some(env.at)).is_none(),
            "nothing typed, nothing to save"
        );
        p.insert_text("x", &env.view());
        assert!(
            p.due_save(Some(env.at + Duration::from_millis(1900)))
                .is_none()
        );
        let due = p.due_save(Some(env.at + AUTOSAVE_AFTER));
        assert!(
            matches!(&due, Some(Command::SaveDraft { note, to_server: true }) if note.text == "S: x"),
            "{due:?}"
        );
        assert!(
            p.due_save(Some(env.at + Duration::from_secs(10))).is_none(),
            "saved once"
        );
    }

    #[test]
    fn a_server_save_that_failed_is_tried_again_without_a_key() {
        let env = Env::new();
        let mut p = pane("S: ***", "p1");
        p.insert_text("x", &env.view());
        let first = p.due_save(Some(env.at + AUTOSAVE_AFTER));
        assert!(
            matches!(
                first,
                Some(Command::SaveDraft {
                    to_server: true,
                    ..
                })
            ),
            "{first:?}"
        );
        let failed = |retry| PaneReply::DraftNotSaved {
            client_id: "c1".into(),
            why: "the server did not answer".into(),
            retry,
        };
        p.on_reply(failed(true), &env.view());
        assert!(
            p.due_save(Some(env.at + Duration::from_secs(5))).is_none(),
            "not at once"
        );
        let again = p.due_save(Some(env.at + SERVER_RETRY));
        assert!(
            matches!(&again, Some(Command::SaveDraft { to_server: true, note }) if note.text == "S: x"),
            "{again:?}"
        );
        // A conflict is not retried by itself.
        p.on_reply(failed(false), &env.view());
        assert!(
            p.due_save(Some(env.at + Duration::from_secs(120)))
                .is_none()
        );
    }

    #[test]
    fn typing_without_a_pause_is_still_saved_every_ten_seconds() {
        let mut env = Env::new();
        let start = env.at;
        let mut p = pane("S: ***", "p1");
        let mut saves = 0;
        // A key every half second for 25 seconds.
        for i in 0..50u64 {
            env.at = start + Duration::from_millis(500 * i);
            p.insert_text("x", &env.view());
            if p.due_save(Some(env.at)).is_some() {
                saves += 1;
            }
        }
        assert_eq!(saves, 2, "at 10 s and 20 s");
    }
}
