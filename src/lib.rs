//! chartty: a keyboard-driven clinical charting TUI over HL7 FHIR R4, and the
//! portal server it ships with.
//!
//! The two halves share only `fhir` (the R4 model, codes and the sanitiser)
//! and `roles`. The server never imports the TUI, the TUI never imports the
//! server; `cli` wires them together for `chartty demo`.

pub mod api;
pub mod cli;
pub mod config;
pub mod fhir;
pub mod roles;
pub mod server;
pub mod tui;
