//! Which messages are routed, and the patient facts the engine reads, the
//! same for the portal (from its store) and for `chartty route` (from any
//! FHIR server).

use serde_json::Value;

use super::Facts;

/// A patient's own message, waiting for the clinic: sent by the Patient it
/// is about, open, not a reply. Replies of the clinic and messages between
/// staff are not routed.
pub fn from_patient(message: &Value) -> bool {
    let reference = |field: &str| {
        message
            .get(field)
            .and_then(|v| v.get("reference"))
            .and_then(Value::as_str)
    };
    let sender = reference("sender");
    sender.is_some_and(|s| s.starts_with("Patient/"))
        && sender == reference("subject")
        && message.get("status").and_then(Value::as_str) == Some("in-progress")
        && message.get("inResponseTo").is_none()
}

/// Facts from a `Patient` and its active `Condition`s and
/// `MedicationRequest`s (JSON, as any server returns them).
pub fn facts_from(patient: Option<&Value>, conditions: &[Value], medications: &[Value]) -> Facts {
    Facts {
        birth_date: patient
            .and_then(|p| p.get("birthDate"))
            .and_then(Value::as_str)
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok()),
        problems: conditions
            .iter()
            .flat_map(|c| labels(c.get("code")))
            .collect(),
        medications: medications
            .iter()
            .flat_map(|m| labels(m.get("medicationCodeableConcept")))
            .collect(),
    }
}

/// The text, displays and codes of a CodeableConcept.
fn labels(concept: Option<&Value>) -> Vec<String> {
    let Some(c) = concept else {
        return Vec::new();
    };
    let mut out: Vec<String> = c
        .get("text")
        .and_then(Value::as_str)
        .map(str::to_string)
        .into_iter()
        .collect();
    for coding in c
        .get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for key in ["display", "code"] {
            if let Some(s) = coding.get(key).and_then(Value::as_str) {
                out.push(s.to_string());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_a_patients_own_open_message_is_routed() {
        let mine = json!({"status": "in-progress", "sender": {"reference": "Patient/a"},
                          "subject": {"reference": "Patient/a"}});
        assert!(from_patient(&mine));
        let mut reply = mine.clone();
        reply["inResponseTo"] = json!([{"reference": "Communication/x"}]);
        assert!(!from_patient(&reply));
        let staff = json!({"status": "in-progress", "sender": {"reference": "Practitioner/n"},
                           "subject": {"reference": "Patient/a"}});
        assert!(!from_patient(&staff));
        let other = json!({"status": "in-progress", "sender": {"reference": "Patient/b"},
                           "subject": {"reference": "Patient/a"}});
        assert!(!from_patient(&other));
        let done = json!({"status": "completed", "sender": {"reference": "Patient/a"},
                          "subject": {"reference": "Patient/a"}});
        assert!(!from_patient(&done));
    }

    #[test]
    fn facts_read_birth_date_problems_and_drugs() {
        let p = json!({"birthDate": "2025-03-01"});
        let c = [
            json!({"code": {"text": "Atrial fibrillation", "coding": [{"code": "49436004", "display": "AF"}]}}),
        ];
        let m = [json!({"medicationCodeableConcept": {"coding": [{"display": "warfarin 5 mg"}]}})];
        let f = facts_from(Some(&p), &c, &m);
        assert_eq!(
            f.birth_date.map(|d| d.to_string()).as_deref(),
            Some("2025-03-01")
        );
        assert_eq!(f.problems, ["Atrial fibrillation", "AF", "49436004"]);
        assert_eq!(f.medications, ["warfarin 5 mg"]);
        let none = facts_from(Some(&json!({"birthDate": "03/01/2025"})), &[], &[]);
        assert_eq!(none, Facts::default());
    }
}
