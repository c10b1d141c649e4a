//! The routing decision, and the resources it becomes.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::intake::{Facts, Intake};
use super::rules::RuleSet;

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Queue code (`Task.performerType`, system `fhir::codes::ROLE_SYSTEM`).
    pub queue: String,
    /// FHIR request priority: routine, urgent, asap, stat.
    pub priority: String,
    pub due: DateTime<Utc>,
    /// Category for `Task.code` (a `TASK_CATEGORIES` code, or `review`).
    pub category: String,
    /// The rule that decided, by name.
    pub rule: String,
    /// Why, for a human: "severity 9 ≥ 8", "red flag: chest pain", "after hours".
    pub reasons: Vec<String>,
    /// One line for the queue row ("Chest pain since 2 h, severity 9/10").
    pub summary: String,
    /// The automatic reply to the patient, expanded, if the rule has one.
    pub reply: Option<String>,
    pub after_hours: bool,
}

/// Route one message at `now`.
pub fn route(rules: &RuleSet, intake: &Intake, facts: &Facts, now: DateTime<Utc>) -> Decision {
    let _ = (rules, intake, facts, now);
    todo!("triage::engine::route")
}

/// The `Task` a decision becomes for `communication` (JSON), authored at
/// `now`; it carries `identifier = ROUTED_FROM_SYSTEM|Communication/<id>`.
pub fn task_for(communication: &Value, decision: &Decision, now: DateTime<Utc>) -> Value {
    let _ = (communication, decision, now);
    todo!("triage::engine::task_for")
}

/// The automatic reply (`Communication` from the clinic to the patient,
/// `inResponseTo` the message, `identifier = AUTO_REPLY_SYSTEM|…`), if any.
pub fn reply_for(communication: &Value, decision: &Decision, now: DateTime<Utc>) -> Option<Value> {
    let _ = (communication, decision, now);
    todo!("triage::engine::reply_for")
}
