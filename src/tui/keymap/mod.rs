//! Keymaps: the embedded `keymaps/default.toml` merged with the user's file,
//! looked up as a trie so multi-key sequences (`g g`) have a pending state.
//!
//! The user's file follows the same format. An entry with the same `on` in the
//! same section replaces the default, a new one is added, `run = "noop"`
//! unbinds. A file that is not valid TOML (or whose shape is wrong) is
//! ignored as a whole; a single bad entry (unknown action, bad key, a
//! sequence that clashes with the start of another) is skipped and the rest
//! of the file applies. Either way the user gets a warning with file and line.

mod file;
mod key;
mod reference;
mod trie;

use std::fmt;
use std::path::Path;

pub use key::{Key, KeyParseError, display_sequence};
pub use reference::{document, reference};

use crate::tui::action::Action;
use trie::Trie;

/// The embedded default keymap, as shipped in `keymaps/default.toml`.
pub const DEFAULT_KEYMAP: &str = include_str!("../../../keymaps/default.toml");

/// Keymap sections: `[global]`, one per pane, and one per layer that takes
/// keys before the panes (a text input, the popups).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    Global,
    Search,
    Summary,
    Results,
    Notes,
    Tasks,
    /// A focused text input (the search box). A printable key bound to
    /// nothing here is typed into it.
    Input,
    /// A popup that shows text to read and scroll (help, raw view).
    Viewer,
    /// The command palette (a text input with a list).
    Palette,
    /// A yes/no question.
    Confirm,
    /// The note editor (a pane whose keys never fall through to `[global]`).
    Editor,
    /// A pick-list open in the editor.
    Picklist,
}

impl Context {
    /// Every section, in the order the default file and the reference list them.
    pub const ALL: [Context; 12] = [
        Context::Global,
        Context::Search,
        Context::Summary,
        Context::Results,
        Context::Notes,
        Context::Tasks,
        Context::Input,
        Context::Viewer,
        Context::Palette,
        Context::Confirm,
        Context::Editor,
        Context::Picklist,
    ];

    /// The section name in keymap files.
    pub fn name(self) -> &'static str {
        match self {
            Context::Global => "global",
            Context::Search => "search",
            Context::Summary => "summary",
            Context::Results => "results",
            Context::Notes => "notes",
            Context::Tasks => "tasks",
            Context::Input => "input",
            Context::Viewer => "viewer",
            Context::Palette => "palette",
            Context::Confirm => "confirm",
            Context::Editor => "editor",
            Context::Picklist => "picklist",
        }
    }

    /// Panes fall back to `[global]`; layers do not: a letter typed into
    /// the search box is a letter, not a command.
    pub fn falls_back_to_global(self) -> bool {
        matches!(
            self,
            Context::Search | Context::Summary | Context::Results | Context::Notes | Context::Tasks
        )
    }

    pub fn from_name(name: &str) -> Option<Context> {
        Context::ALL.into_iter().find(|c| c.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone)]
pub struct Binding {
    pub context: Context,
    pub keys: Vec<Key>,
    pub action: Action,
    /// The entry's `desc`, or the action's description.
    pub desc: String,
}

/// A key pressed in a layer (a text input or a popup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKey {
    Action(Action),
    /// A printable key bound to nothing: typed.
    Text(char),
    Nothing,
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
    /// One trie per section, indexed by `Context::index`; leaves hold indices into `bindings`.
    tries: [Trie; Context::ALL.len()],
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
        let mut keymap = Keymap::default();
        let warnings = file::merge_source(&mut keymap, DEFAULT_KEYMAP, "keymaps/default.toml");
        // The shipped file is checked by the tests; nothing to show at run time.
        debug_assert!(warnings.is_empty(), "{warnings:?}");
        keymap
    }

    /// Defaults merged with the user's file (missing file: defaults, no warning).
    pub fn load(user_file: Option<&Path>) -> KeymapLoad {
        let mut keymap = Keymap::defaults();
        let mut warnings = Vec::new();
        if let Some(path) = user_file {
            match std::fs::read_to_string(path) {
                Ok(src) => {
                    warnings = file::merge_source(&mut keymap, &src, &path.display().to_string());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => warnings.push(format!(
                    "{}: cannot read keymap ({e}); using the built-in keys",
                    path.display()
                )),
            }
        }
        KeymapLoad { keymap, warnings }
    }

    /// Defaults merged with a keymap given as text (`origin` names it in warnings).
    pub fn load_str(src: &str, origin: &str) -> KeymapLoad {
        let mut keymap = Keymap::defaults();
        let warnings = file::merge_source(&mut keymap, src, origin);
        KeymapLoad { keymap, warnings }
    }

    /// The pane's section first, then global.
    pub fn lookup(&self, context: Context, pending: &[Key], key: Key) -> Lookup<'_> {
        let mut seq = Vec::with_capacity(pending.len() + 1);
        seq.extend_from_slice(pending);
        seq.push(key);
        let pane = (context != Context::Global).then(|| self.tries[context.index()].find(&seq));
        let global = (context == Context::Global || context.falls_back_to_global())
            .then(|| self.tries[Context::Global.index()].find(&seq))
            .flatten();

        if let Some(Some(node)) = pane {
            if let Some(i) = node.binding {
                return Lookup::Action(self.bindings[i].action);
            }
            // The pane's sequences come first; global ones it does not shadow follow.
            let mut idx = node.descendants();
            if let Some(g) = global {
                let shadowed = |i: &usize| {
                    self.tries[context.index()]
                        .find(&self.bindings[*i].keys)
                        .is_some()
                };
                idx.extend(g.descendants().into_iter().filter(|i| !shadowed(i)));
            }
            return Lookup::Pending(idx.into_iter().map(|i| &self.bindings[i]).collect());
        }
        match global {
            Some(node) => match node.binding {
                Some(i) => Lookup::Action(self.bindings[i].action),
                None => Lookup::Pending(
                    node.descendants()
                        .into_iter()
                        .map(|i| &self.bindings[i])
                        .collect(),
                ),
            },
            None => Lookup::Unbound,
        }
    }

    /// A single key in a layer's section; an unbound printable key (no
    /// ctrl or alt) is text. Layers have no multi-key sequences.
    pub fn layer_key(
        &self,
        context: Context,
        key: ratatui::crossterm::event::KeyEvent,
    ) -> LayerKey {
        use ratatui::crossterm::event::{KeyCode, KeyModifiers};
        if let Lookup::Action(a) = self.lookup(context, &[], Key::from(key)) {
            return LayerKey::Action(a);
        }
        match key.code {
            KeyCode::Char(c)
                if !key
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
                    && !c.is_control() =>
            {
                LayerKey::Text(c)
            }
            _ => LayerKey::Nothing,
        }
    }

    /// What a complete sequence does in `context`, if anything.
    pub fn resolve(&self, context: Context, keys: &[Key]) -> Option<Action> {
        let (last, pending) = keys.split_last()?;
        match self.lookup(context, pending, *last) {
            Lookup::Action(a) => Some(a),
            _ => None,
        }
    }

    /// Bindings of one section, in file order.
    pub fn bindings(&self, context: Context) -> impl Iterator<Item = &Binding> {
        self.bindings.iter().filter(move |b| b.context == context)
    }

    /// Key sequences bound to `action` in `context` (then global), for key hints.
    pub fn keys_for(&self, context: Context, action: Action) -> Vec<&[Key]> {
        let mut out: Vec<&[Key]> = Vec::new();
        if context != Context::Global {
            out.extend(
                self.bindings(context)
                    .filter(|b| b.action == action)
                    .map(|b| b.keys.as_slice()),
            );
        }
        if !(context == Context::Global || context.falls_back_to_global()) {
            return out;
        }
        out.extend(
            self.bindings(Context::Global)
                .filter(|b| b.action == action)
                // A global key the pane rebinds does something else here.
                .filter(|b| self.resolve(context, &b.keys) == Some(action))
                .map(|b| b.keys.as_slice()),
        );
        out
    }

    fn rebuild_tries(&mut self) {
        self.tries = Default::default();
        for (i, b) in self.bindings.iter().enumerate() {
            self.tries[b.context.index()].insert(&b.keys, i);
        }
    }
}

#[cfg(test)]
mod tests;
