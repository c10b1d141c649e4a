//! What a patient's message says, read strictly from the intake format
//! (see docs/triage.md): a category, for symptoms a contained
//! `QuestionnaireResponse` (what, since when, severity 0–10, each red flag
//! answered yes or no), for refills the medication. A message that does not
//! fit is not guessed at: it is [`Intake::Malformed`] with the reason.

use chrono::NaiveDate;
use serde_json::Value;

/// A message that fits the intake format.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Message {
    /// `Communication/<id>`, when the message has an id.
    pub reference: Option<String>,
    /// `Patient/<id>` the message is about.
    pub patient: String,
    /// One of `fhir::codes::TASK_CATEGORIES`.
    pub category: String,
    /// Free text the patient wrote (payload strings joined), sanitised.
    pub text: String,
    /// Symptom questionnaire: what, since when, severity 0–10.
    pub symptom: Option<String>,
    pub since: Option<String>,
    pub severity: Option<u8>,
    /// `linkId`s of red flags answered yes (subset of [`super::RED_FLAGS`]).
    pub red_flags: Vec<String>,
    /// Refill: the medication asked for.
    pub medication: Option<String>,
    /// When the patient sent it (`Communication.sent`), if given.
    pub sent: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    Message(Message),
    /// Why it does not fit, for the review queue; the patient and the
    /// message reference when they could be read.
    Malformed {
        reason: String,
        patient: Option<String>,
        reference: Option<String>,
    },
}

/// What the engine may know about the patient besides the message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    pub birth_date: Option<NaiveDate>,
    /// Active problems, as displayed (and their codes), any case.
    pub problems: Vec<String>,
    /// Active medications, as displayed, any case.
    pub medications: Vec<String>,
}

/// Read a `Communication` (JSON) as sent by intake.
pub fn read_message(communication: &Value) -> Intake {
    let _ = communication;
    todo!("triage::intake::read_message")
}
