//! Triage end to end in the TUI against the real server: a patient's
//! message posted by the patient app is routed by the portal's rules, shows
//! up in the right queue, and is worked from there. The clinic's hours are
//! fixed by the rules the server runs (open around the clock, or closed),
//! so the routing does not depend on when the test runs.

mod common;

use std::sync::Arc;

use chartty::roles::Role;
use chartty::server::Options;
use chartty::triage;
use chartty::tui::headless::Headless;
use common::*;
use serde_json::{Value, json};

const PATIENT: &str = "p000001";

async fn portal(open: bool) -> Portal {
    demo_portal_with(
        20,
        9,
        Options {
            triage: Some(Arc::new(clinic_rules(open))),
            ..Options::default()
        },
    )
    .await
}

fn message(category: &str, answers: Value) -> Value {
    json!({
        "resourceType": "Communication",
        "status": "in-progress",
        "category": [{"coding": [{"system": "urn:chartty:task-category", "code": category}]}],
        "subject": {"reference": format!("Patient/{PATIENT}")},
        "sender": {"reference": format!("Patient/{PATIENT}")},
        "contained": [answers],
        "payload": [{"contentReference": {"reference": "#answers"}},
                    {"contentString": "Sorry to bother you, Dr. Łukasz said to write."}]
    })
}

fn chest_pain() -> Value {
    let red: Vec<Value> = triage::RED_FLAGS
        .iter()
        .map(|(id, _)| json!({"linkId": id, "answer": [{"valueBoolean": *id == "chest-pain"}]}))
        .collect();
    message(
        "clinical",
        json!({"resourceType": "QuestionnaireResponse", "id": "answers", "status": "completed",
               "questionnaire": triage::SYMPTOM_QUESTIONNAIRE,
               "item": [{"linkId": "what", "answer": [{"valueString": "Pressure in my chest"}]},
                        {"linkId": "since", "answer": [{"valueString": "20 minutes"}]},
                        {"linkId": "severity", "answer": [{"valueInteger": 6}]},
                        {"linkId": "red-flags", "item": red}]}),
    )
}

fn refill() -> Value {
    message(
        "refill",
        json!({"resourceType": "QuestionnaireResponse", "id": "answers", "status": "completed",
               "questionnaire": triage::REFILL_QUESTIONNAIRE,
               "item": [{"linkId": "medication", "answer": [{"valueString": "metformin 500 mg"}]},
                        {"linkId": "remaining", "answer": [{"valueString": "3 days"}]}]}),
    )
}

/// The row of the task routed from `message`, once the queue has reloaded.
async fn row_of(h: &mut Headless, message: &Value) -> chartty::tui::panes::tasks::QueueRow {
    h.keys("R").unwrap();
    h.settle().await;
    let focus = format!("Communication/{}", message["id"].as_str().unwrap_or(""));
    h.app
        .panes
        .tasks
        .shown()
        .into_iter()
        .find(|r| r.raw["focus"]["reference"] == focus.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{focus} is in the queue: {}", screen(h, 120, 40)))
}

use common::select_task as select;

async fn task(p: &Portal, id: &str) -> Value {
    get_as(p, Role::Attending, &format!("Task/{id}")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_hours_a_red_flag_goes_to_on_call_at_the_top_and_the_resident_takes_it() {
    let p = portal(false).await;
    let mut h = signed_in(&p, Role::Resident, &settings(), None).await;
    h.keys("5").unwrap();
    let sent = patient_message(&p, &chest_pain()).await;
    let row = row_of(&mut h, &sent).await;
    assert_eq!(
        (row.queue.as_str(), row.priority.as_str()),
        ("oncall", "stat")
    );
    // STAT first: only STAT items, due sooner, come before it.
    let shown = h.app.panes.tasks.shown();
    let at = shown
        .iter()
        .position(|r| r.task_id == row.task_id)
        .unwrap_or(usize::MAX);
    assert!(
        shown[..at]
            .iter()
            .all(|r| r.priority == "stat" && r.due <= row.due),
        "{:?}",
        shown
            .iter()
            .map(|r| (&r.priority, r.due))
            .collect::<Vec<_>>()
    );
    let text = screen(&mut h, 120, 40);
    assert!(text.contains(" · oncall "), "{text}");

    select(&mut h, &row.task_id);
    h.keys("c").unwrap();
    h.settle().await;
    let t = task(&p, &row.task_id).await;
    assert_eq!(t["status"], "in-progress", "{t}");
    assert!(
        t["owner"]["reference"]
            .as_str()
            .is_some_and(|o| o.starts_with("Practitioner/")),
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_hours_a_refill_reaches_the_nurse_who_claims_and_completes_it() {
    let p = portal(true).await;
    let mut h = signed_in(&p, Role::Nurse, &settings(), None).await;
    let sent = patient_message(&p, &refill()).await;
    let row = row_of(&mut h, &sent).await;
    assert_eq!(
        (
            row.queue.as_str(),
            row.category.as_str(),
            row.priority.as_str()
        ),
        ("nurse", "refill", "routine")
    );
    assert!(row.summary.contains("metformin"), "{}", row.summary);

    select(&mut h, &row.task_id);
    h.keys("c").unwrap();
    h.settle().await;
    select(&mut h, &row.task_id);
    h.keys("d<enter>").unwrap();
    h.settle().await;
    let t = task(&p, &row.task_id).await;
    assert_eq!(t["status"], "completed", "{t}");
    assert!(
        t["businessStatus"]["text"]
            .as_str()
            .is_some_and(|s| !s.is_empty()),
        "{t}"
    );
    let notes: Vec<&str> = t["note"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["text"].as_str())
        .collect();
    assert!(
        notes
            .first()
            .is_some_and(|n| n.starts_with("Routed by rule")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.starts_with("Claimed")), "{notes:?}");
    assert!(
        !h.app
            .panes
            .tasks
            .shown()
            .iter()
            .any(|r| r.task_id == row.task_id)
    );
}

async fn put_task(p: &Portal, task: &Value) {
    let r = reqwest::Client::new()
        .put(format!(
            "{}/Task/{}",
            p.server.base_url,
            task["id"].as_str().unwrap_or("")
        ))
        .bearer_auth(token(p, Role::Attending))
        .header("content-type", "application/fhir+json")
        .body(task.to_string())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

fn notice(h: &Headless) -> String {
    h.app.notice().map(|n| n.text.clone()).unwrap_or_default()
}

/// Claiming a task someone else has asks first; no leaves it with them,
/// yes takes it over and says whose it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taking_over_a_task_asks_first() {
    let p = portal(true).await;
    let sent = patient_message(&p, &refill()).await;
    let mut h = signed_in(&p, Role::Nurse, &settings(), None).await;
    let row = row_of(&mut h, &sent).await;
    let mut t = task(&p, &row.task_id).await;
    t["owner"] = json!({"reference": "Practitioner/pr-attending", "display": "Dr. Amara Okafor"});
    t["status"] = json!("in-progress");
    put_task(&p, &t).await;
    let row = row_of(&mut h, &sent).await;
    assert!(row.owner.is_some());

    select(&mut h, &row.task_id);
    h.keys("c").unwrap();
    let text = screen(&mut h, 120, 40);
    assert!(
        text.contains("Dr. Amara Okafor has") && text.contains("Take over? y / n"),
        "{text}"
    );
    h.keys("n").unwrap();
    h.settle().await;
    let kept = task(&p, &row.task_id).await;
    assert_eq!(
        kept["owner"]["reference"], "Practitioner/pr-attending",
        "no leaves it: {kept}"
    );

    select(&mut h, &row.task_id);
    h.keys("cy").unwrap();
    h.settle().await;
    let taken = task(&p, &row.task_id).await;
    assert_ne!(
        taken["owner"]["reference"], "Practitioner/pr-attending",
        "{taken}"
    );
    let last = taken["note"]
        .as_array()
        .and_then(|n| n.last())
        .cloned()
        .unwrap_or_default();
    assert!(
        last["text"]
            .as_str()
            .is_some_and(|t| t.contains("was with Dr. Amara Okafor")),
        "{last}"
    );
}

/// A reply whose task changed meanwhile: the patient has the reply, the
/// task is not overwritten, and the message says both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_sent_while_the_task_changed_says_it_was_sent() {
    let p = portal(true).await;
    let sent = patient_message(&p, &refill()).await;
    let mut h = signed_in(&p, Role::Nurse, &settings(), None).await;
    let row = row_of(&mut h, &sent).await;
    let mut t = task(&p, &row.task_id).await;
    t["priority"] = json!("urgent");
    put_task(&p, &t).await;

    select(&mut h, &row.task_id);
    h.keys("a<enter>").unwrap();
    h.settle().await;
    let said = notice(&h);
    assert!(
        said.contains("the reply was sent") && said.contains("not changed"),
        "{said}"
    );
    let now = task(&p, &row.task_id).await;
    assert_eq!(now["priority"], "urgent", "the other change is kept");
    let replies = get_as(
        &p,
        Role::Attending,
        &format!("Communication?patient=Patient/{PATIENT}&_count=200"),
    )
    .await;
    let to_message = replies["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["resource"]["inResponseTo"][0]["reference"]
                == format!("Communication/{}", sent["id"].as_str().unwrap_or("")).as_str()
                && e["resource"]["identifier"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i["system"] == "urn:chartty:client-id"))
        })
        .count();
    assert_eq!(to_message, 1, "the nurse's reply is with the patient once");
}

/// With a filter on, only the marked tasks on screen are acted on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_marked_task_hidden_by_a_filter_is_not_completed() {
    let p = portal(true).await;
    let first = patient_message(&p, &refill()).await;
    let second = patient_message(&p, &chest_pain()).await;
    let mut h = signed_in(&p, Role::Nurse, &settings(), None).await;
    let a = row_of(&mut h, &first).await;
    let b = row_of(&mut h, &second).await;
    for id in [&a.task_id, &b.task_id] {
        select(&mut h, id);
        h.keys(" ").unwrap();
    }
    // Only refills on screen.
    h.keys("f").unwrap();
    let refill_row = h.app.popup().is_some();
    assert!(refill_row, "the category picker is open");
    h.keys("refill<enter>").unwrap();
    assert!(
        h.app
            .panes
            .tasks
            .shown()
            .iter()
            .all(|r| r.category == "refill")
    );
    h.keys("d<enter>").unwrap();
    h.settle().await;
    assert_eq!(task(&p, &a.task_id).await["status"], "completed");
    assert_ne!(
        task(&p, &b.task_id).await["status"],
        "completed",
        "hidden by the filter"
    );
}
