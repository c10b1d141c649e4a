//! Client settings, merged once: embedded defaults < /etc/chartty/config.toml <
//! user config < CHARTTY_* environment < command line.
//!
//! Every file is checked on its own first, so that an error names the file and
//! the line; the `config` crate then merges the layers. The environment is
//! passed in as a map ([`Sources`]) so the merge can be tested without
//! touching the process environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use config::{Config, File, FileFormat};
use serde::Deserialize;

use crate::chart::query::DateOrder;

/// What the command line can override.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    pub server: Option<String>,
    pub token: Option<String>,
    pub theme: Option<String>,
    pub config_file: Option<PathBuf>,
    /// `--low-bandwidth`: on whatever the settings say.
    pub low_bandwidth: bool,
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
    /// The clinician's time zone: times are shown and due times counted in it.
    pub time_zone: chrono_tz::Tz,
    /// How a birth date typed with slashes is read.
    pub date_order: DateOrder,
    /// The identifier system of the local MRN, for servers whose MRNs are
    /// not typed `MR`.
    pub mrn_system: Option<String>,
    /// A latest vital sign older than this is marked with its age.
    pub stale_vitals_days: u32,
    /// A latest result older than this is marked with its age.
    pub stale_results_days: u32,
    /// The user's note templates (default `$XDG_CONFIG_HOME/chartty/templates`).
    pub templates_dir: Option<PathBuf>,
    /// A PEM bundle of CA certificates trusted besides the system's (a site CA).
    pub ca_file: Option<PathBuf>,
    /// The user's smart phrases (default `$XDG_CONFIG_HOME/chartty/phrases.toml`).
    pub phrases_file: Option<PathBuf>,
    /// Minutes without a key before the screen locks; 0: never.
    pub idle_lock_minutes: u64,
    /// Keep a SMART sign-in's refresh token in the OS credential store
    /// (false: sign in at every start).
    pub keep_sign_in: bool,
    /// The loopback port `chartty login` takes the browser's redirect on
    /// (forward it over SSH).
    pub login_port: u16,
    /// The pane to start on; none: the role's (the queue for nurses, the
    /// front desk and billing, search for the others).
    pub start_pane: Option<StartPane>,
    /// Draw for a slow link: ASCII borders and marks, nothing that changes
    /// on screen more often than once a minute.
    pub low_bandwidth: bool,
}

/// A pane to start on, as settings name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartPane {
    Search,
    Summary,
    Results,
    Notes,
    Tasks,
    Note,
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
            time_zone: chrono_tz::Tz::UTC,
            date_order: DateOrder::Mdy,
            mrn_system: None,
            stale_vitals_days: 30,
            stale_results_days: 90,
            templates_dir: None,
            phrases_file: None,
            idle_lock_minutes: 10,
            keep_sign_in: true,
            login_port: 8765,
            ca_file: None,
            start_pane: None,
            low_bandwidth: false,
        }
    }
}

/// The built-in layer. Keys not set here have no default.
pub const DEFAULT_CONFIG: &str = "\
page_size = 50
request_timeout_secs = 15
date_order = \"mdy\"
stale_vitals_days = 30
stale_results_days = 90
idle_lock_minutes = 10
keep_sign_in = true
login_port = 8765
";

/// The system-wide file.
pub const SYSTEM_CONFIG: &str = "/etc/chartty/config.toml";

/// Every setting: (key in files, environment variable).
pub const KEYS: &[(&str, &str)] = &[
    ("server", "CHARTTY_SERVER"),
    ("token", "CHARTTY_TOKEN"),
    ("theme", "CHARTTY_THEME"),
    ("keymap_file", "CHARTTY_KEYMAP_FILE"),
    ("log_file", "CHARTTY_LOG_FILE"),
    ("page_size", "CHARTTY_PAGE_SIZE"),
    ("request_timeout_secs", "CHARTTY_REQUEST_TIMEOUT_SECS"),
    ("time_zone", "CHARTTY_TIME_ZONE"),
    ("date_order", "CHARTTY_DATE_ORDER"),
    ("mrn_system", "CHARTTY_MRN_SYSTEM"),
    ("stale_vitals_days", "CHARTTY_STALE_VITALS_DAYS"),
    ("stale_results_days", "CHARTTY_STALE_RESULTS_DAYS"),
    ("templates_dir", "CHARTTY_TEMPLATES_DIR"),
    ("phrases_file", "CHARTTY_PHRASES_FILE"),
    ("idle_lock_minutes", "CHARTTY_IDLE_LOCK_MINUTES"),
    ("keep_sign_in", "CHARTTY_KEEP_SIGN_IN"),
    ("login_port", "CHARTTY_LOGIN_PORT"),
    ("ca_file", "CHARTTY_CA_FILE"),
    ("start_pane", "CHARTTY_START_PANE"),
    ("low_bandwidth", "CHARTTY_LOW_BANDWIDTH"),
];

pub const PAGE_SIZE_RANGE: std::ops::RangeInclusive<u32> = 1..=1000;
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 1..=600;

/// One layer as written; every key optional, unknown keys refused (typos).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    server: Option<String>,
    token: Option<String>,
    theme: Option<String>,
    keymap_file: Option<PathBuf>,
    log_file: Option<PathBuf>,
    page_size: Option<u32>,
    request_timeout_secs: Option<u64>,
    time_zone: Option<String>,
    date_order: Option<DateOrder>,
    mrn_system: Option<String>,
    stale_vitals_days: Option<u32>,
    stale_results_days: Option<u32>,
    templates_dir: Option<PathBuf>,
    phrases_file: Option<PathBuf>,
    idle_lock_minutes: Option<u64>,
    keep_sign_in: Option<bool>,
    login_port: Option<u16>,
    ca_file: Option<PathBuf>,
    start_pane: Option<StartPane>,
    low_bandwidth: Option<bool>,
}

/// Where the layers come from.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `/etc/chartty/config.toml`; skipped when missing.
    pub system_file: Option<PathBuf>,
    /// The user's file; skipped when missing unless `user_file_required`.
    pub user_file: Option<PathBuf>,
    /// Set when the file was named on the command line: then it must exist.
    pub user_file_required: bool,
    /// The environment (only `CHARTTY_*` and `NO_COLOR` are read).
    pub env: HashMap<String, String>,
    /// `$XDG_CONFIG_HOME` or the platform's equivalent, for default paths.
    pub config_dir: Option<PathBuf>,
    /// For `~/` in paths.
    pub home_dir: Option<PathBuf>,
    /// The zone used when no layer sets `time_zone` (UTC when unknown).
    pub system_zone: Option<chrono_tz::Tz>,
}

impl Sources {
    /// The real files and the process environment.
    pub fn from_system(overrides: &CliOverrides) -> Sources {
        let config_dir = dirs::config_dir();
        let (user_file, user_file_required) = match &overrides.config_file {
            Some(path) => (Some(path.clone()), true),
            None => (
                config_dir.as_ref().map(|d| d.join("chartty/config.toml")),
                false,
            ),
        };
        Sources {
            system_file: Some(PathBuf::from(SYSTEM_CONFIG)),
            user_file,
            user_file_required,
            // Non-UTF-8 variables cannot hold a URL or a number anyway.
            env: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .filter(|(k, _)| k.starts_with("CHARTTY_") || k == "NO_COLOR")
                .collect(),
            config_dir,
            home_dir: dirs::home_dir(),
            system_zone: iana_time_zone::get_timezone()
                .ok()
                .and_then(|name| name.parse().ok()),
        }
    }
}

/// Merge every layer; an unreadable or malformed file is an error naming it.
pub fn load(overrides: &CliOverrides) -> anyhow::Result<Settings> {
    load_from(overrides, &Sources::from_system(overrides))
}

/// [`load`] with explicit sources.
pub fn load_from(overrides: &CliOverrides, sources: &Sources) -> anyhow::Result<Settings> {
    let mut builder =
        Config::builder().add_source(File::from_str(DEFAULT_CONFIG, FileFormat::Toml));
    let files = [
        (sources.system_file.as_deref(), false),
        (sources.user_file.as_deref(), sources.user_file_required),
    ];
    for (path, required) in files {
        if let Some(path) = path
            && let Some(text) = read_layer(path, required)?
        {
            builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
        }
    }
    for (key, var) in KEYS {
        if let Some(value) = sources.env.get(*var).filter(|v| !v.is_empty()) {
            check_env_value(key, var, value)?;
            builder = builder.set_override(*key, value.as_str())?;
        }
    }
    builder = builder
        .set_override_option("server", overrides.server.clone())?
        .set_override_option("token", overrides.token.clone())?
        .set_override_option("theme", overrides.theme.clone())?
        .set_override_option("low_bandwidth", overrides.low_bandwidth.then_some(true))?;
    let raw: RawSettings = builder
        .build()
        .and_then(Config::try_deserialize)
        .context("merging settings")?;

    let page_size = raw.page_size.unwrap_or(Settings::default().page_size);
    if !PAGE_SIZE_RANGE.contains(&page_size) {
        bail!(
            "page_size {page_size} is out of range ({}..={})",
            PAGE_SIZE_RANGE.start(),
            PAGE_SIZE_RANGE.end()
        );
    }
    let request_timeout_secs = raw
        .request_timeout_secs
        .unwrap_or(Settings::default().request_timeout_secs);
    if !TIMEOUT_RANGE.contains(&request_timeout_secs) {
        bail!(
            "request_timeout_secs {request_timeout_secs} is out of range ({}..={})",
            TIMEOUT_RANGE.start(),
            TIMEOUT_RANGE.end()
        );
    }
    let server = raw.server.filter(|s| !s.trim().is_empty());
    if let Some(url) = &server {
        validate_server_url(url)?;
    }
    let time_zone = match raw.time_zone.as_deref().filter(|z| !z.trim().is_empty()) {
        Some(name) => name.trim().parse::<chrono_tz::Tz>().map_err(|_| {
            anyhow!(
                "time_zone {name:?} is not a time zone name (e.g. Europe/Oslo, America/Chicago)"
            )
        })?,
        None => sources.system_zone.unwrap_or(chrono_tz::Tz::UTC),
    };
    let home = sources.home_dir.as_deref();
    Ok(Settings {
        server,
        token: raw.token.filter(|t| !t.is_empty()),
        theme: theme_name(
            raw.theme.as_deref(),
            sources.env.get("NO_COLOR").map(String::as_str),
        ),
        keymap_file: raw.keymap_file.map(|p| expand_home(p, home)).or_else(|| {
            sources
                .config_dir
                .as_ref()
                .map(|d| d.join("chartty/keymap.toml"))
        }),
        log_file: raw.log_file.map(|p| expand_home(p, home)),
        page_size,
        request_timeout_secs,
        time_zone,
        date_order: raw.date_order.unwrap_or_default(),
        mrn_system: raw.mrn_system.filter(|s| !s.trim().is_empty()),
        stale_vitals_days: raw.stale_vitals_days.unwrap_or(30),
        stale_results_days: raw.stale_results_days.unwrap_or(90),
        templates_dir: raw.templates_dir.map(|p| expand_home(p, home)).or_else(|| {
            sources
                .config_dir
                .as_ref()
                .map(|d| d.join("chartty/templates"))
        }),
        phrases_file: raw.phrases_file.map(|p| expand_home(p, home)).or_else(|| {
            sources
                .config_dir
                .as_ref()
                .map(|d| d.join("chartty/phrases.toml"))
        }),
        idle_lock_minutes: raw.idle_lock_minutes.unwrap_or(10),
        keep_sign_in: raw.keep_sign_in.unwrap_or(true),
        login_port: raw.login_port.unwrap_or(8765),
        ca_file: raw
            .ca_file
            .filter(|p| !p.as_os_str().is_empty())
            .map(|p| expand_home(p, home)),
        start_pane: raw.start_pane,
        low_bandwidth: raw.low_bandwidth.unwrap_or(false),
    })
}

/// The theme to load: the configured one, else `monochrome` under
/// `NO_COLOR` (https://no-color.org), else `default`.
pub fn theme_name(configured: Option<&str>, no_color: Option<&str>) -> String {
    match configured {
        Some(name) if !name.trim().is_empty() => name.to_string(),
        _ if no_color.is_some_and(|v| !v.is_empty()) => "monochrome".into(),
        _ => "default".into(),
    }
}

/// 1-based line of a byte offset, for errors in the files users write
/// (settings, keymaps, themes).
pub fn line_of(src: &str, offset: usize) -> usize {
    let end = offset.min(src.len());
    src.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// A layer's text after checking it alone, so errors name the file and line.
fn read_layer(path: &Path, required: bool) -> anyhow::Result<Option<String>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(None),
        Err(e) => bail!("cannot read settings file {}: {e}", path.display()),
    };
    if let Err(e) = toml::from_str::<RawSettings>(&text) {
        let line = e.span().map_or(1, |s| line_of(&text, s.start));
        bail!(
            "{}:{line}: {} (see docs/configuration.md)",
            path.display(),
            e.message().trim_end()
        );
    }
    Ok(Some(text))
}

fn check_env_value(key: &str, var: &str, value: &str) -> anyhow::Result<()> {
    let numeric = matches!(
        key,
        "page_size"
            | "request_timeout_secs"
            | "stale_vitals_days"
            | "stale_results_days"
            | "idle_lock_minutes"
            | "login_port"
    );
    if matches!(key, "keep_sign_in" | "low_bandwidth") && !matches!(value.trim(), "true" | "false")
    {
        bail!("{var} must be true or false");
    }
    if numeric && value.trim().parse::<u64>().is_err() {
        // The value is not echoed back: some variables hold secrets.
        bail!("{var} must be a whole number");
    }
    Ok(())
}

fn expand_home(path: PathBuf, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path,
    }
}

/// Accept a FHIR base URL only over HTTPS, or plain HTTP to this machine
/// (localhost, 127.0.0.0/8, ::1): tokens and patient data never cross a
/// network in clear text.
pub fn validate_server_url(s: &str) -> anyhow::Result<url::Url> {
    let url = url::Url::parse(s.trim())
        .map_err(|e| anyhow!("server {:?} is not a valid URL: {e}", redact(s)))?;
    if !url.username().is_empty() || url.password().is_some() {
        bail!("the server URL must not contain a user name or password; use the token setting");
    }
    let host = url
        .host()
        .ok_or_else(|| anyhow!("server {:?} has no host", redact(s)))?;
    let loopback = match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        "http" => {
            let mut fixed = url.clone();
            let suggestion = match fixed.set_scheme("https") {
                Ok(()) => format!(" (server = \"{fixed}\")"),
                Err(()) => String::new(),
            };
            bail!(
                "refusing plain http:// to {host}: patient data and tokens would cross the \
                 network unencrypted. Use the server's https:// address{suggestion} in the \
                 settings file, CHARTTY_SERVER or --server; plain http is allowed only to \
                 this machine (localhost, 127.0.0.0/8, ::1)"
            )
        }
        other => bail!("server URL scheme {other:?} is not supported; use https://"),
    }
}

/// A URL as it may be shown: without user information.
fn redact(s: &str) -> String {
    if let Some((scheme, rest)) = s.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{scheme}://…@{}", &rest[at + 1..]);
        }
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        dir: tempfile::TempDir,
    }

    impl Fixture {
        fn new() -> Fixture {
            Fixture {
                dir: tempfile::tempdir().unwrap(),
            }
        }

        fn file(&self, name: &str, text: &str) -> PathBuf {
            let path = self.dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        }

        fn sources(
            &self,
            system: Option<&str>,
            user: Option<&str>,
            env: &[(&str, &str)],
        ) -> Sources {
            Sources {
                system_file: Some(match system {
                    Some(t) => self.file("system.toml", t),
                    None => self.dir.path().join("no-system.toml"),
                }),
                user_file: Some(match user {
                    Some(t) => self.file("user.toml", t),
                    None => self.dir.path().join("no-user.toml"),
                }),
                user_file_required: false,
                env: env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                config_dir: Some(self.dir.path().join("cfg")),
                home_dir: Some(PathBuf::from("/home/clin")),
                system_zone: None,
            }
        }
    }

    #[test]
    fn defaults_without_any_file() {
        let f = Fixture::new();
        let s = load_from(&CliOverrides::default(), &f.sources(None, None, &[])).unwrap();
        assert_eq!(s.server, None);
        assert_eq!(s.theme, "default");
        assert_eq!(s.page_size, 50);
        assert_eq!(s.request_timeout_secs, 15);
        assert_eq!(
            s.keymap_file,
            Some(f.dir.path().join("cfg/chartty/keymap.toml"))
        );
    }

    #[test]
    fn later_layers_win() {
        let f = Fixture::new();
        let system = "server = \"https://system.example/r4\"\npage_size = 20\ntheme = \"high-contrast\"\nrequest_timeout_secs = 30\n";
        let user = "server = \"https://user.example/r4\"\npage_size = 30\n";
        let env = [
            ("CHARTTY_PAGE_SIZE", "40"),
            ("CHARTTY_THEME", "monochrome"),
            ("CHARTTY_TOKEN", "env-token"),
        ];
        let cli = CliOverrides {
            theme: Some("default".into()),
            ..Default::default()
        };
        let s = load_from(&cli, &f.sources(Some(system), Some(user), &env)).unwrap();
        assert_eq!(s.request_timeout_secs, 30); // system only
        assert_eq!(s.server.as_deref(), Some("https://user.example/r4")); // user over system
        assert_eq!(s.page_size, 40); // env over user
        assert_eq!(s.token.as_deref(), Some("env-token"));
        assert_eq!(s.theme, "default"); // command line over env

        let cli = CliOverrides {
            server: Some("https://cli.example/r4".into()),
            ..Default::default()
        };
        let s = load_from(&cli, &f.sources(Some(system), Some(user), &env)).unwrap();
        assert_eq!(s.server.as_deref(), Some("https://cli.example/r4"));
        assert_eq!(s.theme, "monochrome");
    }

    #[test]
    fn no_color_only_when_no_theme_is_configured() {
        let f = Fixture::new();
        let s = load_from(
            &CliOverrides::default(),
            &f.sources(None, None, &[("NO_COLOR", "1")]),
        )
        .unwrap();
        assert_eq!(s.theme, "monochrome");
        let s = load_from(
            &CliOverrides::default(),
            &f.sources(
                None,
                Some("theme = \"high-contrast\"\n"),
                &[("NO_COLOR", "1")],
            ),
        )
        .unwrap();
        assert_eq!(s.theme, "high-contrast");
    }

    #[test]
    fn a_malformed_file_is_an_error_naming_it_and_the_line() {
        let f = Fixture::new();
        let err = load_from(
            &CliOverrides::default(),
            &f.sources(None, Some("page_size = 10\nserver = \n"), &[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("user.toml:2:"), "{err}");

        let err = load_from(
            &CliOverrides::default(),
            &f.sources(Some("sever = \"x\"\n"), None, &[]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("system.toml:1:") && err.contains("sever"),
            "{err}"
        );

        let err = load_from(
            &CliOverrides::default(),
            &f.sources(None, Some("page_size = \"many\""), &[]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("user.toml:1:"), "{err}");
    }

    #[test]
    fn a_config_file_named_on_the_command_line_must_exist() {
        let f = Fixture::new();
        let mut sources = f.sources(None, None, &[]);
        sources.user_file_required = true;
        let err = load_from(&CliOverrides::default(), &sources)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no-user.toml"), "{err}");
    }

    #[test]
    fn bad_environment_values_name_the_variable_not_the_value() {
        let f = Fixture::new();
        let err = load_from(
            &CliOverrides::default(),
            &f.sources(None, None, &[("CHARTTY_PAGE_SIZE", "lots")]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("CHARTTY_PAGE_SIZE") && !err.contains("lots"),
            "{err}"
        );
        let err = load_from(
            &CliOverrides::default(),
            &f.sources(None, None, &[("CHARTTY_PAGE_SIZE", "0")]),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("page_size"), "{err}");
    }

    #[test]
    fn plain_http_to_another_machine_is_refused_at_load() {
        let f = Fixture::new();
        let err = load_from(
            &CliOverrides::default(),
            &f.sources(
                None,
                None,
                &[("CHARTTY_SERVER", "http://fhir.example.org/r4")],
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("https://"), "{err}");
        let s = load_from(
            &CliOverrides::default(),
            &f.sources(
                None,
                None,
                &[("CHARTTY_SERVER", "http://127.0.0.1:8080/fhir")],
            ),
        )
        .unwrap();
        assert_eq!(s.server.as_deref(), Some("http://127.0.0.1:8080/fhir"));
    }

    #[test]
    fn paths_expand_the_home_directory() {
        let f = Fixture::new();
        let s = load_from(
            &CliOverrides::default(),
            &f.sources(
                None,
                Some("keymap_file = \"~/keys.toml\"\nlog_file = \"/var/log/c.log\"\n"),
                &[],
            ),
        )
        .unwrap();
        assert_eq!(s.keymap_file, Some(PathBuf::from("/home/clin/keys.toml")));
        assert_eq!(s.log_file, Some(PathBuf::from("/var/log/c.log")));
    }

    #[test]
    fn a_site_ca_file_is_read_from_files_and_the_environment() {
        let f = Fixture::new();
        let s = load_from(&CliOverrides::default(), &f.sources(None, None, &[])).unwrap();
        assert_eq!(s.ca_file, None);
        let s = load_from(
            &CliOverrides::default(),
            &f.sources(None, Some("ca_file = \"~/site-ca.pem\"\n"), &[]),
        )
        .unwrap();
        assert_eq!(s.ca_file, Some(PathBuf::from("/home/clin/site-ca.pem")));
        let s = load_from(
            &CliOverrides::default(),
            &f.sources(
                Some("ca_file = \"/etc/chartty/ca.pem\"\n"),
                None,
                &[("CHARTTY_CA_FILE", "/opt/ca.pem")],
            ),
        )
        .unwrap();
        assert_eq!(s.ca_file, Some(PathBuf::from("/opt/ca.pem")));
    }

    #[test]
    fn server_url_rules() {
        for ok in [
            "https://fhir.example.org/r4",
            "https://10.0.0.5/fhir",
            "http://localhost:8080/fhir",
            "http://LOCALHOST/fhir",
            "http://127.0.0.1:8080",
            "http://127.4.5.6/",
            "http://[::1]:8080/fhir",
            "http://[::ffff:127.0.0.1]/",
        ] {
            assert!(validate_server_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://fhir.example.org/r4",
            "http://10.0.0.5/fhir",
            "http://128.0.0.1/",
            "http://[::2]/",
            "http://localhost.example.org/",
            "ftp://localhost/",
            "fhir.example.org",
            "https://user:secret@fhir.example.org/",
        ] {
            assert!(validate_server_url(bad).is_err(), "{bad}");
        }
        let err = validate_server_url("https://user:secret@fhir.example.org/").unwrap_err();
        assert!(!err.to_string().contains("secret"));
        let err = validate_server_url("http://fhir.example.org/r4").unwrap_err();
        let err = err.to_string();
        assert!(
            err.contains("server = \"https://fhir.example.org/r4\"")
                && err.contains("CHARTTY_SERVER")
                && err.contains("--server"),
            "the error says how to fix it: {err}"
        );
    }

    #[test]
    fn no_color_selects_monochrome_unless_a_theme_is_given() {
        assert_eq!(theme_name(None, Some("1")), "monochrome");
        assert_eq!(theme_name(None, Some("")), "default");
        assert_eq!(theme_name(None, None), "default");
        assert_eq!(
            theme_name(Some("high-contrast"), Some("1")),
            "high-contrast"
        );
    }

    #[test]
    fn the_start_pane_is_read_from_a_file_or_the_environment_and_a_typo_is_an_error() {
        let fx = Fixture::new();
        let none = load_from(&CliOverrides::default(), &fx.sources(None, None, &[])).unwrap();
        assert_eq!(none.start_pane, None);
        let user = "start_pane = \"tasks\"\n";
        let s = load_from(&CliOverrides::default(), &fx.sources(None, Some(user), &[])).unwrap();
        assert_eq!(s.start_pane, Some(StartPane::Tasks));
        let env = [("CHARTTY_START_PANE", "search")];
        let s = load_from(
            &CliOverrides::default(),
            &fx.sources(None, Some(user), &env),
        )
        .unwrap();
        assert_eq!(s.start_pane, Some(StartPane::Search));
        let typo = "start_pane = \"taks\"\n";
        let err = load_from(&CliOverrides::default(), &fx.sources(None, Some(typo), &[]))
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        assert!(err.contains(":1:") && err.contains("taks"), "{err}");
    }

    #[test]
    fn low_bandwidth_comes_from_the_flag_a_file_or_the_environment_and_a_typo_is_an_error() {
        let fx = Fixture::new();
        let load = |flag: bool, user: Option<&str>, env: &[(&str, &str)]| {
            let overrides = CliOverrides {
                low_bandwidth: flag,
                ..CliOverrides::default()
            };
            load_from(&overrides, &fx.sources(None, user, env))
        };
        assert!(!load(false, None, &[]).unwrap().low_bandwidth);
        let on = "page_size = 50\nlow_bandwidth = true\n";
        assert!(load(false, Some(on), &[]).unwrap().low_bandwidth);
        let off = [("CHARTTY_LOW_BANDWIDTH", "false")];
        assert!(!load(false, Some(on), &off).unwrap().low_bandwidth);
        assert!(
            load(false, None, &[("CHARTTY_LOW_BANDWIDTH", "true")])
                .unwrap()
                .low_bandwidth
        );
        // The flag wins over a file or variable that says no.
        assert!(
            load(true, Some("low_bandwidth = false\n"), &off)
                .unwrap()
                .low_bandwidth
        );
        let err =
            |r: anyhow::Result<Settings>| r.err().map(|e| format!("{e:#}")).unwrap_or_default();
        let e = err(load(
            false,
            Some("page_size = 50\nlow_bandwidth = ture\n"),
            &[],
        ));
        assert!(e.contains(":2:"), "{e}");
        let e = err(load(false, Some("\nlow_bandwith = true\n"), &[]));
        assert!(e.contains(":2:") && e.contains("low_bandwith"), "{e}");
        let e = err(load(false, None, &[("CHARTTY_LOW_BANDWIDTH", "yes")]));
        assert!(e.contains("CHARTTY_LOW_BANDWIDTH"), "{e}");
    }

    #[test]
    fn chart_reading_settings() {
        let fx = Fixture::new();
        let s = load_from(&CliOverrides::default(), &fx.sources(None, None, &[])).unwrap();
        assert_eq!(s.time_zone, chrono_tz::Tz::UTC, "no system zone known: UTC");
        assert_eq!(s.date_order, DateOrder::Mdy);
        assert_eq!((s.stale_vitals_days, s.stale_results_days), (30, 90));
        let user =
            "time_zone = \"Europe/Oslo\"\ndate_order = \"dmy\"\nmrn_system = \"urn:oid:1.2.3\"\n";
        let s = load_from(&CliOverrides::default(), &fx.sources(None, Some(user), &[])).unwrap();
        assert_eq!(s.time_zone, chrono_tz::Europe::Oslo);
        assert_eq!(s.date_order, DateOrder::Dmy);
        assert_eq!(s.mrn_system.as_deref(), Some("urn:oid:1.2.3"));
        let env = [("CHARTTY_TIME_ZONE", "America/Chicago")];
        let s = load_from(
            &CliOverrides::default(),
            &fx.sources(None, Some(user), &env),
        )
        .unwrap();
        assert_eq!(s.time_zone, chrono_tz::America::Chicago);
        let bad = load_from(
            &CliOverrides::default(),
            &fx.sources(None, Some("time_zone = \"Mars/Olympus\"\n"), &[]),
        )
        .unwrap_err();
        assert!(bad.to_string().contains("Mars/Olympus"), "{bad}");
        let bad = load_from(
            &CliOverrides::default(),
            &fx.sources(None, Some("date_order = \"ymd\"\n"), &[]),
        );
        assert!(bad.is_err());
    }

    #[test]
    fn documentation_lists_every_key_and_its_example_parses() {
        let doc = include_str!("../docs/configuration.md");
        for (key, var) in KEYS {
            assert!(doc.contains(&format!("`{key}`")), "{key} is not documented");
            assert!(doc.contains(var), "{var} is not documented");
        }
        let example = doc
            .split("```toml")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("an example config in docs/configuration.md");
        let raw: RawSettings = toml::from_str(example).unwrap();
        assert!(raw.server.is_some());
    }
}
