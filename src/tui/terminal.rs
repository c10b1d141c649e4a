//! The real terminal: a guard that restores it on every exit (quit, error,
//! panic, and the signals a closed window or a dropped SSH link sends), file
//! logging, and the event loop that feeds the app.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use ratatui::crossterm::event::{self, DisableBracketedPaste, EnableBracketedPaste};
use ratatui::crossterm::execute;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::api::{ApiClient, Worker};
use crate::chart::RecordNumber;
use crate::config::Settings;
use crate::tui::app::{App, Session};
use crate::tui::event::{Clock, Event};
use crate::tui::keymap::Keymap;
use crate::tui::matcher::MatchWorker;
use crate::tui::theme::Theme;

/// How often the loop wakes without input (debounced search, the clock).
const TICK: Duration = Duration::from_millis(50);

/// Raw mode, the alternate screen and bracketed paste for as long as it
/// lives; ratatui's panic hook restores the terminal before a panic
/// message is printed.
struct TerminalGuard {
    terminal: ratatui::DefaultTerminal,
}

impl TerminalGuard {
    fn enter() -> anyhow::Result<Self> {
        let terminal = ratatui::try_init().context("cannot set up the terminal")?;
        // A paste then arrives as one event, whatever its size.
        let _ = execute!(std::io::stdout(), EnableBracketedPaste);
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        // The terminal may be gone (a hung-up link): errors are moot.
        let _ = execute!(std::io::stdout(), DisableBracketedPaste);
        ratatui::restore();
    }
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Quit,
    /// SIGTERM, SIGHUP (the terminal or SSH link went away) or SIGQUIT.
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
/// signal ends it; the terminal is restored either way.
pub fn run(settings: Settings, session: Session) -> anyhow::Result<Exit> {
    let _log = init_logging(&settings);
    let load = Keymap::load(settings.keymap_file.as_deref());
    let (theme, theme_warning) = match Theme::load(&settings.theme) {
        Ok(t) => (t, None),
        Err(e) => (Theme::default(), Some(format!("Theme not loaded: {e:#}"))),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client = ApiClient::new(
        &session.base_url,
        session.token.clone(),
        Duration::from_secs(settings.request_timeout_secs.max(1)),
    )?
    .with_record_number(RecordNumber {
        local_system: settings.mrn_system.clone(),
    });
    let _enter = runtime.enter();
    let (mut worker, mut replies) = Worker::new(client, runtime.handle().clone());
    let (match_tx, mut matches) = mpsc::unbounded_channel();
    let matcher = MatchWorker::spawn(move |m| {
        let _ = match_tx.send(m);
    });
    let mut app = App::new(&settings, session, load.keymap, theme, Utc::now());
    if !load.warnings.is_empty() {
        app.warn(format!("Keymap: {}", load.warnings.join("; ")));
    }
    if let Some(w) = theme_warning {
        app.warn(w);
    }
    app.start();
    let mut term = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut quit = signal(SignalKind::quit())?;

    let mut guard = TerminalGuard::enter()?;
    let (key_tx, mut keys) = mpsc::unbounded_channel();
    // crossterm's reader blocks: it gets its own thread, which ends with the
    // process, or when the terminal goes away.
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            if key_tx.send(ev).is_err() {
                break;
            }
        }
    });

    let exit = runtime.block_on(async {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            for (id, request) in app.take_requests() {
                worker.submit(id, request);
            }
            for job in app.take_match_jobs() {
                matcher.send(job);
            }
            if app.take_dirty() {
                guard.terminal.draw(|f| app.render(f))?;
            }
            if app.should_quit() {
                return anyhow::Ok(Exit::Quit);
            }
            let event = tokio::select! {
                ev = keys.recv() => match ev {
                    Some(event::Event::Key(k)) => Event::Key(k),
                    Some(event::Event::Paste(text)) => Event::Paste(text),
                    Some(event::Event::Resize(..)) => Event::Resize,
                    Some(_) => continue,
                    None => return Ok(Exit::InputClosed),
                },
                Some(done) = replies.recv() => Event::Api(done),
                Some(m) = matches.recv() => Event::Matched(m),
                _ = tick.tick() => Event::Tick,
                _ = term.recv() => return Ok(Exit::Signal("SIGTERM")),
                _ = hangup.recv() => return Ok(Exit::Signal("SIGHUP")),
                _ = quit.recv() => return Ok(Exit::Signal("SIGQUIT")),
            };
            app.update(event, Clock::system());
        }
    });
    drop(guard);
    if let Ok(Exit::Signal(name)) = &exit {
        tracing::info!(signal = name, "ended by a signal");
    }
    // Requests still in flight are reads: nothing is lost by not waiting.
    drop(_enter);
    runtime.shutdown_timeout(Duration::from_millis(200));
    exit
}
