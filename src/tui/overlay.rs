//! Small overlays of the app itself (the popups of the keymap live in
//! `crate::tui::popups`).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use crate::tui::popups::centered;
use crate::tui::theme::Theme;

/// Asks before quitting with unsaved work.
pub fn render_confirm_quit(frame: &mut Frame, area: Rect, theme: &Theme) {
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
