//! The app without a terminal, for tests and benchmarks: feed keys in the
//! notation of [`crate::tui::keys`], let requests run against a real server,
//! render into any ratatui backend.

use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;

use crate::api::{ApiClient, SentRequest, Worker};
use crate::tui::app::App;
use crate::tui::command::Completed;
use crate::tui::keys::{KeyParseError, parse_keys};

/// Longest wait for one reply before `settle` gives up (a hung server).
const REPLY_WAIT: Duration = Duration::from_secs(60);

pub struct Headless {
    pub app: App,
    worker: Worker,
    replies: mpsc::UnboundedReceiver<Completed>,
    /// Report this latency instead of the measured one (stable snapshots).
    pub fixed_latency: Option<Duration>,
}

impl Headless {
    /// Must be called inside a tokio runtime; requests run on it.
    pub fn new(app: App, client: ApiClient) -> Headless {
        let (worker, replies) = Worker::new(client, tokio::runtime::Handle::current());
        let mut h = Headless {
            app,
            worker,
            replies,
            fixed_latency: None,
        };
        h.submit();
        h
    }

    fn submit(&mut self) {
        for (id, req) in self.app.take_requests() {
            self.worker.submit(id, req);
        }
    }

    /// Type keys; requests they cause go out at once (searches stay debounced
    /// until [`Headless::flush`] or [`Headless::settle`]).
    pub fn keys(&mut self, notation: &str) -> Result<(), KeyParseError> {
        for k in parse_keys(notation)? {
            self.app.handle_key(k);
            self.submit();
        }
        Ok(())
    }

    /// Time passes as far as `instant` (probes of a server that is down).
    pub fn tick(&mut self, instant: std::time::Instant) {
        let now = self.app.now();
        self.app.tick(instant, now);
        self.submit();
    }

    /// As if the debounce time had passed: send the pending search.
    pub fn flush(&mut self) {
        self.app.flush_search();
        self.submit();
    }

    /// Run until no request is in flight, applying every reply in arrival order.
    pub async fn settle(&mut self) {
        self.flush();
        while self.app.in_flight() > 0 {
            match tokio::time::timeout(REPLY_WAIT, self.replies.recv()).await {
                Ok(Some(done)) => self.deliver(done),
                _ => panic!("no reply from the server within {REPLY_WAIT:?}"),
            }
        }
    }

    /// Wait for every request in flight without applying the replies.
    pub async fn collect(&mut self) -> Vec<Completed> {
        self.flush();
        let mut out = Vec::new();
        while out.len() < self.app.in_flight() {
            match tokio::time::timeout(REPLY_WAIT, self.replies.recv()).await {
                Ok(Some(done)) => out.push(done),
                _ => panic!("no reply from the server within {REPLY_WAIT:?}"),
            }
        }
        out
    }

    /// Apply one reply (e.g. out of order, to test stale replies).
    pub fn deliver(&mut self, mut done: Completed) {
        if let Some(l) = self.fixed_latency {
            done.latency = l;
        }
        self.app.handle_completed(done);
        self.submit();
    }

    pub fn sent(&self) -> Vec<SentRequest> {
        self.worker.client().sent()
    }

    pub fn render<B: Backend>(&mut self, terminal: &mut Terminal<B>) -> Result<(), B::Error> {
        terminal.draw(|f| self.app.render(f))?;
        Ok(())
    }
}
