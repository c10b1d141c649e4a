//! Results grouped by test, read the way a clinician reads them: only valid
//! values count (status rules), the latest of each test is kept whatever
//! else crowds the list, a trend is drawn in one unit, and an old "latest"
//! says how old it is.

use chrono::{DateTime, Duration, Utc};

use crate::chart::Section;
use crate::fhir::codes;
use crate::fhir::model::Observation;
use crate::fhir::status::{self, Verdict};
use crate::fhir::{time, units};

/// Values per test asked of `Observation/$lastn`.
pub const LASTN_MAX: u32 = 10;

/// Tests whose latest value must be on the chart even when a busy record
/// (glucose four times a day) fills the window of recent results: asked for
/// one by one, newest first, from servers without `$lastn`.
pub const KEY_LABS: [(&str, &str); 20] = [
    ("2823-3", "Potassium"),
    ("2951-2", "Sodium"),
    ("2075-0", "Chloride"),
    ("2028-9", "CO2"),
    ("2160-0", "Creatinine"),
    ("3094-0", "Urea nitrogen"),
    ("33914-3", "eGFR"),
    ("2345-7", "Glucose"),
    ("4548-4", "Hemoglobin A1c"),
    ("6301-6", "INR"),
    ("718-7", "Hemoglobin"),
    ("6690-2", "Leukocytes"),
    ("777-3", "Platelets"),
    ("17861-6", "Calcium"),
    ("1742-6", "ALT"),
    ("2093-3", "Cholesterol"),
    ("18262-6", "LDL cholesterol"),
    ("3016-3", "TSH"),
    ("6598-7", "Troponin T"),
    ("10839-9", "Troponin I"),
];

pub const KEY_VITALS: [(&str, &str); 8] = [
    ("85354-9", "Blood pressure"),
    ("8867-4", "Heart rate"),
    ("8310-5", "Body temperature"),
    ("9279-1", "Respiratory rate"),
    ("59408-5", "Oxygen saturation"),
    ("29463-7", "Body weight"),
    ("8302-2", "Body height"),
    ("39156-5", "BMI"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lab,
    Vital,
}

/// One test and its valid values, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultGroup {
    pub kind: Kind,
    pub name: String,
    /// Grouping key: `system|code` of the first coding, else the text.
    pub key: String,
    pub loinc: Option<String>,
    pub values: Vec<Observation>,
    /// Values left out (entered in error, cancelled), by reason.
    pub left_out: Vec<&'static str>,
    /// Values of this test in units that cannot be put on this group's axis
    /// are listed as a group of their own; this says so.
    pub split_from_other_units: bool,
}

impl ResultGroup {
    pub fn latest(&self) -> Option<&Observation> {
        self.values.first()
    }

    /// The unit of the latest value (UCUM code where given).
    pub fn unit_code(&self) -> &str {
        self.latest()
            .and_then(|o| o.quantity())
            .map(|q| q.unit_code())
            .unwrap_or("")
    }

    /// Points of a trend, oldest first, every value in the latest value's
    /// unit (converted exactly where needed; none is left unconverted).
    pub fn trend(&self) -> Vec<(DateTime<Utc>, f64)> {
        let unit = self.unit_code().to_string();
        let loinc = self.loinc.as_deref();
        let mut points: Vec<(DateTime<Utc>, f64)> = self
            .values
            .iter()
            .filter_map(|o| {
                let q = o.quantity()?;
                let at = o.when().and_then(time::instant)?;
                let v = units::convert(q.number()?, q.unit_code(), &unit, loinc)?;
                Some((at, v))
            })
            .collect();
        points.reverse();
        points
    }

    /// Whether any value of the trend was converted from another unit.
    pub fn converted(&self) -> bool {
        let unit = self.unit_code();
        self.values
            .iter()
            .filter_map(|o| o.quantity())
            .any(|q| q.unit_code() != unit)
    }
}

/// The flag as it reads in monochrome: `H`, `L`, `HH!`, `LL!`, `A`, `AA!`.
/// Taken from the interpretation, or from the reference range when there is none.
pub fn flag_for(o: &Observation) -> Option<String> {
    let code = o.interpretation_code().or_else(|| {
        let q = o.value_quantity.as_ref()?;
        // `<0.3` against a range says nothing for sure: no computed flag.
        if q.comparator.is_some() {
            return None;
        }
        let v = q.number()?;
        let range = o.reference_range.first()?;
        let low = range.low.as_ref().and_then(|q| q.number());
        let high = range.high.as_ref().and_then(|q| q.number());
        if high.is_some_and(|h| v > h) {
            Some("H".to_string())
        } else if low.is_some_and(|l| v < l) {
            Some("L".to_string())
        } else {
            None
        }
    })?;
    match code.as_str() {
        "H" | "L" | "A" | ">" | "<" => Some(code),
        "HH" | "LL" | "AA" => Some(format!("{code}!")),
        "HU" => Some("HH!".into()),
        "LU" => Some("LL!".into()),
        _ => None,
    }
}

pub fn is_critical(o: &Observation) -> bool {
    flag_for(o).is_some_and(|f| f.ends_with('!'))
}

fn loinc_of(o: &Observation) -> Option<String> {
    o.code.as_ref()?.code_in(codes::LOINC).map(str::to_string)
}

/// Group a section's observations by test. Values that are not values
/// (cancelled, entered in error) are left out and counted per test; a test
/// reported in units that cannot be converted into each other becomes one
/// group per unit, each saying so.
pub fn group(obs: &[Observation], kind: Kind) -> Vec<ResultGroup> {
    let mut groups: Vec<ResultGroup> = Vec::new();
    let mut left_out: Vec<(String, &'static str)> = Vec::new();
    for o in obs {
        let key = o.code.as_ref().map(|c| c.key()).unwrap_or_default();
        if let Verdict::Hide(why) = status::observation(o) {
            left_out.push((key, why));
            continue;
        }
        let loinc = loinc_of(o);
        let unit = o.quantity().map(|q| q.unit_code()).unwrap_or("");
        let fits = |g: &ResultGroup| {
            g.key == key && {
                let gu = g.values[0].quantity().map(|q| q.unit_code()).unwrap_or("");
                gu == unit
                    || gu.is_empty()
                    || unit.is_empty()
                    || units::compatible(unit, gu, loinc.as_deref())
            }
        };
        match groups.iter_mut().find(|g| fits(g)) {
            Some(g) => g.values.push(o.clone()),
            None => groups.push(ResultGroup {
                kind,
                name: o
                    .code
                    .as_ref()
                    .and_then(|c| c.label())
                    .unwrap_or("(unnamed test)")
                    .to_string(),
                key,
                loinc,
                values: vec![o.clone()],
                left_out: Vec::new(),
                split_from_other_units: false,
            }),
        }
    }
    for g in &mut groups {
        // Newest first, whatever order the server used.
        g.values
            .sort_by_key(|o| std::cmp::Reverse(o.when().and_then(time::instant)));
    }
    // A test split by unit: each part names its unit.
    let keys: Vec<String> = groups.iter().map(|g| g.key.clone()).collect();
    for g in &mut groups {
        if keys.iter().filter(|k| **k == g.key).count() > 1 {
            g.split_from_other_units = true;
            let unit = units::human(g.unit_code());
            g.name = format!("{} (in {unit})", g.name);
        }
    }
    for (key, why) in left_out {
        match groups.iter_mut().find(|g| g.key == key) {
            Some(g) => g.left_out.push(why),
            // Every value of the test was left out: the test still shows,
            // with no value, so the clinician sees it was there.
            None => groups.push(ResultGroup {
                kind,
                name: obs
                    .iter()
                    .find(|o| o.code.as_ref().map(|c| c.key()).unwrap_or_default() == key)
                    .and_then(|o| o.code.as_ref()?.label())
                    .unwrap_or("(unnamed test)")
                    .to_string(),
                key,
                loinc: None,
                values: Vec::new(),
                left_out: vec![why],
                split_from_other_units: false,
            }),
        }
    }
    groups.sort_by_key(|g| g.name.to_lowercase());
    groups
}

/// Labs and vitals of a chart, grouped; a section that failed adds no group
/// (the caller says why it is missing).
pub fn groups_of(labs: &Section<Observation>, vitals: &Section<Observation>) -> Vec<ResultGroup> {
    let mut all = group(&labs.items, Kind::Lab);
    all.extend(group(&vitals.items, Kind::Vital));
    all
}

/// How long ago, as a chart says it: `3 d`, `5 wk`, `4 mo`, `2 y`.
pub fn age_of(when: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let days = (now - when).num_days().max(0);
    match days {
        0..=13 => format!("{days} d"),
        14..=59 => format!("{} wk", days / 7),
        60..=729 => format!("{} mo", days / 30),
        _ => format!("{} y", days / 365),
    }
}

/// `Some("4 mo ago")` when `o` is older than `stale_after`.
pub fn stale_label(o: &Observation, now: DateTime<Utc>, stale_after: Duration) -> Option<String> {
    let at = o.when().and_then(time::instant)?;
    (now - at > stale_after).then(|| format!("{} ago", age_of(at, now)))
}

/// An abnormal result for the cover sheet.
#[derive(Debug, Clone, PartialEq)]
pub struct Abnormal<'a> {
    pub observation: &'a Observation,
    /// Older than the window, listed because it is still its test's latest.
    pub old_latest: bool,
}

/// Abnormal results of the last `window` days, and the latest of each test
/// when it is abnormal whatever its age (a critical potassium of 43 days ago
/// that nothing has followed is still the potassium on file). Critical first,
/// then newest first.
pub fn abnormal<'a>(
    groups: &'a [ResultGroup],
    now: DateTime<Utc>,
    window: Duration,
) -> Vec<Abnormal<'a>> {
    let since = now - window;
    let mut out: Vec<Abnormal<'a>> = Vec::new();
    for g in groups.iter().filter(|g| g.kind == Kind::Lab) {
        for (i, o) in g.values.iter().enumerate() {
            if flag_for(o).is_none() {
                continue;
            }
            let recent = o.when().and_then(time::instant).is_some_and(|t| t >= since);
            if recent {
                out.push(Abnormal {
                    observation: o,
                    old_latest: false,
                });
            } else if i == 0 {
                out.push(Abnormal {
                    observation: o,
                    old_latest: true,
                });
            }
        }
    }
    out.sort_by_key(|a| {
        (
            !is_critical(a.observation),
            std::cmp::Reverse(a.observation.when().and_then(time::instant)),
        )
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::{Value, json};

    fn obs(v: Value) -> Observation {
        serde_json::from_value(v).unwrap()
    }

    fn lab(
        code: &str,
        name: &str,
        value: Value,
        unit: &str,
        when: &str,
        status: &str,
    ) -> Observation {
        obs(json!({"resourceType": "Observation", "status": status,
            "code": {"coding": [{"system": codes::LOINC, "code": code}], "text": name},
            "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "code": unit}}))
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
    }

    #[test]
    fn cancelled_and_entered_in_error_are_not_values() {
        let k = [
            lab(
                "2823-3",
                "Potassium",
                json!(6.9),
                "mmol/L",
                "2026-11-20T08:00:00Z",
                "entered-in-error",
            ),
            lab(
                "2823-3",
                "Potassium",
                json!(7.1),
                "mmol/L",
                "2026-11-19T08:00:00Z",
                "cancelled",
            ),
            lab(
                "2823-3",
                "Potassium",
                json!(4.1),
                "mmol/L",
                "2026-11-10T08:00:00Z",
                "final",
            ),
            lab(
                "2823-3",
                "Potassium",
                json!(4.3),
                "mmol/L",
                "2026-11-01T08:00:00Z",
                "amended",
            ),
        ];
        let groups = group(&k, Kind::Lab);
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!(
            g.latest().unwrap().value_label(),
            "4.1",
            "the valid value is the latest"
        );
        assert_eq!(g.values.len(), 2);
        assert_eq!(g.left_out, ["entered in error", "cancelled"]);
        assert_eq!(
            g.trend().iter().map(|p| p.1).collect::<Vec<_>>(),
            [4.3, 4.1]
        );
        // Only invalid values: the test shows, without a value.
        let only = group(&k[..2], Kind::Lab);
        assert_eq!(only.len(), 1);
        assert!(only[0].latest().is_none());
    }

    #[test]
    fn decimals_and_comparators_as_sent() {
        // Numbers as a server's reply carries them (parsed from text).
        let text = |t: &str| serde_json::from_str::<Value>(t).unwrap();
        let k = lab(
            "2823-3",
            "Potassium",
            text("5.0"),
            "mmol/L",
            "2026-11-20T08:00:00Z",
            "final",
        );
        assert_eq!(k.value_label(), "5.0");
        let inr = lab(
            "6301-6",
            "INR",
            text("2.50"),
            "{INR}",
            "2026-11-20T08:00:00Z",
            "final",
        );
        assert_eq!(inr.value_label(), "2.50");
        assert_eq!(inr.unit(), "INR");
        let crp = obs(json!({"status": "final", "code": {"text": "CRP"},
            "valueQuantity": {"value": 0.3, "comparator": "<", "unit": "mg/dL"},
            "referenceRange": [{"low": {"value": 0.5}}]}));
        assert_eq!(crp.value_label(), "<0.3");
        assert_eq!(
            flag_for(&crp),
            None,
            "a comparator value is not flagged from the range"
        );
        let t = obs(json!({"status": "final", "code": {"text": "Temp"},
            "valueQuantity": {"value": text("37.20"), "unit": "Cel", "code": "Cel"}}));
        assert_eq!(
            (t.value_label().as_str(), t.unit().as_str()),
            ("37.20", "°C")
        );
    }

    #[test]
    fn a_trend_never_mixes_units() {
        let glucose = [
            lab(
                "2345-7",
                "Glucose",
                json!(5.5),
                "mmol/L",
                "2026-11-20T08:00:00Z",
                "final",
            ),
            lab(
                "2345-7",
                "Glucose",
                json!(90),
                "mg/dL",
                "2026-11-10T08:00:00Z",
                "final",
            ),
        ];
        let g = group(&glucose, Kind::Lab);
        assert_eq!(g.len(), 1, "convertible units stay one test");
        let trend = g[0].trend();
        assert!((trend[0].1 - 4.9957).abs() < 1e-3, "{trend:?}");
        assert!(g[0].converted());
        // HbA1c in % and mmol/mol: no exact factor; two groups, each named by unit.
        let a1c = [
            lab(
                "4548-4",
                "HbA1c",
                json!(7.1),
                "%",
                "2026-11-20T08:00:00Z",
                "final",
            ),
            lab(
                "4548-4",
                "HbA1c",
                json!(54),
                "mmol/mol",
                "2026-10-10T08:00:00Z",
                "final",
            ),
        ];
        let g = group(&a1c, Kind::Lab);
        let names: Vec<&str> = g.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["HbA1c (in %)", "HbA1c (in mmol/mol)"]);
        assert!(g.iter().all(|g| g.split_from_other_units));
        let temp = [
            lab(
                "8310-5",
                "Temp",
                json!(98.6),
                "[degF]",
                "2026-11-20T08:00:00Z",
                "final",
            ),
            lab(
                "8310-5",
                "Temp",
                json!(37.0),
                "Cel",
                "2026-11-19T08:00:00Z",
                "final",
            ),
        ];
        let g = group(&temp, Kind::Vital);
        assert_eq!(g.len(), 1);
        let t = g[0].trend();
        assert!((t[0].1 - 98.6).abs() < 1e-9 && (t[1].1 - 98.6).abs() < 1e-9);
    }

    #[test]
    fn an_old_critical_latest_is_still_on_the_cover_sheet() {
        let mut k = lab(
            "2823-3",
            "Potassium",
            json!(6.8),
            "mmol/L",
            "2026-10-11T08:00:00Z",
            "final",
        );
        k.interpretation =
            vec![serde_json::from_value(json!({"coding": [{"code": "HH"}]})).unwrap()];
        let mut old_high = lab(
            "2160-0",
            "Creatinine",
            json!(2.1),
            "mg/dL",
            "2026-06-01T08:00:00Z",
            "final",
        );
        old_high.interpretation =
            vec![serde_json::from_value(json!({"coding": [{"code": "H"}]})).unwrap()];
        let normal_after = lab(
            "2160-0",
            "Creatinine",
            json!(1.0),
            "mg/dL",
            "2026-07-01T08:00:00Z",
            "final",
        );
        let groups = group(&[k, old_high, normal_after], Kind::Lab);
        let ab = abnormal(&groups, now(), Duration::days(30));
        assert_eq!(
            ab.len(),
            1,
            "43 days old, still the latest: listed; a superseded one is not"
        );
        assert_eq!(ab[0].observation.value_label(), "6.8");
        assert!(ab[0].old_latest);
        assert_eq!(
            stale_label(ab[0].observation, now(), Duration::days(30)).as_deref(),
            Some("6 wk ago")
        );
    }
}
