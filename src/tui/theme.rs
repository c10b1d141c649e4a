//! Themes: named semantic slots loaded from `themes/*.toml`.
//!
//! A theme file sets slots by name, each `{ fg, bg, modifiers }`. The built-in
//! themes set every slot; a user's file may set only some of them over the
//! default theme (or over another built-in one named by `extends`).

use crate::config::line_of;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context as _, anyhow};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::border;
use ratatui::widgets::{HighlightSpacing, Table};
use toml::Spanned;

/// The built-in themes: (name, file).
pub const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("monochrome", include_str!("../../themes/monochrome.toml")),
];

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
    /// Drawing for a slow link: ASCII borders and marks (one byte a cell
    /// instead of three) and nothing that changes more often than once a
    /// minute. Not a slot: a setting, and switched on at run time.
    pub low_bandwidth: bool,
}

/// Borders in ASCII for a slow link; `=` marks the focused frame where the
/// normal borders are thick.
const ASCII: border::Set<'static> = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};
const ASCII_FOCUSED: border::Set<'static> = border::Set {
    horizontal_top: "=",
    horizontal_bottom: "=",
    ..ASCII
};

/// Slot names as theme files write them, in declaration order.
pub const SLOTS: &[&str] = &[
    "base",
    "dim",
    "title",
    "header",
    "border",
    "focus_border",
    "selection",
    "allergy",
    "alert_critical",
    "abnormal_result",
    "overdue",
    "status_bar",
    "link_ok",
    "link_warn",
    "link_down",
    "key_hint",
    "match_highlight",
];

const MODIFIERS: &[(&str, Modifier)] = &[
    ("bold", Modifier::BOLD),
    ("dim", Modifier::DIM),
    ("italic", Modifier::ITALIC),
    ("underlined", Modifier::UNDERLINED),
    ("underline", Modifier::UNDERLINED),
    ("reversed", Modifier::REVERSED),
    ("reverse", Modifier::REVERSED),
    ("crossed_out", Modifier::CROSSED_OUT),
    ("slow_blink", Modifier::SLOW_BLINK),
    ("rapid_blink", Modifier::RAPID_BLINK),
    ("hidden", Modifier::HIDDEN),
];

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
            low_bandwidth: false,
        }
    }
}

impl Theme {
    /// The border of a frame: thick when focused, plain otherwise; ASCII
    /// in low-bandwidth mode.
    pub fn border_set(&self, focused: bool) -> border::Set<'static> {
        match (self.low_bandwidth, focused) {
            (true, true) => ASCII_FOCUSED,
            (true, false) => ASCII,
            (false, true) => border::THICK,
            (false, false) => border::PLAIN,
        }
    }

    /// How a table shows its selected row: reversed; in low-bandwidth mode
    /// by a `>` before it only, so that a move rewrites two cells instead
    /// of two whole rows.
    pub fn selectable<'a>(&self, table: Table<'a>) -> Table<'a> {
        if self.low_bandwidth {
            table
                .row_highlight_style(Style::default())
                .highlight_symbol(">")
                .highlight_spacing(HighlightSpacing::Always)
        } else {
            table.row_highlight_style(self.selection)
        }
    }

    /// A mark or separator: `fancy` normally, `plain` (ASCII) in
    /// low-bandwidth mode.
    pub fn mark<'a>(&self, fancy: &'a str, plain: &'a str) -> &'a str {
        if self.low_bandwidth { plain } else { fancy }
    }

    /// `default`, `high-contrast`, `monochrome`, or a path to a theme file.
    pub fn load(name_or_path: &str) -> anyhow::Result<Theme> {
        if let Some((name, src)) = BUILT_IN.iter().find(|(n, _)| *n == name_or_path) {
            return Theme::parse(src, &format!("themes/{name}.toml"), Theme::default());
        }
        let expanded = match (name_or_path.strip_prefix("~/"), dirs::home_dir()) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => Path::new(name_or_path).to_path_buf(),
        };
        let path = expanded.as_path();
        let src = std::fs::read_to_string(path).with_context(|| {
            format!(
                "theme {name_or_path:?}: not a built-in theme ({}) and not a readable file",
                built_in_names()
            )
        })?;
        let mut theme = Theme::parse(&src, &path.display().to_string(), Theme::default())?;
        if theme.name == "default" {
            // An unnamed file is named after itself.
            theme.name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "custom".into());
        }
        Ok(theme)
    }

    /// A theme from file text over `base` (slots the text does not set keep
    /// `base`'s). `origin` names the file in errors.
    pub fn parse(src: &str, origin: &str, base: Theme) -> anyhow::Result<Theme> {
        let raw: std::collections::BTreeMap<Spanned<String>, Spanned<toml::Value>> =
            toml::from_str(src).map_err(|e| {
                let line = e.span().map_or(1, |s| line_of(src, s.start));
                anyhow!("{origin}:{line}: {}", e.message().trim_end())
            })?;
        let mut theme = base;
        if let Some((_, v)) = raw.iter().find(|(k, _)| k.get_ref() == "extends") {
            let line = line_of(src, v.span().start);
            let name = v
                .get_ref()
                .as_str()
                .ok_or_else(|| anyhow!("{origin}:{line}: `extends` must be a theme name"))?;
            let (_, parent) = BUILT_IN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
                anyhow!(
                    "{origin}:{line}: `extends` names {name:?}, not a built-in theme ({})",
                    built_in_names()
                )
            })?;
            theme = Theme::parse(parent, name, Theme::default())?;
        }
        for (key, value) in &raw {
            let line = line_of(src, key.span().start);
            match key.get_ref().as_str() {
                "extends" => {}
                "name" => {
                    theme.name = value
                        .get_ref()
                        .as_str()
                        .ok_or_else(|| anyhow!("{origin}:{line}: `name` must be a string"))?
                        .to_string();
                }
                slot => {
                    let style = parse_style(value.get_ref())
                        .map_err(|what| anyhow!("{origin}:{line}: `{slot}`: {what}"))?;
                    *theme.slot_mut(slot).ok_or_else(|| {
                        anyhow!(
                            "{origin}:{line}: unknown slot `{slot}` (expected name, extends, {})",
                            SLOTS.join(", ")
                        )
                    })? = style;
                }
            }
        }
        Ok(theme)
    }

    /// A slot by its name in theme files.
    pub fn slot(&self, name: &str) -> Option<&Style> {
        let t = self;
        Some(match name {
            "base" => &t.base,
            "dim" => &t.dim,
            "title" => &t.title,
            "header" => &t.header,
            "border" => &t.border,
            "focus_border" => &t.focus_border,
            "selection" => &t.selection,
            "allergy" => &t.allergy,
            "alert_critical" => &t.alert_critical,
            "abnormal_result" => &t.abnormal_result,
            "overdue" => &t.overdue,
            "status_bar" => &t.status_bar,
            "link_ok" => &t.link_ok,
            "link_warn" => &t.link_warn,
            "link_down" => &t.link_down,
            "key_hint" => &t.key_hint,
            "match_highlight" => &t.match_highlight,
            _ => return None,
        })
    }

    fn slot_mut(&mut self, name: &str) -> Option<&mut Style> {
        let t = self;
        Some(match name {
            "base" => &mut t.base,
            "dim" => &mut t.dim,
            "title" => &mut t.title,
            "header" => &mut t.header,
            "border" => &mut t.border,
            "focus_border" => &mut t.focus_border,
            "selection" => &mut t.selection,
            "allergy" => &mut t.allergy,
            "alert_critical" => &mut t.alert_critical,
            "abnormal_result" => &mut t.abnormal_result,
            "overdue" => &mut t.overdue,
            "status_bar" => &mut t.status_bar,
            "link_ok" => &mut t.link_ok,
            "link_warn" => &mut t.link_warn,
            "link_down" => &mut t.link_down,
            "key_hint" => &mut t.key_hint,
            "match_highlight" => &mut t.match_highlight,
            _ => return None,
        })
    }
}

fn built_in_names() -> String {
    BUILT_IN
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_style(value: &toml::Value) -> Result<Style, String> {
    let table = value
        .as_table()
        .ok_or("a style is a table like { fg = \"red\", modifiers = [\"bold\"] }")?;
    let mut style = Style::default();
    for (field, v) in table {
        match field.as_str() {
            "fg" => style = style.fg(parse_color(v)?),
            "bg" => style = style.bg(parse_color(v)?),
            "modifiers" => {
                let items = v.as_array().ok_or("`modifiers` must be a list")?;
                for item in items {
                    let name = item.as_str().ok_or("a modifier must be a string")?;
                    let (_, m) = MODIFIERS
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(name))
                        .ok_or_else(|| {
                            format!(
                                "unknown modifier {name:?} (bold, dim, italic, underlined, \
                                 reversed, crossed_out, slow_blink, rapid_blink, hidden)"
                            )
                        })?;
                    style = style.add_modifier(*m);
                }
            }
            other => return Err(format!("unknown field `{other}` (fg, bg, modifiers)")),
        }
    }
    Ok(style)
}

fn parse_color(v: &toml::Value) -> Result<Color, String> {
    let s = v.as_str().ok_or("a colour must be a string")?;
    Color::from_str(s).map_err(|_| {
        format!("unknown colour {s:?} (a name such as red, darkgray, lightcyan, reset, or #rrggbb)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_keys(src: &str) -> Vec<String> {
        let table: toml::Table = toml::from_str(src).unwrap();
        table.keys().cloned().collect()
    }

    #[test]
    fn every_built_in_theme_parses_and_sets_every_slot() {
        for (name, src) in BUILT_IN {
            let theme = Theme::load(name).unwrap();
            assert_eq!(theme.name, *name);
            let keys = raw_keys(src);
            for slot in SLOTS {
                assert!(keys.iter().any(|k| k == slot), "{name} does not set {slot}");
                assert!(theme.slot(slot).is_some());
            }
        }
    }

    #[test]
    fn slot_list_covers_the_struct() {
        // Setting every slot to a distinct style must change every field.
        let mut t = Theme::default();
        for (i, slot) in SLOTS.iter().enumerate() {
            *t.slot_mut(slot).unwrap() = Style::default().fg(Color::Indexed(i as u8 + 100));
        }
        let styles = [
            t.base,
            t.dim,
            t.title,
            t.header,
            t.border,
            t.focus_border,
            t.selection,
            t.allergy,
            t.alert_critical,
            t.abnormal_result,
            t.overdue,
            t.status_bar,
            t.link_ok,
            t.link_warn,
            t.link_down,
            t.key_hint,
            t.match_highlight,
        ];
        assert_eq!(styles.len(), SLOTS.len());
        for (i, s) in styles.iter().enumerate() {
            assert_eq!(s.fg, Some(Color::Indexed(i as u8 + 100)));
        }
    }

    #[test]
    fn documentation_lists_every_slot() {
        let doc = include_str!("../../docs/themes.md");
        for slot in SLOTS {
            assert!(
                doc.contains(&format!("| `{slot}` |")),
                "{slot} is not in docs/themes.md"
            );
        }
        for (name, _) in BUILT_IN {
            assert!(
                doc.contains(&format!("| `{name}` |")),
                "{name} is not in docs/themes.md"
            );
        }
    }

    #[test]
    fn default_file_matches_the_fallback_theme() {
        assert_eq!(Theme::load("default").unwrap(), Theme::default());
    }

    #[test]
    fn monochrome_has_no_colour() {
        let t = Theme::load("monochrome").unwrap();
        for slot in SLOTS {
            let s = t.slot(slot).unwrap();
            assert_eq!((s.fg, s.bg), (None, None), "{slot} has a colour");
        }
        // Flags still stand out without colour.
        assert!(t.allergy.add_modifier.contains(Modifier::BOLD));
        assert!(t.selection.add_modifier.contains(Modifier::REVERSED));
        assert_ne!(t.alert_critical, t.base);
    }

    #[test]
    fn a_file_sets_some_slots_over_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ward.toml");
        std::fs::write(
            &path,
            "allergy = { fg = \"#ff00ff\", modifiers = [\"bold\", \"underlined\"] }\n",
        )
        .unwrap();
        let t = Theme::load(path.to_str().unwrap()).unwrap();
        assert_eq!(t.name, "ward");
        assert_eq!(t.allergy.fg, Some(Color::Rgb(255, 0, 255)));
        assert!(t.allergy.add_modifier.contains(Modifier::UNDERLINED));
        assert_eq!(t.selection, Theme::default().selection);
    }

    #[test]
    fn extends_starts_from_another_built_in() {
        let t = Theme::parse(
            "extends = \"monochrome\"\nname = \"mine\"\nkey_hint = { modifiers = [\"italic\"] }\n",
            "mine.toml",
            Theme::default(),
        )
        .unwrap();
        assert_eq!(t.name, "mine");
        assert_eq!(t.status_bar, Theme::load("monochrome").unwrap().status_bar);
        assert!(t.key_hint.add_modifier.contains(Modifier::ITALIC));
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let err = |src: &str| {
            Theme::parse(src, "t.toml", Theme::default())
                .unwrap_err()
                .to_string()
        };
        let e = err("base = {}\nallergy = { fg = \"redd\" }\n");
        assert!(e.starts_with("t.toml:2:") && e.contains("redd"), "{e}");
        let e = err("\n\nalergy = {}\n");
        assert!(
            e.starts_with("t.toml:3:") && e.contains("unknown slot"),
            "{e}"
        );
        let e = err("base = { modifiers = [\"blink\"] }");
        assert!(e.starts_with("t.toml:1:") && e.contains("blink"), "{e}");
        let e = err("base = {\n");
        assert!(e.starts_with("t.toml:"), "{e}");
        let e = Theme::load("/nonexistent/theme.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/theme.toml"), "{e}");
    }
}
