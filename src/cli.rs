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
    #[command(subcommand)]
    pub command: Option<Command>,
}

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
    /// Run the portal server (FHIR R4 over SQLite)
    Serve {
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
    /// Print the effective keymap (built-in defaults and your overrides)
    Keys,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("chartty: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let overrides = CliOverrides {
        server: cli.server.clone(),
        token: cli.token.clone(),
        theme: cli.theme.clone(),
        config_file: cli.config.clone(),
    };
    match cli.command {
        None => {
            let settings = config::load(&overrides)?;
            let base_url = settings.server.clone().context(
                "no server configured: pass --server URL, set CHARTTY_SERVER, \
                 put `server = \"...\"` in the config file, or try `chartty demo`",
            )?;
            let session = Session {
                base_url,
                token: settings.token.clone(),
                role: None,
                user: None,
            };
            tui::run(settings, session)?;
        }
        Some(Command::Demo {
            role,
            patients,
            seed,
        }) => demo(&overrides, role, DemoOptions::new(patients, seed))?,
        Some(Command::Serve {
            listen,
            db,
            demo,
            patients,
            seed,
        }) => {
            let demo = demo.then(|| DemoOptions::new(patients, seed));
            serve(listen, db, demo)?;
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
        Some(Command::Keys) => {
            let settings = config::load(&overrides)?;
            let load = Keymap::load(settings.keymap_file.as_deref());
            for w in &load.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", tui::keymap::reference(&load.keymap));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `chartty serve`: print how to reach it, then serve until Ctrl-C.
fn serve(listen: SocketAddr, db: PathBuf, demo: Option<DemoOptions>) -> anyhow::Result<()> {
    init_server_logging();
    let rt = runtime()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let running = server::start(ServerConfig { db, demo }, listener).await?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "serving FHIR R4 at {}", running.base_url)?;
        for user in &running.users {
            writeln!(out, "token {} {}", user.role, user.token)?;
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
fn demo(overrides: &CliOverrides, role: Role, opts: DemoOptions) -> anyhow::Result<()> {
    let settings: Settings = config::load(overrides)?;
    let data = tempfile::Builder::new()
        .prefix("chartty-demo-")
        .tempdir()
        .context("creating a temporary directory for the demo database")?;
    let rt = runtime()?;
    eprintln!(
        "chartty: preparing a demo clinic of {} patients...",
        opts.patients
    );
    let running = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let config = ServerConfig {
            db: data.path().join("portal.db"),
            demo: Some(opts),
        };
        server::start(config, listener).await
    })?;
    let user = running
        .users
        .iter()
        .find(|u| u.role == role)
        .with_context(|| format!("the demo server has no {role} user"))?;
    let session = Session {
        base_url: running.base_url.clone(),
        token: Some(user.token.clone()),
        role: Some(role),
        user: Some(user.name.clone()),
    };
    // The server keeps running on the runtime's worker threads while the TUI
    // owns this thread; it is stopped (and the data removed) whatever the TUI returns.
    let outcome = tui::run(settings, session);
    rt.block_on(running.stop());
    drop(rt);
    data.close().context("removing the demo database")?;
    outcome.map(|_| ())
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
