//! Patient search: type to filter the working set (fuzzy, on name, birth date
//! and MRN together; matched off the UI task); server-side searches widen it
//! as the query grows, and what the server finds is always listed.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Row, Table, TableState};

use crate::chart::{PatientRow, same_name};
use crate::fhir::model::Deceased;
use crate::tui::action::Action;
use crate::tui::command::{Command, PaneReply};
use crate::tui::panes::{
    Pane, PaneId, View, age_cell, fit, navigate, pane_block, placeholder, table_column_widths,
};
use crate::tui::popups::delete_word;

#[derive(Default)]
pub struct SearchPane {
    query: String,
    editing: bool,
    /// The rows listed, best first, for the query `listed_for`.
    listed: Vec<PatientRow>,
    listed_for: String,
    /// Patients in the working set.
    pub known: usize,
    /// Patients in the clinic, where the server said.
    pub clinic_total: Option<u64>,
    /// More patients exist on the server than were loaded.
    pub more_on_server: bool,
    /// A server search for the current query is waiting or running.
    pub server_pending: bool,
    /// Enter was pressed while the search was still running: open what is
    /// selected once it has settled.
    open_when_settled: bool,
    selected: usize,
    offset: usize,
    /// Shown under the box: server search state or error.
    server_note: Option<String>,
    page_rows: usize,
}

impl SearchPane {
    pub fn query(&self) -> &str {
        &self.query
    }

    pub fn start_editing(&mut self) {
        self.editing = true;
    }

    pub fn selected_row(&self) -> Option<&PatientRow> {
        self.listed.get(self.selected)
    }

    /// The rows listed now, best first.
    pub fn listed(&self) -> &[PatientRow] {
        &self.listed
    }

    /// Whether an open must wait: the list is not yet the answer to what
    /// was typed, or the server has not answered it.
    fn unsettled(&self) -> bool {
        self.listed_for != self.query || self.server_pending
    }

    pub fn waiting_to_open(&self) -> bool {
        self.open_when_settled
    }

    fn edited(&mut self) -> Vec<Command> {
        self.open_when_settled = false;
        vec![Command::SearchPatients {
            query: self.query.clone(),
        }]
    }

    fn open_selected(&mut self) -> Vec<Command> {
        if self.unsettled() {
            // The list on screen may still change under the cursor: wait
            // for it, then open what is selected then.
            self.open_when_settled = true;
            return vec![
                Command::FlushSearch,
                Command::Notify("Searching… the chart opens when the search has finished".into()),
            ];
        }
        self.open_when_settled = false;
        match self.selected_row() {
            Some(r) => {
                let cmd = Command::OpenPatient {
                    id: r.id.clone(),
                    name: r.name.clone(),
                };
                self.editing = false;
                vec![cmd]
            }
            None => Vec::new(),
        }
    }

    fn after_settling(&mut self) -> Vec<Command> {
        if self.open_when_settled && !self.unsettled() {
            self.open_selected()
        } else {
            Vec::new()
        }
    }

    fn apply_matches(&mut self, m: crate::tui::matcher::Matches) {
        // At the top the list stays at the top; a row the user moved to stays selected.
        let keep = (self.selected > 0)
            .then(|| self.selected_row().map(|r| r.id.clone()))
            .flatten();
        let new_query = m.query != self.listed_for;
        self.known = m.known;
        self.listed = m.rows;
        self.listed_for = m.query;
        if new_query {
            self.selected = 0;
            self.offset = 0;
            return;
        }
        match keep.and_then(|id| self.listed.iter().position(|r| r.id == id)) {
            Some(pos) => self.selected = pos,
            None => self.selected = self.selected.min(self.listed.len().saturating_sub(1)),
        }
    }

    /// Other listed patients whose name could be taken for `name`.
    pub fn same_name_as(&self, id: &str, name: &str) -> Vec<&PatientRow> {
        self.listed
            .iter()
            .filter(|r| r.id != id && same_name(&r.name, name))
            .collect()
    }

    fn count_note(&self) -> String {
        let listed = self.listed.len();
        let loaded = self.known;
        let clinic = match (self.clinic_total, self.more_on_server) {
            (Some(t), _) if t as usize > loaded => format!("first {loaded} of {t} patients loaded"),
            (Some(t), _) => format!("all {t} patients loaded"),
            (None, true) => format!("first {loaded} patients loaded (more on the server)"),
            (None, false) => format!("{loaded} patients loaded"),
        };
        if self.query.trim().is_empty() {
            format!("{clinic} — type to search the whole clinic")
        } else {
            format!("{listed} listed · {clinic}")
        }
    }
}

impl Pane for SearchPane {
    fn id(&self) -> PaneId {
        PaneId::Search
    }

    fn input_context(&self) -> Option<crate::tui::keymap::Context> {
        self.editing.then_some(crate::tui::keymap::Context::Input)
    }

    fn insert_text(&mut self, text: &str, _view: &View) -> Vec<Command> {
        // A pasted line break would end nothing here: it becomes a space.
        let clean: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        self.query.push_str(&clean);
        self.edited()
    }

    fn update(&mut self, action: Action, _view: &View) -> Vec<Command> {
        let len = self.listed.len();
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
            Action::DeleteBack if self.editing => {
                self.query.pop();
                self.edited()
            }
            Action::DeleteWord if self.editing => {
                delete_word(&mut self.query);
                self.edited()
            }
            Action::ClearInput if self.editing => {
                self.query.clear();
                self.edited()
            }
            Action::Cancel | Action::Back => {
                self.editing = false;
                self.open_when_settled = false;
                Vec::new()
            }
            // The list holds a few fields of each patient, not the record.
            Action::RawView => vec![Command::Notify(
                "Open the chart (Enter); there v shows the patient as the server sent it".into(),
            )],
            _ => Vec::new(),
        }
    }

    fn on_reply(&mut self, reply: PaneReply, _view: &View) -> Vec<Command> {
        match reply {
            PaneReply::Matched(m) => {
                self.apply_matches(m);
                self.after_settling()
            }
            PaneReply::ServerSearch { query, result } => {
                if query == self.query {
                    self.server_note = Some(match result {
                        Ok(n) => format!("server: {n} found"),
                        Err(e) => format!("server search failed: {e}"),
                    });
                }
                self.after_settling()
            }
            _ => Vec::new(),
        }
    }

    fn hint_actions(&self) -> &'static [Action] {
        if self.editing {
            &[Action::Open, Action::Cancel, Action::ClearInput]
        } else {
            &[Action::FocusSearch, Action::Open, Action::MoveDown]
        }
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
        // A query longer than the box shows its end, where the typing is.
        let room = usize::from(input.width).saturating_sub(8);
        let shown = if Span::raw(self.query.as_str()).width() > room {
            let tail: String = self
                .query
                .chars()
                .rev()
                .scan(0, |w, c| {
                    *w += Span::raw(c.to_string()).width();
                    (*w < room).then_some(c)
                })
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            format!("…{tail}")
        } else {
            self.query.clone()
        };
        let mut spans = vec![Span::styled("Find: ", theme.header), Span::raw(shown)];
        if self.editing {
            spans.push(Span::styled(theme.mark("▏", "_"), theme.focus_border));
        } else if self.query.is_empty() {
            spans.push(Span::styled(
                "press / to type a name, MRN or birth date",
                theme.dim,
            ));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), input);
        let mut note_text = self.count_note();
        if self.open_when_settled {
            note_text.push_str(" · opening when the search has finished…");
        } else if let Some(n) = &self.server_note {
            note_text.push_str(" · ");
            note_text.push_str(n);
        }
        frame.render_widget(
            Paragraph::new(Span::styled(
                fit(&note_text, usize::from(note.width)),
                theme.dim,
            )),
            note,
        );

        if self.listed.is_empty() {
            let msg = if self.known == 0 {
                "No patients loaded yet."
            } else {
                "No patient matches. Try fewer letters, the MRN, or the birth date."
            };
            frame.render_widget(placeholder(theme.dim, msg), list);
            return;
        }
        let visible = list.height.saturating_sub(1) as usize;
        self.page_rows = visible.max(1);
        self.offset = window_offset(self.selected, self.offset, visible);
        let longest_mrn = self.listed[self.offset..]
            .iter()
            .take(visible)
            .map(|r| Span::raw(id_cell(r)).width())
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
        // Names that read the same (folded) are marked, so two patients of
        // one name are told apart by birth date and MRN, never by the name.
        let rows: Vec<Row> = self.listed[self.offset..]
            .iter()
            .take(visible)
            .map(|r| {
                let twin = self
                    .listed
                    .iter()
                    .any(|o| o.id != r.id && same_name(&o.name, &r.name));
                let mut name = match &r.deceased {
                    Some(Deceased::On(d)) => {
                        format!("{} († {})", r.name, d.chars().take(10).collect::<String>())
                    }
                    Some(Deceased::Yes) => format!("{} (†)", r.name),
                    None => r.name.clone(),
                };
                if twin {
                    name = format!("{name} ≡");
                }
                let row = Row::new(vec![
                    fit(&name, col(0)),
                    sex_label(r.gender).to_string(),
                    r.birth_date.clone(),
                    age_cell(
                        &r.birth_date,
                        r.deceased.as_ref(),
                        crate::chart::timefmt::wall_clock(view.now, view.prefs.tz),
                    ),
                    fit(&id_cell(r), col(4)),
                ]);
                if twin {
                    row.style(theme.abnormal_result)
                } else {
                    row
                }
            })
            .collect();
        let table = Table::new(rows, widths)
            .header(Row::new(vec!["Name", "Sex", "Born", "Age", "MRN"]).style(theme.header))
            // In low-bandwidth mode the mark alone shows it (see
            // `Theme::selectable`).
            .row_highlight_style(if theme.low_bandwidth {
                ratatui::style::Style::default()
            } else {
                theme.selection
            })
            .highlight_symbol(theme.mark(HIGHLIGHT, "> "));
        let mut state = TableState::default().with_selected(Some(self.selected - self.offset));
        frame.render_stateful_widget(table, list, &mut state);
    }
}

/// The MRN column's text: the MRN, or another identifier marked as such.
fn id_cell(r: &PatientRow) -> String {
    if r.mrn_is_other_id {
        format!("ID {}", r.mrn)
    } else {
        r.mrn.clone()
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
