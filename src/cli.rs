//! Command line: parse, then hand over to the half that does the work.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::config::{self, CliOverrides, Settings};
use crate::roles::Role;
use crate::server::{self, ServerConfig, demo::DemoOptions};
use crate::tui::{self, Session, keymap::Keymap};

mod login;
mod qr;
pub mod route;

#[derive(Debug, Parser)]
#[command(
    name = "chartty",
    version,
    about = "Keyboard-driven clinical charting over HL7 FHIR R4",
    long_about = "Keyboard-driven clinical charting over HL7 FHIR R4.\n\n\
        Without a subcommand, opens the TUI against the configured server.\n\
        Settings merge in this order, later wins: built-in defaults, \
        /etc/chartty/config.toml, $XDG_CONFIG_HOME/chartty/config.toml, \
        CHARTTY_* environment variables (CHARTTY_SERVER, CHARTTY_TOKEN, CHARTTY_THEME, ...), \
        then these flags."
)]
pub struct Cli {
    /// FHIR R4 base URL, e.g. https://fhir.example.org/r4 [env: CHARTTY_SERVER]
    #[arg(long, global = true)]
    pub server: Option<String>,
    /// Bearer token for the server [env: CHARTTY_TOKEN]
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Theme: default, high-contrast, monochrome, or a path to a theme file [env: CHARTTY_THEME]
    #[arg(long, global = true)]
    pub theme: Option<String>,
    /// Read settings from this file instead of $XDG_CONFIG_HOME/chartty/config.toml
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// The pane to start on: search, summary, results, notes, tasks or
    /// note [default: tasks for nurse, frontdesk and billing; else search]
    #[arg(long, global = true, value_parser = parse_pane)]
    pub pane: Option<crate::tui::panes::PaneId>,
    /// Draw for a slow link: ASCII borders and marks, nothing that changes
    /// more often than once a minute [env: CHARTTY_LOW_BANDWIDTH]
    #[arg(long, global = true)]
    pub low_bandwidth: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

// Parsed once per run: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the portal server on loopback with fresh demo data, sign in and open the TUI
    Demo {
        /// Sign in as the demo user of this role
        #[arg(long, value_enum, default_value_t = Role::Attending)]
        role: Role,
        /// Number of demo patients
        #[arg(long, default_value_t = 500)]
        patients: usize,
        /// Seed of the demo population (same seed, same clinic)
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Run the portal server (FHIR R4 over SQLite), or look after its database
    #[command(args_conflicts_with_subcommands = true)]
    Serve {
        #[command(subcommand)]
        admin: Option<ServeAdmin>,
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// SQLite database file (created on first start)
        #[arg(long, default_value = "portal.db")]
        db: PathBuf,
        /// Fill an empty database with demo patients and create the demo users
        #[arg(long)]
        demo: bool,
        /// Number of demo patients (with --demo)
        #[arg(long, default_value_t = 500)]
        patients: usize,
        /// Seed of the demo population (with --demo)
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Hours the tokens issued at start (the demo users') stay valid
        #[arg(long, default_value_t = 12)]
        token_hours: u64,
        /// Largest request body accepted, in MiB (raise it only to post
        /// large transaction Bundles)
        #[arg(long, value_name = "MIB", default_value_t = 8)]
        max_body_mib: usize,
        /// The origin users reach the server at, when a TLS-terminating
        /// proxy stands in front (e.g. https://portal.example); it names
        /// the sign-in endpoints and signs id_tokens
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
        /// A proxy (address or network, e.g. 10.0.0.5 or 10.0.0.0/24)
        /// whose X-Forwarded-For names the client, for the sign-in limits
        /// and the audit; may be given more than once
        #[arg(long = "trusted-proxy", value_name = "ADDR")]
        trusted_proxies: Vec<server::auth::address::Cidr>,
        /// Routing rules for patient messages (TOML; see docs/triage.md)
        /// instead of the built-in ones
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        /// Store patient messages without routing them (when `chartty
        /// route` routes for this server from elsewhere)
        #[arg(long, conflicts_with = "rules")]
        no_routing: bool,
        /// Seconds between two escalations of overdue tasks (0: never)
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        escalate_every: u64,
    },
    /// Load FHIR R4 Bundles (.json) and bulk NDJSON (.ndjson) into a database
    Import {
        /// SQLite database file (created if missing)
        #[arg(long, default_value = "portal.db")]
        db: PathBuf,
        /// Files or directories to import
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Sign in to the server (SMART on FHIR): a browser on this machine or
    /// through an SSH port forward, a pasted address, or a device code
    Login {
        /// Sign in with a code approved on another device (a phone)
        #[arg(long)]
        device: bool,
        /// Loopback port for the browser's redirect [default: login_port, 8765]
        #[arg(long)]
        port: Option<u16>,
    },
    /// Revoke the kept sign-in at the server and forget it here
    Logout,
    /// Route patients' messages on a FHIR R4 server to role queues (the
    /// triage layer beside any server; see docs/triage.md)
    Route {
        /// Routing rules (TOML) instead of the built-in ones
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        /// Seconds between two polls for new messages
        #[arg(long, value_name = "SECONDS", default_value_t = 15)]
        interval: u64,
        /// Poll once and stop (for cron, or to try the rules)
        #[arg(long)]
        once: bool,
    },
    /// Queue figures over a period: volume, time to first action and to
    /// resolution, SLA breaches, messages that reached a physician
    Stats {
        /// `7d` (the last days) or `start/end` dates, e.g. 2026-11-01/2026-11-27
        #[arg(long, default_value = "7d")]
        period: String,
    },
    /// Print the effective keymap (built-in defaults and your overrides)
    Keys,
    /// List the smart phrases (built-in and your own) and the key that
    /// expands them in the note editor
    Phrases,
}

/// Looking after a portal database (the server may be running).
#[derive(Debug, Subcommand)]
pub enum ServeAdmin {
    /// Check the audit trail's hash chain, or archive old records
    Audit {
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Issue or revoke bearer tokens
    Token {
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// Add, list, disable or enable users
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the chain; name every record edited, inserted or deleted (exit 1 if any)
    Verify {
        /// SQLite database file
        #[arg(long)]
        db: PathBuf,
        /// Archive files made by `audit archive`, oldest first, checked with the database
        #[arg(long = "archive")]
        archives: Vec<PathBuf>,
    },
    /// Move the records older than a date to a new file, hashes and all
    Archive {
        /// SQLite database file
        #[arg(long)]
        db: PathBuf,
        /// Records before this date (YYYY-MM-DD, or a FHIR dateTime) are moved
        #[arg(long)]
        before: String,
        /// The archive file to create (NDJSON; never overwritten)
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new token for a user
    Issue {
        /// SQLite database file
        #[arg(long)]
        db: PathBuf,
        /// The user's login
        #[arg(long)]
        user: String,
        /// Hours the token stays valid
        #[arg(long, default_value_t = 12)]
        hours: u64,
    },
    /// Revoke one token, or every token of a user (by login)
    Revoke {
        /// SQLite database file
        #[arg(long)]
        db: PathBuf,
        /// A token, or a user's login
        token_or_user: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (or update one with the same login)
    Add {
        /// SQLite database file
        #[arg(long)]
        db: PathBuf,
        /// The user's login (`--login LOGIN` works too)
        #[arg(
            value_name = "LOGIN",
            required_unless_present = "login_flag",
            conflicts_with = "login_flag"
        )]
        login: Option<String>,
        #[arg(long = "login", id = "login_flag", value_name = "LOGIN", hide = true)]
        login_flag: Option<String>,
        /// Display name, as the audit and the client show it
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: Role,
        /// The user's Practitioner id (named as author, sender, signer)
        #[arg(long)]
        practitioner: Option<String>,
        /// Read the user's sign-in password from stdin (one line)
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's sign-in password, read from stdin (asked twice, unechoed, on a terminal)
    Password {
        #[arg(long)]
        db: PathBuf,
        login: String,
    },
    /// Turn on authenticator codes (TOTP) for a user and print the secret, or turn them off
    Totp {
        #[arg(long)]
        db: PathBuf,
        login: String,
        /// Turn TOTP off
        #[arg(long)]
        off: bool,
    },
    /// List users and how many live tokens each holds
    List {
        /// SQLite database file
        #[arg(long)]
        db: PathBuf,
    },
    /// Disable a user: their tokens stop working at once
    Disable {
        #[arg(long)]
        db: PathBuf,
        login: String,
    },
    /// Enable a disabled user
    Enable {
        #[arg(long)]
        db: PathBuf,
        login: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            // The terminal may have hung up: a failed write is not a panic.
            let _ = writeln!(std::io::stderr(), "chartty: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The pane a setting names.
fn pane_of(p: config::StartPane) -> crate::tui::panes::PaneId {
    use crate::tui::panes::PaneId;
    match p {
        config::StartPane::Search => PaneId::Search,
        config::StartPane::Summary => PaneId::Summary,
        config::StartPane::Results => PaneId::Results,
        config::StartPane::Notes => PaneId::Notes,
        config::StartPane::Tasks => PaneId::Tasks,
        config::StartPane::Note => PaneId::Editor,
    }
}

fn parse_pane(s: &str) -> Result<crate::tui::panes::PaneId, String> {
    use crate::tui::panes::PaneId;
    PaneId::ALL
        .into_iter()
        .find(|p| {
            p.title().eq_ignore_ascii_case(s.trim())
                || (*p == PaneId::Editor && s.trim() == "editor")
        })
        .ok_or_else(|| {
            format!("unknown pane {s:?}; expected search, summary, results, notes, tasks or note")
        })
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let overrides = CliOverrides {
        server: cli.server.clone(),
        token: cli.token.clone(),
        theme: cli.theme.clone(),
        config_file: cli.config.clone(),
        low_bandwidth: cli.low_bandwidth,
    };
    match cli.command {
        None => {
            let settings = config::load(&overrides)?;
            let base_url = settings.server.clone().context(
                "no server configured: pass --server URL, set CHARTTY_SERVER, \
                 put `server = \"...\"` in the config file, or try `chartty demo`",
            )?;
            let mut session = Session {
                base_url,
                token: settings.token.clone(),
                start_pane: cli.pane.or(settings.start_pane.map(pane_of)),
                ..Session::default()
            };
            if settings.token.is_some() {
                eprintln!(
                    "chartty: a token given with --token or CHARTTY_TOKEN shows in shell history \
                     and to other users in `ps`; prefer `chartty login` where the server offers it"
                );
                tui::run(settings, session)?;
                return Ok(ExitCode::SUCCESS);
            }
            // The sign-in's HTTP connections live on this runtime: it runs
            // until the TUI ends.
            let rt = runtime()?;
            let (bearer, who) = rt.block_on(login::start(&settings))?;
            if let Some(w) = who {
                // The name the server gave; `$whoami`, where offered, says
                // the same or better.
                session.user = w.name.clone();
                session.identity =
                    Some(w.fhir_user.unwrap_or(format!("{} {}", w.issuer, w.subject)));
            }
            session.bearer = Some(bearer);
            let outcome = tui::run(settings, session);
            rt.shutdown_timeout(std::time::Duration::from_millis(200));
            outcome?;
        }
        Some(Command::Route {
            rules,
            interval,
            once,
        }) => {
            let settings = config::load(&overrides)?;
            let rules = crate::triage::RuleSet::load(rules.as_deref())
                .map_err(|e| anyhow::anyhow!("the routing rules: {e}"))?;
            let rt = runtime()?;
            rt.block_on(route::run(
                &settings,
                &rules,
                std::time::Duration::from_secs(interval.max(1)),
                once,
            ))?;
        }
        Some(Command::Stats { period }) => {
            let settings = config::load(&overrides)?;
            let rt = runtime()?;
            let table = rt.block_on(route::stats(&settings, Some(&period)))?;
            print!("{table}");
        }
        Some(Command::Demo {
            role,
            patients,
            seed,
        }) => demo(&overrides, role, cli.pane, DemoOptions::new(patients, seed))?,
        Some(Command::Serve {
            admin: Some(admin), ..
        }) => return serve_admin(admin),
        Some(Command::Serve {
            admin: None,
            listen,
            db,
            demo,
            patients,
            seed,
            token_hours,
            max_body_mib,
            public_url,
            trusted_proxies,
            rules,
            no_routing,
            escalate_every,
        }) => {
            let demo = demo.then(|| DemoOptions::new(patients, seed));
            let public_url = public_url.as_deref().map(public_origin).transpose()?;
            let triage = if no_routing {
                None
            } else {
                let rules = crate::triage::RuleSet::load(rules.as_deref())
                    .map_err(|e| anyhow::anyhow!("the routing rules: {e}"))?;
                Some(std::sync::Arc::new(rules))
            };
            let options = server::Options {
                triage,
                escalate_every: (escalate_every > 0)
                    .then(|| std::time::Duration::from_secs(escalate_every)),
                token_ttl: std::time::Duration::from_secs(token_hours.saturating_mul(3600)),
                limits: server::Limits {
                    max_body: max_body_mib
                        .checked_mul(1024 * 1024)
                        .context("--max-body-mib is too large")?,
                    ..server::Limits::default()
                },
                public_url,
                trusted_proxies,
                ..server::Options::default()
            };
            serve(listen, db, demo, options)?;
        }
        Some(Command::Import { db, paths }) => {
            let report = server::import::import_paths(&db, &paths, true)?;
            println!(
                "imported {} resources from {} files into {}",
                report.resources,
                report.files,
                db.display()
            );
            if !report.errors.is_empty() {
                eprintln!("{} problems:", report.errors.len());
                for e in &report.errors {
                    eprintln!("  {e}");
                }
                return Ok(ExitCode::from(2));
            }
        }
        Some(Command::Login { device, port }) => {
            let settings = config::load(&overrides)?;
            runtime()?.block_on(login::login(&settings, login::How { device, port }))?;
        }
        Some(Command::Logout) => {
            let settings = config::load(&overrides)?;
            let said = runtime()?.block_on(login::logout(&settings))?;
            eprintln!("{said}");
        }
        Some(Command::Keys) => {
            let settings = config::load(&overrides)?;
            let load = Keymap::load(settings.keymap_file.as_deref());
            for w in &load.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", tui::keymap::reference(&load.keymap));
        }
        Some(Command::Phrases) => {
            let settings = config::load(&overrides)?;
            let phrases = crate::notes::Phrases::load(settings.phrases_file.as_deref());
            for w in &phrases.warnings {
                eprintln!("warning: {w}");
            }
            let load = Keymap::load(settings.keymap_file.as_deref());
            print!(
                "{}",
                phrases_reference(&phrases, &load.keymap, settings.phrases_file.as_deref())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `chartty phrases` prints.
fn phrases_reference(
    phrases: &crate::notes::Phrases,
    keymap: &Keymap,
    file: Option<&std::path::Path>,
) -> String {
    use crate::tui::action::Action;
    use crate::tui::keymap::{Context, display_sequence};
    let keys = |a: Action| -> Vec<String> {
        keymap
            .keys_for(Context::Editor, a)
            .into_iter()
            .map(display_sequence)
            .collect()
    };
    let mut by = keys(Action::ExpandPhrase);
    by.extend(keys(Action::NextField));
    let mut out = format!(
        "Type a phrase in the note editor, then press {} to expand it.\n\n",
        if by.is_empty() {
            "(no key bound: bind expand_phrase in [editor])".to_string()
        } else {
            by.join(" or ")
        }
    );
    let list = phrases.list();
    let width = list
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    for (name, what) in list {
        out.push_str(&format!("{name:<width$}  {what}\n"));
    }
    out.push_str(&match file {
        Some(f) => format!("\nYour phrases: {}\n", f.display()),
        None => "\nYour phrases: none (set phrases_file)\n".to_string(),
    });
    out
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `chartty serve audit|token|user …`.
fn serve_admin(admin: ServeAdmin) -> anyhow::Result<ExitCode> {
    use server::admin;
    let mut out = std::io::stdout().lock();
    match admin {
        ServeAdmin::Audit {
            action: AuditCommand::Verify { db, archives },
        } => {
            let verdict = admin::verify(&db, &archives)?;
            if verdict.intact() {
                write!(out, "audit chain intact: {} records", verdict.records)?;
                match &verdict.head {
                    Some((seq, hash)) => writeln!(out, ", head {seq} {hash}")?,
                    None => writeln!(out)?,
                }
                return Ok(ExitCode::SUCCESS);
            }
            writeln!(
                out,
                "audit chain broken ({} records checked):",
                verdict.records
            )?;
            for p in &verdict.problems {
                writeln!(out, "  {p}")?;
            }
            return Ok(ExitCode::FAILURE);
        }
        ServeAdmin::Audit {
            action:
                AuditCommand::Archive {
                    db,
                    before,
                    out: file,
                },
        } => {
            let done = admin::archive(&db, &before, &file)?;
            if done.records == 0 {
                writeln!(out, "no audit records before {before}; nothing archived")?;
            } else {
                writeln!(
                    out,
                    "archived {} audit records ({} to {}) to {}",
                    done.records,
                    done.first,
                    done.last,
                    file.display()
                )?;
            }
        }
        ServeAdmin::Token {
            action: TokenCommand::Issue { db, user, hours },
        } => {
            let token = admin::issue(&db, &user, hours)?;
            writeln!(out, "token {user} {token}")?;
        }
        ServeAdmin::Token {
            action: TokenCommand::Revoke { db, token_or_user },
        } => match admin::revoke(&db, &token_or_user)? {
            server::users::Revoked::Token { login } => writeln!(out, "revoked a token of {login}")?,
            server::users::Revoked::User { login, tokens } => writeln!(
                out,
                "revoked {tokens} token{} of {login}",
                if tokens == 1 { "" } else { "s" }
            )?,
            server::users::Revoked::Nothing => {
                anyhow::bail!("no such token or user");
            }
        },
        ServeAdmin::User {
            action:
                UserCommand::Add {
                    db,
                    login,
                    login_flag,
                    name,
                    role,
                    practitioner,
                    password_stdin,
                },
        } => {
            let login = login.or(login_flag).context("a login is needed")?;
            // Read before anything is written: a password that fails leaves
            // no user half made.
            let password = if password_stdin {
                let p = read_password(false)?;
                server::auth::password::acceptable(&p)?;
                Some(p)
            } else {
                None
            };
            admin::add_user(&db, &login, &name, role, practitioner.as_deref())?;
            if let Some(p) = password {
                admin::set_password(&db, &login, &p)?;
                writeln!(
                    out,
                    "user {login} ({role}), who signs in with the password given"
                )?;
            } else {
                writeln!(
                    out,
                    "user {login} ({role}); `chartty serve token issue --user {login}` gives them a token, \
                     `chartty serve user password --db … {login}` a password"
                )?;
            }
        }
        ServeAdmin::User {
            action: UserCommand::Password { db, login },
        } => {
            let password = read_password(true)?;
            admin::set_password(&db, &login, &password)?;
            writeln!(out, "password of {login} set")?;
        }
        ServeAdmin::User {
            action: UserCommand::Totp { db, login, off },
        } => match admin::set_totp(&db, &login, !off)? {
            Some(secret) => {
                writeln!(out, "{}", server::auth::totp::otpauth_uri(&login, &secret))?;
                writeln!(out, "secret {}", server::auth::totp::base32(&secret))?;
            }
            None => writeln!(out, "authenticator codes off for {login}")?,
        },
        ServeAdmin::User {
            action: UserCommand::List { db },
        } => {
            for (u, disabled, live) in admin::list_users(&db)? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}{live} live tokens",
                    u.login,
                    u.role,
                    u.name,
                    u.practitioner.as_deref().unwrap_or("-"),
                    if disabled { "disabled\t" } else { "" },
                )?;
            }
        }
        ServeAdmin::User {
            action: UserCommand::Disable { db, login },
        } => {
            anyhow::ensure!(admin::set_disabled(&db, &login, true)?, "no user {login:?}");
            writeln!(out, "user {login} disabled")?;
        }
        ServeAdmin::User {
            action: UserCommand::Enable { db, login },
        } => {
            anyhow::ensure!(
                admin::set_disabled(&db, &login, false)?,
                "no user {login:?}"
            );
            writeln!(out, "user {login} enabled")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The origin of `--public-url` (scheme, host, port; nothing after).
fn public_origin(given: &str) -> anyhow::Result<String> {
    let url =
        url::Url::parse(given).with_context(|| format!("--public-url {given:?} is not a URL"))?;
    anyhow::ensure!(
        matches!(url.scheme(), "http" | "https")
            && url.host().is_some()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && url.username().is_empty(),
        "--public-url takes an origin only, like https://portal.example"
    );
    Ok(url.origin().ascii_serialization())
}

/// A password from stdin: one line; on a terminal, asked twice without
/// echo (and the two must agree).
fn read_password(confirm: bool) -> anyhow::Result<String> {
    use std::io::BufRead as _;
    let stdin = std::io::stdin();
    if !rustix::termios::isatty(&stdin) {
        let mut line = String::new();
        stdin.lock().read_line(&mut line)?;
        let p = line.trim_end_matches(['\n', '\r']).to_string();
        anyhow::ensure!(!p.is_empty(), "no password on stdin");
        return Ok(p);
    }
    let first = read_unechoed("New password: ")?;
    if confirm {
        let second = read_unechoed("Again: ")?;
        anyhow::ensure!(first == second, "the two passwords differ; nothing changed");
    }
    Ok(first)
}

/// One line from the terminal with echo off, echo restored however the
/// read ends.
fn read_unechoed(prompt: &str) -> anyhow::Result<String> {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use std::io::BufRead as _;
    let stdin = std::io::stdin();
    let before = tcgetattr(&stdin).context("reading the terminal's settings")?;
    let mut quiet = before.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    let mut err = std::io::stderr();
    write!(err, "{prompt}")?;
    err.flush()?;
    tcsetattr(&stdin, OptionalActions::Flush, &quiet).context("turning echo off")?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let restored = tcsetattr(&stdin, OptionalActions::Now, &before);
    writeln!(err)?;
    read?;
    restored.context("turning echo back on")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `chartty serve`: print how to reach it, then serve until Ctrl-C.
fn serve(
    listen: SocketAddr,
    db: PathBuf,
    demo: Option<DemoOptions>,
    options: server::Options,
) -> anyhow::Result<()> {
    init_server_logging();
    let rt = runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let staff = if demo.is_some() {
            server::demo::staff()
        } else {
            Vec::new()
        };
        let running =
            server::start_with(ServerConfig { db, demo }, listener, staff, options).await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "serving FHIR R4 at {}", running.base_url)?;
        for user in &running.users {
            writeln!(out, "token {} {}", user.role, user.token)?;
        }
        // After the token lines, which scripts read as they always were.
        for user in running.users.iter().filter(|u| !u.password.is_empty()) {
            writeln!(
                out,
                "password {} {} {}",
                user.role, user.login, user.password
            )?;
        }
        out.flush()?;
        drop(out);
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        running.stop().await;
        Ok(())
    })
}

/// `chartty demo`: a throwaway clinic on loopback, signed in as `role`.
///
/// Its data lives in a private temporary directory that is removed however
/// the demo ends: quit, error, panic (unwinding drops it), or a signal,
/// also one that arrives while the clinic is being prepared.
fn demo(
    overrides: &CliOverrides,
    role: Role,
    pane: Option<crate::tui::panes::PaneId>,
    opts: DemoOptions,
) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;

    let settings: Settings = config::load(overrides)?;
    let rt = runtime()?;
    // Until the TUI takes over (it listens for itself), a signal stops the
    // preparation instead of killing the process with the data left behind.
    let mut stop = rt.block_on(async { StopSignals::listen() })?;
    // Demo patients are made up, but the directory is private all the same:
    // it is created 0700, so there is no moment when others may enter it.
    let data = tempfile::Builder::new()
        .prefix("chartty-demo-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .context("creating a temporary directory for the demo database")?;
    // The terminal may be gone already (a dropped link): never panic on it.
    let _ = writeln!(
        std::io::stderr(),
        "chartty: preparing a demo clinic of {} patients...",
        opts.patients
    );
    let started = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let config = ServerConfig {
            db: data.path().join("portal.db"),
            demo: Some(opts),
        };
        // Overdue messages of the demo clinic escalate as they would in a
        // real one.
        let options = server::Options {
            escalate_every: Some(std::time::Duration::from_secs(60)),
            ..server::Options::default()
        };
        tokio::select! {
            running = server::start_with(config, listener, server::demo::staff(), options) => running.map(Some),
            () = stop.recv() => Ok(None),
        }
    });
    let running = match started {
        Ok(Some(running)) => running,
        Ok(None) => {
            // The database may still be written on a blocking thread: don't
            // wait for it; the removal copes with late files.
            rt.shutdown_timeout(DEMO_CUT_WAIT);
            return remove_demo_data(data);
        }
        Err(e) => {
            rt.shutdown_timeout(DEMO_CUT_WAIT);
            let _ = remove_demo_data(data);
            return Err(e);
        }
    };
    let Some(user) = running.users.iter().find(|u| u.role == role) else {
        rt.block_on(stop_server(running));
        rt.shutdown_timeout(DEMO_STOP_WAIT);
        let _ = remove_demo_data(data);
        anyhow::bail!("the demo server has no {role} user");
    };
    let session = Session {
        base_url: running.base_url.clone(),
        token: Some(user.token.clone()),
        role: Some(role),
        user: Some(user.name.clone()),
        start_pane: pane.or(settings.start_pane.map(pane_of)),
        // A throwaway clinic on loopback: its made-up password may be shown.
        unlock_hint: Some(format!(
            "Demo clinic: press d, open the address on this machine and sign in as {} with the password {}",
            user.login, user.password
        )),
        ..Session::default()
    };
    // The server keeps running on the runtime's worker threads while the TUI
    // owns this thread; it is stopped (and the data removed) whatever the TUI
    // returns, and when it panics (the terminal is given back by then), before
    // the panic goes on.
    let outcome =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| tui::run(settings, session)));
    rt.block_on(stop_server(running));
    rt.shutdown_timeout(DEMO_STOP_WAIT);
    let removed = remove_demo_data(data);
    match outcome {
        Ok(outcome) => {
            removed?;
            outcome.map(|_| ())
        }
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The longest the demo waits for its server and runtime to stop: the data is
/// removed and the process ends after that either way.
const DEMO_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
/// The same when the preparation was cut short by a signal.
const DEMO_CUT_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

async fn stop_server(running: server::RunningServer) {
    if tokio::time::timeout(DEMO_STOP_WAIT, running.stop())
        .await
        .is_err()
    {
        tracing::warn!("the demo server did not stop in time");
    }
}

/// Remove the demo data. A write that is still finishing (a preparation cut
/// short) may add a file while the directory is being emptied, so this tries
/// again a few times; once the directory is gone no file can be added.
fn remove_demo_data(data: tempfile::TempDir) -> anyhow::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir_all(data.path()) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) if tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("removing the demo database in {}", data.path().display())
                });
            }
        }
    }
}

/// The signals that end a demo: SIGTERM, SIGHUP (the terminal or SSH link
/// went away), SIGQUIT and SIGINT (Ctrl-C while the clinic is prepared).
struct StopSignals(Vec<tokio::signal::unix::Signal>);

impl StopSignals {
    /// Must be called inside the runtime.
    fn listen() -> anyhow::Result<StopSignals> {
        use tokio::signal::unix::{SignalKind, signal};
        let kinds = [
            ("SIGTERM", SignalKind::terminate()),
            ("SIGHUP", SignalKind::hangup()),
            ("SIGQUIT", SignalKind::quit()),
            ("SIGINT", SignalKind::interrupt()),
        ];
        let mut all = Vec::new();
        for (name, kind) in kinds {
            all.push(signal(kind).with_context(|| format!("listening for {name}"))?);
        }
        Ok(StopSignals(all))
    }

    /// Until one of them arrives.
    async fn recv(&mut self) {
        std::future::poll_fn(|cx| {
            for s in &mut self.0 {
                if s.poll_recv(cx).is_ready() {
                    return std::task::Poll::Ready(());
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}

/// The server logs to stderr (it is a service); request logs carry no bodies.
fn init_server_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHARTTY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_pane_setting_names_the_pane_the_flag_of_that_name_does() {
        use crate::config::StartPane::*;
        for (setting, name) in [
            (Search, "search"),
            (Summary, "summary"),
            (Results, "results"),
            (Notes, "notes"),
            (Tasks, "tasks"),
            (Note, "note"),
        ] {
            assert_eq!(Ok(pane_of(setting)), parse_pane(name), "{name}");
        }
    }

    #[test]
    fn a_user_is_added_by_login_as_an_argument_or_a_flag() {
        let login_of = |args: &[&str]| match Cli::try_parse_from(args).map(|c| c.command) {
            Ok(Some(Command::Serve {
                admin:
                    Some(ServeAdmin::User {
                        action:
                            UserCommand::Add {
                                login,
                                login_flag,
                                role,
                                ..
                            },
                    }),
                ..
            })) => Ok((login.or(login_flag), role)),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.kind()),
        };
        let base = [
            "chartty", "serve", "user", "add", "--db", "p.db", "--role", "nurse", "--name", "Rosa",
        ];
        let with = |more: &[&'static str]| [&base[..], more].concat();
        assert_eq!(
            login_of(&with(&["rosa"])),
            Ok((Some("rosa".into()), Role::Nurse))
        );
        assert_eq!(
            login_of(&with(&["--login", "rosa"])),
            Ok((Some("rosa".into()), Role::Nurse))
        );
        assert!(login_of(&with(&[])).is_err(), "a login is needed");
        assert!(
            login_of(&with(&["rosa", "--login", "ana"])).is_err(),
            "one login"
        );
    }

    #[test]
    fn phrases_lists_built_in_and_own_phrases_with_the_bound_key() {
        let phrases = crate::notes::Phrases::parse(
            "[phrases]\nrefill = \"Refilled {{today}} for 90 days.\"\n",
            "phrases.toml",
        );
        assert!(phrases.warnings.is_empty(), "{:?}", phrases.warnings);
        let load = Keymap::load_str(
            "[editor]\nkeymap = [{ on = \"ctrl-e\", run = \"expand_phrase\" }, { on = \"f2\", run = \"noop\" }]\n",
            "keymap.toml",
        );
        assert!(load.warnings.is_empty(), "{:?}", load.warnings);
        let out = phrases_reference(
            &phrases,
            &load.keymap,
            Some(std::path::Path::new("/p.toml")),
        );
        assert!(out.contains("press ctrl-e or tab or ctrl-n"), "{out}");
        assert!(!out.contains("f2"), "an unbound key is not offered: {out}");
        for name in [".vitals", ".meds", ".allergies", ".probs", ".labs", ".a1c"] {
            assert!(
                out.lines().any(|l| l.starts_with(name)),
                "{name} listed:\n{out}"
            );
        }
        assert!(
            out.contains(".refill") && out.contains("your phrase: Refilled {{today}}"),
            "{out}"
        );
        assert!(out.contains("Your phrases: /p.toml"), "{out}");
    }
}
