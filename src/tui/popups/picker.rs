//! A short list to pick one answer from (a queue, a reason, a disposition,
//! a reply, a new due time): the likely choice first, so Enter alone takes
//! it; typing narrows the list (fuzzy), and where the question allows it
//! what was typed is itself an answer.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::filter_box::FilterBox;
use super::{Layer, LayerView, PopupOutcome, centered, truncate};
use crate::tui::action::Action;
use crate::tui::keymap::Context;

/// What the answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickFor {
    Route,
    Escalate,
    Reply,
    Complete,
    Defer,
    FilterCategory,
    FilterPatient,
}

/// One answer: the value the asker uses, or text typed by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pick {
    pub value: String,
    pub typed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickChoice {
    pub label: String,
    pub value: String,
}

impl PickChoice {
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> PickChoice {
        PickChoice {
            label: label.into(),
            value: value.into(),
        }
    }
}

/// A picker as a pane asks for it (the app opens it).
#[derive(Debug, Clone, PartialEq)]
pub struct PickerSpec {
    pub purpose: PickFor,
    pub title: String,
    pub choices: Vec<PickChoice>,
    pub typed: Option<String>,
}

impl From<PickerSpec> for Picker {
    fn from(s: PickerSpec) -> Picker {
        Picker::new(s.purpose, s.title, s.choices, s.typed.as_deref())
    }
}

#[derive(Debug)]
pub struct Picker {
    pub purpose: PickFor,
    title: String,
    choices: Vec<PickChoice>,
    /// What typed text means, where it may be the answer ("a reason").
    typed: Option<String>,
    filter: FilterBox,
}

impl Picker {
    pub fn new(
        purpose: PickFor,
        title: impl Into<String>,
        choices: Vec<PickChoice>,
        typed: Option<&str>,
    ) -> Picker {
        Picker {
            purpose,
            title: title.into(),
            filter: FilterBox::new(choices.len()),
            choices,
            typed: typed.map(str::to_string),
        }
    }

    pub fn query(&self) -> &str {
        &self.filter.query
    }

    pub fn shown(&self) -> Vec<&PickChoice> {
        self.filter
            .shown
            .iter()
            .map(|&i| &self.choices[i])
            .collect()
    }

    /// Rows on screen: the matching choices, then the typed answer.
    fn rows(&self) -> usize {
        self.filter.shown.len() + usize::from(self.offers_typed())
    }

    fn offers_typed(&self) -> bool {
        self.typed.is_some() && !self.filter.query.trim().is_empty()
    }

    fn refilter(&mut self) {
        let hay = self.choices.iter().map(|c| c.label.clone());
        self.filter.filter(hay);
    }
}

impl Layer for Picker {
    fn context(&self) -> Context {
        Context::Palette
    }

    fn update(&mut self, action: Action) -> PopupOutcome {
        let rows = self.rows();
        match action {
            Action::Cancel | Action::CommandPalette => return PopupOutcome::Close,
            Action::Open => {
                if let Some(&i) = self.filter.shown.get(self.filter.selected) {
                    return PopupOutcome::Picked(
                        self.purpose,
                        Pick {
                            value: self.choices[i].value.clone(),
                            typed: false,
                        },
                    );
                }
                if self.offers_typed() {
                    return PopupOutcome::Picked(
                        self.purpose,
                        Pick {
                            value: self.filter.query.trim().to_string(),
                            typed: true,
                        },
                    );
                }
            }
            other => {
                if self.filter.apply(other, rows) {
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
        let rows = (self.rows() as u16).clamp(1, 12);
        let extra = u16::from(self.typed.is_some());
        let rect = centered(area, 64, rows + 4 + extra);
        frame.render_widget(Clear, rect);
        let block = Block::default()
            .borders(Borders::ALL)
            .border_set(theme.border_set(false))
            .border_style(theme.focus_border)
            .title(Span::styled(format!(" {} ", self.title), theme.title));
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let width = usize::from(inner.width);
        let mut lines = vec![Line::from(vec![
            Span::styled("> ", theme.key_hint),
            Span::raw(self.filter.query.clone()),
            Span::styled(theme.mark("▏", "_"), theme.focus_border),
        ])];
        if let Some(t) = &self.typed {
            lines.push(Line::from(Span::styled(
                truncate(&format!("Enter takes the first; or type {t}"), width),
                theme.dim,
            )));
        }
        if self.rows() == 0 {
            lines.push(Line::from(Span::styled("Nothing matches.", theme.dim)));
        }
        let style = |row: usize| {
            if row == self.filter.selected {
                theme.selection
            } else {
                theme.base
            }
        };
        // Keep the selected row in sight.
        let room = usize::from(rows);
        let first = self.filter.selected.saturating_sub(room.saturating_sub(1));
        for (row, c) in self.shown().iter().enumerate().skip(first).take(room) {
            lines.push(Line::from(Span::styled(
                truncate(&c.label, width),
                style(row),
            )));
        }
        if self.offers_typed() && self.filter.shown.len() < first + room {
            let row = self.filter.shown.len();
            lines.push(Line::from(Span::styled(
                truncate(
                    &format!("Use what was typed: {}", self.filter.query.trim()),
                    width,
                ),
                style(row),
            )));
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tui::popups::press;

    fn picker(typed: Option<&str>) -> Picker {
        Picker::new(
            PickFor::Escalate,
            "Why",
            vec![
                PickChoice::new("Red flag in the message", "red"),
                PickChoice::new("Symptoms worse", "worse"),
            ],
            typed,
        )
    }

    #[test]
    fn enter_takes_the_first_or_what_was_typed() {
        let pick = |value: &str, typed| {
            PopupOutcome::Picked(
                PickFor::Escalate,
                Pick {
                    value: value.into(),
                    typed,
                },
            )
        };
        assert_eq!(press(&mut picker(None), "<enter>"), pick("red", false));
        let mut p = picker(None);
        press(&mut p, "worse");
        assert_eq!(press(&mut p, "<enter>"), pick("worse", false));
        let mut p = picker(Some("a reason"));
        press(&mut p, "fever 40");
        assert!(p.shown().is_empty());
        assert_eq!(press(&mut p, "<enter>"), pick("fever 40", true));
        let mut p = picker(None);
        press(&mut p, "zzzz");
        assert_eq!(press(&mut p, "<enter>"), PopupOutcome::Consumed);
        assert_eq!(press(&mut picker(None), "<esc>"), PopupOutcome::Close);
    }
}
