//! The searches a chart needs, and the chart made from their replies.
//!
//! One round trip: the searches go out as one batch (or in parallel where a
//! server refuses batch). Results come from `Observation/$lastn` where the
//! server offers it (the newest values of every test); elsewhere from a
//! window of the newest results plus the latest of each key test asked for
//! on its own, so a busy record (glucose four times a day) never pushes the
//! last potassium off the chart.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::contract::{ApiError, Features};
use crate::chart::results::{KEY_LABS, KEY_VITALS, LASTN_MAX};
use crate::chart::{ChartData, PatientRow, RecordNumber, ResultsFetch, Section, Unreadable};
use crate::fhir::codes;
use crate::fhir::model::{Bundle, Observation, Patient};
use crate::fhir::time;

/// Rows of each chart section asked for when a chart opens.
const WINDOW_LAB_COUNT: u32 = 200;
const WINDOW_VITAL_COUNT: u32 = 100;
const LIST_COUNT: u32 = 100;
const NOTE_COUNT: u32 = 50;
const ENCOUNTER_COUNT: u32 = 10;
const SAME_NAME_COUNT: u32 = 10;
/// Values of one test asked for by the history view.
pub const HISTORY_COUNT: u32 = 500;

/// Result statuses that are values; a server that honours the filter never
/// lets a cancelled result displace a valid one in `$lastn`.
pub const VALUE_STATUSES: &str = "final,amended,corrected,preliminary,registered,unknown";

/// What each search of a chart is for, in the order the replies are read.
#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Patient,
    Allergies,
    Conditions,
    Medications,
    Vitals,
    Labs,
    Encounters,
    Notes,
    Tasks,
    SameName,
    /// The latest value of one key test (servers without `$lastn`).
    KeyTest {
        vital: bool,
    },
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `Family` and first given name of a list entry's `Family, Given Middle`.
fn name_parts(name: &str) -> Option<(String, String)> {
    let (family, given) = name.split_once(',')?;
    let given = given.split_whitespace().next()?;
    let family = family.trim();
    (!family.is_empty()).then(|| (family.to_string(), given.to_string()))
}

/// The searches of a chart with what each is for. References are typed
/// (`Patient/<id>`).
pub fn queries(patient_id: &str, name: Option<&str>, features: Features) -> Vec<(Part, String)> {
    let p = format!("Patient/{}", encode(patient_id));
    let mut q = vec![
        (Part::Patient, p.clone()),
        (
            Part::Allergies,
            format!("AllergyIntolerance?patient={p}&_count={LIST_COUNT}"),
        ),
        (
            Part::Conditions,
            format!(
                "Condition?patient={p}&clinical-status=active,recurrence,relapse&_count={LIST_COUNT}"
            ),
        ),
        (
            Part::Medications,
            format!(
                "MedicationRequest?patient={p}&status=active,on-hold,unknown&_count={LIST_COUNT}"
            ),
        ),
    ];
    for (part, category, window) in [
        (
            Part::Vitals,
            codes::CATEGORY_VITAL_SIGNS,
            WINDOW_VITAL_COUNT,
        ),
        (Part::Labs, codes::CATEGORY_LABORATORY, WINDOW_LAB_COUNT),
    ] {
        let url = if features.lastn {
            format!(
                "Observation/$lastn?patient={p}&category={category}&max={LASTN_MAX}&status={VALUE_STATUSES}"
            )
        } else {
            format!(
                "Observation?patient={p}&category={category}&status={VALUE_STATUSES}&_sort=-date&_count={window}"
            )
        };
        q.push((part, url));
    }
    q.extend([
        (
            Part::Encounters,
            format!("Encounter?patient={p}&_sort=-date&_count={ENCOUNTER_COUNT}"),
        ),
        (
            Part::Notes,
            format!("DocumentReference?patient={p}&_sort=-date&_count={NOTE_COUNT}"),
        ),
        (Part::Tasks, format!("Task?patient={p}&_count=50")),
    ]);
    if let Some((family, given)) = name.and_then(name_parts) {
        q.push((
            Part::SameName,
            format!(
                "Patient?family={}&given={}&_count={SAME_NAME_COUNT}&_elements={}",
                encode(&family),
                encode(&given),
                crate::api::PATIENT_ELEMENTS
            ),
        ));
    }
    if !features.lastn {
        for (vital, list) in [(false, &KEY_LABS[..]), (true, &KEY_VITALS[..])] {
            for (code, _) in list {
                q.push((
                    Part::KeyTest { vital },
                    format!(
                        "Observation?patient={p}&code={}&status={VALUE_STATUSES}&_sort=-date&_count=1",
                        encode(&format!("{}|{code}", codes::LOINC))
                    ),
                ));
            }
        }
    }
    q
}

/// The search for every value of one test.
pub fn history_query(patient_id: &str, code: &str) -> String {
    format!(
        "Observation?patient=Patient/{}&code={}&status={VALUE_STATUSES}&_sort=-date&_count={HISTORY_COUNT}",
        encode(patient_id),
        encode(code)
    )
}

/// Whether a reference string points at `Patient/<id>`, relative or absolute.
pub fn refers_to_patient(reference: &str, patient_id: &str) -> bool {
    let Some(id) = reference.strip_prefix("Patient/").or_else(|| {
        reference
            .rfind("/Patient/")
            .map(|i| &reference[i + "/Patient/".len()..])
    }) else {
        return false;
    };
    // An absolute URL must really end in `/Patient/<id>`, and a relative one
    // must be exactly `Patient/<id>`.
    id == patient_id && (reference.starts_with("Patient/") || reference.contains("://"))
}

/// Whether a resource's `patient`, `subject` or `for` reference is the patient.
pub fn belongs_to_patient(resource: &Value, patient_id: &str) -> bool {
    ["patient", "subject", "for"].iter().any(|field| {
        resource
            .get(*field)
            .and_then(|r| r.get("reference"))
            .and_then(Value::as_str)
            .is_some_and(|r| refers_to_patient(r, patient_id))
    })
}

pub fn resource_type(v: Option<&Value>) -> Option<&str> {
    v?.get("resourceType")?.as_str()
}

/// A FHIR resource type name (`Patient`): safe to put in a URL path.
pub fn is_type_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

/// One section from a search reply: the patient's resources of `kind`,
/// decoded one by one (a record that fails is kept raw and counted, never
/// dropped); the second value counts resources of other patients left out.
pub fn section<T: DeserializeOwned>(
    part: Result<Value, ApiError>,
    kind: &str,
    patient_id: &str,
) -> (Section<T>, usize) {
    let bundle: Bundle = match part.and_then(crate::api::decode) {
        Ok(b) => b,
        Err(e) => return (Section::failed(e.to_string()), 0),
    };
    let mut out = Section {
        more_on_server: bundle.next_url().is_some(),
        ..Section::default()
    };
    let mut others = 0;
    for resource in bundle.entry.into_iter().filter_map(|e| e.resource) {
        // `_include`d resources and outcomes are not the section's data.
        if resource_type(Some(&resource)) != Some(kind) {
            continue;
        }
        if !belongs_to_patient(&resource, patient_id) {
            others += 1;
            continue;
        }
        match serde_json::from_value::<T>(resource.clone()) {
            Ok(t) => out.items.push(t),
            Err(e) => out.unreadable.push(Unreadable {
                raw: resource,
                why: e.to_string(),
            }),
        }
    }
    (out, others)
}

fn newest_first<T>(items: &mut [T], when: impl Fn(&T) -> Option<&str>) {
    items.sort_by_key(|t| std::cmp::Reverse(when(t).and_then(time::instant)));
}

/// Apply on the client what the chart's searches asked the server for
/// (category, newest first), since a server may ignore any search parameter
/// or `_sort`. Status is not filtered here: the panes read it with the rules
/// of [`crate::fhir::status`] and count what they leave out.
pub fn enforce_order(chart: &mut ChartData) {
    chart
        .vitals
        .items
        .retain(|o| o.is_category(codes::CATEGORY_VITAL_SIGNS));
    chart
        .labs
        .items
        .retain(|o| o.is_category(codes::CATEGORY_LABORATORY));
    newest_first(&mut chart.vitals.items, |o| o.when());
    newest_first(&mut chart.labs.items, |o| o.when());
    newest_first(&mut chart.encounters.items, |e| {
        e.period.as_ref().and_then(|p| p.start.as_deref())
    });
    newest_first(&mut chart.notes.items, |n| n.date.as_deref());
    newest_first(&mut chart.tasks.items, |t| t.authored_on.as_deref());
}

/// Add the latest values of key tests to a section, skipping any already there.
fn merge_key_tests(into: &mut Section<Observation>, extra: Section<Observation>) {
    if into.failed.is_some() {
        return;
    }
    for o in extra.items {
        let dup = o.id.is_some() && into.items.iter().any(|x| x.id == o.id);
        if !dup {
            into.items.push(o);
        }
    }
    for u in extra.unreadable {
        if !into.unreadable.contains(&u) {
            into.unreadable.push(u);
        }
    }
}

/// Other patients the server lists under the same family and first given
/// name (folded: "Nguyen" and "Nguyễn" are the same name to a reader).
fn same_name(
    part: Result<Value, ApiError>,
    patient: &Patient,
    rule: &RecordNumber,
) -> Vec<PatientRow> {
    let Ok(bundle) = part.and_then(crate::api::decode::<Bundle>) else {
        return Vec::new();
    };
    let mine = patient.display_name();
    bundle
        .entry
        .iter()
        .filter_map(|e| e.resource.as_ref())
        .filter(|r| resource_type(Some(r)) == Some("Patient"))
        .filter_map(|r| serde_json::from_value::<Patient>(r.clone()).ok())
        .filter(|p| p.id.is_some() && p.id != patient.id)
        .filter_map(|p| rule.row(&p))
        .filter(|r| crate::chart::same_name(&r.name, &mine))
        .collect()
}

/// The chart from the replies to [`queries`], in that order.
pub fn from_parts(
    patient_id: &str,
    queries: &[(Part, String)],
    parts: Vec<Result<Value, ApiError>>,
    features: Features,
    rule: &RecordNumber,
) -> Result<ChartData, ApiError> {
    let mut replies = queries.iter().map(|(p, _)| p.clone()).zip(
        parts
            .into_iter()
            .chain(std::iter::repeat_with(|| Err(ApiError::local("missing")))),
    );
    let Some((Part::Patient, first)) = replies.next() else {
        return Err(ApiError::local("no patient in the chart's searches"));
    };
    let patient: Patient = crate::api::decode(first?)?;
    if patient.id.as_deref() != Some(patient_id) {
        return Err(ApiError::local("the server returned a different patient"));
    }
    let mut chart = ChartData::empty(patient);
    chart.results_fetch = if features.lastn {
        ResultsFetch::LastN(LASTN_MAX)
    } else {
        ResultsFetch::Window
    };
    let mut others = 0;
    let mut key_labs = Section::default();
    let mut key_vitals = Section::default();
    for (part, reply) in replies {
        macro_rules! take {
            ($field:ident, $kind:literal) => {{
                let (s, n) = section(reply, $kind, patient_id);
                others += n;
                chart.$field = s;
            }};
        }
        match part {
            Part::Patient => {}
            Part::Allergies => take!(allergies, "AllergyIntolerance"),
            Part::Conditions => take!(conditions, "Condition"),
            Part::Medications => take!(medications, "MedicationRequest"),
            Part::Vitals => take!(vitals, "Observation"),
            Part::Labs => take!(labs, "Observation"),
            Part::Encounters => take!(encounters, "Encounter"),
            Part::Notes => take!(notes, "DocumentReference"),
            Part::Tasks => take!(tasks, "Task"),
            Part::SameName => chart.same_name = same_name(reply, &chart.patient, rule),
            Part::KeyTest { vital } => {
                // A key test the server refused or does not know is simply
                // not added: the window reply already says what it could.
                let (s, n) = section::<Observation>(reply, "Observation", patient_id);
                others += n;
                let into = if vital {
                    &mut key_vitals
                } else {
                    &mut key_labs
                };
                into.items.extend(s.items);
                into.unreadable.extend(s.unreadable);
            }
        }
    }
    merge_key_tests(&mut chart.labs, key_labs);
    merge_key_tests(&mut chart.vitals, key_vitals);
    chart.other_patients_ignored = others;
    enforce_order(&mut chart);
    Ok(chart)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn searchset(resources: Vec<Value>) -> Result<Value, ApiError> {
        Ok(json!({
            "resourceType": "Bundle", "type": "searchset",
            "entry": resources.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>(),
        }))
    }

    fn obs(id: &str, patient: &str, category: &str, when: &str) -> Value {
        json!({"resourceType": "Observation", "id": id, "status": "final",
            "subject": {"reference": patient},
            "category": [{"coding": [{"system": codes::OBSERVATION_CATEGORY, "code": category}]}],
            "code": {"text": id}, "effectiveDateTime": when,
            "valueQuantity": {"value": 1.0}})
    }

    /// What a server that ignores every search parameter answers to each of
    /// the chart's searches: everything of that type, both patients mixed.
    fn unfiltered_replies() -> Vec<Result<Value, ApiError>> {
        let allergies = vec![
            json!({"resourceType": "AllergyIntolerance", "id": "a1",
                "patient": {"reference": "Patient/p1"}, "code": {"text": "Penicillin"}}),
            json!({"resourceType": "AllergyIntolerance", "id": "a2",
                "patient": {"reference": "Patient/p2"}, "code": {"text": "Peanut"}}),
            json!({"resourceType": "AllergyIntolerance", "id": "a3",
                "patient": {"reference": "http://other.example/fhir/Patient/p1"},
                "code": {"text": "Latex"}}),
            json!({"resourceType": "AllergyIntolerance", "id": "a4",
                "patient": {"reference": "http://other.example/fhir/Patient/p11"},
                "code": {"text": "Shellfish"}}),
        ];
        let conditions = vec![
            json!({"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"},
                "clinicalStatus": {"coding": [{"code": "active"}]}, "code": {"text": "Asthma"}}),
            json!({"resourceType": "Condition", "id": "c3", "subject": {"reference": "Patient/p2"},
                "clinicalStatus": {"coding": [{"code": "active"}]}, "code": {"text": "Diabetes"}}),
        ];
        let meds = vec![
            json!({"resourceType": "MedicationRequest", "id": "m1", "status": "active",
                "subject": {"reference": "Patient/p1"}}),
            json!({"resourceType": "MedicationRequest", "id": "m3", "status": "active",
                "subject": {"reference": "Patient/p2"}}),
        ];
        let observations = vec![
            obs("v-old", "Patient/p1", "vital-signs", "2026-01-01T08:00:00Z"),
            obs("lab", "Patient/p1", "laboratory", "2026-06-01T08:00:00Z"),
            obs("v-new", "Patient/p1", "vital-signs", "2026-11-01T08:00:00Z"),
            obs(
                "v-other",
                "Patient/p2",
                "vital-signs",
                "2026-11-20T08:00:00Z",
            ),
        ];
        let encounters = vec![
            json!({"resourceType": "Encounter", "id": "e-old", "subject": {"reference": "Patient/p1"},
                "period": {"start": "2020-01-01"}}),
            json!({"resourceType": "Encounter", "id": "e-new", "subject": {"reference": "Patient/p1"},
                "period": {"start": "2026-02-01T10:00:00+01:00"}}),
            json!({"resourceType": "Encounter", "id": "e-other", "subject": {"reference": "Patient/p2"}}),
        ];
        let notes = vec![
            json!({"resourceType": "DocumentReference", "id": "n-old",
                "subject": {"reference": "Patient/p1"}, "date": "2025-01-01T00:00:00Z"}),
            json!({"resourceType": "DocumentReference", "id": "n-new",
                "subject": {"reference": "Patient/p1"}, "date": "2026-01-01T00:00:00Z"}),
            json!({"resourceType": "DocumentReference", "id": "n-none"}),
        ];
        let tasks = vec![
            json!({"resourceType": "Task", "id": "t1", "status": "requested",
                "for": {"reference": "Patient/p1"}}),
            json!({"resourceType": "Task", "id": "t2", "status": "requested",
                "for": {"reference": "Patient/p2"}}),
        ];
        vec![
            Ok(json!({"resourceType": "Patient", "id": "p1",
                "name": [{"family": "Nguyễn", "given": ["Thị", "Lan"]}]})),
            searchset(allergies),
            searchset(conditions),
            searchset(meds),
            searchset(observations.clone()),
            searchset(observations),
            searchset(encounters),
            searchset(notes),
            searchset(tasks),
        ]
    }

    fn lastn() -> Features {
        Features {
            lastn: true,
            conditional_create: true,
        }
    }

    fn ids<T>(section: &Section<T>, id: impl Fn(&T) -> Option<&str>) -> Vec<String> {
        section
            .items
            .iter()
            .filter_map(|x| id(x).map(str::to_string))
            .collect()
    }

    fn chart(parts: Vec<Result<Value, ApiError>>) -> ChartData {
        let q = queries("p1", None, lastn());
        from_parts("p1", &q, parts, lastn(), &RecordNumber::default()).unwrap()
    }

    #[test]
    fn only_the_open_patients_resources_are_kept() {
        let chart = chart(unfiltered_replies());
        assert_eq!(
            ids(&chart.allergies, |a| a.id.as_deref()),
            ["a1", "a3"],
            "relative and absolute references to the patient are kept, others dropped"
        );
        assert_eq!(ids(&chart.tasks, |t| t.id.as_deref()), ["t1"]);
        assert_eq!(ids(&chart.notes, |n| n.id.as_deref()), ["n-new", "n-old"]);
        // a2, a4, c3, m3, v-other twice, e-other, n-none, t2.
        assert_eq!(chart.other_patients_ignored, 9);
        assert_eq!(
            ids(&chart.vitals, |o| o.id.as_deref()),
            ["v-new", "v-old"],
            "a lab is never listed under vitals; newest first"
        );
        assert_eq!(ids(&chart.labs, |o| o.id.as_deref()), ["lab"]);
        assert_eq!(
            ids(&chart.encounters, |e| e.id.as_deref()),
            ["e-new", "e-old"]
        );
    }

    #[test]
    fn a_reply_for_another_patient_is_refused() {
        let mut parts = unfiltered_replies();
        parts[0] = Ok(json!({"resourceType": "Patient", "id": "p2"}));
        let q = queries("p1", None, lastn());
        assert!(from_parts("p1", &q, parts, lastn(), &RecordNumber::default()).is_err());
    }

    #[test]
    fn patient_references_match_exactly() {
        assert!(refers_to_patient("Patient/p1", "p1"));
        assert!(refers_to_patient("https://x.example/fhir/Patient/p1", "p1"));
        assert!(!refers_to_patient("Patient/p11", "p1"));
        assert!(!refers_to_patient("Group/p1", "p1"));
        assert!(!refers_to_patient("Other/Patient/p1", "p1"));
        assert!(!refers_to_patient("p1", "p1"));
    }

    #[test]
    fn a_record_that_cannot_be_read_is_counted_not_dropped() {
        let mut parts = unfiltered_replies();
        parts[1] = searchset(vec![
            json!({"resourceType": "AllergyIntolerance", "id": "ok",
                "patient": {"reference": "Patient/p1"}, "code": {"text": "Penicillin"}}),
            json!({"resourceType": "AllergyIntolerance", "id": "bad",
                "patient": {"reference": "Patient/p1"}, "code": "penicillin"}),
            // One element where the spec has an array: read, not refused.
            json!({"resourceType": "AllergyIntolerance", "id": "lenient",
                "patient": {"reference": "Patient/p1"},
                "code": {"coding": {"system": codes::SNOMED, "code": "300916003"}, "text": "Latex"},
                "reaction": {"manifestation": {"text": "Hives"}}}),
        ]);
        let c = chart(parts);
        assert_eq!(ids(&c.allergies, |a| a.id.as_deref()), ["ok", "lenient"]);
        assert_eq!(c.allergies.unreadable.len(), 1);
        assert_eq!(c.allergies.unreadable[0].raw["id"], "bad");
        assert!(!c.allergies.is_complete());
        assert_eq!(
            c.allergies.items[1].reaction[0].manifestation[0].label(),
            Some("Hives")
        );
        assert_eq!(c.unreadable().len(), 1);
    }

    #[test]
    fn a_section_cut_by_paging_says_so() {
        let mut parts = unfiltered_replies();
        parts[7] = Ok(json!({"resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": "next", "url": "http://x/fhir?page=2"}],
            "entry": [{"resource": {"resourceType": "DocumentReference", "id": "n1",
                "subject": {"reference": "Patient/p1"}}}]}));
        let c = chart(parts);
        assert!(c.notes.more_on_server);
        assert!(!c.allergies.more_on_server);
    }

    #[test]
    fn without_lastn_key_tests_are_asked_for_one_by_one() {
        let window = Features {
            lastn: false,
            conditional_create: true,
        };
        let q = queries("p1", Some("Nguyễn, Thị Lan"), window);
        let keys = q
            .iter()
            .filter(|(p, _)| matches!(p, Part::KeyTest { .. }))
            .count();
        assert_eq!(keys, KEY_LABS.len() + KEY_VITALS.len());
        assert!(
            q.iter().any(|(p, u)| *p == Part::SameName
                && u.contains("family=Nguy%E1%BB%85n&given=Th%E1%BB%8B"))
        );
        assert!(
            queries("p1", None, lastn())
                .iter()
                .all(|(p, _)| !matches!(p, Part::KeyTest { .. }))
        );
        assert!(
            queries("p1", None, lastn())[5]
                .1
                .starts_with("Observation/$lastn?patient=Patient/p1&category=laboratory")
        );
        // Replies: the window holds 200 glucose values; the potassium comes
        // from its own search and joins the labs.
        let mut parts = unfiltered_replies();
        let glucose: Vec<Value> = (0..200)
            .map(|i| {
                let mut o = obs(
                    &format!("g{i}"),
                    "Patient/p1",
                    "laboratory",
                    "2026-11-20T08:00:00Z",
                );
                o["code"] = json!({"coding": [{"system": codes::LOINC, "code": "2345-7"}]});
                o
            })
            .collect();
        parts[5] = Ok(json!({"resourceType": "Bundle", "type": "searchset",
            "link": [{"relation": "next", "url": "http://x/next"}],
            "entry": glucose.into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()}));
        parts.push(searchset(vec![])); // same name: nobody
        let mut potassium = obs("k1", "Patient/p1", "laboratory", "2025-01-01T08:00:00Z");
        potassium["code"] = json!({"coding": [{"system": codes::LOINC, "code": "2823-3"}]});
        parts.push(searchset(vec![potassium]));
        let c = from_parts("p1", &q, parts, window, &RecordNumber::default()).unwrap();
        assert_eq!(c.labs.items.len(), 201);
        assert!(c.labs.items.iter().any(|o| o.id.as_deref() == Some("k1")));
        assert!(
            c.labs.more_on_server,
            "the window was cut, and the chart says so"
        );
        assert_eq!(c.results_fetch, ResultsFetch::Window);
    }

    #[test]
    fn same_name_patients_are_found_by_folded_name() {
        let q = queries("p1", Some("Nguyễn, Thị Lan"), lastn());
        let mut parts = unfiltered_replies();
        parts.push(searchset(vec![
            json!({"resourceType": "Patient", "id": "p1", "name": [{"family": "Nguyễn", "given": ["Thị"]}]}),
            json!({"resourceType": "Patient", "id": "p9", "birthDate": "1970-01-01",
                "name": [{"family": "Nguyen", "given": ["Thi"]}],
                "identifier": [{"system": codes::MRN_SYSTEM, "value": "00099999"}]}),
            json!({"resourceType": "Patient", "id": "p8", "name": [{"family": "Nguyenova", "given": ["Thi"]}]}),
        ]));
        let c = from_parts("p1", &q, parts, lastn(), &RecordNumber::default()).unwrap();
        let others: Vec<&str> = c.same_name.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(others, ["p9"]);
        assert_eq!(c.same_name[0].record_label(), "MRN 00099999");
    }
}
