//! The portal server: a FHIR R4 REST API over SQLite (`chartty serve`), with
//! role-based access, demo data and import. Never imports the TUI.

pub mod access;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod db;
pub mod demo;
pub mod guard;
pub mod http;
pub mod import;
pub mod lastn;
pub mod options;
pub mod outcome;
pub mod params;
pub mod schema;
pub mod search;
pub mod store;
pub mod transport;
pub mod triage;
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
    /// The user's login (the practitioner id of the demo staff member).
    pub login: String,
    pub name: String,
    /// `Practitioner/<id>` of this user.
    pub practitioner: String,
    pub token: String,
    /// The password this user signs in with on the login page (made for
    /// this start).
    pub password: String,
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
    db: Arc<db::Db>,
    open: bool,
    triage: Option<Arc<crate::triage::RuleSet>>,
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
    let options = Options {
        limits,
        ..Options::default()
    };
    start_with(config, listener, staff, options).await
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

/// Like [`start_with_staff`], with [`Options`] (token lifetime, database
/// pool, limits on connections and requests).
///
/// Without users (open access) the listener must be on a loopback address:
/// anyone who can reach the server could read and change every record.
pub async fn start_with(
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    staff: Vec<demo::DemoStaff>,
    options: Options,
) -> anyhow::Result<RunningServer> {
    let addr = listener.local_addr()?;
    let loopback = addr.ip().to_canonical().is_loopback();
    let db_path = config.db.clone();
    let demo_opts = config.demo;
    let with_intake = demo_opts.is_some();
    let ttl = options.token_ttl;
    let refuse_open = move || {
        anyhow::anyhow!(
            "refusing to serve on {addr} without users: with open access anyone who can \
             reach that address could read and change every record; listen on a loopback \
             address (127.0.0.1 or [::1]) or add users (chartty serve user add, or --demo)"
        )
    };
    let (users, open, signer) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        // Refused before anything is written: no users means anyone who
        // reaches the address may read and change every record. A new
        // database has none; an existing one may (`chartty serve user add`).
        let exposed = staff.is_empty() && !loopback;
        if exposed && !db_path.exists() {
            return Err(refuse_open());
        }
        let mut store = Store::open(&db_path)?;
        if exposed && !users::any_enabled(store.connection())? {
            return Err(refuse_open());
        }
        if let Some(opts) = demo_opts
            && store.count("Patient")? == 0
        {
            store.ingest(demo::generate(opts))?;
        }
        let mut users = users::start_staff(store.connection(), staff, ttl)?;
        if with_intake {
            users.push(users::start_intake(store.connection(), ttl)?);
        }
        let open = !users::any_enabled(store.connection())?;
        let signer = auth::jwt::Signer::load_or_create(store.connection())?;
        Ok((users, open, signer))
    })
    .await
    .context("preparing the database")??;
    if open {
        eprintln!(
            "chartty serve: no users configured, access is open to anyone who can reach this address"
        );
    }

    let base_url = format!("http://{addr}/fhir");
    let limits = options.limits.clone();
    let triage_rules = options.triage.clone();
    let escalate_every = options.escalate_every;
    let db = db::Db::open(&config.db, &options)?;
    let sign_in = Arc::new(auth::Auth::new(db.clone(), options.clone(), signer));
    let app = Arc::new(http::App {
        db: db.clone(),
        open,
        base_url: base_url.clone(),
        options,
    });
    // Who may make the server read a request body: a token that signs
    // someone in now (the dispatcher checks it again, and decides).
    let tokens = db.clone();
    let guard = Arc::new(guard::Guard::new(
        &limits,
        open,
        Box::new(move |token: String| {
            let db = tokens.clone();
            Box::pin(async move {
                db.read(move |conn| -> Result<bool, outcome::FhirError> {
                    Ok(users::authenticate(conn, &token, store::now_ms())?.is_ok())
                })
                .await
                .unwrap_or(false)
            })
        }),
    ));
    let router = Router::new()
        .fallback(http::dispatch)
        .with_state(app)
        .merge(auth::router(sign_in))
        .layer(axum::middleware::from_fn_with_state(guard, guard::admit))
        .layer(DefaultBodyLimit::max(limits.max_body))
        .layer(CompressionLayer::new());
    let (tx, rx) = tokio::sync::watch::channel(false);
    if let (Some(every), Some(rules)) = (escalate_every, triage_rules.clone()) {
        spawn_escalation(db.clone(), rules, every, rx.clone());
    }
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
        db,
        open,
        triage: triage_rules,
    })
}

/// Escalate overdue tasks every `every` until the server stops.
fn spawn_escalation(
    db: Arc<db::Db>,
    rules: Arc<crate::triage::RuleSet>,
    every: std::time::Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        // The first pass one period after the start, not at once.
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => break,
            }
            if let Err(e) = escalate(&db, rules.clone(), chrono::Utc::now()).await {
                tracing::warn!(error = %e.message, "escalating overdue tasks");
            }
        }
    });
}

/// One escalation pass at `now`, each change in the audit with its reason.
async fn escalate(
    db: &Arc<db::Db>,
    rules: Arc<crate::triage::RuleSet>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, outcome::FhirError> {
    db.write(move |conn| -> Result<usize, outcome::FhirError> {
        let changed = triage::escalate_overdue(conn, &rules, now)?;
        let ctx = audit::Context::new(None);
        let events: Vec<audit::Event> = changed
            .iter()
            .map(|(id, task)| {
                let mut e = audit::Event::of(None, &ctx, "update");
                e.ty = Some("Task".into());
                e.id = Some(id.clone());
                e.status = 200;
                e.detail = Some(format!("escalated by {}", triage::ROUTER));
                e.version = task
                    .pointer("/meta/versionId")
                    .and_then(serde_json::Value::as_str)
                    .and_then(|v| v.parse().ok());
                e.patients = access::patients_of("Task", id, task);
                e
            })
            .collect();
        audit::append(conn, &events)?;
        Ok(changed.len())
    })
    .await
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

    /// Escalate the overdue tasks as of `now` (the server also does it on
    /// its clock); how many changed.
    pub async fn escalate_now(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, outcome::FhirError> {
        match &self.triage {
            Some(rules) => escalate(&self.db, rules.clone(), now).await,
            None => Ok(0),
        }
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
        self.db.stop();
        let db = self.db.clone();
        let _ = tokio::task::spawn_blocking(move || db.join()).await;
    }
}
