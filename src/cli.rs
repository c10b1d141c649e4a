//! Command line: parse, then hand over to the half that does the work.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::roles::Role;

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
    let _ = cli;
    Ok(ExitCode::SUCCESS)
}
