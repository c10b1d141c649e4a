//! Triage in the portal, over real HTTP: the patient app's messages are
//! routed as they are stored, what does not fit reaches the review queue
//! (never refused, never lost), overdue tasks escalate with their history,
//! and `Task/$queue-stats` counts what the caller may see.

mod common;

use std::sync::Arc;

use chartty::roles::Role;
use chartty::server::demo::DemoOptions;
use chartty::server::{Options, RunningServer, ServerConfig};
use chartty::triage::{self, RuleSet};
use chrono::{Duration, Utc};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const PATIENT: &str = "p-hostile";

struct Portal {
    srv: RunningServer,
    c: Client,
    _dir: tempfile::TempDir,
}

fn rules(open: bool) -> RuleSet {
    common::clinic_rules(open)
}

async fn portal_with(rules: Option<RuleSet>) -> Portal {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let srv = chartty::server::start_with(
        ServerConfig {
            db: dir.path().join("portal.db"),
            demo: Some(DemoOptions::new(12, 3)),
        },
        listener,
        chartty::server::demo::staff(),
        Options {
            triage: rules.map(Arc::new),
            escalate_every: None,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    Portal {
        srv,
        c: Client::new(),
        _dir: dir,
    }
}

impl Portal {
    fn token(&self, role: Role) -> String {
        self.srv.token_for(role).unwrap().to_string()
    }

    async fn post_raw(&self, role: Role, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
        let r = self
            .c
            .post(format!("{}/{path}", self.srv.base_url))
            .bearer_auth(self.token(role))
            .header("content-type", "application/fhir+json")
            .body(body)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, role: Role, path: &str) -> (StatusCode, Value) {
        let r = self
            .c
            .get(format!("{}/{path}", self.srv.base_url))
            .bearer_auth(self.token(role))
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn put(&self, role: Role, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .c
            .put(format!("{}/{path}", self.srv.base_url))
            .bearer_auth(self.token(role))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// The task routed from `Communication/<id>`, as the attending sees it.
    async fn task_of(&self, message: &str) -> Option<Value> {
        let (s, b) = self
            .get(
                Role::Attending,
                &format!(
                    "Task?identifier={}|Communication/{message}",
                    triage::ROUTED_FROM_SYSTEM
                ),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let entries = b["entry"].as_array().cloned().unwrap_or_default();
        assert!(entries.len() <= 1, "one message, one task: {b}");
        entries.first().map(|e| e["resource"].clone())
    }

    async fn reply_to(&self, message: &str) -> Option<Value> {
        let (_, b) = self
            .get(
                Role::Attending,
                &format!(
                    "Communication?identifier={}|reply-to/Communication/{message}",
                    triage::AUTO_REPLY_SYSTEM
                ),
            )
            .await;
        b["entry"][0].get("resource").cloned()
    }
}

async fn read(p: &Portal, id: &str) -> Value {
    p.get(Role::Attending, &format!("Task/{id}")).await.1
}

fn queue_of(task: &Value) -> &str {
    task["performerType"][0]["coding"][0]["code"]
        .as_str()
        .unwrap_or("")
}

fn symptoms(severity: i64, flags: &[&str]) -> Value {
    let red: Vec<Value> = triage::RED_FLAGS
        .iter()
        .map(|(id, _)| json!({"linkId": id, "answer": [{"valueBoolean": flags.contains(id)}]}))
        .collect();
    json!({
        "resourceType": "Communication",
        "status": "in-progress",
        "category": [{"coding": [{"system": "urn:chartty:task-category", "code": "clinical"}]}],
        "subject": {"reference": format!("Patient/{PATIENT}")},
        "sender": {"reference": format!("Patient/{PATIENT}")},
        "contained": [{
            "resourceType": "QuestionnaireResponse", "id": "answers", "status": "completed",
            "questionnaire": triage::SYMPTOM_QUESTIONNAIRE,
            "item": [
                {"linkId": "what", "answer": [{"valueString": "Tightness in my chest, Søren's inhaler doesn't help"}]},
                {"linkId": "since", "answer": [{"valueString": "an hour"}]},
                {"linkId": "severity", "answer": [{"valueInteger": severity}]},
                {"linkId": "red-flags", "item": red}
            ]
        }],
        "payload": [{"contentReference": {"reference": "#answers"}}]
    })
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_red_flag_goes_to_the_nurse_in_hours_and_on_call_after_with_an_emergency_reply() {
    for (open, queue) in [(true, "nurse"), (false, "oncall")] {
        let p = portal_with(Some(rules(open))).await;
        let body = symptoms(6, &["chest-pain"]).to_string().into_bytes();
        let (s, stored) = p.post_raw(Role::Intake, "Communication", body).await;
        assert_eq!(s, StatusCode::CREATED, "{stored}");
        let id = id_of(&stored);
        let task = p.task_of(&id).await.expect("the message has its task");
        assert_eq!(queue_of(&task), queue, "open={open}: {task}");
        assert_eq!(task["priority"], "stat");
        assert_eq!(task["status"], "requested");
        assert_eq!(task["for"]["reference"], format!("Patient/{PATIENT}"));
        let due = chartty::fhir::time::instant(
            task["restriction"]["period"]["end"].as_str().unwrap_or(""),
        );
        let authored = chartty::fhir::time::instant(task["authoredOn"].as_str().unwrap_or(""));
        assert_eq!(
            due.zip(authored).map(|(d, a)| (d - a).num_minutes()),
            Some(60),
            "{task}"
        );
        let reply = p.reply_to(&id).await.expect("an automatic reply");
        let text = reply["payload"][0]["contentString"].as_str().unwrap_or("");
        assert!(text.contains("call emergency services now"), "{text}");
        assert_eq!(
            reply["inResponseTo"][0]["reference"],
            format!("Communication/{id}")
        );
        // The reply is the clinic's: it is not routed as a new message.
        assert!(p.task_of(&id_of(&reply)).await.is_none());
        p.srv.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_routing_a_message_is_stored_and_left_for_a_router() {
    let p = portal_with(None).await;
    let (s, stored) = p
        .post_raw(
            Role::Intake,
            "Communication",
            symptoms(3, &[]).to_string().into_bytes(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(p.task_of(&id_of(&stored)).await.is_none());
    p.srv.stop().await;
}

/// Every shape of a message that does not fit: kept (201), readable as
/// sent, and in the review queue with the reason. All failures at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_does_not_fit_reaches_the_review_queue_and_keeps_every_word() {
    let p = portal_with(Some(rules(true))).await;
    let mut no_flag = symptoms(4, &[]);
    if let Some(items) = no_flag["contained"][0]["item"][3]["item"].as_array_mut() {
        items.pop();
    }
    let mut severity_words = symptoms(4, &[]);
    severity_words["contained"][0]["item"][2]["answer"][0] = json!({"valueString": "very bad"});
    let mut no_answers = symptoms(4, &[]);
    no_answers["contained"] = json!([]);
    no_answers["payload"] = json!([{"contentString": "Dizzy since Tuesday, ł ı ễ"}]);
    let mut bad_status = symptoms(4, &[]);
    bad_status["status"] = json!("sent");
    let mut someone_else = symptoms(4, &[]);
    someone_else["sender"] = json!({"reference": "Practitioner/pr-nurse"});
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not JSON",
            b"Dear doctor, \x1b]52;c;x\x07 my head hurts".to_vec(),
            "my head hurts",
        ),
        ("a JSON list", b"[1, 2]".to_vec(), "[1, 2]"),
        (
            "an unknown status",
            bad_status.to_string().into_bytes(),
            "\"sent\"",
        ),
        (
            "sent by someone else",
            someone_else.to_string().into_bytes(),
            "pr-nurse",
        ),
        ("a red flag not asked", no_flag.to_string().into_bytes(), ""),
        (
            "severity in words",
            severity_words.to_string().into_bytes(),
            "",
        ),
        (
            "symptoms without answers",
            no_answers.to_string().into_bytes(),
            "",
        ),
    ];
    let mut failures = Vec::new();
    for (name, body, kept) in cases {
        let (s, stored) = p.post_raw(Role::Intake, "Communication", body).await;
        if s != StatusCode::CREATED {
            failures.push(format!("{name}: {s} {stored}"));
            continue;
        }
        let id = id_of(&stored);
        let (s, read) = p.get(Role::Nurse, &format!("Communication/{id}")).await;
        let text = read.to_string();
        if s != StatusCode::OK || (!kept.is_empty() && !text.contains(&kept.replace('"', "\\\""))) {
            failures.push(format!("{name}: not kept as sent: {s} {text}"));
        }
        match p.task_of(&id).await {
            Some(t) if queue_of(&t) == "review" => {
                let note = t["note"][0]["text"].as_str().unwrap_or("");
                if note.is_empty() {
                    failures.push(format!("{name}: no reason on the task {t}"));
                }
            }
            other => failures.push(format!("{name}: not in review: {other:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    p.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_patient_app_posts_messages_and_reads_nothing() {
    let p = portal_with(Some(rules(true))).await;
    let mut failures = Vec::new();
    for path in [
        format!("Patient/{PATIENT}"),
        "Communication".to_string(),
        "Task".to_string(),
        format!("Patient/{PATIENT}/_history"),
        "Task/$queue-stats".to_string(),
    ] {
        let (s, b) = p.get(Role::Intake, &path).await;
        if s != StatusCode::FORBIDDEN {
            failures.push(format!("GET {path}: {s} {b}"));
        }
    }
    let task = json!({"resourceType": "Task", "status": "requested", "intent": "order"});
    let (s, b) = p
        .post_raw(Role::Intake, "Task", task.to_string().into_bytes())
        .await;
    if s != StatusCode::FORBIDDEN {
        failures.push(format!("POST Task: {s} {b}"));
    }
    let (_, stored) = p
        .post_raw(
            Role::Intake,
            "Communication",
            symptoms(2, &[]).to_string().into_bytes(),
        )
        .await;
    let (s, b) = p
        .put(
            Role::Intake,
            &format!("Communication/{}", id_of(&stored)),
            &stored,
        )
        .await;
    if s != StatusCode::FORBIDDEN {
        failures.push(format!("PUT Communication: {s} {b}"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    p.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_task_rises_then_moves_once_and_keeps_every_step_in_its_history() {
    let p = portal_with(Some(rules(true))).await;
    let now = Utc::now();
    let task = json!({
        "resourceType": "Task", "status": "requested", "intent": "order", "priority": "routine",
        "code": {"coding": [{"system": "urn:chartty:task-category", "code": "refill"}]},
        "for": {"reference": format!("Patient/{PATIENT}")},
        "performerType": [{"coding": [{"system": "urn:chartty:role", "code": "nurse"}]}],
        "authoredOn": (now - Duration::hours(30)).to_rfc3339(),
        "restriction": {"period": {"end": (now - Duration::minutes(30)).to_rfc3339()}},
    });
    let (s, made) = p
        .post_raw(Role::Attending, "Task", task.to_string().into_bytes())
        .await;
    assert_eq!(s, StatusCode::CREATED, "{made}");
    let id = id_of(&made);

    assert!(p.srv.escalate_now(now).await.unwrap() >= 1);
    let t = read(&p, &id).await;
    assert_eq!(
        (t["priority"].as_str(), queue_of(&t)),
        (Some("urgent"), "nurse"),
        "{t}"
    );
    // Asked again at the same moment, nothing more happens to it.
    p.srv.escalate_now(now).await.unwrap();
    assert_eq!(
        read(&p, &id).await["meta"]["versionId"],
        t["meta"]["versionId"]
    );

    p.srv.escalate_now(now + Duration::hours(5)).await.unwrap();
    let t = read(&p, &id).await;
    assert_eq!(
        (t["priority"].as_str(), queue_of(&t)),
        (Some("stat"), "attending"),
        "{t}"
    );
    p.srv.escalate_now(now + Duration::hours(9)).await.unwrap();
    assert_eq!(
        queue_of(&read(&p, &id).await),
        "attending",
        "moved once only"
    );

    let (_, history) = p.get(Role::Attending, &format!("Task/{id}/_history")).await;
    let versions = history["entry"].as_array().cloned().unwrap_or_default();
    assert_eq!(versions.len(), 3, "{history}");
    let notes: Vec<String> = versions[0]["resource"]["note"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            format!(
                "{} {}",
                n["authorString"].as_str().unwrap_or(""),
                n["text"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        notes.len() >= 2 && notes.iter().all(|n| n.starts_with("chartty triage")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.contains("attending")), "{notes:?}");
    // Closed tasks never escalate.
    let mut done = read(&p, &id).await;
    done["status"] = json!("completed");
    let (s, _) = p.put(Role::Attending, &format!("Task/{id}"), &done).await;
    assert_eq!(s, StatusCode::OK);
    let before = read(&p, &id).await["meta"]["versionId"].clone();
    p.srv.escalate_now(now + Duration::hours(20)).await.unwrap();
    assert_eq!(read(&p, &id).await["meta"]["versionId"], before);
    p.srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_stats_count_the_tasks_the_caller_may_see() {
    let p = portal_with(Some(rules(true))).await;
    for sev in [2, 9] {
        p.post_raw(
            Role::Intake,
            "Communication",
            symptoms(sev, &[]).to_string().into_bytes(),
        )
        .await;
    }
    let since =
        (Utc::now() - Duration::days(30)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, all) = p
        .get(
            Role::Attending,
            &format!("Task?authored-on=ge{since}&focus:missing=false&_count=1000"),
        )
        .await;
    let (s, stats) = p.get(Role::Attending, "Task/$queue-stats?period=30d").await;
    assert_eq!(s, StatusCode::OK, "{stats}");
    let figures = triage::stats::QueueStats::from_parameters(&stats).unwrap();
    let volume: u32 = figures.queues.iter().map(|q| q.volume).sum();
    let tasks = all["entry"].as_array().map_or(0, Vec::len) as u32;
    assert!(tasks > 2, "{all}");
    assert!(
        volume >= figures.messages && figures.messages >= 2,
        "{figures:?}"
    );
    assert!(figures.reached_physician <= figures.messages);
    assert!(figures.queues.iter().any(|q| q.queue == "nurse"));

    let (s, desk) = p.get(Role::Frontdesk, "Task/$queue-stats?period=30d").await;
    assert_eq!(s, StatusCode::OK, "{desk}");
    let desk = triage::stats::QueueStats::from_parameters(&desk).unwrap();
    assert!(
        desk.queues.iter().all(|q| q.queue == "frontdesk") && !desk.queues.is_empty(),
        "{desk:?}"
    );
    let (s, _) = p
        .get(Role::Attending, "Task/$queue-stats?period=soon")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    p.srv.stop().await;
}

/// A message the server could not store as sent still says what it says:
/// urgent words make the review item urgent, with the emergency reply, and
/// after hours it goes to on-call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_message_that_says_chest_pain_is_urgent() {
    for (open, queue) in [(true, "review"), (false, "oncall")] {
        let p = portal_with(Some(rules(open))).await;
        // Valid JSON (so the patient can be read and answered), but not a
        // Communication the server can store: an unknown status.
        let body = json!({
            "resourceType": "Communication", "status": "sent",
            "subject": {"reference": format!("Patient/{PATIENT}")},
            "payload": [{"contentString": "crushing chest pain, the app crashed"}]
        })
        .to_string();
        let (s, stored) = p
            .post_raw(Role::Intake, "Communication", body.into_bytes())
            .await;
        assert_eq!(s, StatusCode::CREATED, "{stored}");
        let id = id_of(&stored);
        let task = p.task_of(&id).await.expect("routed");
        assert_eq!(
            (queue_of(&task), task["priority"].as_str()),
            (queue, Some("urgent")),
            "{task}"
        );
        let reply = p.reply_to(&id).await.expect("the patient is told at once");
        assert!(
            reply["payload"][0]["contentString"]
                .as_str()
                .is_some_and(|t| t.contains("call emergency services now")),
            "{reply}"
        );
        p.srv.stop().await;
    }
}

/// `Task/$queue-stats` inside a batch is decided like a direct request: the
/// front desk counts only its queue, the patient app nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_stats_in_a_batch_are_decided_like_a_direct_request() {
    let p = portal_with(Some(rules(true))).await;
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Task/$queue-stats?period=30d"}}
    ]});
    let (s, b) = p
        .post_raw(Role::Frontdesk, "", batch.to_string().into_bytes())
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(
        b["entry"][0]["response"]["status"]
            .as_str()
            .is_some_and(|x| x.starts_with("200")),
        "{b}"
    );
    let figures = triage::stats::QueueStats::from_parameters(&b["entry"][0]["resource"]).unwrap();
    assert!(
        figures.queues.iter().all(|q| q.queue == "frontdesk"),
        "{figures:?}"
    );
    let (s, b) = p
        .post_raw(Role::Intake, "", batch.to_string().into_bytes())
        .await;
    let status = b["entry"][0]["response"]["status"].as_str().unwrap_or("");
    assert!(
        s == StatusCode::FORBIDDEN || status.starts_with("403"),
        "{s} {b}"
    );
    p.srv.stop().await;
}
