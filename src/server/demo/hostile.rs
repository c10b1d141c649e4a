//! One patient whose record is an attack on the terminal that shows it.
//!
//! Every demo clinic holds the same one, whatever its seed or size, so that a
//! test or a person can always find it (search `Zzyzx`) and see that the
//! client shows the hostile characters as markers instead of obeying them.
//! The server stores the text exactly as given: neutralising it is the
//! client's work, where the text is decoded.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Value, json};

use super::json::{coding, concept, day, instant, reference, reference_named};
use super::staff::{organization_ref, practitioner_ref};
use crate::fhir::codes;
use crate::roles::Role;

pub(crate) const PATIENT_ID: &str = "p-hostile";
/// Nine digits: never one of the eight-digit record numbers of the others.
pub(crate) const MRN: &str = "900000001";

/// What a search finds the patient by.
pub(crate) const FAMILY_PREFIX: &str = "Zzyzx";
/// A screen clear and an OSC 0 window title set, in the family name.
pub(crate) const FAMILY: &str = "Zzyzx\u{1b}[2J\u{1b}]0;pwned\u{7}";
/// A zero-width joiner inside the given name.
pub(crate) const GIVEN: &str = "Mal\u{200d}lory";
/// A right-to-left override that makes the allergy read "Amoxicillin none".
pub(crate) const ALLERGY_TEXT: &str = "Amoxicillin \u{202e}enon";
/// OSC 52: a clipboard write of `echo pwned`, which a terminal that allows
/// it performs silently.
pub(crate) const CLIPBOARD_WRITE: &str = "\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}";
/// A C1 CSI (U+009B), which some terminals read as `ESC [`, clearing the screen.
pub(crate) const C1_CLEAR: &str = "\u{9b}2J";

fn name_text() -> String {
    format!("{GIVEN} {FAMILY}")
}

/// The patient's resources, Patient first; every reference points at this
/// patient or at the shared clinic resources.
pub(crate) fn resources(anchor: DateTime<Utc>) -> Vec<Value> {
    let name = name_text();
    let patient = reference_named("Patient", PATIENT_ID, &name);
    let birth = NaiveDate::from_ymd_opt(1971, 4, 1).unwrap_or_default();
    let sent = anchor - Duration::minutes(40);
    let message_id = format!("{PATIENT_ID}-msg-1");
    let message = format!(
        "Hi, I am due for a refill.{CLIPBOARD_WRITE} Is it fine to take \
         amoxicillin again?{C1_CLEAR} Thanks"
    );
    // The queue shows a task's description: the patient's subject line is
    // copied into it, as portals do, so the hostile bytes reach the queue.
    let summary = format!("{C1_CLEAR}{CLIPBOARD_WRITE}Asks about taking amoxicillin again");
    let mut message_resource = json!({
        "resourceType": "Communication",
        "id": message_id,
        "status": "in-progress",
        "category": [concept(codes::TASK_CATEGORY_SYSTEM, "clinical", "Clinical symptoms")],
        "subject": patient,
        "sender": patient,
        "recipient": [organization_ref()],
        "sent": instant(sent),
        "contained": [super::messages::symptom_answers(&summary, "yesterday", 3, &[])],
        "payload": [{"contentReference": {"reference": "#answers"}}, { "contentString": message }],
    });
    // Routed like every message; the task keeps a fixed id for the tests.
    let rules = super::messages::rules();
    let decision = crate::triage::route(
        rules,
        &crate::triage::read_message(&message_resource),
        &crate::triage::Facts {
            birth_date: Some(birth),
            ..Default::default()
        },
        sent,
    );
    let mut task = crate::triage::task_for(&message_resource, &decision, sent);
    task["id"] = json!(format!("{PATIENT_ID}-task-1"));
    if let Some(o) = message_resource.as_object_mut() {
        o.remove("priority");
    }
    let substance = json!({
        "coding": [coding(codes::RXNORM, "723", "Amoxicillin")],
        "text": ALLERGY_TEXT,
    });
    vec![
        json!({
            "resourceType": "Patient",
            "id": PATIENT_ID,
            "identifier": [{
                "use": "usual",
                "type": {
                    "coding": [coding(codes::IDENTIFIER_TYPE, codes::IDENTIFIER_TYPE_MRN, "Medical record number")],
                    "text": "MRN",
                },
                "system": codes::MRN_SYSTEM,
                "value": MRN,
            }],
            "active": true,
            "name": [{ "use": "official", "text": name, "family": FAMILY, "given": [GIVEN] }],
            "gender": "female",
            "birthDate": day(birth),
            "generalPractitioner": [practitioner_ref(Role::Attending)],
            "managingOrganization": organization_ref(),
        }),
        json!({
            "resourceType": "AllergyIntolerance",
            "id": format!("{PATIENT_ID}-alg-1"),
            "clinicalStatus": concept(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                "active",
                "Active",
            ),
            "verificationStatus": concept(
                "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                "confirmed",
                "Confirmed",
            ),
            "type": "allergy",
            "category": ["medication"],
            "criticality": "high",
            "code": substance,
            "patient": reference("Patient", PATIENT_ID),
            "recordedDate": instant(anchor - Duration::days(400)),
            "recorder": practitioner_ref(Role::Attending),
            "reaction": [{
                "substance": substance,
                "manifestation": [concept(codes::SNOMED, "39579001", "Anaphylaxis")],
                "severity": "severe",
            }],
        }),
        message_resource,
        task,
    ]
}
