//! chartty: a keyboard-driven clinical charting TUI over HL7 FHIR R4, and the
//! portal server it ships with.
//!
//! Layers, each importing only those below it:
//!
//! - `fhir`, `roles`: the R4 model, codes, status rules, units, dates and the
//!   sanitiser; shared by both halves.
//! - `triage`: the routing engine (rules as data, SLA clocks, escalation,
//!   queue metrics); knows no storage and no network.
//! - `server`: the portal server (never imports the client).
//! - `chart`: a patient's chart as the client loaded it and how it reads.
//! - `api`: the client's only door to the network; fills `chart`.
//! - `notes`: note templates, their fields, data pulled from the chart,
//!   smart phrases.
//! - `config`: the client's settings.
//! - `keystore`: the OS credential stores (drafts key, refresh tokens).
//! - `drafts`: notes in progress kept on local disk, encrypted, crash-safe.
//! - `tui`: the terminal app; its panes never import `api`.
//! - `cli`: wires the halves together for `chartty demo`.
//!
//! A test (`tests/layers.rs`) fails when a module imports from a layer above it.

pub mod api;
pub mod chart;
pub mod cli;
pub mod config;
pub mod drafts;
pub mod fhir;
pub mod keystore;
pub mod notes;
pub mod roles;
pub mod server;
pub mod triage;
pub mod tui;
