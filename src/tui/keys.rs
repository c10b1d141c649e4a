//! A small notation for key sequences, used by tests and benchmarks to drive
//! the app as a user would.
//!
//! Plain characters are typed as they are (`/garc` is five keys). Special keys
//! go in angle brackets: `<enter>`, `<esc>`, `<tab>`, `<s-tab>`, `<bs>`,
//! `<del>`, `<up>`, `<down>`, `<left>`, `<right>`, `<pgup>`, `<pgdn>`,
//! `<home>`, `<end>`, `<space>`, `<lt>` (a literal `<`), `<f1>`..`<f12>`.
//! Modifiers prefix a key inside brackets: `<c-p>` (ctrl), `<a-x>` (alt),
//! `<s-tab>` (shift), combinable as `<c-a-x>`. Upper-case letters carry
//! shift, as terminals report them.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("unclosed `<` at byte {0}")]
    Unclosed(usize),
    #[error("unknown key name `{0}`")]
    UnknownKey(String),
}

/// Parse a key string such as `"/garc<enter>3"` into key events.
pub fn parse_keys(s: &str) -> Result<Vec<KeyEvent>, KeyParseError> {
    let mut out = Vec::new();
    let mut rest = s;
    let mut offset = 0;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            let end = rest.find('>').ok_or(KeyParseError::Unclosed(offset))?;
            out.push(parse_named(&rest[1..end])?);
            offset += end + 1;
            rest = &rest[end + 1..];
        } else {
            out.push(char_key(c, KeyModifiers::NONE));
            offset += c.len_utf8();
            rest = &rest[c.len_utf8()..];
        }
    }
    Ok(out)
}

fn char_key(c: char, mods: KeyModifiers) -> KeyEvent {
    let mods = if c.is_uppercase() {
        mods | KeyModifiers::SHIFT
    } else {
        mods
    };
    KeyEvent::new(KeyCode::Char(c), mods)
}

fn parse_named(name: &str) -> Result<KeyEvent, KeyParseError> {
    let unknown = || KeyParseError::UnknownKey(name.to_string());
    let mut mods = KeyModifiers::NONE;
    let mut base = name;
    loop {
        let lower = base.to_ascii_lowercase();
        if base.len() > 2 && (lower.starts_with("c-") || lower.starts_with("ctrl-")) {
            mods |= KeyModifiers::CONTROL;
            base = &base[base.find('-').map_or(0, |i| i + 1)..];
        } else if base.len() > 2 && (lower.starts_with("a-") || lower.starts_with("alt-")) {
            mods |= KeyModifiers::ALT;
            base = &base[base.find('-').map_or(0, |i| i + 1)..];
        } else if base.len() > 2 && (lower.starts_with("s-") || lower.starts_with("shift-")) {
            mods |= KeyModifiers::SHIFT;
            base = &base[base.find('-').map_or(0, |i| i + 1)..];
        } else {
            break;
        }
    }
    let mut chars = base.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return Ok(char_key(c, mods));
    }
    let code = match base.to_ascii_lowercase().as_str() {
        "enter" | "cr" | "ret" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "tab" if mods.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
        "tab" => KeyCode::Tab,
        "backtab" => {
            mods |= KeyModifiers::SHIFT;
            KeyCode::BackTab
        }
        "bs" | "backspace" => KeyCode::Backspace,
        "del" | "delete" => KeyCode::Delete,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pgup" | "pageup" => KeyCode::PageUp,
        "pgdn" | "pagedown" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "space" => KeyCode::Char(' '),
        "lt" => KeyCode::Char('<'),
        "gt" => KeyCode::Char('>'),
        f if f.starts_with('f') => {
            let n: u8 = f[1..].parse().map_err(|_| unknown())?;
            if !(1..=12).contains(&n) {
                return Err(unknown());
            }
            KeyCode::F(n)
        }
        _ => return Err(unknown()),
    };
    Ok(KeyEvent::new(code, mods))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_text_and_named_keys() {
        let keys = parse_keys("/ga<enter>3<c-p><s-tab>G<lt>").unwrap();
        let codes: Vec<KeyCode> = keys.iter().map(|k| k.code).collect();
        assert_eq!(
            codes,
            vec![
                KeyCode::Char('/'),
                KeyCode::Char('g'),
                KeyCode::Char('a'),
                KeyCode::Enter,
                KeyCode::Char('3'),
                KeyCode::Char('p'),
                KeyCode::BackTab,
                KeyCode::Char('G'),
                KeyCode::Char('<'),
            ]
        );
        assert_eq!(keys[5].modifiers, KeyModifiers::CONTROL);
        assert_eq!(keys[7].modifiers, KeyModifiers::SHIFT);
        assert_eq!(
            parse_keys("<nope>"),
            Err(KeyParseError::UnknownKey("nope".into()))
        );
        assert_eq!(parse_keys("ab<enter"), Err(KeyParseError::Unclosed(2)));
    }

    proptest! {
        #[test]
        fn text_without_brackets_is_one_key_per_char(s in "[^<]{0,30}") {
            let keys = parse_keys(&s).unwrap();
            prop_assert_eq!(keys.len(), s.chars().count());
        }

        #[test]
        fn never_panics(s in "\\PC{0,40}") {
            let _ = parse_keys(&s);
        }
    }
}
