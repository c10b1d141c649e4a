//! What a pane asks of the app ([`Command`]), and the replies the app hands
//! back to the pane they belong to ([`PaneReply`]). Panes never see the
//! network's types: the app translates.

use serde_json::Value;

use crate::chart::PatientRow;
use crate::fhir::model::{Observation, Task};
use crate::tui::matcher::Matches;
use crate::tui::panes::PaneId;

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
}
