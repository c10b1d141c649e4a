//! Keys to write and sign a progress note from its template, with the
//! patient's vitals and medications pulled in and two assessment choices
//! picked from a list, free text not counted: the app driven headless
//! against the demo portal over loopback HTTP, as a clinician types it.
//! Prints the count (target: 15 or fewer) and checks the note the server
//! holds afterwards, so a count for a note that was not signed is never
//! printed.
//!
//! cargo bench --bench note_keys

use std::time::Duration;

use chartty::api::ApiClient;
use chartty::config::Settings;
use chartty::roles::Role;
use chartty::server::ServerConfig;
use chartty::server::demo::DemoOptions;
use chartty::tui::headless::Headless;
use chartty::tui::keymap::Keymap;
use chartty::tui::keys::parse_keys;
use chartty::tui::theme::Theme;
use chartty::tui::{App, Session};
use chrono::{TimeZone, Utc};

const TARGET: usize = 15;

/// Keys pressed (commands) and characters of free text typed.
#[derive(Default)]
struct Count {
    keys: usize,
    text: usize,
    trail: Vec<String>,
}

impl Count {
    fn press(&mut self, h: &mut Headless, keys: &str) {
        let n = parse_keys(keys).map(|k| k.len()).unwrap_or(0);
        self.keys += n;
        self.trail.push(keys.to_string());
        if let Err(e) = h.keys(keys) {
            fail(&format!("bad key notation {keys:?}: {e}"));
        }
    }

    fn type_text(&mut self, h: &mut Headless, text: &str) {
        self.text += text.chars().count();
        self.trail.push("…".into());
        h.paste(text);
    }
}

fn fail(why: &str) -> ! {
    eprintln!("note_keys: {why}");
    std::process::exit(1)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let anchor = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let server = chartty::server::start(
        ServerConfig {
            db: dir.path().join("portal.db"),
            demo: Some(DemoOptions {
                patients: 30,
                seed: 11,
                anchor,
            }),
        },
        listener,
    )
    .await
    .expect("the demo portal starts");
    let base = server.base_url.clone();
    let token = server
        .token_for(Role::Attending)
        .unwrap_or_else(|| fail("the demo has no attending"))
        .to_string();
    let session = Session {
        base_url: base.clone(),
        token: Some(token.clone()),
        role: Some(Role::Attending),
        user: None,
        ..Session::default()
    };
    let client = ApiClient::new(&base, Some(token.clone()), Duration::from_secs(30))
        .unwrap_or_else(|e| fail(&format!("client: {e}")));
    let mut app = App::new(
        &Settings::default(),
        session,
        Keymap::defaults(),
        Theme::default(),
        anchor,
    );
    app.start();
    let mut h = Headless::new(app, client);
    h.settle().await;

    // A patient with vitals and medications on the chart (opening the chart
    // is not part of writing the note, so its keys are not counted).
    let listed = h.app.panes.search.listed().to_vec();
    let mut chosen = None;
    for (i, row) in listed.iter().enumerate().take(25) {
        let _ = h.keys("1/<c-u><esc>gg");
        for _ in 0..i {
            let _ = h.keys("j");
        }
        let _ = h.keys("<enter>");
        h.settle().await;
        let Some(chart) = h.app.chart() else { continue };
        if chart.patient.id.as_deref() == Some(row.id.as_str())
            && !chart.vitals.items.is_empty()
            && !chart.medications.items.is_empty()
        {
            chosen = Some(row.id.clone());
            break;
        }
    }
    let patient = chosen.unwrap_or_else(|| fail("no demo patient with vitals and medications"));

    let mut c = Count::default();
    c.press(&mut h, "4"); // the notes pane
    c.press(&mut h, "n"); // new note: the template picker
    c.press(&mut h, "<enter>"); // the role's first template: progress note
    c.type_text(&mut h, "Feels better, no chest pain, sleeping well.");
    c.press(&mut h, "<tab>"); // the assessment pick-list
    c.press(&mut h, "1"); // Stable
    c.press(&mut h, "2"); // Improving
    c.press(&mut h, "<enter>"); // put them in; on to the next blank
    c.type_text(&mut h, "Hypertension controlled on current dose.");
    c.press(&mut h, "<tab>"); // the follow-up pick-list
    c.press(&mut h, "2"); // 2 weeks; on to the next blank
    c.type_text(&mut h, "Continue medications, recheck BMP.");
    c.press(&mut h, "<c-s>"); // sign…
    c.press(&mut h, "y"); // …confirmed
    h.settle().await;

    if let Some(e) = h.app.panes.editor.editing.as_ref() {
        fail(&format!(
            "the note was not signed ({:?}); fields left: {}",
            h.app.panes.editor.note,
            e.fields().len()
        ));
    }
    // What the server holds: one final note with the vitals, the
    // medications and both choices.
    let url = format!("{base}/DocumentReference?patient={patient}&doc-status=final&_count=100");
    let bundle: serde_json::Value = reqwest::Client::new()
        .get(url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap_or_else(|e| fail(&format!("reading the note back: {e}")))
        .json()
        .await
        .unwrap_or_else(|e| fail(&format!("reading the note back: {e}")));
    let texts: Vec<String> = bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["resource"]["content"][0]["attachment"]["data"].as_str())
        .map(|d| {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(d)
                .unwrap_or_default();
            String::from_utf8_lossy(&bytes).into_owned()
        })
        .collect();
    let Some(note) = texts.iter().find(|t| t.contains("Feels better")) else {
        fail("the signed note is not on the server");
    };
    for part in ["Vitals", "Medications", "Stable, Improving", "2 weeks"] {
        if !note.contains(part) {
            fail(&format!("the signed note lacks {part:?}:\n{note}"));
        }
    }

    println!(
        "Progress note from its template, signed (vitals, medications, two-item assessment pick-list):"
    );
    println!(
        "  keys: {}  (target ≤ {TARGET}; {})",
        c.keys,
        if c.keys <= TARGET { "met" } else { "NOT met" }
    );
    println!("  free text typed, not counted: {} characters", c.text);
    println!("  sequence: {}", c.trail.join(" "));
}
