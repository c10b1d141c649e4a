//! Results: labs and vitals grouped by test with the newest value, unit,
//! reference range, flag and a trend; `Enter` shows one test's history as a
//! table and a chart.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Row, Table, TableState};

use crate::fhir::model::{Observation, fmt_number};
use crate::tui::action::Action;
use crate::tui::command::{ChartData, Command};
use crate::tui::panes::search::window_offset;
use crate::tui::panes::{
    Pane, PaneId, View, chart_frame, fit, fit_line, navigate, parse_fhir_date, placeholder,
    short_datetime, table_column_widths,
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
            Column::Latest => 11,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lab,
    Vital,
}

/// One test and its values, newest first.
#[derive(Debug, Clone)]
pub struct ResultGroup {
    pub kind: Kind,
    pub name: String,
    pub values: Vec<Observation>,
}

impl ResultGroup {
    pub fn latest(&self) -> Option<&Observation> {
        self.values.first()
    }
}

#[derive(Default)]
pub struct ResultsPane {
    groups: Vec<ResultGroup>,
    /// Why a category is missing (the server refused or failed).
    missing: Vec<String>,
    selected: usize,
    offset: usize,
    detail: bool,
    page_rows: usize,
}

/// The flag as it reads in monochrome: `H`, `L`, `HH!`, `LL!`, `A`, `AA!`.
/// Taken from the interpretation, or from the reference range when there is none.
pub fn flag_for(o: &Observation) -> Option<String> {
    let code = o.interpretation_code().or_else(|| {
        let v = o.value_quantity.as_ref()?.value?;
        let range = o.reference_range.first()?;
        let low = range.low.as_ref().and_then(|q| q.value);
        let high = range.high.as_ref().and_then(|q| q.value);
        if high.is_some_and(|h| v > h) {
            Some("H".to_string())
        } else if low.is_some_and(|l| v < l) {
            Some("L".to_string())
        } else {
            None
        }
    })?;
    match code.as_str() {
        "H" | "L" | "A" | ">" | "<" => Some(code),
        "HH" | "LL" | "AA" => Some(format!("{code}!")),
        "HU" => Some("HH!".into()),
        "LU" => Some("LL!".into()),
        _ => None,
    }
}

pub fn flag_style(flag: &str, theme: &Theme) -> Style {
    if flag.ends_with('!') {
        theme.alert_critical
    } else {
        theme.abnormal_result
    }
}

/// Unicode block trend of the values, oldest to newest.
pub fn sparkline(values: &[f64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (min, max) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    values
        .iter()
        .map(|&v| {
            if max > min {
                let i = ((v - min) / (max - min) * 7.0).round() as usize;
                BARS[i.min(7)]
            } else {
                BARS[3]
            }
        })
        .collect()
}

pub fn group_results(chart: &ChartData) -> (Vec<ResultGroup>, Vec<String>) {
    let mut groups: Vec<ResultGroup> = Vec::new();
    let mut missing = Vec::new();
    for (kind, section, label) in [
        (Kind::Lab, &chart.labs, "Labs"),
        (Kind::Vital, &chart.vitals, "Vitals"),
    ] {
        let obs = match section {
            Ok(o) => o,
            Err(e) => {
                missing.push(format!("{label} not available: {e}"));
                continue;
            }
        };
        let start = groups.len();
        for o in obs {
            let key = o.code.as_ref().map(|c| c.key()).unwrap_or_default();
            let name = o
                .code
                .as_ref()
                .and_then(|c| c.label())
                .unwrap_or("(unnamed)")
                .to_string();
            match groups[start..].iter_mut().find(|g| {
                g.values[0]
                    .code
                    .as_ref()
                    .map(|c| c.key())
                    .unwrap_or_default()
                    == key
            }) {
                Some(g) => g.values.push(o.clone()),
                None => groups.push(ResultGroup {
                    kind,
                    name,
                    values: vec![o.clone()],
                }),
            }
        }
        for g in &mut groups[start..] {
            // Newest first, whatever order the server used.
            g.values
                .sort_by_key(|o| std::cmp::Reverse(o.when().and_then(parse_fhir_date)));
        }
        groups[start..].sort_by_key(|g| g.name.to_lowercase());
    }
    (groups, missing)
}

impl ResultsPane {
    pub fn load(&mut self, chart: Option<&ChartData>) {
        match chart {
            Some(c) => (self.groups, self.missing) = group_results(c),
            None => {
                self.groups.clear();
                self.missing.clear();
            }
        }
        self.selected = 0;
        self.offset = 0;
        self.detail = false;
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
        for m in &self.missing {
            if area.height > 1 {
                let [line, rest] =
                    Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
                frame.render_widget(
                    Paragraph::new(Span::styled(
                        fit(m, usize::from(line.width)),
                        theme.link_warn,
                    )),
                    line,
                );
                area = rest;
            }
        }
        if self.groups.is_empty() {
            // "None on file" only when every category was read: a refused one is unknown, not empty.
            if self.missing.is_empty() {
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
                let Some(o) = g.latest() else {
                    return Row::new(vec![fit(&g.name, test_width)]);
                };
                let flag = flag_for(o).unwrap_or_default();
                let cells = columns.iter().map(|c| match c {
                    Column::Kind => Line::from(match g.kind {
                        Kind::Lab => "Lab",
                        Kind::Vital => "Vital",
                    }),
                    Column::Test => Line::from(fit(&g.name, test_width)),
                    Column::Latest => Line::from(o.value_label()),
                    Column::Unit => Line::from(o.unit().to_string()),
                    Column::Range => Line::from(
                        o.reference_range
                            .first()
                            .map(|r| r.label())
                            .unwrap_or_default(),
                    ),
                    Column::Flag => {
                        Line::from(Span::styled(flag.clone(), flag_style(&flag, theme)))
                    }
                    Column::When => Line::from(o.when().map(short_datetime).unwrap_or_default()),
                    Column::Trend => {
                        let trend: Vec<f64> = g
                            .values
                            .iter()
                            .take(TREND_POINTS)
                            .rev()
                            .filter_map(|o| o.numeric_value())
                            .collect();
                        Line::from(sparkline(&trend))
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
        let table = Table::new(rows, widths)
            .header(Row::new(columns.iter().map(|c| c.header())).style(theme.header))
            .row_highlight_style(theme.selection);
        let mut state = TableState::default().with_selected(Some(self.selected - self.offset));
        frame.render_stateful_widget(table, area, &mut state);
    }

    fn render_history(&self, frame: &mut Frame, area: Rect, view: &View) {
        let theme = view.theme;
        let Some(g) = self.selected_group() else {
            return;
        };
        let [title, table_area, chart_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Percentage(45),
            Constraint::Min(5),
        ])
        .areas(area);
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(g.name.clone(), theme.title),
                Span::styled(
                    format!("  {} values  (Esc: back)", g.values.len()),
                    theme.dim,
                ),
            ])),
            title,
        );
        let rows: Vec<Row> = g
            .values
            .iter()
            .map(|o| {
                let flag = flag_for(o).unwrap_or_default();
                Row::new(vec![
                    Line::from(o.when().map(short_datetime).unwrap_or_default()),
                    Line::from(fit(&o.value_label(), 12)),
                    Line::from(fit(o.unit(), 13)),
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
                    Constraint::Length(12),
                    Constraint::Length(13),
                    Constraint::Length(4),
                    Constraint::Fill(1),
                ],
            )
            .header(Row::new(vec!["When", "Value", "Unit", "Flag", "Range"]).style(theme.header)),
            table_area,
        );

        // Oldest to newest, x in days before the newest value.
        let points: Vec<(f64, f64)> = {
            let newest = g.latest().and_then(|o| o.when()).and_then(parse_fhir_date);
            g.values
                .iter()
                .rev()
                .filter_map(|o| {
                    let t = o.when().and_then(parse_fhir_date)?;
                    let days = (t - newest?).num_minutes() as f64 / 1440.0;
                    Some((days, o.numeric_value()?))
                })
                .collect()
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

    fn update(&mut self, action: Action, _view: &View) -> Vec<Command> {
        if !self.detail
            && let Some(s) = navigate(action, self.selected, self.groups.len(), self.page_rows)
        {
            self.selected = s;
            return Vec::new();
        }
        match action {
            Action::Open if !self.groups.is_empty() => self.detail = true,
            Action::Back | Action::Cancel => self.detail = false,
            Action::Refresh => return vec![Command::ReloadChart],
            _ => {}
        }
        Vec::new()
    }

    fn hint_actions(&self) -> &'static [Action] {
        if self.detail {
            &[Action::Back]
        } else {
            &[Action::MoveDown, Action::Open]
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
        let chart = ChartData {
            patient: Default::default(),
            allergies: Ok(vec![]),
            conditions: Ok(vec![]),
            medications: Ok(vec![]),
            vitals: Ok(vec![bp.clone()]),
            labs: Ok(vec![egfr.clone()]),
            encounters: Ok(vec![]),
            notes: Ok(vec![]),
            tasks: Ok(vec![]),
            other_patients_ignored: 0,
        };
        let theme = Theme::default();
        let view = View {
            chart: Some(&chart),
            now: chrono::Utc::now(),
            theme: &theme,
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
        for whole in [bp.value_label(), egfr.unit().to_string()] {
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
        assert_eq!(sparkline(&[4.0, 4.0]), "▄▄");
        assert_eq!(sparkline(&[]), "");
    }
}
