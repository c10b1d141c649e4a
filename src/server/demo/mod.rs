//! A deterministic, clinically coherent demo population.
//!
//! Each patient is generated from `(seed, index)` alone, so a population can be
//! streamed into the store patient by patient (100k patients never sit in
//! memory at once) and any one patient can be rebuilt on its own.
//!
//! The clinic is shaped like real data, so that a client that reads it
//! carelessly shows something wrong: every status a record can have
//! (results cancelled or entered in error, sometimes the newest of their
//! test; problems refuted or relapsing; allergies refuted or outgrown;
//! drugs on hold; notes superseded, drafted or filed on the wrong chart),
//! the same test in two units, values below an assay's limit (`<0.3`),
//! decimals whose trailing zeros matter (`5.0`, `2.50`), hundreds of
//! finger-stick glucose readings that bury the other labs, critical values
//! weeks old, notes in HTML, names with ø, ł, ı, ß, and a few records a
//! strict client cannot decode (see `history`, `results`, `notes`), and one
//! patient whose name, allergy and message attack the terminal (see
//! `hostile`). Each
//! of these draws from a random stream of its own: adding one leaves the
//! values drawn elsewhere, and so the rest of the clinic, as they were.

mod catalog;
mod history;
mod hostile;
mod json;
mod messages;
mod names;
mod notes;
mod patient;
mod results;
mod rng;
mod staff;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::roles::Role;

/// Size and seed of a demo population; the same options give the same clinic.
#[derive(Debug, Clone, Copy)]
pub struct DemoOptions {
    pub patients: usize,
    pub seed: u64,
    /// The clinic's "now": histories end here, due times cluster around it.
    pub anchor: DateTime<Utc>,
}

impl DemoOptions {
    pub fn new(patients: usize, seed: u64) -> Self {
        DemoOptions {
            patients,
            seed,
            anchor: Utc::now(),
        }
    }
}

/// A member of the demo staff; the server gives each a bearer token per start.
#[derive(Debug, Clone)]
pub struct DemoStaff {
    pub role: Role,
    pub name: String,
    /// Id of this person's `Practitioner` in [`shared_resources`].
    pub practitioner_id: String,
}

/// One demo user per role.
pub fn staff() -> Vec<DemoStaff> {
    staff::MEMBERS
        .iter()
        .map(|m| DemoStaff {
            role: m.role,
            name: m.full_name(),
            practitioner_id: staff::practitioner_id(m.role),
        })
        .collect()
}

/// Organization, Practitioners and PractitionerRoles the patients refer to.
pub fn shared_resources(opts: &DemoOptions) -> Vec<Value> {
    // The clinic is the same for every population; `opts` stays in the
    // signature so a larger clinic can scale its staff with the panel.
    let _ = opts;
    staff::resources()
}

/// Every resource of patient `index` (Patient first), ids assigned,
/// references as `Type/id`.
pub fn patient_resources(opts: &DemoOptions, index: usize) -> Vec<Value> {
    patient::build(opts, index)
}

/// The `Patient` resource of patient `index` alone, exactly as it opens
/// [`patient_resources`], without building the rest of the chart (for
/// populations where only demographics are needed, such as search at scale).
pub fn patient(opts: &DemoOptions, index: usize) -> Value {
    patient::build_patient(opts, index)
}

/// What finds the hostile patient in a name search (its family name starts so).
pub const HOSTILE_PATIENT_SEARCH: &str = hostile::FAMILY_PREFIX;

/// The patient whose record carries text that attacks a terminal (escape
/// sequences, a clipboard write, bidi overrides, C1 and zero-width
/// characters), Patient first. The same in every clinic of one patient or more.
pub fn hostile_patient_resources(opts: &DemoOptions) -> Vec<Value> {
    hostile::resources(opts.anchor)
}

/// The whole population: shared resources, then each patient in order, then
/// the hostile patient (last, so the others keep their places in the store).
pub fn generate(opts: DemoOptions) -> impl Iterator<Item = Value> {
    let hostile = if opts.patients > 0 {
        hostile_patient_resources(&opts)
    } else {
        Vec::new()
    };
    shared_resources(&opts)
        .into_iter()
        .chain((0..opts.patients).flat_map(move |i| patient_resources(&opts, i)))
        .chain(hostile)
}
