//! What a pane asks of the app ([`Command`]), and the replies the app hands
//! back to the pane they belong to ([`PaneReply`]). Panes never see the
//! network's types: the app translates.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::chart::PatientRow;
use crate::fhir::model::{Observation, Task};
use crate::notes::document::NoteState;
use crate::tui::action::Action;
use crate::tui::matcher::Matches;
use crate::tui::panes::PaneId;

/// A note as the editor holds it, for saving, signing and writing.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NoteSnapshot {
    pub patient_id: String,
    pub patient_label: String,
    pub template: String,
    pub title: String,
    pub loinc: String,
    pub loinc_display: String,
    pub client_id: String,
    pub server_id: Option<String>,
    pub server_version: Option<String>,
    /// An addendum's note (`DocumentReference/<id>`).
    pub appends: Option<String>,
    pub text: String,
    pub state: NoteState,
}

/// What a pane's `update` asks the app to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// The query typed in the search box changed: match the working set and
    /// (debounced) search the server.
    SearchPatients { query: String },
    /// Send a debounced server search now (Enter on a pending search).
    FlushSearch,
    /// Open a patient's chart (one round trip); `name` as listed.
    OpenPatient { id: String, name: String },
    /// Show a pane.
    Focus(PaneId),
    /// Reload the role's queue.
    LoadQueue,
    /// Reload the open chart.
    ReloadChart,
    /// Fetch every value of one test (`system|code`) of the open patient.
    LoadHistory { code: String },
    /// Show records raw: a heading and the sanitised JSON of each.
    ShowRaw {
        title: String,
        items: Vec<(String, Value)>,
    },
    /// A line for the message bar.
    Notify(String),
    /// Ask a yes/no question; yes runs `yes` in the pane that asked.
    Confirm { question: String, yes: Action },
    /// Choose a template for a new note for the open chart.
    PickTemplate,
    /// Start a note from a template (`appends`: an addendum to that note).
    StartNote {
        template: String,
        appends: Option<String>,
    },
    /// Go on writing a draft the server holds (an own unsigned note).
    ResumeNote { document: Value },
    /// Save a draft here (and, `to_server`, on the server).
    SaveDraft { note: NoteSnapshot, to_server: bool },
    /// Sign a note (or, for a resident, send it for co-signature).
    SignNote(NoteSnapshot),
    /// Co-sign the note a co-signature task points at, and close the task.
    CoSign { task: Value },
    /// Change queue items, each from the version it was read at; `what`
    /// says the change for the message bar ("Claimed").
    UpdateTasks {
        what: String,
        changes: Vec<TaskChange>,
    },
    /// Answer patients: each message is sent (a conditional create), then
    /// recorded on its task (a versioned update).
    ReplyTasks { replies: Vec<TaskReply> },
    /// Read a patient's messages for the message view.
    LoadThread { patient_id: String },
    /// Record time on a patient's messages for billing: a task for the
    /// billing queue, created once per `client_id`; `label` for the
    /// message bar.
    RecordBilling {
        task: Value,
        client_id: String,
        label: String,
    },
    /// Ask for one answer from a list (the answer comes back to the pane).
    Pick(crate::tui::popups::PickerSpec),
}

/// One task changed as the pane made it, with the version it was read at.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TaskChange {
    pub task_id: String,
    /// Who it is about, for the message bar.
    pub label: String,
    pub resource: Value,
    pub version: Option<String>,
}

/// A reply to a patient and the task it answers.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskReply {
    pub communication: Value,
    /// The task as it will be recorded; the sent message is added to its
    /// `output` once the server has it.
    pub task: TaskChange,
}

/// A reply for one pane.
#[derive(Debug, Clone, PartialEq)]
pub enum PaneReply {
    /// The matcher ranked the working set (search pane).
    Matched(Matches),
    /// The server's search for `query` finished (search pane).
    ServerSearch {
        query: String,
        result: Result<usize, String>,
    },
    /// The role queue, a first page or a further one (tasks pane).
    Queue {
        tasks: Vec<Task>,
        patients: Vec<PatientRow>,
        append: bool,
    },
    QueueFailed(String),
    /// Every value of a test (results pane).
    History {
        code: String,
        result: Result<(Vec<Observation>, bool), String>,
    },
    /// A draft was saved here (`local`) and/or on the server (id, version).
    DraftSaved {
        client_id: String,
        local: Option<DateTime<Utc>>,
        server: Option<(String, Option<String>)>,
    },
    DraftNotSaved {
        client_id: String,
        why: String,
        /// Worth trying again by itself (not a version conflict).
        retry: bool,
    },
    NoteSigned {
        client_id: String,
    },
    NoteNotSigned {
        client_id: String,
        why: String,
    },
    /// A task as the server now holds it (after a write, or read again
    /// after a version conflict).
    TaskNow(Value),
    /// A patient's messages, oldest first (tasks pane).
    Thread {
        patient_id: String,
        result: Result<(Vec<Value>, bool), String>,
    },
    /// An answer picked in a popup.
    Picked(crate::tui::popups::PickFor, crate::tui::popups::Pick),
}
