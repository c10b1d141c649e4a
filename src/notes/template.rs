//! Note templates: TOML files with a name, a title, the LOINC document type,
//! the roles that may use them, and the text with its fields.
//!
//! Built-in templates are embedded from `templates/`; a site's
//! (`/etc/chartty/templates/*.toml`) and a user's
//! (`$XDG_CONFIG_HOME/chartty/templates/*.toml`) add to them or replace one
//! by name. As with keymaps, a broken file is named with its line and the
//! problem, and every other template still loads.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::line_of;
use crate::fhir::sanitize::sanitize;
use crate::notes::fields::{Placeholder, placeholders};
use crate::roles::Role;

/// The templates shipped in `templates/`.
pub const BUILT_IN: &[(&str, &str)] = &[
    (
        "progress.toml",
        include_str!("../../templates/progress.toml"),
    ),
    (
        "nurse_triage.toml",
        include_str!("../../templates/nurse_triage.toml"),
    ),
    ("refill.toml", include_str!("../../templates/refill.toml")),
    (
        "result_followup.toml",
        include_str!("../../templates/result_followup.toml"),
    ),
    (
        "telephone.toml",
        include_str!("../../templates/telephone.toml"),
    ),
    (
        "procedure.toml",
        include_str!("../../templates/procedure.toml"),
    ),
];

/// The system-wide template folder.
pub const SYSTEM_DIR: &str = "/etc/chartty/templates";

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Unique; a later file with the same name replaces an earlier one.
    pub name: String,
    pub title: String,
    /// LOINC document type (`DocumentReference.type`), e.g. 11506-3.
    pub loinc: String,
    pub loinc_display: String,
    /// Who may use it, the role that writes it most first.
    pub roles: Vec<Role>,
    pub text: String,
}

impl Template {
    pub fn allows(&self, role: Option<Role>) -> bool {
        role.is_none_or(|r| self.roles.contains(&r))
    }

    /// How high it sorts for `role`: the role named first writes it most.
    pub fn rank_for(&self, role: Option<Role>) -> usize {
        role.and_then(|r| self.roles.iter().position(|x| *x == r))
            .unwrap_or(usize::MAX)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplate {
    name: String,
    title: String,
    loinc: String,
    loinc_display: String,
    roles: Vec<String>,
    text: toml::Spanned<String>,
}

/// Read one template file's text; `origin` names it in errors.
pub fn parse(src: &str, origin: &str) -> Result<Template, String> {
    let raw: RawTemplate = toml::from_str(src).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(src, s.start));
        format!("{origin}:{line}: {}", e.message().trim_end())
    })?;
    let at = |offset: usize| line_of(src, offset);
    let name_ok = !raw.name.is_empty()
        && raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return Err(format!(
            "{origin}:1: name {:?} must be letters, digits, - or _",
            raw.name
        ));
    }
    let loinc_ok = raw.loinc.split_once('-').is_some_and(|(a, b)| {
        !a.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.len() == 1
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    if !loinc_ok {
        return Err(format!(
            "{origin}:1: loinc {:?} is not a LOINC code like 11506-3",
            raw.loinc
        ));
    }
    let mut roles = Vec::new();
    for r in &raw.roles {
        roles.push(r.parse::<Role>().map_err(|e| format!("{origin}:1: {e}"))?);
    }
    if roles.is_empty() {
        return Err(format!("{origin}:1: roles is empty: no one could use it"));
    }
    // Every field in the text must be one chartty knows.
    let text_start = raw.text.span().start;
    for p in placeholders(raw.text.get_ref()) {
        if let Placeholder::Unknown { what, .. } = p {
            // Found again in the file itself: escapes and the string's own
            // delimiters make offsets in the value differ from the source's.
            let needle = format!("{{{{{what}");
            let pos = src[text_start..]
                .find(&needle)
                .map_or(text_start, |i| text_start + i);
            return Err(format!(
                "{origin}:{}: unknown field {{{{{what}}}}}",
                at(pos)
            ));
        }
    }
    // Titles are drawn in the picker and the editor; a site's template
    // file is not the user's own text.
    Ok(Template {
        name: raw.name,
        title: sanitize(&raw.title).into_owned(),
        loinc: raw.loinc,
        loinc_display: sanitize(&raw.loinc_display).into_owned(),
        roles,
        text: raw.text.into_inner().trim_start_matches('\n').to_string(),
    })
}

/// Templates and what was wrong with the files that did not load.
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    pub templates: Vec<Template>,
    pub warnings: Vec<String>,
}

impl TemplateSet {
    /// The built-in templates.
    pub fn built_in() -> TemplateSet {
        let mut set = TemplateSet::default();
        for (file, src) in BUILT_IN {
            set.add(src, &format!("templates/{file}"));
        }
        set
    }

    /// Built-ins, then the site's folder, then the user's (each optional).
    pub fn load(site: Option<&Path>, user: Option<&Path>) -> TemplateSet {
        let mut set = TemplateSet::built_in();
        for dir in [site, user].into_iter().flatten() {
            set.add_dir(dir);
        }
        set
    }

    fn add_dir(&mut self, dir: &Path) {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(e) => {
                self.warnings
                    .push(format!("{}: cannot read templates ({e})", dir.display()));
                return;
            }
        };
        files.sort();
        for path in files {
            match std::fs::read_to_string(&path) {
                Ok(src) => self.add(&src, &path.display().to_string()),
                Err(e) => self
                    .warnings
                    .push(format!("{}: cannot read ({e})", path.display())),
            }
        }
    }

    /// Add one file's template, replacing one of the same name.
    pub fn add(&mut self, src: &str, origin: &str) {
        match parse(src, origin) {
            Ok(t) => match self.templates.iter_mut().find(|x| x.name == t.name) {
                Some(old) => *old = t,
                None => self.templates.push(t),
            },
            Err(e) => self
                .warnings
                .push(format!("{e}; the template is not loaded")),
        }
    }

    /// The templates `role` may use, the ones it writes most first.
    pub fn for_role(&self, role: Option<Role>) -> Vec<&Template> {
        let mut v: Vec<&Template> = self.templates.iter().filter(|t| t.allows(role)).collect();
        v.sort_by_key(|t| t.rank_for(role));
        v
    }

    pub fn get(&self, name: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn titles_are_drawn_neutralised() {
        let t = parse(
            "name = \"x\"\ntitle = \"Visit \\u001b]0;t\\u0007\\u202e\"\nloinc = \"11506-3\"\nloinc_display = \"P\\u200dN\"\nroles = [\"nurse\"]\ntext = \"x\"\n",
            "t.toml",
        );
        let t = t.unwrap();
        assert_eq!(t.title, "Visit ␛]0;t␇⟨U+202E⟩");
        assert_eq!(t.loinc_display, "P⟨U+200D⟩N");
    }

    #[test]
    fn the_built_in_templates_load_and_name_their_loinc_types() {
        let set = TemplateSet::built_in();
        assert!(set.warnings.is_empty(), "{:?}", set.warnings);
        let names: Vec<&str> = set.templates.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "progress",
                "nurse-triage",
                "refill",
                "result-followup",
                "telephone",
                "procedure"
            ]
        );
        assert_eq!(
            set.get("progress").map(|t| t.loinc.as_str()),
            Some("11506-3")
        );
        assert_eq!(
            set.get("procedure").map(|t| t.loinc.as_str()),
            Some("28570-0")
        );
        // A nurse's most written note comes first for a nurse; no role of
        // the front desk or billing writes clinical notes.
        assert_eq!(set.for_role(Some(Role::Nurse))[0].name, "nurse-triage");
        assert_eq!(set.for_role(Some(Role::Attending))[0].name, "progress");
        assert!(set.for_role(Some(Role::Frontdesk)).is_empty());
        assert!(set.for_role(Some(Role::Billing)).is_empty());
    }

    #[test]
    fn a_broken_file_is_named_with_line_and_problem_and_the_rest_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a_bad.toml"),
            "name = \"bad\"\ntitle = \"Bad\"\nloinc = \"11506-3\"\nloinc_display = \"x\"\nroles = [\"nurse\"]\ntext = \"\"\"\nline one\n{{vitalz}}\n\"\"\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("b_typo.toml"),
            "name = \"x\"\ntitel = \"X\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("c_good.toml"),
            "name = \"progress\"\ntitle = \"Our progress note\"\nloinc = \"11506-3\"\nloinc_display = \"Progress note\"\nroles = [\"attending\"]\ntext = \"S: ***\"\n",
        )
        .unwrap();
        let set = TemplateSet::load(None, Some(dir.path()));
        assert_eq!(set.warnings.len(), 2, "{:?}", set.warnings);
        assert!(
            set.warnings[0].contains("a_bad.toml:8: unknown field {{vitalz}}"),
            "{:?}",
            set.warnings
        );
        assert!(
            set.warnings[1].contains("b_typo.toml:2:"),
            "{:?}",
            set.warnings
        );
        // The good one replaced the built-in of its name; the others stayed.
        assert_eq!(
            set.get("progress").map(|t| t.title.as_str()),
            Some("Our progress note")
        );
        assert_eq!(set.templates.len(), 6);
    }

    #[test]
    fn names_codes_and_roles_are_checked() {
        let t = |name: &str, loinc: &str, roles: &str| {
            parse(
                &format!(
                    "name = \"{name}\"\ntitle = \"T\"\nloinc = \"{loinc}\"\nloinc_display = \"x\"\nroles = {roles}\ntext = \"x\"\n"
                ),
                "t.toml",
            )
        };
        assert!(t("ok-1", "11506-3", "[\"nurse\"]").is_ok());
        assert!(t("no spaces", "11506-3", "[\"nurse\"]").is_err());
        assert!(t("x", "11506", "[\"nurse\"]").is_err());
        assert!(
            t("x", "11506-3", "[\"surgeon\"]")
                .unwrap_err()
                .contains("unknown role")
        );
        assert!(t("x", "11506-3", "[]").is_err());
    }

    proptest! {
        #[test]
        fn any_file_loads_or_says_why(src in "\\PC{0,200}") {
            let _ = parse(&src, "x.toml");
        }
    }
}
