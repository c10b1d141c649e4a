//! The app without a terminal, for tests and benchmarks: feed keys in the
//! notation of [`crate::tui::keys`] (or any event), let requests run against
//! a real server and matching on the real matcher thread, render into any
//! ratatui backend. The wall clock stands still unless moved, so what is
//! drawn does not depend on when the test runs.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::sync::mpsc;

use crate::api::{ApiClient, Completed, SentRequest, Worker};
use crate::tui::app::App;
use crate::tui::event::{Clock, Event};
use crate::tui::keeper::{DraftKeeper, KeeperWorker, MemoryDrafts};
use crate::tui::keys::{KeyParseError, parse_keys};
use crate::tui::matcher::{MatchWorker, Matches};

/// Longest wait for one reply before `settle` gives up (a hung server).
const REPLY_WAIT: Duration = Duration::from_secs(60);

pub struct Headless {
    pub app: App,
    worker: Worker,
    replies: mpsc::UnboundedReceiver<Completed>,
    matcher: MatchWorker,
    matches: mpsc::UnboundedReceiver<Matches>,
    keeper: Option<KeeperWorker>,
    kept: mpsc::UnboundedReceiver<Event>,
    /// Draft effects sent to the keeper and not answered yet.
    keeper_pending: usize,
    /// Report this latency instead of the measured one (stable snapshots).
    pub fixed_latency: Option<Duration>,
    instant: Instant,
}

impl Headless {
    /// Must be called inside a tokio runtime; requests run on it. Drafts
    /// are kept in memory.
    pub fn new(app: App, client: ApiClient) -> Headless {
        Headless::with_keeper(app, client, Box::new(MemoryDrafts::new("headless")))
    }

    /// With drafts kept by `keeper` (e.g. the encrypted store in a
    /// temporary folder).
    pub fn with_keeper(app: App, client: ApiClient, keeper: Box<dyn DraftKeeper>) -> Headless {
        let (kept_tx, kept) = mpsc::unbounded_channel();
        let keeper = KeeperWorker::spawn(
            move || keeper,
            move |e| {
                let _ = kept_tx.send(e);
            },
        );
        let (worker, replies) = Worker::new(client, tokio::runtime::Handle::current());
        let (tx, matches) = mpsc::unbounded_channel();
        let matcher = MatchWorker::spawn(move |m| {
            let _ = tx.send(m);
        });
        let mut h = Headless {
            app,
            worker,
            replies,
            matcher,
            matches,
            keeper: Some(keeper),
            kept,
            // The keeper says how it keeps drafts first.
            keeper_pending: 1,
            fixed_latency: None,
            instant: Instant::now(),
        };
        h.submit();
        h
    }

    fn clock(&self) -> Clock {
        Clock {
            instant: self.instant,
            now: self.app.now(),
        }
    }

    fn submit(&mut self) {
        for (id, req) in self.app.take_requests() {
            self.worker.submit(id, req);
        }
        for job in self.app.take_match_jobs() {
            self.matcher.send(job);
        }
        for effect in self.app.take_draft_effects() {
            if let Some(k) = &self.keeper {
                if KeeperWorker::answers(&effect) {
                    self.keeper_pending += 1;
                }
                k.send(effect);
            }
        }
    }

    /// Deliver one event now.
    pub fn event(&mut self, event: Event) {
        let clock = self.clock();
        self.app.update(event, clock);
        self.submit();
    }

    /// Type keys; requests they cause go out at once (searches stay debounced
    /// until [`Headless::flush`] or [`Headless::settle`]).
    pub fn keys(&mut self, notation: &str) -> Result<(), KeyParseError> {
        for k in parse_keys(notation)? {
            self.event(Event::Key(k));
        }
        Ok(())
    }

    /// A bracketed paste.
    pub fn paste(&mut self, text: &str) {
        self.event(Event::Paste(text.to_string()));
    }

    /// Time passes as far as `instant` (probes of a server that is down).
    pub fn tick(&mut self, instant: Instant) {
        self.instant = self.instant.max(instant);
        self.event(Event::Tick);
    }

    /// Move the wall clock (what ages and due times are counted from).
    pub fn set_now(&mut self, now: DateTime<Utc>) {
        let clock = Clock {
            instant: self.instant,
            now,
        };
        self.app.update(Event::Tick, clock);
        self.submit();
    }

    /// As if the debounce time had passed: send the pending search.
    pub fn flush(&mut self) {
        self.app.flush_search();
        self.submit();
    }

    /// The next reply or match, whichever comes first.
    async fn next_event(&mut self) -> Event {
        let next = tokio::time::timeout(REPLY_WAIT, async {
            tokio::select! {
                Some(done) = self.replies.recv() => Event::Api(done),
                Some(m) = self.matches.recv() => Event::Matched(m),
                Some(e) = self.kept.recv() => {
                    self.keeper_pending = self.keeper_pending.saturating_sub(1);
                    e
                }
            }
        })
        .await;
        next.unwrap_or_else(|_| panic!("no reply within {REPLY_WAIT:?}"))
    }

    /// Run until no request is in flight, no match is pending and the
    /// drafts keeper has answered, applying every reply in arrival order.
    pub async fn settle(&mut self) {
        self.flush();
        while self.app.in_flight() > 0 || self.app.matching() || self.keeper_pending > 0 {
            match self.next_event().await {
                Event::Api(done) => self.deliver(done),
                other => self.event(other),
            }
            self.flush();
        }
    }

    /// Wait for the next event and apply it (a reply, a match, a saved
    /// draft): for a test watching a request that stays in flight.
    pub async fn pump(&mut self) {
        match self.next_event().await {
            Event::Api(done) => self.deliver(done),
            other => self.event(other),
        }
    }

    /// Wait for every request in flight without applying the replies
    /// (matches are applied as they come).
    pub async fn collect(&mut self) -> Vec<Completed> {
        self.flush();
        let mut out = Vec::new();
        while out.len() < self.app.in_flight() {
            match self.next_event().await {
                Event::Api(done) => out.push(done),
                other => self.event(other),
            }
        }
        out
    }

    /// Apply one reply (e.g. out of order, to test stale replies).
    pub fn deliver(&mut self, mut done: Completed) {
        if let Some(l) = self.fixed_latency {
            done.latency = l;
        }
        self.event(Event::Api(done));
    }

    /// The session ends as on quit or a signal: what the editor holds is
    /// saved, and the keeper has written it when this returns.
    pub fn end(&mut self) {
        self.app.end_session();
        self.submit();
        if let Some(k) = self.keeper.take() {
            k.finish();
        }
    }

    pub fn sent(&self) -> Vec<SentRequest> {
        self.worker.client().sent()
    }

    pub fn render<B: Backend>(&mut self, terminal: &mut Terminal<B>) -> Result<(), B::Error> {
        terminal.draw(|f| self.app.render(f))?;
        Ok(())
    }
}
