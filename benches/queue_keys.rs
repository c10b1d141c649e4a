//! Keys to work the triage queue: the app driven headless against the demo
//! portal over loopback HTTP, as a triage nurse types it. Prints
//! - the keys to claim, route and complete a refill request from the queue
//!   (target: 4 or fewer), with the key strings;
//! - the keys to triage 20 messages of the nurse and review queues (route,
//!   escalate, reply, complete as each needs), with the key string.
//!
//! Every count is checked against the server afterwards, so a count for a
//! change that was not stored is never printed.
//!
//! cargo bench --bench queue_keys

use std::time::Duration;

use chartty::api::ApiClient;
use chartty::config::Settings;
use chartty::roles::Role;
use chartty::server::ServerConfig;
use chartty::server::demo::DemoOptions;
use chartty::tui::headless::Headless;
use chartty::tui::keymap::Keymap;
use chartty::tui::keys::parse_keys;
use chartty::tui::panes::tasks::QueueRow;
use chartty::tui::theme::Theme;
use chartty::tui::{App, Session};
use chrono::{TimeZone, Utc};
use serde_json::Value;

#[derive(Default)]
struct Count {
    keys: usize,
    trail: Vec<String>,
}

impl Count {
    fn press(&mut self, h: &mut Headless, keys: &str) {
        self.keys += parse_keys(keys).map(|k| k.len()).unwrap_or(0);
        self.trail.push(keys.to_string());
        if let Err(e) = h.keys(keys) {
            fail(&format!("bad key notation {keys:?}: {e}"));
        }
    }
}

fn fail(why: &str) -> ! {
    eprintln!("queue_keys: {why}");
    std::process::exit(1)
}

/// Moving the selection to a task is not counted (the queue is worked top
/// down; the bench picks tasks out of order to cover every action).
fn select(h: &mut Headless, id: &str) {
    h.keys("<home>").unwrap();
    let Some(pos) = h
        .app
        .panes
        .tasks
        .shown()
        .iter()
        .position(|r| r.task_id == id)
    else {
        fail(&format!("{id} is not listed"))
    };
    for _ in 0..pos {
        h.keys("j").unwrap();
    }
}

async fn task(base: &str, token: &str, id: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}/Task/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A refill request as the patient app posts it: with the refill
/// questions answered, or as free text only.
fn refill_message(structured: bool) -> Value {
    let mut m = serde_json::json!({
        "resourceType": "Communication",
        "status": "in-progress",
        "category": [{"coding": [{"system": "urn:chartty:task-category", "code": "refill"}]}],
        "subject": {"reference": "Patient/p000002"},
        "sender": {"reference": "Patient/p000002"},
        "payload": [{"contentString": "I need my metformin refilled, I have 3 days left."}]
    });
    if structured {
        m["contained"] = serde_json::json!([{
            "resourceType": "QuestionnaireResponse", "id": "answers", "status": "completed",
            "questionnaire": chartty::triage::REFILL_QUESTIONNAIRE,
            "item": [{"linkId": "medication", "answer": [{"valueString": "metformin 500 mg"}]}]
        }]);
        if let Some(p) = m["payload"].as_array_mut() {
            p.insert(
                0,
                serde_json::json!({"contentReference": {"reference": "#answers"}}),
            );
        }
    }
    m
}

/// Post a patient's message as the patient app; its id.
async fn post_message(base: &str, token: &str, body: &Value) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/Communication"))
        .bearer_auth(token)
        .header("content-type", "application/fhir+json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap_or_default();
    v["id"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| fail(&format!("the message was not taken: {v}")))
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let anchor = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = chartty::server::start(
        ServerConfig {
            db: dir.path().join("portal.db"),
            demo: Some(DemoOptions {
                patients: 400,
                seed: 3,
                anchor,
            }),
        },
        listener,
    )
    .await
    .unwrap();
    let base = server.base_url.clone();
    let token = server.token_for(Role::Nurse).unwrap().to_string();
    let attending = server.token_for(Role::Attending).unwrap().to_string();
    let session = Session {
        base_url: base.clone(),
        token: Some(token.clone()),
        role: Some(Role::Nurse),
        ..Session::default()
    };
    let client = ApiClient::new(&base, Some(token.clone()), Duration::from_secs(30)).unwrap();
    let settings = Settings {
        time_zone: chrono_tz::Tz::UTC,
        ..Settings::default()
    };
    let mut app = App::new(
        &settings,
        session,
        Keymap::defaults(),
        Theme::default(),
        anchor,
    );
    app.start();
    let mut h = Headless::new(app, client);
    h.settle().await;

    // A refill request from the queue. One that came in with its answers is
    // routed by the rules to the nurse queue: the nurse completes it, and
    // acting on it takes it. One that came in as free text (an older app)
    // waits in the review queue: the nurse routes it into the nurse queue,
    // which takes it, and completes it. With an explicit claim first, each
    // costs one key more.
    let intake = server.token_for(Role::Intake).unwrap().to_string();
    let structured = post_message(&base, &intake, &refill_message(true)).await;
    let free_text = post_message(&base, &intake, &refill_message(false)).await;
    h.keys("R").unwrap();
    h.settle().await;
    let row_for = |h: &Headless, message: &str| -> QueueRow {
        let focus = format!("Communication/{message}");
        h.app
            .panes
            .tasks
            .shown()
            .into_iter()
            .find(|r| r.raw["focus"]["reference"] == focus.as_str())
            .cloned()
            .unwrap_or_else(|| fail(&format!("{focus} is not in the queue")))
    };
    let routed = row_for(&h, &structured);
    let review = row_for(&h, &free_text);
    if (routed.queue.as_str(), review.queue.as_str()) != ("nurse", "review") {
        fail(&format!("routed to {} and {}", routed.queue, review.queue));
    }

    let mut claim_complete = Count::default();
    select(&mut h, &routed.task_id);
    claim_complete.press(&mut h, "d");
    claim_complete.press(&mut h, "<enter>");
    h.settle().await;
    let t = task(&base, &attending, &routed.task_id).await;
    if t["status"] != "completed"
        || t["businessStatus"]["text"] != "Refill sent to the pharmacy"
        || !t["owner"]["reference"].is_string()
    {
        fail(&format!(
            "the completion was not stored as the nurse's: {t}"
        ));
    }

    let mut chain = Count::default();
    select(&mut h, &review.task_id);
    chain.press(&mut h, "r");
    chain.press(&mut h, "<enter>");
    h.settle().await;
    let t = task(&base, &attending, &review.task_id).await;
    if t["performerType"][0]["coding"][0]["code"] != "nurse" || !t["owner"]["reference"].is_string()
    {
        fail(&format!(
            "the route into the nurse queue did not take it: {t}"
        ));
    }
    select(&mut h, &review.task_id);
    chain.press(&mut h, "d");
    chain.press(&mut h, "<enter>");
    h.settle().await;
    let t = task(&base, &attending, &review.task_id).await;
    if t["status"] != "completed" {
        fail(&format!("the completion was not stored: {t}"));
    }
    println!(
        "refill routed by the rules: claim + complete {} keys [{}] (target ≤ 4; {} with an explicit claim c)",
        claim_complete.keys,
        claim_complete.trail.concat(),
        claim_complete.keys + 1
    );
    println!(
        "refill in the review queue: claim + route + complete {} keys [{}] (target ≤ 4; {} with an explicit claim c)",
        chain.keys,
        chain.trail.concat(),
        chain.keys + 1
    );

    // Triage 20 messages from the top of the nurse and review queues, as a
    // triage nurse works them: a review item is routed where it belongs, an
    // urgent one (STAT, ASAP) goes to a physician with a reason, a routine
    // symptom gets advice and is closed, a refill is sent and closed.
    let mut total = Count::default();
    let mut done = Vec::new();
    let mut by_kind: std::collections::BTreeMap<String, usize> = Default::default();
    while done.len() < 20 {
        let Some(r) = h
            .app
            .panes
            .tasks
            .shown()
            .into_iter()
            .find(|r| !done.contains(&r.task_id) && r.owner.is_none() && r.patient_id.is_some())
            .cloned()
        else {
            break;
        };
        select(&mut h, &r.task_id);
        let before = total.keys;
        let kind = if r.queue == "review" {
            "review"
        } else if matches!(r.priority.as_str(), "stat" | "asap") {
            "urgent"
        } else {
            r.category.as_str()
        };
        match kind {
            "review" | "scheduling" | "billing" | "results" => total.press(&mut h, "r<enter>"),
            "urgent" => total.press(&mut h, "e<enter>"),
            _ => {
                total.press(&mut h, "a<enter>");
                h.settle().await;
                select(&mut h, &r.task_id);
                total.press(&mut h, "d<enter>");
            }
        }
        h.settle().await;
        *by_kind.entry(kind.to_string()).or_default() += total.keys - before;
        let t = task(&base, &attending, &r.task_id).await;
        let stored = match kind {
            "review" | "scheduling" | "billing" | "results" | "urgent" => {
                t["performerType"][0]["coding"][0]["code"] != r.queue.as_str()
                    || t["owner"]["reference"].is_string()
            }
            _ => t["status"] == "completed" && t["output"][0]["valueReference"].is_object(),
        };
        if !stored {
            fail(&format!("{}: not stored: {t}", r.task_id));
        }
        done.push(r.task_id);
    }
    println!(
        "triage {} messages: {} keys [{}]",
        done.len(),
        total.keys,
        total.trail.join(" ")
    );
    println!("keys by kind: {by_kind:?}");
    server.stop().await;
}
