//! The question before quitting with unsaved work.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::{Layer, LayerView, PopupOutcome, centered};
use crate::tui::action::Action;
use crate::tui::keymap::Context;

#[derive(Debug, Default)]
pub struct ConfirmQuit;

impl Layer for ConfirmQuit {
    fn context(&self) -> Context {
        Context::Confirm
    }

    /// Yes quits; any other key keeps working.
    fn update(&mut self, action: Action) -> PopupOutcome {
        match action {
            Action::Confirm => PopupOutcome::Run(Action::Quit),
            _ => PopupOutcome::Close,
        }
    }

    fn insert_text(&mut self, _text: &str) -> PopupOutcome {
        PopupOutcome::Close
    }

    fn render(&self, frame: &mut Frame, area: Rect, view: &LayerView) {
        let theme = view.theme;
        let rect = centered(area, 50, 4);
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
}
