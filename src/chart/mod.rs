//! A patient's chart as the client loaded it, and how it reads: the layer
//! between the network (`crate::api` fills it) and the screen (`crate::tui`
//! shows it). It knows FHIR (`crate::fhir`) and nothing of either side.
//!
//! A section never pretends to be complete: it carries the records it could
//! read, the ones it could not (kept raw, to be shown on request), whether the
//! server had more than it sent, and why it could not be read at all.

pub mod allergies;
pub mod note_text;
pub mod patient_row;
pub mod query;
pub mod results;
pub mod timefmt;

use serde_json::Value;

use crate::fhir::model::{
    AllergyIntolerance, Condition, DocumentReference, Encounter, MedicationRequest, Observation,
    Patient, Task,
};

pub use patient_row::{PatientRow, RecordNumber, same_name};

/// A record of a section that could not be decoded: counted and shown
/// where it would have been, its sanitised JSON kept for the raw view.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreadable {
    pub raw: Value,
    /// What was wrong with it, for the raw view.
    pub why: String,
}

/// One part of a chart: what the server returned, or why it did not.
#[derive(Debug, Clone, PartialEq)]
pub struct Section<T> {
    pub items: Vec<T>,
    pub unreadable: Vec<Unreadable>,
    /// The server had more than it sent (its reply had a `next` link).
    pub more_on_server: bool,
    /// Why nothing could be read (refused, failed, not offered).
    pub failed: Option<String>,
}

impl<T> Default for Section<T> {
    fn default() -> Self {
        Section {
            items: Vec::new(),
            unreadable: Vec::new(),
            more_on_server: false,
            failed: None,
        }
    }
}

impl<T> Section<T> {
    pub fn loaded(items: Vec<T>) -> Section<T> {
        Section {
            items,
            ..Section::default()
        }
    }

    pub fn failed(why: impl Into<String>) -> Section<T> {
        Section {
            failed: Some(why.into()),
            ..Section::default()
        }
    }

    /// Read in full: no failure, nothing unreadable, nothing left on the server.
    pub fn is_complete(&self) -> bool {
        self.failed.is_none() && self.unreadable.is_empty() && !self.more_on_server
    }

    /// Whether what is listed can be taken as everything there is for an
    /// empty-list statement ("No allergies recorded").
    pub fn is_empty_and_complete(&self) -> bool {
        self.items.is_empty() && self.is_complete()
    }
}

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
    /// How results were fetched, which says how complete their history is.
    pub results_fetch: ResultsFetch,
    /// Other patients with the same name (a wrong-chart risk), as the server
    /// listed them; empty when none or when the server could not say.
    pub same_name: Vec<PatientRow>,
    /// Resources in the replies that belonged to other patients (a server
    /// that ignored `patient=`): left out of the chart, counted to say so.
    pub other_patients_ignored: usize,
}

impl ChartData {
    /// A chart with every section empty and complete (tests, fixtures).
    pub fn empty(patient: Patient) -> ChartData {
        ChartData {
            patient,
            allergies: Section::default(),
            conditions: Section::default(),
            medications: Section::default(),
            vitals: Section::default(),
            labs: Section::default(),
            encounters: Section::default(),
            notes: Section::default(),
            tasks: Section::default(),
            results_fetch: ResultsFetch::LastN(results::LASTN_MAX),
            same_name: Vec::new(),
            other_patients_ignored: 0,
        }
    }

    /// Raw JSON of every record that could not be read, with its section.
    pub fn unreadable(&self) -> Vec<(&'static str, &Unreadable)> {
        let mut out = Vec::new();
        macro_rules! each {
            ($($field:ident: $label:literal),+) => {
                $(out.extend(self.$field.unreadable.iter().map(|u| ($label, u)));)+
            };
        }
        each!(allergies: "allergy", conditions: "problem", medications: "medication",
            vitals: "vital sign", labs: "lab result", encounters: "encounter",
            notes: "note", tasks: "task");
        out
    }
}

/// How the results of a chart were asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultsFetch {
    /// `Observation/$lastn`: the newest `n` values of every test.
    LastN(u32),
    /// The newest results up to a count, plus the latest of each key test
    /// on its own (a server without `$lastn`).
    Window,
}

/// `1 allergy record could not be read`, `3 lab result records …`.
pub fn unreadable_line(count: usize, what: &str) -> String {
    let records = if count == 1 { "record" } else { "records" };
    format!("{count} {what} {records} could not be read — v shows it raw")
}
