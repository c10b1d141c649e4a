//! The popup slot: whatever is drawn over the panes takes the keys first.
//! Help and the palette are generated from the live keymap.

use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph};

use crate::tui::action::Action;
use crate::tui::keymap::{Context, Key, Keymap};
use crate::tui::keys::key_label;
use crate::tui::theme::Theme;

/// What a popup did with a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopupOutcome {
    Consumed,
    Close,
    Run(Action),
}

pub fn keys_label(keys: &[Key]) -> String {
    keys.iter()
        .map(|k| key_label(k.code, k.mods))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Centered rectangle of at most `w` x `h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

#[derive(Debug, Clone)]
pub struct HelpView {
    pub context: Context,
    scroll: u16,
}

impl HelpView {
    pub fn new(context: Context) -> Self {
        HelpView { context, scroll: 0 }
    }

    pub fn handle_key(&mut self, key: KeyEvent) -> PopupOutcome {
        match key.code {
            KeyCode::Esc | KeyCode::Char('q') | KeyCode::Char('?') | KeyCode::Enter => {
                PopupOutcome::Close
            }
            KeyCode::Down | KeyCode::Char('j') => {
                self.scroll = self.scroll.saturating_add(1);
                PopupOutcome::Consumed
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.scroll = self.scroll.saturating_sub(1);
                PopupOutcome::Consumed
            }
            _ => PopupOutcome::Consumed,
        }
    }

    /// The help text: the pane's keys, then the global ones, in file order.
    pub fn lines(&self, keymap: &Keymap, theme: &Theme) -> Vec<Line<'static>> {
        let mut lines = Vec::new();
        for (title, ctx) in [("This pane", self.context), ("Everywhere", Context::Global)] {
            lines.push(Line::from(Span::styled(title, theme.header)));
            let mut any = false;
            for b in keymap.bindings(ctx) {
                if b.action == Action::Noop {
                    continue;
                }
                any = true;
                lines.push(Line::from(vec![
                    Span::styled(format!("  {:<10}", keys_label(&b.keys)), theme.key_hint),
                    Span::raw(b.desc.clone()),
                ]));
            }
            if !any {
                lines.push(Line::from(Span::styled("  (no keys bound)", theme.dim)));
            }
            lines.push(Line::default());
        }
        lines
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, keymap: &Keymap, theme: &Theme) {
        let rect = centered(area, 70, area.height.saturating_sub(4).max(10));
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.focus_border)
            .title(Span::styled(" Keys (Esc closes) ", theme.title));
        frame.render_widget(
            Paragraph::new(self.lines(keymap, theme))
                .block(block)
                .scroll((self.scroll, 0)),
            rect,
        );
    }
}

#[derive(Debug, Clone, Default)]
pub struct PaletteView {
    pub query: String,
    selected: usize,
}

impl PaletteView {
    /// Actions whose name or description contains every word of the query.
    pub fn matches(&self) -> Vec<Action> {
        let words: Vec<String> = self
            .query
            .split_whitespace()
            .map(|w| w.to_lowercase())
            .collect();
        Action::ALL
            .iter()
            .copied()
            .filter(|a| *a != Action::Noop)
            .filter(|a| {
                let hay = format!("{} {}", a.name(), a.description()).to_lowercase();
                words.iter().all(|w| hay.contains(w.as_str()))
            })
            .collect()
    }

    pub fn handle_key(&mut self, key: KeyEvent) -> PopupOutcome {
        let plain = !key
            .modifiers
            .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT);
        match key.code {
            KeyCode::Esc => PopupOutcome::Close,
            KeyCode::Enter => match self.matches().get(self.selected) {
                Some(a) => PopupOutcome::Run(*a),
                None => PopupOutcome::Consumed,
            },
            KeyCode::Down => {
                self.selected = (self.selected + 1).min(self.matches().len().saturating_sub(1));
                PopupOutcome::Consumed
            }
            KeyCode::Up => {
                self.selected = self.selected.saturating_sub(1);
                PopupOutcome::Consumed
            }
            KeyCode::Backspace => {
                self.query.pop();
                self.selected = 0;
                PopupOutcome::Consumed
            }
            KeyCode::Char(c) if plain => {
                self.query.push(c);
                self.selected = 0;
                PopupOutcome::Consumed
            }
            _ => PopupOutcome::Consumed,
        }
    }

    pub fn render(
        &self,
        frame: &mut Frame,
        area: Rect,
        keymap: &Keymap,
        context: Context,
        theme: &Theme,
    ) {
        let rect = centered(area, 72, 16);
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_style(theme.focus_border)
            .title(Span::styled(" Run an action ", theme.title));
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [input, list] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(inner);
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(": ", theme.key_hint),
                Span::raw(self.query.clone()),
                Span::styled("▏", theme.focus_border),
            ])),
            input,
        );
        let items: Vec<ListItem> = self
            .matches()
            .into_iter()
            .map(|a| {
                let keys = keymap
                    .keys_for(context, a)
                    .first()
                    .map(|k| keys_label(k))
                    .unwrap_or_default();
                ListItem::new(Line::from(vec![
                    Span::raw(format!("{:<40}", a.description())),
                    Span::styled(keys, theme.key_hint),
                ]))
            })
            .collect();
        let mut state = ListState::default().with_selected(Some(self.selected));
        frame.render_stateful_widget(
            List::new(items).highlight_style(theme.selection),
            list,
            &mut state,
        );
    }
}

/// Candidates of a pending key sequence (which-key), drawn bottom right.
pub fn render_which_key(
    frame: &mut Frame,
    area: Rect,
    pending: &str,
    candidates: &[(String, String)],
    theme: &Theme,
) {
    let h = (candidates.len() as u16 + 2).min(area.height);
    let w = 48.min(area.width);
    let rect = Rect {
        x: area.x + area.width - w,
        y: area.y + area.height - h,
        width: w,
        height: h,
    };
    frame.render_widget(Clear, rect);
    let lines: Vec<Line> = candidates
        .iter()
        .map(|(k, d)| {
            Line::from(vec![
                Span::styled(format!("{k:<8}"), theme.key_hint),
                Span::raw(d.clone()),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.focus_border)
                .title(Span::styled(
                    format!(" {pending} … (Esc cancels) "),
                    theme.title,
                )),
        ),
        rect,
    );
}

/// Asks before quitting with unsaved work.
pub fn render_confirm_quit(frame: &mut Frame, area: Rect, theme: &Theme) {
    let rect = centered(area, 50, 5);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from("There is unsaved work."),
            Line::from(Span::styled("Quit anyway? y / n", theme.alert_critical)),
        ])
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.alert_critical),
        ),
        rect,
    );
}
