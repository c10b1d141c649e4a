//! Results shaped like a real chart's, beyond one tidy set per visit:
//!
//! - units that change with who measured: temperature in °F at the
//!   emergency department and on some devices, weight in pounds on some
//!   scales, glucose in mmol/L from the hospital laboratory (same test code);
//! - every status a result goes through: preliminary (drawn in the last
//!   days), amended and corrected (with what changed), cancelled (a
//!   hemolyzed potassium, sometimes the newest of its test) and entered in
//!   error (a weight typed in pounds, sometimes the newest of its test);
//! - finger-stick glucose four times a day for two months while insulin
//!   is started (see [`insulin_start`]): 200+ results that bury the
//!   potassium and the HbA1c of a "last 200 results" query;
//! - a critical result from 40 to 60 days ago that is still the latest of
//!   its test;
//! - one result in a hundred patients whose value is a string, as a broken
//!   interface writes it, which a strict client cannot decode.
//!
//! Everything here draws from streams of its own, so the rest of a chart is
//! the same with or without it.

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use serde_json::{Value, json};

use super::catalog::{self, Measure, Problem};
use super::json::{instant, observation_category, reference};
use super::patient::{Chart, Ids, fill_measure, measure_code};
use super::rng::{Rng, one_in};
use super::staff::{hospital_lab_ref, organization_ref};
use crate::fhir::codes;

/// Patients in a row per result with a string value (see [`malformed_result`]).
pub(crate) const MALFORMED_PERIOD: u64 = 100;
/// Patients in a row per patient placed to start insulin (see [`insulin_start`]).
pub(crate) const INSULIN_PERIOD: u64 = 100;

/// Whether patient `index` is placed to start insulin: an adult with type 2
/// diabetes, one in every hundred patients, so any clinic of a few hundred
/// has finger-stick series; other diabetics start insulin by chance.
pub(crate) fn insulin_start(seed: u64, index: usize) -> bool {
    one_in(seed, 0x01A5_0715, INSULIN_PERIOD, index)
}

/// First and last day of finger-stick monitoring after insulin is started:
/// eight to ten weeks, ending in the last days before the anchor.
pub(crate) fn plan_insulin(
    chart: &Chart,
    rng: &mut Rng,
    placed: bool,
) -> Option<(NaiveDate, NaiveDate)> {
    let diabetic = chart.has(Problem::Diabetes);
    let by_chance = rng.chance(0.04);
    if !diabetic || !(placed || by_chance) {
        return None;
    }
    let last = chart.anchor.date_naive() - Duration::days(rng.range(1, 10));
    Some((last - Duration::days(rng.range(55, 70)), last))
}

/// How one visit records: the units its devices show and the laboratory
/// its samples go to.
#[derive(Debug, Clone)]
pub(crate) struct VisitStyle {
    pub fahrenheit: bool,
    pub pounds: bool,
    pub hospital_lab: bool,
}

impl VisitStyle {
    pub fn performer(&self) -> Value {
        if self.hospital_lab {
            hospital_lab_ref()
        } else {
            organization_ref()
        }
    }
}

/// One style per visit: the emergency department records in °F and
/// pounds and sends samples to the hospital laboratory; the practice does
/// so now and then, and some patients have part of their labs drawn at
/// the hospital.
pub(crate) fn styles(chart: &Chart, rng: &mut Rng) -> Vec<VisitStyle> {
    let hospital_share = if rng.chance(0.3) {
        rng.uniform(0.3, 0.7)
    } else {
        0.0
    };
    chart
        .visits
        .iter()
        .map(|v| {
            let (f, lb, lab) = if v.emergency {
                (0.8, 0.6, 1.0)
            } else {
                (0.15, 0.15, hospital_share)
            };
            VisitStyle {
                fahrenheit: rng.chance(f),
                pounds: rng.chance(lb),
                hospital_lab: rng.chance(lab),
            }
        })
        .collect()
}

/// What the extra results are drawn around.
pub(crate) struct Physiology {
    pub a1c: f64,
    pub egfr: f64,
}

/// The string at `path` (object keys and array positions), or "". Plain
/// indexing: the generator reads back what it wrote thousands of times.
fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut at = v;
    for step in path {
        at = match step.parse::<usize>() {
            Ok(i) => &at[i],
            Err(_) => &at[*step],
        };
    }
    at.as_str().unwrap_or("")
}

fn effective(o: &Value) -> Option<DateTime<Utc>> {
    crate::fhir::time::instant(str_at(o, &["effectiveDateTime"]))
}

fn is_lab(o: &Value) -> bool {
    str_at(o, &["category", "0", "coding", "0", "code"]) == codes::CATEGORY_LABORATORY
}

/// Statuses of the visit results in `observations`, all written `final`:
/// results drawn in the last three days are often still preliminary; a few
/// older ones were amended or corrected after release.
pub(crate) fn settle_statuses(chart: &Chart, rng: &mut Rng, observations: &mut [Value]) {
    for o in observations.iter_mut() {
        if o["resourceType"] != "Observation" || !is_lab(o) {
            continue;
        }
        let Some(at) = effective(o) else { continue };
        if chart.anchor - at < Duration::days(3) {
            if rng.chance(0.6) {
                o["status"] = json!("preliminary");
            }
            continue;
        }
        let roll = rng.unit();
        let later = |hours: i64| {
            json!(instant(
                (at + Duration::hours(hours)).min(chart.anchor - Duration::minutes(5))
            ))
        };
        if roll < 0.006 {
            o["status"] = json!("amended");
            o["issued"] = later(rng.range(30, 200));
            o["note"] = json!([{
                "text": "Amended: reference interval revised after analyser recalibration; value unchanged."
            }]);
        } else if roll < 0.012
            && let Some(value) = o["valueQuantity"]["value"].as_f64()
        {
            o["status"] = json!("corrected");
            o["issued"] = later(rng.range(6, 72));
            let unit = str_at(o, &["valueQuantity", "unit"]).to_string();
            let earlier = value * rng.uniform(1.25, 1.6);
            o["note"] = json!([{
                "text": format!(
                    "Corrected report: first reported as {earlier:.1} {unit} from a mislabelled specimen."
                )
            }]);
        }
    }
}

/// The status of each result in `resources`, by `Observation/<id>`.
pub(crate) fn result_statuses(resources: &[Value]) -> HashMap<String, &str> {
    resources
        .iter()
        .filter(|o| o["resourceType"] == "Observation")
        .map(|o| {
            (
                format!("Observation/{}", str_at(o, &["id"])),
                str_at(o, &["status"]),
            )
        })
        .collect()
}

/// A DiagnosticReport's status from its results': preliminary while any
/// is, corrected or amended when any was.
pub(crate) fn report_status(report: &mut Value, statuses: &HashMap<String, &str>) {
    let members: Vec<&str> = report["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| statuses.get(str_at(r, &["reference"])).copied())
        .collect();
    let status = ["preliminary", "corrected", "amended"]
        .into_iter()
        .find(|s| members.contains(s))
        .unwrap_or("final");
    report["status"] = json!(status);
}

/// Whether patient `index` has the result with a string value.
pub(crate) fn malformed_result(seed: u64, index: usize) -> bool {
    one_in(seed, 0x0B5_BAD0, MALFORMED_PERIOD, index)
}

/// Writes results on the patient's chart.
struct Writer<'a> {
    chart: &'a Chart,
    ids: &'a mut Ids,
}

impl Writer<'_> {
    /// A laboratory result outside any visit (`encounter` none) or a
    /// vital sign re-entered at one.
    fn observation(
        &mut self,
        m: &Measure,
        category: &str,
        at: DateTime<Utc>,
        encounter: Option<&str>,
    ) -> Value {
        self.ids.obs += 1;
        let mut o = json!({
            "resourceType": "Observation",
            "id": format!("{}-obs-{}", self.chart.id, self.ids.obs),
            "status": "final",
            "category": observation_category(category),
            "code": measure_code(m),
            "subject": reference("Patient", &self.chart.id),
            "effectiveDateTime": instant(at),
        });
        if let Some(e) = encounter {
            o["encounter"] = reference("Encounter", e);
        }
        if category == codes::CATEGORY_LABORATORY {
            o["issued"] = json!(instant(
                (at + Duration::hours(3)).min(self.chart.anchor - Duration::minutes(5))
            ));
            o["performer"] = json!([organization_ref()]);
        }
        o
    }

    fn lab(&mut self, m: &Measure, at: DateTime<Utc>, value: f64) -> Value {
        let mut o = self.observation(m, codes::CATEGORY_LABORATORY, at, None);
        fill_measure(&mut o, m, value);
        o
    }
}

/// The newest result of `loinc` among `out`.
fn newest<'a>(out: &'a [Value], loinc: &str) -> Option<(&'a Value, DateTime<Utc>)> {
    out.iter()
        .filter(|o| o["resourceType"] == "Observation")
        .filter(|o| str_at(o, &["code", "coding", "0", "code"]) == loinc)
        .filter_map(|o| Some((o, effective(o)?)))
        .max_by_key(|(_, t)| *t)
}

/// Results outside the planned visits, and the ones that went wrong.
pub(crate) fn write(
    chart: &Chart,
    seed: u64,
    body: &Physiology,
    ids: &mut Ids,
    rng: &mut Rng,
    out: &mut Vec<Value>,
) {
    let mut w = Writer { chart, ids };
    let anchor = chart.anchor;
    let latest = anchor - Duration::minutes(10);

    // Labs drawn a day or two before the next visit, mostly not yet final.
    let chronic = chart
        .conditions
        .iter()
        .any(|c| c.problem.chronic() && c.abated.is_none());
    if chronic && rng.chance(0.1) {
        let at = anchor - Duration::minutes(rng.range(18 * 60, 70 * 60));
        let status = if rng.chance(0.7) {
            "preliminary"
        } else {
            "final"
        };
        let kidney = chart.has(Problem::Ckd);
        let sex = if chart.female() { 0.85 } else { 1.0 };
        let creatinine = sex * 80.0 / body.egfr.max(20.0) + rng.normal(0.0, 0.04);
        let potassium = rng.uniform(3.8, 4.9) + if kidney { 0.3 } else { 0.0 };
        let mut drawn = vec![
            w.lab(&catalog::CREATININE, at, creatinine),
            w.lab(&catalog::POTASSIUM, at, potassium),
        ];
        if chart.has(Problem::Diabetes) {
            let a1c = (body.a1c + rng.normal(0.0, 0.3)).clamp(5.4, 13.5);
            drawn.push(w.lab(&catalog::HBA1C, at, a1c));
            let glucose = (28.7 * a1c - 46.7 + rng.normal(0.0, 15.0)).max(70.0);
            drawn.push(w.lab(&catalog::GLUCOSE, at, glucose));
        }
        for mut o in drawn {
            o["status"] = json!(status);
            out.push(o);
        }
    }

    // A critical value phoned through from the hospital 40 to 60 days ago,
    // never repeated: still the latest of its test.
    if chart.age >= 18 && rng.chance(0.06) {
        let at = anchor - Duration::days(rng.range(40, 60)) - Duration::minutes(rng.range(0, 600));
        let (m, value) = if rng.chance(0.5) {
            (catalog::SODIUM, rng.uniform(113.0, 119.4))
        } else {
            (catalog::HEMOGLOBIN, rng.uniform(5.6, 6.8))
        };
        let mut o = w.lab(&m, at, value);
        o["performer"] = json!([hospital_lab_ref()]);
        o["note"] = json!([{ "text": "Critical value telephoned to the practice." }]);
        out.push(o);
    }

    // Finger-stick glucose before meals and at bedtime while insulin is
    // started and adjusted: two months of readings, coming down.
    if let Some((first_day, last_day)) = chart.insulin {
        // The labs that decided it, drawn the day before.
        let decided = first_day.and_time(NaiveTime::MIN).and_utc()
            - Duration::minutes(rng.range(14 * 60, 16 * 60));
        let a1c = (body.a1c + 1.0).clamp(8.6, 13.5);
        out.push(w.lab(&catalog::HBA1C, decided, a1c));
        out.push(w.lab(&catalog::POTASSIUM, decided, rng.uniform(3.8, 4.9)));
        out.push(w.lab(&catalog::UACR, decided, rng.uniform(8.0, 120.0)));
        let days = (last_day - first_day).num_days();
        let fasting = (28.7 * a1c - 46.7).max(110.0) * 0.85;
        // (hour, minutes after it from, to, rise over fasting)
        let times = [
            (7, 0, 50, 0.0),
            (11, 30, 75, 35.0),
            (17, 0, 60, 30.0),
            (21, 0, 90, 45.0),
        ];
        for d in 0..=days {
            let day = first_day + Duration::days(d);
            let progress = d as f64 / days as f64;
            for (hour, from, to, rise) in times {
                if rng.chance(0.03) {
                    continue;
                }
                let at = day.and_time(NaiveTime::MIN).and_utc()
                    + Duration::minutes(hour * 60 + rng.range(from, to));
                let mean = (fasting + rise) * (1.0 - 0.25 * progress);
                let value = if rng.chance(0.012) {
                    rng.uniform(42.0, 66.0)
                } else {
                    rng.normal(mean, 26.0).clamp(55.0, 480.0)
                };
                if at > latest {
                    continue;
                }
                let mut o = w.lab(&catalog::GLUCOSE_POC, at, value);
                o["issued"] = json!(instant(at));
                o["performer"] = json!([reference("Patient", &chart.id)]);
                out.push(o);
            }
        }
    }

    if malformed_result(seed, chart.index) {
        // A broken interface writes the number as a string.
        let at = anchor - Duration::days(rng.range(3, 30)) - Duration::minutes(rng.range(0, 600));
        let mut o = w.lab(&catalog::POTASSIUM, at, 4.4);
        o["performer"] = json!([hospital_lab_ref()]);
        o["valueQuantity"]["value"] = json!("4.4");
        out.push(o);
    }

    // A hemolyzed sample: the potassium reads high, the laboratory cancels
    // it. A reader who ignores the status sees a critical potassium.
    if let Some((last, at)) = newest(out, catalog::POTASSIUM.loinc)
        && rng.chance(0.15)
    {
        let when = at + Duration::minutes(rng.range(30, 240));
        let encounter = str_at(last, &["encounter", "reference"])
            .strip_prefix("Encounter/")
            .map(str::to_string);
        if when < latest {
            let mut o = w.lab(&catalog::POTASSIUM, when, rng.uniform(6.3, 7.4));
            if let Some(e) = encounter {
                o["encounter"] = reference("Encounter", &e);
            }
            o["status"] = json!("cancelled");
            o["note"] = json!([{
                "text": "Specimen hemolyzed; potassium falsely raised. Result cancelled, please recollect."
            }]);
            out.push(o);
        }
    }

    // The last weight typed again in the wrong unit, then marked in error:
    // the newest weight on the chart is not a weight.
    if let Some((last, at)) = newest(out, catalog::WEIGHT.loinc)
        && rng.chance(0.05)
        && let Some(value) = last["valueQuantity"]["value"].as_f64()
    {
        let when = at + Duration::minutes(rng.range(10, 40));
        let pounds = str_at(last, &["valueQuantity", "code"]) == "[lb_av]";
        let encounter = str_at(last, &["encounter", "reference"])
            .strip_prefix("Encounter/")
            .map(str::to_string);
        if when < latest {
            let (m, wrong, note) = if pounds {
                (
                    catalog::WEIGHT_LB,
                    value / catalog::POUNDS_PER_KG,
                    "Entered in error: the weight in kilograms was recorded as pounds.",
                )
            } else {
                (
                    catalog::WEIGHT,
                    value * catalog::POUNDS_PER_KG,
                    "Entered in error: the weight in pounds was recorded as kilograms.",
                )
            };
            let mut o = w.observation(&m, codes::CATEGORY_VITAL_SIGNS, when, encounter.as_deref());
            fill_measure(&mut o, &m, wrong);
            o["status"] = json!("entered-in-error");
            o["note"] = json!([{ "text": note }]);
            out.push(o);
        }
    }

    // Older mistakes: a blood pressure with its numbers transposed, and a
    // blood count that could not be run.
    if chart.visits.len() >= 2 && rng.chance(0.06) {
        let visit = &chart.visits[rng.below(chart.visits.len() - 1)];
        let bp = out.iter().find(|o| {
            str_at(o, &["code", "coding", "0", "code"]) == catalog::BP_PANEL.0
                && str_at(o, &["encounter", "reference"]) == format!("Encounter/{}", visit.id)
        });
        if let Some(bp) = bp.cloned()
            && let Some(at) = effective(&bp)
        {
            w.ids.obs += 1;
            let mut o = bp;
            o["id"] = json!(format!("{}-obs-{}", chart.id, w.ids.obs));
            o["effectiveDateTime"] = json!(instant(at + Duration::minutes(2)));
            o["status"] = json!("entered-in-error");
            if let Some(obj) = o.as_object_mut() {
                obj.remove("interpretation");
            }
            let systolic = o["component"][0]["valueQuantity"]["value"].take();
            let diastolic = o["component"][1]["valueQuantity"]["value"].take();
            o["component"][0]["valueQuantity"]["value"] = diastolic;
            o["component"][1]["valueQuantity"]["value"] = systolic;
            for c in o["component"].as_array_mut().into_iter().flatten() {
                if let Some(obj) = c.as_object_mut() {
                    obj.remove("interpretation");
                }
            }
            o["note"] = json!([{ "text": "Entered in error: systolic and diastolic transposed." }]);
            out.push(o);
        }
    }
    if !chart.visits.is_empty() && rng.chance(0.06) {
        let visit = &chart.visits[rng.below(chart.visits.len())];
        let at = visit.start + Duration::minutes(rng.range(20, 45));
        if at < latest {
            let mut o = w.observation(
                &catalog::WBC,
                codes::CATEGORY_LABORATORY,
                at,
                Some(&visit.id),
            );
            o["status"] = json!("cancelled");
            o["dataAbsentReason"] = json!({
                "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "code": "error",
                    "display": "Error"
                }],
                "text": "Specimen clotted"
            });
            o["note"] = json!([{ "text": "Specimen clotted; test cancelled. Not recollected." }]);
            out.push(o);
        }
    }
}
