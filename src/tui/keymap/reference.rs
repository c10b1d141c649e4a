//! The keymap as text: `chartty keys` and `docs/keymap.md`.

use std::fmt::Write;

use super::{Context, Keymap, display_sequence};

/// The effective keymap as Markdown, one table per section in file order.
/// Bindings of one section with the same action and description share a row.
pub fn reference(keymap: &Keymap) -> String {
    let mut out = String::new();
    for context in Context::ALL {
        let mut rows: Vec<(Vec<String>, &str, &str)> = Vec::new();
        for b in keymap.bindings(context) {
            let keys = format!("`{}`", escape_cell(&display_sequence(&b.keys)));
            match rows
                .iter_mut()
                .find(|(_, action, desc)| *action == b.action.name() && *desc == b.desc)
            {
                Some(row) => row.0.push(keys),
                None => rows.push((vec![keys], b.action.name(), &b.desc)),
            }
        }
        let _ = writeln!(out, "## [{}]\n", context.name());
        let note = match context {
            Context::Global => None,
            Context::Input => Some(
                "While a text box (the search box) has the focus. Keys here never fall \
                 through to [global]; a printable key bound to nothing is typed."
                    .to_string(),
            ),
            Context::Viewer => Some(
                "While a popup to read is open (help, the raw view). Nothing falls through \
                 to [global]."
                    .to_string(),
            ),
            Context::Palette => Some(
                "While the command palette is open. A printable key bound to nothing is \
                 typed into its query."
                    .to_string(),
            ),
            Context::Confirm => {
                Some("While a yes/no question is open; any other key answers no.".to_string())
            }
            Context::Editor => Some(
                "While a note is being written in the editor. Keys here never fall through \
                 to [global]: a printable key bound to nothing is typed into the note, and \
                 other unbound keys edit it (arrows, backspace, home, end, ctrl-u undo, ctrl-r redo)."
                    .to_string(),
            ),
            Context::Picklist => Some(
                "While a pick-list of the note is open. Digits 1-9 choose (several, in a \
                 list that takes several), space toggles the choice under the cursor; \
                 nothing falls through to [global]."
                    .to_string(),
            ),
            pane => Some(format!(
                "Looked up before [global] while the {} pane has the focus.",
                pane.name()
            )),
        };
        if let Some(note) = note {
            let _ = writeln!(out, "{note}\n");
        }
        if rows.is_empty() {
            let _ = writeln!(out, "(no keys of its own)\n");
            continue;
        }
        out.push_str("| keys | action | description |\n| --- | --- | --- |\n");
        for (keys, action, desc) in rows {
            let _ = writeln!(
                out,
                "| {} | `{action}` | {} |",
                keys.join(", "),
                escape_cell(desc)
            );
        }
        out.push('\n');
    }
    out
}

/// `docs/keymap.md`: how to change keys, then the reference of `keymap`.
pub fn document(keymap: &Keymap) -> String {
    let mut out = String::from(PREAMBLE);
    out.push_str(&reference(keymap));
    out.push_str(&actions_table());
    out
}

fn actions_table() -> String {
    let mut out = String::from(
        "## Actions\n\nEvery name `run` accepts, whether or not a key is bound to it.\n\n\
         | action | description |\n| --- | --- |\n",
    );
    for a in crate::tui::action::Action::ALL {
        let _ = writeln!(out, "| `{}` | {} |", a.name(), escape_cell(a.description()));
    }
    out
}

fn escape_cell(s: &str) -> String {
    s.replace('|', "\\|")
}

const PREAMBLE: &str = r#"<!-- Generated from keymaps/default.toml by chartty::tui::keymap::document.
     Do not edit: run `UPDATE_DOCS=1 cargo test --test keymap_docs` after changing the keymap. -->
# Keys

chartty is driven from the keyboard. `chartty keys` prints the keys in force
(the defaults below merged with your own file); `?` shows the keys of the
focused pane and the global ones, `:` or `ctrl-p` searches every action by
name, and after the first key of a sequence such as `g` a small box lists what
may follow.

## Changing keys

Put your changes in `$XDG_CONFIG_HOME/chartty/keymap.toml` (on Linux usually
`~/.config/chartty/keymap.toml`; another path can be set with `keymap_file` in
the configuration, see [configuration.md](configuration.md)). It has the same
format as the built-in file: one section per context, each a list of entries.

```toml
[global]
keymap = [
    { on = "ctrl-q", run = "quit" },                      # add a key
    { on = "x", run = "noop" },                           # unbind a default
    { on = ["g", "h"], run = "pane_search", desc = "Home" }, # a sequence
]

[results]
keymap = [
    { on = "space", run = "open" },
]
```

- `on` is one key or a sequence: `"q"`, `"ctrl-p"`, `["g", "g"]` (or `"g g"`).
- `run` is an action name from the table at the end of this page.
- `desc` is optional; the action's description is used otherwise.
- An entry with the same `on` in the same section replaces the built-in one;
  other entries are added after the built-in ones; `run = "noop"` unbinds.
- A pane's section is looked up before `[global]`, so a pane may give a global
  key another meaning while it has the focus.
- `[input]`, `[viewer]`, `[palette]` and `[confirm]` are layers above the panes
  (a text box with the focus, a popup): their keys never fall through to
  `[global]`, and in `[input]` and `[palette]` a printable key bound to nothing
  is typed. So editing keys can be rebound like any other. `[editor]` and
  `[picklist]` work the same way while a note is being written.

Key notation: a single character as typed (`j`, `G`, `?`, `/`, `:`); named keys
`enter`, `esc`, `tab`, `shift-tab` (or `backtab`), `space`, `backspace`, `up`,
`down`, `left`, `right`, `pageup`, `pagedown`, `home`, `end`, `insert`,
`delete`, `f1` to `f12`; modifiers `ctrl-`, `alt-`, `shift-`. Names and
modifiers are case-insensitive, the character is not: `shift-g` is `G`. For a
symbol typed with shift, write the symbol itself (`?`, not `shift-/`).

When something in your file is wrong, chartty starts anyway and shows a
warning naming the file, the line and the problem:

- a file that is not valid TOML, or whose shape is wrong (a section that is not
  a table, `keymap` that is not a list), is ignored as a whole and the built-in
  keys stay in force;
- a single bad entry (unknown action, a key it cannot read, a missing `on` or
  `run`, a sequence that starts another one, like `g` next to `g g`) is skipped
  and the rest of the file applies. To bind `g` alone, first unbind every
  `g ...` sequence in that section with `run = "noop"`.

# Default keys

"#;
