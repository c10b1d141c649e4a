//! Minutes of work on a patient's message thread over 7 days, and the
//! online digital E/M code they support (CPT 99421 5–10 min, 99422 11–20,
//! 99423 21 or more).

/// `(code, label)` for the minutes, or `None` under 5.
pub fn cpt_for(minutes: u32) -> Option<(&'static str, &'static str)> {
    match minutes {
        0..=4 => None,
        5..=10 => Some(("99421", "Online digital E/M, 5–10 min")),
        11..=20 => Some(("99422", "Online digital E/M, 11–20 min")),
        _ => Some(("99423", "Online digital E/M, 21+ min")),
    }
}

#[cfg(test)]
mod tests {
    use super::cpt_for;

    #[test]
    fn boundaries() {
        assert_eq!(cpt_for(0), None);
        assert_eq!(cpt_for(4), None);
        assert_eq!(cpt_for(5).map(|c| c.0), Some("99421"));
        assert_eq!(cpt_for(10).map(|c| c.0), Some("99421"));
        assert_eq!(cpt_for(11).map(|c| c.0), Some("99422"));
        assert_eq!(cpt_for(20).map(|c| c.0), Some("99422"));
        assert_eq!(cpt_for(21).map(|c| c.0), Some("99423"));
        assert_eq!(cpt_for(u32::MAX).map(|c| c.0), Some("99423"));
        assert_eq!(
            cpt_for(21).map(|c| c.1),
            Some("Online digital E/M, 21+ min")
        );
    }
}
