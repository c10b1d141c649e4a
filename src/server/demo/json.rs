//! Small builders for the FHIR JSON datatypes the generator writes over and over.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::fhir::codes;

pub(crate) fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

pub(crate) fn concept(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [coding(system, code, display)], "text": display })
}

pub(crate) fn reference(kind: &str, id: &str) -> Value {
    json!({ "reference": format!("{kind}/{id}") })
}

pub(crate) fn reference_named(kind: &str, id: &str, display: &str) -> Value {
    json!({ "reference": format!("{kind}/{id}"), "display": display })
}

/// FHIR `dateTime`/`instant` with seconds and `Z`.
pub(crate) fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(crate) fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// A UCUM quantity, its value written with exactly `decimals` decimals as a
/// laboratory reports it: potassium `5.0`, INR `2.50` (the JSON number keeps
/// its text, trailing zeros included).
pub(crate) fn quantity(value: f64, decimals: u8, unit: &str, ucum: &str) -> Value {
    json!({
        "value": decimal(value, decimals),
        "unit": unit,
        "system": "http://unitsofmeasure.org",
        "code": ucum,
    })
}

/// `value` rounded to `decimals` decimals (at most 3), as a JSON number
/// with exactly that many digits after the point.
pub(crate) fn decimal(value: f64, decimals: u8) -> Value {
    let decimals = decimals.min(3);
    let scale = 10i64.pow(u32::from(decimals));
    let scaled = (value * scale as f64).round() as i64;
    let sign = if scaled < 0 { "-" } else { "" };
    let (whole, fraction) = (scaled.abs() / scale, scaled.abs() % scale);
    let text = if decimals == 0 {
        format!("{sign}{whole}")
    } else {
        format!(
            "{sign}{whole}.{fraction:0width$}",
            width = usize::from(decimals)
        )
    };
    serde_json::from_str(&text).unwrap_or_else(|_| json!(value))
}

pub(crate) fn round_to(value: f64, decimals: u8) -> f64 {
    let scale = match decimals {
        0 => 1.0,
        1 => 10.0,
        2 => 100.0,
        _ => 1000.0,
    };
    (value * scale).round() / scale
}

pub(crate) fn interpretation(code: &str) -> Value {
    let display = match code {
        "N" => "Normal",
        "H" => "High",
        "L" => "Low",
        "HH" => "Critical high",
        "LL" => "Critical low",
        _ => "Abnormal",
    };
    json!([{ "coding": [coding(codes::INTERPRETATION, code, display)] }])
}

pub(crate) fn observation_category(code: &str) -> Value {
    let display = if code == codes::CATEGORY_LABORATORY {
        "Laboratory"
    } else {
        "Vital Signs"
    };
    json!([{ "coding": [coding(codes::OBSERVATION_CATEGORY, code, display)] }])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_as_a_laboratory_reports_them() {
        for (value, decimals, text) in [
            (5.0, 1, "5.0"),
            (2.5, 2, "2.50"),
            (2.4999, 2, "2.50"),
            (0.3, 1, "0.3"),
            (0.01, 2, "0.01"),
            (74.4, 0, "74"),
            (1.1, 2, "1.10"),
            (-0.04, 2, "-0.04"),
        ] {
            assert_eq!(
                decimal(value, decimals).to_string(),
                text,
                "{value} to {decimals}"
            );
        }
        let q = quantity(5.0, 1, "mmol/L", "mmol/L");
        assert_eq!(q["value"].to_string(), "5.0");
        assert_eq!(q["value"].as_f64(), Some(5.0));
    }
}
