//! Minutes of work on a patient's message thread over 7 days, and the
//! online digital E/M code they support (CPT 99421 5–10 min, 99422 11–20,
//! 99423 21 or more).

/// `(code, label)` for the minutes, or `None` under 5.
pub fn cpt_for(minutes: u32) -> Option<(&'static str, &'static str)> {
    let _ = minutes;
    todo!("triage::time_count::cpt_for")
}
