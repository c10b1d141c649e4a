//! Reading keymap files and merging them over what is already bound.

use crate::config::line_of;
use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use toml::Spanned;

use super::{Binding, Context, Key, Keymap, display_sequence};
use crate::fhir::sanitize::sanitize;
use crate::tui::action::Action;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSection {
    #[serde(default)]
    keymap: Vec<Spanned<toml::Value>>,
}

type RawFile = BTreeMap<Spanned<String>, RawSection>;

/// One valid entry of a file.
struct Entry {
    context: Context,
    keys: Vec<Key>,
    action: Action,
    desc: Option<String>,
    line: usize,
}

/// Merge `src` into `keymap`; returns the warnings, each naming `origin` and a line.
pub(super) fn merge_source(keymap: &mut Keymap, src: &str, origin: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    let raw: RawFile = match toml::from_str(src) {
        Ok(raw) => raw,
        Err(e) => {
            let line = e.span().map_or(1, |s| line_of(src, s.start));
            warnings.push(format!(
                "{origin}:{line}: {}; the file is ignored and the built-in keys stay in force",
                e.message().trim_end()
            ));
            return warnings;
        }
    };

    let mut entries = Vec::new();
    for (name, section) in raw {
        let line = line_of(src, name.span().start);
        let Some(context) = Context::from_name(name.get_ref()) else {
            warnings.push(format!(
                "{origin}:{line}: unknown section [{}] (expected one of {}); skipped",
                sanitize(name.get_ref()),
                Context::ALL.map(Context::name).join(", ")
            ));
            continue;
        };
        for value in section.keymap {
            let line = line_of(src, value.span().start);
            match parse_entry(context, value.get_ref(), line, &mut warnings, origin) {
                Ok(entry) => entries.push(entry),
                Err(what) => warnings.push(format!("{origin}:{line}: [{context}] {what}; skipped")),
            }
        }
    }

    // The same `on` twice in one section of one file: the later entry wins.
    let mut seen: HashMap<(Context, Vec<Key>), usize> = HashMap::new();
    for e in &entries {
        if let Some(first) = seen.insert((e.context, e.keys.clone()), e.line) {
            warnings.push(format!(
                "{origin}:{}: [{}] `{}` is bound twice in this file (also line {first}); the later entry wins",
                e.line,
                e.context,
                display_sequence(&e.keys)
            ));
        }
    }

    // Unbinding first, so that a file may free `g` from `g g` and then bind `g`.
    for e in entries.iter().filter(|e| e.action == Action::Noop) {
        let before = keymap.bindings.len();
        keymap
            .bindings
            .retain(|b| !(b.context == e.context && b.keys == e.keys));
        if keymap.bindings.len() == before && !entries_bind(&entries, e) {
            warnings.push(format!(
                "{origin}:{}: [{}] `{}` was not bound; nothing to unbind",
                e.line,
                e.context,
                display_sequence(&e.keys)
            ));
        }
    }

    for e in entries.into_iter().filter(|e| e.action != Action::Noop) {
        let desc = e.desc.unwrap_or_else(|| e.action.description().to_string());
        if let Some(b) = keymap
            .bindings
            .iter_mut()
            .find(|b| b.context == e.context && b.keys == e.keys)
        {
            b.action = e.action;
            b.desc = desc;
            continue;
        }
        let clash = keymap.bindings.iter().find(|b| {
            b.context == e.context && (b.keys.starts_with(&e.keys) || e.keys.starts_with(&b.keys))
        });
        if let Some(b) = clash {
            let (short, long) = if b.keys.len() < e.keys.len() {
                (&b.keys, &e.keys)
            } else {
                (&e.keys, &b.keys)
            };
            warnings.push(format!(
                "{origin}:{}: [{}] `{}` clashes with `{}` ({}): `{}` is the start of `{}`; \
                 unbind `{}` with run = \"noop\" first; skipped",
                e.line,
                e.context,
                display_sequence(&e.keys),
                display_sequence(&b.keys),
                b.action.name(),
                display_sequence(short),
                display_sequence(long),
                display_sequence(&b.keys),
            ));
            continue;
        }
        keymap.bindings.push(Binding {
            context: e.context,
            keys: e.keys,
            action: e.action,
            desc,
        });
    }
    keymap.rebuild_tries();
    warnings
}

/// Whether the file itself binds the sequence a `noop` entry names (unbind, then rebind).
fn entries_bind(entries: &[Entry], noop: &Entry) -> bool {
    entries
        .iter()
        .any(|e| e.action != Action::Noop && e.context == noop.context && e.keys == noop.keys)
}

fn parse_entry(
    context: Context,
    value: &toml::Value,
    line: usize,
    warnings: &mut Vec<String>,
    origin: &str,
) -> Result<Entry, String> {
    let table = value
        .as_table()
        .ok_or("an entry must be a table like { on = \"q\", run = \"quit\" }")?;
    for field in table.keys() {
        if !matches!(field.as_str(), "on" | "run" | "desc") {
            warnings.push(format!(
                "{origin}:{line}: [{context}] unknown field `{}` (expected on, run, desc); ignored",
                sanitize(field)
            ));
        }
    }
    let keys = match table.get("on") {
        None => return Err("missing `on` (the key or key sequence)".into()),
        Some(toml::Value::String(s)) => parse_keys(std::slice::from_ref(s))?,
        Some(toml::Value::Array(items)) => {
            let strings = items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or("`on` must be a key or a list of keys, all strings")?;
            parse_keys(&strings)?
        }
        Some(_) => return Err("`on` must be a key or a list of keys".into()),
    };
    let run = match table.get("run") {
        None => return Err("missing `run` (an action name, see `chartty keys`)".into()),
        Some(v) => v.as_str().ok_or("`run` must be an action name")?,
    };
    let action = Action::from_name(run).ok_or_else(|| {
        format!(
            "unknown action {:?} (see `chartty keys` or docs/keymap.md)",
            sanitize(run)
        )
    })?;
    let desc = match table.get("desc") {
        None => None,
        Some(v) => Some(
            sanitize(v.as_str().ok_or("`desc` must be a string")?)
                .replace('\n', " ")
                .to_string(),
        ),
    };
    Ok(Entry {
        context,
        keys,
        action,
        desc,
        line,
    })
}

fn parse_keys(parts: &[String]) -> Result<Vec<Key>, String> {
    if parts.is_empty() {
        return Err("`on` is an empty list".into());
    }
    let mut keys = Vec::with_capacity(parts.len());
    for part in parts {
        // `on = "g g"` and `on = ["g", "g"]` mean the same sequence.
        let seq = Key::parse_sequence(part)
            .map_err(|e| format!("bad key {:?} in `on`: {e}", sanitize(part)))?;
        keys.extend(seq);
    }
    Ok(keys)
}
