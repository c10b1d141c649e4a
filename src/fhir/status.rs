//! How a chart reads each resource's status: whether a record is shown as
//! what it claims (a value, an active problem, an allergy in the banner),
//! shown with a mark, or left out (and counted where it is left out).
//!
//! The rules follow how clinicians read a chart:
//! - a `cancelled` or `entered-in-error` result is not a value;
//!   `preliminary`, `amended` and `corrected` ones are, marked;
//! - a problem `refuted` or `entered-in-error` is not a problem;
//!   `active`, `recurrence` and `relapse` are active problems;
//! - an allergy `entered-in-error` or `refuted` is not an allergy, a
//!   `resolved` or `inactive` one is not in the banner, an `unconfirmed`
//!   one is marked;
//! - an `on-hold` medication is still on the list, marked held;
//! - a note `entered-in-error` is hidden (with a count), a superseded one
//!   marked.
//!
//! A record without a status (the field is required, some servers omit it)
//! is shown and marked, never hidden: a clinician would rather see a doubtful
//! record than miss a real one.

use crate::fhir::model::{
    AllergyIntolerance, CodeableConcept, Condition, DocumentReference, Encounter,
    MedicationRequest, Observation,
};

/// What the chart does with one record in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Shown as what it is.
    Show,
    /// Shown, with a word the clinician must see beside it.
    Mark(&'static str),
    /// Not shown here; the place says how many were left out and why.
    Hide(&'static str),
}

impl Verdict {
    pub fn shown(self) -> bool {
        !matches!(self, Verdict::Hide(_))
    }

    pub fn mark(self) -> Option<&'static str> {
        match self {
            Verdict::Mark(m) => Some(m),
            _ => None,
        }
    }
}

fn code(c: Option<&CodeableConcept>) -> Option<&str> {
    c?.coding.iter().find_map(|c| c.code.as_deref())
}

/// A lab or vital sign as a value (latest, trend, abnormal lists).
pub fn observation(o: &Observation) -> Verdict {
    match o.status.as_deref() {
        Some("final") => Verdict::Show,
        Some("amended") => Verdict::Mark("amended"),
        Some("corrected") => Verdict::Mark("corrected"),
        Some("preliminary") => Verdict::Mark("prelim"),
        Some("registered") => Verdict::Mark("registered"),
        Some("cancelled") => Verdict::Hide("cancelled"),
        Some("entered-in-error") => Verdict::Hide("entered in error"),
        _ => Verdict::Mark("status?"),
    }
}

/// A condition on the active problem list.
pub fn problem(c: &Condition) -> Verdict {
    match code(c.verification_status.as_ref()) {
        Some("entered-in-error") => return Verdict::Hide("entered in error"),
        Some("refuted") => return Verdict::Hide("refuted"),
        _ => {}
    }
    let verification_mark = match code(c.verification_status.as_ref()) {
        Some("unconfirmed") => Some("unconfirmed"),
        Some("provisional") => Some("provisional"),
        Some("differential") => Some("differential"),
        _ => None,
    };
    match code(c.clinical_status.as_ref()) {
        Some("active") => verification_mark.map_or(Verdict::Show, Verdict::Mark),
        Some("recurrence") => Verdict::Mark(verification_mark.unwrap_or("recurrence")),
        Some("relapse") => Verdict::Mark(verification_mark.unwrap_or("relapse")),
        Some("inactive") => Verdict::Hide("inactive"),
        Some("remission") => Verdict::Hide("in remission"),
        Some("resolved") => Verdict::Hide("resolved"),
        _ => Verdict::Mark("status?"),
    }
}

/// An allergy in the banner and the summary's allergy list.
pub fn allergy(a: &AllergyIntolerance) -> Verdict {
    match code(a.verification_status.as_ref()) {
        Some("entered-in-error") => return Verdict::Hide("entered in error"),
        Some("refuted") => return Verdict::Hide("refuted"),
        _ => {}
    }
    match code(a.clinical_status.as_ref()) {
        Some("resolved") => return Verdict::Hide("resolved"),
        Some("inactive") => return Verdict::Hide("inactive"),
        _ => {}
    }
    match code(a.verification_status.as_ref()) {
        Some("unconfirmed") => Verdict::Mark("unconfirmed"),
        Some("presumed") => Verdict::Mark("presumed"),
        _ => Verdict::Show,
    }
}

/// A medication on the active medication list.
pub fn medication(m: &MedicationRequest) -> Verdict {
    match m.status.as_deref() {
        Some("active") => Verdict::Show,
        Some("on-hold") => Verdict::Mark("held"),
        Some("draft") => Verdict::Hide("draft"),
        Some("completed") => Verdict::Hide("completed"),
        Some("stopped") => Verdict::Hide("stopped"),
        Some("cancelled") => Verdict::Hide("cancelled"),
        Some("entered-in-error") => Verdict::Hide("entered in error"),
        _ => Verdict::Mark("status?"),
    }
}

/// A note in the notes list.
pub fn note(d: &DocumentReference) -> Verdict {
    match d.status.as_deref() {
        Some("entered-in-error") => return Verdict::Hide("entered in error"),
        Some("superseded") => return Verdict::Mark("superseded"),
        Some("current") | None => {}
        Some(_) => return Verdict::Mark("status?"),
    }
    let awaiting = crate::fhir::codes::awaits_cosignature(d.extra.get("extension"));
    match d.doc_status.as_deref() {
        Some("final") | None => Verdict::Show,
        Some("preliminary") if awaiting => Verdict::Mark("awaiting co-signature"),
        Some("preliminary") => Verdict::Mark("draft"),
        Some("amended") => Verdict::Mark("amended"),
        Some("entered-in-error") => Verdict::Hide("entered in error"),
        Some(_) => Verdict::Mark("status?"),
    }
}

/// An encounter in the recent encounters.
pub fn encounter(e: &Encounter) -> Verdict {
    match e.status.as_deref() {
        Some("entered-in-error") => Verdict::Hide("entered in error"),
        Some("cancelled") => Verdict::Mark("cancelled"),
        Some("planned") => Verdict::Mark("planned"),
        _ => Verdict::Show,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn cc(code: &str) -> Value {
        json!({"coding": [{"code": code}]})
    }

    /// One line per case: (resource type, JSON fields, expected verdict).
    /// Every failing line is reported, not only the first.
    #[test]
    fn status_rules_as_a_table() {
        use Verdict::*;
        let obs = |s: Option<&str>| match s {
            Some(s) => json!({"status": s}),
            None => json!({}),
        };
        let cases: Vec<(&str, Value, Verdict)> = vec![
            ("Observation", obs(Some("final")), Show),
            ("Observation", obs(Some("amended")), Mark("amended")),
            ("Observation", obs(Some("corrected")), Mark("corrected")),
            ("Observation", obs(Some("preliminary")), Mark("prelim")),
            ("Observation", obs(Some("registered")), Mark("registered")),
            ("Observation", obs(Some("cancelled")), Hide("cancelled")),
            (
                "Observation",
                obs(Some("entered-in-error")),
                Hide("entered in error"),
            ),
            ("Observation", obs(Some("unknown")), Mark("status?")),
            ("Observation", obs(None), Mark("status?")),
            ("Condition", json!({"clinicalStatus": cc("active")}), Show),
            (
                "Condition",
                json!({"clinicalStatus": cc("recurrence")}),
                Mark("recurrence"),
            ),
            (
                "Condition",
                json!({"clinicalStatus": cc("relapse")}),
                Mark("relapse"),
            ),
            (
                "Condition",
                json!({"clinicalStatus": cc("inactive")}),
                Hide("inactive"),
            ),
            (
                "Condition",
                json!({"clinicalStatus": cc("remission")}),
                Hide("in remission"),
            ),
            (
                "Condition",
                json!({"clinicalStatus": cc("resolved")}),
                Hide("resolved"),
            ),
            (
                "Condition",
                json!({"clinicalStatus": cc("active"), "verificationStatus": cc("confirmed")}),
                Show,
            ),
            (
                "Condition",
                json!({"clinicalStatus": cc("active"), "verificationStatus": cc("unconfirmed")}),
                Mark("unconfirmed"),
            ),
            (
                "Condition",
                json!({"clinicalStatus": cc("active"), "verificationStatus": cc("provisional")}),
                Mark("provisional"),
            ),
            (
                "Condition",
                json!({"clinicalStatus": cc("active"), "verificationStatus": cc("differential")}),
                Mark("differential"),
            ),
            (
                "Condition",
                json!({"clinicalStatus": cc("active"), "verificationStatus": cc("refuted")}),
                Hide("refuted"),
            ),
            (
                "Condition",
                json!({"clinicalStatus": cc("active"), "verificationStatus": cc("entered-in-error")}),
                Hide("entered in error"),
            ),
            (
                "Condition",
                json!({"verificationStatus": cc("entered-in-error")}),
                Hide("entered in error"),
            ),
            ("Condition", json!({}), Mark("status?")),
            (
                "AllergyIntolerance",
                json!({"clinicalStatus": cc("active"), "verificationStatus": cc("confirmed")}),
                Show,
            ),
            ("AllergyIntolerance", json!({}), Show),
            (
                "AllergyIntolerance",
                json!({"clinicalStatus": cc("active"), "verificationStatus": cc("unconfirmed")}),
                Mark("unconfirmed"),
            ),
            (
                "AllergyIntolerance",
                json!({"verificationStatus": cc("presumed")}),
                Mark("presumed"),
            ),
            (
                "AllergyIntolerance",
                json!({"clinicalStatus": cc("active"), "verificationStatus": cc("refuted")}),
                Hide("refuted"),
            ),
            (
                "AllergyIntolerance",
                json!({"verificationStatus": cc("entered-in-error")}),
                Hide("entered in error"),
            ),
            (
                "AllergyIntolerance",
                json!({"clinicalStatus": cc("resolved")}),
                Hide("resolved"),
            ),
            (
                "AllergyIntolerance",
                json!({"clinicalStatus": cc("inactive")}),
                Hide("inactive"),
            ),
            ("MedicationRequest", json!({"status": "active"}), Show),
            (
                "MedicationRequest",
                json!({"status": "on-hold"}),
                Mark("held"),
            ),
            (
                "MedicationRequest",
                json!({"status": "draft"}),
                Hide("draft"),
            ),
            (
                "MedicationRequest",
                json!({"status": "completed"}),
                Hide("completed"),
            ),
            (
                "MedicationRequest",
                json!({"status": "stopped"}),
                Hide("stopped"),
            ),
            (
                "MedicationRequest",
                json!({"status": "cancelled"}),
                Hide("cancelled"),
            ),
            (
                "MedicationRequest",
                json!({"status": "entered-in-error"}),
                Hide("entered in error"),
            ),
            (
                "MedicationRequest",
                json!({"status": "unknown"}),
                Mark("status?"),
            ),
            (
                "DocumentReference",
                json!({"status": "current", "docStatus": "final"}),
                Show,
            ),
            ("DocumentReference", json!({"status": "current"}), Show),
            (
                "DocumentReference",
                json!({"status": "current", "docStatus": "preliminary"}),
                Mark("draft"),
            ),
            (
                "DocumentReference",
                json!({"status": "current", "docStatus": "preliminary",
                    "extension": [{"url": "urn:chartty:awaiting-cosignature", "valueBoolean": true}]}),
                Mark("awaiting co-signature"),
            ),
            (
                "DocumentReference",
                json!({"status": "current", "docStatus": "amended"}),
                Mark("amended"),
            ),
            (
                "DocumentReference",
                json!({"status": "superseded", "docStatus": "final"}),
                Mark("superseded"),
            ),
            (
                "DocumentReference",
                json!({"status": "entered-in-error", "docStatus": "final"}),
                Hide("entered in error"),
            ),
            (
                "DocumentReference",
                json!({"status": "current", "docStatus": "entered-in-error"}),
                Hide("entered in error"),
            ),
            ("Encounter", json!({"status": "finished"}), Show),
            (
                "Encounter",
                json!({"status": "cancelled"}),
                Mark("cancelled"),
            ),
            (
                "Encounter",
                json!({"status": "entered-in-error"}),
                Hide("entered in error"),
            ),
        ];
        let mut failures = Vec::new();
        for (i, (kind, fields, expected)) in cases.iter().enumerate() {
            let decoded = |v: &Value| -> Result<Verdict, serde_json::Error> {
                Ok(match *kind {
                    "Observation" => observation(&serde_json::from_value(v.clone())?),
                    "Condition" => problem(&serde_json::from_value(v.clone())?),
                    "AllergyIntolerance" => allergy(&serde_json::from_value(v.clone())?),
                    "MedicationRequest" => medication(&serde_json::from_value(v.clone())?),
                    "DocumentReference" => note(&serde_json::from_value(v.clone())?),
                    "Encounter" => encounter(&serde_json::from_value(v.clone())?),
                    other => panic!("no rule for {other}"),
                })
            };
            match decoded(fields) {
                Ok(got) if got == *expected => {}
                Ok(got) => failures.push(format!(
                    "case {i}: {kind} {fields}: expected {expected:?}, got {got:?}"
                )),
                Err(e) => failures.push(format!("case {i}: {kind} {fields}: {e}")),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
