//! Code systems and codes that the portal server writes and the client reads.
//! Standard terminologies where one fits (LOINC, SNOMED CT, RxNorm, HL7 v2
//! tables); `urn:chartty:*` systems only for what FHIR leaves to the site.

pub const LOINC: &str = "http://loinc.org";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";

/// HL7 v2 table 0203: identifier type. `MR` marks the medical record number
/// on any server (Synthea writes it too).
pub const IDENTIFIER_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
pub const IDENTIFIER_TYPE_MRN: &str = "MR";
/// System of the MRNs the demo population is given.
pub const MRN_SYSTEM: &str = "urn:chartty:mrn";

/// `Task.performerType`: the role queue a task sits in; codes are
/// [`crate::roles::Role::code`].
pub const ROLE_SYSTEM: &str = "urn:chartty:role";
/// `Task.code`: the category of a queue item.
pub const TASK_CATEGORY_SYSTEM: &str = "urn:chartty:task-category";
pub const TASK_CATEGORIES: [&str; 6] = [
    "refill",
    "results",
    "scheduling",
    "billing",
    "clinical",
    "urgent",
];

/// `Task.code` of a note that waits for an attending's co-signature (in the
/// same system as the message categories above).
pub const TASK_COSIGN: &str = "cosign";

/// Extension on a `DocumentReference` a resident has signed: it waits for
/// an attending's co-signature (`valueBoolean: true`).
pub const AWAITING_COSIGNATURE: &str = "urn:chartty:awaiting-cosignature";

pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
pub const CATEGORY_LABORATORY: &str = "laboratory";
pub const CATEGORY_VITAL_SIGNS: &str = "vital-signs";

pub const INTERPRETATION: &str =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";

pub const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";

/// LOINC document types for `DocumentReference.type`.
pub const LOINC_PROGRESS_NOTE: &str = "11506-3";
pub const LOINC_NOTE: &str = "34109-9";

/// `identifier.system` of the id a client gives a resource it creates, so a
/// retried create is recognised (`If-None-Exist: identifier=<system>|<id>`).
pub const CLIENT_ID_SYSTEM: &str = "urn:chartty:client-id";

/// The id the client made for a resource, read from its `identifier`
/// element (JSON), if it carries one.
pub fn client_id_in(identifier: Option<&serde_json::Value>) -> Option<&str> {
    identifier?
        .as_array()?
        .iter()
        .find(|i| i.get("system").and_then(serde_json::Value::as_str) == Some(CLIENT_ID_SYSTEM))
        .and_then(|i| i.get("value").and_then(serde_json::Value::as_str))
}

/// Whether a note's `extension` element (JSON) says it was signed by a
/// resident and awaits an attending's co-signature.
pub fn awaits_cosignature(extension: Option<&serde_json::Value>) -> bool {
    extension
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .any(|e| {
            e.get("url").and_then(serde_json::Value::as_str) == Some(AWAITING_COSIGNATURE)
                && e.get("valueBoolean").and_then(serde_json::Value::as_bool) == Some(true)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn client_ids_and_cosignature_marks_are_read_strictly() {
        let ids = json!([{"system": "urn:x", "value": "1"}, {"system": CLIENT_ID_SYSTEM, "value": "c-7"}]);
        assert_eq!(client_id_in(Some(&ids)), Some("c-7"));
        assert_eq!(
            client_id_in(Some(&json!({"system": CLIENT_ID_SYSTEM}))),
            None
        );
        assert_eq!(client_id_in(None), None);
        let on = json!([{"url": AWAITING_COSIGNATURE, "valueBoolean": true}]);
        let off = json!([{"url": AWAITING_COSIGNATURE, "valueBoolean": false}]);
        let other = json!([{"url": "urn:other", "valueBoolean": true}]);
        assert!(awaits_cosignature(Some(&on)));
        assert!(!awaits_cosignature(Some(&off)) && !awaits_cosignature(Some(&other)));
        assert!(!awaits_cosignature(Some(&json!("nonsense"))) && !awaits_cosignature(None));
    }
}
