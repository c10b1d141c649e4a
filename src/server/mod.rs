//! The portal server: a FHIR R4 REST API over SQLite (`chartty serve`), with
//! role-based access, demo data and import. Never imports the TUI.

pub mod access;
pub mod admin;
pub mod audit;
pub mod db;
pub mod demo;
pub mod http;
pub mod import;
pub mod lastn;
pub mod options;
pub mod outcome;
pub mod params;
pub mod schema;
pub mod search;
pub mod store;
pub mod users;
pub mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use tower_http::compression::CompressionLayer;

use crate::roles::Role;

pub use import::{ImportReport, import_paths};
pub use options::Options;
pub use store::Store;

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
    /// The user's login (the practitioner id of the demo staff member).
    pub login: String,
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
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    db: Arc<db::Db>,
    open: bool,
}

/// Largest request body accepted (transaction Bundles can be large).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Start serving on an already bound listener (tests bind `127.0.0.1:0`).
///
/// With `config.demo`, an empty database is filled with the demo population
/// and one user per demo staff member gets a fresh bearer token.
pub async fn start(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<RunningServer> {
    let staff = if config.demo.is_some() {
        demo::staff()
    } else {
        Vec::new()
    };
    start_with_staff(config, listener, staff).await
}

/// Like [`start`], with the given staff as users (none, and no users in
/// the database: open access).
pub async fn start_with_staff(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    staff: Vec<demo::DemoStaff>,
) -> anyhow::Result<RunningServer> {
    start_with(config, listener, staff, Options::default()).await
}

/// Like [`start_with_staff`], with [`Options`].
pub async fn start_with(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    staff: Vec<demo::DemoStaff>,
    options: Options,
) -> anyhow::Result<RunningServer> {
    let db_path = config.db.clone();
    let demo_opts = config.demo;
    let ttl = options.token_ttl;
    let (users, open) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut store = Store::open(&db_path)?;
        if let Some(opts) = demo_opts
            && store.count("Patient")? == 0
        {
            store.ingest(demo::generate(opts))?;
        }
        let users = users::start_staff(store.connection(), staff, ttl)?;
        let open = !users::any_enabled(store.connection())?;
        Ok((users, open))
    })
    .await
    .context("preparing the database")??;
    if open {
        eprintln!(
            "chartty serve: no users configured, access is open to anyone who can reach this address"
        );
    }

    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}/fhir");
    let db = db::Db::open(&config.db, &options)?;
    let app = Arc::new(http::App {
        db: db.clone(),
        open,
        base_url: base_url.clone(),
        options,
    });
    let router = Router::new()
        .fallback(http::dispatch)
        .with_state(app)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(CompressionLayer::new());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let served = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await;
        if let Err(err) = served {
            tracing::error!(error = %err, "server stopped with an error");
        }
    });
    tracing::info!(%addr, users = users.len(), "portal server listening");
    Ok(RunningServer {
        addr,
        base_url,
        users,
        shutdown: Some(tx),
        task: Some(task),
        db,
        open,
    })
}

impl RunningServer {
    pub fn token_for(&self, role: Role) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.role == role)
            .map(|u| u.token.as_str())
    }

    /// Whether the server has no users (anyone who reaches it may use it).
    pub fn open_access(&self) -> bool {
        self.open
    }

    /// Stop accepting, finish in-flight requests, close the database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.db.stop();
        let db = self.db.clone();
        let _ = tokio::task::spawn_blocking(move || db.join()).await;
    }
}
