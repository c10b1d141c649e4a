//! The portal server: a FHIR R4 REST API over SQLite (`chartty serve`), with
//! role-based access, demo data and import. Never imports the TUI.

pub mod demo;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::roles::Role;

/// How to start a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// SQLite database file; created and migrated on first start.
    pub db: PathBuf,
    /// Fill an empty database with the demo population and create demo users.
    pub demo: Option<demo::DemoOptions>,
}

/// A demo user and the bearer token it was given for this start.
#[derive(Debug, Clone)]
pub struct DemoUser {
    pub role: Role,
    pub name: String,
    /// `Practitioner/<id>` of this user.
    pub practitioner: String,
    pub token: String,
}

/// A server running on a tokio task; dropping it does not stop it, `stop` does.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// `http://<addr>/fhir`
    pub base_url: String,
    pub users: Vec<DemoUser>,
}

/// Start serving on an already bound listener (tests bind `127.0.0.1:0`).
pub async fn start(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<RunningServer> {
    let _ = (config, listener);
    anyhow::bail!("the portal server is not built yet")
}

impl RunningServer {
    pub fn token_for(&self, role: Role) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.role == role)
            .map(|u| u.token.as_str())
    }

    /// Stop accepting, finish in-flight requests, close the database.
    pub async fn stop(self) {}
}
