//! The portal server: a FHIR R4 REST API over SQLite (`chartty serve`), with
//! role-based access, demo data and import. Never imports the TUI.

pub mod access;
pub mod audit;
pub mod demo;
pub mod guard;
pub mod http;
pub mod import;
pub mod lastn;
pub mod outcome;
pub mod params;
pub mod schema;
pub mod search;
pub mod store;
pub mod transport;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::compression::CompressionLayer;

use crate::roles::Role;

pub use import::{ImportReport, import_paths};
pub use store::Store;
pub use transport::{Limits, TransportStats};

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

/// A server running on tokio tasks. `stop` stops it gracefully; dropping it
/// stops it too, without waiting.
pub struct RunningServer {
    pub addr: SocketAddr,
    /// `http://<addr>/fhir`
    pub base_url: String,
    pub users: Vec<DemoUser>,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    transport: Arc<transport::Shared>,
    audit: audit::AuditSink,
    audit_thread: Option<std::thread::JoinHandle<()>>,
}

/// Start serving on an already bound listener (tests bind `127.0.0.1:0`).
///
/// With `config.demo`, an empty database is filled with the demo population
/// and one user per demo staff member gets a fresh bearer token.
pub async fn start(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<RunningServer> {
    start_with_limits(config, listener, Limits::default()).await
}

/// Like [`start`], with the given limits on connections and requests.
pub async fn start_with_limits(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    limits: Limits,
) -> anyhow::Result<RunningServer> {
    let staff = if config.demo.is_some() {
        demo::staff()
    } else {
        Vec::new()
    };
    start_with(config, listener, staff, limits).await
}

/// Like [`start`], with the given staff as users (none: open access).
pub async fn start_with_staff(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    staff: Vec<demo::DemoStaff>,
) -> anyhow::Result<RunningServer> {
    start_with(config, listener, staff, Limits::default()).await
}

/// Like [`start_with_staff`], with the given limits on connections and
/// requests.
///
/// Without users (open access) the listener must be on a loopback address:
/// anyone who can reach the server could read and change every record.
pub async fn start_with(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    staff: Vec<demo::DemoStaff>,
    limits: Limits,
) -> anyhow::Result<RunningServer> {
    let addr = listener.local_addr()?;
    if staff.is_empty() && !addr.ip().to_canonical().is_loopback() {
        anyhow::bail!(
            "refusing to serve on {addr} without users: with open access anyone who can reach \
             that address could read and change every record; listen on a loopback address \
             (127.0.0.1 or [::1]) or start with users (--demo)"
        );
    }
    let db_path = config.db.clone();
    let demo_opts = config.demo;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut store = Store::open(&db_path)?;
        if let Some(opts) = demo_opts
            && store.count("Patient")? == 0
        {
            store.ingest(demo::generate(opts))?;
        }
        Ok(())
    })
    .await
    .context("preparing the database")??;

    let users: Vec<DemoUser> = staff
        .into_iter()
        .map(|s| {
            Ok(DemoUser {
                role: s.role,
                name: s.name,
                practitioner: format!("Practitioner/{}", s.practitioner_id),
                token: fresh_token()?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    if users.is_empty() {
        eprintln!(
            "chartty serve: no users configured, access is open to anyone who can reach this address"
        );
    }

    let base_url = format!("http://{addr}/fhir");
    let (audit, audit_thread) = audit::spawn(&config.db)?;
    let app = Arc::new(http::App {
        db: http::Db::open(config.db.clone())?,
        users: users
            .iter()
            .map(|u| (u.token.clone(), u.clone()))
            .collect::<HashMap<_, _>>(),
        base_url: base_url.clone(),
        audit: audit.clone(),
    });
    // Who may make the server read a request body: the same tokens the
    // dispatcher accepts (it checks them again, and decides).
    let tokens: HashSet<String> = users.iter().map(|u| u.token.clone()).collect();
    let guard = Arc::new(guard::Guard::new(
        &limits,
        users.is_empty(),
        Box::new(move |headers| guard::bearer_token(headers).is_some_and(|t| tokens.contains(t))),
    ));
    let router = Router::new()
        .fallback(http::dispatch)
        .with_state(app)
        .layer(axum::middleware::from_fn_with_state(guard, guard::admit))
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(CompressionLayer::new());
    let (tx, rx) = tokio::sync::watch::channel(false);
    let served = transport::spawn(listener, router, limits, rx);
    tracing::info!(
        %addr,
        users = users.len(),
        max_connections = served.shared.stats().max_connections,
        "portal server listening"
    );
    Ok(RunningServer {
        addr,
        base_url,
        users,
        shutdown: tx,
        task: Some(served.task),
        transport: served.shared,
        audit,
        audit_thread: Some(audit_thread),
    })
}

/// 32 bytes from the operating system's RNG, hex encoded.
fn fresh_token() -> anyhow::Result<String> {
    use rand::TryRng;
    let mut bytes = [0u8; 32];
    rand::rngs::SysRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl RunningServer {
    pub fn token_for(&self, role: Role) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.role == role)
            .map(|u| u.token.as_str())
    }

    /// Counters of the connections (open now, accepted, closed and why).
    pub fn transport_stats(&self) -> TransportStats {
        self.transport.stats()
    }

    /// Stop accepting, close idle connections, finish in-flight requests
    /// (within `Limits::shutdown_grace`), close the database.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.audit.stop();
        if let Some(t) = self.audit_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}
