//! The cover sheet: allergies first, then problems, medications, latest
//! vitals, abnormal results, open tasks and encounters. Every section says
//! what it left out and why (status), what it could not read, and when the
//! server had more than it sent.

use chrono::Duration;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::chart::allergies::{self, Headline, NO_ALLERGIES_RECORDED};
use crate::chart::results::{self, Kind, ResultGroup, flag_for};
use crate::chart::{ChartData, Section, unreadable_line};
use crate::fhir::model::Observation;
use crate::fhir::status::{self, Verdict};
use crate::fhir::time;
use crate::tui::action::Action;
use crate::tui::command::Command;
use crate::tui::panes::results::flag_style;
use crate::tui::panes::{Pane, PaneId, View, chart_frame, wrap_line};
use crate::tui::theme::Theme;

/// Abnormal results this recent are listed on the cover sheet (with the
/// latest of each test, whatever its age, when that is abnormal).
pub const ABNORMAL_WINDOW_DAYS: i64 = 30;

#[derive(Default)]
pub struct SummaryPane {
    scroll: u16,
    /// Furthest scroll that still shows something, as of the last draw.
    max_scroll: u16,
}

impl SummaryPane {
    pub fn reset(&mut self) {
        self.scroll = 0;
    }
}

fn heading<'a>(text: &'a str, theme: &Theme) -> Line<'a> {
    Line::from(Span::styled(text, theme.header))
}

fn note(text: String, style: Style) -> Line<'static> {
    Line::from(Span::styled(format!("  {text}"), style))
}

/// Lines under a section's list: what was left out by status (counted by
/// reason), what could not be read, what the server did not send.
fn footnotes<T>(
    section: &Section<T>,
    left_out: &[&'static str],
    what: &str,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    if !left_out.is_empty() {
        let mut reasons: Vec<(&str, usize)> = Vec::new();
        for r in left_out {
            match reasons.iter_mut().find(|(x, _)| x == r) {
                Some((_, n)) => *n += 1,
                None => reasons.push((r, 1)),
            }
        }
        let list: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        out.push(note(format!("({} not shown)", list.join(", ")), theme.dim));
    }
    if !section.unreadable.is_empty() {
        out.push(note(
            unreadable_line(section.unreadable.len(), what),
            theme.alert_critical,
        ));
    }
    if section.more_on_server {
        let text = match what {
            "lab result" | "vital sign" => {
                "older results were not loaded; key tests were fetched on their own".into()
            }
            _ => "… more on the server than it sent (list cut by paging)".into(),
        };
        out.push(note(text, theme.link_warn));
    }
    out
}

/// A section read through a status rule: shown items (with any mark), then
/// footnotes; "None recorded" only when the read was complete.
fn ruled<T>(
    section: &Section<T>,
    what: &str,
    empty: &str,
    theme: &Theme,
    rule: impl Fn(&T) -> Verdict,
    mut line: impl FnMut(&T, Option<&'static str>) -> Line<'static>,
) -> Vec<Line<'static>> {
    if let Some(e) = &section.failed {
        return vec![note(format!("not available: {e}"), theme.link_warn)];
    }
    let mut lines = Vec::new();
    let mut left_out = Vec::new();
    for item in &section.items {
        match rule(item) {
            Verdict::Hide(why) => left_out.push(why),
            v => lines.push(line(item, v.mark())),
        }
    }
    if lines.is_empty() {
        let text = if section.is_complete() {
            empty.to_string()
        } else {
            format!("{empty} among what could be read")
        };
        lines.push(note(text, theme.dim));
    }
    lines.extend(footnotes(section, &left_out, what, theme));
    lines
}

fn mark_span(mark: Option<&str>, theme: &Theme) -> Option<Span<'static>> {
    mark.map(|m| Span::styled(format!(" [{m}]"), theme.abnormal_result))
}

pub(crate) fn obs_line(
    o: &Observation,
    view: &View,
    stale_after: Duration,
    name: &str,
) -> Line<'static> {
    let theme = view.theme;
    let mut spans = vec![
        Span::raw(format!("  {name}: ")),
        Span::styled(
            format!("{} {}", o.value_label(), o.unit()),
            Style::default(),
        ),
    ];
    if let Some(f) = flag_for(o) {
        spans.push(Span::styled(format!(" {f}"), flag_style(&f, theme)));
    }
    if let Some(m) = mark_span(status::observation(o).mark(), theme) {
        spans.push(m);
    }
    if let Some(w) = o.when() {
        spans.push(Span::styled(format!("  {}", view.when(w)), theme.dim));
    }
    if let Some(age) = results::stale_label(o, view.now, stale_after) {
        spans.push(Span::styled(format!(" ({age})"), theme.link_warn));
    }
    Line::from(spans)
}

fn left_column(chart: &ChartData, view: &View) -> Vec<Line<'static>> {
    let theme = view.theme;
    let mut lines = vec![heading("ALLERGIES", theme)];
    let av = allergies::view(&chart.allergies);
    match &av.headline {
        Headline::NotAvailable(e) => lines.push(note(
            format!("NOT AVAILABLE — ask the patient ({e})"),
            theme.alert_critical,
        )),
        Headline::NoneRecorded => lines.push(note(NO_ALLERGIES_RECORDED.into(), theme.dim)),
        Headline::Unknown => lines.push(note(
            "UNKNOWN — not every allergy record could be read; ask the patient".into(),
            theme.alert_critical,
        )),
        Headline::NoKnown(words) => {
            lines.extend(words.iter().map(|w| note(w.to_string(), theme.base)))
        }
        Headline::Listed(list) => lines.extend(list.iter().map(|l| {
            let reactions: Vec<&str> = l
                .allergy
                .reaction
                .iter()
                .flat_map(|r| r.manifestation.iter().filter_map(|m| m.label()))
                .collect();
            let mut text = format!("  ! {}", l.name);
            if !reactions.is_empty() {
                text.push_str(&format!(" — {}", reactions.join(", ")));
            }
            if let Some(c) = &l.allergy.criticality {
                text.push_str(&format!(" [{c}]"));
            }
            if let Some(m) = l.mark {
                text.push_str(&format!(" ({m})"));
            }
            Line::from(Span::styled(text, theme.allergy))
        })),
    }
    if chart.allergies.failed.is_none() {
        let left: Vec<&'static str> = av.left_out.iter().map(|(_, w)| *w).collect();
        lines.extend(footnotes(&chart.allergies, &left, "allergy", theme));
    }
    lines.push(Line::default());
    lines.push(heading("ACTIVE PROBLEMS", theme));
    lines.extend(ruled(
        &chart.conditions,
        "problem",
        "None recorded",
        theme,
        status::problem,
        |c, mark| {
            let name = c
                .code
                .as_ref()
                .and_then(|c| c.label())
                .unwrap_or("(unnamed)");
            let since = c
                .onset_date_time
                .as_deref()
                .or(c.recorded_date.as_deref())
                .map(|d| format!("  since {}", view.date(d)))
                .unwrap_or_default();
            let mut spans = vec![Span::raw(format!("  {name}"))];
            spans.extend(mark_span(mark, theme));
            spans.push(Span::styled(since, theme.dim));
            Line::from(spans)
        },
    ));
    lines.push(Line::default());
    lines.push(heading("ACTIVE MEDICATIONS", theme));
    lines.extend(ruled(
        &chart.medications,
        "medication",
        "None recorded",
        theme,
        status::medication,
        |m, mark| {
            let mut spans = vec![Span::raw(format!("  {}", m.medication_label()))];
            spans.extend(mark_span(mark, theme));
            if let Some(d) = m.dose_label() {
                spans.push(Span::styled(format!(" — {d}"), theme.dim));
            }
            Line::from(spans)
        },
    ));
    lines
}

/// The latest value of each vital sign.
fn latest_vitals(groups: &[ResultGroup]) -> impl Iterator<Item = (&ResultGroup, &Observation)> {
    groups
        .iter()
        .filter(|g| g.kind == Kind::Vital)
        .filter_map(|g| Some((g, g.latest()?)))
}

fn right_column(chart: &ChartData, view: &View) -> Vec<Line<'static>> {
    let theme = view.theme;
    let groups = results::groups_of(&chart.labs, &chart.vitals);
    let mut lines = vec![heading("LATEST VITALS", theme)];
    match &chart.vitals.failed {
        Some(e) => lines.push(note(format!("not available: {e}"), theme.link_warn)),
        None => {
            let before = lines.len();
            lines.extend(
                latest_vitals(&groups)
                    .map(|(g, o)| obs_line(o, view, view.prefs.stale_vitals, &g.name)),
            );
            if lines.len() == before {
                lines.push(note("None recorded".into(), theme.dim));
            }
            let left: Vec<&'static str> = groups
                .iter()
                .filter(|g| g.kind == Kind::Vital)
                .flat_map(|g| g.left_out.iter().copied())
                .collect();
            lines.extend(footnotes(&chart.vitals, &left, "vital sign", theme));
        }
    }
    lines.push(Line::default());
    lines.push(heading(
        "ABNORMAL RESULTS (LAST 30 DAYS, AND ANY ABNORMAL LATEST)",
        theme,
    ));
    match &chart.labs.failed {
        Some(e) => lines.push(note(format!("not available: {e}"), theme.link_warn)),
        None => {
            let ab = results::abnormal(&groups, view.now, Duration::days(ABNORMAL_WINDOW_DAYS));
            if ab.is_empty() {
                lines.push(note(
                    if chart.labs.is_complete() {
                        "None"
                    } else {
                        "None among what could be read"
                    }
                    .into(),
                    theme.dim,
                ));
            }
            for a in ab {
                let name = groups
                    .iter()
                    .find(|g| g.values.iter().any(|v| std::ptr::eq(v, a.observation)))
                    .map(|g| g.name.clone())
                    .unwrap_or_default();
                // An old latest is shown with its age whatever the setting:
                // it is listed because nothing newer exists.
                let stale = if a.old_latest {
                    Duration::days(ABNORMAL_WINDOW_DAYS)
                } else {
                    view.prefs.stale_results
                };
                lines.push(obs_line(a.observation, view, stale, &name));
            }
            let left: Vec<&'static str> = groups
                .iter()
                .filter(|g| g.kind == Kind::Lab)
                .flat_map(|g| g.left_out.iter().copied())
                .collect();
            lines.extend(footnotes(&chart.labs, &left, "lab result", theme));
        }
    }
    lines.push(Line::default());
    lines.push(heading("OPEN TASKS", theme));
    let now = view.now;
    let open = Section {
        items: chart
            .tasks
            .items
            .iter()
            .filter(|t| t.is_open())
            .cloned()
            .collect(),
        unreadable: chart.tasks.unreadable.clone(),
        more_on_server: chart.tasks.more_on_server,
        failed: chart.tasks.failed.clone(),
    };
    lines.extend(ruled(
        &open,
        "task",
        "None",
        theme,
        |_| Verdict::Show,
        |t, _| {
            let due_at = t.due().and_then(time::instant);
            let overdue = due_at.is_some_and(|d| d < now);
            let due = t
                .due()
                .map(|d| format!(" due {}", view.when(d)))
                .unwrap_or_default();
            let text = format!(
                "  [{}] {}{}",
                t.category().unwrap_or("task"),
                t.description.as_deref().unwrap_or(""),
                due
            );
            if overdue {
                Line::from(Span::styled(format!("{text} OVERDUE"), theme.overdue))
            } else {
                Line::from(text)
            }
        },
    ));
    lines.push(Line::default());
    lines.push(heading("RECENT ENCOUNTERS", theme));
    lines.extend(ruled(
        &chart.encounters,
        "encounter",
        "None recorded",
        theme,
        status::encounter,
        |e, mark| {
            let when = e
                .period
                .as_ref()
                .and_then(|p| p.start.as_deref())
                .map(|s| view.when(s))
                .unwrap_or_default();
            let what = e
                .r#type
                .first()
                .and_then(|t| t.label())
                .or_else(|| {
                    e.class
                        .as_ref()
                        .and_then(|c| c.display.as_deref().or(c.code.as_deref()))
                })
                .unwrap_or("encounter")
                .to_string();
            let why = e
                .reason_code
                .first()
                .and_then(|r| r.label())
                .map(|r| format!(" — {r}"))
                .unwrap_or_default();
            let mut spans = vec![
                Span::styled(format!("  {when} "), theme.dim),
                Span::raw(format!("{what}{why}")),
            ];
            spans.extend(mark_span(mark, theme));
            Line::from(spans)
        },
    ));
    lines
}

/// Everything that could not be read in the chart, for the raw view.
pub fn unreadable_items(chart: &ChartData) -> Vec<(String, serde_json::Value)> {
    chart
        .unreadable()
        .into_iter()
        .map(|(what, u)| {
            (
                format!("Could not be read ({what} record): {}", u.why),
                u.raw.clone(),
            )
        })
        .collect()
}

/// How far a list of `lines` can scroll in `height` rows.
fn scroll_room(lines: usize, height: u16) -> u16 {
    u16::try_from(lines.saturating_sub(usize::from(height))).unwrap_or(u16::MAX)
}

/// Rows of `lines` as drawn `width` cells wide (long lines wrapped).
fn wrapped_rows(lines: Vec<Line<'static>>, width: u16) -> Vec<Line<'static>> {
    lines
        .into_iter()
        .flat_map(|l| wrap_line(l, usize::from(width), 4))
        .collect()
}

/// The rows from `scroll` on (already wrapped to the width), the last saying how
/// many more lie below, so nothing falls off the bottom unannounced.
pub fn scrolled(
    lines: Vec<Line<'static>>,
    area: Rect,
    scroll: u16,
    theme: &Theme,
) -> Paragraph<'static> {
    let height = usize::from(area.height);
    let rest: Vec<Line<'static>> = lines.into_iter().skip(usize::from(scroll)).collect();
    let shown: Vec<Line<'static>> = if rest.len() > height {
        let below = rest.len() + 1 - height;
        let mut v: Vec<Line<'static>> = rest.into_iter().take(height.saturating_sub(1)).collect();
        v.push(Line::from(Span::styled(
            format!("… {below} more lines (j to scroll)"),
            theme.key_hint,
        )));
        v
    } else {
        rest
    };
    Paragraph::new(shown)
}

impl Pane for SummaryPane {
    fn id(&self) -> PaneId {
        PaneId::Summary
    }

    fn update(&mut self, action: Action, view: &View) -> Vec<Command> {
        match action {
            Action::MoveDown => self.scroll = self.scroll.saturating_add(1).min(self.max_scroll),
            Action::MoveUp => self.scroll = self.scroll.saturating_sub(1),
            Action::PageDown => self.scroll = self.scroll.saturating_add(10).min(self.max_scroll),
            Action::PageUp => self.scroll = self.scroll.saturating_sub(10),
            Action::GoTop => self.scroll = 0,
            Action::GoBottom => self.scroll = self.max_scroll,
            Action::Refresh => return vec![Command::ReloadChart],
            // No row to select on a cover sheet: the raw view shows what
            // could not be read, else the patient.
            Action::RawView => {
                if let Some(chart) = view.chart {
                    let mut items = unreadable_items(chart);
                    if items.is_empty() {
                        items.push((
                            "Patient".to_string(),
                            serde_json::to_value(&chart.patient).unwrap_or_default(),
                        ));
                    }
                    return vec![Command::ShowRaw {
                        title: "Raw FHIR".into(),
                        items,
                    }];
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn hint_actions(&self) -> &'static [Action] {
        &[Action::MoveDown, Action::PaneResults, Action::Refresh]
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, view: &View) {
        let Some((inner, chart)) = chart_frame(frame, area, "2 Summary", view) else {
            return;
        };
        let left = left_column(chart, view);
        let right = right_column(chart, view);
        let theme = view.theme;
        // Rows are counted after wrapping so the scroll and the "more" line are exact.
        if inner.width >= 100 {
            let [l, r] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .spacing(1)
                    .areas(inner);
            let (left, right) = (wrapped_rows(left, l.width), wrapped_rows(right, r.width));
            let (lmax, rmax) = (
                scroll_room(left.len(), l.height),
                scroll_room(right.len(), r.height),
            );
            self.max_scroll = lmax.max(rmax);
            self.scroll = self.scroll.min(self.max_scroll);
            frame.render_widget(scrolled(left, l, self.scroll, theme), l);
            frame.render_widget(scrolled(right, r, self.scroll, theme), r);
        } else {
            let mut all = left;
            all.push(Line::default());
            all.extend(right);
            let all = wrapped_rows(all, inner.width);
            self.max_scroll = scroll_room(all.len(), inner.height);
            self.scroll = self.scroll.min(self.max_scroll);
            frame.render_widget(scrolled(all, inner, self.scroll, theme), inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::buffer::Buffer;
    use ratatui::widgets::Widget;

    fn rendered(p: Paragraph<'static>, area: Rect) -> Vec<String> {
        let mut buf = Buffer::empty(area);
        p.render(area, &mut buf);
        (0..area.height)
            .map(|y| {
                (0..area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn what_does_not_fit_is_announced() {
        let theme = Theme::default();
        let lines: Vec<Line<'static>> = (1..=10).map(|i| Line::from(format!("line {i}"))).collect();
        let area = Rect::new(0, 0, 30, 4);
        let rows = rendered(scrolled(lines.clone(), area, 0, &theme), area);
        assert_eq!(
            rows,
            ["line 1", "line 2", "line 3", "… 7 more lines (j to scroll)"]
        );
        // Scrolled to the end: the last lines, no announcement.
        let rows = rendered(
            scrolled(lines.clone(), area, scroll_room(10, 4), &theme),
            area,
        );
        assert_eq!(rows, ["line 7", "line 8", "line 9", "line 10"]);
        // Long lines wrap into counted rows, so nothing is lost off the edge.
        let long = vec![Line::from(
            "  Amoxicillin 250 MG Oral Capsule — 1 three times daily",
        )];
        let wrapped = wrapped_rows(long, 30);
        assert_eq!(wrapped.len(), 3);
        assert!(wrapped.iter().all(|l| l.width() <= 30));
    }

    #[test]
    fn scrolling_stops_at_the_end() {
        let mut pane = SummaryPane {
            scroll: 0,
            max_scroll: 3,
        };
        let theme = Theme::default();
        let notes = crate::tui::panes::NotesEnv::default();
        let prefs = crate::tui::panes::Prefs::default();
        let view = View {
            chart: None,
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
        for _ in 0..10 {
            pane.update(Action::MoveDown, &view);
        }
        assert_eq!(pane.scroll, 3);
    }
}
