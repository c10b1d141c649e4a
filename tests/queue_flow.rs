//! The triage queue end to end: the real app, driven by keys, against the
//! real portal server over loopback. Every change is checked on the server.

mod common;

use std::time::{Duration, Instant};

use chartty::api::ApiClient;
use chartty::roles::Role;
use chartty::server::ServerConfig;
use chartty::tui::headless::Headless;
use chartty::tui::keymap::Keymap;
use chartty::tui::panes::PaneId;
use chartty::tui::popups::Popup;
use chartty::tui::theme::Theme;
use chartty::tui::{App, Session};
use common::{Portal, anchor, message_task, notes_of, post, screen, settings, token};
use serde_json::{Value, json};

const PATIENTS: usize = 60;
const SEED: u64 = 7;

async fn portal() -> Portal {
    common::demo_portal(PATIENTS, SEED).await
}

async fn nurse(p: &Portal) -> Headless {
    common::signed_in(p, Role::Nurse, &settings(), None).await
}

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

async fn get(p: &Portal, path: &str) -> Value {
    let resp = http()
        .get(format!("{}/{path}", p.server.base_url))
        .bearer_auth(token(p, Role::Attending))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "GET {path}: {}", resp.status());
    resp.json().await.unwrap()
}

/// The nurse's own queue rows (a nurse works the nurse queue's tasks).
fn nurse_rows(h: &Headless) -> Vec<chartty::tui::panes::tasks::QueueRow> {
    h.app
        .panes
        .tasks
        .shown()
        .into_iter()
        .filter(|r| r.queue == "nurse" && r.patient_id.is_some())
        .cloned()
        .collect()
}

use common::select_task as select;

fn notice(h: &Headless) -> String {
    h.app.notice().map(|n| n.text.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nurse_starts_on_the_queue_claims_routes_escalates_and_defers() {
    let p = portal().await;
    let mut h = nurse(&p).await;
    assert_eq!(
        h.app.focus(),
        PaneId::Tasks,
        "the nurse starts on the queue"
    );
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("5 Tasks · nurse "), "{text}");
    assert!(
        text.contains(" · review ") && text.contains(" · mine "),
        "{text}"
    );
    let rows = nurse_rows(&h);
    assert!(rows.len() >= 4, "the demo nurse queue has work: {text}");

    // Claim: owner me, in progress, a note; the next task is selected.
    let first = rows.iter().find(|r| r.owner.is_none()).unwrap().clone();
    select(&mut h, &first.task_id);
    h.keys("c").unwrap();
    h.settle().await;
    let t = get(&p, &format!("Task/{}", first.task_id)).await;
    assert_eq!(t["status"], "in-progress");
    let me = t["owner"]["reference"].as_str().unwrap().to_string();
    assert!(me.starts_with("Practitioner/"), "{t}");
    assert!(notes_of(&t).iter().any(|n| n.starts_with("Claimed")), "{t}");
    // After the router's note ("Routed by rule …"), the claim, by me.
    let claimed = t["note"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["text"].as_str().is_some_and(|x| x.starts_with("Claimed")));
    assert!(
        claimed.is_some_and(|n| n["authorReference"]["reference"] == me.as_str()),
        "{t}"
    );
    assert_ne!(
        h.app.panes.tasks.selected_row().map(|r| r.task_id.clone()),
        Some(first.task_id.clone()),
        "the next task is selected"
    );
    let row = h
        .app
        .panes
        .tasks
        .rows()
        .iter()
        .find(|r| r.task_id == first.task_id)
        .unwrap();
    assert_eq!(row.owner_label(Some(&me)), "me");
    assert!(notice(&h).starts_with("Claimed"), "{}", notice(&h));

    // Route to the front desk: picked from the list by typing.
    let second = nurse_rows(&h)
        .into_iter()
        .find(|r| r.task_id != first.task_id)
        .unwrap();
    select(&mut h, &second.task_id);
    h.keys("r").unwrap();
    assert!(matches!(h.app.popup(), Some(Popup::Picker(_))));
    h.keys("frontdesk<enter>").unwrap();
    h.settle().await;
    let t = get(&p, &format!("Task/{}", second.task_id)).await;
    assert_eq!(t["performerType"][0]["coding"][0]["code"], "frontdesk");
    assert!(t.get("owner").is_none(), "routing clears the owner: {t}");
    assert!(
        notes_of(&t)
            .iter()
            .any(|n| n.contains("to the frontdesk queue")),
        "{t}"
    );
    assert!(
        h.app
            .panes
            .tasks
            .rows()
            .iter()
            .all(|r| r.task_id != second.task_id),
        "it left the nurse's list"
    );

    // Escalate with a typed reason: attending queue, one step more urgent.
    let third = nurse_rows(&h)
        .into_iter()
        .find(|r| r.task_id != first.task_id && r.priority == "routine")
        .unwrap();
    select(&mut h, &third.task_id);
    h.keys("e").unwrap();
    h.keys("fever of 40 for three days<enter>").unwrap();
    h.settle().await;
    let t = get(&p, &format!("Task/{}", third.task_id)).await;
    assert_eq!(t["performerType"][0]["coding"][0]["code"], "attending");
    assert_eq!(t["priority"], "urgent");
    assert!(
        notes_of(&t)
            .iter()
            .any(|n| n.contains("Escalated") && n.contains("fever of 40 for three days")),
        "{t}"
    );

    // Defer by an hour (the first choice).
    let fourth = nurse_rows(&h)
        .into_iter()
        .find(|r| r.task_id != first.task_id)
        .unwrap();
    select(&mut h, &fourth.task_id);
    h.keys("z<enter>").unwrap();
    h.settle().await;
    let t = get(&p, &format!("Task/{}", fourth.task_id)).await;
    let due = chartty::fhir::time::instant(t["restriction"]["period"]["end"].as_str().unwrap());
    assert_eq!(due, Some(anchor() + chrono::Duration::hours(1)));
    assert!(notes_of(&t).iter().any(|n| n.starts_with("Deferred to")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_complete_and_complete_a_marked_set() {
    let p = portal().await;
    let mut h = nurse(&p).await;
    let rows = nurse_rows(&h);
    let with_message = rows.iter().find(|r| r.message.is_some()).unwrap().clone();

    // Reply with the first template offered.
    select(&mut h, &with_message.task_id);
    h.keys("a").unwrap();
    let Some(Popup::Picker(picker)) = h.app.popup() else {
        panic!("the reply templates are offered")
    };
    let title = picker.shown()[0].label.clone();
    h.keys("<enter>").unwrap();
    h.settle().await;
    let t = get(&p, &format!("Task/{}", with_message.task_id)).await;
    let sent = t["output"][0]["valueReference"]["reference"]
        .as_str()
        .unwrap_or_else(|| panic!("the reply is recorded on the task: {t}"))
        .to_string();
    assert!(
        notes_of(&t)
            .iter()
            .any(|n| n == &format!("Replied to the patient: {title}")),
        "{t}"
    );
    let c = get(&p, &sent).await;
    assert_eq!(c["resourceType"], "Communication");
    assert_eq!(
        c["inResponseTo"][0]["reference"].as_str(),
        with_message.message.as_deref()
    );
    assert_eq!(
        c["subject"]["reference"].as_str().map(str::to_string),
        with_message
            .patient_id
            .as_ref()
            .map(|id| format!("Patient/{id}"))
    );
    assert!(c["payload"][0]["contentString"].as_str().unwrap().len() > 20);

    // Complete it with the likely disposition.
    select(&mut h, &with_message.task_id);
    h.keys("d<enter>").unwrap();
    h.settle().await;
    let t = get(&p, &format!("Task/{}", with_message.task_id)).await;
    assert_eq!(t["status"], "completed");
    assert!(
        t["businessStatus"]["text"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    assert!(notes_of(&t).iter().any(|n| n.starts_with("Completed: ")));

    // Three marked, one key to complete them all.
    let three: Vec<String> = nurse_rows(&h)
        .into_iter()
        .take(3)
        .map(|r| r.task_id)
        .collect();
    assert_eq!(three.len(), 3);
    for id in &three {
        select(&mut h, id);
        h.keys("<space>").unwrap();
    }
    assert_eq!(h.app.panes.tasks.marked().len(), 3);
    h.keys("d").unwrap();
    h.keys("no action<enter>").unwrap();
    h.settle().await;
    for id in &three {
        let t = get(&p, &format!("Task/{id}")).await;
        assert_eq!(t["status"], "completed", "{id}");
        assert_eq!(t["businessStatus"]["text"], "No action needed");
    }
    assert!(
        notice(&h).contains("3 of 3"),
        "the message bar counts them: {}",
        notice(&h)
    );
    assert!(h.app.panes.tasks.marked().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_message_view_shows_structured_answers_and_the_thread() {
    let p = portal().await;
    let mut h = nurse(&p).await;
    let pid = nurse_rows(&h)[0].patient_id.clone().unwrap();
    let msg = post(
        &p,
        "Communication",
        &json!({"resourceType": "Communication", "status": "in-progress",
        "category": [{"coding": [{"system": "urn:chartty:task-category", "code": "clinical"}]}],
        "subject": {"reference": format!("Patient/{pid}")},
        "sent": (anchor() - chrono::Duration::minutes(20)).to_rfc3339(),
        "payload": [{"contentString": "Tight chest since breakfast"},
                    {"contentReference": {"reference": "#answers"}}],
        "contained": [common::chest_tightness_answers(8)]}),
    )
    .await;
    let msg_id = msg["id"].as_str().unwrap().to_string();
    let task = post(
        &p,
        "Task",
        &json!({"resourceType": "Task", "status": "requested", "intent": "order",
            "priority": "stat",
            "code": {"coding": [{"system": "urn:chartty:task-category", "code": "clinical"}]},
            "description": "Chest tightness, 8/10",
            "for": {"reference": format!("Patient/{pid}")},
            "focus": {"reference": format!("Communication/{msg_id}")},
            "performerType": [{"coding": [{"system": "urn:chartty:role", "code": "nurse"}]}],
            "restriction": {"period": {"end": (anchor() + chrono::Duration::minutes(40)).to_rfc3339()}}}),
    )
    .await;
    let task_id = task["id"].as_str().unwrap().to_string();
    h.keys("R").unwrap();
    h.settle().await;
    select(&mut h, &task_id);
    h.keys("<enter>").unwrap();
    h.settle().await;
    assert!(h.app.panes.tasks.viewing().is_some());
    let text = screen(&mut h, 120, 40);
    for want in [
        "Tight chest since breakfast",
        "Severity: 8 / 10",
        "Since: this morning",
        "chest pain YES",
        "shortness of breath no",
        "Thread",
        "due in 40 m",
    ] {
        assert!(text.contains(want), "{want}:\n{text}");
    }
    // `o` opens the chart of the patient of the message.
    h.keys("o").unwrap();
    h.settle().await;
    assert_eq!(
        h.app.chart().and_then(|c| c.patient.id.clone()),
        Some(pid.clone())
    );
    // Esc closes the message view.
    h.keys("5<esc>").unwrap();
    assert!(h.app.panes.tasks.viewing().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_refreshes_itself_keeping_the_selection_and_not_while_locked() {
    let p = portal().await;
    let mut h = nurse(&p).await;
    let before = h.app.panes.tasks.rows().len();
    h.keys("jj").unwrap();
    let kept = h.app.panes.tasks.selected_row().unwrap().task_id.clone();
    let pid = nurse_rows(&h)[0].patient_id.clone().unwrap();
    let stat = post(
        &p,
        "Task",
        &json!({"resourceType": "Task", "status": "requested", "intent": "order",
            "priority": "stat", "description": "New STAT: short of breath",
            "code": {"coding": [{"system": "urn:chartty:task-category", "code": "urgent"}]},
            "for": {"reference": format!("Patient/{pid}")},
            "performerType": [{"coding": [{"system": "urn:chartty:role", "code": "nurse"}]}],
            "restriction": {"period": {"end": (anchor() + chrono::Duration::minutes(30)).to_rfc3339()}}}),
    )
    .await;
    let stat_id = stat["id"].as_str().unwrap().to_string();
    let t0 = Instant::now();
    h.tick(t0 + Duration::from_secs(5));
    h.settle().await;
    assert_eq!(h.app.panes.tasks.rows().len(), before, "not before 30 s");
    h.tick(t0 + Duration::from_secs(31));
    h.settle().await;
    assert_eq!(h.app.panes.tasks.rows().len(), before + 1);
    assert_eq!(h.app.panes.tasks.rows()[0].task_id, stat_id, "STAT first");
    assert_eq!(
        h.app.panes.tasks.selected_row().map(|r| r.task_id.clone()),
        Some(kept),
        "the selection stays on the same task"
    );
    // Locked: no refresh however long it stays locked.
    h.keys("<c-l>").unwrap();
    h.settle().await;
    let asked = |h: &Headless| {
        h.sent()
            .iter()
            .filter(|s| s.path_and_query.starts_with("/fhir/Task?performer-type"))
            .count()
    };
    let n = asked(&h);
    h.tick(t0 + Duration::from_secs(200));
    h.settle().await;
    assert_eq!(asked(&h), n, "no refresh while locked");
}

/// N claimers over HTTP with the same version: one wins each round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_over_http_one_wins_the_rest_get_412() {
    let p = portal().await;
    let base = p.server.base_url.clone();
    let nurse_token = token(&p, Role::Nurse);
    let h = nurse(&p).await;
    let task_id = nurse_rows(&h)[0].task_id.clone();
    const N: usize = 8;
    for round in 0..20 {
        let current = get(&p, &format!("Task/{task_id}")).await;
        let version = current["meta"]["versionId"].as_str().unwrap().to_string();
        let mut set = tokio::task::JoinSet::new();
        for who in 0..N {
            let mut body = current.clone();
            body["owner"] = json!({"reference": format!("Practitioner/claimer-{who}")});
            body["status"] = json!("in-progress");
            let url = format!("{base}/Task/{task_id}");
            let token = nurse_token.clone();
            let version = version.clone();
            set.spawn(async move {
                let resp = reqwest::Client::new()
                    .put(url)
                    .bearer_auth(token)
                    .header("Content-Type", "application/fhir+json")
                    .header("If-Match", format!("W/\"{version}\""))
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                (who, resp.status().as_u16())
            });
        }
        let mut winners = Vec::new();
        let mut refused = 0;
        while let Some(r) = set.join_next().await {
            let (who, status) = r.unwrap();
            match status {
                200..=299 => winners.push(who),
                412 => refused += 1,
                other => panic!("round {round}: claimer {who} got {other}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(refused, N - 1, "round {round}");
        let stored = get(&p, &format!("Task/{task_id}")).await;
        assert_eq!(
            stored["owner"]["reference"],
            format!("Practitioner/claimer-{}", winners[0]),
            "round {round}: the stored owner is the winner"
        );
    }
}

/// Two nurses' apps claim the same task: one wins; the other is told who
/// has it, its row shows them, and nothing is overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nurses_claim_the_same_task_and_the_second_is_told_who_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut staff = chartty::server::demo::staff();
    staff.push(chartty::server::demo::DemoStaff {
        role: Role::Nurse,
        name: "Noor Second".into(),
        practitioner_id: "pr-nurse-2".into(),
    });
    let server = chartty::server::start_with_staff(
        ServerConfig {
            db: dir.path().join("portal.db"),
            demo: Some(chartty::server::demo::DemoOptions {
                patients: PATIENTS,
                seed: SEED,
                anchor: anchor(),
            }),
        },
        listener,
        staff,
    )
    .await
    .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let nurses: Vec<_> = server
        .users
        .iter()
        .filter(|u| u.role == Role::Nurse)
        .collect();
    assert_eq!(nurses.len(), 2, "two nurses");
    let mut a = app_with_token(&server.base_url, &nurses[0].token).await;
    let mut b = app_with_token(&server.base_url, &nurses[1].token).await;
    let task = nurse_rows(&a)
        .into_iter()
        .find(|r| r.owner.is_none())
        .unwrap();
    select(&mut a, &task.task_id);
    select(&mut b, &task.task_id);
    a.keys("c").unwrap();
    a.settle().await;
    assert!(notice(&a).starts_with("Claimed"), "{}", notice(&a));
    b.keys("c").unwrap();
    b.settle().await;
    let said = notice(&b);
    assert!(
        said.contains(&format!("taken by {}", nurses[0].name)) && said.contains("not changed"),
        "{said}"
    );
    assert!(said.contains(" at "), "says when: {said}");
    let row = b
        .app
        .panes
        .tasks
        .rows()
        .iter()
        .find(|r| r.task_id == task.task_id)
        .unwrap();
    assert_eq!(
        row.owner_label(None),
        nurses[0].name,
        "the row shows who has it"
    );
    let resp = reqwest::Client::new()
        .get(format!("{}/Task/{}", server.base_url, task.task_id))
        .bearer_auth(&nurses[0].token)
        .send()
        .await
        .unwrap();
    let stored: Value = resp.json().await.unwrap();
    assert_eq!(
        stored["owner"]["reference"].as_str(),
        Some(nurses[0].practitioner.as_str()),
        "the first claim stands"
    );
    assert_eq!(
        notes_of(&stored)
            .iter()
            .filter(|n| n.starts_with("Claimed"))
            .count(),
        1
    );
}

async fn app_with_token(base: &str, token: &str) -> Headless {
    let session = Session {
        base_url: base.to_string(),
        token: Some(token.to_string()),
        role: Some(Role::Nurse),
        ..Session::default()
    };
    let client = ApiClient::new(base, Some(token.to_string()), Duration::from_secs(30))
        .unwrap()
        .with_request_log();
    let mut app = App::new(
        &settings(),
        session,
        Keymap::defaults(),
        Theme::default(),
        anchor(),
    );
    app.start();
    let mut h = Headless::new(app, client);
    h.settle().await;
    h
}

/// The work-time entries on a task: (who, seconds).
fn work_entries(task: &Value) -> Vec<(String, u64)> {
    task["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["url"] == "urn:chartty:work-time")
        .map(|e| {
            let part = |n: &str| {
                e["extension"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["url"] == n)
                    .cloned()
                    .unwrap_or_default()
            };
            (
                part("who")["valueReference"]["reference"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                part("seconds")["valueInteger"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// The billing tasks of a patient.
async fn billing_tasks(p: &Portal, pid: &str) -> Vec<Value> {
    let b = get(p, &format!("Task?patient=Patient/{pid}&_count=200")).await;
    b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .filter(|t| t["performerType"][0]["coding"][0]["code"] == "billing")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_on_a_message_thread_is_counted_written_shown_and_billed_once() {
    let p = portal().await;
    let s = chartty::config::Settings {
        idle_lock_minutes: 0,
        ..settings()
    };
    let pid = {
        let n = nurse(&p).await;
        nurse_rows(&n)[0].patient_id.clone().unwrap()
    };
    let (_, task_id) = message_task(&p, &pid, "attending", "Rash after the new tablets").await;
    let mut h = common::signed_in(&p, Role::Attending, &s, None).await;
    h.keys("5R").unwrap();
    h.settle().await;
    let t0 = Instant::now() + Duration::from_secs(1);
    h.tick(t0);
    h.settle().await;
    select(&mut h, &task_id);
    h.keys("<enter>").unwrap();
    h.settle().await;
    // Six minutes of reading and scrolling, a key every 30 s ...
    let mut at = 0;
    for _ in 0..12 {
        at += 30;
        h.tick(t0 + Duration::from_secs(at));
        h.settle().await;
        h.keys("j").unwrap();
    }
    // ... ten minutes away (one minute counts), then ten seconds more.
    at += 600;
    h.tick(t0 + Duration::from_secs(at));
    h.settle().await;
    h.keys("k").unwrap();
    at += 10;
    h.tick(t0 + Duration::from_secs(at));
    h.settle().await;
    h.keys("gg").unwrap();
    let text = screen(&mut h, 120, 40);
    assert!(
        text.contains("Time on this patient's messages, last 7 days: 7 min (all yours)")
            && text.contains("CPT 99421 Online digital E/M, 5–10 min"),
        "{text}"
    );
    // Someone changes the task meanwhile: the write conflicts, the task
    // is read again and the time added to it once.
    let mut other = get(&p, &format!("Task/{task_id}")).await;
    other["priority"] = json!("urgent");
    let resp = http()
        .put(format!("{}/Task/{task_id}", p.server.base_url))
        .bearer_auth(token(&p, Role::Attending))
        .header("Content-Type", "application/fhir+json")
        .body(other.to_string())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    h.keys("<esc>").unwrap();
    h.settle().await;
    assert!(h.app.panes.tasks.viewing().is_none());
    let t = get(&p, &format!("Task/{task_id}")).await;
    let entries = work_entries(&t);
    assert_eq!(entries.len(), 1, "{t}");
    assert!(entries[0].0.starts_with("Practitioner/"), "{t}");
    assert_eq!(entries[0].1, 12 * 30 + 60 + 10, "{t}");
    assert_eq!(t["priority"], "urgent", "the other change is kept: {t}");

    // Open again: the line reads the time from the server.
    select(&mut h, &task_id);
    h.keys("<enter>").unwrap();
    h.settle().await;
    let text = screen(&mut h, 120, 40);
    assert!(text.contains("7 min (all yours) → CPT 99421"), "{text}");
    // Recorded for billing once, however often asked.
    h.keys("b").unwrap();
    assert!(matches!(h.app.popup(), Some(Popup::Confirm(_))));
    h.keys("y").unwrap();
    h.settle().await;
    assert!(
        notice(&h).starts_with("Recorded for billing"),
        "{}",
        notice(&h)
    );
    let bills = billing_tasks(&p, &pid).await;
    assert_eq!(bills.len(), 1, "{bills:?}");
    let bill = &bills[0];
    assert!(
        bill["description"]
            .as_str()
            .unwrap()
            .starts_with("Bill CPT 99421 (Online digital E/M, 5–10 min): 7 min over 7 days to "),
        "{bill}"
    );
    assert_eq!(bill["for"]["reference"], format!("Patient/{pid}"));
    assert_eq!(bill["code"]["coding"][0]["code"], "billing");
    assert!(
        bill["focus"]["reference"]
            .as_str()
            .unwrap()
            .starts_with("Communication/")
    );
    assert_eq!(bill["input"][0]["valueInteger"], 7);
    assert_eq!(
        bill["input"][1]["valueCodeableConcept"]["coding"][0]["code"],
        "99421"
    );
    h.keys("by").unwrap();
    h.settle().await;
    assert!(notice(&h).starts_with("Already recorded"), "{}", notice(&h));
    assert_eq!(billing_tasks(&p, &pid).await.len(), 1);

    // A nurse sees the time and the level, and cannot record it.
    let (_, nurse_task) = message_task(&p, &pid, "nurse", "Rash is spreading").await;
    let mut n = common::signed_in(&p, Role::Nurse, &s, None).await;
    select(&mut n, &nurse_task);
    n.keys("<enter>").unwrap();
    n.settle().await;
    let text = screen(&mut n, 120, 40);
    assert!(
        text.contains("7 min (you 0 min) → CPT 99421 (billed for physician time only)"),
        "{text}"
    );
    n.keys("b").unwrap();
    n.settle().await;
    assert!(n.app.popup().is_none());
    assert!(
        notice(&n).contains("billed for a physician's time"),
        "{}",
        notice(&n)
    );
    assert_eq!(billing_tasks(&p, &pid).await.len(), 1);
}
