//! What the server checks before it stores a resource: its type and id,
//! the elements it cannot do without, the codes of required bindings
//! (statuses, gender, intent, priority…), dates and references, wherever
//! they are in the resource. A problem answers 422 with an
//! OperationOutcome naming the element (`Patient.gender`,
//! `Observation.performer[0].reference`); a body that is not a resource of
//! the type at all answers 400.
//!
//! Import is not checked here: data from other systems is loaded as sent
//! and read with care (see DESIGN.md "Clinical truth").

use serde_json::Value;

use super::outcome::FhirError;
use super::params;

/// Required elements checked on create and update (`x[x]` means any choice).
static REQUIRED: &[(&str, &[&str])] = &[
    ("Observation", &["status", "code"]),
    ("DiagnosticReport", &["status", "code"]),
    ("Condition", &["subject"]),
    ("AllergyIntolerance", &["patient"]),
    (
        "MedicationRequest",
        &["status", "intent", "subject", "medication[x]"],
    ),
    ("Encounter", &["status", "class"]),
    ("DocumentReference", &["status", "content"]),
    ("Task", &["status", "intent"]),
    ("Communication", &["status"]),
    ("AuditEvent", &["type", "recorded", "agent", "source"]),
];

const PRIORITY: &[&str] = &["routine", "urgent", "asap", "stat"];
const REQUEST_INTENT: &[&str] = &[
    "proposal",
    "plan",
    "directive",
    "order",
    "original-order",
    "reflex-order",
    "filler-order",
    "instance-order",
    "option",
];

/// Codes of required bindings: (type, element, allowed). An element that
/// is a list is checked item by item.
static CODES: &[(&str, &str, &[&str])] = &[
    ("Patient", "gender", &["male", "female", "other", "unknown"]),
    (
        "Practitioner",
        "gender",
        &["male", "female", "other", "unknown"],
    ),
    (
        "Observation",
        "status",
        &[
            "registered",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
    ),
    (
        "DiagnosticReport",
        "status",
        &[
            "registered",
            "partial",
            "preliminary",
            "final",
            "amended",
            "corrected",
            "appended",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
    ),
    (
        "DocumentReference",
        "status",
        &["current", "superseded", "entered-in-error"],
    ),
    (
        "DocumentReference",
        "docStatus",
        &["preliminary", "final", "amended", "entered-in-error"],
    ),
    (
        "Task",
        "status",
        &[
            "draft",
            "requested",
            "received",
            "accepted",
            "rejected",
            "ready",
            "cancelled",
            "in-progress",
            "on-hold",
            "failed",
            "completed",
            "entered-in-error",
        ],
    ),
    (
        "Task",
        "intent",
        &[
            "unknown",
            "proposal",
            "plan",
            "order",
            "original-order",
            "reflex-order",
            "filler-order",
            "instance-order",
            "option",
        ],
    ),
    ("Task", "priority", PRIORITY),
    (
        "Communication",
        "status",
        &[
            "preparation",
            "in-progress",
            "not-done",
            "on-hold",
            "stopped",
            "completed",
            "entered-in-error",
            "unknown",
        ],
    ),
    ("Communication", "priority", PRIORITY),
    (
        "Encounter",
        "status",
        &[
            "planned",
            "arrived",
            "triaged",
            "in-progress",
            "onleave",
            "finished",
            "cancelled",
            "entered-in-error",
            "unknown",
        ],
    ),
    (
        "MedicationRequest",
        "status",
        &[
            "active",
            "on-hold",
            "cancelled",
            "completed",
            "entered-in-error",
            "stopped",
            "draft",
            "unknown",
        ],
    ),
    ("MedicationRequest", "intent", REQUEST_INTENT),
    ("MedicationRequest", "priority", PRIORITY),
    ("AllergyIntolerance", "type", &["allergy", "intolerance"]),
    (
        "AllergyIntolerance",
        "category",
        &["food", "medication", "environment", "biologic"],
    ),
    (
        "AllergyIntolerance",
        "criticality",
        &["low", "high", "unable-to-assess"],
    ),
    (
        "Appointment",
        "status",
        &[
            "proposed",
            "pending",
            "booked",
            "arrived",
            "fulfilled",
            "cancelled",
            "noshow",
            "entered-in-error",
            "checked-in",
            "waitlist",
        ],
    ),
    (
        "Coverage",
        "status",
        &["active", "cancelled", "draft", "entered-in-error"],
    ),
    (
        "Claim",
        "status",
        &["active", "cancelled", "draft", "entered-in-error"],
    ),
    (
        "ExplanationOfBenefit",
        "status",
        &["active", "cancelled", "draft", "entered-in-error"],
    ),
    (
        "Immunization",
        "status",
        &["completed", "entered-in-error", "not-done"],
    ),
    (
        "Procedure",
        "status",
        &[
            "preparation",
            "in-progress",
            "not-done",
            "on-hold",
            "stopped",
            "completed",
            "entered-in-error",
            "unknown",
        ],
    ),
    (
        "ServiceRequest",
        "status",
        &[
            "draft",
            "active",
            "on-hold",
            "revoked",
            "completed",
            "entered-in-error",
            "unknown",
        ],
    ),
];

/// Required bindings on CodeableConcepts: (type, element, system, allowed);
/// codings of that system must use one of the codes.
static CONCEPTS: &[(&str, &str, &str, &[&str])] = &[
    (
        "Condition",
        "clinicalStatus",
        "http://terminology.hl7.org/CodeSystem/condition-clinical",
        &[
            "active",
            "recurrence",
            "relapse",
            "inactive",
            "remission",
            "resolved",
        ],
    ),
    (
        "Condition",
        "verificationStatus",
        "http://terminology.hl7.org/CodeSystem/condition-ver-status",
        &[
            "unconfirmed",
            "provisional",
            "differential",
            "confirmed",
            "refuted",
            "entered-in-error",
        ],
    ),
    (
        "AllergyIntolerance",
        "clinicalStatus",
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
        &["active", "inactive", "resolved"],
    ),
    (
        "AllergyIntolerance",
        "verificationStatus",
        "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
        &["unconfirmed", "confirmed", "refuted", "entered-in-error"],
    ),
];

fn bad(path: &str, message: impl std::fmt::Display) -> FhirError {
    let mut e = FhirError::new(
        axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
        format!("{path}: {message}"),
    );
    e.expression = Some(path.to_string());
    e
}

/// Checks a resource of type `ty` before it is stored.
pub fn resource(ty: &str, body: &Value, max_bytes: usize) -> Result<(), FhirError> {
    let Some(obj) = body.as_object() else {
        return Err(FhirError::bad_request("the body must be a JSON object"));
    };
    let rt = obj.get("resourceType").and_then(Value::as_str);
    if rt != Some(ty) {
        return Err(FhirError::bad_request(format!(
            "resourceType must be {ty}, got {}",
            rt.unwrap_or("nothing")
        )));
    }
    let size = body.to_string().len();
    if size > max_bytes {
        return Err(FhirError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "too-costly",
            format!(
                "the {ty} is {size} bytes; this server stores resources of at most {max_bytes} bytes"
            ),
        ));
    }
    if let Some(id) = obj.get("id") {
        match id.as_str() {
            Some(id) if params::is_valid_id(id) => {}
            _ => {
                return Err(bad(
                    &format!("{ty}.id"),
                    format!("{id} is not a valid id (1-64 of A-Z a-z 0-9 - .)"),
                ));
            }
        }
    }
    if let Some((_, required)) = REQUIRED.iter().find(|(t, _)| *t == ty) {
        for field in *required {
            let present = match field.strip_suffix("[x]") {
                Some(prefix) => obj.keys().any(|k| k.starts_with(prefix)),
                None => obj.get(*field).is_some_and(|v| !v.is_null()),
            };
            if !present {
                let mut e = FhirError::unprocessable(format!("{ty}.{field} is required"));
                e.expression = Some(format!("{ty}.{field}"));
                return Err(e);
            }
        }
    }
    for (t, field, allowed) in CODES {
        if *t != ty {
            continue;
        }
        let Some(v) = obj.get(*field) else { continue };
        let items: Vec<&Value> = match v {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for item in items {
            match item.as_str() {
                Some(c) if allowed.contains(&c) => {}
                _ => {
                    return Err(bad(
                        &format!("{ty}.{field}"),
                        format!("{item} is not one of {}", allowed.join(", ")),
                    ));
                }
            }
        }
    }
    for (t, field, system, allowed) in CONCEPTS {
        if *t != ty {
            continue;
        }
        let codings = obj
            .get(*field)
            .and_then(|c| c.get("coding"))
            .and_then(Value::as_array);
        for c in codings.into_iter().flatten() {
            if c.get("system").and_then(Value::as_str) == Some(system) {
                match c.get("code").and_then(Value::as_str) {
                    Some(code) if allowed.contains(&code) => {}
                    other => {
                        return Err(bad(
                            &format!("{ty}.{field}"),
                            format!(
                                "{} is not one of {}",
                                other.map_or("a missing code".to_string(), |c| format!("{c:?}")),
                                allowed.join(", ")
                            ),
                        ));
                    }
                }
            }
        }
    }
    walk(body, ty, None)
}

/// What kind of time an element holds, by its name.
#[derive(Clone, Copy, PartialEq, Debug)]
enum TimeKind {
    Date,
    DateTime,
    Instant,
}

fn time_kind(key: &str, parent: Option<&str>) -> Option<TimeKind> {
    match key {
        "birthDate" | "valueDate" => Some(TimeKind::Date),
        "issued" | "recorded" | "lastUpdated" => Some(TimeKind::Instant),
        "date" | "authoredOn" | "lastModified" | "recordedDate" | "sent" | "received"
        | "creation" | "occurrenceDateTime" | "dateAsserted" | "assertedDate" | "onsetDate" => {
            Some(TimeKind::DateTime)
        }
        "start" | "end" if parent.is_some_and(|p| p.ends_with("eriod") || p == "restriction") => {
            Some(TimeKind::DateTime)
        }
        "start" | "end" if parent.is_none() => Some(TimeKind::Instant),
        k if k.ends_with("DateTime") => Some(TimeKind::DateTime),
        k if k.ends_with("Instant") => Some(TimeKind::Instant),
        _ => None,
    }
}

fn digits(s: &str, n: usize) -> bool {
    s.len() == n && s.bytes().all(|b| b.is_ascii_digit())
}

/// A FHIR date: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, a real day.
fn valid_date(s: &str) -> bool {
    match s.len() {
        4 => digits(s, 4),
        7 => {
            digits(&s[..4], 4)
                && &s[4..5] == "-"
                && digits(&s[5..7], 2)
                && (1..=12).contains(&s[5..7].parse::<u32>().unwrap_or(0))
        }
        10 => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && digits(&s[..4], 4),
        _ => false,
    }
}

/// A FHIR dateTime (a date, or a full time with seconds and a zone) or,
/// when `instant`, only the latter.
fn valid_time(s: &str, kind: TimeKind) -> bool {
    if !s.is_ascii() {
        return false;
    }
    match s.split_once('T') {
        None => kind != TimeKind::Instant && valid_date(s),
        Some(_) if kind == TimeKind::Date => false,
        Some((date, time)) => {
            let zone_at = time.find(['Z', '+', '-']);
            let Some(z) = zone_at else { return false };
            let (clock, zone) = time.split_at(z);
            let (hms, fraction) = match clock.split_once('.') {
                Some((h, f)) => (h, Some(f)),
                None => (clock, None),
            };
            let zone_ok = zone == "Z" || {
                let b = zone.as_bytes();
                zone.len() == 6 && b[3] == b':' && digits(&zone[1..3], 2) && digits(&zone[4..6], 2)
            };
            date.len() == 10
                && valid_date(date)
                && chrono::NaiveTime::parse_from_str(hms, "%H:%M:%S").is_ok()
                && hms.len() == 8
                && fraction.is_none_or(|f| {
                    !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit())
                })
                && zone_ok
        }
    }
}

/// A literal reference: `Type/id` (optionally `/_history/v`), an absolute
/// URL ending so, a contained `#id`, or a `urn:uuid:`/`urn:oid:`.
fn valid_reference(r: &str) -> bool {
    if let Some(local) = r.strip_prefix('#') {
        return local.is_empty() || params::is_valid_id(local);
    }
    if let Some(rest) = r.strip_prefix("urn:uuid:") {
        return rest.len() == 36 && rest.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    }
    if let Some(rest) = r.strip_prefix("urn:oid:") {
        return !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    }
    if r.contains('?') || r.chars().any(char::is_whitespace) {
        return false;
    }
    let path = match r.split_once("://") {
        Some((scheme, rest)) if scheme == "http" || scheme == "https" => rest,
        Some(_) => return false,
        None => r,
    };
    let (path, version) = match path.split_once("/_history/") {
        Some((p, v)) => (p, Some(v)),
        None => (path, None),
    };
    if version.is_some_and(|v| !params::is_valid_id(v)) {
        return false;
    }
    let mut parts = path.rsplit('/');
    let (Some(id), Some(ty)) = (parts.next(), parts.next()) else {
        return false;
    };
    params::is_type_name(ty)
        && params::is_valid_id(id)
        && (r.contains("://") || parts.next().is_none())
}

fn walk(v: &Value, path: &str, parent: Option<&str>) -> Result<(), FhirError> {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                if k == "contained" || k == "meta" {
                    continue;
                }
                let here = format!("{path}.{k}");
                if k == "reference"
                    && let Value::String(r) = child
                {
                    if !valid_reference(r) {
                        return Err(bad(
                            &here,
                            format!(
                                "{r:?} is not a reference (Type/id, an absolute URL, #id or urn:uuid:)"
                            ),
                        ));
                    }
                    continue;
                }
                if let (Some(kind), Value::String(s)) = (time_kind(k, parent), child) {
                    if !valid_time(s, kind) {
                        let what = match kind {
                            TimeKind::Date => "a date (YYYY, YYYY-MM or YYYY-MM-DD)",
                            TimeKind::DateTime => {
                                "a date or a dateTime with seconds and a time zone"
                            }
                            TimeKind::Instant => {
                                "an instant (YYYY-MM-DDThh:mm:ss with a time zone)"
                            }
                        };
                        return Err(bad(&here, format!("{s:?} is not {what}")));
                    }
                    continue;
                }
                walk(child, &here, Some(k))?;
            }
            Ok(())
        }
        Value::Array(items) => {
            let (base, last) = match path.rsplit_once('.') {
                Some((b, l)) => (b, l),
                None => ("", path),
            };
            for (i, item) in items.iter().enumerate() {
                let here = if base.is_empty() {
                    format!("{last}[{i}]")
                } else {
                    format!("{base}.{last}[{i}]")
                };
                walk(item, &here, parent)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(v: Value) -> Result<(), String> {
        let ty = v["resourceType"].as_str().unwrap().to_string();
        resource(&ty, &v, 1 << 20).map_err(|e| e.message)
    }

    #[test]
    fn codes_dates_and_references_name_the_element() {
        assert!(
            check(
                json!({"resourceType": "Patient", "gender": "female", "birthDate": "1984-03-05"})
            )
            .is_ok()
        );
        let e = check(json!({"resourceType": "Patient", "gender": "femal"})).unwrap_err();
        assert!(e.starts_with("Patient.gender:"), "{e}");
        let e = check(json!({"resourceType": "Patient", "birthDate": "1984-02-30"})).unwrap_err();
        assert!(e.starts_with("Patient.birthDate:"), "{e}");
        let e = check(
            json!({"resourceType": "Observation", "status": "final", "code": {},
            "effectiveDateTime": "yesterday"}),
        )
        .unwrap_err();
        assert!(e.starts_with("Observation.effectiveDateTime:"), "{e}");
        let e = check(json!({"resourceType": "Observation", "status": "done", "code": {}}))
            .unwrap_err();
        assert!(e.starts_with("Observation.status:"), "{e}");
        let e = check(
            json!({"resourceType": "Observation", "status": "final", "code": {},
            "performer": [{"reference": "Practitioner/ok"}, {"reference": "../../etc/passwd"}]}),
        )
        .unwrap_err();
        assert!(e.starts_with("Observation.performer[1].reference:"), "{e}");
        let e = check(
            json!({"resourceType": "Task", "status": "requested", "intent": "order",
            "restriction": {"period": {"end": "2026-13-01T00:00:00Z"}}}),
        )
        .unwrap_err();
        assert!(e.starts_with("Task.restriction.period.end:"), "{e}");
        let e = check(json!({"resourceType": "Condition", "subject": {"reference": "Patient/1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "gone"}]}}))
            .unwrap_err();
        assert!(e.starts_with("Condition.clinicalStatus:"), "{e}");
        let e = check(json!({"resourceType": "Patient", "id": "a/b"})).unwrap_err();
        assert!(e.starts_with("Patient.id:"), "{e}");
        assert!(check(json!({"resourceType": "Observation", "status": "final", "code": {},
            "subject": {"reference": "https://x.example/fhir/Patient/7/_history/2"},
            "effectiveDateTime": "2024-02-15T10:00:00.123+01:00", "issued": "2024-02-15T10:00:00Z",
            "hasMember": [{"reference": "#c1"}, {"reference": "urn:uuid:6b1e6f35-5a0c-4b0e-9c3d-000000000001"}]}))
            .is_ok());
    }

    #[test]
    fn times() {
        for ok in [
            "2024",
            "2024-02",
            "2024-02-29",
            "2024-02-15T10:00:00Z",
            "2024-02-15T10:00:00.5-05:00",
        ] {
            assert!(valid_time(ok, TimeKind::DateTime), "{ok}");
        }
        for no in [
            "2024-2",
            "24",
            "2023-02-29",
            "2024-02-15T10:00",
            "2024-02-15T10:00:00",
            "2024-02-15T25:00:00Z",
            "2024-02-15 10:00:00Z",
        ] {
            assert!(!valid_time(no, TimeKind::DateTime), "{no}");
        }
        assert!(!valid_time("2024-02-15", TimeKind::Instant));
        assert!(!valid_time("2024-02-15T10:00:00Z", TimeKind::Date));
    }

    #[test]
    fn size_is_limited() {
        let big = json!({"resourceType": "Patient", "name": [{"text": "x".repeat(2000)}]});
        let e = resource("Patient", &big, 1000).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert_eq!(e.code, "too-costly");
    }
}
