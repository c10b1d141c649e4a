//! Smart phrases: `.vitals`, `.meds`, `.allergies`, `.probs`, `.labs`,
//! `.a1c` expand in place from the live chart; a user's own `.name` phrases
//! (`$XDG_CONFIG_HOME/chartty/phrases.toml`) expand from their text, which
//! may hold fields and data links like a template.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::config::line_of;
use crate::notes::fields::{DataLink, Placeholder, placeholders};
use crate::notes::fill::{Filled, NoteContext, fill};

/// The built-in phrases: name, what it inserts, the data link behind it.
pub fn built_in() -> Vec<(&'static str, &'static str, DataLink)> {
    vec![
        (
            "vitals",
            "the latest vital signs with their times",
            DataLink::Vitals,
        ),
        (
            "meds",
            "active medications with their doses",
            DataLink::Medications,
        ),
        (
            "allergies",
            "allergies, as the banner reads them",
            DataLink::Allergies,
        ),
        ("probs", "active problems", DataLink::Problems),
        ("labs", "the latest value of each key lab", DataLink::Labs),
        (
            "a1c",
            "the last three HbA1c values",
            DataLink::Results {
                loinc: "4548-4".into(),
                n: 3,
            },
        ),
    ]
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Phrases {
    /// The user's phrases by name (without the dot).
    pub user: BTreeMap<String, String>,
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhrases {
    #[serde(default)]
    phrases: BTreeMap<String, String>,
}

impl Phrases {
    /// The user's file; missing is fine, broken is a warning naming the line.
    pub fn load(path: Option<&Path>) -> Phrases {
        let Some(path) = path else {
            return Phrases::default();
        };
        match std::fs::read_to_string(path) {
            Ok(src) => Phrases::parse(&src, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Phrases::default(),
            Err(e) => Phrases {
                warnings: vec![format!("{}: cannot read phrases ({e})", path.display())],
                ..Phrases::default()
            },
        }
    }

    pub fn parse(src: &str, origin: &str) -> Phrases {
        let raw: RawPhrases = match toml::from_str(src) {
            Ok(r) => r,
            Err(e) => {
                let line = e.span().map_or(1, |s| line_of(src, s.start));
                return Phrases {
                    warnings: vec![format!(
                        "{origin}:{line}: {}; your phrases are not loaded",
                        e.message().trim_end()
                    )],
                    ..Phrases::default()
                };
            }
        };
        let mut out = Phrases::default();
        let reserved: Vec<&str> = built_in().iter().map(|(n, _, _)| *n).collect();
        for (name, text) in raw.phrases {
            let line = src.find(&name).map_or(1, |i| line_of(src, i));
            let ok_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ok_name {
                out.warnings.push(format!(
                    "{origin}:{line}: phrase name {name:?} must be letters, digits, - or _; skipped"
                ));
            } else if reserved.contains(&name.as_str()) {
                out.warnings.push(format!(
                    "{origin}:{line}: .{name} is a built-in phrase; skipped"
                ));
            } else if let Some(Placeholder::Unknown { what, .. }) = placeholders(&text)
                .into_iter()
                .find(|p| matches!(p, Placeholder::Unknown { .. }))
            {
                out.warnings.push(format!(
                    "{origin}:{line}: unknown field {{{{{what}}}}} in .{name}; skipped"
                ));
            } else {
                out.user.insert(name, text);
            }
        }
        out
    }

    /// The text `.name` expands to, or `None` for no such phrase.
    pub fn expand(&self, name: &str, ctx: &NoteContext) -> Option<Filled> {
        if let Some((_, _, link)) = built_in().into_iter().find(|(n, _, _)| *n == name) {
            let text = crate::notes::fill::data(&link, ctx);
            return Some(Filled {
                blocks: vec![(link, text.clone())],
                text,
            });
        }
        self.user.get(name).map(|t| fill(t, ctx))
    }

    /// Every phrase with what it inserts, for `chartty phrases`.
    pub fn list(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = built_in()
            .into_iter()
            .map(|(n, d, _)| (format!(".{n}"), format!("{d} (from the open chart)")))
            .collect();
        out.extend(self.user.iter().map(|(n, t)| {
            let first = t.lines().next().unwrap_or("");
            (format!(".{n}"), format!("your phrase: {first}"))
        }));
        out
    }
}

/// The `.name` just before column `col` of `line`: the phrase name and
/// the column where its dot is.
pub fn phrase_before(line: &str, col: usize) -> Option<(String, usize)> {
    let before: Vec<char> = line.chars().take(col).collect();
    let start = before
        .iter()
        .rposition(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))?;
    if before[start] != '.' || start + 1 == before.len() {
        return None;
    }
    // A dot inside a word or number (`e.g`, `5.0`) is not a phrase.
    if start > 0 && !before[start - 1].is_whitespace() {
        return None;
    }
    Some((before[start + 1..].iter().collect(), start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phrase_is_the_dotted_word_before_the_cursor() {
        assert_eq!(phrase_before(".vitals", 7), Some(("vitals".into(), 0)));
        assert_eq!(phrase_before("BP ok. .meds", 12), Some(("meds".into(), 7)));
        assert_eq!(phrase_before("K 5.0", 5), None);
        assert_eq!(phrase_before("see e.g", 7), None);
        assert_eq!(phrase_before("ends with .", 11), None);
        assert_eq!(phrase_before("Née .a1c", 8), Some(("a1c".into(), 4)));
    }

    #[test]
    fn user_phrases_load_with_the_same_error_rules() {
        let p = Phrases::parse(
            "[phrases]\nnkda = \"No known drug allergies.\"\nrtc = \"Return in {{pick: When | 1 week | 2 weeks}}\"\nvitals = \"mine\"\nbad = \"{{vitalz}}\"\n\"with space\" = \"x\"\n",
            "phrases.toml",
        );
        assert_eq!(p.user.keys().collect::<Vec<_>>(), ["nkda", "rtc"]);
        assert_eq!(p.warnings.len(), 3, "{:?}", p.warnings);
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("phrases.toml:5: unknown field {{vitalz}}"))
        );
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains(".vitals is a built-in"))
        );
        let broken = Phrases::parse("[phrases\n", "p.toml");
        assert!(
            broken.warnings[0].starts_with("p.toml:1:"),
            "{:?}",
            broken.warnings
        );
        let listed: Vec<String> = p.list().into_iter().map(|(n, _)| n).collect();
        assert!(listed.contains(&".a1c".to_string()) && listed.contains(&".rtc".to_string()));
    }
}
