//! Key notation: how keymap files write one key press, and how a crossterm
//! event becomes the same value so that lookups compare equal.
//!
//! Normal form: a character key carries the character as typed and never the
//! SHIFT modifier (`shift-g`, `G` and crossterm's `G`+SHIFT are all `G`);
//! crossterm's `BackTab` (+SHIFT) and `shift-tab` are both `BackTab` without
//! SHIFT; modifiers other than ctrl, alt, shift, super, hyper and meta are
//! dropped (they describe the keyboard state, not the key).

use std::fmt;
use std::str::FromStr;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// One key press as keymap files write it: `j`, `G`, `?`, `ctrl-p`, `shift-tab`, `enter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

const KEPT_MODS: KeyModifiers = KeyModifiers::CONTROL
    .union(KeyModifiers::ALT)
    .union(KeyModifiers::SHIFT)
    .union(KeyModifiers::SUPER)
    .union(KeyModifiers::HYPER)
    .union(KeyModifiers::META);

/// Modifier prefixes in the order `Display` writes them.
const MOD_NAMES: &[(&str, KeyModifiers)] = &[
    ("ctrl", KeyModifiers::CONTROL),
    ("alt", KeyModifiers::ALT),
    ("shift", KeyModifiers::SHIFT),
    ("super", KeyModifiers::SUPER),
    ("hyper", KeyModifiers::HYPER),
    ("meta", KeyModifiers::META),
];

/// Accepted spellings of modifiers (lower case), including common aliases.
const MOD_ALIASES: &[(&str, KeyModifiers)] = &[
    ("ctrl", KeyModifiers::CONTROL),
    ("control", KeyModifiers::CONTROL),
    ("alt", KeyModifiers::ALT),
    ("shift", KeyModifiers::SHIFT),
    ("super", KeyModifiers::SUPER),
    ("hyper", KeyModifiers::HYPER),
    ("meta", KeyModifiers::META),
];

/// Named keys: (canonical name, code). The first spelling of a code is the one `Display` uses.
const NAMED: &[(&str, KeyCode)] = &[
    ("enter", KeyCode::Enter),
    ("return", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("escape", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("backtab", KeyCode::BackTab),
    ("space", KeyCode::Char(' ')),
    ("backspace", KeyCode::Backspace),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("pageup", KeyCode::PageUp),
    ("pagedown", KeyCode::PageDown),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("insert", KeyCode::Insert),
    ("delete", KeyCode::Delete),
    ("del", KeyCode::Delete),
];

impl Key {
    /// A key in normal form (see the module notes).
    pub fn new(code: KeyCode, mods: KeyModifiers) -> Key {
        let mut mods = mods & KEPT_MODS;
        let code = match code {
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            KeyCode::Tab if mods.contains(KeyModifiers::SHIFT) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            KeyCode::Char(c) if mods.contains(KeyModifiers::SHIFT) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::Char(shifted(c))
            }
            other => other,
        };
        Key { code, mods }
    }

    /// A plain character key, e.g. `Key::char('j')`.
    pub fn char(c: char) -> Key {
        Key::new(KeyCode::Char(c), KeyModifiers::NONE)
    }

    /// A key with ctrl held, e.g. `Key::ctrl('p')`.
    pub fn ctrl(c: char) -> Key {
        Key::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    /// A key without modifiers, e.g. `Key::plain(KeyCode::Enter)`.
    pub fn plain(code: KeyCode) -> Key {
        Key::new(code, KeyModifiers::NONE)
    }

    /// Parse a whitespace-separated sequence, e.g. `"g g"`.
    pub fn parse_sequence(s: &str) -> Result<Vec<Key>, KeyParseError> {
        let keys = s
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<Vec<Key>, _>>()?;
        if keys.is_empty() {
            return Err(KeyParseError::Empty);
        }
        Ok(keys)
    }
}

/// The character shift produces for a letter; other characters already are what was typed.
fn shifted(c: char) -> char {
    if c.is_lowercase() {
        let mut upper = c.to_uppercase();
        if let (Some(u), None) = (upper.next(), upper.next()) {
            return u;
        }
    }
    c
}

impl From<KeyEvent> for Key {
    fn from(ev: KeyEvent) -> Self {
        Key::new(ev.code, ev.modifiers)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("empty key")]
    Empty,
    #[error("unknown key name {0:?} (a single character, or enter, esc, tab, space, up, f1 ...)")]
    UnknownName(String),
    #[error("{0:?} is a control character; write it by name (enter, tab, ...)")]
    ControlChar(char),
    #[error("{0:?} is shifted already; write the character itself without shift-")]
    ShiftedSymbol(String),
}

impl FromStr for Key {
    type Err = KeyParseError;

    fn from_str(s: &str) -> Result<Key, KeyParseError> {
        if s.is_empty() {
            return Err(KeyParseError::Empty);
        }
        let mut rest = s;
        let mut mods = KeyModifiers::NONE;
        'prefixes: loop {
            for (name, m) in MOD_ALIASES {
                let plen = name.len() + 1;
                // `ctrl--` is ctrl and `-`; a bare `-` is the key itself.
                if rest.len() > plen
                    && rest.is_char_boundary(plen)
                    && rest[..plen].eq_ignore_ascii_case(&format!("{name}-"))
                {
                    mods |= *m;
                    rest = &rest[plen..];
                    continue 'prefixes;
                }
            }
            break;
        }
        let code = key_code(rest)?;
        if let KeyCode::Char(c) = code
            && mods.contains(KeyModifiers::SHIFT)
            && c != ' '
            && !c.is_lowercase()
            && !c.is_uppercase()
        {
            // `shift-1` means different things on different keyboards.
            return Err(KeyParseError::ShiftedSymbol(s.to_string()));
        }
        Ok(Key::new(code, mods))
    }
}

fn key_code(name: &str) -> Result<KeyCode, KeyParseError> {
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        if c.is_control() {
            return Err(KeyParseError::ControlChar(c));
        }
        return Ok(KeyCode::Char(c));
    }
    let lower = name.to_ascii_lowercase();
    if let Some((_, code)) = NAMED.iter().find(|(n, _)| *n == lower) {
        return Ok(*code);
    }
    if let Some(digits) = lower.strip_prefix('f')
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = digits.parse::<u8>()
        && (1..=12).contains(&n)
    {
        return Ok(KeyCode::F(n));
    }
    Err(KeyParseError::UnknownName(name.to_string()))
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, m) in MOD_NAMES {
            if self.mods.contains(*m) {
                write!(f, "{name}-")?;
            }
        }
        match self.code {
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "f{n}"),
            code => match NAMED.iter().find(|(_, c)| *c == code) {
                Some((name, _)) => f.write_str(name),
                None => write!(f, "{code:?}").map(|_| ()),
            },
        }
    }
}

/// A key sequence as keymap files write it: `g g`.
pub fn display_sequence(keys: &[Key]) -> String {
    keys.iter()
        .map(Key::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn k(s: &str) -> Key {
        s.parse().unwrap()
    }

    #[test]
    fn shift_letter_is_the_capital() {
        assert_eq!(k("shift-g"), k("G"));
        assert_eq!(k("SHIFT-g"), Key::char('G'));
        assert_eq!(k("G").to_string(), "G");
        let ev = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(Key::from(ev), k("G"));
        // Some terminals (kitty protocol) report the base key plus SHIFT.
        let ev = KeyEvent::new(KeyCode::Char('g'), KeyModifiers::SHIFT);
        assert_eq!(Key::from(ev), k("G"));
    }

    #[test]
    fn backtab_and_shift_tab_are_one_key() {
        assert_eq!(k("shift-tab"), k("backtab"));
        assert_eq!(k("Shift-Tab"), k("BackTab"));
        let ev = KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(Key::from(ev), k("shift-tab"));
        assert_eq!(k("backtab").to_string(), "shift-tab");
    }

    #[test]
    fn symbols_typed_with_shift_match_their_notation() {
        let ev = KeyEvent::new(KeyCode::Char('?'), KeyModifiers::SHIFT);
        assert_eq!(Key::from(ev), k("?"));
        let ev = KeyEvent::new(KeyCode::Char(':'), KeyModifiers::SHIFT);
        assert_eq!(Key::from(ev), k(":"));
        assert!(matches!(
            "shift-1".parse::<Key>(),
            Err(KeyParseError::ShiftedSymbol(_))
        ));
    }

    #[test]
    fn modifiers_and_names_are_case_insensitive() {
        assert_eq!(k("CTRL-p"), Key::ctrl('p'));
        assert_eq!(k("Ctrl-Alt-Enter").to_string(), "ctrl-alt-enter");
        assert_eq!(k("alt-ctrl-x").to_string(), "ctrl-alt-x");
        assert_eq!(k("PageDown"), Key::plain(KeyCode::PageDown));
        assert_eq!(k("F12"), Key::plain(KeyCode::F(12)));
        assert_eq!(k("space"), Key::char(' '));
        assert_eq!(k("space").to_string(), "space");
    }

    #[test]
    fn crossterm_ctrl_key_matches_notation() {
        let ev = KeyEvent::new(KeyCode::Char('p'), KeyModifiers::CONTROL);
        assert_eq!(Key::from(ev), k("ctrl-p"));
        let ev = KeyEvent::new(KeyCode::Up, KeyModifiers::SHIFT);
        assert_eq!(Key::from(ev), k("shift-up"));
    }

    #[test]
    fn dash_can_be_a_key_and_a_separator() {
        assert_eq!(k("-"), Key::char('-'));
        assert_eq!(k("ctrl--"), Key::ctrl('-'));
        assert_eq!(k("ctrl--").to_string(), "ctrl--");
    }

    #[test]
    fn bad_notation_is_an_error() {
        assert!("".parse::<Key>().is_err());
        assert!("ctrl-".parse::<Key>().is_err());
        assert!("foo".parse::<Key>().is_err());
        assert!("f13".parse::<Key>().is_err());
        assert!("f01".parse::<Key>().is_err());
        assert!("\u{1b}".parse::<Key>().is_err());
        assert!(Key::parse_sequence("  ").is_err());
        assert_eq!(
            Key::parse_sequence("g g").unwrap(),
            vec![Key::char('g'), Key::char('g')]
        );
    }

    fn arb_code() -> impl Strategy<Value = KeyCode> {
        prop_oneof![
            any::<char>()
                .prop_filter("printable", |c| !c.is_control())
                .prop_map(KeyCode::Char),
            (1u8..=12).prop_map(KeyCode::F),
            prop::sample::select(NAMED.iter().map(|(_, c)| *c).collect::<Vec<_>>()),
        ]
    }

    fn arb_mods() -> impl Strategy<Value = KeyModifiers> {
        any::<u8>().prop_map(KeyModifiers::from_bits_truncate)
    }

    proptest! {
        #[test]
        fn display_then_parse_round_trips(code in arb_code(), mods in arb_mods()) {
            let key = Key::new(code, mods);
            let shown = key.to_string();
            let back: Key = shown.parse().map_err(|e| TestCaseError::fail(format!("{shown:?}: {e}")))?;
            prop_assert_eq!(back, key);
            prop_assert_eq!(back.to_string(), shown);
        }

        #[test]
        fn parser_never_panics(s in ".*") {
            let _ = s.parse::<Key>();
            let _ = Key::parse_sequence(&s);
        }

        #[test]
        fn parsed_keys_display_and_reparse(s in "((ctrl|alt|shift|CTRL|Shift)-)*([a-zA-Z0-9?/:\\-]|enter|tab|backtab|space|f[0-9]{1,2}|pageup)") {
            if let Ok(key) = s.parse::<Key>() {
                let back: Key = key.to_string().parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
                prop_assert_eq!(back, key);
            }
        }
    }
}
