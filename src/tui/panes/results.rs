//! Results: labs and vitals grouped by test with the newest valid value,
//! unit, reference range, flag and a trend; `Enter` shows one test's whole
//! history (fetched for that test) as a table and a chart in one unit.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Row, Table, TableState};

use crate::chart::results::{self as rules, Kind, ResultGroup, flag_for};
use crate::chart::{ChartData, ResultsFetch, unreadable_line};
use crate::fhir::model::fmt_number;
use crate::fhir::{status, units};
use crate::tui::action::Action;
use crate::tui::command::{Command, PaneReply};
use crate::tui::panes::search::window_offset;
use crate::tui::panes::{
    Pane, PaneId, View, chart_frame, fit, fit_line, navigate, placeholder, table_column_widths,
};
use crate::tui::theme::Theme;

/// Values a trend sparkline shows.
const TREND_POINTS: usize = 10;
/// The test name keeps at least this many cells before a column is dropped.
pub const MIN_TEST_WIDTH: usize = 24;

/// Columns of the results list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    Kind,
    Test,
    Latest,
    Unit,
    Range,
    Flag,
    When,
    Trend,
}

impl Column {
    /// Cells of a fixed column; `None` for the test name, which takes the rest.
    fn width(self) -> Option<u16> {
        Some(match self {
            Column::Kind => 5,
            Column::Test => return None,
            Column::Latest => 15,
            Column::Unit => 13,
            Column::Range => 11,
            Column::Flag => 4,
            Column::When => 16,
            Column::Trend => TREND_POINTS as u16,
        })
    }

    fn constraint(self) -> Constraint {
        self.width().map_or(Constraint::Fill(1), Constraint::Length)
    }

    fn header(self) -> &'static str {
        match self {
            Column::Kind => "Kind",
            Column::Test => "Test",
            Column::Latest => "Latest",
            Column::Unit => "Unit",
            Column::Range => "Range",
            Column::Flag => "Flag",
            Column::When => "When",
            Column::Trend => "Trend",
        }
    }
}

/// The columns that fit `width`: the trend, then the date, then the range go
/// before the test name is cut below [`MIN_TEST_WIDTH`] (two tests that
/// share a prefix must stay told apart).
pub fn list_columns(width: u16) -> Vec<Column> {
    let mut columns = vec![
        Column::Kind,
        Column::Test,
        Column::Latest,
        Column::Unit,
        Column::Range,
        Column::Flag,
        Column::When,
        Column::Trend,
    ];
    let test_width = |cols: &[Column]| {
        let fixed: usize = cols.iter().filter_map(|c| c.width()).map(usize::from).sum();
        let spacing = cols.len().saturating_sub(1);
        usize::from(width).saturating_sub(fixed + spacing)
    };
    for drop in [Column::Trend, Column::When, Column::Range] {
        if test_width(&columns) >= MIN_TEST_WIDTH {
            break;
        }
        columns.retain(|c| *c != drop);
    }
    columns
}

/// What the history view shows for the selected test.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum History {
    /// The values the chart holds (all of them, or the last few).
    #[default]
    FromChart,
    Loading,
    /// Every value the server holds (`more`: it had even more).
    Full {
        group: Box<ResultGroup>,
        more: bool,
    },
    Failed(String),
}

#[derive(Default)]
pub struct ResultsPane {
    groups: Vec<ResultGroup>,
    /// Why a category is missing (the server refused or failed), and notes
    /// on what could not be read or was cut.
    notes: Vec<(String, bool)>,
    selected: usize,
    offset: usize,
    detail: bool,
    history: History,
    fetch: Option<ResultsFetch>,
    page_rows: usize,
}

/// The flag's style: critical values stand out most.
pub fn flag_style(flag: &str, theme: &Theme) -> Style {
    if flag.ends_with('!') {
        theme.alert_critical
    } else {
        theme.abnormal_result
    }
}

/// Unicode block trend of the values, oldest to newest. The scale spans at
/// least a tenth of the values' size, so a change in the last digit (a
/// creatinine of 1.097 then 1.10) does not draw as a jump from floor to top.
pub fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (min, max) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let mid = (min + max) / 2.0;
    let spread = (max - min).max(mid.abs() * 0.1);
    values
        .iter()
        .map(|&v| {
            if spread > 0.0 {
                let i = ((v - (mid - spread / 2.0)) / spread * 7.0).round() as usize;
                BARS[i.min(7)]
            } else {
                BARS[3]
            }
        })
        .collect()
}

impl ResultsPane {
    pub fn load(&mut self, chart: Option<&ChartData>) {
        self.groups.clear();
        self.notes.clear();
        self.fetch = chart.map(|c| c.results_fetch);
        if let Some(c) = chart {
            self.groups = rules::groups_of(&c.labs, &c.vitals);
            for (section, label, what) in [
                (&c.labs, "Labs", "lab result"),
                (&c.vitals, "Vitals", "vital sign"),
            ] {
                if let Some(e) = &section.failed {
                    self.notes
                        .push((format!("{label} not available: {e}"), true));
                    continue;
                }
                if !section.unreadable.is_empty() {
                    self.notes
                        .push((unreadable_line(section.unreadable.len(), what), true));
                }
                if section.more_on_server {
                    self.notes.push((
                        format!(
                            "{label}: older results were not loaded; the latest of each key test was fetched on its own, Enter loads a test's whole history"
                        ),
                        false,
                    ));
                }
            }
        }
        self.selected = 0;
        self.offset = 0;
        self.detail = false;
        self.history = History::FromChart;
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    pub fn groups(&self) -> &[ResultGroup] {
        &self.groups
    }

    pub fn selected_group(&self) -> Option<&ResultGroup> {
        self.groups.get(self.selected)
    }

    pub fn showing_history(&self) -> bool {
        self.detail
    }

    fn render_list(&mut self, frame: &mut Frame, area: Rect, view: &View) {
        let theme = view.theme;
        let mut area = area;
        for (m, alarm) in &self.notes {
            if area.height > 1 {
                let [line, rest] =
                    Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
                let style = if *alarm {
                    theme.alert_critical
                } else {
                    theme.link_warn
                };
                frame.render_widget(
                    Paragraph::new(Span::styled(fit(m, usize::from(line.width)), style)),
                    line,
                );
                area = rest;
            }
        }
        if self.groups.is_empty() {
            // "None on file" only when every category was read: a refused one is unknown, not empty.
            if self.notes.is_empty() {
                frame.render_widget(placeholder(theme.dim, "No results on file."), area);
            }
            return;
        }
        let visible = area.height.saturating_sub(1) as usize;
        self.page_rows = visible.max(1);
        self.offset = window_offset(self.selected, self.offset, visible);
        let columns = list_columns(area.width);
        let widths: Vec<Constraint> = columns.iter().map(|c| c.constraint()).collect();
        let cut = table_column_widths(area.width, 0, &widths);
        let test_width = columns
            .iter()
            .position(|c| *c == Column::Test)
            .and_then(|i| cut.get(i).copied())
            .unwrap_or(0);
        let rows: Vec<Row> = self.groups[self.offset..]
            .iter()
            .take(visible)
            .map(|g| {
                let kind_cell = Line::from(match g.kind {
                    Kind::Lab => "Lab",
                    Kind::Vital => "Vital",
                });
                let Some(o) = g.latest() else {
                    // Every value of the test was left out by status: the
                    // test shows, saying why, never with an old value.
                    let why = g.left_out.first().copied().unwrap_or("no value");
                    return Row::new(vec![
                        kind_cell,
                        Line::from(fit(&g.name, test_width)),
                        Line::from(Span::styled(format!("({why})"), theme.dim)),
                    ]);
                };
                let flag = flag_for(o).unwrap_or_default();
                let stale = view
                    .prefs
                    .stale_after(g.kind)
                    .and_then(|d| rules::stale_label(o, view.now, d));
                let mark = status::observation(o).mark();
                let cells = columns.iter().map(|c| match c {
                    Column::Kind => kind_cell.clone(),
                    Column::Test => Line::from(fit(&g.name, test_width)),
                    Column::Latest => match mark {
                        Some(m) => Line::from(vec![
                            Span::raw(o.value_label()),
                            Span::styled(format!(" {m}"), theme.abnormal_result),
                        ]),
                        None => Line::from(o.value_label()),
                    },
                    Column::Unit => Line::from(o.unit()),
                    Column::Range => Line::from(
                        o.reference_range
                            .first()
                            .map(|r| r.label())
                            .unwrap_or_default(),
                    ),
                    Column::Flag => {
                        Line::from(Span::styled(flag.clone(), flag_style(&flag, theme)))
                    }
                    Column::When => match &stale {
                        Some(age) => Line::from(Span::styled(age.clone(), theme.link_warn)),
                        None => Line::from(o.when().map(|w| view.when(w)).unwrap_or_default()),
                    },
                    Column::Trend => {
                        // In the latest value's unit: a trend never mixes units.
                        let trend: Vec<f64> = g.trend().into_iter().map(|p| p.1).collect();
                        let start = trend.len().saturating_sub(TREND_POINTS);
                        Line::from(sparkline(&trend[start..]))
                    }
                });
                // A value, unit or range cut without a mark would read as a
                // different, plausible one (134.63/77.89 as "134.63/77").
                let cells = cells.zip(columns.iter()).map(|(line, c)| match c.width() {
                    Some(w) => fit_line(line, usize::from(w)),
                    None => line,
                });
                Row::new(cells.collect::<Vec<_>>())
            })
            .collect();
        let table = theme.selectable(
            Table::new(rows, widths)
                .header(Row::new(columns.iter().map(|c| c.header())).style(theme.header)),
        );
        let mut state = TableState::default().with_selected(Some(self.selected - self.offset));
        frame.render_stateful_widget(table, area, &mut state);
    }

    /// The test the history view shows: the whole history once loaded,
    /// else what the chart holds.
    fn history_group(&self) -> Option<&ResultGroup> {
        match &self.history {
            History::Full { group, .. } => Some(group),
            _ => self.selected_group(),
        }
    }

    fn render_history(&self, frame: &mut Frame, area: Rect, view: &View) {
        let theme = view.theme;
        let Some(g) = self.history_group() else {
            return;
        };
        let [title, notes, table_area, chart_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Percentage(45),
            Constraint::Min(5),
        ])
        .areas(area);
        let extent = match (&self.history, self.fetch) {
            (History::Full { more: false, .. }, _) => "whole history".to_string(),
            (History::Full { more: true, .. }, _) => {
                "the newest values; the server holds more".to_string()
            }
            (History::Loading, _) => "loading the whole history…".to_string(),
            (History::Failed(e), _) => format!("whole history not available: {e}"),
            (History::FromChart, Some(ResultsFetch::LastN(n))) => format!("the last {n}"),
            (History::FromChart, _) => "as loaded with the chart".to_string(),
        };
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(g.name.clone(), theme.title),
                Span::styled(
                    format!("  {} values, {extent}  (Esc: back)", g.values.len()),
                    theme.dim,
                ),
            ])),
            title,
        );
        let mut said = Vec::new();
        if g.converted() {
            said.push(format!(
                "chart in {}: values in other units converted",
                units::human(g.unit_code())
            ));
        }
        if g.split_from_other_units {
            said.push("values in units that cannot be converted are listed as another test".into());
        }
        if !g.left_out.is_empty() {
            said.push(format!(
                "{} entered in error or cancelled, not shown",
                g.left_out.len()
            ));
        }
        frame.render_widget(
            Paragraph::new(Span::styled(
                fit(&said.join(" · "), usize::from(notes.width)),
                theme.link_warn,
            )),
            notes,
        );
        let rows: Vec<Row> = g
            .values
            .iter()
            .map(|o| {
                let flag = flag_for(o).unwrap_or_default();
                let mark = status::observation(o)
                    .mark()
                    .map(|m| format!(" {m}"))
                    .unwrap_or_default();
                Row::new(vec![
                    Line::from(o.when().map(|w| view.when(w)).unwrap_or_default()),
                    Line::from(fit(&format!("{}{mark}", o.value_label()), 16)),
                    Line::from(fit(&o.unit(), 13)),
                    Line::from(Span::styled(flag.clone(), flag_style(&flag, theme))),
                    Line::from(
                        o.reference_range
                            .first()
                            .map(|r| r.label())
                            .unwrap_or_default(),
                    ),
                ])
            })
            .collect();
        frame.render_widget(
            Table::new(
                rows,
                [
                    Constraint::Length(16),
                    Constraint::Length(16),
                    Constraint::Length(13),
                    Constraint::Length(4),
                    Constraint::Fill(1),
                ],
            )
            .header(Row::new(vec!["When", "Value", "Unit", "Flag", "Range"]).style(theme.header)),
            table_area,
        );

        // Oldest to newest, x in days before the newest value, y in one unit.
        let trend = g.trend();
        let points: Vec<(f64, f64)> = match trend.last() {
            Some(&(newest, _)) => trend
                .iter()
                .map(|(t, v)| ((*t - newest).num_minutes() as f64 / 1440.0, *v))
                .collect(),
            None => Vec::new(),
        };
        if points.len() < 2 {
            frame.render_widget(
                placeholder(theme.dim, "Not enough numeric values for a chart."),
                chart_area,
            );
            return;
        }
        let (xmin, xmax) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.0), b.max(p.0))
            });
        let (ymin, ymax) = points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                (a.min(p.1), b.max(p.1))
            });
        let pad = ((ymax - ymin) * 0.1).max(0.5);
        let (ylo, yhi) = (ymin - pad, ymax + pad);
        let datasets = vec![
            Dataset::default()
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(theme.focus_border)
                .data(&points),
        ];
        let chart = Chart::new(datasets)
            .x_axis(
                Axis::default()
                    .title("days")
                    .style(theme.dim)
                    .bounds([xmin, xmax.max(xmin + 1.0)])
                    .labels([fmt_number(xmin.round()), "0".to_string()]),
            )
            .y_axis(
                Axis::default()
                    .title(units::human(g.unit_code()))
                    .style(theme.dim)
                    .bounds([ylo, yhi])
                    .labels([fmt_number(ylo.round()), fmt_number(yhi.round())]),
            );
        frame.render_widget(chart, chart_area);
    }
}

impl Pane for ResultsPane {
    fn id(&self) -> PaneId {
        PaneId::Results
    }

    fn update(&mut self, action: Action, view: &View) -> Vec<Command> {
        if !self.detail
            && let Some(s) = navigate(action, self.selected, self.groups.len(), self.page_rows)
        {
            self.selected = s;
            return Vec::new();
        }
        match action {
            Action::Open if !self.detail => {
                let Some(g) = self.groups.get(self.selected) else {
                    return Vec::new();
                };
                self.detail = true;
                // The chart holds the latest few values of a test (or a
                // window): the history view asks for all of them.
                if g.key.contains('|') && view.chart.is_some() {
                    self.history = History::Loading;
                    return vec![Command::LoadHistory {
                        code: g.key.clone(),
                    }];
                }
            }
            Action::Back | Action::Cancel => {
                self.detail = false;
                self.history = History::FromChart;
            }
            Action::Refresh => return vec![Command::ReloadChart],
            Action::RawView => {
                let Some(g) = self.history_group().or(self.selected_group()) else {
                    return Vec::new();
                };
                let items = g
                    .values
                    .iter()
                    .take(if self.detail { usize::MAX } else { 1 })
                    .map(|o| {
                        (
                            format!(
                                "{} ({})",
                                g.name,
                                o.when().map(|w| view.when(w)).unwrap_or_default()
                            ),
                            serde_json::to_value(o).unwrap_or_default(),
                        )
                    })
                    .collect();
                return vec![Command::ShowRaw {
                    title: format!("Raw FHIR: {}", g.name),
                    items,
                }];
            }
            _ => {}
        }
        Vec::new()
    }

    fn on_reply(&mut self, reply: PaneReply, _view: &View) -> Vec<Command> {
        let PaneReply::History { code, result } = reply else {
            return Vec::new();
        };
        let Some(selected) = self.selected_group() else {
            return Vec::new();
        };
        // A reply for a test no longer on screen is dropped.
        if !self.detail || selected.key != code {
            return Vec::new();
        }
        self.history = match result {
            Ok((values, more)) => {
                let kind = selected.kind;
                let unit = selected.unit_code().to_string();
                let loinc = selected.loinc.clone();
                // Only the values that belong on this test's axis: the same
                // unit family as the group on screen.
                let groups = rules::group(&values, kind);
                let best = groups.into_iter().filter(|g| g.key == code).find(|g| {
                    g.values.is_empty() || units::compatible(g.unit_code(), &unit, loinc.as_deref())
                });
                match best {
                    Some(mut g) => {
                        g.name = selected.name.clone();
                        History::Full {
                            group: Box::new(g),
                            more,
                        }
                    }
                    None => History::Failed("the server returned no values of this test".into()),
                }
            }
            Err(e) => History::Failed(e),
        };
        Vec::new()
    }

    fn hint_actions(&self) -> &'static [Action] {
        if self.detail {
            &[Action::Back, Action::RawView]
        } else {
            &[Action::MoveDown, Action::Open, Action::RawView]
        }
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, view: &View) {
        let Some((inner, _)) = chart_frame(frame, area, "3 Results", view) else {
            return;
        };
        if self.detail {
            self.render_history(frame, inner, view);
        } else {
            self.render_list(frame, inner, view);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fhir::model::Observation;
    use serde_json::json;

    #[test]
    fn narrow_screens_keep_the_test_name_readable() {
        // 80 columns less the border.
        let narrow = list_columns(78);
        assert!(!narrow.contains(&Column::Trend) && !narrow.contains(&Column::When));
        assert!(narrow.contains(&Column::Range));
        let widths: Vec<Constraint> = narrow.iter().map(|c| c.constraint()).collect();
        let test = narrow.iter().position(|c| *c == Column::Test).unwrap();
        assert!(table_column_widths(78, 0, &widths)[test] >= MIN_TEST_WIDTH);
        assert_eq!(list_columns(118).len(), 8, "a wide screen shows everything");
    }

    #[test]
    fn flags_read_in_monochrome() {
        let o: Observation = serde_json::from_value(json!({
            "interpretation": [{"coding": [{"code": "HH"}]}]
        }))
        .unwrap();
        assert_eq!(flag_for(&o).as_deref(), Some("HH!"));
        let o: Observation = serde_json::from_value(json!({
            "valueQuantity": {"value": 2.0},
            "referenceRange": [{"low": {"value": 3.5}, "high": {"value": 5.1}}]
        }))
        .unwrap();
        assert_eq!(flag_for(&o).as_deref(), Some("L"));
        let o: Observation = serde_json::from_value(json!({
            "interpretation": [{"coding": [{"code": "N"}]}]
        }))
        .unwrap();
        assert_eq!(flag_for(&o), None);
    }

    #[test]
    fn a_value_or_unit_too_wide_for_its_column_is_cut_visibly() {
        use ratatui::{Terminal, backend::TestBackend};
        let bp: Observation = serde_json::from_value(json!({
            "resourceType": "Observation",
            "category": [{"coding": [{"code": "vital-signs"}]}],
            "code": {"text": "Blood pressure"},
            "effectiveDateTime": "2026-01-02T10:00:00Z",
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                 "valueQuantity": {"value": 77.8912, "unit": "mm[Hg]"}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                 "valueQuantity": {"value": 134.6321, "unit": "mm[Hg]"}}
            ]
        }))
        .unwrap();
        let egfr: Observation = serde_json::from_value(json!({
            "resourceType": "Observation",
            "category": [{"coding": [{"code": "laboratory"}]}],
            "code": {"text": "eGFR"},
            "effectiveDateTime": "2026-01-02T10:00:00Z",
            "valueQuantity": {"value": 48.0, "unit": "mL/min/{1.73_m2}"}
        }))
        .unwrap();
        let mut chart = ChartData::empty(Default::default());
        chart.vitals = crate::chart::Section::loaded(vec![bp.clone()]);
        chart.labs = crate::chart::Section::loaded(vec![egfr.clone()]);
        let theme = Theme::default();
        let prefs = crate::tui::panes::Prefs::default();
        let notes = crate::tui::panes::NotesEnv::default();
        let view = View {
            chart: Some(&chart),
            now: chrono::Utc::now(),
            instant: std::time::Instant::now(),
            theme: &theme,
            prefs: &prefs,
            notes: &notes,
            user: None,
            role: None,
            records: &crate::chart::RecordNumber::default(),
            work: None,
            focused: true,
        };
        let mut pane = ResultsPane::default();
        pane.load(Some(&chart));
        let mut terminal = Terminal::new(TestBackend::new(80, 12)).unwrap();
        terminal.draw(|f| pane.render(f, f.area(), &view)).unwrap();
        let screen: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        for whole in [bp.value_label(), egfr.unit()] {
            let shown = whole.chars().take(6).collect::<String>();
            assert!(screen.contains(&shown), "{whole} is on screen");
            if !screen.contains(&whole) {
                let at = screen.find(&shown).unwrap();
                let rest: String = screen[at..]
                    .chars()
                    .take(whole.chars().count() + 1)
                    .collect();
                assert!(rest.contains('…'), "a cut {whole} is marked: {rest:?}");
            }
        }
    }

    #[test]
    fn sparkline_spans_min_to_max() {
        assert_eq!(sparkline(&[1.0, 2.0, 3.0]), "▁▅█");
        assert_eq!(sparkline(&[4.0, 4.0]), "▅▅");
        assert_eq!(sparkline(&[0.0, 0.0]), "▄▄");
        assert_eq!(sparkline(&[]), "");
        // A change in the last digit stays a small step.
        assert_eq!(sparkline(&[1.097, 1.10]), "▄▅");
        assert_eq!(sparkline(&[4.1, 6.8]), "▁█");
    }
}
