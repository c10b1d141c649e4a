//! Role-based access: the one place that decides what a caller may do.
//!
//! The table follows the access table in DESIGN.md. Every read, search,
//! write, batch entry and `_include` is checked through [`decide`].

use crate::fhir::codes::ROLE_SYSTEM;
use crate::roles::Role;

use super::DemoUser;
use super::outcome::FhirError;

/// Who is asking: a signed-in user, or anyone when the server has no users.
#[derive(Debug, Clone)]
pub enum Caller {
    Open,
    User(DemoUser),
}

impl Caller {
    pub fn role(&self) -> Option<Role> {
        match self {
            Caller::Open => None,
            Caller::User(u) => Some(u.role),
        }
    }
    pub fn name(&self) -> Option<&str> {
        match self {
            Caller::Open => None,
            Caller::User(u) => Some(&u.name),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Search,
    Write,
}

/// Extra search conditions a caller's access is limited to (e.g. its queue).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub filter: Vec<(String, String)>,
}

/// `*` is every type; `!Type` excludes one.
struct Rule {
    role: Role,
    read: &'static [&'static str],
    write: &'static [&'static str],
    /// Tasks are limited to the role's own queue.
    own_queue_only: bool,
}

const DIRECTORY: [&str; 4] = [
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
];

static RULES: &[Rule] = &[
    Rule {
        role: Role::Attending,
        read: &["*"],
        write: &["*", "!AuditEvent"],
        own_queue_only: false,
    },
    Rule {
        role: Role::Resident,
        read: &["*", "!AuditEvent"],
        write: &["DocumentReference", "Task", "Communication"],
        own_queue_only: false,
    },
    Rule {
        role: Role::Nurse,
        read: &["*", "!AuditEvent"],
        write: &["DocumentReference", "Task", "Communication", "Observation"],
        own_queue_only: false,
    },
    Rule {
        role: Role::Frontdesk,
        read: &[
            "Patient",
            DIRECTORY[0],
            DIRECTORY[1],
            DIRECTORY[2],
            DIRECTORY[3],
            "Encounter",
            "Appointment",
            "Coverage",
            "Task",
            "Communication",
        ],
        write: &["Patient", "Appointment", "Task", "Communication"],
        own_queue_only: true,
    },
    Rule {
        role: Role::Billing,
        read: &[
            "Patient",
            DIRECTORY[0],
            DIRECTORY[1],
            DIRECTORY[2],
            DIRECTORY[3],
            "Encounter",
            "Coverage",
            "Condition",
            "DocumentReference",
            "Procedure",
            "Claim",
            "ExplanationOfBenefit",
            "Task",
            "Communication",
        ],
        write: &["Task", "Communication"],
        own_queue_only: true,
    },
];

fn listed(list: &[&str], ty: &str) -> bool {
    let excluded = list.iter().any(|e| e.strip_prefix('!') == Some(ty));
    !excluded && list.iter().any(|e| *e == "*" || *e == ty)
}

/// May `caller` do `op` on resources of type `ty`, and within which scope?
pub fn decide(caller: &Caller, op: Op, ty: &str) -> Result<Scope, FhirError> {
    if op == Op::Write && ty == "AuditEvent" {
        return Err(FhirError::forbidden(
            "AuditEvents are recorded by the server and cannot be written",
        ));
    }
    let Caller::User(user) = caller else {
        return Ok(Scope::default());
    };
    let Some(rule) = RULES.iter().find(|r| r.role == user.role) else {
        return Err(FhirError::forbidden("no access rule for this role"));
    };
    let allowed = match op {
        Op::Read | Op::Search => listed(rule.read, ty),
        Op::Write => listed(rule.write, ty),
    };
    if !allowed {
        let verb = if op == Op::Write { "write" } else { "read" };
        return Err(FhirError::forbidden(format!(
            "the {} role may not {verb} {ty} resources",
            user.role.code()
        )));
    }
    let mut scope = Scope::default();
    if rule.own_queue_only && ty == "Task" && op != Op::Write {
        scope.filter.push((
            "performer-type".to_string(),
            format!("{ROLE_SYSTEM}|{}", user.role.code()),
        ));
    }
    Ok(scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> Caller {
        Caller::User(DemoUser {
            role,
            name: "Test".into(),
            practitioner: "Practitioner/t".into(),
            token: String::new(),
        })
    }

    #[test]
    fn clinical_roles_read_clinical_types() {
        for role in [Role::Attending, Role::Resident, Role::Nurse] {
            for ty in [
                "Observation",
                "Condition",
                "DocumentReference",
                "MedicationRequest",
            ] {
                assert!(decide(&user(role), Op::Read, ty).is_ok(), "{role} {ty}");
            }
        }
    }

    #[test]
    fn front_desk_sees_no_results_or_notes() {
        let fd = user(Role::Frontdesk);
        for ty in [
            "Observation",
            "DiagnosticReport",
            "DocumentReference",
            "Condition",
            "MedicationRequest",
            "AllergyIntolerance",
        ] {
            let err = decide(&fd, Op::Search, ty).unwrap_err();
            assert_eq!(err.status.as_u16(), 403, "{ty}");
        }
        assert!(decide(&fd, Op::Read, "Patient").is_ok());
        assert!(decide(&fd, Op::Read, "Encounter").is_ok());
    }

    #[test]
    fn billing_reads_what_coding_needs_only() {
        let b = user(Role::Billing);
        for ty in ["Encounter", "Condition", "DocumentReference"] {
            assert!(decide(&b, Op::Read, ty).is_ok(), "{ty}");
        }
        for ty in ["Observation", "MedicationRequest", "AllergyIntolerance"] {
            assert!(decide(&b, Op::Read, ty).is_err(), "{ty}");
        }
        assert!(decide(&b, Op::Write, "DocumentReference").is_err());
    }

    #[test]
    fn writes_follow_the_table() {
        for role in Role::ALL {
            assert!(decide(&user(role), Op::Write, "Task").is_ok());
            assert!(decide(&user(role), Op::Write, "Communication").is_ok());
            assert!(decide(&user(role), Op::Write, "AuditEvent").is_err());
        }
        for role in [Role::Attending, Role::Resident, Role::Nurse] {
            assert!(decide(&user(role), Op::Write, "DocumentReference").is_ok());
        }
        assert!(decide(&user(Role::Resident), Op::Write, "MedicationRequest").is_err());
    }

    #[test]
    fn queue_roles_are_scoped_to_their_queue() {
        let scope = decide(&user(Role::Frontdesk), Op::Search, "Task").unwrap();
        assert_eq!(
            scope.filter,
            vec![(
                "performer-type".to_string(),
                format!("{ROLE_SYSTEM}|frontdesk")
            )]
        );
        assert_eq!(
            decide(&user(Role::Nurse), Op::Search, "Task").unwrap(),
            Scope::default()
        );
        assert_eq!(
            decide(&Caller::Open, Op::Write, "Observation").unwrap(),
            Scope::default()
        );
        assert!(decide(&Caller::Open, Op::Write, "AuditEvent").is_err());
    }
}
