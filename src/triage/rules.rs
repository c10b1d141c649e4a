//! The routing rules as data. The defaults are `rules/routing.toml`,
//! embedded in the binary; a site file replaces them whole (a site that
//! wants the defaults plus a change copies the file, so what runs is
//! always one readable file).

use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct RuleSet {
    _private: (),
}

impl RuleSet {
    /// The embedded defaults.
    pub fn embedded() -> RuleSet {
        todo!("triage::rules::RuleSet::embedded")
    }

    /// Parse a rules file; the error names the line and what is wrong.
    pub fn from_toml(text: &str) -> Result<RuleSet, String> {
        let _ = text;
        todo!("triage::rules::RuleSet::from_toml")
    }

    /// The site file if given, else the embedded defaults.
    pub fn load(site: Option<&Path>) -> Result<RuleSet, String> {
        let _ = site;
        todo!("triage::rules::RuleSet::load")
    }
}
