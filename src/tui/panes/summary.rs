//! The cover sheet: allergies first, then problems, medications, latest
//! vitals, abnormal results of the last days, open tasks and encounters.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::fhir::model::Observation;
use crate::tui::action::Action;
use crate::tui::command::{ChartData, Command, Section};
use crate::tui::panes::results::{flag_for, flag_style};
use crate::tui::panes::{
    AllergyStatus, NO_ALLERGIES_RECORDED, Pane, PaneId, View, allergy_status, chart_frame,
    parse_fhir_date, short_datetime, wrap_line,
};
use crate::tui::theme::Theme;

/// Abnormal results this recent are listed on the cover sheet.
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

fn section_lines<T>(
    section: &Section<T>,
    empty: &str,
    theme: &Theme,
    mut line: impl FnMut(&T) -> Line<'static>,
) -> Vec<Line<'static>> {
    match section {
        Err(e) => vec![Line::from(Span::styled(
            format!("  not available: {e}"),
            theme.link_warn,
        ))],
        Ok(items) if items.is_empty() => {
            vec![Line::from(Span::styled(format!("  {empty}"), theme.dim))]
        }
        Ok(items) => items.iter().map(&mut line).collect(),
    }
}

/// Newest observation of each code, in first-seen order (the server sorted by date).
pub fn latest_by_code(obs: &[Observation]) -> Vec<&Observation> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out: Vec<&Observation> = Vec::new();
    for o in obs {
        let key = o.code.as_ref().map(|c| c.key()).unwrap_or_default();
        match seen.get(&key) {
            Some(&i) => {
                let newer =
                    o.when().and_then(parse_fhir_date) > out[i].when().and_then(parse_fhir_date);
                if newer {
                    out[i] = o;
                }
            }
            None => {
                seen.insert(key, out.len());
                out.push(o);
            }
        }
    }
    out
}

fn obs_line(o: &Observation, theme: &Theme, with_flag: bool) -> Line<'static> {
    let name = o
        .code
        .as_ref()
        .and_then(|c| c.label())
        .unwrap_or("(unnamed)")
        .to_string();
    let mut spans = vec![
        Span::raw(format!("  {name}: ")),
        Span::styled(
            format!("{} {}", o.value_label(), o.unit()),
            Style::default(),
        ),
    ];
    if with_flag && let Some(f) = flag_for(o) {
        spans.push(Span::styled(format!(" {f}"), flag_style(&f, theme)));
    }
    if let Some(w) = o.when() {
        spans.push(Span::styled(format!("  {}", short_datetime(w)), theme.dim));
    }
    Line::from(spans)
}

/// Labs flagged abnormal within the window, newest first.
pub fn recent_abnormal(chart: &ChartData, now: DateTime<Utc>) -> Vec<&Observation> {
    let since = now - Duration::days(ABNORMAL_WINDOW_DAYS);
    match &chart.labs {
        Ok(labs) => labs
            .iter()
            .filter(|o| flag_for(o).is_some())
            .filter(|o| {
                o.when()
                    .and_then(parse_fhir_date)
                    .is_some_and(|t| t >= since)
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn left_column(chart: &ChartData, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = vec![heading("ALLERGIES", theme)];
    let status = chart.allergies.as_ref().map(|l| allergy_status(l));
    match status {
        Ok(AllergyStatus::NoneRecorded) => lines.push(Line::from(Span::styled(
            format!("  {NO_ALLERGIES_RECORDED}"),
            theme.dim,
        ))),
        Ok(AllergyStatus::NoKnown(words)) => lines.extend(
            words
                .into_iter()
                .map(|w| Line::from(Span::styled(format!("  {w}"), theme.base))),
        ),
        Ok(AllergyStatus::Listed(list)) => lines.extend(list.into_iter().map(|a| {
            let name = a
                .code
                .as_ref()
                .and_then(|c| c.label())
                .unwrap_or("(unnamed)");
            let reactions: Vec<&str> = a
                .reaction
                .iter()
                .flat_map(|r| r.manifestation.iter().filter_map(|m| m.label()))
                .collect();
            let mut text = format!("  ! {name}");
            if !reactions.is_empty() {
                text.push_str(&format!(" — {}", reactions.join(", ")));
            }
            if let Some(c) = &a.criticality {
                text.push_str(&format!(" [{c}]"));
            }
            if a.is_inactive() {
                text.push_str(" (inactive)");
            }
            Line::from(Span::styled(text, theme.allergy))
        })),
        Err(e) => lines.push(Line::from(Span::styled(
            format!("  not available: {e}"),
            theme.link_warn,
        ))),
    }
    lines.push(Line::default());
    lines.push(heading("ACTIVE PROBLEMS", theme));
    lines.extend(section_lines(
        &chart.conditions,
        "None recorded",
        theme,
        |c| {
            let name = c
                .code
                .as_ref()
                .and_then(|c| c.label())
                .unwrap_or("(unnamed)");
            let since = c
                .onset_date_time
                .as_deref()
                .or(c.recorded_date.as_deref())
                .map(|d| format!("  since {}", &d.chars().take(10).collect::<String>()))
                .unwrap_or_default();
            Line::from(vec![
                Span::raw(format!("  {name}")),
                Span::styled(since, theme.dim),
            ])
        },
    ));
    lines.push(Line::default());
    lines.push(heading("ACTIVE MEDICATIONS", theme));
    lines.extend(section_lines(
        &chart.medications,
        "None recorded",
        theme,
        |m| {
            let mut spans = vec![Span::raw(format!("  {}", m.medication_label()))];
            if let Some(d) = m.dose_label() {
                spans.push(Span::styled(format!(" — {d}"), theme.dim));
            }
            Line::from(spans)
        },
    ));
    lines
}

fn right_column(chart: &ChartData, now: DateTime<Utc>, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = vec![heading("LATEST VITALS", theme)];
    match &chart.vitals {
        Ok(v) if !v.is_empty() => lines.extend(
            latest_by_code(v)
                .into_iter()
                .map(|o| obs_line(o, theme, true)),
        ),
        other => lines.extend(section_lines(
            &other.clone().map(|_| Vec::<()>::new()),
            "None recorded",
            theme,
            |_| Line::default(),
        )),
    }
    lines.push(Line::default());
    lines.push(heading("ABNORMAL RESULTS (LAST 30 DAYS)", theme));
    match &chart.labs {
        Ok(_) => {
            let abnormal = recent_abnormal(chart, now);
            if abnormal.is_empty() {
                lines.push(Line::from(Span::styled("  None", theme.dim)));
            }
            lines.extend(abnormal.into_iter().map(|o| obs_line(o, theme, true)));
        }
        Err(e) => lines.push(Line::from(Span::styled(
            format!("  not available: {e}"),
            theme.link_warn,
        ))),
    }
    lines.push(Line::default());
    lines.push(heading("OPEN TASKS", theme));
    let open_tasks = chart
        .tasks
        .clone()
        .map(|t| t.into_iter().filter(|t| t.is_open()).collect::<Vec<_>>());
    lines.extend(section_lines(&open_tasks, "None", theme, |t| {
        let overdue = t.due().and_then(parse_fhir_date).is_some_and(|d| d < now);
        let due = t
            .due()
            .map(|d| format!(" due {}", short_datetime(d)))
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
    }));
    lines.push(Line::default());
    lines.push(heading("RECENT ENCOUNTERS", theme));
    lines.extend(section_lines(
        &chart.encounters,
        "None recorded",
        theme,
        |e| {
            let when = e
                .period
                .as_ref()
                .and_then(|p| p.start.as_deref())
                .map(short_datetime)
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
            Line::from(vec![
                Span::styled(format!("  {when} "), theme.dim),
                Span::raw(format!("{what}{why}")),
            ])
        },
    ));
    lines
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

    fn update(&mut self, action: Action, _view: &View) -> Vec<Command> {
        match action {
            Action::MoveDown => self.scroll = self.scroll.saturating_add(1).min(self.max_scroll),
            Action::MoveUp => self.scroll = self.scroll.saturating_sub(1),
            Action::PageDown => self.scroll = self.scroll.saturating_add(10).min(self.max_scroll),
            Action::PageUp => self.scroll = self.scroll.saturating_sub(10),
            Action::GoTop => self.scroll = 0,
            Action::GoBottom => self.scroll = self.max_scroll,
            Action::Refresh => return vec![Command::ReloadChart],
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
        let left = left_column(chart, view.theme);
        let right = right_column(chart, view.now, view.theme);
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
        let view = View {
            chart: None,
            now: Utc::now(),
            theme: &theme,
            focused: true,
        };
        for _ in 0..10 {
            pane.update(Action::MoveDown, &view);
        }
        assert_eq!(pane.scroll, 3);
    }
}
