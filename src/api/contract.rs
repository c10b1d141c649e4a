//! What the app asks of the network and what comes back. The app turns its
//! commands into [`ApiRequest`]s with a request id; the worker answers each
//! with an [`ApiReply`] or an [`ApiError`] in a [`Completed`].

use std::time::Duration;

use serde_json::Value;

use crate::chart::{ChartData, PatientRow};
use crate::fhir::model::{Observation, Patient, Task};
use crate::roles::Role;

/// Identifies a request so its reply can be matched, and a stale one dropped.
pub type RequestId = u64;

/// A network request, as the api worker receives it.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiRequest {
    /// Portal extra `GET [base]/$whoami`; `None` reply where not offered.
    WhoAmI,
    /// `GET [base]/metadata`: which optional features the server offers.
    Capabilities,
    /// First page of patients for the working set, with the clinic's total
    /// where the server will count it.
    PatientPage { count: u32 },
    /// Server-side patient search: standard `Patient` parameters made from
    /// what was typed ([`crate::chart::query::server_params`]).
    SearchPatients {
        params: Vec<(String, String)>,
        count: u32,
    },
    /// Follow a `Bundle.link[next]` exactly as given.
    NextPage { url: String },
    /// Everything the chart shows, in one round trip.
    OpenChart {
        patient_id: String,
        /// The name as listed (`Family, Given`), to look for other patients
        /// of the same name; `None` when not known.
        name: Option<String>,
        features: Features,
    },
    /// Every value of one test of a patient (the results history view).
    TestHistory {
        patient_id: String,
        /// `system|code` of the test.
        code: String,
    },
    /// Open tasks in the queues a role works ([`Role::queues`]).
    RoleQueue { role: Role, count: u32 },
    /// One task as the server holds it now (after a version conflict).
    ReadTask { id: String },
    /// A patient's messages (`Communication`), oldest first, for the
    /// message view of a queue item.
    Thread { patient_id: String },
    /// chartty's portal extra `GET Task/$queue-stats?period=…`.
    QueueStats { period: String },
    /// Every task of a patient (`Task?patient=`), for the time spent on
    /// the patient's messages.
    PatientTasks { patient_id: String },
    /// `GET [base]/metadata` while the link is down: is the server back?
    Probe,
    /// A change to the record, through the one write path.
    Write(Write),
    /// One resource as the server holds it now (`Type/id`), to show beside
    /// a change of ours that conflicts with it.
    ReadResource { path: String },
    /// Co-sign the note a co-signature task points at (read it, write it
    /// final with the version read), then close the task.
    CoSign { task: Value },
    /// Drop every token from memory (the screen locked). `login`: who the
    /// server said is signed in, for unlocking a session with a fixed token.
    Lock { login: Option<String> },
    /// Unlock with the token the session started with.
    UnlockWithToken { token: Secret },
    /// Start the device sign-in that unlocks (a code to show).
    UnlockStart,
    /// Unlock a session that had no token at all (a server that asks for
    /// no sign-in).
    UnlockOpen,
    /// Wait for that sign-in; unlocks only for the same person.
    UnlockWait {
        start: crate::api::signin::DeviceStart,
    },
}

/// Text that must never show in a log or a debug print.
#[derive(Clone, PartialEq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Which requests a newer one makes pointless: the older one is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Search,
    Chart,
    History,
    Queue,
    Thread,
    PatientTasks,
}

impl ApiRequest {
    /// The slot a request occupies; a newer request in the same slot
    /// supersedes (and cancels) an older one. Writes never do.
    pub fn slot(&self) -> Option<Slot> {
        match self {
            ApiRequest::SearchPatients { .. } => Some(Slot::Search),
            ApiRequest::OpenChart { .. } => Some(Slot::Chart),
            ApiRequest::TestHistory { .. } => Some(Slot::History),
            ApiRequest::RoleQueue { .. } => Some(Slot::Queue),
            ApiRequest::Thread { .. } => Some(Slot::Thread),
            ApiRequest::PatientTasks { .. } => Some(Slot::PatientTasks),
            _ => None,
        }
    }

    /// A label for logs that carries no patient data.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiRequest::WhoAmI => "whoami",
            ApiRequest::Capabilities => "capabilities",
            ApiRequest::PatientPage { .. } => "patient-page",
            ApiRequest::SearchPatients { .. } => "patient-search",
            ApiRequest::NextPage { .. } => "next-page",
            ApiRequest::OpenChart { .. } => "open-chart",
            ApiRequest::TestHistory { .. } => "test-history",
            ApiRequest::RoleQueue { .. } => "role-queue",
            ApiRequest::ReadTask { .. } => "read-task",
            ApiRequest::Thread { .. } => "thread",
            ApiRequest::QueueStats { .. } => "queue-stats",
            ApiRequest::PatientTasks { .. } => "patient-tasks",
            ApiRequest::Probe => "probe",
            ApiRequest::Write(_) => "write",
            ApiRequest::ReadResource { .. } => "read-resource",
            ApiRequest::CoSign { .. } => "co-sign",
            ApiRequest::Lock { .. } => "lock",
            ApiRequest::UnlockWithToken { .. } => "unlock-token",
            ApiRequest::UnlockStart => "unlock-start",
            ApiRequest::UnlockOpen => "unlock-open",
            ApiRequest::UnlockWait { .. } => "unlock-wait",
        }
    }
}

/// Optional server features the client uses when offered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// `Observation/$lastn`: the newest values of every test in one search.
    pub lastn: bool,
    /// Conditional create (`If-None-Exist`) on the resources chartty
    /// writes; elsewhere a create searches for its identifier first.
    pub conditional_create: bool,
}

/// A write. Creates carry an identifier the client made, so a retry after
/// an ambiguous failure finds the first copy instead of making a second;
/// updates carry the version read, so a stale writer never overwrites.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Write {
    Create {
        /// A whole resource with `resourceType`.
        resource: Value,
        /// Unique per intended write (a UUID); stored as an identifier in
        /// [`crate::fhir::codes::CLIENT_ID_SYSTEM`].
        client_id: String,
        /// The server offers conditional create; else search, then create.
        conditional: bool,
        /// A copy an earlier try of this write left on the server is
        /// brought up to this content with a versioned update (a note's
        /// draft: the newest text wins); else it is kept as found (a task
        /// someone may have acted on since).
        replace_existing: bool,
    },
    Update {
        /// A whole resource with `resourceType` and `id`.
        resource: Value,
        /// `meta.versionId` of the version this change was made from.
        version: String,
    },
}

/// Who the server says we are (portal `$whoami`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WhoAmI {
    pub user: Option<String>,
    /// The login name (the portal's; the `sub` of its sign-in).
    pub login: Option<String>,
    pub role: Option<Role>,
    pub practitioner: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiReply {
    /// `None`: the server does not offer `$whoami` (a plain FHIR server).
    WhoAmI(Option<WhoAmI>),
    Capabilities(Features),
    /// Every token is out of memory.
    Locked,
    /// Show this code and address; then wait with `UnlockWait`.
    UnlockCode(crate::api::signin::DeviceStart),
    /// Signed in again as the same person (named where the server said).
    Unlocked {
        who: Option<String>,
    },
    /// A page of patients (working set, search, or a next page of either),
    /// as compact list entries: the working set never holds whole resources.
    Patients {
        patients: Vec<PatientRow>,
        next: Option<String>,
        /// The number of matches in all, where the server said.
        total: Option<u64>,
    },
    Chart(Box<ChartData>),
    History {
        values: Vec<Observation>,
        /// The server had more than one page.
        more_on_server: bool,
    },
    Queue {
        tasks: Vec<Task>,
        /// Patients the server included with the tasks (`_include=Task:patient`).
        patients: Vec<Patient>,
        next: Option<String>,
    },
    /// One resource as the server holds it (sanitised JSON).
    Resource(Value),
    /// A patient's messages, oldest first (sanitised JSON); `more`: the
    /// server had more than one page.
    Thread {
        messages: Vec<Value>,
        more: bool,
    },
    /// Queue figures over a period.
    QueueStats(Box<crate::triage::stats::QueueStats>),
    /// Resources as the server holds them (sanitised JSON); `more`: the
    /// server had more than one page.
    Resources {
        resources: Vec<Value>,
        more: bool,
    },
    /// The server answered a probe (with any HTTP status).
    Reachable,
    /// A write went through: the resource as stored, and its new version.
    Written {
        resource: Value,
        version: Option<String>,
    },
}

/// A failed request, with a message fit to show (already sanitised).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status, or `None` when the server was not reached.
    pub status: Option<u16>,
    pub message: String,
    /// The server no longer takes the sign-in and it could not be renewed:
    /// the user must sign in again (the app locks and offers that).
    pub signed_out: bool,
    /// No answer came (no connection, a timeout, a connection dropped
    /// mid-exchange): the link is down, and a write may or may not have
    /// reached the server.
    pub no_answer: bool,
}

impl ApiError {
    pub fn local(message: impl Into<String>) -> ApiError {
        ApiError {
            status: None,
            message: message.into(),
            signed_out: false,
            no_answer: false,
        }
    }

    /// The server did not answer (see [`ApiError::no_answer`]).
    pub fn no_answer(message: impl Into<String>) -> ApiError {
        ApiError {
            no_answer: true,
            ..ApiError::local(message)
        }
    }

    pub fn signed_out() -> ApiError {
        ApiError {
            status: Some(401),
            message: "the sign-in has ended: sign in again".into(),
            signed_out: true,
            no_answer: false,
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.status {
            Some(s) => write!(f, "HTTP {s}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A finished request as the app receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    pub id: RequestId,
    pub result: Result<ApiReply, ApiError>,
    pub latency: Duration,
}
