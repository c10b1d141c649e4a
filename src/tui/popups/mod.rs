//! Popups drawn over the panes: help, command palette, raw view, the quit
//! question, and which-key.
//!
//! Each is a [`Layer`]: its own keymap section turns keys into actions (a
//! printable key bound to nothing is typed, where the popup takes text), it
//! answers with a [`PopupOutcome`], and it draws itself. No I/O; they know
//! the keymap and the theme but nothing of the panes.

pub mod confirm;
pub mod filter_box;
pub mod help;
pub mod palette;
pub mod picker;
pub mod raw;
pub mod stats;
pub mod templates;
pub mod which_key;

use ratatui::Frame;
use ratatui::layout::Rect;

use crate::tui::action::Action;
use crate::tui::keymap::{Context, Keymap};
use crate::tui::theme::Theme;

pub use confirm::Confirm;
pub use help::HelpPopup;
pub use palette::Palette;
pub use picker::{Pick, PickChoice, PickFor, Picker, PickerSpec};
pub use raw::RawView;
pub use stats::StatsView;
pub use templates::TemplatePicker;

/// What a popup draws with.
pub struct LayerView<'a> {
    pub keymap: &'a Keymap,
    pub theme: &'a Theme,
    /// The focused pane's keymap section (help and palette show its keys).
    pub pane: Context,
}

/// One popup layer over the panes.
pub trait Layer {
    /// Its keymap section.
    fn context(&self) -> Context;
    fn update(&mut self, action: Action) -> PopupOutcome;
    /// Typed or pasted text; popups without a text box ignore it.
    fn insert_text(&mut self, _text: &str) -> PopupOutcome {
        PopupOutcome::Consumed
    }
    fn render(&self, frame: &mut Frame, area: Rect, view: &LayerView);
}

/// The open popup.
#[derive(Debug)]
pub enum Popup {
    Help(HelpPopup),
    Palette(Palette),
    Confirm(Confirm),
    Raw(RawView),
    Templates(TemplatePicker),
    Picker(Picker),
    Stats(StatsView),
}

impl Popup {
    pub fn layer(&self) -> &dyn Layer {
        match self {
            Popup::Help(p) => p,
            Popup::Palette(p) => p,
            Popup::Confirm(p) => p,
            Popup::Raw(p) => p,
            Popup::Templates(p) => p,
            Popup::Picker(p) => p,
            Popup::Stats(p) => p,
        }
    }

    pub fn layer_mut(&mut self) -> &mut dyn Layer {
        match self {
            Popup::Help(p) => p,
            Popup::Palette(p) => p,
            Popup::Confirm(p) => p,
            Popup::Raw(p) => p,
            Popup::Templates(p) => p,
            Popup::Picker(p) => p,
            Popup::Stats(p) => p,
        }
    }
}

/// Delete the word before the end of `text` (and the spaces after it).
pub fn delete_word(text: &mut String) {
    let trimmed = text.trim_end().len();
    text.truncate(trimmed);
    let cut = text
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_whitespace())
        .map_or(0, |(i, c)| i + c.len_utf8());
    text.truncate(cut);
}

/// Press keys (in the notation of [`crate::tui::keys`]) on a layer through
/// the default keymap, as the app does; the last outcome.
#[cfg(test)]
pub(crate) fn press(layer: &mut dyn Layer, keys: &str) -> PopupOutcome {
    use crate::tui::keymap::LayerKey;
    let keymap = Keymap::defaults();
    let mut out = PopupOutcome::Consumed;
    for k in crate::tui::keys::parse_keys(keys).expect("key notation") {
        out = match keymap.layer_key(layer.context(), k) {
            LayerKey::Action(a) => layer.update(a),
            LayerKey::Text(c) => layer.insert_text(&c.to_string()),
            LayerKey::Nothing => PopupOutcome::Consumed,
        };
    }
    out
}

/// What a popup made of a key press.
#[derive(Debug, Clone, PartialEq)]
pub enum PopupOutcome {
    /// The popup used the key (or ignored it); it stays open.
    Consumed,
    /// The popup wants to be closed.
    Close,
    /// Close the popup and run this action.
    Run(Action),
    /// Close the popup and start a note from this template.
    StartNote(String),
    /// Close the popup and hand this answer to the pane that asked.
    Picked(PickFor, Pick),
}

/// A `width` x `height` box centred in `area`, shrunk to fit.
pub fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// Columns `s` takes on screen.
pub(crate) fn width(s: &str) -> usize {
    ratatui::text::Span::raw(s).width()
}

/// Cut `s` to at most `max` columns, marking the cut with `…`.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    let mut buf = [0u8; 4];
    for c in s.chars() {
        let w = width(c.encode_utf8(&mut buf));
        if used + w + 1 > max {
            break;
        }
        out.push(c);
        used += w;
    }
    if max > 0 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centered_box_fits_inside() {
        let area = Rect::new(0, 0, 80, 24);
        assert_eq!(centered(area, 60, 10), Rect::new(10, 7, 60, 10));
        assert_eq!(centered(area, 100, 40), area);
    }

    #[test]
    fn delete_word_removes_the_last_word() {
        for (before, after) in [
            ("nguyen thi", "nguyen "),
            ("nguyen thi  ", "nguyen "),
            ("søren", ""),
            ("", ""),
        ] {
            let mut s = before.to_string();
            delete_word(&mut s);
            assert_eq!(s, after, "{before:?}");
        }
    }

    #[test]
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abcdef", 10), "abcdef");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcdef", 0), "");
    }
}
