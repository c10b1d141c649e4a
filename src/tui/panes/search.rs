//! Patient search: type to filter the working set (fuzzy, on name, birth date
//! and MRN together); server-side searches widen it as the query grows.

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, TableState};

use crate::fhir::model::{Deceased, Patient};
use crate::tui::action::Action;
use crate::tui::command::{Command, RequestId};
use crate::tui::panes::{
    Pane, PaneId, View, age_cell, fit, navigate, pane_block, placeholder, short_date,
    table_column_widths,
};
use crate::tui::patient_index::{PatientIndex, PatientRow};

#[derive(Default)]
pub struct SearchPane {
    pub index: PatientIndex,
    query: String,
    editing: bool,
    selected: usize,
    offset: usize,
    /// The newest server search whose reply has been applied.
    applied_search: Option<RequestId>,
    /// Shown under the box: server search state or error.
    server_note: Option<String>,
    page_rows: usize,
}

impl SearchPane {
    pub fn query(&self) -> &str {
        &self.query
    }

    pub fn editing(&self) -> bool {
        self.editing
    }

    pub fn start_editing(&mut self) {
        self.editing = true;
    }

    pub fn applied_search(&self) -> Option<RequestId> {
        self.applied_search
    }

    pub fn selected_row(&self) -> Option<&PatientRow> {
        self.index
            .ranked()
            .get(self.selected)
            .and_then(|&i| self.index.row(i))
    }

    /// A known patient by id.
    pub fn row(&self, id: &str) -> Option<&PatientRow> {
        self.index.get(id)
    }

    /// The rows listed now, best first.
    pub fn listed(&self) -> Vec<&PatientRow> {
        self.index
            .ranked()
            .iter()
            .filter_map(|&i| self.index.row(i))
            .collect()
    }

    /// Patients from anywhere (an open chart, the queue).
    pub fn add_patients(&mut self, patients: &[Patient]) {
        self.add_rows(
            patients
                .iter()
                .filter_map(PatientRow::from_patient)
                .collect(),
        );
    }

    /// List entries (pages of the working set, server searches).
    pub fn add_rows(&mut self, rows: Vec<PatientRow>) {
        let any = !rows.is_empty();
        for row in rows {
            self.index.upsert(row);
        }
        if any {
            self.rematch_keep_selection();
        }
    }

    /// A server search reply; `id` is known to be the newest.
    pub fn apply_server_results(&mut self, id: RequestId, rows: Vec<PatientRow>) {
        self.applied_search = Some(id);
        self.server_note = Some(format!("server: {} found", rows.len()));
        self.add_rows(rows);
    }

    pub fn server_failed(&mut self, message: &str) {
        self.server_note = Some(format!("server search failed: {message}"));
    }

    fn rematch_keep_selection(&mut self) {
        // At the top the list stays at the top; a row the user moved to stays selected.
        let keep = if self.selected == 0 {
            None
        } else {
            self.selected_row().map(|r| r.id.clone())
        };
        self.index.search(&self.query);
        if let Some(id) = &keep
            && let Some(pos) = self
                .index
                .ranked()
                .iter()
                .position(|&i| self.index.row(i).is_some_and(|r| &r.id == id))
        {
            self.selected = pos;
            return;
        }
        self.selected = if keep.is_some() {
            self.selected
                .min(self.index.ranked().len().saturating_sub(1))
        } else {
            0
        };
    }

    fn edited(&mut self) -> Vec<Command> {
        self.index.search(&self.query);
        self.selected = 0;
        self.offset = 0;
        vec![Command::SearchPatients {
            query: self.query.clone(),
        }]
    }

    fn open_selected(&mut self) -> Vec<Command> {
        match self.selected_row() {
            Some(r) => {
                let id = r.id.clone();
                self.editing = false;
                vec![Command::OpenPatient { id }]
            }
            None => Vec::new(),
        }
    }
}

impl Pane for SearchPane {
    fn id(&self) -> PaneId {
        PaneId::Search
    }

    fn handle_text(&mut self, key: KeyEvent, _view: &View) -> Option<Vec<Command>> {
        if !self.editing {
            return None;
        }
        let plain = !key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        match key.code {
            KeyCode::Char(c) if plain => {
                self.query.push(c);
                Some(self.edited())
            }
            KeyCode::Char('u') if key.modifiers == KeyModifiers::CONTROL => {
                self.query.clear();
                Some(self.edited())
            }
            KeyCode::Backspace => {
                self.query.pop();
                Some(self.edited())
            }
            KeyCode::Enter => Some(self.open_selected()),
            KeyCode::Esc => {
                self.editing = false;
                Some(Vec::new())
            }
            KeyCode::Down => Some(self.update(Action::MoveDown, _view)),
            KeyCode::Up => Some(self.update(Action::MoveUp, _view)),
            KeyCode::PageDown => Some(self.update(Action::PageDown, _view)),
            KeyCode::PageUp => Some(self.update(Action::PageUp, _view)),
            _ => None,
        }
    }

    fn update(&mut self, action: Action, _view: &View) -> Vec<Command> {
        let len = self.index.ranked().len();
        if let Some(s) = navigate(action, self.selected, len, self.page_rows) {
            self.selected = s;
            return Vec::new();
        }
        match action {
            Action::Open => self.open_selected(),
            Action::FocusSearch => {
                self.editing = true;
                Vec::new()
            }
            Action::Cancel | Action::Back => {
                self.editing = false;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn hint_actions(&self) -> &'static [Action] {
        &[Action::FocusSearch, Action::Open, Action::MoveDown]
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, view: &View) {
        let block = pane_block("1 Patient search", view);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let [input, note, list] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(0),
        ])
        .areas(inner);
        let theme = view.theme;
        let mut spans = vec![Span::styled("Find: ", theme.header), Span::raw(&self.query)];
        if self.editing {
            spans.push(Span::styled("▏", theme.focus_border));
        } else if self.query.is_empty() {
            spans.push(Span::styled(
                "press / to type a name, MRN or birth date",
                theme.dim,
            ));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), input);
        let listed = self.index.ranked().len();
        let mut note_text = format!("{listed} of {} patients", self.index.len());
        if let Some(n) = &self.server_note {
            note_text.push_str(" · ");
            note_text.push_str(n);
        }
        frame.render_widget(Paragraph::new(Span::styled(note_text, theme.dim)), note);

        if listed == 0 {
            let msg = if self.index.is_empty() {
                "No patients loaded yet."
            } else {
                "No patient matches. Try fewer letters, the MRN, or the birth year."
            };
            frame.render_widget(placeholder(theme.dim, msg), list);
            return;
        }
        let visible = list.height.saturating_sub(1) as usize;
        self.page_rows = visible.max(1);
        self.offset = window_offset(self.selected, self.offset, visible);
        let longest_mrn = self.index.ranked()[self.offset..]
            .iter()
            .take(visible)
            .filter_map(|&i| self.index.row(i))
            .map(|r| Span::raw(r.mrn.as_str()).width())
            .max()
            .unwrap_or(0);
        let widths = [
            Constraint::Fill(1),
            Constraint::Length(3),
            Constraint::Length(10),
            Constraint::Length(5),
            Constraint::Length(mrn_column_width(list.width, longest_mrn)),
        ];
        let cols = table_column_widths(list.width, HIGHLIGHT_WIDTH, &widths);
        let col = |i: usize| cols.get(i).copied().unwrap_or(0);
        let rows: Vec<Row> = self.index.ranked()[self.offset..]
            .iter()
            .take(visible)
            .filter_map(|&i| self.index.row(i))
            .map(|r| {
                let name = match &r.deceased {
                    Some(Deceased::On(d)) => format!("{} († {})", r.name, short_date(d)),
                    Some(Deceased::Yes) => format!("{} (†)", r.name),
                    None => r.name.clone(),
                };
                Row::new(vec![
                    fit(&name, col(0)),
                    sex_label(r.gender).to_string(),
                    r.birth_date.clone(),
                    age_cell(&r.birth_date, r.deceased.as_ref(), view.now),
                    fit(&r.mrn, col(4)),
                ])
            })
            .collect();
        let table = Table::new(rows, widths)
            .header(Row::new(vec!["Name", "Sex", "Born", "Age", "MRN"]).style(theme.header))
            .row_highlight_style(theme.selection)
            .highlight_symbol(HIGHLIGHT);
        let mut state = TableState::default().with_selected(Some(self.selected - self.offset));
        frame.render_stateful_widget(table, list, &mut state);
    }
}

/// The MRN column: 14 cells, wider for long MRNs (Synthea's are UUIDs) as
/// long as the name keeps [`MIN_NAME_WIDTH`] cells; what still does not fit
/// is cut with a mark.
pub fn mrn_column_width(list_width: u16, longest_mrn: usize) -> u16 {
    // Selection mark, sex, born, age and four column gaps.
    let fixed = usize::from(HIGHLIGHT_WIDTH) + 3 + 10 + 5 + 4;
    let room = usize::from(list_width).saturating_sub(fixed + MIN_NAME_WIDTH);
    let wanted = longest_mrn.clamp(MRN_WIDTH, MAX_MRN_WIDTH);
    u16::try_from(wanted.min(room.max(MRN_WIDTH))).unwrap_or(14)
}

const MRN_WIDTH: usize = 14;
const MAX_MRN_WIDTH: usize = 40;
const MIN_NAME_WIDTH: usize = 24;

const HIGHLIGHT: &str = "▶ ";
const HIGHLIGHT_WIDTH: u16 = 2;

/// Keep `selected` inside a window of `height` rows starting at `offset`.
pub fn window_offset(selected: usize, offset: usize, height: usize) -> usize {
    if height == 0 {
        return selected;
    }
    if selected < offset {
        selected
    } else if selected >= offset + height {
        selected + 1 - height
    } else {
        offset
    }
}

pub fn sex_label(gender: &str) -> &'static str {
    match gender {
        "female" => "F",
        "male" => "M",
        "other" => "X",
        "unknown" | "" => "?",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_mrns_widen_their_column_while_the_name_keeps_room() {
        assert_eq!(mrn_column_width(78, 8), 14);
        // A UUID at 120 columns: shown whole.
        assert_eq!(mrn_column_width(118, 36), 36);
        // At 80 columns the name keeps 24 cells; the MRN gets the rest.
        let w = mrn_column_width(78, 36);
        assert!((15..36).contains(&w), "{w}");
        let name = table_column_widths(
            78,
            HIGHLIGHT_WIDTH,
            &[
                Constraint::Fill(1),
                Constraint::Length(3),
                Constraint::Length(10),
                Constraint::Length(5),
                Constraint::Length(w),
            ],
        )[0];
        assert!(name >= MIN_NAME_WIDTH, "{name}");
    }
}
