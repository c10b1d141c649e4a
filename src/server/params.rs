//! The search parameters the server indexes, as data: one table per resource
//! type naming each parameter, its kind and the element paths it reads.
//! Extraction turns a resource into index rows. String values are indexed
//! folded with [`fold`] (the client's fuzzy index folds the same way), so
//! "soren" finds Søren and "lodz" finds Łódź; dates are read with
//! [`crate::fhir::time`], the one reading both halves share.

use serde_json::Value;

pub use crate::fhir::fold::fold;
use crate::fhir::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Normalised text, matched by prefix on any word or on the whole value.
    String,
    /// `system|code` pairs from codes, Codings, CodeableConcepts, Identifiers.
    Token,
    /// Ranges `[lo, hi]` in epoch milliseconds.
    Date,
    /// `Type/id`.
    Reference,
}

#[derive(Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    /// Dotted element paths; arrays are walked through at every step.
    pub paths: &'static [&'static str],
    /// For references: only references to this type are indexed.
    pub target: Option<&'static str>,
}

const fn p(
    name: &'static str,
    kind: Kind,
    paths: &'static [&'static str],
    target: Option<&'static str>,
) -> Param {
    Param {
        name,
        kind,
        paths,
        target,
    }
}

use Kind::{Date, Reference, String as Str, Token};

const PAT: Option<&str> = Some("Patient");

static PATIENT: &[Param] = &[
    p("name", Str, &["name"], None),
    p("family", Str, &["name.family"], None),
    p("given", Str, &["name.given"], None),
    p("birthdate", Date, &["birthDate"], None),
    p("identifier", Token, &["identifier"], None),
    p("gender", Token, &["gender"], None),
    p("active", Token, &["active"], None),
    p(
        "general-practitioner",
        Reference,
        &["generalPractitioner"],
        None,
    ),
];
static PRACTITIONER: &[Param] = &[
    p("name", Str, &["name"], None),
    p("family", Str, &["name.family"], None),
    p("given", Str, &["name.given"], None),
    p("identifier", Token, &["identifier"], None),
    p("active", Token, &["active"], None),
];
static PRACTITIONER_ROLE: &[Param] = &[
    p("practitioner", Reference, &["practitioner"], None),
    p("organization", Reference, &["organization"], None),
    p("role", Token, &["code"], None),
    p("specialty", Token, &["specialty"], None),
    p("identifier", Token, &["identifier"], None),
    p("active", Token, &["active"], None),
];
static ENCOUNTER: &[Param] = &[
    p("patient", Reference, &["subject"], PAT),
    p("subject", Reference, &["subject"], None),
    p("date", Date, &["period"], None),
    p("status", Token, &["status"], None),
    p("class", Token, &["class"], None),
    p("type", Token, &["type"], None),
    p("identifier", Token, &["identifier"], None),
    p("participant", Reference, &["participant.individual"], None),
];
static CONDITION: &[Param] = &[
    p("patient", Reference, &["subject"], PAT),
    p("subject", Reference, &["subject"], None),
    p("clinical-status", Token, &["clinicalStatus"], None),
    p("verification-status", Token, &["verificationStatus"], None),
    p("category", Token, &["category"], None),
    p("code", Token, &["code"], None),
    p("encounter", Reference, &["encounter"], None),
    p("onset-date", Date, &["onsetDateTime", "onsetPeriod"], None),
    p("recorded-date", Date, &["recordedDate"], None),
];
static ALLERGY: &[Param] = &[
    p("patient", Reference, &["patient"], PAT),
    p("clinical-status", Token, &["clinicalStatus"], None),
    p("code", Token, &["code"], None),
    p("criticality", Token, &["criticality"], None),
    p("date", Date, &["recordedDate"], None),
];
static MEDICATION_REQUEST: &[Param] = &[
    p("patient", Reference, &["subject"], PAT),
    p("subject", Reference, &["subject"], None),
    p("status", Token, &["status"], None),
    p("intent", Token, &["intent"], None),
    p("code", Token, &["medicationCodeableConcept"], None),
    p("authoredon", Date, &["authoredOn"], None),
    p("encounter", Reference, &["encounter"], None),
    p("requester", Reference, &["requester"], None),
];
static OBSERVATION: &[Param] = &[
    p("patient", Reference, &["subject"], PAT),
    p("subject", Reference, &["subject"], None),
    p("category", Token, &["category"], None),
    p("code", Token, &["code"], None),
    p(
        "date",
        Date,
        &["effectiveDateTime", "effectivePeriod", "effectiveInstant"],
        None,
    ),
    p("status", Token, &["status"], None),
    p("encounter", Reference, &["encounter"], None),
];
static DIAGNOSTIC_REPORT: &[Param] = &[
    p("patient", Reference, &["subject"], PAT),
    p("subject", Reference, &["subject"], None),
    p("category", Token, &["category"], None),
    p("code", Token, &["code"], None),
    p(
        "date",
        Date,
        &["effectiveDateTime", "effectivePeriod"],
        None,
    ),
    p("status", Token, &["status"], None),
    p("encounter", Reference, &["encounter"], None),
    p("result", Reference, &["result"], None),
];
static DOCUMENT_REFERENCE: &[Param] = &[
    p("patient", Reference, &["subject"], PAT),
    p("subject", Reference, &["subject"], None),
    p("type", Token, &["type"], None),
    p("category", Token, &["category"], None),
    p("status", Token, &["status"], None),
    p("doc-status", Token, &["docStatus"], None),
    p("date", Date, &["date"], None),
    p("author", Reference, &["author"], None),
    p("encounter", Reference, &["context.encounter"], None),
    p("identifier", Token, &["identifier"], None),
    p("relatesto", Reference, &["relatesTo.target"], None),
];
static TASK: &[Param] = &[
    p("owner", Reference, &["owner"], None),
    p("status", Token, &["status"], None),
    p("business-status", Token, &["businessStatus"], None),
    p("priority", Token, &["priority"], None),
    p("performer-type", Token, &["performerType"], None),
    p("performer", Token, &["performerType"], None),
    p("patient", Reference, &["for"], PAT),
    p("for", Reference, &["for"], None),
    p("subject", Reference, &["for"], None),
    p("focus", Reference, &["focus"], None),
    p("code", Token, &["code"], None),
    p("requester", Reference, &["requester"], None),
    p("authored-on", Date, &["authoredOn"], None),
    p("modified", Date, &["lastModified"], None),
    p("due", Date, &["restriction.period.end"], None),
    p("part-of", Reference, &["partOf"], None),
    p("identifier", Token, &["identifier"], None),
];
static COMMUNICATION: &[Param] = &[
    p("patient", Reference, &["subject"], PAT),
    p("subject", Reference, &["subject"], None),
    p("status", Token, &["status"], None),
    p("category", Token, &["category"], None),
    p("sent", Date, &["sent"], None),
    p("received", Date, &["received"], None),
    p("sender", Reference, &["sender"], None),
    p("recipient", Reference, &["recipient"], None),
    p("part-of", Reference, &["partOf"], None),
    p("based-on", Reference, &["basedOn"], None),
    p("identifier", Token, &["identifier"], None),
];
static AUDIT_EVENT: &[Param] = &[
    p("date", Date, &["recorded"], None),
    p("action", Token, &["action"], None),
    p("outcome", Token, &["outcome"], None),
    p("type", Token, &["type"], None),
    p("agent", Reference, &["agent.who"], None),
    p("entity", Reference, &["entity.what"], None),
    p("patient", Reference, &["entity.what"], PAT),
];
static ORGANIZATION: &[Param] = &[
    p("name", Str, &["name", "alias"], None),
    p("identifier", Token, &["identifier"], None),
    p("active", Token, &["active"], None),
];
static LOCATION: &[Param] = &[
    p("name", Str, &["name", "alias"], None),
    p("identifier", Token, &["identifier"], None),
    p("organization", Reference, &["managingOrganization"], None),
];
static COVERAGE: &[Param] = &[
    p("patient", Reference, &["beneficiary"], PAT),
    p("beneficiary", Reference, &["beneficiary"], None),
    p("status", Token, &["status"], None),
    p("identifier", Token, &["identifier"], None),
];
static APPOINTMENT: &[Param] = &[
    p("patient", Reference, &["participant.actor"], PAT),
    p("actor", Reference, &["participant.actor"], None),
    p("status", Token, &["status"], None),
    p("date", Date, &["start"], None),
    p("identifier", Token, &["identifier"], None),
];
static PATIENT_SCOPED: &[Param] = &[
    p("patient", Reference, &["patient", "subject"], PAT),
    p("identifier", Token, &["identifier"], None),
];

/// The resource types of the clinical API, with their search parameters.
pub static CORE_TYPES: &[(&str, &[Param])] = &[
    ("Patient", PATIENT),
    ("Practitioner", PRACTITIONER),
    ("PractitionerRole", PRACTITIONER_ROLE),
    ("Encounter", ENCOUNTER),
    ("Condition", CONDITION),
    ("AllergyIntolerance", ALLERGY),
    ("MedicationRequest", MEDICATION_REQUEST),
    ("Observation", OBSERVATION),
    ("DiagnosticReport", DIAGNOSTIC_REPORT),
    ("DocumentReference", DOCUMENT_REFERENCE),
    ("Task", TASK),
    ("Communication", COMMUNICATION),
    ("AuditEvent", AUDIT_EVENT),
];

/// Other R4 types found in imported data: stored, read back and searchable by
/// the few parameters below (enough to resolve conditional references).
pub static OTHER_TYPES: &[(&str, &[Param])] = &[
    ("Organization", ORGANIZATION),
    ("Location", LOCATION),
    ("Immunization", PATIENT_SCOPED),
    ("Procedure", PATIENT_SCOPED),
    ("CarePlan", PATIENT_SCOPED),
    ("CareTeam", PATIENT_SCOPED),
    ("Goal", PATIENT_SCOPED),
    ("ImagingStudy", PATIENT_SCOPED),
    ("Device", PATIENT_SCOPED),
    ("Claim", PATIENT_SCOPED),
    ("ExplanationOfBenefit", PATIENT_SCOPED),
    ("Coverage", COVERAGE),
    ("MedicationAdministration", PATIENT_SCOPED),
    ("MedicationStatement", PATIENT_SCOPED),
    ("ServiceRequest", PATIENT_SCOPED),
    ("Appointment", APPOINTMENT),
    ("Specimen", PATIENT_SCOPED),
    ("Media", PATIENT_SCOPED),
    ("Provenance", &[]),
    ("Medication", &[]),
];

/// The parameters of a type, or `None` when the server does not know the type.
pub fn type_params(ty: &str) -> Option<&'static [Param]> {
    CORE_TYPES
        .iter()
        .chain(OTHER_TYPES.iter())
        .find(|(name, _)| *name == ty)
        .map(|(_, params)| *params)
}

pub fn is_core(ty: &str) -> bool {
    CORE_TYPES.iter().any(|(name, _)| *name == ty)
}

/// The parameter whose index rows hold `param`'s data. Parameters reading
/// the same elements share rows: `patient` (references to Patients in
/// `subject`) is answered from `subject`'s rows, `performer` from
/// `performer-type`'s, so each reference is indexed once.
pub fn storage_name(ty: &str, param: &'static Param) -> &'static str {
    let Some(params) = type_params(ty) else {
        return param.name;
    };
    let same = |q: &&Param| q.kind == param.kind && q.paths == param.paths;
    params
        .iter()
        .filter(same)
        .find(|q| q.target.is_none())
        .or_else(|| {
            params
                .iter()
                .filter(same)
                .find(|q| q.target == param.target)
        })
        .map_or(param.name, |q| q.name)
}

pub fn find_param(ty: &str, name: &str) -> Option<&'static Param> {
    type_params(ty)?.iter().find(|p| p.name == name)
}

/// The index rows of one resource.
#[derive(Debug, Default, PartialEq)]
pub struct IndexRows {
    pub strings: Vec<(&'static str, String)>,
    pub tokens: Vec<(&'static str, String, String)>,
    pub dates: Vec<(&'static str, i64, i64)>,
    pub refs: Vec<(&'static str, String)>,
    /// Observations only: what `Observation/$lastn` ranks them by.
    pub lastn: Option<LastnRow>,
}

/// What `Observation/$lastn` reads of an Observation: whose it is, the
/// test it is a result of, and when it took effect.
#[derive(Debug, Clone, PartialEq)]
pub struct LastnRow {
    /// `Type/id` of `Observation.subject`.
    pub subject: String,
    /// See [`lastn_group`].
    pub group: String,
    /// The last millisecond of `effective[x]` (the key `_sort=-date`
    /// orders by), or `i64::MIN` when there is none.
    pub effective: i64,
}

/// The test an Observation is a result of: the `system|code` of the first
/// coding that has a code, else the code's text (`text:` and the text),
/// else the empty string.
pub fn lastn_group(code: Option<&Value>) -> String {
    let Some(code) = code else {
        return String::new();
    };
    let coded = code
        .get("coding")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|c| {
            let code = c.get("code")?.as_str()?;
            let system = c.get("system").and_then(Value::as_str).unwrap_or("");
            Some(format!("{system}|{code}"))
        });
    coded
        .or_else(|| {
            code.get("text")
                .and_then(Value::as_str)
                .map(|t| format!("text:{t}"))
        })
        .unwrap_or_default()
}

fn lastn_row(resource: &Value) -> Option<LastnRow> {
    let subject = resource
        .get("subject")?
        .get("reference")?
        .as_str()
        .and_then(normalize_reference)?;
    let effective = ["effectiveDateTime", "effectivePeriod", "effectiveInstant"]
        .iter()
        .filter_map(|k| resource.get(*k).and_then(date_value))
        .map(|(_, hi)| hi)
        .max()
        .unwrap_or(i64::MIN);
    Some(LastnRow {
        subject,
        group: lastn_group(resource.get("code")),
        effective,
    })
}

pub fn extract(ty: &str, resource: &Value) -> IndexRows {
    let mut rows = IndexRows::default();
    let Some(params) = type_params(ty) else {
        return rows;
    };
    for param in params {
        if storage_name(ty, param) != param.name {
            continue;
        }
        for path in param.paths {
            let mut found = Vec::new();
            collect(resource, path, &mut found);
            for value in found {
                match param.kind {
                    Kind::String => string_values(value, &mut |s| {
                        rows.strings.push((param.name, s));
                    }),
                    Kind::Token => token_values(value, &mut |sys, code| {
                        rows.tokens.push((param.name, sys, code));
                    }),
                    Kind::Date => {
                        if let Some((lo, hi)) = date_value(value) {
                            rows.dates.push((param.name, lo, hi));
                        }
                    }
                    Kind::Reference => {
                        if let Some(r) = value
                            .get("reference")
                            .and_then(Value::as_str)
                            .and_then(normalize_reference)
                            && param.target.is_none_or(|t| r.split('/').next() == Some(t))
                        {
                            rows.refs.push((param.name, r));
                        }
                    }
                }
            }
        }
    }
    rows.strings.sort();
    rows.strings.dedup();
    rows.tokens.sort();
    rows.tokens.dedup();
    rows.refs.sort();
    rows.refs.dedup();
    if ty == "Observation" {
        rows.lastn = lastn_row(resource);
    }
    rows
}

/// Values at a dotted path, walking through arrays.
pub fn collect<'a>(value: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => {
            for item in items {
                collect(item, path, out);
            }
        }
        _ if path.is_empty() => out.push(value),
        Value::Object(map) => {
            let (head, rest) = path.split_once('.').unwrap_or((path, ""));
            if let Some(next) = map.get(head) {
                collect(next, rest, out);
            }
        }
        _ => {}
    }
}

fn string_values(value: &Value, emit: &mut impl FnMut(String)) {
    match value {
        Value::String(s) => {
            let whole = fold(s.trim());
            if whole.is_empty() {
                return;
            }
            for word in whole.split(|c: char| c.is_whitespace() || c == '-') {
                if !word.is_empty() && word != whole {
                    emit(word.to_string());
                }
            }
            emit(whole);
        }
        Value::Array(items) => items.iter().for_each(|v| string_values(v, emit)),
        Value::Object(map) => {
            // HumanName and Address: every part is searchable.
            for key in ["family", "given", "prefix", "suffix", "text"] {
                if let Some(v) = map.get(key) {
                    string_values(v, emit);
                }
            }
        }
        _ => {}
    }
}

fn token_values(value: &Value, emit: &mut impl FnMut(String, String)) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    match value {
        Value::String(s) => emit(String::new(), s.clone()),
        Value::Bool(b) => emit(String::new(), b.to_string()),
        Value::Object(map) => {
            if let Some(codings) = map.get("coding").and_then(Value::as_array) {
                for c in codings {
                    if c.get("code").is_some() {
                        emit(text(c.get("system")), text(c.get("code")));
                    }
                }
            } else if map.contains_key("code") {
                emit(text(map.get("system")), text(map.get("code")));
            } else if map.contains_key("value") {
                emit(text(map.get("system")), text(map.get("value")));
            }
        }
        _ => {}
    }
}

/// The range a date element covers: a date, dateTime or instant (see
/// [`time::range_ms`]), or a Period (an open end is unbounded).
fn date_value(value: &Value) -> Option<(i64, i64)> {
    match value {
        Value::String(s) => time::range_ms(s),
        Value::Object(map) => {
            let lo = map
                .get("start")
                .and_then(Value::as_str)
                .and_then(time::range_ms);
            let hi = map
                .get("end")
                .and_then(Value::as_str)
                .and_then(time::range_ms);
            if lo.is_none() && hi.is_none() {
                return None;
            }
            Some((lo.map_or(i64::MIN, |r| r.0), hi.map_or(i64::MAX, |r| r.1)))
        }
        _ => None,
    }
}

/// `Type/id` from a relative or absolute literal reference (version dropped).
/// Contained (`#x`), `urn:` and conditional references are not indexed.
pub fn normalize_reference(r: &str) -> Option<String> {
    if r.starts_with('#') || r.starts_with("urn:") || r.contains('?') {
        return None;
    }
    let r = r.split("/_history/").next().unwrap_or(r);
    let mut parts = r.trim_end_matches('/').rsplit('/');
    let id = parts.next()?;
    let ty = parts.next()?;
    if is_type_name(ty) && is_valid_id(id) {
        Some(format!("{ty}/{id}"))
    } else {
        None
    }
}

pub fn is_type_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

/// FHIR ids: 1–64 of `A-Z a-z 0-9 - .`
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_are_indexed_folded_whole_and_by_word() {
        let pat = json!({"resourceType":"Patient","name":[
            {"family":"Østergaard","given":["Søren"]},
            {"family":"Nguyễn","given":["Thị","Hương"]},
            {"family":"Wójcik-Łukasiewicz","given":["Yıldız"]},
            {"text":"Straße"}]});
        let rows = extract("Patient", &pat);
        for word in [
            "ostergaard",
            "soren",
            "nguyen",
            "thi",
            "huong",
            "wojcik-lukasiewicz",
            "wojcik",
            "lukasiewicz",
            "yildiz",
            "strasse",
        ] {
            assert!(
                rows.strings.contains(&("name", word.to_string())),
                "{word} in {:?}",
                rows.strings
            );
        }
        assert!(rows.strings.contains(&("family", "ostergaard".into())));
        assert!(rows.strings.contains(&("given", "soren".into())));
    }

    #[test]
    fn dates_and_periods_are_indexed_as_the_span_they_cover() {
        let day = time::range_ms("2024-02-15").unwrap();
        let obs = json!({"resourceType":"Observation","effectiveDateTime":"2024-02-15"});
        assert_eq!(
            extract("Observation", &obs).dates,
            vec![("date", day.0, day.1)]
        );
        // A time without a zone is read as UTC, as the client reads it.
        let floating =
            json!({"resourceType":"Observation","effectiveDateTime":"2024-02-15T10:00:00"});
        let utc = time::range_ms("2024-02-15T10:00:00Z").unwrap();
        assert_eq!(
            extract("Observation", &floating).dates,
            vec![("date", utc.0, utc.1)]
        );
        let open = json!({"resourceType":"Encounter","period":{"start":"2024-02-15"}});
        assert_eq!(
            extract("Encounter", &open).dates,
            vec![("date", day.0, i64::MAX)]
        );
        let until = json!({"resourceType":"Encounter","period":{"end":"2024-02-15"}});
        assert_eq!(
            extract("Encounter", &until).dates,
            vec![("date", i64::MIN, day.1)]
        );
        let neither = json!({"resourceType":"Encounter","period":{},"status":"x"});
        assert!(extract("Encounter", &neither).dates.is_empty());
        let garbage = json!({"resourceType":"Observation","effectiveDateTime":"last Tuesday"});
        assert!(extract("Observation", &garbage).dates.is_empty());
    }

    #[test]
    fn patient_rows() {
        let pat = json!({"resourceType":"Patient","name":[{"family":"Ordóñez","given":["Bernardo","José"]}],
            "birthDate":"1984-03-05","identifier":[{"system":"urn:x","value":"42"}],"gender":"male"});
        let rows = extract("Patient", &pat);
        assert!(rows.strings.contains(&("name", "ordonez".into())));
        assert!(rows.strings.contains(&("given", "jose".into())));
        assert!(
            rows.tokens
                .contains(&("identifier", "urn:x".into(), "42".into()))
        );
        assert!(
            rows.tokens
                .contains(&("gender", String::new(), "male".into()))
        );
        assert_eq!(rows.dates.len(), 1);
    }

    #[test]
    fn references_are_normalised_and_filtered_by_target() {
        let obs = json!({"resourceType":"Observation","subject":{"reference":"http://x/fhir/Patient/7/_history/2"}});
        let rows = extract("Observation", &obs);
        assert_eq!(rows.refs, vec![("subject", "Patient/7".to_string())]);
        let allergy =
            json!({"resourceType":"AllergyIntolerance","patient":{"reference":"Patient/7"}});
        let rows = extract("AllergyIntolerance", &allergy);
        assert_eq!(rows.refs, vec![("patient", "Patient/7".to_string())]);
        let grp = json!({"resourceType":"Observation","subject":{"reference":"Group/7"}});
        let rows = extract("Observation", &grp);
        assert_eq!(rows.refs, vec![("subject", "Group/7".to_string())]);
        assert_eq!(normalize_reference("urn:uuid:1"), None);
    }

    #[test]
    fn observations_are_grouped_by_their_first_coded_coding_else_text() {
        let obs = json!({"resourceType":"Observation","subject":{"reference":"Patient/7"},
            "code":{"coding":[{"system":"urn:x","display":"no code"},
                              {"system":"http://loinc.org","code":"2345-7"},
                              {"system":"urn:local","code":"GLU"}],"text":"Glucose"},
            "effectiveDateTime":"2024-02-15T10:00:00Z"});
        let row = extract("Observation", &obs).lastn.unwrap();
        assert_eq!(row.subject, "Patient/7");
        assert_eq!(row.group, "http://loinc.org|2345-7");
        assert_eq!(
            row.effective,
            time::range_ms("2024-02-15T10:00:00Z").unwrap().1
        );
        let text = json!({"resourceType":"Observation","subject":{"reference":"Patient/7"},
            "code":{"text":"Glucose, fingerstick"}});
        let row = extract("Observation", &text).lastn.unwrap();
        assert_eq!(
            (row.group.as_str(), row.effective),
            ("text:Glucose, fingerstick", i64::MIN)
        );
        let no_system = json!({"resourceType":"Observation","subject":{"reference":"Patient/7"},
            "code":{"coding":[{"code":"K"}]}});
        assert_eq!(
            extract("Observation", &no_system).lastn.unwrap().group,
            "|K"
        );
        let nobody = json!({"resourceType":"Observation","code":{"text":"x"}});
        assert_eq!(extract("Observation", &nobody).lastn, None);
        let condition = json!({"resourceType":"Condition","subject":{"reference":"Patient/7"}});
        assert_eq!(extract("Condition", &condition).lastn, None);
    }

    proptest::proptest! {
        #[test]
        fn indexed_date_ranges_are_ordered(s in "\\PC{0,30}") {
            let obs = json!({"resourceType":"Observation","effectiveDateTime": s});
            for (_, lo, hi) in extract("Observation", &obs).dates {
                proptest::prop_assert!(lo <= hi);
            }
        }

        #[test]
        fn a_typed_prefix_finds_the_indexed_name(name in "[A-Za-zÀ-ÿłŁıøØßđĐæÆễ]{1,12}", cut in 1usize..12) {
            // What prefix search relies on: the folded prefix of what was typed
            // is a prefix of a word the name was indexed under.
            let pat = json!({"resourceType":"Patient","name":[{"family": name.clone()}]});
            let rows = extract("Patient", &pat);
            let typed: String = name.chars().take(cut).collect();
            let folded = fold(&typed);
            proptest::prop_assert!(rows.strings.iter().any(|(_, v)| v.starts_with(&folded)));
        }

        #[test]
        fn references_never_panic(s in "\\PC{0,40}") {
            if let Some(r) = normalize_reference(&s) {
                let (ty, id) = r.split_once('/').unwrap();
                proptest::prop_assert!(is_type_name(ty) && is_valid_id(id));
            }
        }
    }
}
