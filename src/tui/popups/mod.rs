//! Popups drawn over the panes: help, command palette, which-key.
//!
//! Widgets with their own state and no I/O; they know the keymap and the
//! theme but nothing of the panes. The app hands them raw key events while
//! open and acts on the [`PopupOutcome`].

pub mod help;
pub mod palette;
pub mod which_key;

use ratatui::layout::Rect;

use crate::tui::action::Action;

pub use help::HelpPopup;
pub use palette::Palette;

/// What a popup made of a key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PopupOutcome {
    /// The popup used the key (or ignored it); it stays open.
    Consumed,
    /// The popup wants to be closed.
    Close,
    /// Close the popup and run this action.
    Run(Action),
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
    fn truncate_marks_the_cut() {
        assert_eq!(truncate("abcdef", 10), "abcdef");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abcdef", 0), "");
    }
}
