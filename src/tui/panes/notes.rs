//! Notes: the chart's documents (type, author, date, status) and a reader.
//! A note entered in error is left out of the list (and counted); a
//! superseded, unsigned or amended one is marked. Writing notes will be a
//! mode of this pane.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, TableState, Wrap};

use crate::chart::note_text;
use crate::chart::{ChartData, unreadable_line};
use crate::fhir::model::DocumentReference;
use crate::fhir::status::{self, Verdict};
use crate::notes::document::{self, NoteState};
use crate::tui::action::Action;
use crate::tui::command::Command;
use crate::tui::panes::search::window_offset;
use crate::tui::panes::{Pane, PaneId, View, chart_frame, fit, navigate, placeholder};

#[derive(Debug, Clone, PartialEq)]
pub struct NoteRow {
    pub kind: String,
    pub author: String,
    /// As written (FHIR date-time), shown in the clinician's zone.
    pub date: String,
    pub status: String,
    /// `superseded`, `unsigned`, `amended`.
    pub mark: Option<&'static str>,
    /// Decoded, plain and sanitised text, or why it cannot be shown.
    pub text: String,
    /// The resource, for the raw view.
    pub raw: serde_json::Value,
    /// Draft, awaiting co-signature or signed.
    pub state: NoteState,
    /// `Practitioner/<id>` of the author, where given.
    pub author_ref: Option<String>,
}

#[derive(Default)]
pub struct NotesPane {
    notes: Vec<NoteRow>,
    /// Why the list is missing or incomplete, in the order shown.
    notices: Vec<String>,
    failed: bool,
    selected: usize,
    offset: usize,
    reading: bool,
    scroll: u16,
    page_rows: usize,
}

fn note_row(doc: &DocumentReference, mark: Option<&'static str>) -> NoteRow {
    NoteRow {
        kind: doc
            .r#type
            .as_ref()
            .and_then(|t| t.label())
            .unwrap_or("Note")
            .to_string(),
        author: doc
            .author
            .first()
            .and_then(|a| a.display.clone().or_else(|| a.reference.clone()))
            .unwrap_or_default(),
        date: doc.date.clone().unwrap_or_default(),
        status: doc
            .doc_status
            .clone()
            .or_else(|| doc.status.clone())
            .unwrap_or_default(),
        mark,
        text: note_text::decode(doc),
        raw: serde_json::to_value(doc).unwrap_or_default(),
        state: document::state_of(doc),
        author_ref: doc.author.first().and_then(|a| a.reference.clone()),
    }
}

impl NotesPane {
    pub fn load(&mut self, chart: Option<&ChartData>) {
        self.notes.clear();
        self.notices.clear();
        self.failed = false;
        if let Some(c) = chart {
            match &c.notes.failed {
                Some(e) => {
                    self.failed = true;
                    self.notices.push(format!("Notes not available: {e}"));
                }
                None => {
                    let mut hidden = 0;
                    for d in &c.notes.items {
                        match status::note(d) {
                            Verdict::Hide(_) => hidden += 1,
                            v => self.notes.push(note_row(d, v.mark())),
                        }
                    }
                    if hidden > 0 {
                        let s = if hidden == 1 { "" } else { "s" };
                        self.notices
                            .push(format!("{hidden} note{s} entered in error, not shown"));
                    }
                    if !c.notes.unreadable.is_empty() {
                        self.notices
                            .push(unreadable_line(c.notes.unreadable.len(), "note"));
                    }
                    if c.notes.more_on_server {
                        self.notices
                            .push("older notes are on the server and were not loaded".into());
                    }
                }
            }
        }
        self.selected = 0;
        self.offset = 0;
        self.reading = false;
        self.scroll = 0;
    }

    pub fn notes(&self) -> &[NoteRow] {
        &self.notes
    }

    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    pub fn reading(&self) -> Option<&NoteRow> {
        self.reading
            .then(|| self.notes.get(self.selected))
            .flatten()
    }
}

impl Pane for NotesPane {
    fn id(&self) -> PaneId {
        PaneId::Notes
    }

    fn update(&mut self, action: Action, view: &View) -> Vec<Command> {
        if action == Action::RawView {
            let mut items: Vec<(String, serde_json::Value)> = self
                .notes
                .get(self.selected)
                .map(|n| (format!("{} {}", n.kind, view.when(&n.date)), n.raw.clone()))
                .into_iter()
                .collect();
            if let Some(c) = view.chart {
                items.extend(c.notes.unreadable.iter().map(|u| {
                    (
                        format!("Could not be read (note): {}", u.why),
                        u.raw.clone(),
                    )
                }));
            }
            return vec![Command::ShowRaw {
                title: "Raw FHIR: notes".into(),
                items,
            }];
        }
        if self.reading {
            match action {
                Action::MoveDown => self.scroll = self.scroll.saturating_add(1),
                Action::MoveUp => self.scroll = self.scroll.saturating_sub(1),
                Action::PageDown => self.scroll = self.scroll.saturating_add(10),
                Action::PageUp => self.scroll = self.scroll.saturating_sub(10),
                Action::Back | Action::Cancel => self.reading = false,
                _ => {}
            }
            return Vec::new();
        }
        if let Some(s) = navigate(action, self.selected, self.notes.len(), self.page_rows) {
            self.selected = s;
            return Vec::new();
        }
        match action {
            // The own draft of the signed-in user goes on in the editor.
            Action::Open
                if self.notes.get(self.selected).is_some_and(|n| {
                    n.state == NoteState::Draft
                        && view.notes.practitioner.is_some()
                        && n.author_ref == view.notes.practitioner
                }) =>
            {
                let raw = self.notes[self.selected].raw.clone();
                return vec![Command::ResumeNote { document: raw }];
            }
            Action::Open if !self.notes.is_empty() => {
                self.reading = true;
                self.scroll = 0;
            }
            Action::NewNote => return vec![Command::PickTemplate],
            Action::Addendum => {
                return match self.notes.get(self.selected) {
                    Some(n) if n.state == NoteState::Signed => {
                        let id = n.raw.get("id").and_then(serde_json::Value::as_str);
                        match id {
                            Some(id) => vec![Command::StartNote {
                                template: "addendum".into(),
                                appends: Some(format!("DocumentReference/{id}")),
                            }],
                            None => Vec::new(),
                        }
                    }
                    Some(_) => vec![Command::Notify(
                        "An addendum goes on a signed note; this one is not signed".into(),
                    )],
                    None => Vec::new(),
                };
            }
            Action::Refresh => return vec![Command::ReloadChart],
            _ => {}
        }
        Vec::new()
    }

    fn hint_actions(&self) -> &'static [Action] {
        if self.reading {
            &[Action::MoveDown, Action::Back]
        } else {
            &[Action::NewNote, Action::Open, Action::Addendum]
        }
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, view: &View) {
        let Some((inner, _)) = chart_frame(frame, area, "4 Notes", view) else {
            return;
        };
        let theme = view.theme;
        if self.failed {
            frame.render_widget(
                placeholder(theme.link_warn, &self.notices.join(" · ")),
                inner,
            );
            return;
        }
        let mut inner = inner;
        if !self.notices.is_empty() && !self.reading && inner.height > 2 {
            let [line, rest] =
                Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
            frame.render_widget(
                Paragraph::new(Span::styled(
                    fit(&self.notices.join(" · "), usize::from(line.width)),
                    theme.link_warn,
                )),
                line,
            );
            inner = rest;
        }
        if self.notes.is_empty() {
            if self.notices.is_empty() {
                frame.render_widget(placeholder(theme.dim, "No notes on file."), inner);
            }
            return;
        }
        if let Some(n) = self.reading() {
            let [head, body] =
                Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(inner);
            frame.render_widget(
                Paragraph::new(vec![
                    Line::from(Span::styled(n.kind.clone(), theme.title)),
                    Line::from(vec![
                        Span::styled(
                            format!("{} · {} · {}", view.when(&n.date), n.author, n.status),
                            theme.dim,
                        ),
                        Span::styled(
                            n.mark
                                .map(|m| format!(" · {}", m.to_uppercase()))
                                .unwrap_or_default(),
                            theme.abnormal_result,
                        ),
                        Span::styled("  (Esc: back)", theme.dim),
                    ]),
                ]),
                head,
            );
            frame.render_widget(
                Paragraph::new(n.text.as_str())
                    .wrap(Wrap { trim: false })
                    .scroll((self.scroll, 0)),
                body,
            );
            return;
        }
        let visible = inner.height.saturating_sub(1) as usize;
        self.page_rows = visible.max(1);
        self.offset = window_offset(self.selected, self.offset, visible);
        let rows: Vec<Row> = self.notes[self.offset..]
            .iter()
            .take(visible)
            .map(|n| {
                let row = Row::new(vec![
                    view.when(&n.date),
                    n.kind.clone(),
                    n.author.clone(),
                    n.mark
                        .map(str::to_string)
                        .unwrap_or_else(|| n.status.clone()),
                ]);
                if n.mark.is_some() {
                    row.style(theme.abnormal_result)
                } else {
                    row
                }
            })
            .collect();
        // As wide as the longest status listed ("awaiting co-signature"
        // must read whole), at least the header's.
        let status_width = self
            .notes
            .iter()
            .map(|n| {
                n.mark
                    .map_or(n.status.chars().count(), |m| m.chars().count())
            })
            .max()
            .unwrap_or(0)
            .max(10) as u16
            + 1;
        let table = theme.selectable(
            Table::new(
                rows,
                [
                    Constraint::Length(16),
                    Constraint::Fill(2),
                    Constraint::Fill(1),
                    Constraint::Length(status_width),
                ],
            )
            .header(Row::new(vec!["Date", "Type", "Author", "Status"]).style(theme.header)),
        );
        let mut state = TableState::default().with_selected(Some(self.selected - self.offset));
        frame.render_stateful_widget(table, inner, &mut state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use serde_json::json;

    fn doc(text: &[u8], content_type: &str) -> DocumentReference {
        let data = base64::engine::general_purpose::STANDARD.encode(text);
        serde_json::from_value(json!({
            "content": [{"attachment": {"contentType": content_type, "data": data}}]
        }))
        .unwrap()
    }

    #[test]
    fn decoded_text_keeps_lines_and_shows_hidden_characters() {
        let text = note_text::decode(&doc(b"S: well\r\nP: \x1b[2Jplan", "text/plain"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], "S: well");
        assert!(!text.contains('\x1b'), "{text:?}");
        assert!(lines[1].starts_with("P: ") && lines[1].ends_with("[2Jplan"));
        assert!(lines[1].chars().count() > "P: [2Jplan".chars().count());
    }

    #[test]
    fn binary_attachments_are_not_shown_as_text() {
        let text = note_text::decode(&doc(b"%PDF-1.4", "application/pdf"));
        assert!(text.contains("application/pdf"));
    }
}
