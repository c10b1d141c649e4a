//! One patient's chart, built from `(seed, index)` alone.
//!
//! The chart is planned first (who the patient is, their problems, allergies,
//! drugs and visits) and then written out as FHIR resources in an order where
//! every reference points at a resource written earlier: Patient, Encounters,
//! Conditions, AllergyIntolerances, MedicationRequests, Observations,
//! DiagnosticReports, DocumentReferences, Communications, Tasks.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde_json::{Value, json};

use super::DemoOptions;
use super::catalog::{self, Allergen, Drug, Measure, Problem};
use super::history;
use super::json::{
    coding, concept, day, instant, interpretation, observation_category, quantity, reference,
    round_to,
};
use super::messages;
use super::names::{self, PersonName};
use super::notes;
use super::results;
use super::rng::Rng;
use super::staff::{organization_ref, practitioner_ref};
use crate::fhir::codes;
use crate::roles::Role;

/// Independent random streams of one patient. Streams added later leave
/// the values drawn from the earlier ones as they were.
const STREAM_NAME: u64 = 1;
const STREAM_CHART: u64 = 2;
const STREAM_MESSAGES: u64 = 3;
/// How each visit records (units, which laboratory) and the tests added to it.
const STREAM_VISIT_STYLE: u64 = 4;
/// Problems, allergies and orders with statuses other than the planned ones.
const STREAM_HISTORY: u64 = 5;
/// Result statuses, result series and the results that went wrong.
const STREAM_RESULTS: u64 = 6;
/// Note drafts, amendments, formats and notes on the wrong chart.
const STREAM_NOTES: u64 = 7;
/// Who starts insulin, and when.
const STREAM_INSULIN: u64 = 8;

/// Every twentieth patient shares the name of another one (with another
/// birth date), so that picking the right José Ordóñez takes a second look.
fn name_key(index: usize) -> usize {
    if index % 20 == 13 { index - 13 } else { index }
}

/// Eight digits, distinct for every index below 10^8 (the multiplier is a
/// unit modulo 10^8), and not in patient order.
pub(crate) fn mrn(seed: u64, index: usize) -> String {
    const MODULUS: u128 = 100_000_000;
    let offset = u128::from(super::rng::mix(seed)) % MODULUS;
    let n = (index as u128 * 7_654_321 + offset) % MODULUS;
    format!("{n:08}")
}

pub(crate) fn patient_id(index: usize) -> String {
    format!("p{index:06}")
}

#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub problem: Problem,
    pub id: String,
    pub onset: DateTime<Utc>,
    pub abated: Option<DateTime<Utc>>,
    /// Visit at which an acute problem was diagnosed.
    pub visit: Option<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct Prescription {
    pub drug: Drug,
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    /// `active`, `stopped` (changed before the end) or `completed` (a course).
    pub status: &'static str,
    pub status_reason: Option<&'static str>,
    pub condition: usize,
    pub visit: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VisitKind {
    /// Follow-up of chronic problems.
    FollowUp,
    /// Yearly check-up of a patient without chronic problems.
    Wellness,
    /// Visit for an acute problem (index into the conditions).
    Acute(usize),
}

/// One result as the note and the messages quote it.
#[derive(Debug, Clone)]
pub(crate) struct Result {
    pub short: &'static str,
    pub text: String,
    pub flag: &'static str,
}

#[derive(Debug, Clone)]
pub(crate) struct Visit {
    pub kind: VisitKind,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub emergency: bool,
    pub clinician: Role,
    pub id: String,
    pub vitals: Vec<Result>,
    pub labs: Vec<Result>,
}

pub(crate) struct Chart {
    pub index: usize,
    pub id: String,
    pub name: PersonName,
    pub birth: NaiveDate,
    pub age: i64,
    pub mrn: String,
    pub anchor: DateTime<Utc>,
    pub conditions: Vec<Condition>,
    pub allergies: Vec<Allergen>,
    pub prescriptions: Vec<Prescription>,
    pub visits: Vec<Visit>,
    /// First and last day of finger-stick glucose monitoring after starting
    /// insulin, if the patient did.
    pub insulin: Option<(NaiveDate, NaiveDate)>,
}

impl Chart {
    pub fn female(&self) -> bool {
        self.name.female
    }

    pub fn has(&self, problem: Problem) -> bool {
        self.conditions.iter().any(|c| c.problem == problem)
    }

    pub fn allergic_to(&self, allergen: &Allergen) -> bool {
        self.allergies.iter().any(|a| a.code == allergen.code)
    }

    pub fn active_prescriptions(&self) -> impl Iterator<Item = &Prescription> {
        self.prescriptions.iter().filter(|p| p.status == "active")
    }

    /// Problems active at `t`: chronic ones after onset, acute ones until they resolve.
    pub fn problems_at(&self, t: DateTime<Utc>) -> Vec<&Condition> {
        self.conditions
            .iter()
            .filter(|c| c.onset <= t && c.abated.is_none_or(|a| a > t))
            .collect()
    }

    pub fn age_at(&self, t: DateTime<Utc>) -> i64 {
        i64::from(t.date_naive().years_since(self.birth).unwrap_or(0))
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(NaiveTime::MIN).and_utc()
}

/// Plan and write patient `index`.
pub(crate) fn build(opts: &DemoOptions, index: usize) -> Vec<Value> {
    let mut chart = plan(opts, index);
    let mut out = Vec::with_capacity(96);
    write(&mut chart, opts, &mut out);
    out
}

pub(crate) fn build_patient(opts: &DemoOptions, index: usize) -> Value {
    let chart = plan(opts, index);
    patient_resource(&chart, &mut write_rng(opts, &chart))
}

/// The stream `write` draws from; the Patient resource takes its first values.
fn write_rng(opts: &DemoOptions, chart: &Chart) -> Rng {
    Rng::new(opts.seed, STREAM_CHART ^ 0xA5A5, chart.index as u64)
}

fn plan(opts: &DemoOptions, index: usize) -> Chart {
    let seed = opts.seed;
    let anchor = opts.anchor;
    let today = anchor.date_naive();
    let key = name_key(index);
    let mut name_rng = Rng::new(seed, STREAM_NAME, key as u64);
    let drawn = names::person_name(&mut name_rng);
    // A namesake of a patient with a spelled name gets it too.
    let name = names::spelled(seed, index)
        .or_else(|| (key != index).then(|| names::spelled(seed, key)).flatten())
        .unwrap_or(drawn);
    let mut rng = Rng::new(seed, STREAM_CHART, index as u64);
    let insulin_start = results::insulin_start(seed, index);

    // A family practice panel: children, working-age adults, many older adults.
    let age_years = match rng.below(100) {
        0..=15 => rng.range(0, 17),
        16..=60 => rng.range(18, 64),
        _ => rng.range(65, 94),
    };
    // A patient placed to start insulin is an adult with type 2 diabetes.
    let age_years = if insulin_start && age_years < 35 {
        35 + age_years % 40
    } else {
        age_years
    };
    let birth = today - Duration::days(age_years * 365 + age_years / 4 + rng.range(1, 360));
    let age = i64::from(today.years_since(birth).unwrap_or(0));

    let mut chart = Chart {
        index,
        id: patient_id(index),
        name,
        birth,
        age,
        mrn: mrn(seed, index),
        anchor,
        conditions: Vec::new(),
        allergies: Vec::new(),
        prescriptions: Vec::new(),
        visits: Vec::new(),
        insulin: None,
    };

    let history_days = rng.range(1, 3) * 365 + rng.range(0, 60);
    let history_start = midnight(today - Duration::days(history_days));

    plan_chronic(&mut chart, &mut rng, history_start, insulin_start);
    plan_allergies(&mut chart, &mut rng);
    plan_visits(&mut chart, &mut rng, history_start);
    let mut insulin_rng = Rng::new(seed, STREAM_INSULIN, index as u64);
    chart.insulin = results::plan_insulin(&chart, &mut insulin_rng, insulin_start);
    plan_prescriptions(&mut chart, &mut rng);
    chart
}

fn plan_chronic(
    chart: &mut Chart,
    rng: &mut Rng,
    history_start: DateTime<Utc>,
    insulin_start: bool,
) {
    let age = chart.age as f64;
    let mut chronic = Vec::new();
    if chart.age >= 30 && rng.chance(0.05 + (age - 30.0) / 70.0 * 0.6) {
        chronic.push(Problem::Hypertension);
    }
    if (chart.age >= 30 && rng.chance(0.08 + (age - 30.0) * 0.004)) || insulin_start {
        chronic.push(Problem::Diabetes);
    }
    if chart.age >= 35 && rng.chance(0.25) {
        chronic.push(Problem::Hyperlipidemia);
    }
    let risk = chronic.contains(&Problem::Diabetes) || chronic.contains(&Problem::Hypertension);
    if chart.age >= 50 && rng.chance(if risk { 0.3 } else { 0.05 }) {
        chronic.push(Problem::Ckd);
    }
    if chart.age >= 60 && rng.chance(0.1 + (age - 60.0) * 0.004) {
        chronic.push(Problem::AtrialFibrillation);
    }
    let history_days = (chart.anchor - history_start).num_days();
    for problem in chronic {
        // Most problems predate the history we hold; some are new diagnoses in it.
        let onset = if rng.chance(0.2) {
            history_start + Duration::days(rng.range(20, history_days / 2))
        } else {
            let max_years_ago = (chart.age - 25).clamp(1, 15);
            midnight(chart.anchor.date_naive())
                - Duration::days(history_days + rng.range(30, max_years_ago * 365 + 30))
        };
        let id = format!("{}-cond-{}", chart.id, chart.conditions.len() + 1);
        chart.conditions.push(Condition {
            problem,
            id,
            onset,
            abated: None,
            visit: None,
        });
    }
}

fn plan_allergies(chart: &mut Chart, rng: &mut Rng) {
    if !rng.chance(0.3) {
        return;
    }
    let count = if rng.chance(0.25) { 2 } else { 1 };
    while chart.allergies.len() < count {
        let allergen = *rng.pick(catalog::ALLERGENS);
        if !chart.allergic_to(&allergen) {
            chart.allergies.push(allergen);
        }
    }
}

fn plan_visits(chart: &mut Chart, rng: &mut Rng, history_start: DateTime<Utc>) {
    let anchor = chart.anchor;
    let last_day = midnight(anchor.date_naive()) - Duration::days(1);
    let chronic = chart.conditions.iter().any(|c| c.problem.chronic());
    let mut planned: Vec<(DateTime<Utc>, VisitKind, bool)> = Vec::new();

    let (first_gap, gap_lo, gap_hi) = if chronic {
        (120, 90, 150)
    } else {
        (365, 330, 400)
    };
    let kind = if chronic {
        VisitKind::FollowUp
    } else {
        VisitKind::Wellness
    };
    let mut day = history_start + Duration::days(rng.range(0, first_gap));
    while day <= last_day {
        planned.push((day, kind, false));
        day += Duration::days(rng.range(gap_lo, gap_hi));
    }

    let episodes = match rng.below(100) {
        0..=44 => 0,
        45..=79 => 1,
        80..=94 => 2,
        _ => 3,
    };
    let history_days = (last_day - history_start).num_days().max(1);
    for _ in 0..episodes {
        let roll = rng.below(100);
        let problem = if chart.age >= 8 && chart.age <= 65 && roll < 20 {
            Problem::AnkleSprain
        } else if roll
            < if chart.female() && chart.age >= 16 {
                50
            } else {
                28
            }
        {
            Problem::Uti
        } else {
            Problem::Uri
        };
        let when = if rng.chance(0.12) {
            last_day - Duration::days(rng.range(0, 9))
        } else {
            history_start + Duration::days(rng.range(0, history_days))
        };
        let emergency = match problem {
            Problem::AnkleSprain => rng.chance(0.5),
            Problem::Uti => rng.chance(0.15),
            _ => rng.chance(0.08),
        };
        let onset = when - Duration::days(rng.range(1, 5)) + Duration::hours(rng.range(6, 20));
        let resolves = when + Duration::days(rng.range(7, 21));
        let condition = chart.conditions.len();
        chart.conditions.push(Condition {
            problem,
            id: format!("{}-cond-{}", chart.id, condition + 1),
            onset,
            abated: (resolves < anchor).then_some(resolves),
            visit: None,
        });
        planned.push((when, VisitKind::Acute(condition), emergency));
    }

    planned.sort_by_key(|(when, _, _)| *when);
    for (n, (when, kind, emergency)) in planned.into_iter().enumerate() {
        // Clinic hours for office visits; the emergency department at any hour.
        let start = if emergency {
            when + Duration::minutes(rng.range(0, 24 * 60 - 1))
        } else {
            when + Duration::minutes(rng.range(8 * 60, 16 * 60 + 30))
        };
        let length = if emergency {
            rng.range(90, 300)
        } else {
            rng.range(15, 40)
        };
        let clinician = if rng.chance(0.65) {
            Role::Attending
        } else {
            Role::Resident
        };
        let id = format!("{}-enc-{}", chart.id, n + 1);
        if let VisitKind::Acute(c) = kind {
            chart.conditions[c].visit = Some(n);
        }
        chart.visits.push(Visit {
            kind,
            start,
            end: start + Duration::minutes(length),
            emergency,
            clinician,
            id,
            vitals: Vec::new(),
            labs: Vec::new(),
        });
    }
}

fn plan_prescriptions(chart: &mut Chart, rng: &mut Rng) {
    let anchor = chart.anchor;
    let mut plans: Vec<Prescription> = Vec::new();
    let mut add = |drug: Drug,
                   start: DateTime<Utc>,
                   end: Option<DateTime<Utc>>,
                   status: &'static str,
                   reason: Option<&'static str>,
                   condition: usize,
                   visit: Option<usize>| {
        plans.push(Prescription {
            drug,
            id: String::new(),
            start,
            end,
            status,
            status_reason: reason,
            condition,
            visit,
        });
    };
    let on_ace = chart.has(Problem::Hypertension);
    let anticoagulated = chart.has(Problem::AtrialFibrillation);
    let kidney = chart.has(Problem::Ckd);
    for (c, condition) in chart.conditions.iter().enumerate() {
        let start = condition.onset + Duration::days(rng.range(0, 14));
        let start = start.min(anchor - Duration::days(1));
        match condition.problem {
            Problem::Diabetes => {
                if rng.chance(0.3) && (anchor - start).num_days() > 240 {
                    let change =
                        start + Duration::days(rng.range(120, (anchor - start).num_days() - 60));
                    add(
                        catalog::METFORMIN,
                        start,
                        Some(change),
                        "stopped",
                        Some("Dose increased"),
                        c,
                        None,
                    );
                    add(
                        catalog::METFORMIN_HIGH,
                        change,
                        None,
                        "active",
                        None,
                        c,
                        None,
                    );
                } else {
                    add(catalog::METFORMIN, start, None, "active", None, c, None);
                }
            }
            Problem::Hypertension => {
                if rng.chance(0.3) && (anchor - start).num_days() > 200 {
                    let change =
                        start + Duration::days(rng.range(60, (anchor - start).num_days() - 30));
                    add(
                        catalog::HYDROCHLOROTHIAZIDE,
                        start,
                        Some(change),
                        "stopped",
                        Some("Hyponatremia; changed to lisinopril"),
                        c,
                        None,
                    );
                    add(catalog::LISINOPRIL, change, None, "active", None, c, None);
                } else {
                    add(catalog::LISINOPRIL, start, None, "active", None, c, None);
                }
                if rng.chance(0.25) {
                    let later = start + Duration::days(rng.range(30, 400));
                    add(
                        catalog::AMLODIPINE,
                        later.min(anchor - Duration::days(1)),
                        None,
                        "active",
                        None,
                        c,
                        None,
                    );
                }
            }
            Problem::Ckd => {
                if !on_ace {
                    add(catalog::LISINOPRIL, start, None, "active", None, c, None);
                }
                if rng.chance(0.3) {
                    add(catalog::FUROSEMIDE, start, None, "active", None, c, None);
                }
            }
            Problem::AtrialFibrillation => {
                add(catalog::WARFARIN, start, None, "active", None, c, None)
            }
            Problem::Hyperlipidemia => {
                add(catalog::ATORVASTATIN, start, None, "active", None, c, None)
            }
            Problem::Uri | Problem::Uti | Problem::AnkleSprain => {
                // Adult doses only: children's prescriptions are dosed by weight
                // and left out of the demo rather than written wrong.
                let Some(visit) = condition.visit else {
                    continue;
                };
                if chart.age < 12 {
                    continue;
                }
                let drug = match condition.problem {
                    Problem::Uri if rng.chance(0.25) => {
                        if chart.allergic_to(&catalog::PENICILLIN) {
                            catalog::AZITHROMYCIN
                        } else {
                            catalog::AMOXICILLIN
                        }
                    }
                    Problem::Uri => catalog::ACETAMINOPHEN,
                    Problem::Uti => {
                        if chart.allergic_to(&catalog::SULFAMETHOXAZOLE) {
                            catalog::CEPHALEXIN
                        } else {
                            catalog::TMP_SMX
                        }
                    }
                    // No NSAIDs with warfarin, CKD or an aspirin allergy.
                    _ if anticoagulated
                        || kidney
                        || chart.allergies.iter().any(|a| a.display == "Aspirin") =>
                    {
                        catalog::ACETAMINOPHEN
                    }
                    _ => catalog::IBUPROFEN,
                };
                let start = chart.visits[visit].end;
                let end = start + Duration::days(10);
                if end < anchor {
                    add(drug, start, Some(end), "completed", None, c, Some(visit));
                } else {
                    add(drug, start, None, "active", None, c, Some(visit));
                }
            }
        }
    }
    if let Some((first_day, _)) = chart.insulin
        && let Some(c) = chart
            .conditions
            .iter()
            .position(|c| c.problem == Problem::Diabetes)
    {
        add(
            catalog::INSULIN_GLARGINE,
            midnight(first_day) - Duration::hours(6),
            None,
            "active",
            None,
            c,
            None,
        );
    }
    plans.sort_by_key(|p| p.start);
    for (n, p) in plans.iter_mut().enumerate() {
        p.id = format!("{}-med-{}", chart.id, n + 1);
    }
    chart.prescriptions = plans;
}

/// Running numbers for resource ids within one patient.
#[derive(Default)]
pub(crate) struct Ids {
    pub obs: usize,
    pub dr: usize,
}

/// Per-patient physiology: baselines the visits vary around.
struct Baseline {
    systolic: f64,
    hr: f64,
    weight: f64,
    a1c: f64,
    a1c_slope: f64,
    egfr: f64,
    egfr_slope: f64,
    ldl: f64,
}

fn baseline(chart: &Chart, rng: &mut Rng) -> Baseline {
    let htn = chart.has(Problem::Hypertension);
    let systolic = if htn {
        rng.uniform(134.0, 158.0)
    } else if chart.age < 18 {
        rng.uniform(96.0, 114.0)
    } else {
        rng.uniform(106.0, 126.0)
    };
    let hr = match chart.age {
        0 => 130.0,
        1..=5 => 105.0,
        6..=12 => 88.0,
        _ => rng.uniform(66.0, 84.0),
    } + if chart.has(Problem::AtrialFibrillation) {
        8.0
    } else {
        0.0
    };
    let weight = if chart.age < 18 {
        0.0
    } else if chart.female() {
        rng.uniform(52.0, 95.0)
    } else {
        rng.uniform(64.0, 112.0)
    } + if chart.has(Problem::Diabetes) {
        10.0
    } else {
        0.0
    };
    let egfr = if chart.has(Problem::Ckd) {
        rng.uniform(33.0, 58.0)
    } else {
        (rng.uniform(85.0, 112.0) - (chart.age as f64 - 40.0).max(0.0) * 0.5).max(62.0)
    };
    Baseline {
        systolic,
        hr,
        weight,
        a1c: rng.uniform(6.3, 9.8),
        a1c_slope: rng.uniform(-0.25, 0.15),
        egfr,
        egfr_slope: rng.uniform(-1.2, 0.4),
        ldl: rng.uniform(95.0, 175.0),
    }
}

/// A child's weight by age, roughly along the 50th centile.
fn child_weight(age_days: i64) -> f64 {
    let years = age_days as f64 / 365.25;
    if years < 1.0 {
        3.4 + years * 6.6
    } else if years < 12.0 {
        8.0 + years * 2.6
    } else {
        12.0 + years * 3.3
    }
}

fn write(chart: &mut Chart, opts: &DemoOptions, out: &mut Vec<Value>) {
    let mut rng = write_rng(opts, chart);
    let stream = |purpose| Rng::new(opts.seed, purpose, chart.index as u64);
    let mut history_rng = stream(STREAM_HISTORY);
    let mut results_rng = stream(STREAM_RESULTS);
    let mut style_rng = stream(STREAM_VISIT_STYLE);
    let mut notes_rng = stream(STREAM_NOTES);

    out.push(patient_resource(chart, &mut rng));
    for visit in &chart.visits {
        out.push(encounter(chart, visit));
    }
    for condition in &chart.conditions {
        out.push(condition_resource(chart, condition));
    }
    history::conditions(chart, &mut history_rng, out);
    for (n, allergen) in chart.allergies.iter().enumerate() {
        out.push(allergy(chart, allergen, n + 1, &mut rng));
    }
    history::allergies(chart, opts.seed, &mut history_rng, out);
    let hold = history::hold(chart, &mut history_rng);
    for p in &chart.prescriptions {
        let mut resource = prescription(chart, p);
        if let Some((id, reason)) = &hold
            && *id == p.id
        {
            resource["status"] = json!("on-hold");
            resource["statusReason"] = json!({ "text": reason });
        }
        out.push(resource);
    }
    history::medications(chart, &mut history_rng, out);

    let base = baseline(chart, &mut rng);
    let styles = results::styles(chart, &mut style_rng);
    let mut ids = Ids::default();
    let mut reports = Vec::new();
    let mut follow_up = 0usize;
    let first_result = out.len();
    for (v, style) in styles.iter().enumerate() {
        let visit = chart.visits[v].clone();
        let (vitals, observations) = vital_signs(chart, &visit, &base, style, &mut rng, &mut ids);
        out.extend(observations);
        let labs = laboratory(
            chart,
            &visit,
            follow_up,
            &base,
            style,
            &mut rng,
            &mut style_rng,
            &mut ids,
        );
        out.extend(labs.observations);
        if visit.kind == VisitKind::FollowUp {
            follow_up += 1;
        }
        if labs.panel.len() >= 2 {
            ids.dr += 1;
            reports.push(diagnostic_report(
                chart,
                &visit,
                &labs.panel,
                ids.dr,
                style.performer(),
            ));
        }
        chart.visits[v].vitals = vitals;
        chart.visits[v].labs = labs.results;
    }
    results::settle_statuses(chart, &mut results_rng, &mut out[first_result..]);
    let physiology = results::Physiology {
        a1c: base.a1c,
        egfr: base.egfr,
    };
    results::write(
        chart,
        opts.seed,
        &physiology,
        &mut ids,
        &mut results_rng,
        out,
    );
    if !reports.is_empty() {
        let statuses = results::result_statuses(&out[first_result..]);
        for report in &mut reports {
            results::report_status(report, &statuses);
        }
    }
    out.extend(reports);

    notes::write(chart, &mut rng, &mut notes_rng, out);
    let mut message_rng = Rng::new(opts.seed, STREAM_MESSAGES, chart.index as u64);
    messages::write(chart, &mut message_rng, out);
}

fn patient_resource(chart: &Chart, rng: &mut Rng) -> Value {
    let address = names::address(rng);
    json!({
        "resourceType": "Patient",
        "id": chart.id,
        "identifier": [{
            "use": "usual",
            "type": {
                "coding": [coding(codes::IDENTIFIER_TYPE, codes::IDENTIFIER_TYPE_MRN, "Medical record number")],
                "text": "MRN",
            },
            "system": codes::MRN_SYSTEM,
            "value": chart.mrn,
        }],
        "active": true,
        "name": [{
            "use": "official",
            "text": chart.name.text(),
            "family": chart.name.family,
            "given": chart.name.given,
        }],
        "telecom": [{ "system": "phone", "value": names::phone(rng), "use": if rng.chance(0.7) { "mobile" } else { "home" } }],
        "gender": if chart.female() { "female" } else { "male" },
        "birthDate": day(chart.birth),
        "address": [{
            "use": "home",
            "line": [address.line],
            "city": address.city,
            "state": address.state,
            "postalCode": address.postal_code,
            "country": "US",
        }],
        "generalPractitioner": [practitioner_ref(Role::Attending)],
        "managingOrganization": organization_ref(),
    })
}

/// Clinical resources point at the patient without a display: the chart
/// around them already names the patient, and it is the bulk of the data.
fn patient_ref(chart: &Chart) -> Value {
    reference("Patient", &chart.id)
}

fn encounter(chart: &Chart, visit: &Visit) -> Value {
    let (class_code, class_display) = if visit.emergency {
        ("EMER", "emergency")
    } else {
        ("AMB", "ambulatory")
    };
    let (type_code, type_display) = match visit.kind {
        _ if visit.emergency => ("50849002", "Emergency room admission"),
        VisitKind::FollowUp => ("390906007", "Follow-up encounter"),
        VisitKind::Wellness => ("162673000", "General examination of patient"),
        VisitKind::Acute(_) => ("185345009", "Encounter for symptom"),
    };
    let reasons: Vec<Value> = match visit.kind {
        VisitKind::Acute(c) => vec![problem_concept(chart.conditions[c].problem)],
        VisitKind::FollowUp => chart
            .problems_at(visit.start)
            .iter()
            .filter(|c| c.problem.chronic())
            .map(|c| problem_concept(c.problem))
            .collect(),
        VisitKind::Wellness => vec![],
    };
    let mut resource = json!({
        "resourceType": "Encounter",
        "id": visit.id,
        "status": "finished",
        "class": coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", class_code, class_display),
        "type": [concept(codes::SNOMED, type_code, type_display)],
        "subject": patient_ref(chart),
        "participant": [{
            "type": [concept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "ATND", "attender")],
            "individual": practitioner_ref(visit.clinician),
        }],
        "period": { "start": instant(visit.start), "end": instant(visit.end) },
        "serviceProvider": organization_ref(),
    });
    if !reasons.is_empty() {
        resource["reasonCode"] = Value::Array(reasons);
    }
    resource
}

fn problem_concept(problem: Problem) -> Value {
    let (code, display) = problem.snomed();
    concept(codes::SNOMED, code, display)
}

fn condition_resource(chart: &Chart, c: &Condition) -> Value {
    let (status, status_display) = if c.abated.is_some() {
        ("resolved", "Resolved")
    } else {
        ("active", "Active")
    };
    let (category, category_display) = if c.problem.chronic() {
        ("problem-list-item", "Problem List Item")
    } else {
        ("encounter-diagnosis", "Encounter Diagnosis")
    };
    let recorded = c.visit.map_or(c.onset, |v| chart.visits[v].end);
    let mut resource = json!({
        "resourceType": "Condition",
        "id": c.id,
        "clinicalStatus": concept(codes::CONDITION_CLINICAL, status, status_display),
        "verificationStatus": concept(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "confirmed",
            "Confirmed",
        ),
        "category": [concept(
            "http://terminology.hl7.org/CodeSystem/condition-category",
            category,
            category_display,
        )],
        "code": problem_concept(c.problem),
        "subject": patient_ref(chart),
        "onsetDateTime": instant(c.onset),
        "recordedDate": instant(recorded),
    });
    if let Some(v) = c.visit {
        resource["encounter"] = reference("Encounter", &chart.visits[v].id);
        resource["recorder"] = practitioner_ref(chart.visits[v].clinician);
    }
    if let Some(abated) = c.abated {
        resource["abatementDateTime"] = json!(instant(abated));
    }
    resource
}

fn allergy(chart: &Chart, allergen: &Allergen, n: usize, rng: &mut Rng) -> Value {
    let (code, display) = *rng.pick(allergen.reactions);
    let severe = catalog::is_anaphylaxis(code);
    let airway = catalog::threatens_airway(code);
    let severity = if severe {
        "severe"
    } else if airway || rng.chance(0.4) {
        "moderate"
    } else {
        "mild"
    };
    let criticality = if severe || airway {
        "high"
    } else if rng.chance(0.1) {
        "unable-to-assess"
    } else {
        "low"
    };
    // Codeine nausea is a side effect, not an immune reaction.
    let kind = if allergen.display == "Codeine" && code != "126485001" {
        "intolerance"
    } else {
        "allergy"
    };
    let recorded = midnight(chart.birth)
        + Duration::days(rng.range(
            200,
            ((chart.anchor.date_naive() - chart.birth).num_days() - 30).max(201),
        ));
    json!({
        "resourceType": "AllergyIntolerance",
        "id": format!("{}-alg-{n}", chart.id),
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
        "type": kind,
        "category": [allergen.category.code()],
        "criticality": criticality,
        "code": concept(allergen.system, allergen.code, allergen.display),
        "patient": patient_ref(chart),
        "recordedDate": instant(recorded.min(chart.anchor - Duration::days(1))),
        "recorder": practitioner_ref(Role::Attending),
        "reaction": [{
            "substance": concept(allergen.system, allergen.code, allergen.display),
            "manifestation": [concept(codes::SNOMED, code, display)],
            "severity": severity,
        }],
    })
}

fn prescription(chart: &Chart, p: &Prescription) -> Value {
    let condition = &chart.conditions[p.condition];
    let requester = p
        .visit
        .map_or(Role::Attending, |v| chart.visits[v].clinician);
    let mut resource = json!({
        "resourceType": "MedicationRequest",
        "id": p.id,
        "status": p.status,
        "intent": "order",
        "medicationCodeableConcept": concept(codes::RXNORM, p.drug.rxnorm, p.drug.display),
        "subject": patient_ref(chart),
        "authoredOn": instant(p.start),
        "requester": practitioner_ref(requester),
        "reasonReference": [reference("Condition", &condition.id)],
        "dosageInstruction": [{ "text": p.drug.sig }],
    });
    if let Some(v) = p.visit {
        resource["encounter"] = reference("Encounter", &chart.visits[v].id);
    }
    if let Some(end) = p.end {
        resource["dispenseRequest"] = json!({
            "validityPeriod": { "start": instant(p.start), "end": instant(end) },
        });
    }
    if let Some(reason) = p.status_reason {
        resource["statusReason"] = json!({ "text": reason });
    }
    if p.status == "active" && p.visit.is_none() {
        // Long-term drugs are written for 90 days with refills.
        resource["dispenseRequest"] = json!({
            "numberOfRepeatsAllowed": 3,
            "expectedSupplyDuration": quantity(90.0, 0, "days", "d"),
        });
    }
    resource
}

pub(crate) fn measure_code(m: &Measure) -> Value {
    json!({ "coding": [coding(codes::LOINC, m.loinc, m.display)], "text": m.display })
}

fn range_of(m: &Measure) -> Option<Value> {
    if m.low.is_none() && m.high.is_none() {
        return None;
    }
    let mut range = json!({});
    if let Some(low) = m.low {
        range["low"] = quantity(low, m.decimals, m.unit, m.ucum);
    }
    if let Some(high) = m.high {
        range["high"] = quantity(high, m.decimals, m.unit, m.ucum);
    }
    Some(json!([range]))
}

/// Value, range and flag of one measurement; returns the rounded value's flag.
pub(crate) fn fill_measure(resource: &mut Value, m: &Measure, value: f64) -> &'static str {
    let value = round_to(value, m.decimals);
    resource["valueQuantity"] = quantity(value, m.decimals, m.unit, m.ucum);
    if let Some(range) = range_of(m) {
        resource["referenceRange"] = range;
        let flag = m.interpret(value);
        resource["interpretation"] = interpretation(flag);
        flag
    } else {
        ""
    }
}

pub(crate) fn shown(m: &Measure, value: f64) -> String {
    let value = round_to(value, m.decimals);
    match m.decimals {
        0 => format!("{} {}", value as i64, m.unit),
        1 => format!("{value:.1} {}", m.unit),
        _ => format!("{value:.2} {}", m.unit),
    }
}

/// Collects the Observations of one visit and what notes and messages quote of them.
struct Recorder<'a> {
    chart: &'a Chart,
    visit: &'a Visit,
    ids: &'a mut Ids,
    category: &'static str,
    at: DateTime<Utc>,
    /// The laboratory that reports, for laboratory results.
    performer: Value,
    out: Vec<Value>,
    results: Vec<Result>,
    /// Ids of the basic metabolic panel members, for a DiagnosticReport.
    panel: Vec<String>,
}

impl<'a> Recorder<'a> {
    fn new(
        chart: &'a Chart,
        visit: &'a Visit,
        ids: &'a mut Ids,
        category: &'static str,
        at: DateTime<Utc>,
    ) -> Self {
        Recorder {
            chart,
            visit,
            ids,
            category,
            at,
            performer: organization_ref(),
            out: Vec::new(),
            results: Vec::new(),
            panel: Vec::new(),
        }
    }

    fn observation(&mut self, code: Value) -> Value {
        self.ids.obs += 1;
        let mut o = json!({
            "resourceType": "Observation",
            "id": format!("{}-obs-{}", self.chart.id, self.ids.obs),
            "status": "final",
            "category": observation_category(self.category),
            "code": code,
            "subject": patient_ref(self.chart),
            "encounter": reference("Encounter", &self.visit.id),
            "effectiveDateTime": instant(self.at),
        });
        if self.category == codes::CATEGORY_LABORATORY {
            o["issued"] = json!(instant(
                (self.at + Duration::hours(4)).min(self.chart.anchor - Duration::minutes(5))
            ));
            o["performer"] = json!([self.performer.clone()]);
        }
        o
    }

    fn keep(&mut self, o: Value, short: &'static str, text: String, flag: &'static str) {
        self.results.push(Result { short, text, flag });
        self.out.push(o);
    }

    fn measure(&mut self, m: &Measure, value: f64) {
        self.measure_coded(m, measure_code(m), value);
    }

    fn measure_coded(&mut self, m: &Measure, code: Value, value: f64) {
        let mut o = self.observation(code);
        let flag = fill_measure(&mut o, m, value);
        self.keep(o, m.short, shown(m, value), flag);
    }

    /// A member of the basic metabolic panel.
    fn panel_measure(&mut self, m: &Measure, value: f64) {
        self.measure(m, value);
        self.panel
            .push(format!("{}-obs-{}", self.chart.id, self.ids.obs));
    }

    /// A value beyond what the assay reports, as the laboratory writes it:
    /// `<0.3` (comparator `<`, value the limit) or `>90`.
    fn censored(&mut self, m: &Measure, comparator: &'static str, limit: f64) {
        let mut o = self.observation(measure_code(m));
        let flag = fill_measure(&mut o, m, limit);
        o["valueQuantity"]["comparator"] = json!(comparator);
        self.keep(o, m.short, format!("{comparator}{}", shown(m, limit)), flag);
    }
}

fn vital_signs(
    chart: &Chart,
    visit: &Visit,
    base: &Baseline,
    style: &results::VisitStyle,
    rng: &mut Rng,
    ids: &mut Ids,
) -> (Vec<Result>, Vec<Value>) {
    let at = visit.start + Duration::minutes(rng.range(3, 12));
    let mut rec = Recorder::new(chart, visit, ids, codes::CATEGORY_VITAL_SIGNS, at);
    let age_days = (visit.start.date_naive() - chart.birth).num_days();
    let age = chart.age_at(visit.start);
    let acute = matches!(visit.kind, VisitKind::Acute(_)) || visit.emergency;
    let febrile = matches!(visit.kind, VisitKind::Acute(c)
        if matches!(chart.conditions[c].problem, Problem::Uri | Problem::Uti))
        && rng.chance(0.6);
    let full = acute || rng.chance(0.5);
    let treated = chart.prescribed_by(visit.start).any(|p| {
        [
            catalog::LISINOPRIL.rxnorm,
            catalog::AMLODIPINE.rxnorm,
            catalog::HYDROCHLOROTHIAZIDE.rxnorm,
        ]
        .contains(&p.drug.rxnorm)
    });

    if age >= 3 {
        let mut systolic = base.systolic + rng.normal(0.0, 7.0);
        if treated {
            systolic -= 10.0;
        }
        if age < 18 {
            systolic = systolic.min(125.0);
        }
        let diastolic = systolic * 0.62 + rng.normal(0.0, 5.0);
        let sys = round_to(systolic, 0);
        let dia = round_to(diastolic, 0);
        let (systolic_measure, diastolic_measure) = catalog::blood_pressure_for(age);
        let sys_flag = systolic_measure.interpret(sys);
        let dia_flag = diastolic_measure.interpret(dia);
        let worst = worst_flag(sys_flag, dia_flag);
        let mut o = rec.observation(json!({
            "coding": [coding(codes::LOINC, catalog::BP_PANEL.0, catalog::BP_PANEL.1)],
            "text": "Blood pressure",
        }));
        o["component"] = json!([
            component(&systolic_measure, sys, sys_flag),
            component(&diastolic_measure, dia, dia_flag),
        ]);
        o["interpretation"] = interpretation(worst);
        rec.keep(
            o,
            "BP",
            format!("{}/{} mmHg", sys as i64, dia as i64),
            worst,
        );
    }

    let hr = base.hr + rng.normal(0.0, 6.0) + if febrile { 14.0 } else { 0.0 };
    rec.measure(&catalog::heart_rate_for(age), hr);

    if full || age < 3 {
        let temp = if febrile {
            rng.uniform(37.9, 39.4)
        } else {
            rng.uniform(36.4, 37.2)
        };
        if style.fahrenheit {
            rec.measure(&catalog::TEMPERATURE_F, catalog::fahrenheit(temp));
        } else {
            rec.measure(&catalog::TEMPERATURE, temp);
        }
        let rr = match age {
            0 => 40.0,
            1..=5 => 25.0,
            6..=12 => 20.0,
            _ => 15.0,
        } + rng.normal(0.0, 1.5)
            + if febrile { 3.0 } else { 0.0 };
        rec.measure(&catalog::resp_rate_for(age), rr);
        // A rare hypoxic older patient with an infection gives a critical value.
        let spo2 = if febrile && age >= 70 && rng.chance(0.15) {
            rng.uniform(85.0, 88.0)
        } else {
            rng.uniform(94.6, 99.4)
        };
        let code = json!({
            "coding": [
                coding(codes::LOINC, catalog::SPO2.loinc, catalog::SPO2.display),
                coding(codes::LOINC, catalog::SPO2_ALT.0, catalog::SPO2_ALT.1),
            ],
            "text": "Oxygen saturation",
        });
        rec.measure_coded(&catalog::SPO2, code, spo2);
    }

    let weight = if age < 18 {
        child_weight(age_days) * (1.0 + rng.normal(0.0, 0.03))
    } else {
        let years = (visit.start - chart.anchor).num_days() as f64 / 365.0;
        base.weight + years * 0.8 + rng.normal(0.0, 0.6)
    };
    if style.pounds {
        rec.measure(&catalog::WEIGHT_LB, weight * catalog::POUNDS_PER_KG);
    } else {
        rec.measure(&catalog::WEIGHT, weight);
    }
    (rec.results, rec.out)
}

fn worst_flag(a: &'static str, b: &'static str) -> &'static str {
    let rank = |f: &str| match f {
        "HH" | "LL" => 3,
        "H" | "L" => 2,
        _ => 1,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn component(m: &Measure, value: f64, flag: &str) -> Value {
    let mut c = json!({
        "code": measure_code(m),
        "valueQuantity": quantity(value, m.decimals, m.unit, m.ucum),
    });
    if let Some(range) = range_of(m) {
        c["referenceRange"] = range;
    }
    c["interpretation"] = interpretation(flag);
    c
}

impl Chart {
    /// Prescriptions that had started by `t`, whatever their status now.
    fn prescribed_by(&self, t: DateTime<Utc>) -> impl Iterator<Item = &Prescription> {
        self.prescriptions.iter().filter(move |p| p.start <= t)
    }
}

/// Laboratory results of one visit.
struct Labs {
    results: Vec<Result>,
    observations: Vec<Value>,
    /// Ids of the basic metabolic panel members.
    panel: Vec<String>,
}

/// Draws the labs a visit calls for. `follow_up` counts earlier follow-ups,
/// so trends move and the slower tests come round every few visits. Tests
/// added since the first version of the clinic (CRP, troponin) draw from
/// `added`, so the others keep their values.
#[allow(clippy::too_many_arguments)]
fn laboratory(
    chart: &Chart,
    visit: &Visit,
    follow_up: usize,
    base: &Baseline,
    style: &results::VisitStyle,
    rng: &mut Rng,
    added: &mut Rng,
    ids: &mut Ids,
) -> Labs {
    let drawn = visit.start + Duration::minutes(rng.range(20, 45));
    let mut rec = Recorder::new(chart, visit, ids, codes::CATEGORY_LABORATORY, drawn);
    rec.performer = style.performer();
    let glucose_measure = if style.hospital_lab {
        // The hospital reports mmol/L under the same test code.
        (catalog::GLUCOSE_MMOL, 1.0 / 18.016)
    } else {
        (catalog::GLUCOSE, 1.0)
    };
    let active: Vec<Problem> = chart
        .problems_at(visit.start)
        .iter()
        .map(|c| c.problem)
        .collect();
    let has = |p: Problem| active.contains(&p);
    match visit.kind {
        VisitKind::FollowUp => {
            let k = follow_up as f64;
            if has(Problem::Diabetes) {
                let a1c = (base.a1c + base.a1c_slope * k + rng.normal(0.0, 0.2)).clamp(5.4, 13.5);
                rec.measure(&catalog::HBA1C, a1c);
                let glucose = if rng.chance(0.03) {
                    rng.uniform(410.0, 520.0)
                } else if rng.chance(0.015) {
                    rng.uniform(38.0, 48.0)
                } else {
                    (28.7 * a1c - 46.7 + rng.normal(0.0, 18.0)).max(62.0)
                };
                rec.panel_measure(&glucose_measure.0, glucose * glucose_measure.1);
            }
            let kidney = has(Problem::Ckd);
            if kidney || (has(Problem::Hypertension) && follow_up.is_multiple_of(2)) {
                let egfr = if kidney {
                    // Stage 3 is eGFR 30-59: the trend stays in the stage the
                    // problem list names, where metformin is still allowed.
                    (base.egfr + base.egfr_slope * k + rng.normal(0.0, 2.5)).clamp(30.0, 59.0)
                } else {
                    base.egfr + rng.normal(0.0, 3.0)
                };
                let sex = if chart.female() { 0.85 } else { 1.0 };
                let creatinine = sex * 80.0 / egfr + rng.normal(0.0, 0.04);
                rec.panel_measure(&catalog::CREATININE, creatinine);
                if round_to(egfr, 0) > catalog::EGFR_REPORTED_UP_TO {
                    rec.censored(&catalog::EGFR, ">", catalog::EGFR_REPORTED_UP_TO);
                    rec.panel.push(format!("{}-obs-{}", chart.id, rec.ids.obs));
                } else {
                    rec.panel_measure(&catalog::EGFR, egfr);
                }
                let ace = chart
                    .prescribed_by(visit.start)
                    .any(|p| p.drug.rxnorm == catalog::LISINOPRIL.rxnorm);
                let potassium = if rng.chance(0.02) {
                    rng.uniform(6.2, 6.8)
                } else {
                    rng.uniform(3.7, 4.8) + if kidney && ace { 0.45 } else { 0.0 }
                };
                rec.panel_measure(&catalog::POTASSIUM, potassium);
            }
            if has(Problem::AtrialFibrillation) {
                let inr = if rng.chance(0.05) {
                    rng.uniform(4.6, 6.5)
                } else {
                    rng.normal(2.5, 0.4).max(1.4)
                };
                rec.measure(&catalog::INR, inr);
            }
            if has(Problem::Hyperlipidemia) && follow_up.is_multiple_of(3) {
                let on_statin = chart
                    .prescribed_by(visit.start)
                    .any(|p| p.drug.rxnorm == catalog::ATORVASTATIN.rxnorm);
                let ldl = base.ldl * if on_statin { 0.62 } else { 1.0 } + rng.normal(0.0, 8.0);
                rec.measure(&catalog::LDL, ldl);
            }
        }
        VisitKind::Acute(c) => match chart.conditions[c].problem {
            Problem::Uti => {
                let mut o = rec.observation(json!({
                    "coding": [coding(codes::LOINC, catalog::URINE_NITRITE.0, catalog::URINE_NITRITE.1)],
                    "text": "Urine nitrite",
                }));
                let (code, display, flag) = if rng.chance(0.8) {
                    ("10828004", "Positive", "A")
                } else {
                    ("260385009", "Negative", "N")
                };
                o["valueCodeableConcept"] = concept(codes::SNOMED, code, display);
                o["referenceRange"] = json!([{ "text": "Negative" }]);
                o["interpretation"] = interpretation(flag);
                rec.keep(o, "urine nitrite", display.to_lowercase(), flag);
            }
            Problem::Uri if chart.age_at(visit.start) >= 12 && rng.chance(0.3) => {
                rec.measure(&catalog::WBC, rng.uniform(6.5, 14.5));
            }
            _ => {}
        },
        VisitKind::Wellness => {
            if chart.age_at(visit.start) >= 40 && rng.chance(0.5) {
                rec.panel_measure(
                    &glucose_measure.0,
                    rng.uniform(74.0, 108.0) * glucose_measure.1,
                );
                rec.panel_measure(&catalog::CREATININE, rng.uniform(0.65, 1.15));
                rec.panel_measure(&catalog::POTASSIUM, rng.uniform(3.6, 4.9));
            }
        }
    }
    let adult = chart.age_at(visit.start) >= 18;
    if let VisitKind::Acute(c) = visit.kind
        && chart.conditions[c].problem == Problem::Uri
        && adult
        && added.chance(0.35)
    {
        // Mostly below what the assay reports.
        if added.chance(0.7) {
            rec.censored(&catalog::CRP, "<", catalog::CRP_DETECTION_LIMIT);
        } else {
            rec.measure(&catalog::CRP, added.uniform(0.4, 6.5));
        }
    }
    if visit.emergency && chart.age_at(visit.start) >= 40 {
        if added.chance(0.85) {
            rec.censored(&catalog::TROPONIN, "<", catalog::TROPONIN_DETECTION_LIMIT);
        } else {
            rec.measure(&catalog::TROPONIN, added.uniform(0.015, 0.09));
        }
    }
    Labs {
        results: rec.results,
        observations: rec.out,
        panel: rec.panel,
    }
}

fn diagnostic_report(
    chart: &Chart,
    visit: &Visit,
    members: &[String],
    n: usize,
    performer: Value,
) -> Value {
    let issued = (visit.start + Duration::hours(6)).min(chart.anchor - Duration::minutes(5));
    json!({
        "resourceType": "DiagnosticReport",
        "id": format!("{}-dr-{n}", chart.id),
        "status": "final",
        "category": [concept("http://terminology.hl7.org/CodeSystem/v2-0074", "LAB", "Laboratory")],
        "code": { "coding": [coding(codes::LOINC, catalog::BMP_PANEL.0, catalog::BMP_PANEL.1)], "text": "Basic metabolic panel" },
        "subject": patient_ref(chart),
        "encounter": reference("Encounter", &visit.id),
        "effectiveDateTime": instant(visit.start + Duration::minutes(30)),
        "issued": instant(issued),
        "performer": [performer],
        "result": members.iter().map(|id| reference("Observation", id)).collect::<Vec<_>>(),
    })
}
