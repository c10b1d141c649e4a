use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

use super::*;
use crate::fhir::codes;

fn anchor() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 15, 0, 0)
        .single()
        .unwrap_or_default()
}

fn options(patients: usize, seed: u64) -> DemoOptions {
    DemoOptions {
        patients,
        seed,
        anchor: anchor(),
    }
}

/// A 200-patient clinic shared by the coherence tests.
fn clinic() -> &'static [Value] {
    static CLINIC: OnceLock<Vec<Value>> = OnceLock::new();
    CLINIC.get_or_init(|| generate(options(200, 7)).collect())
}

fn of_type<'a>(resources: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    resources.iter().filter(move |r| r["resourceType"] == kind)
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn patient_of(r: &Value) -> &str {
    ["/subject/reference", "/patient/reference", "/for/reference"]
        .iter()
        .map(|p| str_at(r, p))
        .find(|s| !s.is_empty())
        .unwrap_or("")
}

fn time_at(v: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    let text = v.pointer(pointer)?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn collect_references<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "reference" {
                    if let Some(s) = value.as_str() {
                        out.push(s);
                    }
                } else {
                    collect_references(value, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_references(i, out)),
        _ => {}
    }
}

#[test]
fn same_options_give_identical_json() {
    let a: Vec<Value> = generate(options(40, 3)).collect();
    let b: Vec<Value> = generate(options(40, 3)).collect();
    assert!(!a.is_empty());
    assert_eq!(
        serde_json::to_string(&a).ok(),
        serde_json::to_string(&b).ok()
    );
}

#[test]
fn another_seed_gives_another_clinic() {
    let a: Vec<Value> = generate(options(40, 3)).collect();
    let b: Vec<Value> = generate(options(40, 4)).collect();
    assert_ne!(a, b);
    let names = |rs: &[Value]| -> Vec<String> {
        of_type(rs, "Patient")
            .map(|p| str_at(p, "/name/0/text").to_string())
            .collect()
    };
    assert_ne!(names(&a), names(&b));
}

#[test]
fn a_patient_is_rebuilt_alone_exactly_as_in_the_population() {
    let opts = options(30, 11);
    let whole: Vec<Value> = generate(opts).collect();
    let alone = patient_resources(&opts, 17);
    assert_eq!(alone[0]["id"], "p000017");
    let start = whole
        .iter()
        .position(|r| r["id"] == "p000017")
        .unwrap_or(usize::MAX);
    assert!(start < whole.len());
    assert_eq!(&whole[start..start + alone.len()], &alone[..]);
}

#[test]
fn the_patient_alone_is_the_first_resource_of_the_chart() {
    let opts = options(50, 9);
    for index in [0, 13, 49] {
        assert_eq!(patient(&opts, index), patient_resources(&opts, index)[0]);
    }
}

#[test]
fn every_resource_has_a_type_and_a_unique_valid_id() {
    let mut seen = HashSet::new();
    for r in clinic() {
        let kind = str_at(r, "/resourceType");
        let id = str_at(r, "/id");
        assert!(!kind.is_empty(), "resource without resourceType: {r}");
        assert!(
            !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
            "bad id {id:?}"
        );
        assert!(seen.insert(format!("{kind}/{id}")), "duplicate {kind}/{id}");
    }
}

#[test]
fn every_reference_points_at_a_generated_resource() {
    let resources = clinic();
    let known: HashSet<String> = resources
        .iter()
        .map(|r| format!("{}/{}", str_at(r, "/resourceType"), str_at(r, "/id")))
        .collect();
    let mut references = Vec::new();
    for r in resources {
        collect_references(r, &mut references);
    }
    assert!(references.len() > resources.len());
    for reference in references {
        assert!(known.contains(reference), "dangling reference {reference}");
    }
}

#[test]
fn references_point_backwards_so_a_stream_can_be_loaded_in_order() {
    let mut seen = HashSet::new();
    for r in clinic() {
        let mut references = Vec::new();
        collect_references(r, &mut references);
        for reference in references {
            assert!(
                seen.contains(reference),
                "{reference} used before it was written"
            );
        }
        seen.insert(format!(
            "{}/{}",
            str_at(r, "/resourceType"),
            str_at(r, "/id")
        ));
    }
}

#[test]
fn patients_come_first_and_carry_mrn_name_birth_date_and_contact() {
    let opts = options(60, 5);
    let mut mrns = HashSet::new();
    for index in 0..opts.patients {
        let resources = patient_resources(&opts, index);
        let p = &resources[0];
        assert_eq!(p["resourceType"], "Patient");
        assert_eq!(p["id"], format!("p{index:06}"));
        let identifier = &p["identifier"][0];
        assert_eq!(identifier["system"], codes::MRN_SYSTEM);
        assert_eq!(
            identifier["type"]["coding"][0]["system"],
            codes::IDENTIFIER_TYPE
        );
        assert_eq!(
            identifier["type"]["coding"][0]["code"],
            codes::IDENTIFIER_TYPE_MRN
        );
        let mrn = str_at(identifier, "/value");
        assert!(
            mrn.len() == 8 && mrn.chars().all(|c| c.is_ascii_digit()),
            "{mrn}"
        );
        assert!(mrns.insert(mrn.to_string()), "MRN {mrn} given twice");
        assert!(!str_at(p, "/name/0/family").is_empty());
        assert!(!str_at(p, "/name/0/given/0").is_empty());
        assert!(matches!(str_at(p, "/gender"), "female" | "male"));
        let birth = chrono::NaiveDate::parse_from_str(str_at(p, "/birthDate"), "%Y-%m-%d");
        let age = birth
            .ok()
            .and_then(|b| anchor().date_naive().years_since(b))
            .unwrap_or(200);
        assert!(age <= 95, "age {age}");
        assert!(str_at(p, "/telecom/0/value").contains("555-01"));
        assert!(!str_at(p, "/address/0/city").is_empty());
    }
}

#[test]
fn names_are_varied_accented_and_sometimes_shared() {
    let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
    for p in of_type(clinic(), "Patient") {
        by_name
            .entry(str_at(p, "/name/0/text"))
            .or_default()
            .push(str_at(p, "/birthDate"));
    }
    assert!(by_name.len() > 150, "only {} distinct names", by_name.len());
    assert!(by_name.keys().any(|n| !n.is_ascii()), "no accented names");
    let shared: Vec<_> = by_name.values().filter(|births| births.len() > 1).collect();
    assert!(!shared.is_empty(), "no patients share a name");
    for births in shared {
        let distinct: HashSet<_> = births.iter().collect();
        assert_eq!(
            distinct.len(),
            births.len(),
            "namesakes with one birth date"
        );
    }
}

#[test]
fn volume_is_sane() {
    let patients = of_type(clinic(), "Patient").count();
    let per_patient = clinic().len() as f64 / patients as f64;
    assert!(
        (40.0..=120.0).contains(&per_patient),
        "{per_patient:.1} resources per patient"
    );
    let bytes = serde_json::to_vec(clinic()).map(|v| v.len()).unwrap_or(0);
    // 10,000 patients must stay well under a gigabyte.
    assert!(bytes / patients * 10_000 < 600_000_000, "{bytes} bytes");
}

/// Patients with an active condition of this SNOMED CT code.
fn patients_with(condition: &str) -> HashSet<&'static str> {
    of_type(clinic(), "Condition")
        .filter(|c| str_at(c, "/code/coding/0/code") == condition)
        .filter(|c| str_at(c, "/clinicalStatus/coding/0/code") == "active")
        .map(patient_of)
        .collect()
}

fn patients_with_observation(loinc: &str) -> HashSet<&'static str> {
    of_type(clinic(), "Observation")
        .filter(|o| {
            o["code"]["coding"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|c| c["code"] == loinc))
        })
        .map(patient_of)
        .collect()
}

fn patients_on(rxnorm: &str) -> HashSet<&'static str> {
    of_type(clinic(), "MedicationRequest")
        .filter(|m| str_at(m, "/status") == "active")
        .filter(|m| str_at(m, "/medicationCodeableConcept/coding/0/code") == rxnorm)
        .map(patient_of)
        .collect()
}

#[test]
fn chronic_problems_drive_labs_and_drugs() {
    let diabetics = patients_with("44054006");
    assert!(diabetics.len() >= 10, "{} diabetics", diabetics.len());
    let with_a1c = patients_with_observation("4548-4");
    let with_glucose = patients_with_observation("2345-7");
    let on_metformin = patients_on("861007");
    for p in &diabetics {
        assert!(with_a1c.contains(p), "{p} is diabetic without HbA1c");
        assert!(with_glucose.contains(p), "{p} is diabetic without glucose");
        assert!(
            on_metformin.contains(p),
            "{p} is diabetic without metformin"
        );
    }
    assert!(with_a1c.is_subset(&diabetics), "HbA1c for a non-diabetic");

    let anticoagulated = patients_with("49436004");
    assert!(!anticoagulated.is_empty());
    let with_inr = patients_with_observation("6301-6");
    let on_warfarin = patients_on("855332");
    for p in &anticoagulated {
        assert!(
            with_inr.contains(p) && on_warfarin.contains(p),
            "{p}: AF without INR/warfarin"
        );
    }

    let kidney = patients_with("433144002");
    assert!(!kidney.is_empty());
    let with_creatinine = patients_with_observation("2160-0");
    let with_egfr = patients_with_observation("62238-1");
    for p in &kidney {
        assert!(
            with_creatinine.contains(p) && with_egfr.contains(p),
            "{p}: CKD without renal labs"
        );
    }
    // NSAIDs are never started for a patient with CKD or on warfarin.
    let on_nsaid: HashSet<_> = of_type(clinic(), "MedicationRequest")
        .filter(|m| str_at(m, "/medicationCodeableConcept/coding/0/code") == "310965")
        .map(patient_of)
        .collect();
    assert!(on_nsaid.is_disjoint(&kidney) && on_nsaid.is_disjoint(&anticoagulated));

    let hypertensive = patients_with("59621000");
    let with_bp = patients_with_observation("85354-9");
    assert!(hypertensive.len() >= 20);
    assert!(hypertensive.is_subset(&with_bp));
}

#[test]
fn problems_are_active_or_resolved_with_dates() {
    let mut statuses = HashSet::new();
    for c in of_type(clinic(), "Condition") {
        let status = str_at(c, "/clinicalStatus/coding/0/code");
        statuses.insert(status);
        assert_eq!(str_at(c, "/code/coding/0/system"), codes::SNOMED);
        assert!(!str_at(c, "/code/coding/0/display").is_empty());
        let onset = time_at(c, "/onsetDateTime");
        assert!(onset.is_some_and(|t| t < anchor()));
        if status == "resolved" {
            assert!(time_at(c, "/abatementDateTime") > onset);
        }
    }
    assert_eq!(statuses, HashSet::from(["active", "resolved"]));
}

fn quantity_value(q: &Value) -> Option<f64> {
    q.get("value").and_then(Value::as_f64)
}

/// Interpretation code of `o`, checked against its value and normal range.
fn check_interpretation(o: &Value) -> Option<String> {
    let flag = str_at(o, "/interpretation/0/coding/0/code").to_string();
    if flag.is_empty() {
        return None;
    }
    assert_eq!(
        str_at(o, "/interpretation/0/coding/0/system"),
        codes::INTERPRETATION
    );
    if let Some(value) = o.pointer("/valueQuantity").and_then(quantity_value) {
        let low = o.pointer("/referenceRange/0/low").and_then(quantity_value);
        let high = o.pointer("/referenceRange/0/high").and_then(quantity_value);
        let ok = match flag.as_str() {
            "N" => low.is_none_or(|l| value >= l) && high.is_none_or(|h| value <= h),
            "H" | "HH" => high.is_some_and(|h| value > h),
            "L" | "LL" => low.is_some_and(|l| value < l),
            _ => false,
        };
        assert!(
            ok,
            "{flag} does not fit {value} in {:?}..{:?}: {o}",
            low, high
        );
    } else if let Some(answer) = o.pointer("/valueCodeableConcept/coding/0/display") {
        assert_eq!(flag == "A", answer == "Positive", "{o}");
    }
    Some(flag)
}

#[test]
fn interpretations_match_values_and_ranges() {
    let mut flags: HashMap<String, usize> = HashMap::new();
    for o in of_type(clinic(), "Observation") {
        assert_eq!(o["status"], "final");
        assert!(time_at(o, "/effectiveDateTime").is_some_and(|t| t < anchor()));
        let category = str_at(o, "/category/0/coding/0/code");
        assert!(category == codes::CATEGORY_LABORATORY || category == codes::CATEGORY_VITAL_SIGNS);
        if let Some(q) = o.get("valueQuantity") {
            assert_eq!(q["system"], "http://unitsofmeasure.org");
            assert!(q["code"].is_string());
        }
        if let Some(flag) = check_interpretation(o) {
            *flags.entry(flag).or_default() += 1;
        }
        for component in o["component"].as_array().into_iter().flatten() {
            check_interpretation(component);
        }
    }
    for flag in ["N", "H", "L", "HH", "A"] {
        assert!(
            flags.get(flag).is_some_and(|n| *n > 0),
            "no {flag} in {flags:?}"
        );
    }
}

#[test]
fn blood_pressure_is_a_panel_with_two_components() {
    let panels: Vec<_> = of_type(clinic(), "Observation")
        .filter(|o| str_at(o, "/code/coding/0/code") == "85354-9")
        .collect();
    assert!(!panels.is_empty());
    for o in panels {
        let codes: Vec<&str> = o["component"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| str_at(c, "/code/coding/0/code"))
            .collect();
        assert_eq!(codes, ["8480-6", "8462-4"]);
        assert!(o.get("valueQuantity").is_none());
    }
}

#[test]
fn observations_belong_to_encounters_and_reports_to_their_labs() {
    let resources = clinic();
    let encounters: HashSet<String> = of_type(resources, "Encounter")
        .map(|e| format!("Encounter/{}", str_at(e, "/id")))
        .collect();
    for o in of_type(resources, "Observation") {
        assert!(encounters.contains(str_at(o, "/encounter/reference")));
    }
    let labs: HashMap<String, &Value> = of_type(resources, "Observation")
        .filter(|o| str_at(o, "/category/0/coding/0/code") == codes::CATEGORY_LABORATORY)
        .map(|o| (format!("Observation/{}", str_at(o, "/id")), o))
        .collect();
    let reports: Vec<_> = of_type(resources, "DiagnosticReport").collect();
    assert!(!reports.is_empty());
    for report in reports {
        let results = report["result"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        assert!(results.len() >= 2);
        for r in results {
            let lab = labs.get(str_at(r, "/reference"));
            assert!(lab.is_some_and(|o| o["encounter"] == report["encounter"]));
        }
    }
}

#[test]
fn allergies_are_coded_with_reactions_and_some_patients_have_none() {
    let allergic: HashSet<&str> = of_type(clinic(), "AllergyIntolerance")
        .map(patient_of)
        .collect();
    let patients = of_type(clinic(), "Patient").count();
    assert!(allergic.len() > patients / 10 && allergic.len() < patients / 2);
    for a in of_type(clinic(), "AllergyIntolerance") {
        assert!(!str_at(a, "/code/coding/0/code").is_empty());
        let manifestation = str_at(a, "/reaction/0/manifestation/0/coding/0/code");
        assert!(!manifestation.is_empty());
        assert!(matches!(
            str_at(a, "/reaction/0/severity"),
            "mild" | "moderate" | "severe"
        ));
        if manifestation == "39579001" {
            assert_eq!(a["criticality"], "high");
            assert_eq!(a["reaction"][0]["severity"], "severe");
        }
    }
    // No penicillin for the penicillin-allergic.
    let penicillin: HashSet<&str> = of_type(clinic(), "AllergyIntolerance")
        .filter(|a| str_at(a, "/code/coding/0/code") == "764146007")
        .map(patient_of)
        .collect();
    let amoxicillin: HashSet<&str> = of_type(clinic(), "MedicationRequest")
        .filter(|m| str_at(m, "/medicationCodeableConcept/coding/0/code") == "308192")
        .map(patient_of)
        .collect();
    assert!(penicillin.is_disjoint(&amoxicillin));
}

#[test]
fn medications_are_active_stopped_or_completed_with_sigs() {
    let mut statuses = HashSet::new();
    for m in of_type(clinic(), "MedicationRequest") {
        statuses.insert(str_at(m, "/status"));
        assert_eq!(
            str_at(m, "/medicationCodeableConcept/coding/0/system"),
            codes::RXNORM
        );
        assert!(!str_at(m, "/medicationCodeableConcept/coding/0/display").is_empty());
        assert!(str_at(m, "/dosageInstruction/0/text").contains(" PO "));
        assert!(m["reasonReference"][0]["reference"].is_string());
    }
    assert_eq!(statuses, HashSet::from(["active", "stopped", "completed"]));
}

#[test]
fn signed_notes_tell_the_patients_story() {
    let resources = clinic();
    let mut mentions_diabetes = 0;
    for doc in of_type(resources, "DocumentReference") {
        assert_eq!(doc["status"], "current");
        assert_eq!(doc["docStatus"], "final");
        let kind = str_at(doc, "/type/coding/0/code");
        assert!(kind == codes::LOINC_PROGRESS_NOTE || kind == codes::LOINC_NOTE);
        assert!(str_at(doc, "/author/0/reference").starts_with("Practitioner/"));
        assert!(time_at(doc, "/date").is_some_and(|t| t < anchor()));
        let attachment = &doc["content"][0]["attachment"];
        assert_eq!(attachment["contentType"], "text/plain");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(str_at(attachment, "/data"))
            .unwrap_or_default();
        let text = String::from_utf8(bytes).unwrap_or_default();
        for part in ["S: ", "O: ", "A: ", "P: ", "Electronically signed by"] {
            assert!(text.contains(part), "{part} missing in {text}");
        }
        let patient = of_type(resources, "Patient")
            .find(|p| format!("Patient/{}", str_at(p, "/id")) == patient_of(doc));
        let family = patient.map(|p| str_at(p, "/name/0/family")).unwrap_or("?");
        assert!(text.contains(family), "note does not name {family}");
        if text.contains("Type 2 diabetes") {
            mentions_diabetes += 1;
            assert!(patients_with("44054006").contains(patient_of(doc)));
        }
    }
    assert!(mentions_diabetes > 0);
}

#[test]
fn every_role_queue_has_work_and_some_is_overdue() {
    let resources = clinic();
    let tasks: Vec<_> = of_type(resources, "Task").collect();
    let mut per_role: HashMap<&str, usize> = HashMap::new();
    let mut categories = HashSet::new();
    let mut overdue = 0;
    for t in &tasks {
        assert_eq!(t["intent"], "order");
        assert!(matches!(
            str_at(t, "/status"),
            "requested" | "received" | "in-progress"
        ));
        assert!(matches!(
            str_at(t, "/priority"),
            "routine" | "urgent" | "asap" | "stat"
        ));
        assert_eq!(
            str_at(t, "/performerType/0/coding/0/system"),
            codes::ROLE_SYSTEM
        );
        *per_role
            .entry(str_at(t, "/performerType/0/coding/0/code"))
            .or_default() += 1;
        assert_eq!(
            str_at(t, "/code/coding/0/system"),
            codes::TASK_CATEGORY_SYSTEM
        );
        let category = str_at(t, "/code/coding/0/code");
        assert!(codes::TASK_CATEGORIES.contains(&category));
        categories.insert(category);
        assert!(str_at(t, "/focus/reference").starts_with("Communication/"));
        assert!(!str_at(t, "/description").is_empty());
        let authored = time_at(t, "/authoredOn");
        let due = time_at(t, "/restriction/period/end");
        assert!(authored.is_some_and(|a| a < anchor()) && due > authored);
        if due.is_some_and(|d| d < anchor()) {
            overdue += 1;
        }
        if str_at(t, "/status") == "in-progress" {
            assert!(str_at(t, "/owner/reference").starts_with("Practitioner/"));
        }
    }
    for role in Role::ALL {
        assert!(
            per_role.get(role.code()).is_some_and(|n| *n > 0),
            "no {role} tasks: {per_role:?}"
        );
    }
    assert_eq!(categories.len(), codes::TASK_CATEGORIES.len());
    assert!(
        overdue > 0 && overdue < tasks.len(),
        "{overdue} of {} overdue",
        tasks.len()
    );

    let patients = of_type(resources, "Patient").count() as f64;
    let with_tasks: HashSet<&str> = tasks.iter().map(|t| patient_of(t)).collect();
    let share = with_tasks.len() as f64 / patients;
    assert!(
        (0.18..=0.35).contains(&share),
        "{share:.2} of patients have tasks"
    );
}

#[test]
fn messages_come_from_patients_and_some_carry_hostile_text() {
    let mut hostile = HashSet::new();
    for c in of_type(clinic(), "Communication") {
        assert!(matches!(str_at(c, "/status"), "in-progress" | "completed"));
        let text = str_at(c, "/payload/0/contentString");
        assert!(!text.is_empty());
        if str_at(c, "/status") == "in-progress" {
            assert_eq!(c["sender"], c["subject"]);
        }
        for (marker, name) in [
            ('\u{1b}', "escape"),
            ('\u{202e}', "bidi"),
            ('\u{200b}', "zero-width"),
        ] {
            if text.contains(marker) {
                hostile.insert(name);
            }
        }
    }
    assert_eq!(hostile.len(), 3, "{hostile:?}");
}

#[test]
fn staff_has_one_practitioner_per_role() {
    let shared = shared_resources(&options(1, 1));
    let people = staff();
    assert_eq!(people.len(), Role::ALL.len());
    for role in Role::ALL {
        let member = people.iter().find(|s| s.role == role);
        let id = member.map(|m| m.practitioner_id.as_str()).unwrap_or("");
        assert!(
            shared
                .iter()
                .any(|r| r["resourceType"] == "Practitioner" && r["id"] == id)
        );
        assert!(
            shared
                .iter()
                .any(|r| r["resourceType"] == "PractitionerRole"
                    && r["practitioner"]["reference"] == format!("Practitioner/{id}")
                    && r["code"][0]["coding"][0]["code"] == role.code())
        );
        assert!(member.is_some_and(|m| !m.name.is_empty()));
    }
    assert!(shared.iter().any(|r| r["resourceType"] == "Organization"));
}

#[test]
fn nothing_happens_after_the_anchor_except_due_times() {
    let pointers = [
        "/authoredOn",
        "/sent",
        "/date",
        "/period/end",
        "/recordedDate",
        "/onsetDateTime",
        "/issued",
        "/lastModified",
    ];
    for r in clinic() {
        for pointer in pointers {
            if let Some(t) = time_at(r, pointer) {
                assert!(
                    t <= anchor(),
                    "{pointer} {t} after the anchor in {}",
                    r["id"]
                );
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Any seed and any index give a self-contained, well-formed chart.
    #[test]
    fn any_patient_is_well_formed(seed in proptest::prelude::any::<u64>(), index in 0usize..2_000_000) {
        let opts = options(index + 1, seed);
        let resources = patient_resources(&opts, index);
        let patient = format!("p{index:06}");
        proptest::prop_assert_eq!(&resources[0]["resourceType"], "Patient");
        proptest::prop_assert_eq!(&resources[0]["id"], patient.as_str());
        let mut known: HashSet<String> = shared_resources(&opts)
            .iter()
            .map(|r| format!("{}/{}", str_at(r, "/resourceType"), str_at(r, "/id")))
            .collect();
        for r in &resources {
            let id = str_at(r, "/id");
            proptest::prop_assert!(id == patient || id.starts_with(&format!("{patient}-")), "{}", id);
            let mut references = Vec::new();
            collect_references(r, &mut references);
            for reference in references {
                proptest::prop_assert!(known.contains(reference), "{} before it exists", reference);
            }
            known.insert(format!("{}/{}", str_at(r, "/resourceType"), id));
            if r["resourceType"] == "Observation" {
                check_interpretation(r);
                for component in r["component"].as_array().into_iter().flatten() {
                    check_interpretation(component);
                }
            }
        }
        proptest::prop_assert_eq!(
            serde_json::to_string(&resources).ok(),
            serde_json::to_string(&patient_resources(&opts, index)).ok()
        );
    }
}
