//! The template picker: the templates the signed-in role may use, the ones
//! it writes most first, narrowed by typing (fuzzy on the title).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::filter_box::FilterBox;
use super::{Layer, LayerView, PopupOutcome, centered, truncate};
use crate::tui::action::Action;
use crate::tui::keymap::Context;

/// A template as the picker lists it: name, title, LOINC display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub name: String,
    pub title: String,
    pub kind: String,
}

#[derive(Debug)]
pub struct TemplatePicker {
    choices: Vec<Choice>,
    filter: FilterBox,
}

impl TemplatePicker {
    /// `choices` in the order the role writes them most.
    pub fn new(choices: Vec<Choice>) -> TemplatePicker {
        TemplatePicker {
            filter: FilterBox::new(choices.len()),
            choices,
        }
    }

    pub fn shown(&self) -> Vec<&Choice> {
        self.filter
            .shown
            .iter()
            .map(|&i| &self.choices[i])
            .collect()
    }

    fn refilter(&mut self) {
        let hay = self
            .choices
            .iter()
            .map(|c| format!("{} {}", c.title, c.kind));
        self.filter.filter(hay);
    }
}

impl Layer for TemplatePicker {
    fn context(&self) -> Context {
        Context::Palette
    }

    fn update(&mut self, action: Action) -> PopupOutcome {
        match action {
            Action::Cancel | Action::CommandPalette => return PopupOutcome::Close,
            Action::Open => {
                return match self.filter.shown.get(self.filter.selected) {
                    Some(&i) => PopupOutcome::StartNote(self.choices[i].name.clone()),
                    None => PopupOutcome::Consumed,
                };
            }
            other => {
                if self.filter.apply(other, self.filter.shown.len()) {
                    self.refilter();
                }
            }
        }
        PopupOutcome::Consumed
    }

    fn insert_text(&mut self, text: &str) -> PopupOutcome {
        self.filter.insert(text);
        self.refilter();
        PopupOutcome::Consumed
    }

    fn render(&self, frame: &mut Frame, area: Rect, view: &LayerView) {
        let theme = view.theme;
        let rows = (self.filter.shown.len() as u16).clamp(1, 10);
        let rect = centered(area, 64, rows + 4);
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_set(theme.border_set(false))
            .border_style(theme.focus_border)
            .title(Span::styled(" New note: choose a template ", theme.title));
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let width = usize::from(inner.width);
        let mut lines = vec![Line::from(vec![
            Span::styled("> ", theme.key_hint),
            Span::raw(self.filter.query.clone()),
            Span::styled(theme.mark("▏", "_"), theme.focus_border),
        ])];
        if self.filter.shown.is_empty() {
            lines.push(Line::from(Span::styled("No template matches.", theme.dim)));
        }
        for (row, c) in self.shown().iter().enumerate() {
            let style = if row == self.filter.selected {
                theme.selection
            } else {
                theme.base
            };
            lines.push(Line::from(Span::styled(
                truncate(&format!("{} · {}", c.title, c.kind), width),
                style,
            )));
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::popups::press;

    fn picker() -> TemplatePicker {
        TemplatePicker::new(
            [
                ("progress", "Progress note (SOAP)"),
                ("procedure", "Procedure note"),
                ("telephone", "Telephone encounter"),
            ]
            .iter()
            .map(|(n, t)| Choice {
                name: n.to_string(),
                title: t.to_string(),
                kind: "note".into(),
            })
            .collect(),
        )
    }

    #[test]
    fn enter_starts_the_first_or_the_one_typed() {
        let mut p = picker();
        assert_eq!(
            press(&mut p, "<enter>"),
            PopupOutcome::StartNote("progress".into())
        );
        let mut p = picker();
        press(&mut p, "tele");
        assert_eq!(p.shown().len(), 1);
        assert_eq!(
            press(&mut p, "<enter>"),
            PopupOutcome::StartNote("telephone".into())
        );
        let mut p = picker();
        press(&mut p, "<down>");
        assert_eq!(
            press(&mut p, "<enter>"),
            PopupOutcome::StartNote("procedure".into())
        );
        assert_eq!(press(&mut picker(), "<esc>"), PopupOutcome::Close);
    }
}
