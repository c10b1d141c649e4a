//! The roles of the access table in DESIGN.md. Both halves speak them: the
//! server enforces them, the client shows them and picks its queue by them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Attending,
    Resident,
    Nurse,
    Frontdesk,
    Billing,
    /// A service account of the patient-facing app: it posts patients'
    /// messages and reads nothing.
    Intake,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Attending,
        Role::Resident,
        Role::Nurse,
        Role::Frontdesk,
        Role::Billing,
        Role::Intake,
    ];

    /// The code used in `Task.performerType` (system [`crate::fhir::codes::ROLE_SYSTEM`]).
    pub fn code(self) -> &'static str {
        match self {
            Role::Attending => "attending",
            Role::Resident => "resident",
            Role::Nurse => "nurse",
            Role::Frontdesk => "frontdesk",
            Role::Billing => "billing",
            Role::Intake => "intake",
        }
    }

    /// The queues (`Task.performerType` codes) this role works, its own
    /// first: physicians also cover the after-hours queue, nurses read the
    /// messages that did not fit the intake format.
    pub fn queues(self) -> &'static [&'static str] {
        match self {
            Role::Attending => &["attending", "oncall"],
            Role::Resident => &["resident", "oncall"],
            Role::Nurse => &["nurse", "review"],
            Role::Frontdesk => &["frontdesk"],
            Role::Billing => &["billing"],
            Role::Intake => &[],
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Attending => "Attending",
            Role::Resident => "Resident",
            Role::Nurse => "Nurse",
            Role::Frontdesk => "Front desk",
            Role::Billing => "Billing",
            Role::Intake => "Patient intake",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.code().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                format!(
                    "unknown role {s:?}; expected attending, resident, nurse, frontdesk, billing or intake"
                )
            })
    }
}
