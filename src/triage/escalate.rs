//! What an overdue task becomes: one step up in priority and, where the
//! rules name a next queue and it is late enough, that queue. The caller
//! writes it as a new version, so the task's history keeps every step.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::rules::RuleSet;

#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub priority: String,
    /// The queue it moves to, if it moves.
    pub queue: Option<String>,
    /// Why, for the task's note: "late 2 h 10 m; routine → urgent; nurse → attending".
    pub reason: String,
}

/// `None` when the task (JSON) is open and not late, closed, or already at
/// the top with nowhere to go.
pub fn escalation(rules: &RuleSet, task: &Value, now: DateTime<Utc>) -> Option<Escalation> {
    let _ = (rules, task, now);
    todo!("triage::escalate::escalation")
}

/// The task with the escalation applied: priority, queue, a note saying
/// who (`by`) and why, `lastModified = now`, owner cleared when it moves.
pub fn apply(task: &Value, e: &Escalation, by: &str, now: DateTime<Utc>) -> Value {
    let _ = (task, e, by, now);
    todo!("triage::escalate::apply")
}
