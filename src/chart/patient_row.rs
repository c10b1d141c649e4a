//! A patient as a list shows it: compact, so 100k of them fit in memory,
//! and with the two identifiers a clinician checks before acting (birth date
//! and record number).

use crate::fhir::codes;
use crate::fhir::model::{Deceased, Identifier, Patient};

#[derive(Debug, Clone, PartialEq)]
pub struct PatientRow {
    pub id: String,
    pub name: String,
    /// FHIR administrative gender (`male`, `female`, `other`, `unknown`, or
    /// empty when not given): a static string, no allocation per patient.
    pub gender: &'static str,
    pub birth_date: String,
    /// The medical record number, else another identifier (see [`RecordNumber`]).
    pub mrn: String,
    /// `true` when `mrn` is not a medical record number but another
    /// identifier (shown as "ID", never passed off as an MRN).
    pub mrn_is_other_id: bool,
    pub deceased: Option<Deceased>,
}

/// Which identifier is a patient's record number on this server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordNumber {
    /// The local MRN system, as configured (`mrn_system`): used when no
    /// identifier is typed `MR`.
    pub local_system: Option<String>,
}

impl RecordNumber {
    /// The MRN: the identifier typed v2-0203 `MR` (any server), else one in
    /// the configured local system, else one in the demo clinic's system.
    pub fn mrn<'a>(&self, p: &'a Patient) -> Option<&'a str> {
        let typed_mr = |i: &&Identifier| {
            i.r#type.as_ref().is_some_and(|t| {
                t.coding.iter().any(|c| {
                    c.code.as_deref() == Some(codes::IDENTIFIER_TYPE_MRN)
                        && c.system
                            .as_deref()
                            .is_none_or(|s| s == codes::IDENTIFIER_TYPE)
                })
            })
        };
        let in_system = |system: &str| {
            p.identifier
                .iter()
                .find(|i| i.system.as_deref() == Some(system) && i.value.is_some())
        };
        p.identifier
            .iter()
            .filter(|i| i.value.is_some())
            .find(typed_mr)
            .or_else(|| self.local_system.as_deref().and_then(in_system))
            .or_else(|| in_system(codes::MRN_SYSTEM))
            .and_then(|i| i.value.as_deref())
    }

    /// The MRN, else the first identifier with a value (marked as another
    /// identifier): a patient with any identifier never reads "MRN none".
    pub fn label<'a>(&self, p: &'a Patient) -> Option<(&'a str, bool)> {
        self.mrn(p).map(|m| (m, false)).or_else(|| {
            p.identifier
                .iter()
                .find_map(|i| i.value.as_deref())
                .map(|v| (v, true))
        })
    }

    pub fn row(&self, p: &Patient) -> Option<PatientRow> {
        let (mrn, other) = self.label(p).unwrap_or(("", false));
        Some(PatientRow {
            id: p.id.clone()?,
            name: p.display_name(),
            gender: match p.gender.as_deref() {
                Some("female") => "female",
                Some("male") => "male",
                Some("other") => "other",
                Some(_) => "unknown",
                None => "",
            },
            birth_date: p.birth_date.clone().unwrap_or_default(),
            mrn: mrn.to_string(),
            mrn_is_other_id: other,
            deceased: p.deceased(),
        })
    }
}

/// `Family` and first given name of a listed `Family, Given Middle`, folded
/// ("Nguyễn, Thị Lan" and "Nguyen, Thi" read as one name).
pub fn name_key(name: &str) -> Option<(String, String)> {
    let (family, given) = name.split_once(',')?;
    let given = given.split_whitespace().next()?;
    let family = family.trim();
    (!family.is_empty()).then(|| {
        (
            crate::fhir::fold::fold(family),
            crate::fhir::fold::fold(given),
        )
    })
}

/// Whether two listed names could be taken for each other: same family name
/// and first given name, once folded.
pub fn same_name(a: &str, b: &str) -> bool {
    name_key(a).is_some_and(|k| Some(k) == name_key(b))
}

impl PatientRow {
    /// `MRN 00012345`, `ID 999-12-3456`, or `no identifier`.
    pub fn record_label(&self) -> String {
        match (self.mrn.is_empty(), self.mrn_is_other_id) {
            (true, _) => "no identifier".into(),
            (false, false) => format!("MRN {}", self.mrn),
            (false, true) => format!("ID {}", self.mrn),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patient(identifiers: serde_json::Value) -> Patient {
        serde_json::from_value(
            json!({"resourceType": "Patient", "id": "p", "identifier": identifiers}),
        )
        .unwrap()
    }

    #[test]
    fn same_names_are_told_by_family_and_first_given_name() {
        assert!(same_name("Nguyễn, Thị Lan", "Nguyen, Thi"));
        assert!(same_name("García, Ana", "GARCIA, ANA MARIA"));
        assert!(!same_name("Nguyen, Thi", "Nguyenova, Thi"));
        assert!(!same_name("Nguyen, Thi", "Nguyen, Lan"));
        assert!(!same_name("(no name)", "(no name)"));
    }

    #[test]
    fn the_mrn_is_found_on_any_server() {
        let none = RecordNumber::default();
        let local = RecordNumber {
            local_system: Some("urn:oid:1.2.3".into()),
        };
        let typed = patient(json!([
            {"system": "urn:ssn", "value": "999"},
            {"type": {"coding": [{"system": codes::IDENTIFIER_TYPE, "code": "MR"}]},
             "system": "https://hospital.example/mrn", "value": "A-77"}
        ]));
        assert_eq!(none.label(&typed), Some(("A-77", false)));
        let local_only = patient(json!([
            {"system": "urn:ssn", "value": "999"},
            {"system": "urn:oid:1.2.3", "value": "55"}
        ]));
        assert_eq!(local.label(&local_only), Some(("55", false)));
        assert_eq!(
            none.label(&local_only),
            Some(("999", true)),
            "without the setting: another identifier, never 'MRN none'"
        );
        let row = none.row(&local_only).unwrap();
        assert_eq!(row.record_label(), "ID 999");
        assert_eq!(none.label(&patient(json!([]))), None);
        let demo = patient(json!([{"system": codes::MRN_SYSTEM, "value": "00012345"}]));
        assert_eq!(none.row(&demo).unwrap().record_label(), "MRN 00012345");
    }
}
