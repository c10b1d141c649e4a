//! Typed R4 structs for what the client reads. Every field optional; unknown
//! fields kept in `extra` so a read-modify-write never drops another system's data.
//!
//! Decoding is lenient only where the meaning is unambiguous: a single element
//! where the specification has an array is read as an array of one
//! ([`one_or_many`]). Anything else of the wrong shape (a string where a
//! CodeableConcept belongs, a number sent as text) fails the record, which the
//! chart then counts and shows as unreadable rather than guessing.

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::fhir::codes;

type Extra = Map<String, Value>;

/// An array field that also accepts one bare element (a common slip of
/// hand-written FHIR, and of some servers' `_elements` output).
pub fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::Error;
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|v| serde_json::from_value(v).map_err(D::Error::custom))
            .collect(),
        one => Ok(vec![serde_json::from_value(one).map_err(D::Error::custom)?]),
    }
}

/// A FHIR decimal exactly as sent: `5.0` stays `5.0` and `2.50` stays
/// `2.50` (trailing zeros carry the precision a lab reported).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Decimal(pub Number);

impl Decimal {
    pub fn value(&self) -> f64 {
        self.0.as_f64().unwrap_or(f64::NAN)
    }

    /// A computed value (a converted unit), at most `decimals` places.
    pub fn computed(v: f64, decimals: usize) -> Option<Decimal> {
        let text = format!("{v:.decimals$}");
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        };
        serde_json::from_str(&text).ok().map(Decimal)
    }

    /// Digits after the decimal point as sent (`2.50` → 2).
    pub fn decimals(&self) -> usize {
        let t = self.0.to_string();
        match t.split_once('.') {
            Some((_, frac)) => frac.chars().take_while(char::is_ascii_digit).count(),
            None => 0,
        }
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<f64> for Decimal {
    fn from(v: f64) -> Decimal {
        Decimal(Number::from_f64(v).unwrap_or_else(|| Number::from(0)))
    }
}

/// `meta` as servers keep it: the version read is what an update must quote.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coding {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeableConcept {
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub coding: Vec<Coding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl CodeableConcept {
    /// What a clinician reads: the text, else the first display, else the first code.
    pub fn label(&self) -> Option<&str> {
        self.text
            .as_deref()
            .or_else(|| self.coding.iter().find_map(|c| c.display.as_deref()))
            .or_else(|| self.coding.iter().find_map(|c| c.code.as_deref()))
    }

    pub fn code_in(&self, system: &str) -> Option<&str> {
        self.coding
            .iter()
            .find(|c| c.system.as_deref() == Some(system))
            .and_then(|c| c.code.as_deref())
    }

    /// A stable key for grouping: `system|code` of the first coding, else the text.
    pub fn key(&self) -> String {
        match self.coding.first() {
            Some(c) if c.code.is_some() => format!(
                "{}|{}",
                c.system.as_deref().unwrap_or(""),
                c.code.as_deref().unwrap_or("")
            ),
            _ => self.text.clone().unwrap_or_default(),
        }
    }

    pub fn has_code(&self, code: &str) -> bool {
        self.coding.iter().any(|c| c.code.as_deref() == Some(code))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Reference {
    /// The id part of a `Type/id` (or absolute `.../Type/id`) reference.
    pub fn id_of(&self, kind: &str) -> Option<&str> {
        let r = self.reference.as_deref()?;
        let mut parts = r.rsplit('/');
        let id = parts.next()?;
        let ty = parts.next()?;
        (ty == kind && !id.is_empty()).then_some(id)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Period {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quantity {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Decimal>,
    /// `<`, `<=`, `>=`, `>`: the true value lies beyond the number (`<0.3`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparator: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Quantity {
    /// The unit as a clinician reads it (`°C`, not `Cel`).
    pub fn unit_label(&self) -> String {
        crate::fhir::units::human(self.unit.as_deref().or(self.code.as_deref()).unwrap_or(""))
    }

    /// The UCUM code where given (else the display unit), for conversions.
    pub fn unit_code(&self) -> &str {
        self.code.as_deref().or(self.unit.as_deref()).unwrap_or("")
    }

    /// The number as sent, with its comparator: `5.0`, `<0.3`.
    pub fn value_text(&self) -> Option<String> {
        let v = self.value.as_ref()?;
        Some(format!("{}{v}", self.comparator.as_deref().unwrap_or("")))
    }

    pub fn number(&self) -> Option<f64> {
        self.value.as_ref().map(Decimal::value)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HumanName {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#use: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub given: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identifier {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub identifier: Vec<Identifier>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub name: Vec<HumanName>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deceased_boolean: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deceased_date_time: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// Whether a patient has died, and when if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deceased {
    /// `deceasedDateTime` as given.
    On(String),
    /// `deceasedBoolean: true`, no date.
    Yes,
}

impl Patient {
    pub fn deceased(&self) -> Option<Deceased> {
        match (&self.deceased_date_time, self.deceased_boolean) {
            (Some(d), _) => Some(Deceased::On(d.clone())),
            (None, Some(true)) => Some(Deceased::Yes),
            _ => None,
        }
    }

    fn best_name(&self) -> Option<&HumanName> {
        self.name
            .iter()
            .find(|n| n.r#use.as_deref() == Some("official"))
            .or_else(|| self.name.first())
    }

    /// `Family, Given Middle` as charts list patients.
    pub fn display_name(&self) -> String {
        let Some(n) = self.best_name() else {
            return "(no name)".into();
        };
        match (&n.family, n.given.is_empty()) {
            (Some(f), false) => format!("{}, {}", f, n.given.join(" ")),
            (Some(f), true) => f.clone(),
            (None, false) => n.given.join(" "),
            (None, true) => n.text.clone().unwrap_or_else(|| "(no name)".into()),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub manifestation: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllergyIntolerance {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clinical_status: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_status: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub criticality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reaction: Vec<Reaction>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clinical_status: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_status: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub onset_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded_date: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DoseAndRate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dose_quantity: Option<Quantity>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dosage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dose_and_rate: Vec<DoseAndRate>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MedicationRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medication_codeable_concept: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medication_reference: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authored_on: Option<String>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dosage_instruction: Vec<Dosage>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl MedicationRequest {
    pub fn medication_label(&self) -> &str {
        self.medication_codeable_concept
            .as_ref()
            .and_then(|c| c.label())
            .or_else(|| {
                self.medication_reference
                    .as_ref()
                    .and_then(|r| r.display.as_deref())
            })
            .unwrap_or("(unnamed medication)")
    }

    /// The dose as written: dosage text, else the dose quantity.
    pub fn dose_label(&self) -> Option<String> {
        let d = self.dosage_instruction.first()?;
        if let Some(t) = &d.text {
            return Some(t.clone());
        }
        let q = d.dose_and_rate.first()?.dose_quantity.as_ref()?;
        Some(format!("{} {}", q.value_text()?, q.unit_label()))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReferenceRange {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ReferenceRange {
    pub fn label(&self) -> String {
        if let Some(t) = &self.text {
            return t.clone();
        }
        let lo = self.low.as_ref().and_then(|q| q.value.as_ref());
        let hi = self.high.as_ref().and_then(|q| q.value.as_ref());
        match (lo, hi) {
            (Some(l), Some(h)) => format!("{l}-{h}"),
            (Some(l), None) => format!(">={l}"),
            (None, Some(h)) => format!("<={h}"),
            (None, None) => String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservationComponent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_quantity: Option<Quantity>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub category: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_quantity: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_codeable_concept: Option<CodeableConcept>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub interpretation: Vec<CodeableConcept>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reference_range: Vec<ReferenceRange>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub component: Vec<ObservationComponent>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// LOINC systolic and diastolic blood pressure: written in that order
/// (120/80) whatever order the server stored the components in.
const SYSTOLIC: &str = "8480-6";
const DIASTOLIC: &str = "8462-4";

impl Observation {
    /// Components in reading order: systolic before diastolic.
    fn ordered_components(&self) -> Vec<&ObservationComponent> {
        let rank = |c: &ObservationComponent| match c.code.as_ref() {
            Some(code) if code.has_code(SYSTOLIC) => 0,
            Some(code) if code.has_code(DIASTOLIC) => 1,
            _ => 2,
        };
        let mut v: Vec<&ObservationComponent> = self.component.iter().collect();
        v.sort_by_key(|c| rank(c));
        v
    }

    pub fn is_category(&self, code: &str) -> bool {
        self.category.iter().any(|c| c.has_code(code))
    }

    pub fn when(&self) -> Option<&str> {
        self.effective_date_time
            .as_deref()
            .or(self.issued.as_deref())
    }

    /// The number to chart: the value, or the first component's (blood pressure: systolic).
    pub fn numeric_value(&self) -> Option<f64> {
        self.quantity().and_then(Quantity::number)
    }

    /// The quantity charted: the value's, else the first component's in
    /// reading order (blood pressure: systolic).
    pub fn quantity(&self) -> Option<&Quantity> {
        self.value_quantity.as_ref().or_else(|| {
            self.ordered_components()
                .into_iter()
                .find_map(|c| c.value_quantity.as_ref())
        })
    }

    /// The unit as a clinician reads it.
    pub fn unit(&self) -> String {
        self.quantity()
            .map(Quantity::unit_label)
            .unwrap_or_default()
    }

    /// The value as read on a chart, as sent (`5.0`, `<0.3`); components
    /// joined with `/` (120/80).
    pub fn value_label(&self) -> String {
        if let Some(v) = self.value_quantity.as_ref().and_then(Quantity::value_text) {
            return v;
        }
        if let Some(s) = &self.value_string {
            return s.clone();
        }
        if let Some(c) = self.value_codeable_concept.as_ref().and_then(|c| c.label()) {
            return c.to_string();
        }
        let parts: Vec<String> = self
            .ordered_components()
            .into_iter()
            .filter_map(|c| c.value_quantity.as_ref()?.value_text())
            .collect();
        parts.join("/")
    }

    /// The interpretation code (H, L, HH, LL, A, N, ...), upper-cased.
    pub fn interpretation_code(&self) -> Option<String> {
        self.interpretation.iter().find_map(|i| {
            i.code_in(codes::INTERPRETATION)
                .or_else(|| i.coding.first().and_then(|c| c.code.as_deref()))
                .map(|c| c.to_ascii_uppercase())
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Encounter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<Coding>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub r#type: Vec<CodeableConcept>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub reason_code: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentContent {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A note's link to another: `replaces`, `appends` (an addendum), ...
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelatesTo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Reference>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentReference {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub author: Vec<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub content: Vec<DocumentContent>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub relates_to: Vec<RelatesTo>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskRestriction {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub business_status: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#for: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Reference>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub performer_type: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restriction: Option<TaskRestriction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authored_on: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Task {
    pub fn due(&self) -> Option<&str> {
        self.restriction.as_ref()?.period.as_ref()?.end.as_deref()
    }

    pub fn category(&self) -> Option<&str> {
        let c = self.code.as_ref()?;
        c.code_in(codes::TASK_CATEGORY_SYSTEM).or_else(|| c.label())
    }

    pub fn is_open(&self) -> bool {
        !matches!(
            self.status.as_deref(),
            Some("completed" | "cancelled" | "rejected" | "failed" | "entered-in-error")
        )
    }

    pub fn patient_id(&self) -> Option<&str> {
        self.r#for.as_ref()?.id_of("Patient")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationOutcomeIssue {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<CodeableConcept>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationOutcome {
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub issue: Vec<OperationOutcomeIssue>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl OperationOutcome {
    /// One line for the status bar: the issues' details or diagnostics, joined.
    pub fn message(&self) -> Option<String> {
        let parts: Vec<&str> = self
            .issue
            .iter()
            .filter_map(|i| {
                i.details
                    .as_ref()
                    .and_then(|d| d.label())
                    .or(i.diagnostics.as_deref())
                    .or(i.code.as_deref())
            })
            .collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleLink {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntryResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl BundleEntryResponse {
    /// The numeric HTTP status of `"200 OK"`.
    pub fn status_code(&self) -> Option<u16> {
        self.status
            .as_deref()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<BundleEntryResponse>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub link: Vec<BundleLink>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub entry: Vec<BundleEntry>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Bundle {
    pub fn next_url(&self) -> Option<&str> {
        self.link
            .iter()
            .find(|l| l.relation.as_deref() == Some("next"))
            .and_then(|l| l.url.as_deref())
    }

    /// Resources of one type, decoded; entries of other types (`_include`d,
    /// OperationOutcome) and undecodable ones are skipped.
    pub fn resources<T: serde::de::DeserializeOwned>(&self, kind: &str) -> Vec<T> {
        self.entry
            .iter()
            .filter_map(|e| e.resource.as_ref())
            .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some(kind))
            .filter_map(|r| serde_json::from_value(r.clone()).ok())
            .collect()
    }
}

/// Numbers as a chart prints them: no trailing `.0`, at most two decimals.
pub fn fmt_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patient_keeps_unknown_fields_and_finds_mrn() {
        let v = json!({
            "resourceType": "Patient", "id": "p1",
            "identifier": [
                {"system": "urn:ssn", "value": "999"},
                {"type": {"coding": [{"system": codes::IDENTIFIER_TYPE, "code": "MR"}]},
                 "system": "urn:x", "value": "00012345"}
            ],
            "name": [{"use": "official", "family": "García", "given": ["Ana", "Maria"]}],
            "birthDate": "1984-03-02", "gender": "female",
            "maritalStatus": {"text": "M"}
        });
        let p: Patient = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(p.display_name(), "García, Ana Maria");
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn observation_labels() {
        let o: Observation = serde_json::from_value(json!({
            "resourceType": "Observation",
            "component": [
                {"valueQuantity": {"value": 120, "unit": "mm[Hg]"}},
                {"valueQuantity": {"value": 80, "unit": "mm[Hg]"}}
            ],
            "interpretation": [{"coding": [{"system": codes::INTERPRETATION, "code": "hh"}]}]
        }))
        .unwrap();
        assert_eq!(o.value_label(), "120/80");
        assert_eq!(o.numeric_value(), Some(120.0));
        assert_eq!(o.interpretation_code().as_deref(), Some("HH"));
        assert_eq!(fmt_number(5.25), "5.25");
        assert_eq!(fmt_number(7.10), "7.1");
    }

    #[test]
    fn blood_pressure_reads_systolic_first() {
        let o: Observation = serde_json::from_value(json!({
            "component": [
                {"code": {"coding": [{"system": codes::LOINC, "code": "8462-4"}]},
                 "valueQuantity": {"value": 78}},
                {"code": {"coding": [{"system": codes::LOINC, "code": "8480-6"}]},
                 "valueQuantity": {"value": 135}}
            ]
        }))
        .unwrap();
        assert_eq!(o.value_label(), "135/78");
        assert_eq!(o.numeric_value(), Some(135.0));
    }

    #[test]
    fn decimals_keep_the_text_they_were_sent_with() {
        // Parsed from text, as a server's reply is: trailing zeros are the
        // precision the lab reported and stay.
        let o: Observation = serde_json::from_str(
            r#"{"valueQuantity": {"value": 5.0, "unit": "mmol/L"},
                "referenceRange": [{"low": {"value": 3.50}, "high": {"value": 5.10}}]}"#,
        )
        .unwrap();
        assert_eq!(o.value_label(), "5.0");
        assert_eq!(o.reference_range[0].label(), "3.50-5.10");
        assert_eq!(o.numeric_value(), Some(5.0));
        let back = serde_json::to_string(&o).unwrap();
        assert!(
            back.contains("\"value\":5.0") && back.contains("3.50"),
            "{back}"
        );
        let q: Quantity = serde_json::from_str(r#"{"value": 0.3, "comparator": "<"}"#).unwrap();
        assert_eq!(q.value_text().as_deref(), Some("<0.3"));
        assert_eq!(
            Decimal::computed(4.99567, 2)
                .map(|d| d.to_string())
                .as_deref(),
            Some("5")
        );
        assert_eq!(
            Decimal::computed(4.96, 1).map(|d| d.to_string()).as_deref(),
            Some("5")
        );
        assert_eq!(
            Decimal::computed(4.949, 2)
                .map(|d| d.to_string())
                .as_deref(),
            Some("4.95")
        );
        assert_eq!(
            serde_json::from_str::<Decimal>("2.50").unwrap().decimals(),
            2
        );
    }

    #[test]
    fn one_element_where_an_array_belongs_is_read_but_a_wrong_type_is_not() {
        let lenient: Result<AllergyIntolerance, _> = serde_json::from_value(json!({
            "code": {"coding": {"system": codes::SNOMED, "code": "91936005"}},
            "reaction": {"manifestation": {"text": "Hives"}}
        }));
        let a = lenient.unwrap();
        assert_eq!(a.code.unwrap().coding.len(), 1);
        assert_eq!(a.reaction[0].manifestation[0].label(), Some("Hives"));
        let strict: Result<AllergyIntolerance, _> =
            serde_json::from_value(json!({"code": "penicillin"}));
        assert!(strict.is_err(), "a string is not a CodeableConcept");
        let number_as_text: Result<Quantity, _> = serde_json::from_value(json!({"value": "5.0"}));
        assert!(
            number_as_text.is_err(),
            "a decimal sent as text is refused, not guessed"
        );
    }

    #[test]
    fn a_read_modify_write_keeps_what_the_model_does_not_know() {
        let sent = r#"{"resourceType": "Task", "id": "t1",
            "meta": {"versionId": "7", "lastUpdated": "2026-11-20T10:00:00.000Z", "tag": [{"code": "x"}]},
            "status": "requested", "intent": "order",
            "input": [{"type": {"text": "dose"}, "valueDecimal": 2.50}],
            "extension": [{"url": "urn:x", "valueString": "kept"}],
            "restriction": {"period": {"end": "2026-11-21T10:00:00Z"}, "repetitions": 1}}"#;
        let mut t: Task = serde_json::from_str(sent).unwrap();
        assert_eq!(
            t.meta.as_ref().and_then(|m| m.version_id.as_deref()),
            Some("7")
        );
        t.status = Some("in-progress".into());
        let back: Value = serde_json::to_value(&t).unwrap();
        let mut expected: Value = serde_json::from_str(sent).unwrap();
        expected["status"] = json!("in-progress");
        assert_eq!(back, expected);
        assert!(back.to_string().contains("2.50"));
    }

    #[test]
    fn reference_ids_are_typed() {
        let r = Reference {
            reference: Some("Patient/123".into()),
            ..Default::default()
        };
        assert_eq!(r.id_of("Patient"), Some("123"));
        assert_eq!(r.id_of("Practitioner"), None);
    }
}
