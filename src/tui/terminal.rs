//! The real terminal: a guard that gives it back on every exit (quit, error,
//! panic, and the signals a closed window or a dropped SSH link sends), file
//! logging, and the event loop that feeds the app.
//!
//! Giving the terminal back never prints and never panics: after a hang-up
//! the terminal is gone, every write to it fails, and a panic there would
//! abort the process before the demo clinic's data is removed.

use std::io::{IsTerminal as _, Write as _};
use std::mem::ManuallyDrop;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::ThreadId;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use ratatui::crossterm::cursor::{Hide, Show};
use ratatui::crossterm::event::{self, DisableBracketedPaste, EnableBracketedPaste};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::api::http::HttpOptions;
use crate::api::{ApiClient, Worker};
use crate::chart::RecordNumber;
use crate::config::Settings;
use crate::tui::app::{App, Session};
use crate::tui::backend::LeanBackend;
use crate::tui::event::{Clock, Event};
use crate::tui::keeper::{DraftKeeper, KeeperWorker, MemoryDrafts};
use crate::tui::keymap::Keymap;
use crate::tui::matcher::MatchWorker;
use crate::tui::theme::Theme;

/// At most this long, writes still on their way to the server are waited
/// for when the session ends.
const WRITES_AT_EXIT: Duration = Duration::from_secs(3);

/// How often the loop wakes without input (debounced search, the clock).
const TICK: Duration = Duration::from_millis(50);

/// A change to the screen is drawn once events have paused this long (a
/// key and the matches it brings, a run of replies: one frame, not one
/// each)...
const FRAME_SETTLE: Duration = Duration::from_millis(10);
/// ...or at the latest this long after it, however busy the events.
const FRAME_WAIT: Duration = Duration::from_millis(30);
/// The first frame waits for the first replies (the patient list) this
/// long at most, so that start-up draws the list once instead of a
/// loading screen and the list again page by page.
const FIRST_FRAME_WAIT: Duration = Duration::from_millis(150);

/// How long the input thread waits for input before it looks whether the
/// session is over or the terminal has gone away.
const INPUT_POLL: Duration = Duration::from_millis(100);

/// At most this many queued input events are applied before the screen is
/// drawn again: a paste without bracketed-paste framing arrives as one key
/// per character, and is drawn once per batch instead of once per key.
const INPUT_BATCH: usize = 256;

/// The terminal is in raw mode on the alternate screen, with bracketed
/// paste on: set by [`TerminalGuard::enter`], cleared by [`give_back`].
static TAKEN: AtomicBool = AtomicBool::new(false);
/// The thread that draws (the panic hook gives the terminal back only
/// from there; see [`install_panic_hook`]).
static DRAWING_THREAD: Mutex<Option<ThreadId>> = Mutex::new(None);
/// A panic on another thread while the terminal was taken, said after the
/// terminal is given back.
static OTHER_PANIC: Mutex<Option<OtherPanic>> = Mutex::new(None);

struct OtherPanic {
    thread: String,
    location: String,
    message: String,
}

/// Raw mode, the alternate screen, a hidden cursor and bracketed paste for as
/// long as it lives; given back by its drop and by the panic hook.
struct TerminalGuard {
    /// Never dropped: ratatui's drop shows the cursor and prints to stderr
    /// if that fails, which panics when the terminal has hung up. [`give_back`]
    /// shows the cursor instead.
    terminal: ManuallyDrop<ratatui::Terminal<LeanBackend<std::io::Stdout>>>,
}

impl TerminalGuard {
    fn enter() -> anyhow::Result<Self> {
        install_panic_hook();
        *lock(&DRAWING_THREAD) = Some(std::thread::current().id());
        enable_raw_mode().context("cannot put the terminal in raw mode")?;
        TAKEN.store(true, Ordering::SeqCst);
        // A paste then arrives as one event, whatever its size.
        if let Err(e) = execute!(
            std::io::stdout(),
            EnterAlternateScreen,
            EnableBracketedPaste,
            Hide
        ) {
            give_back();
            return Err(e).context("cannot set up the terminal");
        }
        // The alternate screen starts blank, the backend's starting point.
        let size = match ratatui::crossterm::terminal::size() {
            Ok(size) => size,
            Err(e) => {
                give_back();
                return Err(e).context("cannot read the terminal's size");
            }
        };
        match ratatui::Terminal::new(LeanBackend::new(std::io::stdout(), size)) {
            Ok(terminal) => Ok(TerminalGuard {
                terminal: ManuallyDrop::new(terminal),
            }),
            Err(e) => {
                give_back();
                Err(e).context("cannot set up the terminal")
            }
        }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        give_back();
    }
}

/// Leave raw mode, the alternate screen, the hidden cursor and bracketed
/// paste, once, however often it is called. Errors are moot: the terminal
/// may be gone (a hung-up link).
fn give_back() {
    if !TAKEN.swap(false, Ordering::SeqCst) {
        return;
    }
    // Raw mode first: if the writes below block on a stalled link, the
    // line discipline is back already.
    let _ = disable_raw_mode();
    let mut out = std::io::stdout();
    let _ = execute!(out, DisableBracketedPaste, Show, LeaveAlternateScreen);
    let _ = out.flush();
}

/// Installed once, in front of whatever hook was there (the default one
/// prints the message).
///
/// A panic on the drawing thread gives the terminal back before the message
/// is printed; unwinding then ends the session as any error does (the demo
/// clinic's data is removed on the way out). A panic on any other thread
/// (the matcher, the api worker, the input thread, the demo server) leaves
/// the screen alone: the loop sees it within a tick and ends the session,
/// and the message is printed once the terminal is given back. The app
/// never runs on with a part of it dead.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let here = std::thread::current();
            let drawing = *lock(&DRAWING_THREAD) == Some(here.id());
            if drawing || !TAKEN.load(Ordering::SeqCst) {
                give_back();
                previous(info);
                return;
            }
            let mut slot = lock(&OTHER_PANIC);
            if slot.is_none() {
                *slot = Some(OtherPanic {
                    thread: here.name().unwrap_or("unnamed").to_string(),
                    location: info.location().map(|l| l.to_string()).unwrap_or_default(),
                    message: panic_message(info.payload()),
                });
            }
        }));
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The input thread: crossterm's reader blocks, so it gets its own thread.
/// It waits for input in short polls, so that it ends soon after the session
/// does (when this is dropped) instead of reading on from a terminal given
/// back, and when the terminal has hung up, which closes the channel
/// (`Exit::InputClosed`).
struct InputThread {
    done: Arc<AtomicBool>,
}

impl InputThread {
    fn spawn(tx: mpsc::UnboundedSender<event::Event>) -> InputThread {
        let done = Arc::new(AtomicBool::new(false));
        let finished = Arc::clone(&done);
        // crossterm reads stdin when it is a terminal (else /dev/tty): only
        // then does stdin tell whether the terminal is still there.
        let stdin_is_terminal = std::io::stdin().is_terminal();
        let spawned = std::thread::Builder::new()
            .name("chartty-input".into())
            .spawn(move || {
                while !finished.load(Ordering::SeqCst) {
                    match event::poll(INPUT_POLL) {
                        Ok(true) => match event::read() {
                            Ok(ev) => {
                                if tx.send(ev).is_err() {
                                    break;
                                }
                            }
                            Err(_) => break,
                        },
                        // A hung-up terminal answers no terminal request.
                        Ok(false) if stdin_is_terminal && !std::io::stdin().is_terminal() => {
                            break;
                        }
                        Ok(false) => {}
                        Err(_) => break,
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the input thread: {e}");
        }
        InputThread { done }
    }
}

impl Drop for InputThread {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
    }
}

/// Debug builds only, for `tests/pty_lifecycle.rs`: `CHARTTY_TEST_PANIC=key`
/// makes the first key panic the drawing thread, `=thread` a thread of its
/// own. Release builds never read the variable.
fn test_panic_from_env() -> Option<String> {
    cfg!(debug_assertions)
        .then(|| std::env::var("CHARTTY_TEST_PANIC").ok())
        .flatten()
}

fn test_panic(mode: &str) {
    if mode == "thread" {
        let _ = std::thread::Builder::new()
            .name("chartty-test-panic".into())
            .spawn(|| panic!("CHARTTY_TEST_PANIC=thread: a panic on another thread"));
    } else {
        panic!("CHARTTY_TEST_PANIC={mode}: a panic on the drawing thread");
    }
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Quit,
    /// SIGTERM, SIGHUP (the terminal or SSH link went away), SIGQUIT or SIGINT.
    Signal(&'static str),
    /// The terminal stopped delivering input.
    InputClosed,
}

fn log_path(settings: &Settings) -> PathBuf {
    settings.log_file.clone().unwrap_or_else(|| {
        dirs::state_dir()
            .or_else(dirs::data_local_dir)
            .unwrap_or_else(std::env::temp_dir)
            .join("chartty")
            .join("chartty.log")
    })
}

/// Tracing to a file, never to the terminal. Levels from `CHARTTY_LOG`.
fn init_logging(settings: &Settings) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    let path = log_path(settings);
    let dir = path.parent()?.to_path_buf();
    std::fs::create_dir_all(&dir).ok()?;
    let file = tracing_appender::rolling::never(dir, path.file_name()?);
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHARTTY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("chartty=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(false)
        .try_init()
        .ok()?;
    Some(guard)
}

/// Open the TUI against `session`'s server until the user quits or a
/// signal ends it; the terminal is given back either way.
pub fn run(settings: Settings, session: Session) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let _enter = runtime.enter();
    // First: from here on these signals end the session through the
    // terminal guard instead of killing the process. SIGINT comes from
    // `kill`; Ctrl-C in raw mode is a key.
    let mut term = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let _log = init_logging(&settings);
    let load = Keymap::load(settings.keymap_file.as_deref());
    let (theme, theme_warning) = match Theme::load(&settings.theme) {
        Ok(t) => (t, None),
        Err(e) => (Theme::default(), Some(format!("Theme not loaded: {e:#}"))),
    };
    let http = HttpOptions::new(Duration::from_secs(settings.request_timeout_secs.max(1)))
        .with_ca_file(settings.ca_file.clone());
    let client = ApiClient::with_options(&session.base_url, session.token.clone(), &http)?
        .with_record_number(RecordNumber {
            local_system: settings.mrn_system.clone(),
        });
    let client = match &session.bearer {
        Some(b) => client.with_bearer(b.clone()),
        None => client,
    };
    let (mut worker, mut replies) = Worker::new(client, runtime.handle().clone());
    let (match_tx, mut matches) = mpsc::unbounded_channel();
    let matcher = MatchWorker::spawn(move |m| {
        let _ = match_tx.send(m);
    });
    let (kept_tx, mut kept) = mpsc::unbounded_channel();
    let keeper = KeeperWorker::spawn(open_drafts, move |e| {
        let _ = kept_tx.send(e);
    });
    let mut app = App::new(&settings, session, load.keymap, theme, Utc::now());
    app.use_notes_library(
        crate::notes::TemplateSet::load(
            Some(std::path::Path::new(crate::notes::template::SYSTEM_DIR)),
            settings.templates_dir.as_deref(),
        ),
        crate::notes::Phrases::load(settings.phrases_file.as_deref()),
    );
    if !load.warnings.is_empty() {
        app.warn(format!("Keymap: {}", load.warnings.join("; ")));
    }
    if let Some(w) = theme_warning {
        app.warn(w);
    }
    app.start();
    let mut panic_for_test = test_panic_from_env();

    let mut guard = TerminalGuard::enter()?;
    let (key_tx, mut keys) = mpsc::unbounded_channel();
    let input = InputThread::spawn(key_tx);

    let exit = runtime.block_on(async {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let started = tokio::time::Instant::now();
        let mut drawn_once = false;
        // The screen changed since the last frame: since when.
        let mut changed_since: Option<tokio::time::Instant> = None;
        let mut last_event = started;
        loop {
            if let Some(p) = lock(&OTHER_PANIC).take() {
                // The message stays out of the log (it may quote what was
                // on screen); it is printed once the terminal is back.
                tracing::error!(thread = %p.thread, location = %p.location, "a thread panicked");
                anyhow::bail!(
                    "internal error, the session has ended: thread '{}' panicked at {}: {}",
                    p.thread,
                    p.location,
                    p.message
                );
            }
            for (id, request) in app.take_requests() {
                worker.submit(id, request);
            }
            for job in app.take_match_jobs() {
                matcher.send(job);
            }
            for effect in app.take_draft_effects() {
                keeper.send(effect);
            }
            let now = tokio::time::Instant::now();
            if app.take_dirty() {
                changed_since.get_or_insert(now);
            }
            let draw_at = changed_since.map(|since| {
                let at = (last_event + FRAME_SETTLE).min(since + FRAME_WAIT);
                if drawn_once || app.in_flight() == 0 {
                    at
                } else {
                    at.max(started + FIRST_FRAME_WAIT)
                }
            });
            if app.should_quit() {
                return anyhow::Ok(Exit::Quit);
            }
            if draw_at.is_some_and(|at| at <= now) {
                guard.terminal.draw(|f| app.render(f))?;
                drawn_once = true;
                changed_since = None;
            }
            let draw_at = changed_since.and(draw_at);
            let event = tokio::select! {
                ev = keys.recv() => match ev {
                    Some(ev) => match terminal_event(ev) {
                        Some(e) => e,
                        None => continue,
                    },
                    None => return Ok(Exit::InputClosed),
                },
                Some(done) = replies.recv() => Event::Api(done),
                Some(m) = matches.recv() => Event::Matched(m),
                Some(e) = kept.recv() => e,
                _ = tick.tick() => Event::Tick,
                _ = tokio::time::sleep_until(draw_at.unwrap_or(now)), if draw_at.is_some() => continue,
                _ = term.recv() => return Ok(Exit::Signal("SIGTERM")),
                _ = hangup.recv() => {
                    // A dropped SSH link: nobody is looking any more. The
                    // note is saved and the patient data dropped before the
                    // process goes.
                    app.lock(crate::tui::app::LockReason::HangUp);
                    return Ok(Exit::Signal("SIGHUP"));
                }
                _ = quit.recv() => return Ok(Exit::Signal("SIGQUIT")),
                _ = interrupt.recv() => return Ok(Exit::Signal("SIGINT")),
            };
            last_event = tokio::time::Instant::now();
            // Input already here is applied before the next frame.
            let mut next = Some(event);
            let mut applied = 0;
            while let Some(ev) = next.take() {
                if matches!(ev, Event::Key(_))
                    && let Some(mode) = panic_for_test.take()
                {
                    test_panic(&mode);
                }
                app.update(ev, Clock::system());
                applied += 1;
                if applied < INPUT_BATCH && !app.should_quit() {
                    next = queued_input(&mut keys);
                }
            }
        }
    });
    drop(input);
    // However the session ended, the note in the editor is saved and on
    // the disk before the process goes: a hang-up is a dropped SSH link,
    // and the next start offers the draft back.
    app.end_session();
    for (id, request) in app.take_requests() {
        worker.submit(id, request);
    }
    for effect in app.take_draft_effects() {
        keeper.send(effect);
    }
    // A draft or a signature on its way to the server gets a moment to
    // arrive (the local copy is on disk either way).
    runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + WRITES_AT_EXIT;
        while app.writes_in_flight() > 0 {
            match tokio::time::timeout_at(deadline, replies.recv()).await {
                Ok(Some(done)) => app.update(Event::Api(done), Clock::system()),
                _ => break,
            }
            // A reply may lead to the next write (a resident's signature to
            // its co-signature task).
            for (id, request) in app.take_requests() {
                worker.submit(id, request);
            }
            for effect in app.take_draft_effects() {
                keeper.send(effect);
            }
        }
    });
    // Writes whose answer never came are kept with the outbox.
    app.keep_writes_in_flight();
    for effect in app.take_draft_effects() {
        keeper.send(effect);
    }
    keeper.finish();
    drop(guard);
    if let Ok(Exit::Signal(name)) = &exit {
        tracing::info!(signal = name, "ended by a signal");
    }
    // What is still in flight now are reads, or writes given up on above
    // (their drafts are on disk and offered back at the next start).
    drop(_enter);
    runtime.shutdown_timeout(Duration::from_millis(200));
    exit
}

/// Where drafts are kept: encrypted in the user's data folder with the key
/// in the OS credential store, else in memory (the store says why).
fn open_drafts() -> Box<dyn DraftKeeper> {
    match crate::drafts::default_dir() {
        Some(dir) => Box::new(crate::drafts::DraftStore::open(&dir)),
        None => Box::new(MemoryDrafts::new(
            "no folder for them in the home directory",
        )),
    }
}

/// The next input event already received, if any.
fn queued_input(keys: &mut mpsc::UnboundedReceiver<event::Event>) -> Option<Event> {
    while let Ok(ev) = keys.try_recv() {
        if let Some(e) = terminal_event(ev) {
            return Some(e);
        }
    }
    None
}

/// What the app hears of a terminal event; `None` for those it ignores
/// (focus, mouse).
fn terminal_event(ev: event::Event) -> Option<Event> {
    match ev {
        event::Event::Key(k) => Some(Event::Key(k)),
        event::Event::Paste(text) => Some(Event::Paste(text)),
        event::Event::Resize(..) => Some(Event::Resize),
        _ => None,
    }
}
