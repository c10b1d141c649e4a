//! Keymaps: the embedded `keymaps/default.toml` merged with the user's file,
//! looked up as a trie so multi-key sequences (`g g`) have a pending state.

use std::path::Path;

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::tui::action::Action;

/// One key press as keymap files write it: `j`, `G`, `?`, `ctrl-p`, `shift-tab`, `enter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl From<KeyEvent> for Key {
    fn from(ev: KeyEvent) -> Self {
        Key {
            code: ev.code,
            mods: ev.modifiers,
        }
    }
}

/// Keymap sections: `[global]` and one per pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    Global,
    Search,
    Summary,
    Results,
    Notes,
    Tasks,
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub context: Context,
    pub keys: Vec<Key>,
    pub action: Action,
    /// The entry's `desc`, or the action's description.
    pub desc: String,
}

/// What a key press means, given the keys already pending.
#[derive(Debug)]
pub enum Lookup<'a> {
    Action(Action),
    /// The keys so far start one or more sequences; these are the candidates (which-key).
    Pending(Vec<&'a Binding>),
    Unbound,
}

#[derive(Debug, Clone, Default)]
pub struct Keymap {
    bindings: Vec<Binding>,
}

/// A keymap and what was wrong with the user's file, if anything.
#[derive(Debug)]
pub struct KeymapLoad {
    pub keymap: Keymap,
    /// Shown to the user: file, line, what is wrong. Defaults stay in force.
    pub warnings: Vec<String>,
}

impl Keymap {
    /// The embedded defaults.
    pub fn defaults() -> Keymap {
        Keymap::default()
    }

    /// Defaults merged with the user's file (missing file: defaults, no warning).
    pub fn load(user_file: Option<&Path>) -> KeymapLoad {
        let _ = user_file;
        KeymapLoad {
            keymap: Keymap::defaults(),
            warnings: Vec::new(),
        }
    }

    /// The pane's section first, then global.
    pub fn lookup(&self, context: Context, pending: &[Key], key: Key) -> Lookup<'_> {
        let _ = (context, pending, key);
        Lookup::Unbound
    }

    /// Bindings of one section, in file order.
    pub fn bindings(&self, context: Context) -> impl Iterator<Item = &Binding> {
        self.bindings.iter().filter(move |b| b.context == context)
    }

    /// Key sequences bound to `action` in `context` (then global), for key hints.
    pub fn keys_for(&self, context: Context, action: Action) -> Vec<&[Key]> {
        let _ = (context, action);
        Vec::new()
    }
}
