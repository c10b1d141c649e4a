//! Triage: turns a patient's message into a queue item. The engine knows
//! no storage and no network: it reads a `Communication` (with its
//! structured answers, a contained `QuestionnaireResponse`), a few facts
//! about the patient and the clinic's calendar, and says which queue, how
//! urgent, when due, and what to answer the patient. The portal runs it on
//! every new message; `chartty route` runs it against any FHIR R4 server.
//!
//! - [`rules`]: the routing rules, SLAs, clinic hours and reply templates,
//!   as TOML (embedded defaults in `rules/`, a site file overrides).
//! - [`calendar`]: business hours and holidays; due times from SLAs.
//! - [`intake`]: what a message says, read strictly; what does not fit is
//!   [`Intake::Malformed`] and goes to the review queue.
//! - [`engine`]: the decision, the `Task` it becomes, the automatic reply.
//! - [`escalate`]: what an overdue task becomes.
//! - [`stats`]: queue metrics over a period (`Task/$queue-stats`).
//! - [`time_count`]: minutes on a message thread → online digital E/M code.

pub mod calendar;
pub mod engine;
pub mod escalate;
pub mod inbox;
pub mod intake;
pub mod rules;
pub mod stats;
pub mod time_count;

pub use engine::{Decision, reply_for, route, task_for};
pub use escalate::{Escalation, escalation};
pub use inbox::{facts_from, from_patient};
pub use intake::{Facts, Intake, Message, read_message};
pub use rules::RuleSet;

/// `Task.identifier` system naming the message a task was routed from
/// (value `Communication/<id>`): a router creates a task conditionally on
/// it, so two routers never route one message twice.
pub const ROUTED_FROM_SYSTEM: &str = "urn:chartty:routed-from";

/// `Communication.identifier` system of an automatic reply (value
/// `reply-to/Communication/<id>`), for the same reason.
pub const AUTO_REPLY_SYSTEM: &str = "urn:chartty:auto-reply";

/// Queues that are not a role: after-hours coverage, worked by the
/// physicians; and messages that did not fit, read by a human (nurses).
pub const ONCALL_QUEUE: &str = "oncall";
pub const REVIEW_QUEUE: &str = "review";

/// Canonical URLs of the intake questionnaires (`QuestionnaireResponse.questionnaire`).
pub const SYMPTOM_QUESTIONNAIRE: &str = "urn:chartty:questionnaire:symptom";
pub const REFILL_QUESTIONNAIRE: &str = "urn:chartty:questionnaire:refill";

/// The red flags the symptom questionnaire asks explicitly (`linkId`s under
/// the `red-flags` group), with how a clinician reads them.
pub const RED_FLAGS: &[(&str, &str)] = &[
    ("chest-pain", "chest pain"),
    ("short-of-breath", "shortness of breath"),
    ("stroke-signs", "stroke signs"),
    ("suicidal-thoughts", "suicidal thoughts"),
    ("severe-bleeding", "severe bleeding"),
];

/// An RFC 3339 instant, for the tests of this module's parts.
#[cfg(test)]
pub(crate) fn test_time(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&chrono::Utc))
        .expect("test time")
}
