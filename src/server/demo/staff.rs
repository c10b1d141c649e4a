//! The clinic itself: one organization and one staff member per role.

use serde_json::{Value, json};

use super::json::{concept, reference, reference_named};
use crate::fhir::codes;
use crate::roles::Role;

pub(crate) const ORGANIZATION_ID: &str = "org-riverside";
pub(crate) const ORGANIZATION_NAME: &str = "Riverside Family Practice";
/// The hospital laboratory some results come from: it reports glucose in
/// mmol/L, where the practice's own laboratory reports mg/dL.
pub(crate) const HOSPITAL_LAB_ID: &str = "org-regional-lab";
pub(crate) const HOSPITAL_LAB_NAME: &str = "Riverside Regional Hospital Laboratory";

pub(crate) struct Member {
    pub role: Role,
    pub given: &'static str,
    pub family: &'static str,
    /// Licensed clinicians are addressed as "Dr." and carry a credential.
    pub prefix: Option<&'static str>,
    pub suffix: Option<&'static str>,
}

pub(crate) const MEMBERS: [Member; 5] = [
    Member {
        role: Role::Attending,
        given: "Amara",
        family: "Okafor",
        prefix: Some("Dr."),
        suffix: Some("MD"),
    },
    Member {
        role: Role::Resident,
        given: "Lukas",
        family: "Brandt",
        prefix: Some("Dr."),
        suffix: Some("MD"),
    },
    Member {
        role: Role::Nurse,
        given: "Rosa",
        family: "Delgado",
        prefix: None,
        suffix: Some("RN"),
    },
    Member {
        role: Role::Frontdesk,
        given: "Kevin",
        family: "Park",
        prefix: None,
        suffix: None,
    },
    Member {
        role: Role::Billing,
        given: "Priya",
        family: "Raman",
        prefix: None,
        suffix: Some("CPC"),
    },
];

impl Member {
    pub fn full_name(&self) -> String {
        let mut name = String::new();
        if let Some(prefix) = self.prefix {
            name.push_str(prefix);
            name.push(' ');
        }
        name.push_str(self.given);
        name.push(' ');
        name.push_str(self.family);
        if let Some(suffix) = self.suffix {
            name.push_str(", ");
            name.push_str(suffix);
        }
        name
    }
}

pub(crate) fn member(role: Role) -> &'static Member {
    MEMBERS
        .iter()
        .find(|m| m.role == role)
        .unwrap_or(&MEMBERS[0])
}

pub(crate) fn practitioner_id(role: Role) -> String {
    format!("pr-{}", role.code())
}

pub(crate) fn practitioner_ref(role: Role) -> Value {
    reference_named(
        "Practitioner",
        &practitioner_id(role),
        &member(role).full_name(),
    )
}

pub(crate) fn organization_ref() -> Value {
    reference_named("Organization", ORGANIZATION_ID, ORGANIZATION_NAME)
}

pub(crate) fn hospital_lab_ref() -> Value {
    reference_named("Organization", HOSPITAL_LAB_ID, HOSPITAL_LAB_NAME)
}

pub(crate) fn role_concept(role: Role) -> Value {
    concept(codes::ROLE_SYSTEM, role.code(), role.label())
}

pub(crate) fn resources() -> Vec<Value> {
    let mut out = vec![json!({
        "resourceType": "Organization",
        "id": ORGANIZATION_ID,
        "active": true,
        "identifier": [{ "system": "urn:chartty:organization", "value": "riverside" }],
        "type": [concept(
            "http://terminology.hl7.org/CodeSystem/organization-type",
            "prov",
            "Healthcare Provider",
        )],
        "name": ORGANIZATION_NAME,
        "telecom": [{ "system": "phone", "value": "+1 617-555-0100", "use": "work" }],
        "address": [{
            "use": "work",
            "line": ["400 Riverside Drive"],
            "city": "Riverton",
            "state": "MA",
            "postalCode": "01701",
            "country": "US",
        }],
    })];
    out.push(json!({
        "resourceType": "Organization",
        "id": HOSPITAL_LAB_ID,
        "active": true,
        "identifier": [{ "system": "urn:chartty:organization", "value": "regional-lab" }],
        "type": [concept(
            "http://terminology.hl7.org/CodeSystem/organization-type",
            "prov",
            "Healthcare Provider",
        )],
        "name": HOSPITAL_LAB_NAME,
        "telecom": [{ "system": "phone", "value": "+1 617-555-0190", "use": "work" }],
    }));
    for m in &MEMBERS {
        let id = practitioner_id(m.role);
        let mut name = json!({
            "use": "official",
            "text": m.full_name(),
            "family": m.family,
            "given": [m.given],
        });
        if let Some(prefix) = m.prefix {
            name["prefix"] = json!([prefix]);
        }
        if let Some(suffix) = m.suffix {
            name["suffix"] = json!([suffix]);
        }
        out.push(json!({
            "resourceType": "Practitioner",
            "id": id,
            "active": true,
            "identifier": [{ "system": "urn:chartty:staff", "value": m.role.code() }],
            "name": [name],
            "telecom": [{
                "system": "email",
                "value": format!("{}.{}@riverside.example", m.given.to_lowercase(), m.family.to_lowercase()),
                "use": "work",
            }],
        }));
        let mut role = json!({
            "resourceType": "PractitionerRole",
            "id": format!("prr-{}", m.role.code()),
            "active": true,
            "practitioner": reference_named("Practitioner", &id, &m.full_name()),
            "organization": reference("Organization", ORGANIZATION_ID),
            "code": [role_concept(m.role)],
        });
        if matches!(m.role, Role::Attending | Role::Resident) {
            role["specialty"] = json!([concept(codes::SNOMED, "419772000", "Family practice")]);
        }
        out.push(role);
    }
    out
}
