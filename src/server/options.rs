//! Settings of a running server that have good defaults: how long tokens
//! live, how many database connections serve reads and how long a request
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
        }
    }
}
