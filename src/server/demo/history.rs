//! The parts of a problem list, allergy list and medication list that a
//! real chart accumulates and a careless reader gets wrong: problems entered
//! on the wrong chart, refuted or still provisional, relapsing or inactive;
//! allergies refuted after a challenge, outgrown or never confirmed;
//! medications on hold, cancelled before dispensing or entered in error;
//! and now and then an allergy record from an interface that a strict
//! client cannot decode.
//!
//! These records come from their own random stream and sit beside the
//! patient's planned problems, allergies and drugs: they change nothing
//! else in the chart.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use super::catalog::{self, Allergen, Drug, Problem};
use super::json::{concept, instant, reference};
use super::patient::{Chart, VisitKind};
use super::rng::{Rng, one_in};
use super::staff::practitioner_ref;
use crate::fhir::codes;
use crate::roles::Role;

pub(crate) const CONDITION_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/condition-ver-status";
pub(crate) const ALLERGY_CLINICAL: &str =
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
pub(crate) const ALLERGY_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";

/// Patients in a row per malformed allergy record (see [`malformed_allergy`]).
pub(crate) const MALFORMED_PERIOD: u64 = 100;

const PNEUMONIA: (&str, &str) = ("233604007", "Pneumonia");
const DVT: (&str, &str) = ("128053003", "Deep venous thrombosis");
const SLEEP_APNEA: (&str, &str) = ("78275009", "Obstructive sleep apnea syndrome");
const HYPOTHYROIDISM: (&str, &str) = ("40930008", "Hypothyroidism");
const DEPRESSION: (&str, &str) = ("35489007", "Depressive disorder");
const GOUT: (&str, &str) = ("90560007", "Gout");
const ASTHMA: (&str, &str) = ("195967001", "Asthma");

fn clinical(code: &str) -> Value {
    let display = match code {
        "active" => "Active",
        "relapse" => "Relapse",
        "recurrence" => "Recurrence",
        "inactive" => "Inactive",
        "remission" => "Remission",
        _ => "Resolved",
    };
    concept(codes::CONDITION_CLINICAL, code, display)
}

fn verification(system: &str, code: &str) -> Value {
    let display = match code {
        "confirmed" => "Confirmed",
        "unconfirmed" => "Unconfirmed",
        "provisional" => "Provisional",
        "refuted" => "Refuted",
        _ => "Entered in Error",
    };
    concept(system, code, display)
}

/// A time `min_days` to `max_days` days ago, within the patient's life.
pub(crate) fn some_day(
    chart: &Chart,
    rng: &mut Rng,
    min_days: i64,
    max_days: i64,
) -> DateTime<Utc> {
    let lived = (chart.anchor.date_naive() - chart.birth).num_days() - 1;
    let hi = max_days.min(lived).max(1);
    let lo = min_days.min(hi);
    chart.anchor - Duration::days(rng.range(lo, hi)) - Duration::minutes(rng.range(60, 600))
}

/// Problems besides the planned ones, numbered after them.
pub(crate) fn conditions(chart: &Chart, rng: &mut Rng, out: &mut Vec<Value>) {
    let mut n = chart.conditions.len();
    let mut next_id = || {
        n += 1;
        format!("{}-cond-{n}", chart.id)
    };
    let adult = chart.age >= 18;
    let condition = |id: String, code: (&str, &str), category: &str| {
        let category_display = if category == "problem-list-item" {
            "Problem List Item"
        } else {
            "Encounter Diagnosis"
        };
        json!({
            "resourceType": "Condition",
            "id": id,
            "category": [concept(
                "http://terminology.hl7.org/CodeSystem/condition-category",
                category,
                category_display,
            )],
            "code": concept(codes::SNOMED, code.0, code.1),
            "subject": reference("Patient", &chart.id),
        })
    };

    // A chronic problem of someone else, entered on this chart and withdrawn.
    if adult && rng.chance(0.04) {
        let wrong = [
            Problem::Diabetes,
            Problem::Hypertension,
            Problem::AtrialFibrillation,
        ]
        .into_iter()
        .find(|p| !chart.has(*p));
        if let Some(problem) = wrong {
            let recorded = some_day(chart, rng, 5, 300);
            let mut c = condition(next_id(), problem.snomed(), "problem-list-item");
            // No clinical status: FHIR forbids one on an entered-in-error condition.
            c["verificationStatus"] = verification(CONDITION_VERIFICATION, "entered-in-error");
            c["onsetDateTime"] = json!(instant(recorded));
            c["recordedDate"] = json!(instant(recorded));
            c["recorder"] = practitioner_ref(Role::Resident);
            c["note"] = json!([{ "text": "Entered on the wrong patient's chart." }]);
            out.push(c);
        }
    }

    // Suspected, then ruled out.
    if adult && rng.chance(0.04) {
        let uri_visit = chart.visits.iter().find(|v| {
            matches!(v.kind, VisitKind::Acute(c) if chart.conditions[c].problem == Problem::Uri)
        });
        let (code, at, note, encounter) = match uri_visit {
            Some(v) => (
                PNEUMONIA,
                v.end,
                "Chest X-ray clear; pneumonia ruled out.",
                Some(v.id.clone()),
            ),
            None => (
                DVT,
                some_day(chart, rng, 30, 900),
                "Venous duplex ultrasound negative; DVT ruled out.",
                None,
            ),
        };
        let mut c = condition(next_id(), code, "encounter-diagnosis");
        // Often only the verification was updated: the clinical status is
        // still "active", which a reader must not take at its word.
        let status = if rng.chance(0.5) {
            "active"
        } else {
            "inactive"
        };
        c["clinicalStatus"] = clinical(status);
        c["verificationStatus"] = verification(CONDITION_VERIFICATION, "refuted");
        c["onsetDateTime"] = json!(instant(at));
        c["recordedDate"] = json!(instant(at));
        c["note"] = json!([{ "text": note }]);
        if let Some(e) = encounter {
            c["encounter"] = reference("Encounter", &e);
        }
        out.push(c);
    }

    // Still being worked up.
    if adult && rng.chance(0.08) {
        let (code, status, note) = if rng.chance(0.5) {
            (
                SLEEP_APNEA,
                "provisional",
                "Snoring and daytime sleepiness; sleep study ordered.",
            )
        } else {
            (
                HYPOTHYROIDISM,
                "unconfirmed",
                "TSH mildly raised once; repeat TSH and free T4.",
            )
        };
        let at = some_day(chart, rng, 10, 200);
        let mut c = condition(next_id(), code, "problem-list-item");
        c["clinicalStatus"] = clinical("active");
        c["verificationStatus"] = verification(CONDITION_VERIFICATION, status);
        c["onsetDateTime"] = json!(instant(at));
        c["recordedDate"] = json!(instant(at));
        c["note"] = json!([{ "text": note }]);
        out.push(c);
    }

    // Back again: a relapse of depression, a recurrence of gout.
    for (chance, code, status, note) in [
        (
            0.04,
            DEPRESSION,
            "relapse",
            "Low mood again since the spring after two years in remission.",
        ),
        (
            0.04,
            GOUT,
            "recurrence",
            "Second flare of the left first toe this year.",
        ),
    ] {
        if adult && rng.chance(chance) {
            let onset = some_day(chart, rng, 800, 4000);
            let recorded = some_day(chart, rng, 20, 300).max(onset);
            let mut c = condition(next_id(), code, "problem-list-item");
            c["clinicalStatus"] = clinical(status);
            c["verificationStatus"] = verification(CONDITION_VERIFICATION, "confirmed");
            c["onsetDateTime"] = json!(instant(onset));
            c["recordedDate"] = json!(instant(recorded));
            c["note"] = json!([{ "text": note }]);
            out.push(c);
        }
    }

    // Childhood asthma, quiet for years.
    if chart.age >= 8 && rng.chance(0.06) {
        let onset = chart.anchor - Duration::days((chart.age - rng.range(3, 6)).max(1) * 365);
        let abated = onset
            + Duration::days(
                rng.range(730, 2500)
                    .min((chart.anchor - onset).num_days() - 30)
                    .max(1),
            );
        let mut c = condition(next_id(), ASTHMA, "problem-list-item");
        c["clinicalStatus"] = clinical("inactive");
        c["verificationStatus"] = verification(CONDITION_VERIFICATION, "confirmed");
        c["onsetDateTime"] = json!(instant(onset));
        c["abatementDateTime"] = json!(instant(abated));
        c["recordedDate"] = json!(instant(onset));
        out.push(c);
    }
}

/// The allergy as recorded: criticality and severity follow the reaction.
fn allergy_record(chart: &Chart, allergen: &Allergen, id: String, rng: &mut Rng) -> Value {
    let (code, display) = *rng.pick(allergen.reactions);
    let severe = catalog::is_anaphylaxis(code);
    let criticality = if severe || catalog::threatens_airway(code) {
        "high"
    } else {
        "low"
    };
    let severity = if severe { "severe" } else { "mild" };
    let recorded = some_day(chart, rng, 30, 3000);
    json!({
        "resourceType": "AllergyIntolerance",
        "id": id,
        "type": "allergy",
        "category": [allergen.category.code()],
        "criticality": criticality,
        "code": concept(allergen.system, allergen.code, allergen.display),
        "patient": reference("Patient", &chart.id),
        "recordedDate": instant(recorded),
        "recorder": practitioner_ref(Role::Nurse),
        "reaction": [{
            "substance": concept(allergen.system, allergen.code, allergen.display),
            "manifestation": [concept(codes::SNOMED, code, display)],
            "severity": severity,
        }],
    })
}

fn allergen(display: &str) -> Allergen {
    catalog::ALLERGENS
        .iter()
        .find(|a| a.display == display)
        .copied()
        .unwrap_or(catalog::PENICILLIN)
}

/// Whether patient `index` has the malformed allergy record.
pub(crate) fn malformed_allergy(seed: u64, index: usize) -> bool {
    one_in(seed, 0xA11E_B6ED, MALFORMED_PERIOD, index)
}

/// Allergy records besides the planned ones, numbered after them.
pub(crate) fn allergies(chart: &Chart, seed: u64, rng: &mut Rng, out: &mut Vec<Value>) {
    let mut n = chart.allergies.len();
    let mut next_id = || {
        n += 1;
        format!("{}-alg-{n}", chart.id)
    };
    let mut taken: Vec<&str> = chart.allergies.iter().map(|a| a.code).collect();
    let free = |names: &[&str], taken: &mut Vec<&str>| {
        let found = names
            .iter()
            .map(|n| allergen(n))
            .find(|a| !taken.contains(&a.code));
        if let Some(a) = found {
            taken.push(a.code);
        }
        found
    };

    if rng.chance(0.04)
        && let Some(a) = free(&["Peanut", "Aspirin", "Latex", "Codeine"], &mut taken)
    {
        let mut r = allergy_record(chart, &a, next_id(), rng);
        // No clinical status on an entered-in-error record (FHIR ait-2).
        r["verificationStatus"] = verification(ALLERGY_VERIFICATION, "entered-in-error");
        r["note"] = json!([{ "text": "Entered on the wrong patient's chart." }]);
        out.push(r);
    }
    // Penicillin allergy labels are mostly wrong: removed after a challenge.
    if rng.chance(0.05)
        && let Some(a) = free(&["Penicillin", "Codeine"], &mut taken)
    {
        let mut r = allergy_record(chart, &a, next_id(), rng);
        let status = if rng.chance(0.5) {
            "active"
        } else {
            "inactive"
        };
        r["clinicalStatus"] = concept(
            ALLERGY_CLINICAL,
            status,
            if status == "active" {
                "Active"
            } else {
                "Inactive"
            },
        );
        r["verificationStatus"] = verification(ALLERGY_VERIFICATION, "refuted");
        r["note"] = json!([{ "text": format!("{} allergy removed after a negative supervised challenge.", a.display) }]);
        out.push(r);
    }
    if rng.chance(0.05)
        && let Some(a) = free(&["Codeine", "Latex", "Bee venom"], &mut taken)
    {
        let mut r = allergy_record(chart, &a, next_id(), rng);
        r["clinicalStatus"] = concept(ALLERGY_CLINICAL, "active", "Active");
        r["verificationStatus"] = verification(ALLERGY_VERIFICATION, "unconfirmed");
        r["note"] = json!([{ "text": "Reported by the patient; reaction and date unclear." }]);
        out.push(r);
    }
    if rng.chance(0.04)
        && let Some(a) = free(&["Eggs (edible)", "Peanut"], &mut taken)
    {
        let mut r = allergy_record(chart, &a, next_id(), rng);
        r["clinicalStatus"] = concept(ALLERGY_CLINICAL, "resolved", "Resolved");
        r["verificationStatus"] = verification(ALLERGY_VERIFICATION, "confirmed");
        r["note"] = json!([{ "text": "Outgrown in childhood; eats it without a reaction." }]);
        out.push(r);
    }
    if rng.chance(0.04)
        && let Some(a) = free(&["Bee venom", "Latex"], &mut taken)
    {
        let mut r = allergy_record(chart, &a, next_id(), rng);
        r["clinicalStatus"] = concept(ALLERGY_CLINICAL, "inactive", "Inactive");
        r["verificationStatus"] = verification(ALLERGY_VERIFICATION, "confirmed");
        r["note"] = json!([{ "text": "No reaction since completing immunotherapy." }]);
        out.push(r);
    }
    if malformed_allergy(seed, chart.index) {
        // From an interface that writes the allergen as a bare string where
        // FHIR has a CodeableConcept: a strict reader cannot decode it.
        let mut r = allergy_record(chart, &catalog::PENICILLIN, next_id(), rng);
        r["code"] = json!("Penicillin");
        r["clinicalStatus"] = concept(ALLERGY_CLINICAL, "active", "Active");
        r["verificationStatus"] = verification(ALLERGY_VERIFICATION, "confirmed");
        out.push(r);
    }
}

/// A long-term drug put on hold, and why: (prescription id, reason).
pub(crate) fn hold(chart: &Chart, rng: &mut Rng) -> Option<(String, &'static str)> {
    let reasons: [(&str, &str); 3] = [
        (
            catalog::METFORMIN.rxnorm,
            "Held for 48 hours after iodinated contrast",
        ),
        (catalog::WARFARIN.rxnorm, "Held 5 days before colonoscopy"),
        (
            catalog::LISINOPRIL.rxnorm,
            "Held: acute kidney injury, recheck creatinine",
        ),
    ];
    let candidate = chart.prescriptions.iter().find_map(|p| {
        let reason = reasons.iter().find(|(rx, _)| *rx == p.drug.rxnorm)?.1;
        (p.status == "active" && p.visit.is_none()).then(|| (p.id.clone(), reason))
    })?;
    rng.chance(0.15).then_some(candidate)
}

/// Orders besides the planned ones, numbered after them.
pub(crate) fn medications(chart: &Chart, rng: &mut Rng, out: &mut Vec<Value>) {
    let mut n = chart.prescriptions.len();
    let mut next_id = || {
        n += 1;
        format!("{}-med-{n}", chart.id)
    };
    let takes = |d: &Drug| {
        chart
            .prescriptions
            .iter()
            .any(|p| p.drug.rxnorm == d.rxnorm)
    };
    let order = |id: String, drug: &Drug, status: &str, at: DateTime<Utc>, reason: Problem| {
        json!({
            "resourceType": "MedicationRequest",
            "id": id,
            "status": status,
            "intent": "order",
            "medicationCodeableConcept": concept(codes::RXNORM, drug.rxnorm, drug.display),
            "subject": reference("Patient", &chart.id),
            "authoredOn": instant(at),
            "requester": practitioner_ref(Role::Attending),
            "reasonCode": [concept(codes::SNOMED, reason.snomed().0, reason.snomed().1)],
            "dosageInstruction": [{ "text": drug.sig }],
        })
    };
    if chart.age >= 35 && rng.chance(0.05) {
        let choice = [
            (
                catalog::ATORVASTATIN,
                Problem::Hyperlipidemia,
                "Patient declined a statin",
            ),
            (
                catalog::AMLODIPINE,
                Problem::Hypertension,
                "Replaced before dispensing: ankle swelling on it before",
            ),
        ]
        .into_iter()
        .find(|(d, _, _)| !takes(d));
        if let Some((drug, reason, why)) = choice {
            let at = some_day(chart, rng, 20, 600);
            let mut m = order(next_id(), &drug, "cancelled", at, reason);
            m["statusReason"] = json!({ "text": why });
            out.push(m);
        }
    }
    if chart.age >= 18 && rng.chance(0.04) {
        let choice = [
            (catalog::WARFARIN, Problem::AtrialFibrillation),
            (catalog::METFORMIN, Problem::Diabetes),
            (catalog::LISINOPRIL, Problem::Hypertension),
        ]
        .into_iter()
        .find(|(d, _)| !takes(d));
        if let Some((drug, reason)) = choice {
            let at = some_day(chart, rng, 3, 200);
            let mut m = order(next_id(), &drug, "entered-in-error", at, reason);
            m["note"] = json!([{ "text": "Ordered on the wrong patient's chart; withdrawn." }]);
            out.push(m);
        }
    }
}
