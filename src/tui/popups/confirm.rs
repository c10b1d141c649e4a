//! A yes/no question: quitting with unsaved work, signing a note.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::{Layer, LayerView, PopupOutcome, centered};
use crate::tui::action::Action;
use crate::tui::keymap::Context;

#[derive(Debug, Clone, PartialEq)]
pub struct Confirm {
    /// The question, ending in how to answer ("… y / n").
    pub question: String,
    /// What yes runs.
    pub yes: Action,
}

impl Confirm {
    pub fn quit() -> Confirm {
        Confirm {
            question: "There is unsaved work. Quit anyway? y / n".into(),
            yes: Action::Quit,
        }
    }

    /// Quitting while a note's last words are not saved yet: says what
    /// happens to them where drafts are kept.
    pub fn quit_note(kept_on_disk: bool) -> Confirm {
        let question = if kept_on_disk {
            "Quit? The note's last words are saved on this machine as you go, and offered again at the next start. y / n"
        } else {
            "Quit? The note's last words are not on the server yet, and drafts here are in memory only: they will be lost. y / n"
        };
        Confirm {
            question: question.into(),
            yes: Action::Quit,
        }
    }
}

impl Layer for Confirm {
    fn context(&self) -> Context {
        Context::Confirm
    }

    /// Yes runs the action; any other key keeps working.
    fn update(&mut self, action: Action) -> PopupOutcome {
        match action {
            Action::Confirm => PopupOutcome::Run(self.yes),
            _ => PopupOutcome::Close,
        }
    }

    fn insert_text(&mut self, _text: &str) -> PopupOutcome {
        PopupOutcome::Close
    }

    fn render(&self, frame: &mut Frame, area: Rect, view: &LayerView) {
        let theme = view.theme;
        let len = self.question.chars().count() as u16;
        let width = (len + 4).clamp(30, 70).min(area.width);
        // Room for the question wrapped at the width (one line where it fits).
        let lines = len.div_ceil(width.saturating_sub(4).max(1)).max(1);
        // Word wrapping leaves ragged ends: a line to spare when it wraps.
        let lines = if lines > 1 { lines + 1 } else { lines };
        let rect = centered(area, width, lines + 2);
        frame.render_widget(Clear, rect);
        frame.render_widget(
            Paragraph::new(vec![Line::from(Span::styled(
                self.question.clone(),
                theme.alert_critical,
            ))])
            .wrap(Wrap { trim: true })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_set(theme.border_set(false))
                    .border_style(theme.alert_critical),
            ),
            rect,
        );
    }
}
