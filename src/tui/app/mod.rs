//! The application state and its one update path: every [`Event`] (a key, a
//! paste, a tick, a reply) comes in through [`App::update`] with the
//! [`Clock`] read by its deliverer. Keys become actions through the keymap,
//! actions go to the focused pane (or a popup), panes answer with commands,
//! and the app turns commands into requests (for the api worker) and match
//! jobs (for the matcher thread), which the runner takes with
//! [`App::take_requests`] and [`App::take_match_jobs`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::api::{ApiError, ApiReply, ApiRequest, Completed, Features, RequestId, Slot};
use crate::chart::allergies::{self, Headline, NO_ALLERGIES_RECORDED};
use crate::chart::query::{DateOrder, server_params};
use crate::chart::timefmt;
use crate::chart::{ChartData, PatientRow, RecordNumber};
use crate::config::Settings;
use crate::fhir::model::Patient;
use crate::fhir::sanitize::{needs_replacing, sanitize};
use crate::roles::Role;
use crate::tui::action::Action;
use crate::tui::command::{Command, PaneReply};
use crate::tui::event::{Clock, Event};
use crate::tui::keymap::{Context, Key, Keymap, LayerKey, Lookup, display_sequence};
use crate::tui::matcher::{MatchJob, Matches};
use crate::tui::panes::search::sex_label;
use crate::tui::panes::tasks::QueueState;
use crate::tui::panes::{NotesEnv, Pane, PaneId, Panes, Prefs, View, fit, fit_line, life_label};
use crate::tui::popups::stats::Figures;
use crate::tui::popups::{
    Confirm, HelpPopup, LayerView, Palette, Popup, PopupOutcome, RawView, StatsView, which_key,
};
use crate::tui::theme::Theme;

/// Quiet time after the last keystroke before a server-side search goes out.
pub const SEARCH_DEBOUNCE: Duration = Duration::from_millis(150);
/// Pages of patients fetched at start for the working set.
const WORKING_SET_PAGES: u32 = 4;
/// Patients per page in the low-bandwidth mode (at most).
const LOW_BANDWIDTH_PAGE: u32 = 25;
/// Pages of the role queue followed.
const QUEUE_PAGES: u32 = 10;
/// Wait before the first probe of a server that could not be reached; it
/// doubles after each failed probe up to [`PROBE_MAX`].
pub const PROBE_FIRST: Duration = Duration::from_secs(2);
pub const PROBE_MAX: Duration = Duration::from_secs(30);
/// A typical round trip this long or longer is a slow link (a phone hotspot
/// behind a jump host): the status bar says so.
pub const SLOW_LINK: Duration = Duration::from_millis(800);

/// Who is signed in where; built by the command line.
#[derive(Debug, Clone, Default)]
pub struct Session {
    pub base_url: String,
    pub token: Option<String>,
    pub role: Option<Role>,
    pub user: Option<String>,
    /// A SMART sign-in: the bearer every request carries, refreshed as it
    /// goes (instead of `token`).
    pub bearer: Option<crate::api::signin::Bearer>,
    /// Who signed in, where the sign-in said (`fhirUser`, else issuer and
    /// subject): owns the drafts on a server without `$whoami`.
    pub identity: Option<String>,
    /// Said on the lock screen: how to unlock a throwaway demo session
    /// (its user's demo login and password). Never set for a real server.
    pub unlock_hint: Option<String>,
    /// The pane to start on (`--pane`); else the role's queue for the
    /// roles whose work is the queue, patient search for the others.
    pub start_pane: Option<PaneId>,
}

/// The pane a role starts on: the queue for those whose work is the queue.
pub fn start_pane_for(role: Option<Role>) -> PaneId {
    match role {
        Some(Role::Nurse | Role::Frontdesk | Role::Billing) => PaneId::Tasks,
        _ => PaneId::Search,
    }
}

/// The queue reloads itself this often (no key needed for a new STAT item).
pub const QUEUE_REFRESH: Duration = Duration::from_secs(30);
/// The same on a slow link.
pub const QUEUE_REFRESH_SLOW: Duration = Duration::from_secs(120);

/// Task writes of one action (one task, or a marked set), counted as they
/// come back.
#[derive(Debug, Clone, Default)]
struct Batch {
    what: String,
    total: usize,
    done: usize,
    ok: usize,
    /// Why each task that was not changed was not.
    failed: Vec<String>,
    /// The last task saved (named when it is the only one).
    saved: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Nothing answered yet.
    Unknown,
    Online,
    /// Answers come, slowly: the typical round trip (`App::link_latency`)
    /// is over [`SLOW_LINK`].
    Slow,
    /// The server answered with an error.
    Degraded,
    /// The server could not be reached.
    Down,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// What a request in flight was for (kept with a write that waits in the
/// outbox, so its answer is applied as if it had come at once).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum Origin {
    WhoAmI,
    Capabilities,
    WorkingSet {
        page: u32,
    },
    Search {
        query: String,
    },
    Chart {
        patient_id: String,
    },
    History {
        code: String,
    },
    Queue {
        page: u32,
    },
    /// A change to a queue item (one of a batch).
    TaskWrite {
        batch: u64,
        label: String,
        task_id: String,
    },
    /// A queue item read again after a version conflict.
    TaskReread {
        batch: u64,
        label: String,
    },
    /// A reply to a patient; the task is updated once it is stored.
    ReplySent {
        batch: u64,
        task: Box<crate::tui::command::TaskChange>,
    },
    /// A patient's messages for the message view.
    Thread {
        patient_id: String,
    },
    /// The figures of the stats view.
    QueueStats,
    Probe,
    /// A draft's save to the server.
    NoteSave {
        client_id: String,
    },
    /// A note's signature (or a resident's, awaiting co-signature).
    NoteSign {
        note: Box<crate::tui::command::NoteSnapshot>,
    },
    /// The co-signature task of a resident's signed note.
    CosignTask {
        client_id: String,
    },
    /// An attending's co-signature.
    CoSign,
    /// A patient's tasks, for the time on the patient's messages.
    WorkTasks {
        patient_id: String,
    },
    /// Time on a message thread added to its task.
    WorkWrite {
        task_id: String,
    },
    /// The task read again to add the time (a conflict, or not listed).
    WorkReread {
        task_id: String,
    },
    /// Time recorded for billing (a task in the billing queue).
    Billing {
        label: String,
        authored: String,
        client_id: String,
    },
    /// A task read again to show the server's version on its row (a
    /// change shown on it was refused).
    TaskRow,
    /// The server's version of a change of ours it refused.
    OutboxTheirs {
        path: String,
    },
    /// Tokens dropped from memory.
    Lock,
    /// A step of unlocking; `attempt` tells an abandoned attempt's late
    /// answer from the current one's.
    Unlock {
        attempt: u32,
    },
}

impl Origin {
    /// A change on its way to the server: its reply is applied even while
    /// the screen is locked, and the token stays until it is back.
    fn is_write(&self) -> bool {
        matches!(
            self,
            Origin::NoteSave { .. }
                | Origin::NoteSign { .. }
                | Origin::CosignTask { .. }
                | Origin::CoSign
                | Origin::TaskWrite { .. }
                | Origin::ReplySent { .. }
                | Origin::WorkWrite { .. }
                | Origin::WorkReread { .. }
                | Origin::Billing { .. }
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub requests: u64,
    /// Replies dropped (or requests cancelled) because a newer request of
    /// the same kind superseded them.
    pub stale_dropped: u64,
}

/// What panes may read, borrowing only the fields it needs (so a pane can
/// be borrowed mutably beside it).
macro_rules! view {
    ($self:ident, $focused:expr) => {
        View {
            chart: $self.chart.as_ref(),
            now: $self.clock.now,
            instant: $self.clock.instant,
            theme: &$self.theme,
            prefs: &$self.prefs,
            notes: &$self.notes,
            user: $self.session.user.as_deref(),
            role: $self.session.role,
            records: &$self.records,
            work: $self.work.summary.as_ref(),
            focused: $focused,
        }
    };
}

mod lock;
mod notes;
mod outbox;
mod queue;
mod work;

pub use lock::{LockReason, LockState, LockStep};

pub use notes::{DraftEffect, SavedDraft};

pub struct App {
    keymap: Keymap,
    theme: Theme,
    session: Session,
    page_size: u32,
    prefs: Prefs,
    records: RecordNumber,
    /// Templates, phrases and who writes notes.
    notes: NotesEnv,
    /// Saving and removing drafts on this machine, for the runner.
    draft_effects: Vec<DraftEffect>,
    /// Drafts found on this machine at start, not yet reopened.
    recovered: Vec<SavedDraft>,
    /// The drafts kept on this machine were read (or there are none).
    drafts_loaded: bool,
    /// Drafts saved before the server said who is signed in.
    unowned: Vec<(crate::tui::command::NoteSnapshot, DateTime<Utc>)>,
    /// Resident notes written as awaiting co-signature, by client id: the
    /// server's note id.
    awaiting_written: HashMap<String, String>,
    /// `$whoami` got no answer (the link was down): asked again once a
    /// request gets through.
    ask_who_again: bool,
    /// How drafts are kept on this machine (or why only in memory).
    draft_protection: Option<(String, bool)>,
    /// Whose drafts, where the server names nobody (see `owner_without_name`).
    anonymous_owner: Option<String>,
    date_order: DateOrder,
    clock: Clock,
    focus: PaneId,
    pub panes: Panes,
    chart: Option<ChartData>,
    /// The chart being opened: id and name as listed.
    opening: Option<(String, String)>,
    popup: Option<Popup>,
    pending_keys: Vec<Key>,
    notice: Option<Notice>,
    /// The notice reports a failed request: the next success clears it.
    notice_from_failure: bool,
    link: LinkState,
    /// When to probe the server next while the link is down, and the wait
    /// after that; `None` while the link is up.
    probe: Option<(Instant, Duration)>,
    probe_in_flight: bool,
    latency: Option<Duration>,
    /// Round trips, smoothed: what "slow" is judged on.
    typical_latency: Option<Duration>,
    /// The low-bandwidth display was turned on by a slow link (and goes
    /// off with it), not asked for.
    low_bandwidth_by_link: bool,
    features: Features,
    next_id: RequestId,
    in_flight: HashMap<RequestId, Origin>,
    /// The newest request of each slot; older ones are superseded.
    latest: HashMap<Slot, RequestId>,
    /// Requests for the api worker, not yet taken.
    to_send: Vec<(RequestId, ApiRequest)>,
    /// Jobs for the matcher, not yet taken.
    match_jobs: Vec<MatchJob>,
    match_sent: u64,
    match_done: u64,
    /// A server search waiting out the debounce: query and when typed.
    pending_search: Option<(String, Instant)>,
    /// Ids the server found for a query (listed whatever local matching says).
    server_found: (String, Vec<String>),
    stats: Stats,
    /// The lock screen, while locked.
    locked: Option<LockState>,
    /// The login the server named (`$whoami`), for unlocking.
    login: Option<String>,
    /// Lock after this long without a key; `None`: never.
    idle_lock: Option<Duration>,
    last_input: Instant,
    /// When the queue was last asked for (the background refresh counts
    /// from it).
    queue_asked: Option<Instant>,
    batches: HashMap<u64, Batch>,
    next_batch: u64,
    /// Time on patients' message threads.
    work: work::WorkState,
    /// Changes waiting for the link.
    outbox: outbox::Outbox,
    quit: bool,
    dirty: bool,
}

impl App {
    pub fn new(
        settings: &Settings,
        session: Session,
        keymap: Keymap,
        theme: Theme,
        now: DateTime<Utc>,
    ) -> App {
        let start = session
            .start_pane
            .unwrap_or_else(|| start_pane_for(session.role));
        App {
            keymap,
            theme: Theme {
                low_bandwidth: theme.low_bandwidth || settings.low_bandwidth,
                ..theme
            },
            session,
            page_size: settings.page_size.max(1),
            prefs: Prefs {
                tz: settings.time_zone,
                stale_vitals: chrono::Duration::days(settings.stale_vitals_days.into()),
                stale_results: chrono::Duration::days(settings.stale_results_days.into()),
            },
            records: RecordNumber {
                local_system: settings.mrn_system.clone(),
            },
            // Built-in templates only: the runner reads the site's and the
            // user's files (`App::use_notes_library`); the app does no I/O.
            notes: NotesEnv {
                templates: crate::notes::TemplateSet::built_in(),
                ..NotesEnv::default()
            },
            draft_effects: Vec::new(),
            recovered: Vec::new(),
            drafts_loaded: false,
            unowned: Vec::new(),
            ask_who_again: false,
            awaiting_written: HashMap::new(),
            draft_protection: None,
            anonymous_owner: None,
            date_order: settings.date_order,
            clock: Clock {
                instant: Instant::now(),
                now,
            },
            focus: start,
            panes: Panes::default(),
            chart: None,
            opening: None,
            popup: None,
            pending_keys: Vec::new(),
            notice: None,
            notice_from_failure: false,
            link: LinkState::Unknown,
            probe: None,
            probe_in_flight: false,
            latency: None,
            typical_latency: None,
            low_bandwidth_by_link: false,
            features: Features::default(),
            next_id: 1,
            in_flight: HashMap::new(),
            latest: HashMap::new(),
            to_send: Vec::new(),
            match_jobs: Vec::new(),
            match_sent: 0,
            match_done: 0,
            pending_search: None,
            server_found: (String::new(), Vec::new()),
            stats: Stats::default(),
            locked: None,
            login: None,
            idle_lock: (settings.idle_lock_minutes > 0)
                .then(|| Duration::from_secs(settings.idle_lock_minutes.saturating_mul(60))),
            last_input: Instant::now(),
            queue_asked: None,
            batches: HashMap::new(),
            next_batch: 1,
            work: work::WorkState::default(),
            outbox: outbox::Outbox::default(),
            quit: false,
            dirty: true,
        }
    }

    /// The first requests: who am I, what the server offers, the first
    /// patients, my queue.
    pub fn start(&mut self) {
        // A broken template or phrases file is said, with file and line;
        // the others loaded.
        let broken: Vec<String> = self
            .notes
            .templates
            .warnings
            .iter()
            .chain(&self.notes.phrases.warnings)
            .cloned()
            .collect();
        if !broken.is_empty() {
            for w in &broken {
                tracing::warn!("{w}");
            }
            let earlier = self.notice.take().map(|n| format!("{} · ", n.text));
            self.warn(format!(
                "{}Notes: {}",
                earlier.unwrap_or_default(),
                broken.join("; ")
            ));
        }
        self.match_jobs
            .push(MatchJob::SetDateOrder(self.date_order));
        self.start_requests();
    }

    /// Who am I, what the server offers, the first patients, my queue, my
    /// drafts: at start, and again after unlocking.
    fn start_requests(&mut self) {
        self.submit(ApiRequest::WhoAmI, Origin::WhoAmI);
        self.submit(ApiRequest::Capabilities, Origin::Capabilities);
        self.submit(
            ApiRequest::PatientPage {
                count: self.list_page(),
            },
            Origin::WorkingSet { page: 1 },
        );
        if self.session.role.is_some() {
            self.load_queue();
        }
        if self.session.user.is_some() {
            self.load_drafts();
        }
    }

    // ----- read access (status, tests) -----

    pub fn focus(&self) -> PaneId {
        self.focus
    }
    pub fn chart(&self) -> Option<&ChartData> {
        self.chart.as_ref()
    }
    pub fn popup(&self) -> Option<&Popup> {
        self.popup.as_ref()
    }
    pub fn notice(&self) -> Option<&Notice> {
        self.notice.as_ref()
    }
    pub fn link(&self) -> LinkState {
        self.link
    }
    pub fn session(&self) -> &Session {
        &self.session
    }
    pub fn stats(&self) -> Stats {
        self.stats
    }
    pub fn features(&self) -> Features {
        self.features
    }
    pub fn pending_keys(&self) -> &[Key] {
        &self.pending_keys
    }
    /// What may follow the pending keys (which-key rows), empty when none are pending.
    pub fn which_key(&self) -> Vec<(String, String)> {
        let Some((last, before)) = self.pending_keys.split_last() else {
            return Vec::new();
        };
        match self.keymap.lookup(self.focus.context(), before, *last) {
            Lookup::Pending(candidates) => which_key::rows(&self.pending_keys, &candidates),
            _ => Vec::new(),
        }
    }
    pub fn should_quit(&self) -> bool {
        self.quit
    }
    /// Requests sent and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Writes on their way to the server (a draft, a signature, a
    /// co-signature): worth a short wait before the process ends.
    pub fn writes_in_flight(&self) -> usize {
        self.in_flight
            .values()
            .filter(|o| {
                // Letting go of the tokens (and of a kept sign-in) is
                // waited for too.
                matches!(
                    o,
                    Origin::NoteSave { .. }
                        | Origin::NoteSign { .. }
                        | Origin::CosignTask { .. }
                        | Origin::CoSign
                        | Origin::TaskWrite { .. }
                        | Origin::ReplySent { .. }
                        | Origin::WorkWrite { .. }
                        | Origin::WorkReread { .. }
                        | Origin::Billing { .. }
                        | Origin::Lock
                )
            })
            .count()
    }
    /// A match job sent and not yet answered.
    pub fn matching(&self) -> bool {
        self.match_done < self.match_sent
    }
    pub fn keymap(&self) -> &Keymap {
        &self.keymap
    }
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now
    }

    /// Something changed since the last draw; clears the flag.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }
    /// Draw for a slow link (ASCII borders and marks, nothing that changes
    /// more often than once a minute), or not.
    pub fn set_low_bandwidth(&mut self, on: bool) {
        if self.theme.low_bandwidth != on {
            self.theme.low_bandwidth = on;
            self.dirty = true;
        }
    }
    /// Whether the screen is drawn for a slow link.
    pub fn low_bandwidth(&self) -> bool {
        self.theme.low_bandwidth
    }

    /// Requests to hand to the api worker.
    pub fn take_requests(&mut self) -> Vec<(RequestId, ApiRequest)> {
        std::mem::take(&mut self.to_send)
    }

    /// Jobs to hand to the matcher.
    pub fn take_match_jobs(&mut self) -> Vec<MatchJob> {
        std::mem::take(&mut self.match_jobs)
    }

    /// Shown once, e.g. problems in the user's keymap file.
    pub fn warn(&mut self, text: String) {
        // Notices quote files, settings and errors the user did not write.
        let text = sanitize(&text).into_owned();
        self.notice = Some(Notice { text, error: true });
        self.notice_from_failure = false;
        self.dirty = true;
    }

    fn inform(&mut self, text: String) {
        let text = sanitize(&text).into_owned();
        self.notice = Some(Notice { text, error: false });
        self.notice_from_failure = false;
    }

    /// A failed request's message; the next request that succeeds clears it,
    /// so an old failure never sits beside "online".
    fn warn_failure(&mut self, text: String) {
        self.warn(text);
        self.notice_from_failure = true;
    }

    /// Work that quitting would lose.
    pub fn has_unsaved(&self) -> bool {
        PaneId::ALL.iter().any(|p| self.panes.get(*p).unsaved())
    }

    // ----- the one way in -----

    /// Apply one event at the time `clock` says.
    pub fn update(&mut self, event: Event, clock: Clock) {
        // A key while a patient's message is open is work on it.
        if matches!(event, Event::Key(_) | Event::Paste(_)) && self.locked.is_none() {
            self.work.active.activity(clock.instant);
        }
        self.update_event(event, clock);
        self.work_sync();
    }

    fn update_event(&mut self, event: Event, clock: Clock) {
        if clock.now.timestamp() / 60 != self.clock.now.timestamp() / 60 {
            // The minute changed: ages and "late" on screen may have too.
            self.dirty = true;
        }
        self.clock = clock;
        if matches!(event, Event::Key(_) | Event::Paste(_)) {
            self.last_input = clock.instant;
        }
        if self.locked.is_some() {
            match event {
                Event::Key(key) if key.kind == KeyEventKind::Press => self.lock_key(key),
                Event::Paste(text) => self.lock_paste(&text),
                Event::Api(done) => {
                    if let Some(origin) = self.in_flight.remove(&done.id) {
                        if origin.is_write() {
                            self.in_flight.insert(done.id, origin);
                            self.handle_completed(done);
                        } else {
                            self.locked_reply(&origin, done.result);
                        }
                    }
                    // The last write back: the token may go now.
                    self.release_token_when_idle();
                }
                Event::Resize => self.dirty = true,
                Event::DraftPersisted { client_id, result } => {
                    self.draft_persisted(client_id, result)
                }
                Event::DraftProtection { text, on_disk } => {
                    self.set_draft_protection(text, on_disk)
                }
                // Counted as answered, never shown: it lists patients.
                Event::Matched(m) => self.match_done = self.match_done.max(m.seq),
                // Recovered drafts hold patient data: not now (they are read
                // again after unlocking).
                _ => {}
            }
            return;
        }
        match event {
            Event::Key(key) => self.handle_key(key),
            Event::Paste(text) => self.handle_paste(&text),
            Event::Resize => self.dirty = true,
            Event::Tick => self.tick(),
            Event::Api(done) => {
                // A SMART sign-in the server no longer takes (revoked, or
                // its refresh refused): sign in again behind the lock
                // instead of failing every request.
                let ended = matches!(&done.result, Err(e) if e.signed_out);
                self.handle_completed(done);
                if ended {
                    self.lock(LockReason::SignInEnded);
                }
            }
            Event::Matched(m) => self.handle_matched(m),
            Event::DraftPersisted { client_id, result } => {
                self.dirty = true;
                self.draft_persisted(client_id, result);
            }
            Event::DraftProtection { text, on_disk } => self.set_draft_protection(text, on_disk),
            Event::DraftsRecovered(drafts) => {
                self.dirty = true;
                self.drafts_recovered(drafts);
            }
            Event::OutboxRecovered(kept) => {
                self.dirty = true;
                self.outbox_recovered(kept);
            }
        }
        self.panes.search.server_pending = self.pending_search.is_some()
            || self
                .in_flight
                .values()
                .any(|o| matches!(o, Origin::Search { .. }));
    }

    /// Time passes: send a debounced search, probe a server that is down.
    fn tick(&mut self) {
        self.check_idle(self.clock.instant);
        if self.locked.is_some() {
            return;
        }
        if let Some((_, at)) = &self.pending_search
            && self.clock.instant.duration_since(*at) >= SEARCH_DEBOUNCE
        {
            self.flush_search();
        }
        if let Some((at, _)) = self.probe
            && self.clock.instant >= at
            && !self.probe_in_flight
        {
            self.probe_in_flight = true;
            self.submit(ApiRequest::Probe, Origin::Probe);
        }
        // The queue keeps itself current; not while a change to it is on
        // its way (its answer updates the row) or a load is in flight.
        if self.session.role.is_some()
            && self.link != LinkState::Down
            && self.queue_asked.is_some_and(|at| {
                self.clock.instant.saturating_duration_since(at) >= self.queue_refresh_every()
            })
            && !self.in_flight.values().any(|o| {
                matches!(
                    o,
                    Origin::Queue { .. }
                        | Origin::TaskWrite { .. }
                        | Origin::ReplySent { .. }
                        | Origin::TaskReread { .. }
                )
            })
        {
            self.load_queue();
        }
        self.replay_outbox();
        let view = view!(self, self.focus == PaneId::Editor);
        let commands = self.panes.editor.on_tick(&view);
        self.run_commands(commands);
    }

    /// How often the queue reloads itself: less often on a slow link,
    /// where each reload costs seconds and the bytes of every page.
    fn queue_refresh_every(&self) -> Duration {
        if self.link == LinkState::Slow || self.theme.low_bandwidth {
            QUEUE_REFRESH_SLOW
        } else {
            QUEUE_REFRESH
        }
    }

    /// Patients asked for per page: fewer on a slow link (a page more is
    /// one key away; the bytes of rows never looked at are not).
    fn list_page(&self) -> u32 {
        if self.theme.low_bandwidth {
            self.page_size.min(LOW_BANDWIDTH_PAGE)
        } else {
            self.page_size
        }
    }

    /// Pages of patients kept for matching as you type; on a slow link one
    /// (the server's search finds the rest).
    fn working_set_pages(&self) -> u32 {
        if self.theme.low_bandwidth {
            1
        } else {
            WORKING_SET_PAGES
        }
    }

    /// A slow link turns the low-bandwidth display on by itself, and a fast
    /// one off again, unless it was asked for (flag or setting).
    fn follow_link_speed(&mut self) {
        match self.link {
            LinkState::Slow if !self.theme.low_bandwidth => {
                self.low_bandwidth_by_link = true;
                self.set_low_bandwidth(true);
            }
            LinkState::Online if self.low_bandwidth_by_link => {
                self.low_bandwidth_by_link = false;
                self.set_low_bandwidth(false);
            }
            _ => {}
        }
    }

    /// Send the debounced search now.
    pub fn flush_search(&mut self) {
        if let Some((query, _)) = self.pending_search.take() {
            let params = server_params(&query, self.date_order);
            self.submit(
                ApiRequest::SearchPatients {
                    params,
                    count: self.list_page(),
                },
                Origin::Search { query },
            );
        }
    }

    /// Send a request; a write waits in the outbox instead while the link
    /// is down or earlier changes wait (the id is then never answered).
    fn submit(&mut self, mut request: ApiRequest, origin: Origin) -> RequestId {
        if origin.is_write() && self.holds_write(&request) {
            self.queue_write(&request, origin);
            return 0;
        }
        if origin.is_write() {
            self.rebase_write(&mut request);
        }
        let write = origin.is_write().then(|| (request.clone(), origin.clone()));
        let id = self.send(request, origin);
        if let Some((request, origin)) = write {
            self.write_sent(id, &request, origin);
        }
        id
    }

    fn send(&mut self, request: ApiRequest, origin: Origin) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.stats.requests += 1;
        if let Some(slot) = request.slot()
            && let Some(old) = self.latest.insert(slot, id)
            && self.in_flight.remove(&old).is_some()
        {
            // The worker cancels it; no reply will be applied.
            self.stats.stale_dropped += 1;
        }
        self.in_flight.insert(id, origin);
        self.to_send.push((id, request));
        self.dirty = true;
        id
    }

    fn load_queue(&mut self) {
        match self.session.role {
            Some(role) => {
                // A reload keeps the rows on screen until the new ones come.
                if self.panes.tasks.state != QueueState::Loaded {
                    self.panes.tasks.state = QueueState::Loading;
                }
                self.queue_asked = Some(self.clock.instant);
                self.submit(
                    ApiRequest::RoleQueue {
                        role,
                        count: self.page_size.max(50),
                    },
                    Origin::Queue { page: 1 },
                );
            }
            None => self.panes.tasks.state = QueueState::NoRole,
        }
    }

    fn open_patient(&mut self, id: String, name: String) {
        self.opening = Some((id.clone(), name.clone()));
        self.submit(
            ApiRequest::OpenChart {
                patient_id: id.clone(),
                name: Some(name),
                features: self.features,
            },
            Origin::Chart { patient_id: id },
        );
    }

    /// Ask the matcher for the current query again (rows were added, or
    /// the server found some).
    fn rematch(&mut self) {
        let query = self.panes.search.query().to_string();
        let found = if self.server_found.0 == query {
            self.server_found.1.clone()
        } else {
            Vec::new()
        };
        self.match_sent += 1;
        let job = MatchJob::Search {
            seq: self.match_sent,
            query,
            server_found: found,
        };
        // Keys read in one batch (an unframed paste) are matched once, for
        // the last query: a queued search not yet taken is replaced.
        match self.match_jobs.last_mut() {
            Some(last @ MatchJob::Search { .. }) => *last = job,
            _ => self.match_jobs.push(job),
        }
    }

    fn add_rows(&mut self, rows: Vec<PatientRow>) {
        if rows.is_empty() {
            return;
        }
        self.match_jobs.push(MatchJob::Add(rows));
        self.rematch();
    }

    fn add_patients(&mut self, patients: &[Patient]) {
        let rows = patients
            .iter()
            .filter_map(|p| self.records.row(p))
            .collect();
        self.add_rows(rows);
    }

    fn run_commands(&mut self, commands: Vec<Command>) {
        for c in commands {
            match c {
                Command::SearchPatients { query } => {
                    self.rematch();
                    if server_params(&query, self.date_order).is_empty() {
                        self.pending_search = None;
                    } else {
                        self.pending_search = Some((query, self.clock.instant));
                    }
                }
                Command::FlushSearch => self.flush_search(),
                Command::OpenPatient { id, name } => self.open_patient(id, name),
                Command::Focus(p) => self.focus = p,
                Command::LoadQueue => self.load_queue(),
                Command::ReloadChart => {
                    if let Some(p) = self.chart.as_ref().map(|c| c.patient.clone())
                        && let Some(id) = p.id.clone()
                    {
                        self.open_patient(id, p.display_name());
                    }
                }
                Command::LoadHistory { code } => {
                    if let Some(pid) = self.chart.as_ref().and_then(|c| c.patient.id.clone()) {
                        self.submit(
                            ApiRequest::TestHistory {
                                patient_id: pid,
                                code: code.clone(),
                            },
                            Origin::History { code },
                        );
                    }
                }
                Command::ShowRaw { title, items } => {
                    self.popup = Some(Popup::Raw(RawView::new(title, &items)));
                }
                Command::Notify(text) => self.inform(text),
                Command::UpdateTasks { what, changes } => self.update_tasks(what, changes),
                Command::ReplyTasks { replies } => self.reply_tasks(replies),
                Command::LoadThread { patient_id } => {
                    self.submit(
                        ApiRequest::Thread {
                            patient_id: patient_id.clone(),
                        },
                        Origin::Thread { patient_id },
                    );
                }
                Command::Pick(spec) => {
                    self.popup = Some(Popup::Picker(crate::tui::popups::Picker::from(spec)));
                }
                Command::RecordBilling {
                    task,
                    client_id,
                    label,
                } => self.record_billing(task, client_id, label),
                other => self.note_command(other),
            }
        }
    }

    /// Hand a reply to a pane and run what it asks.
    fn reply_to(&mut self, pane: PaneId, reply: PaneReply) {
        let view = view!(self, self.focus == pane);
        let commands = self.panes.get_mut(pane).on_reply(reply, &view);
        self.run_commands(commands);
    }

    /// An action for the focused pane.
    fn pane_action(&mut self, action: Action) {
        let view = view!(self, true);
        let commands = self.panes.get_mut(self.focus).update(action, &view);
        self.run_commands(commands);
    }

    // ----- keys and pastes -----

    fn handle_key(&mut self, key: KeyEvent) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        self.dirty = true;
        // The lock key works everywhere: over a popup, a pick-list, in a
        // text box, in the editor.
        if matches!(
            self.keymap.lookup(Context::Global, &[], Key::from(key)),
            Lookup::Action(Action::Lock)
        ) {
            self.pending_keys.clear();
            self.lock(LockReason::Asked);
            return;
        }
        // A character that must not reach the terminal (a C1 control, a
        // bidi override, typed or pasted as keys) is typed as its marker,
        // never handed raw to a text box.
        if let KeyCode::Char(c) = key.code
            && needs_replacing(c)
        {
            let marker = sanitize(c.encode_utf8(&mut [0; 4])).into_owned();
            if let Some(popup) = &mut self.popup {
                let outcome = popup.layer_mut().insert_text(&marker);
                self.popup_outcome(outcome);
            } else if self.panes.get(self.focus).input_context().is_some() {
                self.insert_text(&marker);
            }
            return;
        }
        if let Some(popup) = &mut self.popup {
            let layer = popup.layer_mut();
            let outcome = match self.keymap.layer_key(layer.context(), key) {
                LayerKey::Action(a) => layer.update(a),
                LayerKey::Text(c) => layer.insert_text(c.encode_utf8(&mut [0; 4])),
                LayerKey::Nothing => PopupOutcome::Consumed,
            };
            self.popup_outcome(outcome);
            return;
        }
        if self.pending_keys.is_empty()
            && let Some(context) = self.panes.get(self.focus).input_context()
        {
            match self.keymap.layer_key(context, key) {
                LayerKey::Action(a) => self.dispatch(a),
                LayerKey::Text(c) => self.insert_text(c.encode_utf8(&mut [0; 4])),
                LayerKey::Nothing => {
                    let view = view!(self, true);
                    let commands = self.panes.get_mut(self.focus).raw_key(key, &view);
                    self.run_commands(commands);
                }
            }
            return;
        }
        let k = Key::from(key);
        let context = self.focus.context();
        match self.keymap.lookup(context, &self.pending_keys, k) {
            Lookup::Action(a) => {
                self.pending_keys.clear();
                self.dispatch(a);
            }
            Lookup::Pending(_) => self.pending_keys.push(k),
            Lookup::Unbound => self.pending_keys.clear(),
        }
    }

    fn popup_outcome(&mut self, outcome: PopupOutcome) {
        match outcome {
            PopupOutcome::Consumed => {}
            PopupOutcome::Close => self.popup = None,
            PopupOutcome::Run(Action::Quit) if matches!(&self.popup, Some(Popup::Confirm(c)) if c.yes == Action::Quit) =>
            {
                self.popup = None;
                self.quit();
            }
            PopupOutcome::Run(a) => {
                self.popup = None;
                self.dispatch(a);
            }
            PopupOutcome::Picked(purpose, pick) => {
                self.popup = None;
                self.reply_to(PaneId::Tasks, PaneReply::Picked(purpose, pick));
            }
            PopupOutcome::StartNote(template) => {
                self.popup = None;
                self.note_command(Command::StartNote {
                    template,
                    appends: None,
                });
            }
        }
    }

    fn insert_text(&mut self, text: &str) {
        let view = view!(self, true);
        let commands = self.panes.get_mut(self.focus).insert_text(text, &view);
        self.run_commands(commands);
    }

    /// A paste arrives in one piece and goes, whole, to the text input that
    /// has focus; with none, to the search box if its pane is shown.
    fn handle_paste(&mut self, text: &str) {
        self.dirty = true;
        // Pasted text comes from anywhere (a web page, a message): its
        // hidden characters become markers before any text box holds them.
        let text = sanitize(text);
        let text = text.as_ref();
        if let Some(popup) = &mut self.popup {
            let outcome = popup.layer_mut().insert_text(text);
            self.popup_outcome(outcome);
            return;
        }
        if self.panes.get(self.focus).input_context().is_none() {
            if self.focus != PaneId::Search {
                self.inform("Pasted text was not used: no text box has focus".into());
                return;
            }
            self.panes.search.start_editing();
        }
        self.insert_text(text);
    }

    /// Run an action as if its key had been pressed.
    pub fn dispatch(&mut self, action: Action) {
        self.dirty = true;
        match action {
            Action::Noop => {}
            Action::Quit => {
                if self.panes.editor.unsaved() {
                    let on_disk = self.draft_protection.as_ref().is_some_and(|(_, d)| *d);
                    self.popup = Some(Popup::Confirm(Confirm::quit_note(on_disk)));
                } else if self.has_unsaved() {
                    self.popup = Some(Popup::Confirm(Confirm::quit()));
                } else {
                    self.quit();
                }
            }
            Action::Lock => self.lock(LockReason::Asked),
            Action::Help => self.popup = Some(Popup::Help(HelpPopup::new())),
            Action::Outbox => self.show_outbox(),
            Action::CommandPalette => self.popup = Some(Popup::Palette(Palette::new())),
            Action::QueueStats => {
                self.popup = Some(Popup::Stats(StatsView::loading()));
                self.submit(
                    ApiRequest::QueueStats {
                        period: format!("{}d", crate::tui::popups::stats::PERIOD_DAYS),
                    },
                    Origin::QueueStats,
                );
            }
            Action::FocusSearch => {
                self.focus = PaneId::Search;
                self.panes.search.start_editing();
            }
            Action::PaneSearch => self.focus = PaneId::Search,
            Action::PaneSummary => self.focus = PaneId::Summary,
            Action::PaneResults => self.focus = PaneId::Results,
            Action::PaneNotes => self.focus = PaneId::Notes,
            Action::PaneTasks => self.focus = PaneId::Tasks,
            Action::PaneEditor => self.focus = PaneId::Editor,
            Action::NextPane => self.focus = self.focus.next(),
            Action::PrevPane => self.focus = self.focus.prev(),
            Action::ClosePatient => {
                self.chart = None;
                self.opening = None;
                if let Some(id) = self.latest.remove(&Slot::Chart)
                    && self.in_flight.remove(&id).is_some()
                {
                    self.stats.stale_dropped += 1;
                }
                self.reload_chart_panes();
            }
            Action::Cancel | Action::Back if self.notice.is_some() => {
                self.notice = None;
                self.pane_action(action);
            }
            _ => self.pane_action(action),
        }
    }

    fn reload_chart_panes(&mut self) {
        self.panes.summary.reset();
        self.panes.results.load(self.chart.as_ref());
        self.panes.notes.load(self.chart.as_ref());
    }

    // ----- replies -----

    fn handle_matched(&mut self, m: Matches) {
        if m.seq <= self.match_done {
            return;
        }
        self.match_done = m.seq;
        self.dirty = true;
        self.reply_to(PaneId::Search, PaneReply::Matched(m));
    }

    fn handle_completed(&mut self, done: Completed) {
        let Some(origin) = self.in_flight.remove(&done.id) else {
            // Superseded (and cancelled), or answered twice.
            return;
        };
        self.dirty = true;
        self.latency = Some(done.latency);
        if done.result.is_ok() {
            self.typical_latency = Some(match self.typical_latency {
                // Smoothed, so one large page does not call the link slow.
                Some(t) => t.mul_f64(0.7) + done.latency.mul_f64(0.3),
                None => done.latency,
            });
        }
        let slow = self.typical_latency.is_some_and(|t| {
            // Once slow, it must get clearly better to count as fast again.
            t >= SLOW_LINK || (self.link == LinkState::Slow && t >= SLOW_LINK / 2)
        });
        self.link = match &done.result {
            Ok(_) if slow => LinkState::Slow,
            Ok(_) => LinkState::Online,
            Err(e) if e.status.is_some() => LinkState::Degraded,
            Err(e) if e.no_answer => LinkState::Down,
            // Refused here (no sign-in while locked, a link to another
            // server): nothing was learnt of the link.
            Err(_) => self.link,
        };
        self.follow_link_speed();
        if origin == Origin::Probe {
            self.probe_in_flight = false;
        }
        if self.ask_who_again && done.result.is_ok() {
            self.ask_who_again = false;
            self.submit(ApiRequest::WhoAmI, Origin::WhoAmI);
        }
        let now = self.clock.instant;
        match (self.link, self.probe) {
            (LinkState::Down, None) => self.probe = Some((now + PROBE_FIRST, PROBE_FIRST)),
            (LinkState::Down, Some((_, wait))) if origin == Origin::Probe => {
                let wait = (wait * 2).min(PROBE_MAX);
                self.probe = Some((now + wait, wait));
            }
            (LinkState::Down, Some(_)) => {}
            _ => self.probe = None,
        }
        if done.result.is_ok() && self.notice_from_failure {
            self.notice = None;
            self.notice_from_failure = false;
        }
        if origin.is_write()
            && matches!(
                self.outbox_answer(done.id, &origin, &done.result),
                outbox::Answered::Taken
            )
        {
            return;
        }
        match (origin, done.result) {
            // Late answers from a lock that is over.
            (Origin::Lock | Origin::Unlock { .. }, _) => {}
            (Origin::WhoAmI, Ok(ApiReply::WhoAmI(Some(who)))) => {
                let had_role = self.session.role;
                let had_user = self.session.user.clone();
                if who.user.is_some() {
                    self.session.user = who.user;
                }
                if who.login.is_some() {
                    self.login = who.login;
                }
                if who.role.is_some() {
                    self.session.role = who.role;
                }
                self.notes.practitioner = who.practitioner;
                if self.session.role != had_role {
                    self.load_queue();
                    // The role was not known at start: its start pane now,
                    // unless the user has moved on.
                    if had_role.is_none()
                        && self.session.start_pane.is_none()
                        && self.focus == PaneId::Search
                        && self.chart.is_none()
                        && self.opening.is_none()
                        && self.panes.search.query().is_empty()
                    {
                        self.focus = start_pane_for(self.session.role);
                    }
                }
                if had_user.is_none() && self.session.user.is_some() {
                    self.load_drafts();
                }
                if self.session.user.is_none() {
                    self.owner_without_name();
                }
            }
            (Origin::WhoAmI, Ok(_)) => {
                if self.session.role.is_none() {
                    self.panes.tasks.state = QueueState::NoRole;
                }
                self.owner_without_name();
            }
            (Origin::WhoAmI, Err(e)) => {
                if self.session.role.is_none() {
                    self.panes.tasks.state = QueueState::NoRole;
                }
                if e.status.is_some() {
                    // The server answered: it does not say who you are.
                    self.owner_without_name();
                } else {
                    self.ask_who_again = true;
                }
                self.warn_failure(format!("Could not ask the server who you are: {e}"));
            }
            (Origin::Capabilities, Ok(ApiReply::Capabilities(f))) => self.features = f,
            // Without a CapabilityStatement the client uses only what every
            // server offers.
            (Origin::Capabilities, _) => {}
            (
                Origin::WorkingSet { page },
                Ok(ApiReply::Patients {
                    patients,
                    next,
                    total,
                }),
            ) => {
                if page == 1 && total.is_some() {
                    self.panes.search.clinic_total = total;
                }
                self.panes.search.more_on_server = next.is_some();
                self.add_rows(patients);
                if let Some(url) = next.filter(|_| page < self.working_set_pages()) {
                    self.submit(
                        ApiRequest::NextPage { url },
                        Origin::WorkingSet { page: page + 1 },
                    );
                }
            }
            (Origin::WorkingSet { .. }, Ok(_)) => {}
            (Origin::WorkingSet { .. }, Err(e)) => {
                self.warn_failure(format!("Could not load the patient list: {e}"));
            }
            (Origin::Search { query }, result) => {
                let result = match result {
                    Ok(ApiReply::Patients { patients, .. }) => {
                        let n = patients.len();
                        self.server_found = (
                            query.clone(),
                            patients.iter().map(|r| r.id.clone()).collect(),
                        );
                        self.add_rows(patients);
                        self.rematch();
                        Ok(n)
                    }
                    Ok(_) => Ok(0),
                    Err(e) => Err(e.to_string()),
                };
                self.reply_to(PaneId::Search, PaneReply::ServerSearch { query, result });
            }
            (Origin::Chart { patient_id }, result) => {
                let asked = self.opening.take().map(|(_, name)| name);
                match result {
                    Ok(ApiReply::Chart(chart)) => self.chart_loaded(&patient_id, *chart),
                    Ok(_) => {}
                    Err(e) => self.chart_failed(&patient_id, asked.as_deref(), &e),
                }
            }
            (Origin::History { code }, result) => {
                let result = match result {
                    Ok(ApiReply::History {
                        values,
                        more_on_server,
                    }) => Ok((values, more_on_server)),
                    Ok(_) => Err("unexpected reply".to_string()),
                    Err(e) => Err(e.to_string()),
                };
                self.reply_to(PaneId::Results, PaneReply::History { code, result });
            }
            (Origin::Queue { page }, result) => match result {
                Ok(ApiReply::Queue {
                    tasks,
                    patients,
                    next,
                }) => {
                    let rows: Vec<PatientRow> = patients
                        .iter()
                        .filter_map(|p| self.records.row(p))
                        .collect();
                    self.add_rows(rows.clone());
                    self.reply_to(
                        PaneId::Tasks,
                        PaneReply::Queue {
                            tasks,
                            patients: rows,
                            append: page > 1,
                        },
                    );
                    if let Some(url) = next.filter(|_| page < QUEUE_PAGES) {
                        let id = self.submit(
                            ApiRequest::NextPage { url },
                            Origin::Queue { page: page + 1 },
                        );
                        // Further pages belong to this load of the queue.
                        self.latest.insert(Slot::Queue, id);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let why = match e.status {
                        Some(400 | 404 | 405 | 501) => {
                            format!("this server does not offer role queues ({e})")
                        }
                        _ => e.to_string(),
                    };
                    self.reply_to(PaneId::Tasks, PaneReply::QueueFailed(why));
                }
            },
            (
                Origin::TaskWrite {
                    batch,
                    label,
                    task_id,
                },
                result,
            ) => self.task_written(batch, label, task_id, result),
            (Origin::TaskReread { batch, label }, result) => self.task_reread(batch, label, result),
            (Origin::ReplySent { batch, task }, result) => self.reply_stored(batch, *task, result),
            (Origin::QueueStats, result) => {
                let figures = match result {
                    Ok(ApiReply::QueueStats(s)) => Figures::Loaded(s),
                    Ok(_) => Figures::Failed("unexpected reply".into()),
                    // A server without chartty's operation: say so plainly.
                    Err(e) if e.status == Some(404) => Figures::Failed(
                        "this server does not offer them (Task/$queue-stats is chartty's portal's)"
                            .into(),
                    ),
                    Err(e) => Figures::Failed(e.to_string()),
                };
                if let Some(Popup::Stats(view)) = &mut self.popup {
                    view.figures = figures;
                }
            }
            (Origin::WorkTasks { patient_id }, result) => self.work_tasks_read(patient_id, result),
            (Origin::WorkWrite { task_id }, result) => self.work_written(task_id, result),
            (Origin::WorkReread { task_id }, result) => self.work_reread(task_id, result),
            (
                Origin::Billing {
                    label,
                    authored,
                    client_id,
                },
                result,
            ) => self.billing_recorded(label, authored, client_id, result),
            (Origin::OutboxTheirs { path }, result) => self.outbox_theirs(path, result),
            (Origin::TaskRow, Ok(ApiReply::Resource(task))) => {
                self.reply_to(PaneId::Tasks, PaneReply::TaskNow(task))
            }
            (Origin::TaskRow, _) => {}
            (Origin::Thread { patient_id }, result) => {
                let result = match result {
                    Ok(ApiReply::Thread { messages, more }) => Ok((messages, more)),
                    Ok(_) => Err("unexpected reply".to_string()),
                    Err(e) => Err(e.to_string()),
                };
                self.reply_to(PaneId::Tasks, PaneReply::Thread { patient_id, result });
            }
            (
                origin @ (Origin::NoteSave { .. }
                | Origin::NoteSign { .. }
                | Origin::CosignTask { .. }
                | Origin::CoSign),
                result,
            ) => self.note_reply(origin, result),
            // A failed probe only sets the next one back (above).
            (Origin::Probe, Err(_)) => {}
            // Back online: fetch the patient list if it never arrived.
            (Origin::Probe, Ok(_)) => {
                if self.panes.search.known == 0 {
                    self.submit(
                        ApiRequest::PatientPage {
                            count: self.list_page(),
                        },
                        Origin::WorkingSet { page: 1 },
                    );
                }
            }
        }
    }

    fn chart_loaded(&mut self, patient_id: &str, chart: ChartData) {
        self.add_patients(std::slice::from_ref(&chart.patient));
        let reopened = self
            .chart
            .as_ref()
            .is_some_and(|c| c.patient.id.as_deref() == Some(patient_id));
        let ignored = chart.other_patients_ignored;
        self.chart = Some(chart);
        self.reload_chart_panes();
        if ignored > 0 {
            self.warn(format!(
                "ignored {ignored} resources of other patients: the server did not filter by patient"
            ));
        }
        // The cover sheet comes forward, unless the user is typing again.
        if !reopened
            && matches!(self.focus, PaneId::Search | PaneId::Tasks)
            && self.panes.get(self.focus).input_context().is_none()
        {
            self.focus = PaneId::Summary;
        }
        self.offer_recovered();
    }

    fn chart_failed(&mut self, patient_id: &str, name: Option<&str>, e: &ApiError) {
        let shown = self
            .chart
            .as_ref()
            .filter(|c| c.patient.id.as_deref() != Some(patient_id));
        let whose = name.unwrap_or("the patient you asked for");
        let text = match shown {
            Some(c) => format!(
                "Could not open the chart of {whose}: {e} — still showing {}",
                c.patient.display_name()
            ),
            None => format!("Could not open the chart of {whose}: {e}"),
        };
        self.warn_failure(text);
    }

    /// Other patients of the same name, as the server listed them with the
    /// chart, else as the working set has them.
    fn same_name(&self, chart: &ChartData) -> Vec<PatientRow> {
        if !chart.same_name.is_empty() {
            return chart.same_name.clone();
        }
        let id = chart.patient.id.as_deref().unwrap_or("");
        self.panes
            .search
            .same_name_as(id, &chart.patient.display_name())
            .into_iter()
            .cloned()
            .collect()
    }

    // ----- drawing -----

    pub fn render(&mut self, frame: &mut Frame) {
        if self.locked.is_some() {
            self.render_lock(frame);
            return;
        }
        let area = frame.area();
        let [banner, tabs, body, hint, status] = Layout::vertical([
            Constraint::Length(2),
            Constraint::Length(1),
            Constraint::Min(3),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        self.render_banner(frame, banner);
        self.render_tabs(frame, tabs);
        let view = view!(self, true);
        self.panes.get_mut(self.focus).render(frame, body, &view);
        self.render_hint_line(frame, hint);
        self.render_status(frame, status);
        let context = self.focus.context();
        if let Some(p) = &self.popup {
            let view = LayerView {
                keymap: &self.keymap,
                theme: &self.theme,
                pane: context,
            };
            p.layer().render(frame, body, &view);
        }
        if let Some((last, before)) = self.pending_keys.split_last()
            && let Lookup::Pending(candidates) = self.keymap.lookup(context, before, *last)
        {
            which_key::render(frame, body, &self.pending_keys, &candidates, &self.theme);
        }
    }

    fn render_banner(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let [l1, l2] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
        let Some(chart) = &self.chart else {
            let text = match &self.opening {
                Some((_, name)) => format!("Opening the chart of {}…", fit(name, 40)),
                None => "No patient open — press / to find one".to_string(),
            };
            frame.render_widget(Paragraph::new(Span::styled(text, t.dim)), l1);
            return;
        };
        let p = &chart.patient;
        let dob = p.birth_date.as_deref().unwrap_or("unknown");
        let age = life_label(
            p.birth_date.as_deref(),
            p.deceased().as_ref(),
            timefmt::wall_clock(self.clock.now, self.prefs.tz),
        );
        let sex = sex_label(p.gender.as_deref().unwrap_or(""));
        // Sex, age, birth date and MRN always show in full; the name gives way.
        let facts = format!("  {sex}  {age}  DOB {dob}  ");
        let record = match self.records.label(p) {
            Some((v, false)) => format!("MRN {v}"),
            Some((v, true)) => format!("ID {v}"),
            None => "no identifier".to_string(),
        };
        // Opening someone else: say so, so the chart on screen is never
        // taken for the one asked for.
        let loading = match &self.opening {
            Some((id, name)) if p.id.as_deref() != Some(id.as_str()) => {
                format!("  (opening {}…)", fit(name, 24))
            }
            Some(_) => "  (loading…)".to_string(),
            None => String::new(),
        };
        let twins = self.same_name(chart);
        let twin_note = match twins.as_slice() {
            [] => String::new(),
            [one] => format!(
                "  ≡ SAME NAME AS {} ({})",
                one.birth_date,
                one.record_label()
            ),
            many => format!("  ≡ SAME NAME AS {} OTHERS", many.len()),
        };
        let fixed = facts.chars().count() + record.chars().count() + loading.chars().count();
        let room = (l1.width as usize).saturating_sub(fixed).max(8);
        // The patient's own name comes first; the same-name warning keeps
        // at least its first words and gives way after them.
        let name = p.display_name().to_uppercase();
        let name_cells = Span::raw(name.as_str()).width();
        let name_room = if twin_note.is_empty() {
            room
        } else {
            name_cells.min(room.saturating_sub(15).max(8))
        };
        let twin_room = room.saturating_sub(name_room.min(name_cells));
        let mut spans = vec![
            Span::styled(fit(&name, name_room), t.title),
            Span::raw(facts),
            Span::styled(record, t.header),
        ];
        if !twin_note.is_empty() {
            spans.push(Span::styled(fit(&twin_note, twin_room), t.alert_critical));
        }
        if !loading.is_empty() {
            spans.push(Span::styled(loading, t.dim));
        }
        // A long MRN (a UUID) beside a death date may still not fit: the
        // cut is then marked rather than lost at the edge.
        frame.render_widget(
            Paragraph::new(fit_line(Line::from(spans), l1.width.into())),
            l1,
        );
        let line = allergy_banner(chart, usize::from(l2.width), t);
        frame.render_widget(Paragraph::new(line), l2);
    }

    fn render_tabs(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let mut spans = Vec::new();
        for p in PaneId::ALL {
            let label = format!(" {} {} ", p.index() + 1, p.title());
            if p == self.focus {
                spans.push(Span::styled(label, t.selection));
            } else {
                spans.push(Span::styled(label, t.dim));
            }
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    fn render_hint_line(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        if let Some(n) = &self.notice {
            let style = if n.error { t.alert_critical } else { t.base };
            frame.render_widget(
                Paragraph::new(Span::styled(fit(&n.text, usize::from(area.width)), style)),
                area,
            );
            return;
        }
        let pane = self.panes.get(self.focus);
        let context = pane.input_context().unwrap_or(self.focus.context());
        let mut spans = Vec::new();
        for a in pane
            .hint_actions()
            .iter()
            .chain([Action::Help, Action::CommandPalette, Action::Quit].iter())
        {
            if let Some(keys) = self.keymap.keys_for(context, *a).first() {
                spans.push(Span::styled(display_sequence(keys), t.key_hint));
                spans.push(Span::styled(
                    format!(" {}  ", short_hint(*a, context)),
                    t.dim,
                ));
            }
        }
        frame.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    fn render_status(&self, frame: &mut Frame, area: Rect) {
        let t = &self.theme;
        let user = self.session.user.as_deref().unwrap_or("unknown user");
        let role = self
            .session
            .role
            .map(|r| r.label())
            .unwrap_or("role unknown");
        let server = url::Url::parse(&self.session.base_url)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| {
                    format!(
                        "{h}{}",
                        u.port().map(|p| format!(":{p}")).unwrap_or_default()
                    )
                })
            })
            .unwrap_or_else(|| sanitize(&self.session.base_url).into_owned());
        let (link_text, link_style) = match self.link {
            LinkState::Unknown => (t.mark("○ connecting", "connecting"), t.link_warn),
            LinkState::Online => (t.mark("● online", "online"), t.link_ok),
            LinkState::Slow => (t.mark("◐ slow", "SLOW"), t.link_warn),
            LinkState::Degraded => (t.mark("● errors", "errors"), t.link_warn),
            LinkState::Down => (t.mark("✕ offline", "OFFLINE"), t.link_down),
        };
        let mut spans = vec![
            Span::raw(format!(" {user} · {role} · {server} · ")),
            Span::styled(link_text, link_style),
        ];
        // On a slow link what changes with every reply is left out (each
        // change is bytes): the round trip shows, in whole seconds, only
        // while the link is slow.
        let low = t.low_bandwidth;
        let latency = match (self.typical_latency, self.link) {
            (_, LinkState::Down) | (None, _) => None,
            (Some(l), LinkState::Slow) if low => Some(format!(" ~{} s", l.as_secs_f64().round())),
            (Some(_), _) if low => None,
            (Some(l), _) => Some(format!(" {}", latency_text(l))),
        };
        if let Some(l) = latency {
            spans.push(Span::raw(l));
        }
        if low {
            spans.push(Span::styled(" · low-bw", t.dim));
        }
        let waiting = self.outbox_waiting();
        if waiting > 0 {
            spans.push(Span::styled(
                format!(
                    " · {waiting} {} waiting",
                    if waiting == 1 { "change" } else { "changes" }
                ),
                t.link_warn,
            ));
        }
        let unsent = self.outbox_unsent();
        if unsent > 0 {
            spans.push(Span::styled(
                format!(" · {unsent} not sent (W)"),
                t.link_down,
            ));
        }
        if !self.in_flight.is_empty() {
            spans.push(Span::raw(if low {
                " · busy".to_string()
            } else {
                format!(" · {} pending", self.in_flight.len())
            }));
        }
        spans.push(Span::raw(format!(
            " · times {}",
            timefmt::zone_label(self.prefs.tz, self.clock.now)
        )));
        if self.panes.editor.unsaved() {
            spans.push(Span::styled(" · unsaved note", t.link_warn));
        }
        if let Some((text, safe)) = &self.draft_protection
            && (!safe || self.panes.editor.editing.is_some())
        {
            let style = if *safe { t.dim } else { t.link_warn };
            spans.push(Span::styled(format!(" · {text}"), style));
        }
        // Too narrow for it all: the server's address goes first, so that
        // the link and what waits to be sent stay in view.
        let mut line = Line::from(spans);
        if line.width() > usize::from(area.width)
            && let Some(first) = line.spans.first_mut()
        {
            first.content = format!(" {user} · {role} · ").into();
        }
        frame.render_widget(
            Paragraph::new(fit_line(line, usize::from(area.width))).style(t.status_bar),
            area,
        );
    }
}

/// A round trip as the status bar shows it: to the 10 ms under a second
/// (the text changes less often), to the tenth of a second above.
fn latency_text(l: Duration) -> String {
    let ms = l.as_millis();
    if ms < 1000 {
        format!("{} ms", (ms / 10).max(1) * 10)
    } else {
        format!("{:.1} s", l.as_secs_f64())
    }
}

/// The allergy line of the banner. It never reads "No allergies recorded"
/// or NKA unless every record was read; one too long for the width ends in
/// "+N more", never in a bare cut.
pub fn allergy_banner(chart: &ChartData, width: usize, t: &Theme) -> Line<'static> {
    let view = allergies::view(&chart.allergies);
    let unread = match view.unreadable {
        0 => String::new(),
        n => format!(" · {}", crate::chart::unreadable_line(n, "allergy")),
    };
    let line = match &view.headline {
        Headline::NotAvailable(e) => Line::from(Span::styled(
            format!("ALLERGIES NOT AVAILABLE — ask the patient ({e})"),
            t.alert_critical,
        )),
        Headline::Unknown => Line::from(Span::styled(
            format!(
                "ALLERGIES UNKNOWN — ask the patient{}{}",
                unread,
                if view.cut {
                    " · list cut by the server"
                } else {
                    ""
                }
            ),
            t.alert_critical,
        )),
        Headline::NoneRecorded if view.left_out.is_empty() => {
            Line::from(Span::styled(NO_ALLERGIES_RECORDED, t.base))
        }
        Headline::NoneRecorded => Line::from(vec![
            Span::styled("No active allergies recorded", t.base),
            Span::styled(
                format!(
                    " ({} resolved, refuted or entered in error)",
                    view.left_out.len()
                ),
                t.dim,
            ),
        ]),
        Headline::NoKnown(words) => Line::from(Span::styled(words.join("; "), t.base)),
        Headline::Listed(list) => {
            let names: Vec<String> = list.iter().map(|l| l.short()).collect();
            let tail = format!(
                "{unread}{}",
                if view.cut {
                    " · list cut by the server"
                } else {
                    ""
                }
            );
            let tail_style = if view.unreadable > 0 {
                t.alert_critical
            } else {
                t.dim
            };
            return listed_allergies(&names, &tail, width, t, tail_style);
        }
    };
    fit_line(line, width)
}

/// `ALLERGIES: A, B, C +2 more`: as many names as fit whole, then how many
/// did not.
fn listed_allergies(
    names: &[String],
    tail: &str,
    width: usize,
    t: &Theme,
    tail_style: ratatui::style::Style,
) -> Line<'static> {
    let head = "ALLERGIES: ";
    let cells = |s: &str| Span::raw(s.to_string()).width();
    let mut shown: Vec<&str> = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let rest = names.len() - i - 1;
        let more = if rest > 0 {
            format!(" +{rest} more")
        } else {
            String::new()
        };
        let candidate = {
            let mut v = shown.clone();
            v.push(n);
            format!("{head}{}{more}{tail}", v.join(", "))
        };
        if cells(&candidate) <= width || shown.is_empty() && cells(&format!("{head}{n}")) <= width {
            shown.push(n);
        } else {
            break;
        }
    }
    let hidden = names.len() - shown.len();
    let mut spans = vec![
        Span::styled(head, t.allergy),
        Span::styled(shown.join(", "), t.allergy),
    ];
    if hidden > 0 {
        spans.push(Span::styled(format!(" +{hidden} more"), t.alert_critical));
    }
    if !tail.is_empty() {
        spans.push(Span::styled(tail.to_string(), tail_style));
    }
    fit_line(Line::from(spans), width)
}

/// Short verbs for the hint line.
fn short_hint(a: Action, context: Context) -> &'static str {
    match (a, context) {
        (Action::Open, Context::Tasks) => return "message",
        (Action::Back, Context::Tasks) => return "list",
        (Action::Open, Context::Picklist) => return "put in note",
        (Action::Cancel, Context::Picklist) => return "close",
        (Action::MoveDown, Context::Picklist) => return "next choice",
        (Action::Back, Context::Editor) => return "leave (kept)",
        _ => {}
    }
    match a {
        Action::FocusSearch => "find",
        Action::Open => "open",
        Action::MoveDown => "down",
        Action::Back => "back",
        Action::Refresh => "reload",
        Action::Help => "help",
        Action::CommandPalette => "actions",
        Action::Quit => "quit",
        Action::PaneResults => "results",
        Action::RawView => "raw",
        Action::Cancel => "done",
        Action::ClearInput => "clear",
        Action::NewNote => "new note",
        Action::Addendum => "addendum",
        Action::NextField => "next blank",
        Action::PrevField => "previous",
        Action::ExpandPhrase => "phrase",
        Action::RefreshData => "pull data",
        Action::Sign => "sign",
        Action::OpenChart => "chart",
        Action::Mark => "mark",
        Action::Claim => "claim",
        Action::Route => "route",
        Action::Escalate => "escalate",
        Action::Reply => "reply",
        Action::Complete => "complete",
        Action::Defer => "defer",
        Action::FilterCategory => "category",
        Action::FilterPatient => "patient",
        Action::ClearFilters => "all",
        _ => a.name(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::Section;
    use crate::fhir::model::AllergyIntolerance;
    use serde_json::json;

    fn text(line: &Line) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    fn chart_with(allergies: Vec<serde_json::Value>) -> ChartData {
        let items: Vec<AllergyIntolerance> = allergies
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect();
        let mut c = ChartData::empty(Patient::default());
        c.allergies = Section::loaded(items);
        c
    }

    fn app_with(keymap: Keymap) -> App {
        let session = Session {
            base_url: "http://127.0.0.1:9/fhir".into(),
            token: None,
            role: None,
            user: None,
            ..Session::default()
        };
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, 23, 12, 0, 0).unwrap();
        App::new(&Settings::default(), session, keymap, Theme::default(), now)
    }

    /// The status bar as text, 120 columns wide.
    fn status_line(app: &mut App) -> String {
        let mut t =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(120, 30)).expect("terminal");
        t.draw(|f| app.render(f)).expect("drawn");
        let buf = t.backend().buffer();
        (0..120).map(|x| buf[(x, 29)].symbol()).collect()
    }

    #[test]
    fn a_slow_link_is_said_with_its_round_trip_and_fast_only_when_clearly_better() {
        let mut app = app_with(Keymap::defaults());
        let clock = Clock {
            instant: Instant::now(),
            now: app.now(),
        };
        let answer = |app: &mut App, ms: u64| {
            let id = app.submit(ApiRequest::Probe, Origin::Probe);
            app.update(
                Event::Api(Completed {
                    id,
                    result: Ok(ApiReply::Reachable),
                    latency: Duration::from_millis(ms),
                }),
                clock,
            );
        };
        answer(&mut app, 60);
        assert_eq!(app.link(), LinkState::Online);
        assert!(status_line(&mut app).contains("● online 60 ms"));
        // One slow answer among fast ones is a large page, not a slow link.
        answer(&mut app, 2000);
        assert_eq!(app.link(), LinkState::Online);
        for _ in 0..4 {
            answer(&mut app, 1500);
        }
        assert_eq!(app.link(), LinkState::Slow);
        let status = status_line(&mut app);
        assert!(status.contains("SLOW ~1 s · low-bw"), "{status}");
        assert!(app.low_bandwidth(), "drawn for a slow link by itself");
        assert_eq!(app.queue_refresh_every(), QUEUE_REFRESH_SLOW);
        assert_eq!(app.list_page(), LOW_BANDWIDTH_PAGE);
        assert_eq!(app.working_set_pages(), 1);
        // Half a second is better, not yet fast.
        for _ in 0..6 {
            answer(&mut app, 500);
        }
        assert_eq!(app.link(), LinkState::Slow);
        for _ in 0..3 {
            answer(&mut app, 100);
        }
        assert_eq!(app.link(), LinkState::Online);
        assert!(!app.low_bandwidth(), "and back when the link is");
        assert_eq!(app.queue_refresh_every(), QUEUE_REFRESH);
        assert_eq!(app.list_page(), 50);

        // Asked for: it stays whatever the link does.
        let mut asked = app_with(Keymap::defaults());
        asked.set_low_bandwidth(true);
        answer(&mut asked, 60);
        assert!(asked.low_bandwidth());
        assert!(status_line(&mut asked).contains("online · low-bw"));
    }

    fn press(app: &mut App, keys: &str, clock: Clock) {
        for k in crate::tui::keys::parse_keys(keys).unwrap() {
            app.update(Event::Key(k), clock);
        }
    }

    /// A server that names nobody: drafts belong to the token (by its
    /// hash), so they are still kept here and another token's are not
    /// offered.
    #[test]
    fn without_whoami_drafts_belong_to_the_token() {
        let owner_of = |token: Option<&str>| {
            let mut app = app_with(Keymap::defaults());
            app.session.token = token.map(str::to_string);
            app.start();
            let who = app
                .take_requests()
                .into_iter()
                .find(|(_, r)| matches!(r, ApiRequest::WhoAmI))
                .map(|(id, _)| id)
                .unwrap();
            let clock = Clock {
                instant: Instant::now(),
                now: app.now(),
            };
            app.update(
                Event::Api(Completed {
                    id: who,
                    result: Ok(ApiReply::WhoAmI(None)),
                    latency: Duration::from_millis(5),
                }),
                clock,
            );
            match app.take_draft_effects().as_slice() {
                [
                    DraftEffect::Load { user, .. },
                    DraftEffect::LoadOutbox { .. },
                ] => user.clone(),
                other => panic!("drafts loaded once: {other:?}"),
            }
        };
        let a = owner_of(Some("secret-token-a"));
        assert!(a.starts_with("token ") && !a.contains("secret"), "{a}");
        assert_eq!(
            a,
            owner_of(Some("secret-token-a")),
            "the same token, the same drafts"
        );
        assert_ne!(a, owner_of(Some("secret-token-b")));
        assert_eq!(owner_of(None), "no sign-in");
    }

    /// `$whoami` unanswered (the link was down): nobody's drafts are
    /// assumed; it is asked again once a request gets through, and a draft
    /// saved meanwhile is written as soon as its owner is known.
    #[test]
    fn drafts_wait_for_the_server_to_say_who_is_signed_in() {
        let mut app = app_with(Keymap::defaults());
        app.start();
        let clock = Clock {
            instant: Instant::now(),
            now: app.now(),
        };
        let mut requests = app.take_requests();
        let id_of = |reqs: &[(RequestId, ApiRequest)], want: fn(&ApiRequest) -> bool| {
            reqs.iter()
                .find(|(_, r)| want(r))
                .map(|(id, _)| *id)
                .unwrap()
        };
        let who = id_of(&requests, |r| matches!(r, ApiRequest::WhoAmI));
        let done = |id, result| {
            Event::Api(Completed {
                id,
                result,
                latency: Duration::from_millis(5),
            })
        };
        app.update(
            done(who, Err(ApiError::no_answer("connection refused"))),
            clock,
        );
        assert!(
            app.take_draft_effects().is_empty(),
            "no owner assumed on a dead link"
        );
        // A note saved now waits for its owner.
        let note = crate::tui::command::NoteSnapshot {
            patient_id: "p1".into(),
            patient_label: "P".into(),
            template: "progress".into(),
            title: "Progress note".into(),
            loinc: "11506-3".into(),
            loinc_display: "Progress note".into(),
            client_id: "c1".into(),
            server_id: None,
            server_version: None,
            appends: None,
            text: "words".into(),
            state: crate::notes::document::NoteState::Draft,
        };
        app.run_commands(vec![Command::SaveDraft {
            note,
            to_server: false,
        }]);
        assert!(app.take_draft_effects().is_empty());
        // The link is back: the next answer makes the app ask again.
        let caps = id_of(&requests, |r| matches!(r, ApiRequest::Capabilities));
        app.update(
            done(caps, Ok(ApiReply::Capabilities(Features::default()))),
            clock,
        );
        requests = app.take_requests();
        let who = id_of(&requests, |r| matches!(r, ApiRequest::WhoAmI));
        let me = crate::api::WhoAmI {
            login: None,
            user: Some("Dr. Ama Mensah".into()),
            role: Some(crate::roles::Role::Attending),
            practitioner: None,
        };
        app.update(done(who, Ok(ApiReply::WhoAmI(Some(me)))), clock);
        match app.take_draft_effects().as_slice() {
            [
                DraftEffect::Save(d),
                DraftEffect::Load { user, .. },
                DraftEffect::LoadOutbox { .. },
            ] => {
                assert_eq!(
                    (d.user.as_str(), d.note.text.as_str()),
                    ("Dr. Ama Mensah", "words")
                );
                assert_eq!(user, "Dr. Ama Mensah");
            }
            other => panic!("the waiting draft saved, then drafts loaded: {other:?}"),
        }
    }

    /// Site and user templates come from the runner; a broken one is said
    /// at start with its file and line, and the others are offered.
    #[test]
    fn a_broken_template_file_is_said_at_start_and_the_rest_load() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.toml"), "name = \"bad\"\ntitle = 3\n").unwrap();
        std::fs::write(
            dir.path().join("wound.toml"),
            "name = \"wound\"\ntitle = \"Wound check\"\nloinc = \"34746-8\"\nloinc_display = \"Nurse Note\"\nroles = [\"nurse\"]\ntext = \"SITE ***\"\n",
        )
        .unwrap();
        let mut app = app_with(Keymap::defaults());
        app.use_notes_library(
            crate::notes::TemplateSet::load(None, Some(dir.path())),
            crate::notes::Phrases::default(),
        );
        app.start();
        let said = app.notice().map(|n| n.text.clone()).unwrap_or_default();
        assert!(said.contains("bad.toml:2"), "{said}");
        assert!(app.notes.templates.get("wound").is_some());
        assert!(
            app.notes.templates.get("progress").is_some(),
            "built-ins still there"
        );
    }

    #[test]
    fn the_server_search_waits_out_the_debounce_on_the_clock_given() {
        let mut app = app_with(Keymap::defaults());
        let t0 = Clock {
            instant: Instant::now(),
            now: app.now(),
        };
        press(&mut app, "/garc", t0);
        let searches = |app: &mut App| {
            app.take_requests()
                .into_iter()
                .filter(|(_, r)| matches!(r, ApiRequest::SearchPatients { .. }))
                .count()
        };
        assert_eq!(searches(&mut app), 0);
        let later = |ms| Clock {
            instant: t0.instant + Duration::from_millis(ms),
            now: t0.now,
        };
        app.update(Event::Tick, later(100));
        assert_eq!(searches(&mut app), 0, "not before the debounce");
        app.update(Event::Tick, later(150));
        assert_eq!(searches(&mut app), 1);
        // Matching the working set does not wait: it went to the matcher at once.
        assert!(
            app.take_match_jobs()
                .iter()
                .any(|j| matches!(j, MatchJob::Search { query, .. } if query == "garc"))
        );
    }

    #[test]
    fn editing_keys_and_popups_follow_the_users_keymap() {
        let load = Keymap::load_str(
            "[input]\nkeymap = [\n  { on = \"ctrl-h\", run = \"delete_back\" },\n  { on = \"ctrl-x\", run = \"clear_input\" },\n]\n\
             [viewer]\nkeymap = [ { on = \"x\", run = \"cancel\" } ]\n\
             [confirm]\nkeymap = [ { on = \"j\", run = \"confirm\" } ]\n",
            "user.toml",
        );
        assert!(load.warnings.is_empty(), "{:?}", load.warnings);
        let mut app = app_with(load.keymap);
        let clock = Clock::system();
        press(&mut app, "/abc<c-h>", clock);
        assert_eq!(app.panes.search.query(), "ab");
        // `q` and `?` are typed in the search box, not run.
        press(&mut app, "q?", clock);
        assert_eq!(app.panes.search.query(), "abq?");
        assert!(!app.should_quit() && app.popup().is_none());
        press(&mut app, "<c-x>", clock);
        assert_eq!(app.panes.search.query(), "");
        press(&mut app, "<esc>?", clock);
        assert!(matches!(app.popup(), Some(Popup::Help(_))));
        press(&mut app, "x", clock);
        assert!(app.popup().is_none(), "the rebound key closes the help");
        app.popup = Some(Popup::Confirm(Confirm::quit()));
        press(&mut app, "j", clock);
        assert!(app.should_quit(), "the rebound key answers yes");
    }

    /// Pasted or typed, a character that steers a terminal reaches a text
    /// box as its marker: the box's text is drawn as it is.
    #[test]
    fn hostile_pastes_and_keys_become_markers_in_text_boxes() {
        let mut app = app_with(Keymap::defaults());
        let clock = Clock::system();
        app.update(
            Event::Paste("Doe\u{1b}]52;c;ZXZpbA==\u{7}\u{202e}x\u{200d}".into()),
            clock,
        );
        assert_eq!(
            app.panes.search.query(),
            "Doe␛]52;c;ZXZpbA==␇⟨U+202E⟩x⟨U+200D⟩"
        );
        for c in ['\u{9b}', '\u{202e}', '\u{2066}'] {
            app.update(
                Event::Key(KeyEvent::new(
                    KeyCode::Char(c),
                    ratatui::crossterm::event::KeyModifiers::NONE,
                )),
                clock,
            );
        }
        assert!(
            app.panes
                .search
                .query()
                .ends_with("⟨U+009B⟩⟨U+202E⟩⟨U+2066⟩"),
            "{}",
            app.panes.search.query()
        );
        press(&mut app, "<esc>:", clock);
        app.update(Event::Paste("qu\u{202e}it".into()), clock);
        let Some(Popup::Palette(p)) = app.popup() else {
            panic!("the palette is open")
        };
        assert_eq!(p.query(), "qu⟨U+202E⟩it");
    }

    /// Notices quote settings, files and errors: they are drawn neutralised.
    #[test]
    fn notices_are_sanitised() {
        let mut app = app_with(Keymap::defaults());
        app.warn("Theme not loaded: theme \"\u{1b}]0;x\u{7}\u{202e}\"".into());
        assert_eq!(
            app.notice().map(|n| n.text.as_str()),
            Some("Theme not loaded: theme \"␛]0;x␇⟨U+202E⟩\"")
        );
        app.inform("a\u{9b}2J".into());
        assert_eq!(app.notice().map(|n| n.text.as_str()), Some("a⟨U+009B⟩2J"));
    }

    #[test]
    fn a_paste_goes_whole_to_the_focused_text_box() {
        let mut app = app_with(Keymap::defaults());
        let clock = Clock::system();
        let text = "x".repeat(10_000);
        app.update(Event::Paste(text.clone()), clock);
        assert_eq!(app.panes.search.query(), text, "the search pane takes it");
        press(&mut app, "<esc>2", clock);
        app.update(Event::Paste("more".into()), clock);
        assert_eq!(app.panes.search.query(), text, "no text box on the summary");
        assert!(app.notice().is_some_and(|n| n.text.contains("not used")));
        press(&mut app, ":", clock);
        app.update(Event::Paste("quit".into()), clock);
        let Some(Popup::Palette(p)) = app.popup() else {
            panic!("the palette is open")
        };
        assert_eq!(p.query(), "quit", "an open palette takes the paste");
    }

    #[test]
    fn a_banner_too_narrow_ends_in_how_many_more() {
        let t = Theme::default();
        let c = chart_with(
            [
                "Penicillin",
                "Sulfonamides",
                "Latex",
                "Peanut",
                "Shellfish",
                "Codeine",
            ]
            .iter()
            .map(|n| json!({"code": {"text": n}}))
            .collect(),
        );
        let line = allergy_banner(&c, 50, &t);
        let s = text(&line);
        assert!(s.ends_with("more"), "{s}");
        assert!(line.width() <= 50);
        assert!(!s.contains('…'), "names are never cut in half: {s}");
        let hidden: usize = s
            .rsplit('+')
            .next()
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        let shown = s.trim_start_matches("ALLERGIES: ").split(',').count();
        assert_eq!(shown + hidden, 6, "{s}");
        let wide = text(&allergy_banner(&c, 200, &t));
        assert_eq!(
            wide,
            "ALLERGIES: Penicillin, Sulfonamides, Latex, Peanut, Shellfish, Codeine"
        );
    }

    #[test]
    fn the_banner_never_says_none_while_a_record_is_unreadable() {
        let t = Theme::default();
        let mut c = chart_with(vec![]);
        assert_eq!(text(&allergy_banner(&c, 120, &t)), NO_ALLERGIES_RECORDED);
        c.allergies.unreadable.push(crate::chart::Unreadable {
            raw: json!({"resourceType": "AllergyIntolerance", "code": "penicillin"}),
            why: "invalid type".into(),
        });
        let line = allergy_banner(&c, 120, &t);
        let s = text(&line);
        assert!(s.starts_with("ALLERGIES UNKNOWN"), "{s}");
        assert!(
            s.contains("1 allergy record could not be read — v shows it raw"),
            "{s}"
        );
        assert_eq!(line.spans[0].style, t.alert_critical, "in the alert style");
        c.allergies.items.push(
            serde_json::from_value(json!({"code": {"text": "Latex"}, "criticality": "high"}))
                .unwrap(),
        );
        let s = text(&allergy_banner(&c, 120, &t));
        assert!(
            s.starts_with("ALLERGIES: Latex (high) · 1 allergy record could not be read"),
            "{s}"
        );
    }
}
