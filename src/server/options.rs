//! Settings of a running server that have good defaults: how long tokens
//! (and sign-in codes) live, what a password hash costs, how many database connections serve reads and how long a request
//! waits for one, and how large a resource may be (the limits of one
//! search are in `search`).

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Options {
    /// How long a bearer token issued at start (or by `token issue`) lives.
    pub token_ttl: Duration,
    /// Read connections in the pool; requests beyond wait for one.
    pub readers: usize,
    /// How long a request waits for a read connection or its turn at the
    /// writer before it is answered 503 with `Retry-After`.
    pub wait: Duration,
    /// Largest resource stored, as compact JSON (an import is not limited).
    pub max_resource_bytes: usize,
    /// Limits on connections and requests (timeouts, sizes).
    pub limits: super::transport::Limits,
    /// The server's origin as its users reach it (`https://portal.example`),
    /// when a TLS-terminating proxy stands in front; otherwise the origin is
    /// `http://` and the request's `Host`.
    pub public_url: Option<String>,
    /// How long an access token issued at sign-in (OAuth) lives.
    pub access_ttl: Duration,
    /// How long a refresh token lives (each refresh gives a new one).
    pub refresh_ttl: Duration,
    /// How long a device code waits for its user (RFC 8628 `expires_in`).
    pub device_ttl: Duration,
    /// The least time between two polls of a device code (`interval`).
    pub device_interval: Duration,
    /// The cost of hashing a password (argon2id).
    pub password_cost: super::auth::password::Cost,
    /// Failed sign-ins allowed in a window, per login and per client
    /// address, before sign-in answers 429.
    pub sign_in_limits: super::auth::limit::Limits,
    /// Proxies whose `X-Forwarded-For` names the client (`--trusted-proxy`):
    /// behind one, the peer of every request is the proxy.
    pub trusted_proxies: Vec<super::auth::address::Cidr>,
    /// How long after a refresh the refresh token it spent may be presented
    /// again for a new pair instead of revoking the grant: the answer may
    /// have been lost, or two copies of one client refreshed at once.
    pub refresh_reuse_grace: Duration,
    /// The routing rules every new patient message goes through; `None`
    /// stores messages unrouted (a clinic routing with `chartty route`
    /// from elsewhere).
    pub triage: Option<std::sync::Arc<crate::triage::RuleSet>>,
    /// How often overdue tasks are escalated; `None`: never (the
    /// default of an embedded server, whose clinic may be dated in the
    /// past; `chartty serve` and `chartty demo` turn it on).
    pub escalate_every: Option<Duration>,
}

/// Tokens of a working day, with the evening handover.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(12 * 3600);

impl Default for Options {
    fn default() -> Self {
        Options {
            token_ttl: DEFAULT_TOKEN_TTL,
            readers: 8,
            wait: Duration::from_secs(5),
            max_resource_bytes: 1024 * 1024,
            limits: super::transport::Limits::default(),
            public_url: None,
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(7 * 86_400),
            device_ttl: Duration::from_secs(600),
            device_interval: Duration::from_secs(5),
            password_cost: super::auth::password::Cost::default(),
            sign_in_limits: super::auth::limit::Limits::default(),
            trusted_proxies: Vec::new(),
            refresh_reuse_grace: Duration::from_secs(30),
            triage: Some(std::sync::Arc::new(crate::triage::RuleSet::embedded())),
            escalate_every: None,
        }
    }
}
