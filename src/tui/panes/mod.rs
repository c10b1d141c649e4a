//! The panes. Each turns actions into [`Command`]s and draws itself; none does
//! I/O. Shared data (the open chart, the clock, the reading preferences)
//! comes in through [`View`]; replies meant for a pane come in through
//! [`Pane::on_reply`].

pub mod editor;
pub mod notes;
pub mod results;
pub mod search;
pub mod summary;
pub mod tasks;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders};

use crate::chart::ChartData;
use crate::fhir::model::Deceased;
use crate::fhir::time;
use crate::tui::action::Action;
use crate::tui::command::{Command, PaneReply};
use crate::tui::keymap::Context;
use crate::tui::theme::Theme;

/// The panes, written once: their ids, titles, keymap sections and the
/// struct that holds them all.
macro_rules! panes {
    ($($variant:ident($field:ident: $ty:ty) = $title:literal, $context:ident;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum PaneId {
            $($variant,)+
        }

        impl PaneId {
            pub const ALL: [PaneId; [$(PaneId::$variant),+].len()] = [$(PaneId::$variant),+];

            pub fn title(self) -> &'static str {
                match self {
                    $(PaneId::$variant => $title,)+
                }
            }

            pub fn context(self) -> Context {
                match self {
                    $(PaneId::$variant => Context::$context,)+
                }
            }
        }

        /// Every pane's state, owned by the app.
        #[derive(Default)]
        pub struct Panes {
            $(pub $field: $ty,)+
        }

        impl Panes {
            pub fn get(&self, id: PaneId) -> &dyn Pane {
                match id {
                    $(PaneId::$variant => &self.$field,)+
                }
            }

            pub fn get_mut(&mut self, id: PaneId) -> &mut dyn Pane {
                match id {
                    $(PaneId::$variant => &mut self.$field,)+
                }
            }
        }
    };
}

panes! {
    Search(search: search::SearchPane) = "Search", Search;
    Summary(summary: summary::SummaryPane) = "Summary", Summary;
    Results(results: results::ResultsPane) = "Results", Results;
    Notes(notes: notes::NotesPane) = "Notes", Notes;
    Tasks(tasks: tasks::TasksPane) = "Tasks", Tasks;
    Editor(editor: editor::EditorPane) = "Note", Editor;
}

impl PaneId {
    pub fn index(self) -> usize {
        PaneId::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    pub fn next(self) -> PaneId {
        PaneId::ALL[(self.index() + 1) % PaneId::ALL.len()]
    }

    pub fn prev(self) -> PaneId {
        PaneId::ALL[(self.index() + PaneId::ALL.len() - 1) % PaneId::ALL.len()]
    }
}

/// How the clinician wants the chart read (from the settings).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prefs {
    pub tz: Tz,
    /// A latest vital sign older than this is shown with its age.
    pub stale_vitals: Duration,
    /// A latest result older than this is shown with its age.
    pub stale_results: Duration,
}

impl Default for Prefs {
    fn default() -> Self {
        Prefs {
            tz: Tz::UTC,
            stale_vitals: Duration::days(30),
            stale_results: Duration::days(90),
        }
    }
}

impl Prefs {
    /// After how long a latest value of this kind is shown with its age.
    pub fn stale_after(&self, kind: crate::chart::results::Kind) -> Option<Duration> {
        Some(match kind {
            crate::chart::results::Kind::Vital => self.stale_vitals,
            crate::chart::results::Kind::Lab => self.stale_results,
        })
    }
}

/// What writing notes needs beyond the session: the templates and phrases
/// loaded, and who the server says the signed-in user is.
#[derive(Debug, Clone, Default)]
pub struct NotesEnv {
    pub templates: crate::notes::TemplateSet,
    pub phrases: crate::notes::Phrases,
    /// `Practitioner/<id>` of the signed-in user, where the server says.
    pub practitioner: Option<String>,
}

/// What a pane may read while it updates or draws.
pub struct View<'a> {
    pub chart: Option<&'a ChartData>,
    pub now: DateTime<Utc>,
    /// Monotonic time, for waits (autosave).
    pub instant: std::time::Instant,
    pub theme: &'a Theme,
    pub prefs: &'a Prefs,
    pub notes: &'a NotesEnv,
    /// The signed-in user (a note's author) and role, as the session has them.
    pub user: Option<&'a str>,
    pub role: Option<crate::roles::Role>,
    /// How this site's record numbers read.
    pub records: &'a crate::chart::RecordNumber,
    /// Time on the open message's patient's messages (tasks pane).
    pub work: Option<&'a tasks::WorkSummary>,
    pub focused: bool,
}

impl View<'_> {
    /// A FHIR date or date-time as the clinician reads it.
    pub fn when(&self, s: &str) -> String {
        crate::chart::timefmt::when(s, self.prefs.tz)
    }

    pub fn date(&self, s: &str) -> String {
        crate::chart::timefmt::date(s, self.prefs.tz)
    }
}

/// One pane: keymap context, actions, text, replies, drawing.
pub trait Pane {
    fn id(&self) -> PaneId;

    /// A text input has focus: keys go through this keymap section (which
    /// never falls through to `[global]`), unbound printable keys are
    /// typed ([`Pane::insert_text`]) and other unbound keys handed over raw
    /// ([`Pane::raw_key`]).
    fn input_context(&self) -> Option<Context> {
        None
    }

    /// Typed or pasted text for the focused text input.
    fn insert_text(&mut self, _text: &str, _view: &View) -> Vec<Command> {
        Vec::new()
    }

    /// A key the input's keymap section does not bind (arrows, Enter,
    /// Backspace in an editor).
    fn raw_key(&mut self, _key: ratatui::crossterm::event::KeyEvent, _view: &View) -> Vec<Command> {
        Vec::new()
    }

    /// Time passed (autosave).
    fn on_tick(&mut self, _view: &View) -> Vec<Command> {
        Vec::new()
    }

    fn update(&mut self, action: Action, view: &View) -> Vec<Command>;

    /// A reply the app routed to this pane.
    fn on_reply(&mut self, _reply: PaneReply, _view: &View) -> Vec<Command> {
        Vec::new()
    }

    fn render(&mut self, frame: &mut Frame, area: Rect, view: &View);

    /// Actions worth a hint in the status bar when this pane has focus.
    fn hint_actions(&self) -> &'static [Action] {
        &[Action::MoveDown, Action::Open]
    }

    /// Work that would be lost on quit (note drafts, later).
    fn unsaved(&self) -> bool {
        false
    }
}

/// The frame every pane draws in.
pub fn pane_block<'a>(title: &'a str, view: &View) -> Block<'a> {
    let border = if view.focused {
        view.theme.focus_border
    } else {
        view.theme.border
    };
    Block::default()
        .borders(Borders::ALL)
        .border_set(view.theme.border_set(view.focused))
        .border_style(border)
        .title(Span::styled(format!(" {title} "), view.theme.title))
}

/// Age as charts print it: years, or months / days for infants.
pub fn age(birth_date: &str, now: DateTime<Utc>) -> Option<String> {
    let born = time::instant(birth_date)?.date_naive();
    let today = now.date_naive();
    if born > today {
        return None;
    }
    let years = today.years_since(born)?;
    if years >= 2 {
        return Some(format!("{years}y"));
    }
    use chrono::Datelike;
    let months = (today.year() - born.year()) * 12 + today.month() as i32
        - born.month() as i32
        - i32::from(today.day() < born.day());
    if months >= 1 {
        Some(format!("{months}mo"))
    } else {
        Some(format!("{}d", (today - born).num_days()))
    }
}

/// Age as a chart shows it: the living age, or for a patient who died the
/// death date and the age at death (`† died 1989-05-09 at 63y`).
pub fn life_label(
    birth_date: Option<&str>,
    deceased: Option<&Deceased>,
    now: DateTime<Utc>,
) -> String {
    match deceased {
        None => birth_date
            .and_then(|b| age(b, now))
            .unwrap_or_else(|| "age ?".into()),
        Some(Deceased::Yes) => "† deceased".into(),
        Some(Deceased::On(d)) => {
            let at = time::instant(d)
                .zip(birth_date)
                .and_then(|(died, b)| age(b, died))
                .map(|a| format!(" at {a}"))
                .unwrap_or_default();
            format!("† died {}{at}", d.chars().take(10).collect::<String>())
        }
    }
}

/// The short age column of a list: `63y`, or `†63y` (age at death).
pub fn age_cell(birth_date: &str, deceased: Option<&Deceased>, now: DateTime<Utc>) -> String {
    match deceased {
        None => age(birth_date, now).unwrap_or_default(),
        Some(Deceased::Yes) => "†".into(),
        Some(Deceased::On(d)) => {
            let at = time::instant(d)
                .and_then(|died| age(birth_date, died))
                .unwrap_or_default();
            format!("†{at}")
        }
    }
}

/// Display width of a character in terminal cells (ratatui's unicode-width).
fn char_width(c: char) -> usize {
    let mut buf = [0u8; 4];
    Span::raw(&*c.encode_utf8(&mut buf)).width()
}

/// Cut `s` to `width` terminal cells, ending in "…" when anything was cut,
/// so a truncated value never passes for a whole one.
pub fn fit(s: &str, width: usize) -> String {
    if Span::raw(s).width() <= width {
        return s.to_string();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in s.chars() {
        let w = char_width(c);
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// [`fit`] for a line of styled spans: the span that overflows is cut and
/// marked, the rest dropped.
pub fn fit_line(line: Line<'static>, width: usize) -> Line<'static> {
    if line.width() <= width {
        return line;
    }
    let mut used = 0;
    let mut spans = Vec::new();
    for span in line.spans {
        let w = span.width();
        if used + w < width {
            used += w;
            spans.push(span);
        } else {
            let cut = fit(&span.content, width - used);
            spans.push(Span::styled(cut, span.style));
            break;
        }
    }
    Line::from(spans).style(line.style)
}

/// Break a line of styled spans into rows of at most `width` cells, at a
/// space where there is one; continuation rows are indented by `indent`.
/// Wrapping here (rather than in the Paragraph) lets a pane count its rows.
pub fn wrap_line(line: Line<'static>, width: usize, indent: usize) -> Vec<Line<'static>> {
    if line.width() <= width || width <= indent + 1 {
        return vec![line];
    }
    let cells: Vec<(char, Style)> = line
        .spans
        .iter()
        .flat_map(|s| s.content.chars().map(move |c| (c, s.style)))
        .collect();
    let mut rows = Vec::new();
    let mut start = 0;
    let mut first = true;
    while start < cells.len() {
        let room = if first { width } else { width - indent };
        // Furthest end that fits.
        let mut end = start;
        let mut used = 0;
        while end < cells.len() && used + char_width(cells[end].0) <= room {
            used += char_width(cells[end].0);
            end += 1;
        }
        if end < cells.len()
            && cells[end].0 != ' '
            && let Some(space) = (start + 1..end).rev().find(|&i| cells[i].0 == ' ')
        {
            end = space + 1;
        }
        if end == start {
            end = start + 1;
        }
        let mut stop = end;
        while stop > start && cells[stop - 1].0 == ' ' {
            stop -= 1;
        }
        let mut spans: Vec<Span<'static>> = Vec::new();
        if !first {
            spans.push(Span::raw(" ".repeat(indent)));
        }
        // The indent is a span of its own; text never merges into it.
        let fixed = spans.len();
        for &(c, style) in &cells[start..stop] {
            let len = spans.len();
            match spans.last_mut() {
                Some(last) if len > fixed && last.style == style => last.content.to_mut().push(c),
                _ => spans.push(Span::styled(c.to_string(), style)),
            }
        }
        rows.push(Line::from(spans).style(line.style));
        start = end;
        first = false;
        // A break at a space: the next row does not start with it.
        while start < cells.len() && cells[start].0 == ' ' {
            start += 1;
        }
    }
    rows
}

/// The widths a [`ratatui::widgets::Table`] gives its columns (default
/// flex and one cell of spacing), so cells can be cut visibly beforehand.
pub fn table_column_widths(width: u16, selection: u16, widths: &[Constraint]) -> Vec<usize> {
    let columns = Rect::new(0, 0, width.saturating_sub(selection), 1);
    Layout::horizontal(widths.iter().copied())
        .flex(ratatui::layout::Flex::Start)
        .spacing(1)
        .split(columns)
        .iter()
        .map(|r| r.width as usize)
        .collect()
}

/// Keep a selection inside `len` rows.
pub fn clamp_selection(selected: usize, len: usize) -> usize {
    if len == 0 { 0 } else { selected.min(len - 1) }
}

/// Move a selection for a navigation action; `None` for other actions.
pub fn navigate(action: Action, selected: usize, len: usize, page: usize) -> Option<usize> {
    let last = len.saturating_sub(1);
    let page = page.max(1);
    Some(match action {
        Action::MoveDown => (selected + 1).min(last),
        Action::MoveUp => selected.saturating_sub(1),
        Action::PageDown => (selected + page).min(last),
        Action::PageUp => selected.saturating_sub(page),
        Action::GoTop => 0,
        Action::GoBottom => last,
        _ => return None,
    })
}

/// A message row for a pane with nothing to show.
/// Draw a chart pane's frame; the inner area and the open chart, or `None`
/// once it has said that no chart is open.
pub fn chart_frame<'v>(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    view: &View<'v>,
) -> Option<(Rect, &'v ChartData)> {
    let block = pane_block(title, view);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    match view.chart {
        Some(chart) => Some((inner, chart)),
        None => {
            frame.render_widget(
                placeholder(
                    view.theme.dim,
                    "No chart open. Find a patient with / and Enter.",
                ),
                inner,
            );
            None
        }
    }
}

pub fn placeholder(style: Style, text: &str) -> ratatui::widgets::Paragraph<'_> {
    ratatui::widgets::Paragraph::new(Span::styled(text, style))
        .wrap(ratatui::widgets::Wrap { trim: true })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ages() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        assert_eq!(age("1984-03-02", now).as_deref(), Some("42y"));
        assert_eq!(age("1984-12-02", now).as_deref(), Some("41y"));
        assert_eq!(age("2026-02-10", now).as_deref(), Some("9mo"));
        assert_eq!(age("2026-11-20", now).as_deref(), Some("3d"));
        assert_eq!(age("2030-01-01", now), None);
    }

    #[test]
    fn an_age_turns_over_at_local_midnight() {
        use crate::chart::timefmt::{parse_zone, wall_clock};
        use chrono_tz::Tz;
        let chicago: Tz = parse_zone("America/Chicago").unwrap();
        // 02:00 UTC on the birthday is still the evening before in Chicago.
        let now: DateTime<Utc> = "2026-05-14T02:00:00Z".parse().unwrap();
        assert_eq!(age("1971-05-14", now).as_deref(), Some("55y"));
        assert_eq!(
            age("1971-05-14", wall_clock(now, chicago)).as_deref(),
            Some("54y")
        );
    }

    #[test]
    fn the_dead_are_not_given_a_living_age() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let died = Deceased::On("1989-05-09T10:00:00Z".into());
        assert_eq!(life_label(Some("1926-01-01"), None, now), "100y");
        assert_eq!(
            life_label(Some("1926-01-01"), Some(&died), now),
            "† died 1989-05-09 at 63y"
        );
        assert_eq!(
            life_label(Some("1926-01-01"), Some(&Deceased::Yes), now),
            "† deceased"
        );
        assert_eq!(age_cell("1926-01-01", Some(&died), now), "†63y");
        assert_eq!(age_cell("1926-01-01", None, now), "100y");
    }

    #[test]
    fn a_cut_is_marked() {
        assert_eq!(fit("0123456789", 10), "0123456789");
        assert_eq!(fit("0123456789", 6), "01234…");
        assert_eq!(fit("(7070224 Smith", 8), "(707022…");
        assert_eq!(fit("abc", 0), "");
        // Wide characters count two cells.
        assert_eq!(fit("日本語テキスト", 7), "日本語…");
        assert_eq!(Span::raw(fit("日本語テキスト", 6)).width(), 5);
    }

    #[test]
    fn a_cut_line_keeps_its_styles_and_is_marked() {
        let line = Line::from(vec![
            Span::raw("  Lisinopril 10 MG"),
            Span::styled(" — one tablet by mouth daily", Style::default()),
        ]);
        let cut = fit_line(line.clone(), 30);
        assert_eq!(cut.width(), 30);
        assert_eq!(cut.spans.len(), 2);
        assert!(cut.spans[1].content.ends_with('…'));
        assert_eq!(fit_line(line.clone(), 80), line);
    }

    #[test]
    fn long_lines_wrap_at_spaces_with_an_indent() {
        let line = Line::from(vec![
            Span::raw("  INR in plasma: "),
            Span::styled("2.4 INR H", Style::default().fg(ratatui::style::Color::Red)),
            Span::raw("  2026-11-06"),
        ]);
        let rows = wrap_line(line, 20, 4);
        let text: Vec<String> = rows
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        assert_eq!(
            text,
            ["  INR in plasma: 2.4", "    INR H", "    2026-11-06"]
        );
        assert!(rows.iter().all(|l| l.width() <= 20));
        // The flag keeps its colour on the next row.
        assert!(
            rows[1]
                .spans
                .iter()
                .any(|s| s.content.contains('H') && s.style.fg.is_some())
        );
        let word = wrap_line(Line::from("abcdefghijklmnopqrstuvwxyz"), 10, 2);
        assert_eq!(word.len(), 3);
        assert!(word.iter().all(|l| l.width() <= 10));
    }

    #[test]
    fn column_widths_follow_the_table() {
        let w = table_column_widths(
            80,
            2,
            &[
                Constraint::Fill(1),
                Constraint::Length(3),
                Constraint::Length(14),
            ],
        );
        assert_eq!(w, vec![59, 3, 14]);
    }

    #[test]
    fn pane_cycle() {
        assert_eq!(PaneId::Tasks.next(), PaneId::Editor);
        assert_eq!(PaneId::Editor.next(), PaneId::Search);
        assert_eq!(PaneId::Search.prev(), PaneId::Editor);
    }
}
