//! Typed R4 structs for what the client reads. Every field optional; unknown
//! fields kept in `extra` so a read-modify-write never drops another system's data.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::fhir::codes;

type Extra = Map<String, Value>;

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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Quantity {
    pub fn unit_label(&self) -> &str {
        self.unit.as_deref().or(self.code.as_deref()).unwrap_or("")
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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

    /// The medical record number: identifier typed v2-0203 `MR`, else one in the demo MRN system.
    pub fn mrn(&self) -> Option<&str> {
        self.identifier
            .iter()
            .find(|i| {
                i.r#type.as_ref().is_some_and(|t| {
                    t.coding.iter().any(|c| {
                        c.code.as_deref() == Some(codes::IDENTIFIER_TYPE_MRN)
                            && c.system
                                .as_deref()
                                .is_none_or(|s| s == codes::IDENTIFIER_TYPE)
                    })
                })
            })
            .or_else(|| {
                self.identifier
                    .iter()
                    .find(|i| i.system.as_deref() == Some(codes::MRN_SYSTEM))
            })
            .and_then(|i| i.value.as_deref())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    pub clinical_status: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub criticality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reaction: Vec<Reaction>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// SNOMED CT codes that record the absence of allergies, with the words a
/// chart uses for them. Only these mean "no known allergies": an empty list
/// means none were recorded.
pub const NO_KNOWN_ALLERGY_CODES: [(&str, &str); 4] = [
    ("716186003", "No known allergies"),
    ("409137002", "No known drug allergies"),
    ("429625007", "No known food allergies"),
    ("428607008", "No known environmental allergies"),
];

impl AllergyIntolerance {
    /// The wording of a recorded "no known allergy" statement, if this is one.
    pub fn no_known_allergy(&self) -> Option<&'static str> {
        let code = self.code.as_ref()?;
        if self.is_inactive() {
            return None;
        }
        NO_KNOWN_ALLERGY_CODES.iter().find_map(|(c, label)| {
            code.coding
                .iter()
                .any(|x| {
                    x.code.as_deref() == Some(*c)
                        && x.system.as_deref().is_none_or(|s| s == codes::SNOMED)
                })
                .then_some(*label)
        })
    }

    pub fn is_inactive(&self) -> bool {
        self.clinical_status
            .as_ref()
            .is_some_and(|s| s.has_code("inactive") || s.has_code("resolved"))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clinical_status: Option<CodeableConcept>,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medication_codeable_concept: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medication_reference: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authored_on: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
        Some(format!("{} {}", fmt_number(q.value?), q.unit_label()))
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
        let lo = self.low.as_ref().and_then(|q| q.value);
        let hi = self.high.as_ref().and_then(|q| q.value);
        match (lo, hi) {
            (Some(l), Some(h)) => format!("{}-{}", fmt_number(l), fmt_number(h)),
            (Some(l), None) => format!(">={}", fmt_number(l)),
            (None, Some(h)) => format!("<={}", fmt_number(h)),
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
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interpretation: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_range: Vec<ReferenceRange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
        self.value_quantity
            .as_ref()
            .and_then(|q| q.value)
            .or_else(|| {
                self.ordered_components()
                    .first()
                    .and_then(|c| c.value_quantity.as_ref())
                    .and_then(|q| q.value)
            })
    }

    pub fn unit(&self) -> &str {
        self.value_quantity
            .as_ref()
            .or_else(|| {
                self.component
                    .first()
                    .and_then(|c| c.value_quantity.as_ref())
            })
            .map(|q| q.unit_label())
            .unwrap_or("")
    }

    /// The value as read on a chart; components joined with `/` (120/80).
    pub fn value_label(&self) -> String {
        if let Some(v) = self.value_quantity.as_ref().and_then(|q| q.value) {
            return fmt_number(v);
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
            .filter_map(|c| c.value_quantity.as_ref()?.value.map(fmt_number))
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
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<Coding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub r#type: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentReference {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r#type: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub author: Vec<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<DocumentContent>,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<BundleLink>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
        assert_eq!(p.mrn(), Some("00012345"));
        assert_eq!(p.display_name(), "García, Ana Maria");
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn observation_labels() {
        let o: Observation = serde_json::from_value(json!({
            "resourceType": "Observation",
            "component": [
                {"valueQuantity": {"value": 120.0, "unit": "mm[Hg]"}},
                {"valueQuantity": {"value": 80.0, "unit": "mm[Hg]"}}
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
                 "valueQuantity": {"value": 78.0}},
                {"code": {"coding": [{"system": codes::LOINC, "code": "8480-6"}]},
                 "valueQuantity": {"value": 135.0}}
            ]
        }))
        .unwrap();
        assert_eq!(o.value_label(), "135/78");
        assert_eq!(o.numeric_value(), Some(135.0));
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
