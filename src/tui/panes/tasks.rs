//! The signed-in role's queue: priority, due time (overdue stands out),
//! patient, category and a one-line summary; `Enter` opens the patient.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Row, Table, TableState};

use crate::chart::PatientRow;
use crate::fhir::model::Task;
use crate::fhir::time;
use crate::tui::action::Action;
use crate::tui::command::{Command, PaneReply};
use crate::tui::panes::search::window_offset;
use crate::tui::panes::{
    Pane, PaneId, View, fit, navigate, pane_block, placeholder, table_column_widths,
};

/// Why the queue is what it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum QueueState {
    #[default]
    NotLoaded,
    Loading,
    Loaded,
    /// No role known for this sign-in.
    NoRole,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct QueueRow {
    pub task_id: String,
    pub priority: String,
    pub due: Option<DateTime<Utc>>,
    pub due_text: String,
    pub patient_id: Option<String>,
    /// Name and record number, as listed.
    pub patient: String,
    /// The name alone, for the banner while the chart opens.
    pub patient_name: String,
    pub raw: serde_json::Value,
    pub category: String,
    pub summary: String,
}

#[derive(Default)]
pub struct TasksPane {
    rows: Vec<QueueRow>,
    /// The co-signature task a question is open for.
    confirming: Option<String>,
    pub state: QueueState,
    selected: usize,
    offset: usize,
    page_rows: usize,
}

fn priority_rank(p: &str) -> u8 {
    match p {
        "stat" => 0,
        "asap" => 1,
        "urgent" => 2,
        _ => 3,
    }
}

impl TasksPane {
    pub fn rows(&self) -> &[QueueRow] {
        &self.rows
    }

    pub fn selected_row(&self) -> Option<&QueueRow> {
        self.rows.get(self.selected)
    }

    /// Replace (first page) or extend (next pages) the queue.
    pub fn load(&mut self, tasks: &[Task], patients: &[PatientRow], append: bool) {
        let names: HashMap<&str, (String, String)> = patients
            .iter()
            .map(|p| {
                (
                    p.id.as_str(),
                    (format!("{} ({})", p.name, p.record_label()), p.name.clone()),
                )
            })
            .collect();
        if !append {
            self.rows.clear();
            self.selected = 0;
            self.offset = 0;
        }
        self.rows
            .extend(tasks.iter().filter(|t| t.is_open()).map(|t| {
                let patient_id = t.patient_id().map(str::to_string);
                let (patient, patient_name) = patient_id
                    .as_deref()
                    .and_then(|id| names.get(id).cloned())
                    .or_else(|| {
                        let r = t.r#for.as_ref()?;
                        let shown = r.display.clone().or_else(|| r.reference.clone())?;
                        Some((shown.clone(), shown))
                    })
                    .unwrap_or_default();
                QueueRow {
                    task_id: t.id.clone().unwrap_or_default(),
                    priority: t.priority.clone().unwrap_or_else(|| "routine".into()),
                    due: t.due().and_then(time::instant),
                    due_text: t.due().unwrap_or_default().to_string(),
                    patient_id,
                    patient,
                    patient_name,
                    raw: serde_json::to_value(t).unwrap_or_default(),
                    category: t.category().unwrap_or("").to_string(),
                    summary: t
                        .description
                        .clone()
                        .or_else(|| t.code.as_ref().and_then(|c| c.label()).map(str::to_string))
                        .unwrap_or_default(),
                }
            }));
        // STAT and urgent first, then by due time (the standard `period`
        // search is not the due time: sorted here).
        self.rows.sort_by(|a, b| {
            (priority_rank(&a.priority), a.due.is_none(), a.due).cmp(&(
                priority_rank(&b.priority),
                b.due.is_none(),
                b.due,
            ))
        });
        self.state = QueueState::Loaded;
    }
}

impl Pane for TasksPane {
    fn id(&self) -> PaneId {
        PaneId::Tasks
    }

    fn update(&mut self, action: Action, _view: &View) -> Vec<Command> {
        if let Some(s) = navigate(action, self.selected, self.rows.len(), self.page_rows) {
            self.selected = s;
            return Vec::new();
        }
        match action {
            Action::Open => match self.selected_row() {
                Some(QueueRow {
                    patient_id: Some(id),
                    patient_name,
                    ..
                }) => vec![Command::OpenPatient {
                    id: id.clone(),
                    name: patient_name.clone(),
                }],
                _ => Vec::new(),
            },
            Action::Refresh => vec![Command::LoadQueue],
            Action::Sign => match self.selected_row().cloned() {
                Some(r) if r.category == crate::fhir::codes::TASK_COSIGN => {
                    // The answer co-signs this task, whatever the queue
                    // does meanwhile (a reload re-sorts the rows).
                    self.confirming = Some(r.task_id.clone());
                    vec![Command::Confirm {
                        question: format!(
                            "Co-sign the {} of {}? y / n",
                            crate::notes::lower_first(r.summary.trim_start_matches("Co-sign: ")),
                            r.patient
                        ),
                        yes: Action::SignNow,
                    }]
                }
                Some(_) => vec![Command::Notify(
                    "Only a co-signature task is signed from the queue".into(),
                )],
                None => Vec::new(),
            },
            Action::SignNow => {
                let asked = self.confirming.take();
                match self
                    .rows
                    .iter()
                    .find(|r| Some(&r.task_id) == asked.as_ref())
                {
                    Some(r) if r.category == crate::fhir::codes::TASK_COSIGN => {
                        vec![Command::CoSign {
                            task: r.raw.clone(),
                        }]
                    }
                    Some(_) => Vec::new(),
                    None => vec![Command::Notify(
                        "Not co-signed: that task has left the queue meanwhile".into(),
                    )],
                }
            }
            Action::RawView => match self.selected_row() {
                Some(r) => vec![Command::ShowRaw {
                    title: "Raw FHIR: task".into(),
                    items: vec![(format!("Task {}", r.task_id), r.raw.clone())],
                }],
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    fn on_reply(&mut self, reply: PaneReply, _view: &View) -> Vec<Command> {
        match reply {
            PaneReply::Queue {
                tasks,
                patients,
                append,
            } => self.load(&tasks, &patients, append),
            PaneReply::QueueFailed(why) => self.state = QueueState::Failed(why),
            _ => {}
        }
        Vec::new()
    }

    fn hint_actions(&self) -> &'static [Action] {
        &[Action::MoveDown, Action::Open, Action::Refresh]
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, view: &View) {
        let block = pane_block("5 Tasks", view);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let theme = view.theme;
        let msg = match &self.state {
            QueueState::NotLoaded => Some("The queue has not been loaded.".to_string()),
            QueueState::Loading => Some("Loading the queue…".to_string()),
            QueueState::NoRole => Some(
                "No role is known for this sign-in, so there is no queue to show \
                 (this server does not say who you are)."
                    .to_string(),
            ),
            QueueState::Failed(e) => Some(format!("The queue is not available: {e}")),
            QueueState::Loaded if self.rows.is_empty() => Some("Nothing in the queue.".to_string()),
            QueueState::Loaded => None,
        };
        if let Some(m) = msg {
            frame.render_widget(placeholder(theme.dim, &m), inner);
            return;
        }
        let visible = inner.height.saturating_sub(1) as usize;
        self.page_rows = visible.max(1);
        self.offset = window_offset(self.selected, self.offset, visible);
        // Narrow screens drop the category (the summary line names it) so the
        // patient's name keeps room.
        let narrow = inner.width < 100;
        let widths: Vec<Constraint> = if narrow {
            vec![
                Constraint::Length(8),
                Constraint::Length(18),
                Constraint::Fill(1),
                Constraint::Fill(1),
            ]
        } else {
            vec![
                Constraint::Length(8),
                Constraint::Length(18),
                Constraint::Fill(3),
                Constraint::Length(10),
                Constraint::Fill(3),
            ]
        };
        let cols = table_column_widths(inner.width, 0, &widths);
        let col = |i: usize| cols.get(i).copied().unwrap_or(0);
        let rows: Vec<Row> = self.rows[self.offset..]
            .iter()
            .take(visible)
            .map(|r| {
                let overdue = r.due.is_some_and(|d| d < view.now);
                // In the clinician's zone; this year's dates without the
                // year, so the column stays narrow.
                let tz = view.prefs.tz;
                let when = match r.due {
                    Some(d)
                        if d.with_timezone(&tz).year() == view.now.with_timezone(&tz).year() =>
                    {
                        d.with_timezone(&tz).format("%b %d %H:%M").to_string()
                    }
                    Some(d) => d.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
                    None => r.due_text.chars().take(16).collect(),
                };
                let due = if overdue {
                    Span::styled(format!("{when} !late"), theme.overdue)
                } else {
                    Span::raw(when)
                };
                let pri = if priority_rank(&r.priority) < 3 {
                    Span::styled(r.priority.to_uppercase(), theme.alert_critical)
                } else {
                    Span::raw(r.priority.clone())
                };
                let mut cells = vec![
                    Line::from(pri),
                    Line::from(due),
                    Line::from(fit(&r.patient, col(2))),
                ];
                if !narrow {
                    cells.push(Line::from(fit(&r.category, col(3))));
                }
                cells.push(Line::from(fit(&r.summary, col(cols.len() - 1))));
                Row::new(cells)
            })
            .collect();
        let header: &[&str] = if narrow {
            &["Priority", "Due", "Patient", "Summary"]
        } else {
            &["Priority", "Due", "Patient", "Category", "Summary"]
        };
        let table = Table::new(rows, widths)
            .header(Row::new(header.to_vec()).style(theme.header))
            .row_highlight_style(theme.selection);
        let mut state = TableState::default().with_selected(Some(self.selected - self.offset));
        frame.render_stateful_widget(table, inner, &mut state);
    }
}
