//! What each pane looks like at 120x40 and at 80x24, pinned with snapshots.
//! Deterministic: demo population with a fixed seed and anchor, a fixed
//! clock, a fixed reported latency; the server's port is masked.

use std::time::Duration;

use chartty::api::ApiClient;
use chartty::config::Settings;
use chartty::roles::Role;
use chartty::server::ServerConfig;
use chartty::server::demo::DemoOptions;
use chartty::tui::headless::Headless;
use chartty::tui::keymap::Keymap;
use chartty::tui::theme::Theme;
use chartty::tui::{App, Session};
use chrono::{TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

const SIZES: [(u16, u16); 2] = [(120, 40), (80, 24)];

struct Screens {
    h: Headless,
    port: String,
}

impl Screens {
    fn text(&mut self, w: u16, ht: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(w, ht)).unwrap();
        self.h.render(&mut terminal).unwrap();
        let buf = terminal.backend().buffer();
        let mut out = String::new();
        for y in 0..ht {
            let mut line = String::new();
            for x in 0..w {
                line.push_str(buf[(x, y)].symbol());
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        // Same width as any ephemeral port, so nothing shifts.
        out.replace(&format!(":{}", self.port), ":XXXXX")
    }

    fn snap(&mut self, name: &str) {
        for (w, ht) in SIZES {
            let text = self.text(w, ht);
            insta::assert_snapshot!(format!("{name}_{w}x{ht}"), text);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pane_at_two_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let anchor = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let server = chartty::server::start(
        ServerConfig {
            db: dir.path().join("portal.db"),
            demo: Some(DemoOptions {
                patients: 60,
                seed: 7,
                anchor,
            }),
        },
        listener,
    )
    .await
    .unwrap();
    let token = server.token_for(Role::Nurse).map(str::to_string);
    let session = Session {
        base_url: server.base_url.clone(),
        token: token.clone(),
        role: Some(Role::Nurse),
        user: None,
    };
    let client = ApiClient::new(&server.base_url, token, Duration::from_secs(30)).unwrap();
    let mut app = App::new(
        &Settings::default(),
        session,
        Keymap::defaults(),
        Theme::default(),
        anchor,
    );
    app.start();
    let mut h = Headless::new(app, client);
    h.fixed_latency = Some(Duration::from_millis(12));
    h.settle().await;
    let mut s = Screens {
        h,
        port: server.addr.port().to_string(),
    };

    s.snap("start");

    let family: String = s.h.app.panes.search.listed()[0]
        .name
        .chars()
        .take(3)
        .collect::<String>()
        .to_lowercase();
    s.h.keys(&format!("/{family}")).unwrap();
    s.h.settle().await;
    s.snap("search");

    s.h.keys("<enter>").unwrap();
    s.h.settle().await;
    assert!(s.h.app.chart().is_some());
    s.snap("summary");

    s.h.keys("3").unwrap();
    s.snap("results");
    if let Some(i) =
        s.h.app
            .panes
            .results
            .groups()
            .iter()
            .position(|g| g.values.len() >= 2)
    {
        s.h.keys(&"j".repeat(i)).unwrap();
        s.h.keys("<enter>").unwrap();
        s.snap("results_history");
        s.h.keys("<esc>").unwrap();
    }

    s.h.keys("4").unwrap();
    s.snap("notes");
    if !s.h.app.panes.notes.notes().is_empty() {
        s.h.keys("<enter>").unwrap();
        s.snap("note_reader");
        s.h.keys("<esc>").unwrap();
    }

    s.h.keys("5").unwrap();
    s.snap("tasks");

    s.h.keys("g").unwrap();
    s.snap("which_key");
    s.h.keys("<esc>?").unwrap();
    s.snap("help");
    s.h.keys("<esc>").unwrap();

    server.stop().await;
}
