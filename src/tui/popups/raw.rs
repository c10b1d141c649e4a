//! The raw view: a record as the server sent it, sanitised, as indented
//! FHIR JSON, for when the chart's reading of it is in doubt (a record that
//! could not be decoded, a status that looks wrong).

use std::cell::Cell;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::{Layer, LayerView, PopupOutcome, truncate};
use crate::tui::action::Action;
use crate::tui::keymap::Context;

#[derive(Debug)]
pub struct RawView {
    title: String,
    lines: Vec<String>,
    scroll: usize,
    /// Rows in view at the last render, for page moves and the end.
    page: Cell<usize>,
}

impl RawView {
    /// `items`: a heading per record and its JSON (already sanitised where
    /// it was decoded).
    pub fn new(title: impl Into<String>, items: &[(String, serde_json::Value)]) -> RawView {
        let mut lines = Vec::new();
        for (i, (heading, json)) in items.iter().enumerate() {
            if i > 0 {
                lines.push(String::new());
            }
            lines.push(heading.clone());
            let text = serde_json::to_string_pretty(json).unwrap_or_else(|_| json.to_string());
            lines.extend(text.lines().map(str::to_string));
        }
        if items.is_empty() {
            lines.push("Nothing selected.".into());
        }
        RawView {
            title: title.into(),
            lines,
            scroll: 0,
            page: Cell::new(10),
        }
    }

    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    fn max_scroll(&self) -> usize {
        self.lines.len().saturating_sub(self.page.get())
    }
}

impl Layer for RawView {
    fn context(&self) -> Context {
        Context::Viewer
    }

    fn update(&mut self, action: Action) -> PopupOutcome {
        let page = self.page.get().max(1);
        match action {
            Action::Cancel | Action::RawView | Action::Quit => return PopupOutcome::Close,
            Action::MoveDown => self.scroll += 1,
            Action::MoveUp => self.scroll = self.scroll.saturating_sub(1),
            Action::PageDown => self.scroll += page,
            Action::PageUp => self.scroll = self.scroll.saturating_sub(page),
            Action::GoTop => self.scroll = 0,
            Action::GoBottom => self.scroll = self.max_scroll(),
            _ => {}
        }
        self.scroll = self.scroll.min(self.max_scroll());
        PopupOutcome::Consumed
    }

    fn render(&self, frame: &mut Frame, area: Rect, view: &LayerView) {
        let theme = view.theme;
        let rect = area;
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_set(theme.border_set(false))
            .border_style(theme.focus_border)
            .title(Span::styled(
                format!(" {} (esc closes) ", self.title),
                theme.title,
            ));
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let height = usize::from(inner.height);
        self.page.set(height.max(1));
        let width = usize::from(inner.width);
        let shown: Vec<Line> = self
            .lines
            .iter()
            .skip(self.scroll.min(self.max_scroll()))
            .take(height)
            .map(|l| Line::from(truncate(l, width)))
            .collect();
        frame.render_widget(Paragraph::new(shown), inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::popups::press;
    use serde_json::json;

    #[test]
    fn shows_each_record_and_scrolls() {
        let mut v = RawView::new(
            "Raw FHIR",
            &[(
                "AllergyIntolerance (could not be read: invalid type)".into(),
                json!({"resourceType": "AllergyIntolerance", "code": "penicillin"}),
            )],
        );
        let text = v.text();
        assert!(text.contains("\"code\": \"penicillin\""), "{text}");
        assert!(text.starts_with("AllergyIntolerance (could not be read"));
        assert_eq!(press(&mut v, "j"), PopupOutcome::Consumed);
        assert_eq!(press(&mut v, "<esc>"), PopupOutcome::Close);
        assert_eq!(RawView::new("x", &[]).text(), "Nothing selected.");
    }
}
