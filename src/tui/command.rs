//! What the app asks of the outside world and what comes back. Panes produce
//! [`Command`]s; the app turns the network ones into [`ApiRequest`]s with a
//! request id; `crate::api` answers each with an [`ApiReply`] or an [`ApiError`].

use std::time::Duration;

use crate::fhir::model::{
    AllergyIntolerance, Condition, DocumentReference, Encounter, MedicationRequest, Observation,
    Patient, Task,
};
use crate::roles::Role;
use crate::tui::panes::PaneId;

/// Identifies a request so its reply can be matched, and a stale one dropped.
pub type RequestId = u64;

/// What a pane's `update` asks the app to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Search the server for patients (the query as typed; the api layer
    /// chooses name / identifier / birthdate parameters).
    SearchPatients { query: String },
    /// Open a patient's chart (one round trip).
    OpenPatient { id: String },
    /// Show a pane.
    Focus(PaneId),
    /// Reload the role's queue.
    LoadQueue,
    /// Reload the open chart.
    ReloadChart,
}

/// A network request, as the api worker receives it.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiRequest {
    /// Portal extra `GET [base]/$whoami`; `None` reply where not offered.
    WhoAmI,
    /// First page of patients for the working set.
    PatientPage { count: u32 },
    /// Server-side patient search for a typed query.
    SearchPatients { query: String, count: u32 },
    /// Follow a `Bundle.link[next]` exactly as given.
    NextPage { url: String },
    /// Everything the chart shows, in one round trip.
    OpenChart { patient_id: String },
    /// Open tasks in a role's queue.
    RoleQueue { role: Role, count: u32 },
    /// `GET [base]/metadata` while the link is down: is the server back?
    Probe,
}

/// Who the server says we are (portal `$whoami`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WhoAmI {
    pub user: Option<String>,
    pub role: Option<Role>,
    pub practitioner: Option<String>,
}

/// One part of a chart: what the server returned, or why it did not.
pub type Section<T> = Result<Vec<T>, String>;

/// A chart as loaded in one round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartData {
    pub patient: Patient,
    pub allergies: Section<AllergyIntolerance>,
    pub conditions: Section<Condition>,
    pub medications: Section<MedicationRequest>,
    pub vitals: Section<Observation>,
    pub labs: Section<Observation>,
    pub encounters: Section<Encounter>,
    pub notes: Section<DocumentReference>,
    pub tasks: Section<Task>,
    /// Resources in the replies that belonged to other patients (a server
    /// that ignored `patient=`): left out of the chart, counted to say so.
    pub other_patients_ignored: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiReply {
    /// `None`: the server does not offer `$whoami` (a plain FHIR server).
    WhoAmI(Option<WhoAmI>),
    /// A page of patients (working set, search, or a next page of either).
    Patients {
        patients: Vec<Patient>,
        next: Option<String>,
    },
    Chart(Box<ChartData>),
    Queue {
        tasks: Vec<Task>,
        /// Patients the server included with the tasks (`_include=Task:patient`).
        patients: Vec<Patient>,
        next: Option<String>,
    },
    /// The server answered a probe (with any HTTP status).
    Reachable,
}

/// A failed request, with a message fit to show (already sanitised).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status, or `None` when the server was not reached.
    pub status: Option<u16>,
    pub message: String,
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
