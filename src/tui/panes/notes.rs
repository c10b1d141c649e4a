//! Notes: the chart's documents (type, author, date, status) and a reader.
//! Writing notes will be a mode of this pane.

use base64::Engine;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, TableState, Wrap};

use crate::fhir::model::DocumentReference;
use crate::fhir::sanitize::sanitize;
use crate::tui::action::Action;
use crate::tui::command::{ChartData, Command};
use crate::tui::panes::search::window_offset;
use crate::tui::panes::{Pane, PaneId, View, chart_frame, navigate, placeholder, short_datetime};

#[derive(Debug, Clone, PartialEq)]
pub struct NoteRow {
    pub kind: String,
    pub author: String,
    pub date: String,
    pub status: String,
    /// Decoded and sanitised text, or why it cannot be shown.
    pub text: String,
}

#[derive(Default)]
pub struct NotesPane {
    notes: Vec<NoteRow>,
    missing: Option<String>,
    selected: usize,
    offset: usize,
    reading: bool,
    scroll: u16,
    page_rows: usize,
}

/// The note's text: base64 `attachment.data` of a text attachment.
pub fn decode_note(doc: &DocumentReference) -> String {
    let Some(att) = doc.content.iter().find_map(|c| c.attachment.as_ref()) else {
        return "(no content)".into();
    };
    let ctype = att.content_type.as_deref().unwrap_or("text/plain");
    let Some(data) = att.data.as_deref() else {
        return "(the text is stored elsewhere and is not shown here)".into();
    };
    if !ctype.starts_with("text/") {
        return format!("(an attachment of type {ctype}; it cannot be shown as text)");
    }
    let cleaned: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    match base64::engine::general_purpose::STANDARD.decode(cleaned.as_bytes()) {
        // Decoded text never went through the JSON sanitiser: clean it here.
        // Line breaks are the note's own; each line is cleaned on its own.
        Ok(bytes) => String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| sanitize(l).into_owned())
            .collect::<Vec<_>>()
            .join("\n"),
        Err(_) => "(the note's content is not valid base64)".into(),
    }
}

fn note_row(doc: &DocumentReference) -> NoteRow {
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
        date: doc.date.as_deref().map(short_datetime).unwrap_or_default(),
        status: doc
            .doc_status
            .clone()
            .or_else(|| doc.status.clone())
            .unwrap_or_default(),
        text: decode_note(doc),
    }
}

impl NotesPane {
    pub fn load(&mut self, chart: Option<&ChartData>) {
        self.notes.clear();
        self.missing = None;
        if let Some(c) = chart {
            match &c.notes {
                Ok(docs) => self.notes = docs.iter().map(note_row).collect(),
                Err(e) => self.missing = Some(format!("Notes not available: {e}")),
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

    fn update(&mut self, action: Action, _view: &View) -> Vec<Command> {
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
            Action::Open if !self.notes.is_empty() => {
                self.reading = true;
                self.scroll = 0;
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
            &[Action::MoveDown, Action::Open]
        }
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, view: &View) {
        let Some((inner, _)) = chart_frame(frame, area, "4 Notes", view) else {
            return;
        };
        let theme = view.theme;
        if let Some(m) = &self.missing {
            frame.render_widget(placeholder(theme.link_warn, m), inner);
            return;
        }
        if self.notes.is_empty() {
            frame.render_widget(placeholder(theme.dim, "No notes on file."), inner);
            return;
        }
        if let Some(n) = self.reading() {
            let [head, body] =
                Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(inner);
            frame.render_widget(
                Paragraph::new(vec![
                    Line::from(Span::styled(n.kind.clone(), theme.title)),
                    Line::from(Span::styled(
                        format!("{} · {} · {}  (Esc: back)", n.date, n.author, n.status),
                        theme.dim,
                    )),
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
                Row::new(vec![
                    n.date.clone(),
                    n.kind.clone(),
                    n.author.clone(),
                    n.status.clone(),
                ])
            })
            .collect();
        let table = Table::new(
            rows,
            [
                Constraint::Length(16),
                Constraint::Fill(2),
                Constraint::Fill(1),
                Constraint::Length(12),
            ],
        )
        .header(Row::new(vec!["Date", "Type", "Author", "Status"]).style(theme.header))
        .row_highlight_style(theme.selection);
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
        let text = decode_note(&doc(b"S: well\r\nP: \x1b[2Jplan", "text/plain"));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], "S: well");
        assert!(!text.contains('\x1b'), "{text:?}");
        assert!(lines[1].starts_with("P: ") && lines[1].ends_with("[2Jplan"));
        assert!(lines[1].chars().count() > "P: [2Jplan".chars().count());
    }

    #[test]
    fn binary_attachments_are_not_shown_as_text() {
        let text = decode_note(&doc(b"%PDF-1.4", "application/pdf"));
        assert!(text.contains("application/pdf"));
    }
}
