//! The real terminal: a guard that restores it on every exit (and on panic),
//! file logging, and the event loop that feeds the app.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use ratatui::crossterm::event::{self, Event};
use tokio::sync::mpsc;

use crate::api::{ApiClient, Worker};
use crate::config::Settings;
use crate::tui::app::{App, Session};
use crate::tui::keymap::Keymap;
use crate::tui::theme::Theme;

/// How often the loop wakes without input (debounced search, the clock).
const TICK: Duration = Duration::from_millis(50);

/// Raw mode and the alternate screen for as long as it lives; ratatui's
/// panic hook restores the terminal before a panic message is printed.
struct TerminalGuard {
    terminal: ratatui::DefaultTerminal,
}

impl TerminalGuard {
    fn enter() -> anyhow::Result<Self> {
        let terminal = ratatui::try_init().context("cannot set up the terminal")?;
        Ok(TerminalGuard { terminal })
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
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

/// Open the TUI against `session`'s server until the user quits.
pub fn run(settings: Settings, session: Session) -> anyhow::Result<()> {
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
    )?;
    let (worker, mut replies) = Worker::new(client, runtime.handle().clone());
    let mut app = App::new(&settings, session, load.keymap, theme, Utc::now());
    if !load.warnings.is_empty() {
        app.warn(format!("Keymap: {}", load.warnings.join("; ")));
    }
    if let Some(w) = theme_warning {
        app.warn(w);
    }
    app.start();

    let mut guard = TerminalGuard::enter()?;
    let (key_tx, mut keys) = mpsc::unbounded_channel();
    // crossterm's reader blocks: it gets its own thread, which ends with the process.
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            if key_tx.send(ev).is_err() {
                break;
            }
        }
    });

    runtime.block_on(async {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            for (id, request) in app.take_requests() {
                worker.submit(id, request);
            }
            if app.take_dirty() {
                guard.terminal.draw(|f| app.render(f))?;
            }
            if app.should_quit() {
                return anyhow::Ok(());
            }
            tokio::select! {
                Some(ev) = keys.recv() => match ev {
                    Event::Key(k) => app.handle_key(k),
                    Event::Resize(..) => app.mark_dirty(),
                    _ => {}
                },
                Some(done) = replies.recv() => app.handle_completed(done),
                _ = tick.tick() => app.tick(Instant::now(), Utc::now()),
            }
        }
    })?;
    drop(guard);
    // Requests still in flight are reads: nothing is lost by not waiting.
    runtime.shutdown_timeout(Duration::from_millis(200));
    Ok(())
}
