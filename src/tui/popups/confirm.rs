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
        let width = (self.question.chars().count() as u16 + 4).clamp(30, 70);
        let rect = centered(area, width, 4);
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
                    .border_style(theme.alert_critical),
            ),
            rect,
        );
    }
}
