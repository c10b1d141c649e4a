//! The application state and its one update path: keys become actions through
//! the keymap, actions become commands, commands become api requests with ids,
//! replies come back through [`App::handle_completed`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::config::Settings;
use crate::roles::Role;
use crate::tui::action::Action;
use crate::tui::command::{ApiReply, ApiRequest, ChartData, Command, Completed, RequestId};
use crate::tui::keymap::{Key, Keymap, Lookup, display_sequence};
use crate::tui::overlay;
use crate::tui::panes::notes::NotesPane;
use crate::tui::panes::results::ResultsPane;
use crate::tui::panes::search::{SearchPane, sex_label};
use crate::tui::panes::summary::SummaryPane;
use crate::tui::panes::tasks::{QueueState, TasksPane};
use crate::tui::panes::{
    AllergyStatus, NO_ALLERGIES_RECORDED, Pane, PaneId, View, allergy_status, fit, fit_line,
    life_label,
};
use crate::tui::popups::{HelpPopup, Palette, PopupOutcome, which_key};

use crate::tui::theme::Theme;

/// Quiet time after the last keystroke before a server-side search goes out.
pub const SEARCH_DEBOUNCE: Duration = Duration::from_millis(150);
/// Pages of patients fetched at start for the working set.
const WORKING_SET_PAGES: u32 = 4;
/// Pages of the role queue followed.
const QUEUE_PAGES: u32 = 10;
/// Wait before the first probe of a server that could not be reached; it
/// doubles after each failed probe up to [`PROBE_MAX`].
pub const PROBE_FIRST: Duration = Duration::from_secs(2);
pub const PROBE_MAX: Duration = Duration::from_secs(30);

/// Who is signed in where; built by the command line.
#[derive(Debug, Clone)]
pub struct Session {
    pub base_url: String,
    pub token: Option<String>,
    pub role: Option<Role>,
    pub user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Nothing answered yet.
    Unknown,
    Online,
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

#[derive(Debug)]
pub enum Popup {
    Help(HelpPopup),
    Palette(Palette),
    ConfirmQuit,
}

#[derive(Debug, Clone, PartialEq)]
enum Origin {
    WhoAmI,
    WorkingSet { page: u32 },
    Search,
    Chart { patient_id: String },
    Queue { page: u32 },
    Probe,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub requests: u64,
    /// Replies dropped because a newer request of the same kind was answered first.
    pub stale_dropped: u64,
}

pub struct App {
    keymap: Keymap,
    theme: Theme,
    session: Session,
    page_size: u32,
    now: DateTime<Utc>,
    focus: PaneId,
    pub search: SearchPane,
    pub summary: SummaryPane,
    pub results: ResultsPane,
    pub notes: NotesPane,
    pub tasks: TasksPane,
    chart: Option<ChartData>,
    opening: Option<String>,
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
    whoami_offered: Option<bool>,
    next_id: RequestId,
    in_flight: HashMap<RequestId, Origin>,
    outbox: Vec<(RequestId, ApiRequest)>,
    pending_search: Option<(String, Instant)>,
    latest_chart: Option<RequestId>,
    latest_queue: Option<RequestId>,
    stats: Stats,
    quit: bool,
    dirty: bool,
}

/// The focused pane as `&mut dyn Pane`, borrowing only that field.
macro_rules! pane_mut {
    ($self:ident, $id:expr) => {
        match $id {
            PaneId::Search => &mut $self.search as &mut dyn Pane,
            PaneId::Summary => &mut $self.summary as &mut dyn Pane,
            PaneId::Results => &mut $self.results as &mut dyn Pane,
            PaneId::Notes => &mut $self.notes as &mut dyn Pane,
            PaneId::Tasks => &mut $self.tasks as &mut dyn Pane,
        }
    };
}

macro_rules! view {
    ($self:ident, $focused:expr) => {
        View {
            chart: $self.chart.as_ref(),
            now: $self.now,
            theme: &$self.theme,
            focused: $focused,
        }
    };
}

impl App {
    pub fn new(
        settings: &Settings,
        session: Session,
        keymap: Keymap,
        theme: Theme,
        now: DateTime<Utc>,
    ) -> App {
        App {
            keymap,
            theme,
            session,
            page_size: settings.page_size.max(1),
            now,
            focus: PaneId::Search,
            search: SearchPane::default(),
            summary: SummaryPane::default(),
            results: ResultsPane::default(),
            notes: NotesPane::default(),
            tasks: TasksPane::default(),
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
            whoami_offered: None,
            next_id: 1,
            in_flight: HashMap::new(),
            outbox: Vec::new(),
            pending_search: None,
            latest_chart: None,
            latest_queue: None,
            stats: Stats::default(),
            quit: false,
            dirty: true,
        }
    }

    /// The first requests: who am I, the first patients, my queue.
    pub fn start(&mut self) {
        self.submit(ApiRequest::WhoAmI, Origin::WhoAmI);
        self.submit(
            ApiRequest::PatientPage {
                count: self.page_size,
            },
            Origin::WorkingSet { page: 1 },
        );
        if self.session.role.is_some() {
            self.load_queue();
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
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
    pub fn keymap(&self) -> &Keymap {
        &self.keymap
    }

    /// Something changed since the last draw; clears the flag.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }
    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Requests to hand to the api worker.
    pub fn take_requests(&mut self) -> Vec<(RequestId, ApiRequest)> {
        std::mem::take(&mut self.outbox)
    }

    /// Shown once, e.g. problems in the user's keymap file.
    pub fn warn(&mut self, text: String) {
        self.notice = Some(Notice { text, error: true });
        self.notice_from_failure = false;
        self.dirty = true;
    }

    /// A failed request's message; the next request that succeeds clears it,
    /// so an old failure never sits beside "online".
    fn warn_failure(&mut self, text: String) {
        self.warn(text);
        self.notice_from_failure = true;
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Work that quitting would lose.
    pub fn has_unsaved(&self) -> bool {
        self.search.unsaved()
            || self.summary.unsaved()
            || self.results.unsaved()
            || self.notes.unsaved()
            || self.tasks.unsaved()
    }

    /// Time passes: send a debounced search, refresh clock-dependent text.
    pub fn tick(&mut self, instant: Instant, now: DateTime<Utc>) {
        if let Some((_, at)) = &self.pending_search
            && instant.duration_since(*at) >= SEARCH_DEBOUNCE
        {
            self.flush_search();
        }
        if let Some((at, _)) = self.probe
            && instant >= at
            && !self.probe_in_flight
        {
            self.probe_in_flight = true;
            self.submit(ApiRequest::Probe, Origin::Probe);
        }
        if now.timestamp() / 60 != self.now.timestamp() / 60 {
            self.dirty = true;
        }
        self.now = now;
    }

    /// Send the debounced search now.
    pub fn flush_search(&mut self) {
        if let Some((query, _)) = self.pending_search.take() {
            self.submit(
                ApiRequest::SearchPatients {
                    query,
                    count: self.page_size,
                },
                Origin::Search,
            );
        }
    }

    pub fn set_now(&mut self, now: DateTime<Utc>) {
        self.now = now;
        self.dirty = true;
    }

    fn submit(&mut self, request: ApiRequest, origin: Origin) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        self.stats.requests += 1;
        self.in_flight.insert(id, origin);
        self.outbox.push((id, request));
        self.dirty = true;
        id
    }

    fn load_queue(&mut self) {
        match self.session.role {
            Some(role) => {
                self.tasks.state = QueueState::Loading;
                let id = self.submit(
                    ApiRequest::RoleQueue {
                        role,
                        count: self.page_size.max(50),
                    },
                    Origin::Queue { page: 1 },
                );
                self.latest_queue = Some(id);
            }
            None => self.tasks.state = QueueState::NoRole,
        }
    }

    fn open_patient(&mut self, id: String) {
        self.opening = Some(id.clone());
        let rid = self.submit(
            ApiRequest::OpenChart {
                patient_id: id.clone(),
            },
            Origin::Chart { patient_id: id },
        );
        self.latest_chart = Some(rid);
    }

    fn run_commands(&mut self, commands: Vec<Command>) {
        for c in commands {
            match c {
                Command::SearchPatients { query } => {
                    if crate::api::search_query::server_params(&query).is_empty() {
                        self.pending_search = None;
                    } else {
                        self.pending_search = Some((query, Instant::now()));
                    }
                }
                Command::OpenPatient { id } => self.open_patient(id),
                Command::Focus(p) => self.focus = p,
                Command::LoadQueue => self.load_queue(),
                Command::ReloadChart => {
                    if let Some(id) = self.chart.as_ref().and_then(|c| c.patient.id.clone()) {
                        self.open_patient(id);
                    }
                }
            }
        }
    }

    // ----- keys -----

    pub fn handle_key(&mut self, key: KeyEvent) {
        if key.kind != KeyEventKind::Press {
            return;
        }
        self.dirty = true;
        if let Some(popup) = &mut self.popup {
            let outcome = match popup {
                Popup::Help(h) => h.handle_key(key),
                Popup::Palette(p) => p.handle_key(key),
                Popup::ConfirmQuit => match key.code {
                    KeyCode::Char('y') | KeyCode::Char('Y') => {
                        self.quit = true;
                        PopupOutcome::Close
                    }
                    _ => PopupOutcome::Close,
                },
            };
            match outcome {
                PopupOutcome::Consumed => {}
                PopupOutcome::Close => self.popup = None,
                PopupOutcome::Run(a) => {
                    self.popup = None;
                    self.dispatch(a);
                }
            }
            return;
        }
        if self.pending_keys.is_empty() {
            let view = view!(self, true);
            let pane = pane_mut!(self, self.focus);
            if let Some(commands) = pane.handle_text(key, &view) {
                self.run_commands(commands);
                return;
            }
        }
        let k = Key::from(key);
        let context = self.focus.context();
        let lookup = self.keymap.lookup(context, &self.pending_keys, k);
        match lookup {
            Lookup::Action(a) => {
                self.pending_keys.clear();
                self.dispatch(a);
            }
            Lookup::Pending(_) => self.pending_keys.push(k),
            Lookup::Unbound => {
                let was_pending = !self.pending_keys.is_empty();
                self.pending_keys.clear();
                if !was_pending && key.code == KeyCode::Esc {
                    self.dispatch(Action::Cancel);
                }
            }
        }
    }

    /// Run an action as if its key had been pressed.
    pub fn dispatch(&mut self, action: Action) {
        self.dirty = true;
        match action {
            Action::Noop => {}
            Action::Quit => {
                if self.has_unsaved() {
                    self.popup = Some(Popup::ConfirmQuit);
                } else {
                    self.quit = true;
                }
            }
            Action::Help => self.popup = Some(Popup::Help(HelpPopup::new())),
            Action::CommandPalette => self.popup = Some(Popup::Palette(Palette::new())),
            Action::FocusSearch => {
                self.focus = PaneId::Search;
                self.search.start_editing();
            }
            Action::PaneSearch => self.focus = PaneId::Search,
            Action::PaneSummary => self.focus = PaneId::Summary,
            Action::PaneResults => self.focus = PaneId::Results,
            Action::PaneNotes => self.focus = PaneId::Notes,
            Action::PaneTasks => self.focus = PaneId::Tasks,
            Action::NextPane => self.focus = self.focus.next(),
            Action::PrevPane => self.focus = self.focus.prev(),
            Action::ClosePatient => {
                self.chart = None;
                self.opening = None;
                self.latest_chart = None;
                self.reload_chart_panes();
            }
            Action::Cancel | Action::Back if self.notice.is_some() => {
                self.notice = None;
                let view = view!(self, true);
                let commands = pane_mut!(self, self.focus).update(action, &view);
                self.run_commands(commands);
            }
            _ => {
                let view = view!(self, true);
                let commands = pane_mut!(self, self.focus).update(action, &view);
                self.run_commands(commands);
            }
        }
    }

    fn reload_chart_panes(&mut self) {
        self.summary.reset();
        self.results.load(self.chart.as_ref());
        self.notes.load(self.chart.as_ref());
    }

    // ----- replies -----

    pub fn handle_completed(&mut self, done: Completed) {
        let Some(origin) = self.in_flight.remove(&done.id) else {
            return;
        };
        self.dirty = true;
        self.latency = Some(done.latency);
        self.link = match &done.result {
            Ok(_) => LinkState::Online,
            Err(e) if e.status.is_some() => LinkState::Degraded,
            Err(_) => LinkState::Down,
        };
        if origin == Origin::Probe {
            self.probe_in_flight = false;
        }
        match (self.link, self.probe) {
            (LinkState::Down, None) => {
                self.probe = Some((Instant::now() + PROBE_FIRST, PROBE_FIRST))
            }
            (LinkState::Down, Some((_, wait))) if origin == Origin::Probe => {
                let wait = (wait * 2).min(PROBE_MAX);
                self.probe = Some((Instant::now() + wait, wait));
            }
            (LinkState::Down, Some(_)) => {}
            _ => self.probe = None,
        }
        if done.result.is_ok() && self.notice_from_failure {
            self.notice = None;
            self.notice_from_failure = false;
        }
        match (origin, done.result) {
            (Origin::WhoAmI, Ok(ApiReply::WhoAmI(Some(who)))) => {
                self.whoami_offered = Some(true);
                let had_role = self.session.role;
                if who.user.is_some() {
                    self.session.user = who.user;
                }
                if who.role.is_some() {
                    self.session.role = who.role;
                }
                if self.session.role != had_role {
                    self.load_queue();
                }
            }
            (Origin::WhoAmI, Ok(_)) => {
                self.whoami_offered = Some(false);
                if self.session.role.is_none() {
                    self.tasks.state = QueueState::NoRole;
                }
            }
            (Origin::WhoAmI, Err(e)) => {
                self.whoami_offered = Some(false);
                if self.session.role.is_none() {
                    self.tasks.state = QueueState::NoRole;
                }
                self.warn_failure(format!("Could not ask the server who you are: {e}"));
            }
            (Origin::WorkingSet { page }, Ok(ApiReply::Patients { patients, next })) => {
                self.search.add_rows(patients);
                if let Some(url) = next.filter(|_| page < WORKING_SET_PAGES) {
                    self.submit(
                        ApiRequest::NextPage { url },
                        Origin::WorkingSet { page: page + 1 },
                    );
                }
            }
            (Origin::WorkingSet { .. }, Err(e)) => {
                self.warn_failure(format!("Could not load the patient list: {e}"));
            }
            (Origin::Search, result) => {
                if self.search.applied_search().is_some_and(|a| a > done.id) {
                    self.stats.stale_dropped += 1;
                    return;
                }
                match result {
                    Ok(ApiReply::Patients { patients, .. }) => {
                        self.search.apply_server_results(done.id, patients)
                    }
                    Ok(_) => {}
                    Err(e) => self.search.server_failed(&e.to_string()),
                }
            }
            (Origin::Chart { patient_id }, result) => {
                if self.latest_chart != Some(done.id) {
                    self.stats.stale_dropped += 1;
                    return;
                }
                self.opening = None;
                match result {
                    Ok(ApiReply::Chart(chart)) => {
                        self.search
                            .add_patients(std::slice::from_ref(&chart.patient));
                        let reopened = self
                            .chart
                            .as_ref()
                            .is_some_and(|c| c.patient.id.as_deref() == Some(patient_id.as_str()));
                        let ignored = chart.other_patients_ignored;
                        self.chart = Some(*chart);
                        self.reload_chart_panes();
                        if ignored > 0 {
                            self.warn(format!(
                                "ignored {ignored} resources of other patients: the server did not filter by patient"
                            ));
                        }
                        if !reopened && matches!(self.focus, PaneId::Search | PaneId::Tasks) {
                            self.focus = PaneId::Summary;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let shown = self
                            .chart
                            .as_ref()
                            .filter(|c| c.patient.id.as_deref() != Some(patient_id.as_str()));
                        let text = match shown {
                            Some(c) => format!(
                                "Could not open the chart of {}: {e} — still showing {}",
                                self.patient_name(&patient_id),
                                c.patient.display_name()
                            ),
                            None => format!("Could not open the chart: {e}"),
                        };
                        self.warn_failure(text);
                    }
                }
            }
            (Origin::Queue { page }, result) => {
                if self.latest_queue != Some(done.id) && page == 1 {
                    self.stats.stale_dropped += 1;
                    return;
                }
                match result {
                    Ok(ApiReply::Queue {
                        tasks,
                        patients,
                        next,
                    }) => {
                        self.tasks.load(&tasks, &patients, page > 1);
                        self.search.add_patients(&patients);
                        if let Some(url) = next.filter(|_| page < QUEUE_PAGES) {
                            self.submit(
                                ApiRequest::NextPage { url },
                                Origin::Queue { page: page + 1 },
                            );
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
                        self.tasks.state = QueueState::Failed(why);
                    }
                }
            }
            // A failed probe only sets the next one back (above).
            (Origin::Probe, Err(_)) => {}
            // Back online: fetch the patient list if it never arrived.
            (Origin::Probe, Ok(_)) => {
                if self.search.index.is_empty() {
                    self.submit(
                        ApiRequest::PatientPage {
                            count: self.page_size,
                        },
                        Origin::WorkingSet { page: 1 },
                    );
                }
            }
            (_, Ok(_)) => {}
        }
    }

    // ----- drawing -----

    pub fn render(&mut self, frame: &mut Frame) {
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
        pane_mut!(self, self.focus).render(frame, body, &view);
        self.render_hint_line(frame, hint);
        self.render_status(frame, status);
        let context = self.focus.context();
        match &self.popup {
            Some(Popup::Help(h)) => h.render(frame, body, &self.keymap, &self.theme, context),
            Some(Popup::Palette(p)) => p.render(frame, body, &self.keymap, &self.theme, context),
            Some(Popup::ConfirmQuit) => overlay::render_confirm_quit(frame, body, &self.theme),
            None => {}
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
                Some(_) => "Opening chart…",
                None => "No patient open — press / to find one",
            };
            frame.render_widget(Paragraph::new(Span::styled(text, t.dim)), l1);
            return;
        };
        let p = &chart.patient;
        let dob = p.birth_date.as_deref().unwrap_or("unknown");
        let age = life_label(p.birth_date.as_deref(), p.deceased().as_ref(), self.now);
        let sex = sex_label(p.gender.as_deref().unwrap_or(""));
        // Sex, age, birth date and MRN always show in full; the name gives way.
        let facts = format!("  {sex}  {age}  DOB {dob}  ");
        let mrn = format!("MRN {}", p.mrn().unwrap_or("none"));
        // Opening someone else: say so, so the chart on screen is never
        // taken for the one asked for.
        let loading = match &self.opening {
            Some(id) if p.id.as_deref() != Some(id.as_str()) => {
                format!("  (opening {}…)", fit(&self.patient_name(id), 24))
            }
            Some(_) => "  (loading…)".to_string(),
            None => String::new(),
        };
        let fixed = facts.chars().count() + mrn.chars().count() + loading.chars().count();
        let room = (l1.width as usize).saturating_sub(fixed).max(8);
        let mut spans = vec![
            Span::styled(fit(&p.display_name().to_uppercase(), room), t.title),
            Span::raw(facts),
            Span::styled(mrn, t.header),
        ];
        if !loading.is_empty() {
            spans.push(Span::styled(loading, t.dim));
        }
        // A long MRN (a UUID) beside a death date may still not fit: the
        // cut is then marked rather than lost at the edge.
        frame.render_widget(
            Paragraph::new(fit_line(Line::from(spans), l1.width.into())),
            l1,
        );
        let allergy_line = match &chart.allergies {
            Ok(list) => match allergy_status(list) {
                AllergyStatus::NoneRecorded => {
                    Line::from(Span::styled(NO_ALLERGIES_RECORDED, t.base))
                }
                AllergyStatus::NoKnown(words) => Line::from(Span::styled(words.join("; "), t.base)),
                AllergyStatus::Listed(list) => {
                    let names: Vec<String> = list
                        .iter()
                        .map(|a| {
                            let n = a
                                .code
                                .as_ref()
                                .and_then(|c| c.label())
                                .unwrap_or("(unnamed)")
                                .to_string();
                            if a.criticality.as_deref() == Some("high") {
                                format!("{n} (high)")
                            } else {
                                n
                            }
                        })
                        .collect();
                    Line::from(vec![
                        Span::styled("ALLERGIES: ", t.allergy),
                        Span::styled(names.join(", "), t.allergy),
                    ])
                }
            },
            Err(e) => Line::from(Span::styled(
                format!("ALLERGIES NOT AVAILABLE — ask the patient ({e})"),
                t.alert_critical,
            )),
        };
        // A cut allergy list must show it was cut: a hidden allergy is worse than a short line.
        let allergy_line = crate::tui::panes::fit_line(allergy_line, usize::from(l2.width));
        frame.render_widget(Paragraph::new(allergy_line), l2);
    }

    /// A patient's name as listed, or a neutral word when not known.
    fn patient_name(&self, id: &str) -> String {
        self.search
            .row(id)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| "another patient".into())
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
            frame.render_widget(Paragraph::new(Span::styled(n.text.as_str(), style)), area);
            return;
        }
        let context = self.focus.context();
        let pane: &dyn Pane = match self.focus {
            PaneId::Search => &self.search,
            PaneId::Summary => &self.summary,
            PaneId::Results => &self.results,
            PaneId::Notes => &self.notes,
            PaneId::Tasks => &self.tasks,
        };
        let mut spans = Vec::new();
        for a in pane
            .hint_actions()
            .iter()
            .chain([Action::Help, Action::CommandPalette, Action::Quit].iter())
        {
            if let Some(keys) = self.keymap.keys_for(context, *a).first() {
                spans.push(Span::styled(display_sequence(keys), t.key_hint));
                spans.push(Span::styled(format!(" {}  ", short_hint(*a)), t.dim));
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
            .unwrap_or_else(|| self.session.base_url.clone());
        let (link_text, link_style) = match self.link {
            LinkState::Unknown => ("○ connecting", t.link_warn),
            LinkState::Online => ("● online", t.link_ok),
            LinkState::Degraded => ("● errors", t.link_warn),
            LinkState::Down => ("✕ offline", t.link_down),
        };
        let mut spans = vec![
            Span::raw(format!(" {user} · {role} · {server} · ")),
            Span::styled(link_text, link_style),
        ];
        if let Some(l) = self.latency {
            spans.push(Span::raw(format!(" {} ms", l.as_millis())));
        }
        if !self.in_flight.is_empty() {
            spans.push(Span::raw(format!(" · {} pending", self.in_flight.len())));
        }
        frame.render_widget(Paragraph::new(Line::from(spans)).style(t.status_bar), area);
    }
}

/// Short verbs for the hint line.
fn short_hint(a: Action) -> &'static str {
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
        _ => a.name(),
    }
}
