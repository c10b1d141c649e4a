//! What an overdue task becomes: one step up in priority and, where the
//! rules name a next queue and it is late enough, that queue. The caller
//! writes it as a new version, so the task's history keeps every step.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use super::rules::{PRIORITIES, RuleSet, priority_rank};
use crate::fhir::codes::ROLE_SYSTEM;
use crate::fhir::sanitize::sanitize;
use crate::fhir::time;

#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub priority: String,
    /// The queue it moves to, if it moves.
    pub queue: Option<String>,
    /// Why, for the task's note: "late 2 h 10 m; routine → urgent; nurse → attending".
    pub reason: String,
}

/// Task extension naming the queue a task was moved from by escalation
/// (`valueCode`). A task moves once: the next queue is the one that can
/// act on it, and a second hop would bounce it between teams.
pub const ESCALATED_FROM: &str = "urn:chartty:escalated-from";

const CLOSED: [&str; 5] = [
    "completed",
    "cancelled",
    "rejected",
    "failed",
    "entered-in-error",
];

fn queue_of(task: &Value) -> Option<&str> {
    task.get("performerType")?
        .as_array()?
        .iter()
        .filter_map(|c| c.get("coding")?.as_array())
        .flatten()
        .find(|c| c.get("system").and_then(Value::as_str) == Some(ROLE_SYSTEM))?
        .get("code")?
        .as_str()
}

fn moved_before(task: &Value) -> bool {
    task.get("extension")
        .and_then(Value::as_array)
        .is_some_and(|e| {
            e.iter()
                .any(|x| x.get("url").and_then(Value::as_str) == Some(ESCALATED_FROM))
        })
}

fn lateness(minutes: i64) -> String {
    let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    match (d, h) {
        (0, 0) => format!("{m} m"),
        (0, _) => format!("{h} h {m} m"),
        _ => format!("{d} d {h} h {m} m"),
    }
}

/// `None` when the task (JSON) is open and not late, closed, or already at
/// the top with nowhere to go.
pub fn escalation(rules: &RuleSet, task: &Value, now: DateTime<Utc>) -> Option<Escalation> {
    let status = task.get("status").and_then(Value::as_str).unwrap_or("");
    if CLOSED.contains(&status) {
        return None;
    }
    let due = task
        .get("restriction")?
        .get("period")?
        .get("end")?
        .as_str()
        .and_then(time::instant)?;
    let late = (now - due).num_minutes();
    if now <= due {
        return None;
    }
    let e = &rules.escalation;
    let target = if late >= 2 * e.step_minutes {
        "stat"
    } else if late >= e.step_minutes {
        "asap"
    } else {
        "urgent"
    };
    let current = task
        .get("priority")
        .and_then(Value::as_str)
        .unwrap_or("routine");
    let current = if PRIORITIES.contains(&current) {
        current
    } else {
        "routine"
    };
    let raise = priority_rank(target) > priority_rank(current);
    let from_queue = queue_of(task);
    let to_queue = match from_queue {
        Some(q) if late >= e.move_after_minutes && !moved_before(task) => e.next.get(q).cloned(),
        _ => None,
    };
    if !raise && to_queue.is_none() {
        return None;
    }
    let priority = if raise { target } else { current }.to_string();
    let mut reason = format!("late {}", lateness(late.max(0)));
    if raise {
        reason.push_str(&format!("; {current} → {priority}"));
    }
    if let (Some(from), Some(to)) = (from_queue, &to_queue) {
        reason.push_str(&format!("; {} → {to}", sanitize(from)));
    }
    Some(Escalation {
        priority,
        queue: to_queue,
        reason,
    })
}

/// The task with the escalation applied: priority, queue, a note saying
/// who (`by`) and why, `lastModified = now`, owner cleared when it moves.
pub fn apply(task: &Value, e: &Escalation, by: &str, now: DateTime<Utc>) -> Value {
    let mut t = task.clone();
    let at = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let Some(obj) = t.as_object_mut() else {
        return t;
    };
    obj.insert("priority".into(), json!(e.priority));
    obj.insert("lastModified".into(), json!(at));
    if let Some(q) = &e.queue {
        let from = queue_of(task).map(str::to_string);
        if from.as_deref() != Some(q.as_str()) {
            obj.insert(
                "performerType".into(),
                json!([{"coding": [{"system": ROLE_SYSTEM, "code": q}]}]),
            );
            // Whoever held it in the old queue no longer does.
            obj.remove("owner");
            if let Some(from) = from {
                let ext = obj.entry("extension").or_insert_with(|| json!([]));
                if !ext.is_array() {
                    *ext = json!([]);
                }
                if let Some(list) = ext.as_array_mut() {
                    list.retain(|x| x.get("url").and_then(Value::as_str) != Some(ESCALATED_FROM));
                    list.push(json!({"url": ESCALATED_FROM, "valueCode": from}));
                }
            }
        }
    }
    let note = json!({"authorString": sanitize(by), "time": at, "text": format!("Escalated: {}", e.reason)});
    match obj.get_mut("note").and_then(Value::as_array_mut) {
        Some(notes) => notes.push(note),
        None => {
            obj.insert("note".into(), json!([note]));
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::triage::test_time as t;

    fn task(queue: &str, priority: &str, due: &str) -> Value {
        json!({
            "resourceType": "Task", "id": "t1", "status": "requested", "priority": priority,
            "performerType": [{"coding": [{"system": ROLE_SYSTEM, "code": queue}]}],
            "owner": {"reference": "Practitioner/n1"},
            "restriction": {"period": {"end": due}},
        })
    }

    const DUE: &str = "2026-12-01T17:00:00Z";

    #[test]
    fn the_ladder_climbs_with_lateness() {
        let r = RuleSet::embedded();
        let tk = task("frontdesk", "routine", DUE);
        assert_eq!(
            escalation(&r, &tk, t("2026-12-01T16:00:00Z")),
            None,
            "not yet due"
        );
        assert_eq!(escalation(&r, &tk, t(DUE)), None, "due is not late");
        let p = |now: &str| escalation(&r, &tk, t(now)).map(|e| e.priority);
        assert_eq!(p("2026-12-01T17:01:00Z").as_deref(), Some("urgent"));
        assert_eq!(p("2026-12-01T18:59:00Z").as_deref(), Some("urgent"));
        assert_eq!(p("2026-12-01T19:00:00Z").as_deref(), Some("asap"));
        assert_eq!(p("2026-12-01T21:00:00Z").as_deref(), Some("stat"));
        let e = escalation(&r, &tk, t("2026-12-01T19:10:00Z")).expect("late");
        assert_eq!(e.reason, "late 2 h 10 m; routine → asap");
        assert_eq!(e.queue, None, "front desk has no next queue");
    }

    #[test]
    fn a_late_enough_task_moves_once_and_loses_its_owner() {
        let r = RuleSet::embedded();
        let tk = task("review", "routine", DUE);
        let now = t("2026-12-01T21:30:00Z");
        let e = escalation(&r, &tk, now).expect("late");
        assert_eq!(e.queue.as_deref(), Some("nurse"));
        assert_eq!(e.reason, "late 4 h 30 m; routine → stat; review → nurse");
        let moved = apply(&tk, &e, "chartty escalation", now);
        assert_eq!(queue_of(&moved), Some("nurse"));
        assert!(moved.get("owner").is_none());
        assert_eq!(moved["priority"], "stat");
        assert_eq!(moved["lastModified"], "2026-12-01T21:30:00Z");
        assert_eq!(moved["note"][0]["authorString"], "chartty escalation");
        assert!(
            moved["note"][0]["text"]
                .as_str()
                .is_some_and(|s| s.contains("review → nurse"))
        );
        // Idempotent: nothing more at the same moment, nor later (it moved once, it is stat).
        assert_eq!(escalation(&r, &moved, now), None);
        assert_eq!(escalation(&r, &moved, t("2026-12-02T21:30:00Z")), None);
    }

    #[test]
    fn applying_is_idempotent_for_priority_only_steps() {
        let r = RuleSet::embedded();
        let tk = task("frontdesk", "routine", DUE);
        let now = t("2026-12-01T17:30:00Z");
        let e = escalation(&r, &tk, now).expect("late");
        let once = apply(&tk, &e, "x", now);
        assert_eq!(
            once["owner"], tk["owner"],
            "the owner stays when the queue does"
        );
        assert_eq!(escalation(&r, &once, now), None);
        // Later it climbs again from where it is.
        let e2 = escalation(&r, &once, t("2026-12-01T19:30:00Z")).expect("later");
        assert_eq!(e2.reason, "late 2 h 30 m; urgent → asap");
    }

    #[test]
    fn closed_or_dateless_tasks_never_escalate() {
        let r = RuleSet::embedded();
        let late = t("2026-12-09T00:00:00Z");
        for status in [
            "completed",
            "cancelled",
            "rejected",
            "failed",
            "entered-in-error",
        ] {
            let mut tk = task("nurse", "routine", DUE);
            tk["status"] = json!(status);
            assert_eq!(escalation(&r, &tk, late), None, "{status}");
        }
        assert_eq!(escalation(&r, &json!({"status": "requested"}), late), None);
        assert_eq!(escalation(&r, &json!("nonsense"), late), None);
        let top = task("attending", "stat", DUE);
        assert_eq!(
            escalation(&r, &top, late),
            None,
            "at the top with nowhere to go"
        );
    }
}
