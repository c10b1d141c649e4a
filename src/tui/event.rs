//! Everything that happens to the app arrives as one [`Event`], with the
//! [`Clock`] read once by whoever delivers it: `App::update` never reads the
//! time itself, so debounces, probes and countdowns are plain tests.

use std::time::Instant;

use chrono::{DateTime, Utc};
use ratatui::crossterm::event::KeyEvent;

use crate::api::Completed;
use crate::tui::matcher::Matches;

#[derive(Debug, Clone)]
pub enum Event {
    Key(KeyEvent),
    /// Text pasted in one piece (bracketed paste), for the focused text input.
    Paste(String),
    /// The terminal changed size: draw again.
    Resize,
    /// Time passed (debounced searches, probes, the clock on screen).
    Tick,
    /// A request finished.
    Api(Completed),
    /// The matcher ranked the working set for a query.
    Matched(Matches),
    /// A draft was saved on this machine (when), or could not be (why).
    DraftPersisted {
        client_id: String,
        result: Result<DateTime<Utc>, String>,
    },
    /// How drafts are kept on this machine (`on_disk` false: in memory only).
    DraftProtection {
        text: String,
        on_disk: bool,
    },
    /// The drafts kept on this machine for the signed-in user.
    DraftsRecovered(Vec<crate::tui::app::SavedDraft>),
    /// The outbox kept on this machine for the signed-in user (JSON), if
    /// there was one.
    OutboxRecovered(Option<String>),
}

/// The time as the deliverer of an event read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Monotonic, for waits (debounce, probe backoff).
    pub instant: Instant,
    /// Wall clock, for what is shown (ages, due times).
    pub now: DateTime<Utc>,
}

impl Clock {
    pub fn system() -> Clock {
        Clock {
            instant: Instant::now(),
            now: Utc::now(),
        }
    }
}
