//! Keys to work the triage queue: the app driven headless against the demo
//! portal over loopback HTTP, as a triage nurse types it. Prints
//! - the keys to claim, route and complete refill requests from the queue
//!   (each action on its own refill; target: 4 or fewer for claim + route,
//!   and each action in at most 2 keys), with the key strings;
//! - the keys to triage 20 mixed messages (claim, route, reply, complete
//!   as each needs), with the key string.
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

fn nurse_rows(h: &Headless) -> Vec<QueueRow> {
    h.app
        .panes
        .tasks
        .shown()
        .into_iter()
        .filter(|r| r.queue == "nurse" && r.patient_id.is_some())
        .cloned()
        .collect()
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

    // Claim, route and complete refill requests.
    let refills: Vec<QueueRow> = nurse_rows(&h)
        .into_iter()
        .filter(|r| r.category == "refill" && r.owner.is_none())
        .collect();
    if refills.len() < 3 {
        fail(&format!(
            "the demo nurse queue has {} open refills",
            refills.len()
        ));
    }
    let mut claim = Count::default();
    select(&mut h, &refills[0].task_id);
    claim.press(&mut h, "c");
    h.settle().await;
    let mut route = Count::default();
    select(&mut h, &refills[1].task_id);
    route.press(&mut h, "r");
    route.press(&mut h, "<enter>");
    h.settle().await;
    let mut complete = Count::default();
    select(&mut h, &refills[2].task_id);
    complete.press(&mut h, "d");
    complete.press(&mut h, "<enter>");
    h.settle().await;
    let t = task(&base, &attending, &refills[0].task_id).await;
    if t["status"] != "in-progress" || t.get("owner").is_none() {
        fail(&format!("the claim was not stored: {t}"));
    }
    let t = task(&base, &attending, &refills[1].task_id).await;
    if t["performerType"][0]["coding"][0]["code"] != "attending" {
        fail(&format!("the route was not stored: {t}"));
    }
    let t = task(&base, &attending, &refills[2].task_id).await;
    if t["status"] != "completed" || t["businessStatus"]["text"] != "Refill sent to the pharmacy" {
        fail(&format!("the completion was not stored: {t}"));
    }
    println!(
        "refill: claim {} key(s) [{}], route {} [{}] (to attending, the likely queue), complete {} [{}] (\"Refill sent to the pharmacy\")",
        claim.keys,
        claim.trail.concat(),
        route.keys,
        route.trail.concat(),
        complete.keys,
        complete.trail.concat()
    );
    println!(
        "refill: claim + route {} keys (target ≤ 4); claim + complete {} keys; claim + route + complete {} keys",
        claim.keys + route.keys,
        claim.keys + complete.keys,
        claim.keys + route.keys + complete.keys
    );

    // Triage 20 mixed messages from the top of the queue: clinical and
    // urgent ones are escalated to a physician, scheduling goes to the
    // front desk, billing to billing, results to the attending; refills
    // are claimed, answered and closed.
    let mut total = Count::default();
    let mut done = Vec::new();
    let mut by_kind: std::collections::BTreeMap<String, usize> = Default::default();
    while done.len() < 20 {
        let Some(r) = nurse_rows(&h)
            .into_iter()
            .find(|r| !done.contains(&r.task_id) && r.owner.is_none())
        else {
            break;
        };
        select(&mut h, &r.task_id);
        let before = total.keys;
        match r.category.as_str() {
            "refill" => {
                total.press(&mut h, "c");
                h.settle().await;
                select(&mut h, &r.task_id);
                total.press(&mut h, "a<enter>");
                h.settle().await;
                select(&mut h, &r.task_id);
                total.press(&mut h, "d<enter>");
            }
            "clinical" | "urgent" => total.press(&mut h, "e<enter>"),
            _ => total.press(&mut h, "r<enter>"),
        }
        h.settle().await;
        *by_kind.entry(r.category.clone()).or_default() += total.keys - before;
        let t = task(&base, &attending, &r.task_id).await;
        let stored = match r.category.as_str() {
            "refill" => t["status"] == "completed" && t["output"][0]["valueReference"].is_object(),
            _ => t["performerType"][0]["coding"][0]["code"] != "nurse",
        };
        if !stored {
            fail(&format!("{}: not stored: {t}", r.task_id));
        }
        done.push(r.task_id);
    }
    println!(
        "triage {} mixed messages: {} keys [{}]",
        done.len(),
        total.keys,
        total.trail.join(" ")
    );
    println!("keys by category: {by_kind:?}");
    server.stop().await;
}
