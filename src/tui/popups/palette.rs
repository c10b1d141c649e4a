//! The command palette: fuzzy search over every action by name and
//! description, showing the keys that run it in the focused pane.

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::{PopupOutcome, centered, truncate, width};
use crate::tui::action::Action;
use crate::tui::keymap::{Context, Keymap, display_sequence};
use crate::tui::theme::Theme;

/// Rows of results the palette shows at most.
const MAX_ROWS: u16 = 12;

pub struct Palette {
    query: String,
    /// Matching actions, best first; every action (but `noop`) when the query is empty.
    matches: Vec<Action>,
    /// For each match, the matched character positions in its [`haystack`].
    hits: Vec<Vec<u32>>,
    selected: usize,
    /// First row in view.
    offset: usize,
    matcher: Matcher,
}

impl std::fmt::Debug for Palette {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Palette")
            .field("query", &self.query)
            .field("matches", &self.matches)
            .field("selected", &self.selected)
            .finish_non_exhaustive()
    }
}

impl Default for Palette {
    fn default() -> Self {
        Palette::new()
    }
}

/// What the palette searches for an action: its name with spaces, and its description.
fn haystack(action: Action) -> String {
    format!(
        "{} {}",
        action.name().replace('_', " "),
        action.description()
    )
}

impl Palette {
    pub fn new() -> Palette {
        let mut p = Palette {
            query: String::new(),
            matches: Vec::new(),
            hits: Vec::new(),
            selected: 0,
            offset: 0,
            matcher: Matcher::new(Config::DEFAULT),
        };
        p.refilter();
        p
    }

    pub fn query(&self) -> &str {
        &self.query
    }

    /// Matching actions, best first.
    pub fn matches(&self) -> &[Action] {
        &self.matches
    }

    pub fn selected(&self) -> Option<Action> {
        self.matches.get(self.selected).copied()
    }

    fn refilter(&mut self) {
        let candidates = Action::ALL.iter().copied().filter(|a| *a != Action::Noop);
        if self.query.trim().is_empty() {
            self.matches = candidates.collect();
            self.hits = vec![Vec::new(); self.matches.len()];
        } else {
            let pattern = Pattern::parse(&self.query, CaseMatching::Ignore, Normalization::Smart);
            let mut buf = Vec::new();
            let mut scored: Vec<(Action, u32, usize, Vec<u32>)> = candidates
                .enumerate()
                .filter_map(|(i, a)| {
                    let hay = haystack(a);
                    let mut idx = Vec::new();
                    let score = pattern.indices(
                        Utf32Str::new(&hay, &mut buf),
                        &mut self.matcher,
                        &mut idx,
                    )?;
                    idx.sort_unstable();
                    idx.dedup();
                    Some((a, score, i, idx))
                })
                .collect();
            // Best score first; ties keep the order of the action list.
            scored.sort_by(|x, y| y.1.cmp(&x.1).then(x.2.cmp(&y.2)));
            (self.matches, self.hits) = scored.into_iter().map(|(a, _, _, h)| (a, h)).unzip();
        }
        self.selected = 0;
        self.offset = 0;
    }

    fn move_selection(&mut self, down: bool) {
        let n = self.matches.len();
        if n == 0 {
            return;
        }
        self.selected = if down {
            (self.selected + 1) % n
        } else {
            (self.selected + n - 1) % n
        };
        let rows = MAX_ROWS as usize;
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if self.selected >= self.offset + rows {
            self.offset = self.selected + 1 - rows;
        }
    }

    pub fn update(&mut self, action: Action) -> PopupOutcome {
        match action {
            Action::Cancel | Action::CommandPalette => return PopupOutcome::Close,
            Action::Open => {
                return match self.selected() {
                    Some(action) => PopupOutcome::Run(action),
                    None => PopupOutcome::Consumed,
                };
            }
            Action::MoveUp => self.move_selection(false),
            Action::MoveDown => self.move_selection(true),
            Action::ClearInput => {
                self.query.clear();
                self.refilter();
            }
            Action::DeleteBack if self.query.pop().is_some() => self.refilter(),
            Action::DeleteWord => {
                super::delete_word(&mut self.query);
                self.refilter();
            }
            _ => {}
        }
        PopupOutcome::Consumed
    }

    /// Typed or pasted text joins the query.
    pub fn insert_text(&mut self, text: &str) {
        self.query.extend(text.chars().filter(|c| !c.is_control()));
        self.refilter();
    }
}

impl super::Layer for Palette {
    fn context(&self) -> Context {
        Context::Palette
    }

    fn update(&mut self, action: Action) -> PopupOutcome {
        Palette::update(self, action)
    }

    fn insert_text(&mut self, text: &str) -> PopupOutcome {
        Palette::insert_text(self, text);
        PopupOutcome::Consumed
    }

    fn render(&self, frame: &mut Frame, area: Rect, view: &super::LayerView) {
        self.draw(frame, area, view.keymap, view.theme, view.pane);
    }
}

impl Palette {
    pub fn draw(
        &self,
        frame: &mut Frame,
        area: Rect,
        keymap: &Keymap,
        theme: &Theme,
        context: Context,
    ) {
        let rows = (self.matches.len() as u16).clamp(1, MAX_ROWS);
        // Anchored near the top so the list grows downwards as it fills.
        let mut box_area = centered(area, 72, rows + 4);
        box_area.y =
            area.y + (area.height.saturating_sub(MAX_ROWS + 4) / 3).min(box_area.y - area.y);
        let inner_width = box_area.width.saturating_sub(2) as usize;
        let visible = box_area.height.saturating_sub(4) as usize;

        let mut lines = vec![
            Line::from(vec![
                Span::styled("> ", theme.key_hint),
                Span::styled(
                    truncate(&self.query, inner_width.saturating_sub(3)),
                    theme.base,
                ),
                Span::styled(theme.mark("▏", "_"), theme.dim),
            ]),
            Line::from(Span::styled(
                theme.mark("─", "-").repeat(inner_width),
                theme.border,
            )),
        ];
        if self.matches.is_empty() {
            lines.push(Line::from(Span::styled(" no action matches", theme.dim)));
        }
        let name_col = 16;
        for (i, action) in self
            .matches
            .iter()
            .enumerate()
            .skip(self.offset)
            .take(visible)
        {
            let keys = keymap
                .keys_for(context, *action)
                .iter()
                .map(|k| display_sequence(k))
                .collect::<Vec<_>>()
                .join(", ");
            let keys = truncate(&keys, 16);
            let name = truncate(action.name(), name_col);
            let desc_width = inner_width.saturating_sub(name_col + width(&keys) + 4);
            let desc = truncate(action.description(), desc_width);
            let gap = inner_width
                .saturating_sub(1 + name_col + 1 + width(&desc) + width(&keys) + 1)
                .max(1);
            let style = |s| {
                if i == self.selected {
                    theme.selection
                } else {
                    s
                }
            };
            let hits = self.hits.get(i).map(Vec::as_slice).unwrap_or(&[]);
            let name_len = action.name().chars().count() as u32;
            let mut spans = vec![Span::styled(
                if i == self.selected {
                    theme.mark("▶", ">")
                } else {
                    " "
                },
                style(theme.base),
            )];
            let pad = name_col.saturating_sub(width(&name)) + 1;
            spans.extend(highlighted(
                &name,
                0,
                hits,
                style(theme.title),
                theme.match_highlight,
            ));
            spans.push(Span::styled(" ".repeat(pad), style(theme.base)));
            spans.extend(highlighted(
                &desc,
                name_len + 1,
                hits,
                style(theme.base),
                theme.match_highlight,
            ));
            spans.push(Span::styled(" ".repeat(gap), style(theme.base)));
            spans.push(Span::styled(keys, style(theme.key_hint)));
            spans.push(Span::styled(" ", style(theme.base)));
            lines.push(Line::from(spans));
        }

        let block = Block::bordered()
            .border_set(theme.border_set(false))
            .border_style(theme.focus_border)
            .style(theme.base)
            .title(Span::styled(" Run an action ", theme.title))
            .title_bottom(Line::from(vec![
                Span::styled(" ↑/↓", theme.key_hint),
                Span::styled(" select ", theme.dim),
                Span::styled("enter", theme.key_hint),
                Span::styled(" run ", theme.dim),
                Span::styled("esc", theme.key_hint),
                Span::styled(" close ", theme.dim),
            ]));
        frame.render_widget(Clear, box_area);
        frame.render_widget(Paragraph::new(lines).block(block), box_area);
    }
}

/// `text` as spans, the characters at `hits` (positions counted from
/// `offset` in the haystack) patched with `highlight`.
fn highlighted(
    text: &str,
    offset: u32,
    hits: &[u32],
    style: Style,
    highlight: Style,
) -> Vec<Span<'static>> {
    let mut spans: Vec<Span<'static>> = Vec::new();
    let mut run = String::new();
    let mut run_hit = false;
    for (i, c) in text.chars().enumerate() {
        let hit = hits.binary_search(&(offset + i as u32)).is_ok();
        if hit != run_hit && !run.is_empty() {
            let s = if run_hit {
                style.patch(highlight)
            } else {
                style
            };
            spans.push(Span::styled(std::mem::take(&mut run), s));
        }
        run_hit = hit;
        run.push(c);
    }
    if !run.is_empty() {
        let s = if run_hit {
            style.patch(highlight)
        } else {
            style
        };
        spans.push(Span::styled(run, s));
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use crate::tui::popups::press;

    fn type_str(p: &mut Palette, s: &str) {
        for c in s.chars() {
            let k = if c == ' ' {
                "<space>".to_string()
            } else {
                c.to_string()
            };
            assert_eq!(press(p, &k), PopupOutcome::Consumed);
        }
    }

    fn draw(p: &Palette, context: Context) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
        terminal
            .draw(|f| p.draw(f, f.area(), &Keymap::defaults(), &Theme::default(), context))
            .unwrap();
        terminal
    }

    #[test]
    fn empty_query_lists_every_action_but_noop() {
        let p = Palette::new();
        assert_eq!(p.matches().len(), Action::ALL.len() - 1);
        assert!(!p.matches().contains(&Action::Noop));
        assert_eq!(p.selected(), Some(Action::Quit));
    }

    #[test]
    fn fuzzy_query_finds_by_name_and_description() {
        let mut p = Palette::new();
        type_str(&mut p, "clspat");
        assert_eq!(p.selected(), Some(Action::ClosePatient));
        let mut p = Palette::new();
        type_str(&mut p, "labs");
        assert_eq!(p.selected(), Some(Action::PaneResults));
        let mut p = Palette::new();
        type_str(&mut p, "zzzzqqq");
        assert!(p.matches().is_empty());
        assert_eq!(press(&mut p, "<enter>"), PopupOutcome::Consumed);
    }

    #[test]
    fn enter_runs_the_selection_and_esc_closes() {
        let mut p = Palette::new();
        type_str(&mut p, "refresh");
        assert_eq!(press(&mut p, "<enter>"), PopupOutcome::Run(Action::Refresh));
        assert_eq!(press(&mut p, "<esc>"), PopupOutcome::Close);
    }

    #[test]
    fn arrows_move_the_selection_and_wrap() {
        let mut p = Palette::new();
        press(&mut p, "<down>");
        assert_eq!(p.selected(), Some(p.matches()[1]));
        press(&mut p, "<up>");
        press(&mut p, "<up>");
        assert_eq!(p.selected(), p.matches().last().copied());
        // Typing starts again from the best match.
        type_str(&mut p, "quit");
        assert_eq!(p.selected(), Some(Action::Quit));
    }

    #[test]
    fn backspace_and_ctrl_u_edit_the_query() {
        let mut p = Palette::new();
        type_str(&mut p, "gox");
        press(&mut p, "<bs>");
        assert_eq!(p.query(), "go");
        press(&mut p, "<c-u>");
        assert_eq!(p.query(), "");
        assert_eq!(p.matches().len(), Action::ALL.len() - 1);
    }

    #[test]
    fn shows_the_keys_of_the_focused_pane() {
        let mut p = Palette::new();
        type_str(&mut p, "back");
        let screen = format!("{}", draw(&p, Context::Results).backend());
        assert!(screen.contains("esc, backspace"), "{screen}");
    }

    #[test]
    fn matched_characters_are_highlighted() {
        use ratatui::style::Modifier;
        let bold = Style::default().add_modifier(Modifier::BOLD);
        let spans = highlighted("refresh", 0, &[0, 1, 5], Style::default(), bold);
        let parts: Vec<_> = spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(parts, ["re", "fre", "s", "h"]);
        assert!(spans[0].style.add_modifier.contains(Modifier::BOLD));
        assert!(!spans[1].style.add_modifier.contains(Modifier::BOLD));

        let mut p = Palette::new();
        type_str(&mut p, "clpat");
        let t = draw(&p, Context::Search);
        let buf = t.backend().buffer();
        let underlined = (0..buf.area.width)
            .filter(|x| buf[(*x, 5)].modifier.contains(Modifier::UNDERLINED))
            .count();
        assert_eq!(underlined, 5, "one highlighted cell per query character");
    }

    #[test]
    fn snapshot_empty_query_at_80x24() {
        insta::assert_snapshot!(draw(&Palette::new(), Context::Search).backend());
    }

    #[test]
    fn snapshot_query_go_at_80x24() {
        let mut p = Palette::new();
        type_str(&mut p, "go to");
        press(&mut p, "<down>");
        insta::assert_snapshot!(draw(&p, Context::Tasks).backend());
    }
}
