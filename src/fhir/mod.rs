//! The part of HL7 FHIR R4 both halves share: code systems and conventions,
//! the typed model the client reads, and the sanitiser for untrusted text.
//!
//! The server stores and indexes resources as JSON (`serde_json::Value`) so it
//! keeps every field it was given; the client decodes only the fields it uses
//! into the typed structs of [`model`], keeping the rest in `extra`.

pub mod codes;
pub mod fold;
pub mod model;
pub mod sanitize;
pub mod status;
pub mod time;
pub mod units;
