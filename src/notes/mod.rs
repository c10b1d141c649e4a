//! Writing notes: templates, their fields, the data they pull from the open
//! chart, and smart phrases. Pure logic over `chart` and `fhir`; the editor
//! pane (in `tui`) and the write path (in `api`) use it.

pub mod document;
pub mod fields;
pub mod fill;
pub mod phrases;
pub mod template;

pub use fields::{DataLink, Field, FieldKind, PickList};
pub use fill::{Filled, NoteContext};
pub use phrases::Phrases;
pub use template::{Template, TemplateSet};

/// "Progress note (SOAP)" → "progress note (SOAP)", for the middle of a
/// sentence.
pub fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}
