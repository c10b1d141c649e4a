//! `chartty route` against another server process over HTTP, as if that
//! server were foreign: it stores messages and does not route them (the
//! portal with `--no-routing`). Two routers at once route each message
//! exactly once; a later poll routes only what is new.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

struct Foreign {
    child: Child,
    base: String,
    attending: String,
    intake: String,
    _dir: tempfile::TempDir,
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn foreign_server() -> Foreign {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chartty"))
        .args([
            "serve",
            "--demo",
            "--patients",
            "6",
            "--no-routing",
            "--escalate-every",
            "0",
        ])
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("foreign.db"))
        .env("HOME", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    // Read on to the end: a closed pipe would stop the server at its next line.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut base, mut attending, mut intake) = (String::new(), String::new(), String::new());
    while let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(60)) {
        if let Some(u) = line.strip_prefix("serving FHIR R4 at ") {
            base = u.trim().to_string();
        } else if let Some(t) = line.strip_prefix("token attending ") {
            attending = t.trim().to_string();
        } else if let Some(t) = line.strip_prefix("token intake ") {
            intake = t.trim().to_string();
        }
        if line.starts_with("password ") {
            break;
        }
    }
    assert!(!base.is_empty() && !attending.is_empty() && !intake.is_empty());
    Foreign {
        child,
        base,
        attending,
        intake,
        _dir: dir,
    }
}

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn message(text: &str) -> Value {
    json!({
        "resourceType": "Communication",
        "status": "in-progress",
        "category": [{"coding": [{"system": "urn:chartty:task-category", "code": "scheduling"}]}],
        "subject": {"reference": "Patient/p-hostile"},
        "sender": {"reference": "Patient/p-hostile"},
        "payload": [{"contentString": text}]
    })
}

async fn post_message(f: &Foreign, text: &str) -> String {
    let r = client()
        .post(format!("{}/Communication", f.base))
        .bearer_auth(&f.intake)
        .header("content-type", "application/fhir+json")
        .body(message(text).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_string()
}

async fn search(f: &Foreign, q: &str) -> Vec<Value> {
    let v: Value = client()
        .get(format!("{}/{q}", f.base))
        .bearer_auth(&f.attending)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .collect()
}

fn router(f: &Foreign, home: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_chartty"))
        .args(["route", "--once", "--server", &f.base])
        .env("CHARTTY_TOKEN", &f.attending)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_route_each_message_once_and_a_later_poll_only_what_is_new() {
    let f = foreign_server();
    let home = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(post_message(&f, &format!("Can I move appointment {i} to a Friday?")).await);
    }
    for id in &ids {
        let q = format!("Task?identifier=urn:chartty:routed-from|Communication/{id}");
        assert!(
            search(&f, &q).await.is_empty(),
            "the server itself routes nothing"
        );
    }

    let (a, b) = (router(&f, home.path()), router(&f, home.path()));
    let (a, b) = (finish(a), finish(b));
    let routed = |out: &str| -> usize {
        out.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(usize::MAX)
    };
    assert_eq!(routed(&a) + routed(&b), ids.len(), "{a}\n{b}");

    for id in &ids {
        let q = format!("Task?identifier=urn:chartty:routed-from|Communication/{id}");
        let tasks = search(&f, &q).await;
        assert_eq!(tasks.len(), 1, "message {id}: {tasks:?}");
        assert_eq!(
            tasks[0]["performerType"][0]["coding"][0]["code"],
            "frontdesk"
        );
        let q =
            format!("Communication?identifier=urn:chartty:auto-reply|reply-to/Communication/{id}");
        assert_eq!(search(&f, &q).await.len(), 1, "one automatic reply to {id}");
    }

    let late = post_message(&f, "And one more question about parking.").await;
    let out = finish(router(&f, home.path()));
    assert_eq!(routed(&out), 1, "{out}");
    let q = format!("Task?identifier=urn:chartty:routed-from|Communication/{late}");
    assert_eq!(search(&f, &q).await.len(), 1);
}
