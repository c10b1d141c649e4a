//! A draft survives SIGKILL: chartty on a real 120x40 pseudo-terminal,
//! against a portal server of the test's own, types a note, is killed
//! without warning, starts again and offers the draft back. Afterwards no
//! file under the session's HOME and TMPDIR holds the patient's name, MRN
//! or the typed words in plain form.

mod pty_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chartty::roles::Role;
use chartty::server::demo::DemoOptions;
use chartty::server::{RunningServer, ServerConfig};
use chrono::{TimeZone, Utc};
use pty_support::*;
use rustix::process::Signal;
use serde_json::Value;

const SIZE: (u16, u16) = (120, 40);
/// Words no demo record holds, so finding them anywhere means the draft.
const TYPED: &str = "Quixotic zebra syncope since Tuesday";

struct Server {
    runtime: tokio::runtime::Runtime,
    server: RunningServer,
    _db: tempfile::TempDir,
}

fn server() -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = tempfile::tempdir().unwrap();
    let server = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        chartty::server::start(
            ServerConfig {
                db: db.path().join("portal.db"),
                demo: Some(DemoOptions {
                    patients: 20,
                    seed: 5,
                    anchor: Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
                }),
            },
            listener,
        )
        .await
        .unwrap()
    });
    let _ = rustls::crypto::ring::default_provider().install_default();
    Server {
        runtime,
        server,
        _db: db,
    }
}

impl Server {
    fn get(&self, path: &str) -> Value {
        let url = format!("{}/{path}", self.server.base_url);
        let token = self.token();
        self.runtime.block_on(async {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    }

    fn token(&self) -> String {
        self.server.token_for(Role::Attending).unwrap().to_string()
    }
}

struct Patient {
    id: String,
    family: String,
    given: String,
    mrn: String,
}

fn a_patient(s: &Server) -> Patient {
    let b = s.get("Patient?_count=1&_sort=family");
    let p = &b["entry"][0]["resource"];
    Patient {
        id: p["id"].as_str().unwrap().to_string(),
        family: p["name"][0]["family"].as_str().unwrap().to_string(),
        given: p["name"][0]["given"][0].as_str().unwrap().to_string(),
        mrn: p["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["system"] == chartty::fhir::codes::MRN_SYSTEM)
            .and_then(|i| i["value"].as_str())
            .unwrap()
            .to_string(),
    }
}

fn spawn(s: &Server, root: &std::sync::Arc<tempfile::TempDir>) -> PtyApp {
    let token = s.token();
    let env = [("CHARTTY_TOKEN", token.as_str())];
    let args = ["--server", s.server.base_url.as_str()];
    PtyApp::spawn_in(root, &args, &env, SIZE)
}

/// Opens the patient's chart from the search box.
fn open_chart(app: &PtyApp, p: &Patient) {
    app.send(b"/");
    app.send(p.family.to_lowercase().as_bytes());
    app.wait_screen("the patient listed", REACT, |s| s.contains(&p.mrn));
    app.send(b"\r");
    app.wait_screen("the chart open", REACT, |s| {
        s.contains(&p.family.to_uppercase()) && s.contains("ALLERGIES")
    });
}

/// The server holds a draft with the typed words.
fn wait_server_draft(s: &Server, p: &Patient) {
    let deadline = Instant::now() + REACT;
    loop {
        let b = s.get(&format!(
            "DocumentReference?patient={}&doc-status=preliminary",
            p.id
        ));
        let found = b["entry"].as_array().into_iter().flatten().any(|e| {
            use base64::Engine as _;
            let data = e["resource"]["content"][0]["attachment"]["data"]
                .as_str()
                .unwrap_or("");
            let text = base64::engine::general_purpose::STANDARD
                .decode(data)
                .unwrap_or_default();
            String::from_utf8_lossy(&text).contains(TYPED)
        });
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the draft never reached the server"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => files_under(&path, out),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

#[test]
fn a_draft_typed_before_sigkill_is_offered_back_and_nothing_is_on_disk_in_plain() {
    let s = server();
    let p = a_patient(&s);

    let root = new_root();
    let mut app = spawn(&s, &root);
    app.wait_patients();
    open_chart(&app, &p);
    app.send(b"4n");
    app.wait_screen("the template picker", REACT, |s| {
        s.contains("Progress note")
    });
    app.send(b"\r");
    app.wait_screen("the editor", REACT, |s| s.contains("SUBJECTIVE"));
    app.send(TYPED.as_bytes());
    app.wait_screen("the typed words", REACT, |s| s.contains(TYPED));
    // Two quiet seconds later it is saved, here and on the server.
    app.wait_screen("the draft saved", REACT, |s| s.contains(" · saved "));
    wait_server_draft(&s, &p);
    app.signal(Signal::KILL);
    app.wait_exit(EXIT);
    drop(app);

    // The next start offers it back when the chart opens: the local copy
    // where a credential store keeps the key, else the server's.
    let mut kept = Vec::new();
    files_under(&root.path().join("data"), &mut kept);
    let kept_here = kept
        .iter()
        .any(|f| f.extension().is_some_and(|e| e == "draft"));
    let mut app = spawn(&s, &root);
    app.wait_patients();
    if kept_here {
        // The copy on this machine is what comes back, said at start.
        app.wait_screen("the kept draft announced", REACT, |s| {
            s.contains("unsigned draft(s) kept from before")
        });
    }
    open_chart(&app, &p);
    app.wait_screen("the draft offered back", REACT, |s| {
        s.contains("is back in the editor")
    });
    app.send(b"6");
    app.wait_screen("the draft in the editor, as typed", REACT, |s| {
        s.contains(TYPED) && s.contains("SUBJECTIVE")
    });
    // It reopened on the first field left, the assessment list: Esc closes
    // the list, a second Esc leaves the editor; then quit.
    app.send(b"\x1b");
    std::thread::sleep(Duration::from_millis(300));
    app.send(b"\x1b");
    app.wait_screen("the notes pane", REACT, |s| s.contains("┏ 4 Notes"));
    // Nothing is unsaved (leaving the editor saved it): q quits at once.
    app.send(b"q");
    let status = app.wait_exit(EXIT);
    assert!(status.success(), "{status:?}");
    drop(app);

    // Nothing in plain under HOME, TMPDIR and the XDG folders.
    let mut files = Vec::new();
    files_under(root.path(), &mut files);
    let needles = [
        p.family.as_str(),
        p.given.as_str(),
        p.mrn.as_str(),
        TYPED,
        "Quixotic",
    ];
    let mut found = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        for n in needles {
            if find(&bytes, n.as_bytes()).is_some() {
                found.push(format!("{} holds {n:?}", f.display()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "plain patient data on disk:\n{}",
        found.join("\n")
    );
    // The session did write files (the log at least): the scan saw them.
    assert!(!files.is_empty(), "no files written at all?");
    let drafts: Vec<_> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "draft"))
        .collect();
    eprintln!(
        "{} files scanned; {} encrypted draft file(s) (none: no credential store here, the server's copy was offered)",
        files.len(),
        drafts.len()
    );
}
