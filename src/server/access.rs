//! Who may do what: the one function that decides, [`authorize`], and the
//! role table it reads, [`RULES`].
//!
//! Every interaction asks it: read, vread, history (each version), search
//! (GET and POST, `$lastn`), every resource a search returns or
//! `_include`s, every batch and transaction entry, the search behind a
//! conditional create, create, update and delete. It is asked with what is
//! known at that point: before anything is looked up, only the type (and
//! the proposed resource of a write), so a role that may not touch a type
//! is refused before its request can learn whether anything exists; then
//! again with the stored resource, for rules that depend on it.
//!
//! The table follows DESIGN.md. Deny by default: an interaction no rule
//! allows is refused, naming the role and the type. Then, for everyone
//! (users and open access alike): nothing is deleted, the audit is written
//! by the server alone, signed notes are amended and final results
//! corrected (never overwritten in place). For users, the server names who
//! wrote: the author of a note, the signer (`authenticator`) when a note
//! is signed, the sender of a message, the requester of a task; a body that
//! names someone else is refused.

use std::cell::RefCell;
use std::collections::HashMap;

use rusqlite::Connection;
use rusqlite::types::Value as Sql;
use serde_json::{Value, json};

use crate::fhir::codes::{ROLE_SYSTEM, TASK_CATEGORY_SYSTEM};
use crate::roles::Role;

use super::outcome::FhirError;
use super::params;
use super::users::User;

/// Who is asking: a signed-in user, or anyone when the server has no users.
#[derive(Debug, Clone)]
pub enum Caller {
    Open,
    User(User),
}

impl Caller {
    pub fn role(&self) -> Option<Role> {
        match self {
            Caller::Open => None,
            Caller::User(u) => Some(u.role),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    /// One stored version: read, vread, each history entry, each resource
    /// a search returns or includes, the match of a conditional create.
    Read,
    /// A type-level search (its scope is decided here).
    Search,
    Create,
    Update,
    Delete,
}

impl Interaction {
    fn verb(self) -> &'static str {
        match self {
            Interaction::Read => "read",
            Interaction::Search => "search",
            Interaction::Create => "create",
            Interaction::Update => "update",
            Interaction::Delete => "delete",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Interaction::Read => "reading",
            Interaction::Search => "searching",
            Interaction::Create => "creating",
            Interaction::Update => "updating",
            Interaction::Delete => "deleting",
        }
    }
}

/// The stored resource an interaction is about.
#[derive(Debug, Clone, Copy)]
pub enum Current<'a> {
    /// Not looked up (yet): decide what can be decided from the type.
    Unread,
    /// Looked up and not there (an update that would create).
    Absent,
    Present(&'a Value),
}

/// What the access rules need to know beyond the resource itself.
pub trait Facts {
    /// Whether the patient (`Patient/<id>`) has an open item in `queue`.
    fn in_queue(&self, patient: &str, queue: Role) -> Result<bool, FhirError>;
}

/// Extra conditions a search is limited by: search parameters and SQL
/// tests of the row `r` (a `resources` row).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    pub params: Vec<(String, String)>,
    pub sql: Vec<(String, Vec<Sql>)>,
}

/// A change the server makes to a resource: a field it sets from the caller
/// or keeps from the stored version, or one it withholds from a role.
#[derive(Debug, Clone, PartialEq)]
enum Edit {
    Set(&'static str, Value),
}

/// An allowed interaction and what comes with it.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The rule that allowed it.
    pub rule: &'static str,
    /// For searches: what the caller's results are limited to.
    pub scope: Scope,
    /// Before the lookup: the answer depends on the resource, so whether
    /// one is absent or hidden must not show (both answer as refused).
    pub conditional: bool,
    /// Elements withheld from the caller on reads.
    redact: &'static [&'static str],
    /// Fields the server sets on a write.
    edits: Vec<Edit>,
}

impl Grant {
    fn of(rule: &'static str) -> Grant {
        Grant {
            rule,
            scope: Scope::default(),
            conditional: false,
            redact: &[],
            edits: Vec::new(),
        }
    }

    /// What the caller may see of a resource: withheld elements removed
    /// and the resource marked as redacted.
    pub fn shown(&self, mut resource: Value) -> Value {
        let mut removed = false;
        if let Some(obj) = resource.as_object_mut() {
            for f in self.redact {
                removed |= obj.remove(*f).is_some();
            }
            if removed {
                let meta = obj.entry("meta").or_insert_with(|| json!({}));
                if let Some(meta) = meta.as_object_mut() {
                    let labels = meta.entry("security").or_insert_with(|| json!([]));
                    if let Some(labels) = labels.as_array_mut() {
                        labels.push(json!({
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                            "code": "REDACTED",
                            "display": "redacted"
                        }));
                    }
                }
            }
        }
        resource
    }

    /// What is stored of a write: the server's fields set.
    pub fn stamped(&self, mut resource: Value) -> Value {
        if let Some(obj) = resource.as_object_mut() {
            for e in &self.edits {
                let Edit::Set(k, v) = e;
                obj.insert((*k).to_string(), v.clone());
            }
        }
        resource
    }
}

/// A refused interaction: the rule that refused it and why.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub rule: &'static str,
    pub message: String,
}

impl From<Refusal> for FhirError {
    fn from(r: Refusal) -> FhirError {
        FhirError::forbidden(format!("{} (rule {})", r.message, r.rule))
    }
}

#[derive(Debug, Clone)]
pub enum Decision {
    Allow(Grant),
    Deny(Refusal),
}

impl Decision {
    pub fn allowed(self) -> Result<Grant, FhirError> {
        match self {
            Decision::Allow(g) => Ok(g),
            Decision::Deny(r) => Err(r.into()),
        }
    }
}

// ---- the table ----

/// Which resource types a rule covers.
#[derive(Debug, Clone, Copy)]
pub enum Types {
    Only(&'static [&'static str]),
    AllBut(&'static [&'static str]),
}

impl Types {
    fn covers(self, ty: &str) -> bool {
        match self {
            Types::Only(list) => list.contains(&ty),
            Types::AllBut(list) => !list.contains(&ty),
        }
    }
}

/// A condition on one resource (the stored one, or the proposed one).
#[derive(Debug, Clone, Copy)]
pub enum Cond {
    Always,
    /// A task in one of the caller's role queues (`Task.performerType`,
    /// see [`Role::queues`]).
    OwnQueue,
    /// A message a patient sends about themself: its sender is the
    /// Patient it is about.
    FromPatient,
    /// A resource of a patient with an open item in this queue.
    QueuePatient(Role),
    /// A note whose `docStatus` is one of these (absent reads as `preliminary`).
    DocStatus(&'static [&'static str]),
    /// A note of one of these LOINC types.
    NoteType(&'static [&'static str]),
    /// An Observation of one of these categories.
    ObsCategory(&'static [&'static str]),
    /// A message of these categories only (one without a category is clinical).
    Category(&'static [&'static str]),
    /// Written by the caller: a note's `author`, a result's `performer`.
    ByCaller(&'static str),
    /// A note not (yet) signed by a resident for co-signature: once it waits
    /// for an attending, what the attending co-signs is what was signed.
    NotAwaitingCosign,
    All(&'static [Cond]),
}

pub struct Rule {
    /// Named in refusals and in the docs.
    pub name: &'static str,
    /// What the rule lets a role do, in a sentence.
    pub says: &'static str,
    pub roles: &'static [Role],
    pub types: Types,
    pub interactions: &'static [Interaction],
    /// On the stored resource (reads, updates).
    pub current: Cond,
    /// On the proposed resource (creates, updates).
    pub proposed: Cond,
    /// Elements withheld on reads.
    pub redact: &'static [&'static str],
    /// The caller is named as the `performer` of what it creates.
    pub performer: bool,
}

use Interaction::{Create, Read, Search, Update};
use Role::{Attending, Billing, Frontdesk, Intake, Nurse, Resident};

const READ: &[Interaction] = &[Read, Search];
const WRITE: &[Interaction] = &[Create, Update];

const fn rule(
    name: &'static str,
    says: &'static str,
    roles: &'static [Role],
    types: Types,
    interactions: &'static [Interaction],
) -> Rule {
    Rule {
        name,
        says,
        roles,
        types,
        interactions,
        current: Cond::Always,
        proposed: Cond::Always,
        redact: &[],
        performer: false,
    }
}

/// Practitioners, their roles, organisations, places.
pub const DIRECTORY: &[&str] = &[
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
];

/// What clinicians read: the chart, the directory, queues and messages,
/// appointments and coverage (not claims, not the audit).
pub const CLINICAL_READ: &[&str] = &[
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Encounter",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "Observation",
    "DiagnosticReport",
    "DocumentReference",
    "Immunization",
    "Procedure",
    "CarePlan",
    "CareTeam",
    "Goal",
    "ImagingStudy",
    "Device",
    "MedicationAdministration",
    "MedicationStatement",
    "ServiceRequest",
    "Specimen",
    "Media",
    "Provenance",
    "Medication",
    "Task",
    "Communication",
    "Appointment",
    "Coverage",
];

/// Encounter elements that carry diagnoses, withheld from the front desk.
pub const ENCOUNTER_CLINICAL: &[&str] = &[
    "reasonCode",
    "reasonReference",
    "diagnosis",
    "hospitalization",
    "text",
];

/// LOINC document types of nursing notes.
pub const NURSING_NOTES: &[&str] = &[
    "34746-8", // Nurse note
    "34748-4", // Telephone encounter note (nursing telephone triage)
    "28651-8", // Nurse transfer note
    "34745-0", // Nurse discharge summary
];

/// Message categories the front desk handles (see `fhir::codes::TASK_CATEGORIES`).
pub const ADMIN_MESSAGES: &[&str] = &["scheduling", "billing"];

const SIGNED: &[&str] = &["final", "amended"];
const DRAFT: &[&str] = &["preliminary"];
const OPEN_TASK: &[&str] = &[
    "draft",
    "requested",
    "received",
    "accepted",
    "ready",
    "in-progress",
    "on-hold",
];

/// The role table, one rule per line of DESIGN.md's access table. A
/// (role, type, interaction) has at most one rule (a unit test checks).
pub static RULES: &[Rule] = &[
    // attending: everything clinical; signs and co-signs; privacy officer.
    rule(
        "attending-reads-all",
        "the attending reads every record",
        &[Attending],
        Types::AllBut(&["AuditEvent"]),
        READ,
    ),
    rule(
        "attending-writes-all",
        "the attending writes every record, signs and co-signs",
        &[Attending],
        Types::AllBut(&["AuditEvent"]),
        WRITE,
    ),
    rule(
        "privacy-officer-reads-the-audit",
        "the attending, as privacy officer, reads the audit trail",
        &[Attending],
        Types::Only(&["AuditEvent"]),
        READ,
    ),
    // resident and nurse read clinical data.
    rule(
        "clinicians-read-the-chart",
        "residents and nurses read clinical data",
        &[Resident, Nurse],
        Types::Only(CLINICAL_READ),
        READ,
    ),
    Rule {
        proposed: Cond::DocStatus(DRAFT),
        ..rule(
            "residents-draft-notes",
            "a resident writes notes as preliminary drafts for an attending to co-sign, never final",
            &[Resident],
            Types::Only(&["DocumentReference"]),
            &[Create],
        )
    },
    Rule {
        current: Cond::All(&[
            Cond::ByCaller("author"),
            Cond::DocStatus(DRAFT),
            Cond::NotAwaitingCosign,
        ]),
        proposed: Cond::DocStatus(DRAFT),
        ..rule(
            "residents-edit-their-drafts",
            "a resident edits their own drafts, which stay preliminary until an attending co-signs, until they are signed for co-signature",
            &[Resident],
            Types::Only(&["DocumentReference"]),
            &[Update],
        )
    },
    Rule {
        proposed: Cond::ObsCategory(&["vital-signs"]),
        performer: true,
        ..rule(
            "nurses-record-vital-signs",
            "a nurse records the vital signs they take",
            &[Nurse],
            Types::Only(&["Observation"]),
            &[Create],
        )
    },
    Rule {
        current: Cond::All(&[
            Cond::ObsCategory(&["vital-signs"]),
            Cond::ByCaller("performer"),
        ]),
        proposed: Cond::ObsCategory(&["vital-signs"]),
        performer: true,
        ..rule(
            "nurses-edit-their-vital-signs",
            "a nurse edits only vital signs they took, never a result another user entered",
            &[Nurse],
            Types::Only(&["Observation"]),
            &[Update],
        )
    },
    Rule {
        proposed: Cond::NoteType(NURSING_NOTES),
        ..rule(
            "nurses-write-nursing-notes",
            "a nurse writes nursing notes",
            &[Nurse],
            Types::Only(&["DocumentReference"]),
            &[Create],
        )
    },
    Rule {
        current: Cond::All(&[Cond::NoteType(NURSING_NOTES), Cond::ByCaller("author")]),
        proposed: Cond::NoteType(NURSING_NOTES),
        ..rule(
            "nurses-edit-their-nursing-notes",
            "a nurse edits their own nursing notes",
            &[Nurse],
            Types::Only(&["DocumentReference"]),
            &[Update],
        )
    },
    Rule {
        proposed: Cond::FromPatient,
        ..rule(
            "intake-posts-patient-messages",
            "the patient app posts a patient's message (sender and subject the same Patient) and reads nothing",
            &[Intake],
            Types::Only(&["Communication"]),
            &[Create],
        )
    },
    rule(
        "clinicians-message",
        "residents and nurses write and update messages",
        &[Resident, Nurse],
        Types::Only(&["Communication"]),
        WRITE,
    ),
    // Queues: anyone routes a task to a queue; each role works its own.
    rule(
        "anyone-routes-a-task",
        "every role may put a task in a queue",
        &[Resident, Nurse, Frontdesk, Billing],
        Types::Only(&["Task"]),
        &[Create],
    ),
    Rule {
        current: Cond::OwnQueue,
        ..rule(
            "roles-work-their-queue",
            "a role works the tasks of its own queue",
            &[Resident, Nurse],
            Types::Only(&["Task"]),
            &[Update],
        )
    },
    // Front desk: demographics, appointments, admin messages, its queue.
    rule(
        "front-desk-reads-demographics",
        "the front desk reads demographics, the directory, appointments and coverage",
        &[Frontdesk],
        Types::Only(&[
            "Patient",
            "Practitioner",
            "PractitionerRole",
            "Organization",
            "Location",
            "Appointment",
            "Coverage",
        ]),
        READ,
    ),
    Rule {
        redact: ENCOUNTER_CLINICAL,
        ..rule(
            "front-desk-reads-visits-without-diagnoses",
            "the front desk reads encounters without their reasons and diagnoses",
            &[Frontdesk],
            Types::Only(&["Encounter"]),
            READ,
        )
    },
    rule(
        "front-desk-writes-demographics",
        "the front desk writes demographics, appointments and coverage",
        &[Frontdesk],
        Types::Only(&["Patient", "Appointment", "Coverage"]),
        WRITE,
    ),
    Rule {
        current: Cond::OwnQueue,
        ..rule(
            "front-desk-works-its-queue",
            "the front desk reads and works the tasks of the front desk queue only",
            &[Frontdesk],
            Types::Only(&["Task"]),
            &[Read, Search, Update],
        )
    },
    Rule {
        current: Cond::Category(ADMIN_MESSAGES),
        proposed: Cond::Category(ADMIN_MESSAGES),
        ..rule(
            "front-desk-handles-admin-messages",
            "the front desk reads and writes scheduling and billing messages, never clinical ones",
            &[Frontdesk],
            Types::Only(&["Communication"]),
            &[Read, Search, Create, Update],
        )
    },
    // Billing: what coding needs, for patients in its queue.
    rule(
        "billing-reads-the-directory",
        "billing reads the directory",
        &[Billing],
        Types::Only(DIRECTORY),
        READ,
    ),
    Rule {
        current: Cond::QueuePatient(Billing),
        ..rule(
            "billing-reads-its-patients",
            "billing reads the demographics, encounters, coverage and claims of patients with an open item in the billing queue",
            &[Billing],
            Types::Only(&[
                "Patient",
                "Encounter",
                "Coverage",
                "Claim",
                "ExplanationOfBenefit",
            ]),
            READ,
        )
    },
    Rule {
        current: Cond::All(&[Cond::QueuePatient(Billing), Cond::DocStatus(SIGNED)]),
        ..rule(
            "billing-reads-signed-notes",
            "billing reads the signed notes of patients with an open item in the billing queue",
            &[Billing],
            Types::Only(&["DocumentReference"]),
            READ,
        )
    },
    Rule {
        current: Cond::OwnQueue,
        ..rule(
            "billing-works-its-queue",
            "billing reads and works the tasks of the billing queue only",
            &[Billing],
            Types::Only(&["Task"]),
            &[Read, Search, Update],
        )
    },
    Rule {
        current: Cond::All(&[Cond::QueuePatient(Billing), Cond::Category(&["billing"])]),
        proposed: Cond::All(&[Cond::QueuePatient(Billing), Cond::Category(&["billing"])]),
        ..rule(
            "billing-handles-billing-messages",
            "billing reads and writes the billing messages of patients in its queue",
            &[Billing],
            Types::Only(&["Communication"]),
            &[Read, Search, Create, Update],
        )
    },
    Rule {
        current: Cond::QueuePatient(Billing),
        proposed: Cond::QueuePatient(Billing),
        ..rule(
            "billing-writes-claims",
            "billing writes the claims of patients in its queue",
            &[Billing],
            Types::Only(&["Claim"]),
            WRITE,
        )
    },
];

fn find_rule(role: Role, ty: &str, i: Interaction) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| r.roles.contains(&role) && r.types.covers(ty) && r.interactions.contains(&i))
}

// ---- reading resources ----

fn refs_in(v: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    match v {
        Some(Value::Array(items)) => {
            for i in items {
                out.extend(refs_in(Some(i)));
            }
        }
        Some(obj @ Value::Object(_)) => {
            if let Some(r) = obj
                .get("reference")
                .and_then(Value::as_str)
                .and_then(params::normalize_reference)
            {
                out.push(r);
            }
        }
        _ => {}
    }
    out
}

/// `Patient/<id>` of every patient a resource is about: itself, or its
/// subject, patient, `for`, beneficiary, or a patient among its
/// participants.
pub fn patients_of(ty: &str, id: &str, resource: &Value) -> Vec<String> {
    if ty == "Patient" {
        return if params::is_valid_id(id) {
            vec![format!("Patient/{id}")]
        } else {
            Vec::new()
        };
    }
    let mut out = Vec::new();
    for field in ["subject", "patient", "for", "beneficiary"] {
        out.extend(refs_in(resource.get(field)));
    }
    if let Some(ps) = resource.get("participant").and_then(Value::as_array) {
        for p in ps {
            out.extend(refs_in(p.get("actor")));
        }
    }
    out.retain(|r| r.starts_with("Patient/"));
    out.dedup();
    out
}

fn codes_of(v: Option<&Value>, system: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let items: Vec<&Value> = match v {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => vec![other],
        None => Vec::new(),
    };
    for item in items {
        for c in item
            .get("coding")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let sys_ok = system.is_none_or(|s| c.get("system").and_then(Value::as_str) == Some(s));
            if sys_ok && let Some(code) = c.get("code").and_then(Value::as_str) {
                out.push(code.to_string());
            }
        }
    }
    out
}

fn same_refs(a: &Value, b: &Value) -> bool {
    let (mut x, mut y) = (refs_in(Some(a)), refs_in(Some(b)));
    if x.is_empty() && y.is_empty() {
        return a == b;
    }
    x.sort();
    y.sort();
    x == y
}

fn caller_ref(user: &User) -> Option<&str> {
    user.practitioner.as_deref()
}

/// Whether a field names the caller and nobody else.
fn names_caller(v: Option<&Value>, user: &User) -> bool {
    let refs = refs_in(v);
    match caller_ref(user) {
        Some(me) => !refs.is_empty() && refs.iter().all(|r| r == me),
        None => false,
    }
}

struct Eval<'a> {
    user: &'a User,
    facts: &'a dyn Facts,
    ty: &'a str,
}

impl Eval<'_> {
    fn holds(&self, cond: Cond, res: &Value, id: &str) -> Result<bool, FhirError> {
        Ok(match cond {
            Cond::Always => true,
            Cond::OwnQueue => codes_of(res.get("performerType"), Some(ROLE_SYSTEM))
                .iter()
                .any(|c| self.user.role.queues().contains(&c.as_str())),
            Cond::FromPatient => {
                let sender = refs_in(res.get("sender"));
                let subject = refs_in(res.get("subject"));
                matches!(sender.as_slice(), [s] if s.starts_with("Patient/")) && sender == subject
            }
            Cond::QueuePatient(queue) => {
                let mut any = false;
                for p in patients_of(self.ty, id, res) {
                    if self.facts.in_queue(&p, queue)? {
                        any = true;
                        break;
                    }
                }
                any
            }
            Cond::NotAwaitingCosign => {
                !crate::fhir::codes::awaits_cosignature(res.get("extension"))
            }
            Cond::DocStatus(list) => {
                let s = res
                    .get("docStatus")
                    .and_then(Value::as_str)
                    .unwrap_or("preliminary");
                list.contains(&s)
            }
            Cond::NoteType(list) => codes_of(res.get("type"), Some("http://loinc.org"))
                .iter()
                .any(|c| list.contains(&c.as_str())),
            Cond::ObsCategory(list) => codes_of(res.get("category"), None)
                .iter()
                .any(|c| list.contains(&c.as_str())),
            Cond::Category(list) => {
                let cats = codes_of(res.get("category"), Some(TASK_CATEGORY_SYSTEM));
                !cats.is_empty() && cats.iter().all(|c| list.contains(&c.as_str()))
            }
            Cond::ByCaller(field) => match caller_ref(self.user) {
                Some(me) => refs_in(res.get(field)).iter().any(|r| r == me),
                None => false,
            },
            Cond::All(list) => {
                for c in list {
                    if !self.holds(*c, res, id)? {
                        return Ok(false);
                    }
                }
                true
            }
        })
    }
}

/// A search scope for a condition on stored resources; `None` when the
/// condition cannot be searched for (a read rule never uses one).
fn scope_of(cond: Cond, ty: &str, user: &User, scope: &mut Scope) -> Option<()> {
    match cond {
        Cond::Always => {}
        Cond::OwnQueue => scope.params.push((
            "performer-type".into(),
            user.role
                .queues()
                .iter()
                .map(|q| format!("{ROLE_SYSTEM}|{q}"))
                .collect::<Vec<_>>()
                .join(","),
        )),
        Cond::DocStatus(list) => scope.params.push(("doc-status".into(), list.join(","))),
        Cond::Category(list) => scope.params.push((
            "category".into(),
            list.iter()
                .map(|c| format!("{TASK_CATEGORY_SYSTEM}|{c}"))
                .collect::<Vec<_>>()
                .join(","),
        )),
        Cond::QueuePatient(queue) => scope.sql.push(queue_patient_sql(ty, queue)?),
        Cond::All(list) => {
            for c in list {
                scope_of(*c, ty, user, scope)?;
            }
        }
        Cond::NoteType(_)
        | Cond::ObsCategory(_)
        | Cond::ByCaller(_)
        | Cond::NotAwaitingCosign
        | Cond::FromPatient => {
            return None;
        }
    }
    Some(())
}

/// `Patient/<id>` of every patient with an open task in `queue`, as SQL.
fn queue_patients_sql(queue: Role) -> (String, Vec<Sql>) {
    let task_patient =
        params::find_param("Task", "patient").map_or("for", |p| params::storage_name("Task", p));
    let statuses = OPEN_TASK
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    (
        format!(
            "SELECT t.ref FROM idx_token q
               JOIN idx_ref t ON t.rid = q.rid AND t.param = '{task_patient}'
               JOIN idx_token s ON s.rid = q.rid AND s.param = 'status'
               JOIN resources tr ON tr.rid = q.rid AND tr.deleted = 0
             WHERE q.type = 'Task' AND q.param = 'performer-type' AND q.code = ? AND q.system = ?
               AND s.code IN ({statuses})"
        ),
        vec![
            Sql::Text(queue.code().to_string()),
            Sql::Text(ROLE_SYSTEM.to_string()),
        ],
    )
}

fn queue_patient_sql(ty: &str, queue: Role) -> Option<(String, Vec<Sql>)> {
    let (patients, args) = queue_patients_sql(queue);
    if ty == "Patient" {
        return Some((format!("('Patient/' || r.id) IN ({patients})"), args));
    }
    let param = params::find_param(ty, "patient")?;
    let stored = params::storage_name(ty, param);
    let mut all = vec![Sql::Text(stored.to_string())];
    all.extend(args);
    Some((
        format!(
            "EXISTS (SELECT 1 FROM idx_ref x WHERE x.rid = r.rid AND x.param = ? AND x.ref IN ({patients}))"
        ),
        all,
    ))
}

/// [`Facts`] from the database, remembered for one request.
pub struct DbFacts<'a> {
    conn: &'a Connection,
    seen: RefCell<HashMap<(String, Role), bool>>,
}

impl<'a> DbFacts<'a> {
    pub fn new(conn: &'a Connection) -> Self {
        DbFacts {
            conn,
            seen: RefCell::new(HashMap::new()),
        }
    }
}

impl Facts for DbFacts<'_> {
    fn in_queue(&self, patient: &str, queue: Role) -> Result<bool, FhirError> {
        let key = (patient.to_string(), queue);
        if let Some(v) = self.seen.borrow().get(&key) {
            return Ok(*v);
        }
        let (sql, mut args) = queue_patients_sql(queue);
        args.push(Sql::Text(patient.to_string()));
        let found: bool = self
            .conn
            .prepare_cached(&format!(
                "SELECT EXISTS (SELECT 1 FROM ({sql}) WHERE ref = ?)"
            ))?
            .query_row(rusqlite::params_from_iter(args), |r| r.get(0))?;
        self.seen.borrow_mut().insert(key, found);
        Ok(found)
    }
}

// ---- the decision ----

fn deny(rule: &'static str, message: impl Into<String>) -> Decision {
    Decision::Deny(Refusal {
        rule,
        message: message.into(),
    })
}

fn status_of<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

/// Whether two versions differ only in `changed` (and the server's meta);
/// a field absent from `proposed` in `kept` counts as unchanged.
fn same_except(current: &Value, proposed: &Value, changed: &[&str], kept: &[&str]) -> bool {
    let (Some(c), Some(p)) = (current.as_object(), proposed.as_object()) else {
        return false;
    };
    let skip = |k: &str| k == "meta" || changed.contains(&k);
    let keys: std::collections::BTreeSet<&String> = c.keys().chain(p.keys()).collect();
    keys.into_iter()
        .filter(|k| !skip(k))
        .all(|k| match (c.get(k), p.get(k)) {
            (Some(_), None) if kept.contains(&k.as_str()) => true,
            (a, b) => a == b,
        })
}

/// Signed notes are amended and final results corrected: never rewritten
/// in place. Marking one entered in error changes nothing else.
fn immutable(ty: &str, current: &Value, proposed: &Value) -> Option<Refusal> {
    match ty {
        "DocumentReference" => {
            let signed = SIGNED.contains(&status_of(current, "docStatus"))
                && status_of(current, "status") != "entered-in-error";
            if !signed {
                return None;
            }
            let amended = status_of(proposed, "docStatus") == "amended";
            // Marked entered in error, or superseded by its amendment:
            // the status changes, nothing else.
            let withdrawn =
                matches!(
                    status_of(proposed, "status"),
                    "entered-in-error" | "superseded"
                ) && same_except(current, proposed, &["status"], &["author", "authenticator"]);
            (!amended && !withdrawn).then(|| Refusal {
                rule: "signed-notes-are-amended",
                message: "a signed note is never rewritten: send the correction as a new version \
                          with docStatus amended (or an addendum note), or only mark it \
                          superseded or entered-in-error"
                    .into(),
            })
        }
        "Observation" | "DiagnosticReport" => {
            let fin = ["final", "amended", "corrected"].contains(&status_of(current, "status"));
            if !fin {
                return None;
            }
            let p = status_of(proposed, "status");
            let corrected = p == "amended" || p == "corrected";
            let withdrawn = (p == "entered-in-error" || p == "cancelled")
                && same_except(current, proposed, &["status"], &["performer"]);
            (!corrected && !withdrawn).then(|| Refusal {
                rule: "final-results-are-corrected",
                message: "a final result is never rewritten: send the new value as a version with \
                          status corrected or amended, or mark it entered-in-error"
                    .into(),
            })
        }
        _ => None,
    }
}

/// A field the caller writes (author, sender, requester, performer):
/// absent → the caller, or on an update what was stored; present → must
/// name the caller, or be what was stored.
fn own_field(
    user: &User,
    field: &'static str,
    list: bool,
    current: Option<&Value>,
    proposed: &Value,
    edits: &mut Vec<Edit>,
) -> Result<(), ()> {
    let given = proposed.get(field).filter(|v| !v.is_null());
    let stored = current.and_then(|c| c.get(field)).filter(|v| !v.is_null());
    match (given, stored) {
        (None, Some(s)) => edits.push(Edit::Set(field, s.clone())),
        (None, None) => {
            let me = user.reference();
            edits.push(Edit::Set(field, if list { json!([me]) } else { me }));
        }
        (Some(g), Some(s)) if same_refs(g, s) => {}
        (Some(g), None) if names_caller(Some(g), user) => {}
        (Some(_), _) => return Err(()),
    }
    Ok(())
}

/// The server names who wrote: author and signer of notes, sender of
/// messages, requester of tasks, performer where a rule asks. A body that
/// names someone else is refused.
fn attribute(
    user: &User,
    ty: &str,
    current: Option<&Value>,
    proposed: &Value,
    performer: bool,
    edits: &mut Vec<Edit>,
) -> Option<Refusal> {
    let someone_else = |rule: &'static str, what: &str| {
        Some(Refusal {
            rule,
            message: format!(
                "the {what} is set by the server from who is signed in; this request names someone else"
            ),
        })
    };
    match ty {
        "DocumentReference" => {
            if own_field(user, "author", true, current, proposed, edits).is_err() {
                return someone_else("notes-name-their-author", "author of a note");
            }
            let doc = status_of(proposed, "docStatus");
            let was = current.map(|c| status_of(c, "docStatus"));
            let signing = SIGNED.contains(&doc) && (was != Some(doc) || doc == "amended");
            let given = proposed.get("authenticator").filter(|v| !v.is_null());
            let stored = current
                .and_then(|c| c.get("authenticator"))
                .filter(|v| !v.is_null());
            if signing {
                // The note is dated when the server took the signature, not
                // by the client's clock.
                edits.push(Edit::Set(
                    "date",
                    Value::from(
                        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    ),
                ));
                match given {
                    None => edits.push(Edit::Set("authenticator", user.reference())),
                    Some(g) if names_caller(Some(g), user) => {}
                    Some(_) => return someone_else("signer-is-the-caller", "signer of a note"),
                }
            } else {
                match (given, stored) {
                    (None, Some(s)) => edits.push(Edit::Set("authenticator", s.clone())),
                    (None, None) => {}
                    (Some(g), Some(s)) if same_refs(g, s) => {}
                    (Some(_), _) => {
                        return Some(Refusal {
                            rule: "signer-is-the-caller",
                            message: "only signing a note (docStatus final or amended) names its signer, \
                                      and the server names the caller"
                                .into(),
                        });
                    }
                }
            }
        }
        // The patient app posts for the patient, who is the sender.
        "Communication"
            if user.role != Role::Intake
                && own_field(user, "sender", false, current, proposed, edits).is_err() =>
        {
            return someone_else("messages-name-their-sender", "sender of a message");
        }
        "Task" if own_field(user, "requester", false, current, proposed, edits).is_err() => {
            return someone_else("tasks-name-their-requester", "requester of a task");
        }
        "Observation"
            if performer
                && own_field(user, "performer", true, current, proposed, edits).is_err() =>
        {
            return someone_else("results-name-who-took-them", "performer of a vital sign");
        }
        _ => {}
    }
    None
}

/// The one authorisation decision. `current` is the stored resource (or
/// that it was not looked up yet, or is absent); `proposed` the resource a
/// create or update would store.
pub fn authorize(
    caller: &Caller,
    interaction: Interaction,
    ty: &str,
    current: Current<'_>,
    proposed: Option<&Value>,
    facts: &dyn Facts,
) -> Result<Decision, FhirError> {
    use Interaction::*;
    // Rules for everyone.
    if interaction == Delete {
        return Ok(deny(
            "records-are-never-deleted",
            format!(
                "{ty} resources are never deleted: set their status to entered-in-error (or cancelled) instead"
            ),
        ));
    }
    if ty == "AuditEvent" && matches!(interaction, Create | Update) {
        return Ok(deny(
            "audit-is-written-by-the-server",
            "AuditEvents are recorded by the server; no request can create or change one",
        ));
    }
    // The token's scopes narrow the role; they never widen it.
    if let Caller::User(User {
        scopes: Some(scopes),
        ..
    }) = caller
    {
        use super::auth::scope::Wanted;
        let wanted = match interaction {
            Read => Wanted::Read,
            Search => Wanted::Search,
            Create => Wanted::Create,
            Update => Wanted::Update,
            Delete => Wanted::Delete,
        };
        if !scopes.allows(wanted, ty) {
            return Ok(deny(
                "token-scopes",
                format!(
                    "the token's scopes do not allow {} of {ty} resources",
                    interaction.noun()
                ),
            ));
        }
    }
    let current_value = match current {
        Current::Present(v) => Some(v),
        _ => None,
    };
    let id = current_value
        .or(proposed)
        .and_then(|v| v.get("id"))
        .and_then(Value::as_str)
        .unwrap_or("");

    let mut grant = match caller {
        Caller::Open => Grant::of("open-access"),
        Caller::User(user) => {
            let role = user.role;
            // An update that would create takes the create rule, and only
            // where the role's update rule does not depend on what is
            // stored (so that absent and hidden answer alike).
            let asked = interaction;
            let Some(rule) = find_rule(role, ty, asked) else {
                return Ok(deny(
                    "deny-by-default",
                    format!(
                        "the {} role may not {} {ty} resources",
                        role.code(),
                        asked.verb()
                    ),
                ));
            };
            let refused = || {
                deny(
                    rule.name,
                    format!(
                        "{}; this {ty} is not one of them (or does not exist)",
                        rule.says
                    ),
                )
            };
            let eval = Eval { user, facts, ty };
            let mut grant = Grant::of(rule.name);
            grant.redact = rule.redact;
            match current {
                // A create has nothing stored: only the proposal counts.
                _ if asked == Create => {}
                Current::Unread => {
                    grant.conditional = !matches!(rule.current, Cond::Always);
                }
                Current::Absent => {
                    if !matches!(rule.current, Cond::Always) {
                        return Ok(refused());
                    }
                    if asked == Update {
                        let Some(create) = find_rule(role, ty, Create) else {
                            return Ok(deny(
                                "deny-by-default",
                                format!("the {} role may not create {ty} resources", role.code()),
                            ));
                        };
                        if let Some(p) = proposed
                            && !eval.holds(create.proposed, p, id)?
                        {
                            return Ok(deny(create.name, create.says));
                        }
                    }
                }
                Current::Present(c) => {
                    if !eval.holds(rule.current, c, id)? {
                        return Ok(refused());
                    }
                }
            }
            if let Some(p) = proposed
                && !eval.holds(rule.proposed, p, id)?
            {
                return Ok(deny(
                    rule.name,
                    format!("{}; this request does not", rule.says),
                ));
            }
            if interaction == Search {
                if scope_of(rule.current, ty, user, &mut grant.scope).is_none() {
                    return Ok(deny(
                        rule.name,
                        format!("{ty} cannot be searched by this role"),
                    ));
                }
                grant.conditional = false;
            }
            // Who wrote is decided once what is stored is known.
            let known = interaction == Create || !matches!(current, Current::Unread);
            if let Some(p) = proposed
                && known
                && let Some(r) =
                    attribute(user, ty, current_value, p, rule.performer, &mut grant.edits)
            {
                return Ok(Decision::Deny(r));
            }
            grant
        }
    };
    if let (Some(c), Some(p)) = (current_value, proposed)
        && let Some(r) = immutable(ty, c, p)
    {
        return Ok(Decision::Deny(r));
    }
    if matches!(caller, Caller::Open) {
        grant.conditional = false;
    }
    Ok(Decision::Allow(grant))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoQueue;
    impl Facts for NoQueue {
        fn in_queue(&self, patient: &str, _: Role) -> Result<bool, FhirError> {
            Ok(patient == "Patient/in-queue")
        }
    }

    fn user(role: Role) -> Caller {
        Caller::User(User {
            id: 1,
            login: role.code().into(),
            name: format!("Test {role}"),
            role,
            practitioner: Some(format!("Practitioner/pr-{}", role.code())),
            scopes: None,
        })
    }

    fn decide(
        role: Role,
        i: Interaction,
        ty: &str,
        current: Option<&Value>,
        proposed: Option<&Value>,
    ) -> Decision {
        let cur = current.map_or(Current::Unread, Current::Present);
        authorize(&user(role), i, ty, cur, proposed, &NoQueue).unwrap()
    }

    fn allowed(d: &Decision) -> bool {
        matches!(d, Decision::Allow(_))
    }

    #[test]
    fn one_rule_per_role_type_and_interaction_and_read_rules_can_be_searched() {
        let mut types: Vec<&str> = params::CORE_TYPES
            .iter()
            .chain(params::OTHER_TYPES.iter())
            .map(|(t, _)| *t)
            .collect();
        types.push("SupplyDelivery");
        for role in Role::ALL {
            for ty in &types {
                for i in [Read, Search, Create, Update] {
                    let n = RULES
                        .iter()
                        .filter(|r| {
                            r.roles.contains(&role)
                                && r.types.covers(ty)
                                && r.interactions.contains(&i)
                        })
                        .count();
                    assert!(n <= 1, "{role} {i:?} {ty}: {n} rules");
                }
                if let Some(r) = find_rule(role, ty, Search) {
                    let mut s = Scope::default();
                    let u = match user(role) {
                        Caller::User(u) => u,
                        Caller::Open => unreachable!(),
                    };
                    assert!(
                        scope_of(r.current, ty, &u, &mut s).is_some(),
                        "{role} {ty}: {}",
                        r.name
                    );
                }
            }
        }
    }

    #[test]
    fn every_rule_is_in_the_docs() {
        let doc = include_str!("../../docs/server.md");
        let everyone = [
            "records-are-never-deleted",
            "audit-is-written-by-the-server",
            "signed-notes-are-amended",
            "final-results-are-corrected",
        ];
        for name in RULES.iter().map(|r| r.name).chain(everyone) {
            assert!(
                doc.contains(&format!("| `{name}` |")),
                "{name} is not in docs/server.md"
            );
        }
    }

    #[test]
    fn deny_by_default_and_for_everyone() {
        let obs = json!({"resourceType": "Observation", "id": "o", "status": "final"});
        for role in Role::ALL {
            assert!(!allowed(&decide(
                role,
                Interaction::Delete,
                "Patient",
                Some(&json!({"id": "p"})),
                None
            )));
            assert!(!allowed(&decide(
                role,
                Create,
                "AuditEvent",
                None,
                Some(&json!({}))
            )));
        }
        let Decision::Deny(r) = decide(Role::Frontdesk, Read, "Observation", None, None) else {
            panic!("front desk reads results")
        };
        assert_eq!(r.rule, "deny-by-default");
        assert!(!allowed(&decide(
            Role::Billing,
            Search,
            "Observation",
            None,
            None
        )));
        assert!(allowed(&decide(
            Role::Nurse,
            Read,
            "Observation",
            Some(&obs),
            None
        )));
        // Open access: no roles, but the rules for everyone hold.
        let open = |i, cur: Option<&Value>, p: Option<&Value>| {
            authorize(
                &Caller::Open,
                i,
                "Observation",
                cur.map_or(Current::Unread, Current::Present),
                p,
                &NoQueue,
            )
            .unwrap()
        };
        assert!(allowed(&open(Create, None, Some(&obs))));
        assert!(!allowed(&open(Interaction::Delete, Some(&obs), None)));
        let mut changed = obs.clone();
        changed["valueString"] = json!("x");
        assert!(!allowed(&open(Update, Some(&obs), Some(&changed))));
        changed["status"] = json!("corrected");
        assert!(allowed(&open(Update, Some(&obs), Some(&changed))));
    }

    #[test]
    fn queues_and_scopes() {
        let fd_task = json!({"id": "t", "performerType": [{"coding": [{"system": ROLE_SYSTEM, "code": "frontdesk"}]}]});
        let nurse_task = json!({"id": "t", "performerType": [{"coding": [{"system": ROLE_SYSTEM, "code": "nurse"}]}]});
        assert!(allowed(&decide(
            Role::Frontdesk,
            Read,
            "Task",
            Some(&fd_task),
            None
        )));
        assert!(!allowed(&decide(
            Role::Frontdesk,
            Read,
            "Task",
            Some(&nurse_task),
            None
        )));
        let Decision::Allow(g) = decide(Role::Frontdesk, Read, "Task", None, None) else {
            panic!()
        };
        assert!(g.conditional, "absent and hidden must answer alike");
        let Decision::Allow(g) = decide(Role::Frontdesk, Search, "Task", None, None) else {
            panic!()
        };
        assert_eq!(
            g.scope.params,
            vec![(
                "performer-type".to_string(),
                format!("{ROLE_SYSTEM}|frontdesk")
            )]
        );
        let Decision::Allow(g) = decide(Role::Billing, Search, "Patient", None, None) else {
            panic!()
        };
        assert_eq!(g.scope.sql.len(), 1);
        assert!(allowed(&decide(
            Role::Billing,
            Read,
            "Patient",
            Some(&json!({"id": "in-queue"})),
            None
        )));
        assert!(!allowed(&decide(
            Role::Billing,
            Read,
            "Patient",
            Some(&json!({"id": "other"})),
            None
        )));
    }

    #[test]
    fn the_front_desk_never_sees_diagnoses() {
        let enc = json!({"resourceType": "Encounter", "id": "e", "status": "finished",
            "reasonCode": [{"text": "Hypertension"}], "diagnosis": [{"condition": {"reference": "Condition/c"}}]});
        let Decision::Allow(g) = decide(Role::Frontdesk, Read, "Encounter", Some(&enc), None)
        else {
            panic!()
        };
        let shown = g.shown(enc.clone());
        assert!(
            shown.get("reasonCode").is_none() && shown.get("diagnosis").is_none(),
            "{shown}"
        );
        assert_eq!(shown["meta"]["security"][0]["code"], "REDACTED");
        let Decision::Allow(g) = decide(
            Role::Billing,
            Read,
            "Encounter",
            Some(
                &json!({"id": "e", "subject": {"reference": "Patient/in-queue"}, "reasonCode": []}),
            ),
            None,
        ) else {
            panic!()
        };
        assert!(g.shown(enc).get("reasonCode").is_some());
    }

    #[test]
    fn notes_are_written_and_signed_by_the_caller() {
        let draft = json!({"resourceType": "DocumentReference", "docStatus": "preliminary"});
        let Decision::Allow(g) = decide(
            Role::Resident,
            Create,
            "DocumentReference",
            None,
            Some(&draft),
        ) else {
            panic!()
        };
        let stored = g.stamped(draft.clone());
        assert_eq!(stored["author"][0]["reference"], "Practitioner/pr-resident");
        assert!(stored.get("authenticator").is_none());
        let mut fin = draft.clone();
        fin["docStatus"] = json!("final");
        assert!(!allowed(&decide(
            Role::Resident,
            Create,
            "DocumentReference",
            None,
            Some(&fin)
        )));
        let Decision::Allow(g) = decide(
            Role::Attending,
            Create,
            "DocumentReference",
            None,
            Some(&fin),
        ) else {
            panic!()
        };
        assert_eq!(
            g.stamped(fin.clone())["authenticator"]["reference"],
            "Practitioner/pr-attending"
        );
        let mut forged = fin.clone();
        forged["authenticator"] = json!({"reference": "Practitioner/pr-resident"});
        assert!(!allowed(&decide(
            Role::Attending,
            Create,
            "DocumentReference",
            None,
            Some(&forged)
        )));
        // Co-signing keeps the resident as author.
        let stored = json!({"resourceType": "DocumentReference", "id": "d", "docStatus": "preliminary",
            "author": [{"reference": "Practitioner/pr-resident"}]});
        let mut cosign = stored.clone();
        cosign["docStatus"] = json!("final");
        let Decision::Allow(g) = decide(
            Role::Attending,
            Update,
            "DocumentReference",
            Some(&stored),
            Some(&cosign),
        ) else {
            panic!()
        };
        let out = g.stamped(cosign);
        assert_eq!(out["author"][0]["reference"], "Practitioner/pr-resident");
        assert_eq!(
            out["authenticator"]["reference"],
            "Practitioner/pr-attending"
        );
    }
}
