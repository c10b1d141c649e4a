//! The text box of a popup that narrows a list as you type (the reply and
//! note-template pickers): what is typed, the rows that match it best
//! first, and the selection over them.

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32Str};

use crate::tui::action::Action;

#[derive(Debug)]
pub struct FilterBox {
    pub query: String,
    /// Indices of the items shown, best match first.
    pub shown: Vec<usize>,
    /// Among the rows on screen (which may be more than `shown`).
    pub selected: usize,
}

impl FilterBox {
    /// All of `items` items shown, in order.
    pub fn new(items: usize) -> FilterBox {
        FilterBox {
            query: String::new(),
            shown: (0..items).collect(),
            selected: 0,
        }
    }

    /// An editing or moving action over `rows` rows on screen; whether the
    /// text changed (then [`FilterBox::filter`] again).
    pub fn apply(&mut self, action: Action, rows: usize) -> bool {
        match action {
            Action::MoveDown if rows > 0 => self.selected = (self.selected + 1) % rows,
            Action::MoveUp if rows > 0 => self.selected = (self.selected + rows - 1) % rows,
            Action::DeleteBack => return self.query.pop().is_some(),
            Action::ClearInput | Action::DeleteWord => {
                self.query.clear();
                return true;
            }
            _ => {}
        }
        false
    }

    /// Typed or pasted text, control characters left out.
    pub fn insert(&mut self, text: &str) {
        self.query.extend(text.chars().filter(|c| !c.is_control()));
    }

    /// Show the items whose text (`hay` of each) matches what is typed,
    /// best first and in their own order on a tie; all of them when nothing
    /// is typed. The selection goes back to the first row.
    pub fn filter(&mut self, hay: impl Iterator<Item = String>) {
        let hays: Vec<String> = hay.collect();
        if self.query.trim().is_empty() {
            self.shown = (0..hays.len()).collect();
        } else {
            let pattern = Pattern::parse(&self.query, CaseMatching::Ignore, Normalization::Smart);
            let mut matcher = Matcher::new(Config::DEFAULT);
            let mut buf = Vec::new();
            let mut scored: Vec<(u32, usize)> = hays
                .iter()
                .enumerate()
                .filter_map(|(i, h)| {
                    Some((pattern.score(Utf32Str::new(h, &mut buf), &mut matcher)?, i))
                })
                .collect();
            scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            self.shown = scored.into_iter().map(|(_, i)| i).collect();
        }
        self.selected = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_narrows_best_first_and_moves_wrap() {
        let items = [
            "Book an appointment",
            "Refill sent",
            "Go to the emergency department",
        ];
        let hay = || items.iter().map(|s| s.to_string());
        let mut f = FilterBox::new(items.len());
        assert_eq!(f.shown, vec![0, 1, 2]);
        f.apply(Action::MoveUp, 3);
        assert_eq!(f.selected, 2, "up from the first wraps to the last");
        f.insert("emerg\u{7}");
        assert_eq!(f.query, "emerg", "control characters are not typed");
        f.filter(hay());
        assert_eq!((f.shown.clone(), f.selected), (vec![2], 0));
        assert!(f.apply(Action::DeleteBack, 1));
        assert!(!f.apply(Action::MoveDown, 1));
        assert!(f.apply(Action::ClearInput, 1));
        f.filter(hay());
        assert_eq!(f.shown, vec![0, 1, 2]);
        assert!(
            !FilterBox::new(0).apply(Action::DeleteBack, 0),
            "nothing to delete"
        );
    }
}
