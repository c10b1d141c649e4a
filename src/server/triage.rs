//! The portal's side of triage: a patient's new message is routed by the
//! engine (`crate::triage`) in the same transaction that stores it, so a
//! message is never stored without its queue item; overdue tasks are
//! escalated on a clock, each step a new version with who and why; and
//! `Task/$queue-stats` reports on the queues.
//!
//! The engine knows no storage: this module reads what it needs (the
//! patient's birth date, active problems and medications) and writes what
//! it decides.

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde_json::{Value, json};

use super::audit::Trail;
use super::outcome::FhirError;
use super::search;
use super::store;
use crate::fhir::codes;
use crate::triage::{self, Facts, Intake, RuleSet};

/// Who the server names as the author of what routing and escalation write.
pub const ROUTER: &str = "chartty triage";

/// Statuses of a task someone still has to work.
pub const OPEN_TASK: &str = "draft,requested,received,accepted,ready,in-progress,on-hold";

pub use crate::triage::from_patient;

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// What the engine may know about a patient, read from the store.
fn facts_of(conn: &Connection, patient: Option<&str>) -> Result<Facts, FhirError> {
    let Some(reference) = patient else {
        return Ok(Facts::default());
    };
    let Some(id) = reference.strip_prefix("Patient/") else {
        return Ok(Facts::default());
    };
    let found = store::current(conn, "Patient", id)?
        .filter(|p| !p.deleted)
        .map(|p| p.value());
    let active = |ty: &str, param: &str| -> Result<Vec<Value>, FhirError> {
        let q = [
            ("patient".to_string(), reference.to_string()),
            (param.to_string(), "active".to_string()),
        ];
        Ok(search::matching(conn, ty, &q, 500)?
            .iter()
            .map(store::Stored::value)
            .collect())
    };
    let conditions = active("Condition", "clinical-status")?;
    let medications = active("MedicationRequest", "status")?;
    Ok(triage::facts_from(
        found.as_ref(),
        &conditions,
        &medications,
    ))
}

/// The task already made from `Communication/<id>`, if any: routing is
/// done once, by whichever router gets there first.
fn routed_task(conn: &Connection, message: &str) -> Result<Option<store::Stored>, FhirError> {
    let key = format!("{}|{message}", triage::ROUTED_FROM_SYSTEM);
    Ok(
        search::matching(conn, "Task", &[("identifier".into(), key)], 1)?
            .into_iter()
            .next(),
    )
}

/// Route a stored patient message (`id`, its JSON with the id set) at
/// `now`: the task and the automatic reply are written in the caller's
/// transaction. `malformed` overrides what the engine reads: the reason a
/// message the server had to wrap did not fit.
pub fn route_message(
    conn: &Connection,
    rules: &RuleSet,
    id: &str,
    message: &Value,
    malformed: Option<String>,
    now: DateTime<Utc>,
    trail: &mut Trail,
) -> Result<Option<String>, FhirError> {
    let reference = format!("Communication/{id}");
    if routed_task(conn, &reference)?.is_some() {
        return Ok(None);
    }
    let patient = message
        .pointer("/subject/reference")
        .and_then(Value::as_str)
        .filter(|r| r.starts_with("Patient/"));
    let intake = match malformed {
        Some(reason) => Intake::Malformed {
            reason,
            patient: patient.map(str::to_string),
            reference: Some(reference.clone()),
            // The bytes as received, kept as text: urgent words in them
            // still make the item urgent.
            text: message
                .pointer("/payload/0/contentString")
                .and_then(Value::as_str)
                .map(|t| crate::fhir::sanitize::sanitize(t).into_owned())
                .unwrap_or_default(),
            claimed: None,
        },
        None => triage::read_message(message),
    };
    let facts = facts_of(conn, patient)?;
    let decision = triage::route(rules, &intake, &facts, now);
    let task = triage::task_for(message, &decision, now);
    let task_id = store::new_id();
    let s = store::write(conn, "Task", &task_id, Some(task), ms(now))?;
    trail.saw("Task", &task_id, s.version, &s.value());
    if let Some(reply) = triage::reply_for(message, &decision, now) {
        let reply_id = store::new_id();
        let r = store::write(conn, "Communication", &reply_id, Some(reply), ms(now))?;
        trail.saw("Communication", &reply_id, r.version, &r.value());
    }
    Ok(Some(task_id))
}

/// A message the patient app sent that the server cannot store as sent
/// (not JSON, not a valid Communication): kept whole, as text, for a human
/// to read, about the patient it names if that patient exists.
pub fn wrapped_message(
    conn: &Connection,
    raw: &[u8],
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Value, FhirError> {
    const KEEP: usize = 16 * 1024;
    let text = String::from_utf8_lossy(raw);
    let shown: String = text.chars().take(KEEP).collect();
    let cut = if shown.len() < text.len() {
        " (cut at 16 KB)"
    } else {
        ""
    };
    let parsed: Option<Value> = serde_json::from_slice(raw).ok();
    let patient = parsed
        .as_ref()
        .and_then(|v| v.pointer("/subject/reference"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("Patient/"))
        .filter(|id| super::params::is_valid_id(id))
        .map(str::to_string);
    let known = match &patient {
        Some(id) => store::current(conn, "Patient", id)?.is_some_and(|p| !p.deleted),
        None => false,
    };
    let mut message = json!({
        "resourceType": "Communication",
        "status": "in-progress",
        "category": [{"coding": [{"system": codes::TASK_CATEGORY_SYSTEM, "code": triage::REVIEW_QUEUE,
                                   "display": "Needs review"}]}],
        "sent": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "statusReason": {"text": format!("Did not fit the intake format: {reason}")},
        "payload": [{"contentString": format!("As received{cut}:\n{shown}")}],
    });
    if let (Some(id), true) = (patient, known) {
        let r = json!({"reference": format!("Patient/{id}")});
        message["subject"] = r.clone();
        message["sender"] = r;
    }
    Ok(message)
}

/// One escalation pass at `now`: every open task past its due time that
/// the rules would raise or move gets a new version. Returns the tasks
/// changed (`Task/<id>`), for the audit.
pub fn escalate_overdue(
    conn: &Connection,
    rules: &RuleSet,
    now: DateTime<Utc>,
) -> Result<Vec<(String, Value)>, FhirError> {
    let due = format!(
        "lt{}",
        now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let late = search::matching(
        conn,
        "Task",
        &[("status".into(), OPEN_TASK.into()), ("due".into(), due)],
        5_000,
    )?;
    let mut changed = Vec::new();
    for s in late {
        let task = s.value();
        let Some(step) = triage::escalation(rules, &task, now) else {
            continue;
        };
        let next = triage::escalate::apply(&task, &step, ROUTER, now);
        let w = store::write(conn, "Task", &s.id, Some(next), ms(now))?;
        changed.push((s.id.clone(), w.value()));
    }
    Ok(changed)
}

/// `period` of `$queue-stats`: `start/end` (dates or instants), or `7d`
/// for the last days; the last 7 days when absent.
pub fn stats_period(
    given: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), FhirError> {
    let bad = || {
        FhirError::bad_request(
            "period is start/end (dates or instants, e.g. 2026-11-01/2026-11-28) or a number of days like 7d",
        )
    };
    let Some(p) = given.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok((now - chrono::Duration::days(7), now));
    };
    if let Some(days) = p.strip_suffix('d') {
        let n: i64 = days.parse().map_err(|_| bad())?;
        if !(1..=3660).contains(&n) {
            return Err(bad());
        }
        return Ok((now - chrono::Duration::days(n), now));
    }
    let (a, b) = p.split_once('/').ok_or_else(bad)?;
    let start = crate::fhir::time::instant(a).ok_or_else(bad)?;
    // A date as the end means through that day.
    let end = match crate::fhir::time::instant(b) {
        Some(e) if b.len() == 10 => e + chrono::Duration::days(1),
        Some(e) => e,
        None => return Err(bad()),
    };
    if end <= start {
        return Err(bad());
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stats_period_is_days_or_a_range() {
        let now = crate::fhir::time::instant("2026-11-28T12:00:00Z").unwrap_or_default();
        let (s, e) = stats_period(None, now).unwrap_or_default();
        assert_eq!((e - s).num_days(), 7);
        let (s, _) = stats_period(Some("30d"), now).unwrap_or_default();
        assert_eq!((now - s).num_days(), 30);
        let (s, e) = stats_period(Some("2026-11-01/2026-11-27"), now).unwrap_or_default();
        assert_eq!(s.to_rfc3339(), "2026-11-01T00:00:00+00:00");
        assert_eq!(e.to_rfc3339(), "2026-11-28T00:00:00+00:00");
        for bad in ["0d", "x", "2026-11-05/2026-11-01", "2026-11-01", "7w"] {
            assert!(stats_period(Some(bad), now).is_err(), "{bad}");
        }
    }
}
