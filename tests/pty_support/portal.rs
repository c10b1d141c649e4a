//! A portal server of the test's own for the pty tests, on a runtime of its
//! own (the tests themselves are synchronous), and what they ask of it.

use std::path::{Path, PathBuf};

use chartty::roles::Role;
use chartty::server::demo::DemoOptions;
use chartty::server::{RunningServer, ServerConfig};
use chrono::{TimeZone, Utc};
use serde_json::Value;

use super::{PtyApp, REACT};

pub const SIZE: (u16, u16) = (120, 40);

pub struct Server {
    pub runtime: tokio::runtime::Runtime,
    pub server: RunningServer,
    _db: tempfile::TempDir,
}

pub fn server() -> Server {
    server_with(chartty::server::Options::default())
}

/// With these server options (token lifetimes, the device code's pace).
pub fn server_with(options: chartty::server::Options) -> Server {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = tempfile::tempdir().unwrap();
    let server = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        chartty::server::start_with(
            ServerConfig {
                db: db.path().join("portal.db"),
                demo: Some(DemoOptions {
                    patients: 20,
                    seed: 5,
                    anchor: Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap(),
                }),
            },
            listener,
            chartty::server::demo::staff(),
            options,
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
    pub fn get(&self, path: &str) -> Value {
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

    pub fn token(&self) -> String {
        self.server.token_for(Role::Attending).unwrap().to_string()
    }

    pub fn user(&self, role: Role) -> &chartty::server::DemoUser {
        self.server.users.iter().find(|u| u.role == role).unwrap()
    }
}

pub struct Patient {
    pub id: String,
    pub family: String,
    pub given: String,
    pub mrn: String,
}

pub fn a_patient(s: &Server) -> Patient {
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

/// chartty against the server, signed in with the attending's token.
pub fn spawn(s: &Server, root: &std::sync::Arc<tempfile::TempDir>, env: &[(&str, &str)]) -> PtyApp {
    let token = s.token();
    let mut all = vec![("CHARTTY_TOKEN", token.as_str())];
    all.extend_from_slice(env);
    let args = ["--server", s.server.base_url.as_str()];
    PtyApp::spawn_in(root, &args, &all, SIZE)
}

/// Opens the patient's chart from the search box.
pub fn open_chart(app: &PtyApp, p: &Patient) {
    app.send(b"/");
    app.send(p.family.to_lowercase().as_bytes());
    app.wait_screen("the patient listed", REACT, |s| s.contains(&p.mrn));
    app.send(b"\r");
    app.wait_screen("the chart open", REACT, |s| {
        s.contains(&p.family.to_uppercase()) && s.contains("ALLERGIES")
    });
}

/// Opens a progress note in the editor and types `text`.
pub fn write_note(app: &PtyApp, text: &str) {
    app.send(b"4n");
    app.wait_screen("the template picker", REACT, |s| {
        s.contains("Progress note")
    });
    app.send(b"\r");
    app.wait_screen("the editor", REACT, |s| s.contains("SUBJECTIVE"));
    app.send(text.as_bytes());
    app.wait_screen("the typed words", REACT, |s| s.contains(text));
}

pub fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
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

/// Files under `dir` that hold any of `needles` as bytes.
pub fn files_holding(dir: &Path, needles: &[&str]) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    files_under(dir, &mut files);
    let mut found = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_default();
        for n in needles {
            if !n.is_empty() && super::find(&bytes, n.as_bytes()).is_some() {
                found.push((f.clone(), (*n).to_string()));
            }
        }
    }
    found
}
