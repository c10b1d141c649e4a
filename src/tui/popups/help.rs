//! The help popup: the keys of the focused pane, then the global ones, from
//! the live keymap in file order.

use std::cell::Cell;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::{PopupOutcome, centered, truncate, width};
use crate::tui::action::Action;
use crate::tui::keymap::{Context, Keymap, display_sequence};
use crate::tui::theme::Theme;

/// One line of the help text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelpRow {
    Section(String),
    Keys { keys: String, desc: String },
    Blank,
}

#[derive(Debug, Default)]
pub struct HelpPopup {
    scroll: u16,
    /// The furthest scroll that still fills the box, as of the last render.
    max_scroll: Cell<u16>,
    /// Rows in view at the last render, for page moves.
    page: Cell<u16>,
}

impl HelpPopup {
    pub fn new() -> HelpPopup {
        HelpPopup::default()
    }

    pub fn scroll(&self) -> u16 {
        self.scroll
    }

    pub fn update(&mut self, action: Action) -> PopupOutcome {
        let page = self.page.get().max(1);
        let max = self.max_scroll.get();
        match action {
            Action::Cancel | Action::Help | Action::Quit => return PopupOutcome::Close,
            Action::MoveDown => self.scroll = self.scroll.saturating_add(1),
            Action::MoveUp => self.scroll = self.scroll.saturating_sub(1),
            Action::PageDown => self.scroll = self.scroll.saturating_add(page),
            Action::PageUp => self.scroll = self.scroll.saturating_sub(page),
            Action::GoTop => self.scroll = 0,
            Action::GoBottom => self.scroll = max,
            _ => {}
        }
        self.scroll = self.scroll.min(max);
        PopupOutcome::Consumed
    }
}

impl super::Layer for HelpPopup {
    fn context(&self) -> Context {
        Context::Viewer
    }

    fn update(&mut self, action: Action) -> PopupOutcome {
        HelpPopup::update(self, action)
    }

    fn render(&self, frame: &mut Frame, area: Rect, view: &super::LayerView) {
        self.draw(frame, area, view.keymap, view.theme, view.pane);
    }
}

impl HelpPopup {
    pub fn draw(
        &self,
        frame: &mut Frame,
        area: Rect,
        keymap: &Keymap,
        theme: &Theme,
        context: Context,
    ) {
        let rows = help_rows(keymap, context);
        let key_col = rows
            .iter()
            .map(|r| match r {
                HelpRow::Keys { keys, .. } => width(keys),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
            .min(24);
        let box_area = centered(area, 76, rows.len() as u16 + 2);
        let inner_width = box_area.width.saturating_sub(2) as usize;
        let inner_height = box_area.height.saturating_sub(2);
        let max_scroll = (rows.len() as u16).saturating_sub(inner_height);
        self.max_scroll.set(max_scroll);
        self.page.set(inner_height);
        let scroll = self.scroll.min(max_scroll);

        let lines: Vec<Line> = rows
            .iter()
            .skip(scroll as usize)
            .take(inner_height as usize)
            .map(|row| match row {
                HelpRow::Section(title) => Line::from(Span::styled(title.clone(), theme.header)),
                HelpRow::Blank => Line::default(),
                HelpRow::Keys { keys, desc } => {
                    let keys = truncate(keys, key_col);
                    let pad = key_col.saturating_sub(width(&keys)) + 2;
                    let desc_width = inner_width.saturating_sub(key_col + 3);
                    Line::from(vec![
                        Span::raw(" "),
                        Span::styled(keys, theme.key_hint),
                        Span::raw(" ".repeat(pad)),
                        Span::styled(truncate(desc, desc_width), theme.base),
                    ])
                }
            })
            .collect();

        let position = if max_scroll > 0 {
            format!(" {}/{} ", scroll + 1, max_scroll + 1)
        } else {
            String::new()
        };
        let block = Block::bordered()
            .border_set(theme.border_set(false))
            .border_style(theme.focus_border)
            .style(theme.base)
            .title(Span::styled(" Keys ", theme.title))
            .title_bottom(Line::from(vec![
                Span::styled(" esc", theme.key_hint),
                Span::styled(" close ", theme.dim),
                Span::styled("j/k", theme.key_hint),
                Span::styled(" scroll ", theme.dim),
                Span::styled(position, theme.dim),
            ]));
        frame.render_widget(Clear, box_area);
        frame.render_widget(Paragraph::new(lines).block(block), box_area);
    }
}

/// The help text: the pane's section, then global keys the pane does not
/// shadow. Bindings with the same action and description share a row.
pub fn help_rows(keymap: &Keymap, context: Context) -> Vec<HelpRow> {
    let mut out = Vec::new();
    let mut sections = Vec::new();
    if context != Context::Global {
        sections.push(context);
    }
    sections.push(Context::Global);
    // A global key the pane binds itself is listed under the pane only.
    let shadowed = |b: &crate::tui::keymap::Binding| {
        keymap.resolve(context, &b.keys) != Some(b.action)
            || keymap.bindings(context).any(|p| p.keys == b.keys)
    };
    for section in sections {
        let mut rows: Vec<(Vec<String>, Action, &str)> = Vec::new();
        for b in keymap.bindings(section) {
            if b.action == Action::Noop
                || (section == Context::Global && context != Context::Global && shadowed(b))
            {
                continue;
            }
            let keys = display_sequence(&b.keys);
            match rows
                .iter_mut()
                .find(|(_, a, d)| *a == b.action && *d == b.desc)
            {
                Some(row) => row.0.push(keys),
                None => rows.push((vec![keys], b.action, &b.desc)),
            }
        }
        if rows.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(HelpRow::Blank);
        }
        out.push(HelpRow::Section(section_title(section).into()));
        out.extend(rows.into_iter().map(|(keys, _, desc)| HelpRow::Keys {
            keys: keys.join(", "),
            desc: desc.to_string(),
        }));
    }
    out
}

fn section_title(context: Context) -> &'static str {
    match context {
        Context::Global => "Everywhere",
        Context::Search => "Patient search",
        Context::Summary => "Summary",
        Context::Results => "Results",
        Context::Notes => "Notes",
        Context::Tasks => "Tasks",
        Context::Input => "Typing in a text box",
        Context::Viewer => "Reading a popup",
        Context::Palette => "Command palette",
        Context::Confirm => "Yes/no questions",
        Context::Editor => "Writing a note",
        Context::Picklist => "Choosing from a pick-list",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use crate::tui::popups::press;

    fn draw(
        popup: &HelpPopup,
        keymap: &Keymap,
        context: Context,
        w: u16,
        h: u16,
    ) -> Terminal<TestBackend> {
        let mut terminal = Terminal::new(TestBackend::new(w, h)).unwrap();
        terminal
            .draw(|f| popup.draw(f, f.area(), keymap, &Theme::default(), context))
            .unwrap();
        terminal
    }

    #[test]
    fn pane_keys_come_first_then_unshadowed_global_keys() {
        let rows = help_rows(&Keymap::defaults(), Context::Results);
        assert_eq!(rows[0], HelpRow::Section("Results".into()));
        let pos = |s: &str| {
            rows.iter()
                .position(|r| matches!(r, HelpRow::Keys { keys, .. } if keys == s))
        };
        assert!(pos("esc, backspace").is_some());
        assert!(pos("q, ctrl-c") > pos("esc, backspace"));
        // Global esc (cancel) is shadowed by the pane's esc (back).
        assert!(!rows.iter().any(
            |r| matches!(r, HelpRow::Keys { desc, .. } if desc.starts_with("Close the popup"))
        ));
        // Global enter is shadowed by the pane's own description.
        assert_eq!(
            rows.iter()
                .filter(|r| matches!(r, HelpRow::Keys { keys, .. } if keys == "enter"))
                .count(),
            1
        );
    }

    #[test]
    fn unbound_keys_disappear_from_help() {
        let load = Keymap::load_str(
            "[global]\nkeymap = [ { on = \"x\", run = \"noop\" } ]",
            "k.toml",
        );
        let rows = help_rows(&load.keymap, Context::Search);
        assert!(
            !rows
                .iter()
                .any(|r| matches!(r, HelpRow::Keys { keys, .. } if keys == "x"))
        );
    }

    #[test]
    fn closes_on_esc_question_mark_and_q() {
        let mut p = HelpPopup::new();
        for k in ["<esc>", "?", "q"] {
            assert_eq!(press(&mut p, k), PopupOutcome::Close);
        }
        assert_eq!(press(&mut p, "z"), PopupOutcome::Consumed);
    }

    #[test]
    fn scrolls_within_the_text() {
        let keymap = Keymap::defaults();
        let mut p = HelpPopup::new();
        draw(&p, &keymap, Context::Results, 80, 24);
        press(&mut p, "j");
        press(&mut p, "<down>");
        assert_eq!(p.scroll(), 2);
        press(&mut p, "k");
        assert_eq!(p.scroll(), 1);
        press(&mut p, "<end>");
        let end = p.scroll();
        let rows = help_rows(&keymap, Context::Results).len() as u16;
        assert_eq!(end, rows - 22);
        press(&mut p, "<down>");
        assert_eq!(p.scroll(), end, "scrolling stops at the end");
        let t = draw(&p, &keymap, Context::Results, 80, 24);
        let shown = format!("{}", t.backend());
        assert!(shown.contains("close_patient") || shown.contains("Close the open chart"));
        press(&mut p, "<home>");
        assert_eq!(p.scroll(), 0);
    }

    #[test]
    fn snapshot_results_pane_at_80x24() {
        let t = draw(
            &HelpPopup::new(),
            &Keymap::defaults(),
            Context::Results,
            80,
            24,
        );
        insta::assert_snapshot!(t.backend());
    }

    #[test]
    fn snapshot_search_pane_scrolled_to_end_at_80x24() {
        let keymap = Keymap::defaults();
        let mut p = HelpPopup::new();
        draw(&p, &keymap, Context::Search, 80, 24);
        press(&mut p, "<end>");
        let t = draw(&p, &keymap, Context::Search, 80, 24);
        insta::assert_snapshot!(t.backend());
    }
}
