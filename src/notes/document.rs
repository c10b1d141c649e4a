//! A note as FHIR: the `DocumentReference` a draft, a signature, a
//! resident's signature awaiting co-signature, or an addendum is written
//! as, and the co-signature task. The server sets the author and the
//! signer from who writes; the client never names them.

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::fhir::codes;
use crate::fhir::model::DocumentReference;

/// Where a note stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NoteState {
    /// Being written (`docStatus` preliminary).
    Draft,
    /// Signed by a resident, waiting for an attending (`docStatus`
    /// preliminary with the awaiting-co-signature extension).
    AwaitingCosign,
    /// Signed (`docStatus` final).
    Signed,
}

/// What a note is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct NoteDoc<'a> {
    /// Set once the server has it (updates carry it).
    pub id: Option<&'a str>,
    pub patient_id: &'a str,
    pub loinc: &'a str,
    pub loinc_display: &'a str,
    pub title: &'a str,
    pub text: &'a str,
    pub state: NoteState,
    /// An addendum's note (`DocumentReference/<id>`): linked `appends`.
    pub appends: Option<&'a str>,
    pub date: DateTime<Utc>,
    /// The identifier the client made for the note: creates are
    /// conditional on it, and every update keeps it.
    pub client_id: &'a str,
}

/// The `DocumentReference` for a note.
pub fn resource(n: &NoteDoc) -> Value {
    let data = base64::engine::general_purpose::STANDARD.encode(n.text.as_bytes());
    let mut r = json!({
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": match n.state {
            NoteState::Signed => "final",
            _ => "preliminary",
        },
        "type": {"coding": [{"system": codes::LOINC, "code": n.loinc, "display": n.loinc_display}],
            "text": n.title},
        "identifier": [{"system": codes::CLIENT_ID_SYSTEM, "value": n.client_id}],
        "subject": {"reference": format!("Patient/{}", n.patient_id)},
        "date": n.date.to_rfc3339_opts(SecondsFormat::Secs, true),
        "description": n.title,
        "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": data,
            "title": n.title}}],
    });
    if let Some(id) = n.id {
        r["id"] = json!(id);
    }
    if n.state == NoteState::AwaitingCosign {
        r["extension"] = json!([{"url": codes::AWAITING_COSIGNATURE, "valueBoolean": true}]);
    }
    if let Some(target) = n.appends {
        r["relatesTo"] = json!([{"code": "appends", "target": {"reference": target}}]);
    }
    r
}

/// The task that puts a resident's signed note in the attending queue.
pub fn cosign_task(note_id: &str, patient_id: &str, title: &str, now: DateTime<Utc>) -> Value {
    json!({
        "resourceType": "Task",
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "code": {"coding": [{"system": codes::TASK_CATEGORY_SYSTEM, "code": codes::TASK_COSIGN,
            "display": "Co-sign a note"}]},
        "description": format!("Co-sign: {title}"),
        "focus": {"reference": format!("DocumentReference/{note_id}")},
        "for": {"reference": format!("Patient/{patient_id}")},
        "performerType": [{"coding": [{"system": codes::ROLE_SYSTEM, "code": "attending"}]}],
        "authoredOn": now.to_rfc3339_opts(SecondsFormat::Secs, true),
    })
}

/// The identifier the client made for a note, where it has one.
pub fn client_id_of(d: &DocumentReference) -> Option<String> {
    codes::client_id_in(d.extra.get("identifier")).map(str::to_string)
}

/// Where a stored note stands, as the notes list says it.
pub fn state_of(d: &DocumentReference) -> NoteState {
    let awaiting = codes::awaits_cosignature(d.extra.get("extension"));
    // As the notes list reads it (`fhir::status`): only "preliminary" is
    // unsigned; a note with no docStatus (common on other servers) is a
    // document like any other, open to addenda, never to editing.
    match d.doc_status.as_deref() {
        Some("preliminary") if awaiting => NoteState::AwaitingCosign,
        Some("preliminary") => NoteState::Draft,
        _ => NoteState::Signed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_note_is_written_as_fhir_and_read_back() {
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        let mut doc = NoteDoc {
            id: None,
            patient_id: "p1",
            loinc: "11506-3",
            loinc_display: "Progress note",
            title: "Progress note (SOAP)",
            text: "S: well\nA: Née",
            state: NoteState::Draft,
            appends: None,
            date: now,
            client_id: "c-1",
        };
        let r = resource(&doc);
        assert_eq!(
            r["identifier"][0]["value"], "c-1",
            "updates keep the client's identifier"
        );
        assert_eq!(r["docStatus"], "preliminary");
        assert!(r.get("author").is_none(), "the server names the author");
        let back: DocumentReference = serde_json::from_value(r).unwrap();
        assert_eq!(crate::chart::note_text::decode(&back), "S: well\nA: Née");
        assert_eq!(state_of(&back), NoteState::Draft);
        doc.state = NoteState::AwaitingCosign;
        doc.id = Some("d1");
        let r = resource(&doc);
        assert_eq!(r["id"], "d1");
        let back: DocumentReference = serde_json::from_value(r.clone()).unwrap();
        assert_eq!(state_of(&back), NoteState::AwaitingCosign);
        // The extension set to false is no request; no docStatus at all (other
        // servers) is a document, never a draft to edit.
        let mut off = r.clone();
        off["extension"][0]["valueBoolean"] = serde_json::json!(false);
        let off: DocumentReference = serde_json::from_value(off).unwrap();
        assert_eq!(state_of(&off), NoteState::Draft);
        let mut bare = r;
        bare.as_object_mut().unwrap().remove("docStatus");
        let bare: DocumentReference = serde_json::from_value(bare).unwrap();
        assert_eq!(state_of(&bare), NoteState::Signed);
        doc.state = NoteState::Signed;
        doc.appends = Some("DocumentReference/d0");
        let r = resource(&doc);
        assert_eq!(
            (r["docStatus"].as_str(), r["relatesTo"][0]["code"].as_str()),
            (Some("final"), Some("appends"))
        );
        let t = cosign_task("d1", "p1", "Progress note", now);
        assert_eq!(t["focus"]["reference"], "DocumentReference/d1");
        assert_eq!(t["performerType"][0]["coding"][0]["code"], "attending");
    }
}
