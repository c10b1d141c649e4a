//! What the allergy banner may say. It is the one line every clinician reads
//! before ordering, so it never says "No allergies recorded" (or NKA) unless
//! the read succeeded and every record in it was read.

use crate::chart::Section;
use crate::fhir::model::AllergyIntolerance;
use crate::fhir::status::{self, Verdict};

/// SNOMED CT codes that record the absence of allergies, with the words a
/// chart uses for them. Only these mean "no known allergies": an empty list
/// means none were recorded.
pub const NO_KNOWN_ALLERGY_CODES: [(&str, &str); 4] = [
    ("716186003", "No known allergies"),
    ("409137002", "No known drug allergies"),
    ("429625007", "No known food allergies"),
    ("428607008", "No known environmental allergies"),
];

/// The wording of a recorded "no known allergy" statement, if this is one.
pub fn no_known_allergy(a: &AllergyIntolerance) -> Option<&'static str> {
    let code = a.code.as_ref()?;
    NO_KNOWN_ALLERGY_CODES.iter().find_map(|(c, label)| {
        code.coding
            .iter()
            .any(|x| {
                x.code.as_deref() == Some(*c)
                    && x.system
                        .as_deref()
                        .is_none_or(|s| s == crate::fhir::codes::SNOMED)
            })
            .then_some(*label)
    })
}

/// Wording for an allergy list that was read in full and holds nothing.
pub const NO_ALLERGIES_RECORDED: &str = "No allergies recorded";

/// One allergy as the banner and the summary list it.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed<'a> {
    pub allergy: &'a AllergyIntolerance,
    pub name: String,
    pub high: bool,
    /// `unconfirmed`, `presumed`.
    pub mark: Option<&'static str>,
}

impl Listed<'_> {
    /// `Penicillin (high)`, `Latex (unconfirmed)`.
    pub fn short(&self) -> String {
        let mut s = self.name.clone();
        if self.high {
            s.push_str(" (high)");
        }
        if let Some(m) = self.mark {
            s.push_str(&format!(" ({m})"));
        }
        s
    }
}

/// What the banner says, first word first.
#[derive(Debug, Clone, PartialEq)]
pub enum Headline<'a> {
    /// The read failed or was refused: nothing is known.
    NotAvailable(&'a str),
    /// Allergies to show (high criticality first).
    Listed(Vec<Listed<'a>>),
    /// Nothing listed, but not everything could be read: unknown, not none.
    Unknown,
    /// Only statements that there are no known allergies (their wording).
    NoKnown(Vec<&'static str>),
    /// Read in full, nothing (active) recorded.
    NoneRecorded,
}

/// The allergy section as the banner and the summary read it.
#[derive(Debug, Clone, PartialEq)]
pub struct AllergyView<'a> {
    pub headline: Headline<'a>,
    /// Left out, with why (entered in error, refuted, resolved, inactive).
    pub left_out: Vec<(&'a AllergyIntolerance, &'static str)>,
    pub unreadable: usize,
    /// The server had more than it sent.
    pub cut: bool,
}

pub fn view(section: &Section<AllergyIntolerance>) -> AllergyView<'_> {
    if let Some(e) = &section.failed {
        return AllergyView {
            headline: Headline::NotAvailable(e),
            left_out: Vec::new(),
            unreadable: 0,
            cut: false,
        };
    }
    let mut listed = Vec::new();
    let mut no_known = Vec::new();
    let mut left_out = Vec::new();
    for a in &section.items {
        match status::allergy(a) {
            Verdict::Hide(why) => left_out.push((a, why)),
            verdict => match no_known_allergy(a) {
                Some(words) => no_known.push(words),
                None => listed.push(Listed {
                    allergy: a,
                    name: a
                        .code
                        .as_ref()
                        .and_then(|c| c.label())
                        .unwrap_or("(unnamed allergy)")
                        .to_string(),
                    high: a.criticality.as_deref() == Some("high"),
                    mark: verdict.mark(),
                }),
            },
        }
    }
    // High criticality first; otherwise as the server listed them.
    listed.sort_by_key(|l| !l.high);
    no_known.dedup();
    let incomplete = !section.unreadable.is_empty() || section.more_on_server;
    let headline = if !listed.is_empty() {
        Headline::Listed(listed)
    } else if incomplete {
        Headline::Unknown
    } else if !no_known.is_empty() {
        Headline::NoKnown(no_known)
    } else {
        Headline::NoneRecorded
    };
    AllergyView {
        headline,
        left_out,
        unreadable: section.unreadable.len(),
        cut: section.more_on_server,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::Unreadable;
    use crate::fhir::codes::SNOMED;
    use serde_json::json;

    fn allergy(v: serde_json::Value) -> AllergyIntolerance {
        serde_json::from_value(v).unwrap()
    }

    fn coded(system: &str, code: &str, text: &str) -> AllergyIntolerance {
        allergy(json!({"code": {"coding": [{"system": system, "code": code}], "text": text}}))
    }

    #[test]
    fn an_empty_list_is_not_no_known_allergies() {
        let empty = Section::loaded(vec![]);
        assert_eq!(view(&empty).headline, Headline::NoneRecorded);
        let nka = Section::loaded(vec![coded(SNOMED, "716186003", "NKA")]);
        assert_eq!(
            view(&nka).headline,
            Headline::NoKnown(vec!["No known allergies"])
        );
        // The same code in another system is not a "no known allergy" statement.
        let other = Section::loaded(vec![coded("urn:local", "716186003", "Something")]);
        assert!(matches!(view(&other).headline, Headline::Listed(l) if l.len() == 1));
        let both = Section::loaded(vec![
            coded(SNOMED, "409137002", "NKDA"),
            coded(SNOMED, "91935009", "Peanut"),
        ]);
        match view(&both).headline {
            Headline::Listed(l) => assert_eq!(l[0].name, "Peanut"),
            h => panic!("a real allergy is listed: {h:?}"),
        }
    }

    #[test]
    fn never_none_while_anything_failed_to_decode_or_was_cut() {
        let mut s: Section<AllergyIntolerance> = Section::loaded(vec![]);
        s.unreadable.push(Unreadable {
            raw: json!({"resourceType": "AllergyIntolerance", "code": "penicillin"}),
            why: "invalid type".into(),
        });
        assert_eq!(view(&s).headline, Headline::Unknown);
        assert_eq!(view(&s).unreadable, 1);
        s.items.push(coded(SNOMED, "716186003", "NKA"));
        assert_eq!(view(&s).headline, Headline::Unknown, "not NKA either");
        let mut cut: Section<AllergyIntolerance> = Section::loaded(vec![]);
        cut.more_on_server = true;
        assert_eq!(view(&cut).headline, Headline::Unknown);
        let failed: Section<AllergyIntolerance> = Section::failed("HTTP 403: refused");
        assert_eq!(
            view(&failed).headline,
            Headline::NotAvailable("HTTP 403: refused")
        );
    }

    #[test]
    fn status_decides_who_is_in_the_banner() {
        let s = Section::loaded(vec![
            allergy(json!({"code": {"text": "Sulfa"},
                "verificationStatus": {"coding": [{"code": "entered-in-error"}]}})),
            allergy(json!({"code": {"text": "Codeine"},
                "verificationStatus": {"coding": [{"code": "refuted"}]}})),
            allergy(json!({"code": {"text": "Latex"},
                "clinicalStatus": {"coding": [{"code": "resolved"}]}})),
            allergy(json!({"code": {"text": "Shellfish"},
                "verificationStatus": {"coding": [{"code": "unconfirmed"}]}})),
            allergy(json!({"code": {"text": "Penicillin"}, "criticality": "high"})),
        ]);
        let v = view(&s);
        let Headline::Listed(listed) = &v.headline else {
            panic!("{:?}", v.headline)
        };
        let shown: Vec<String> = listed.iter().map(Listed::short).collect();
        assert_eq!(shown, ["Penicillin (high)", "Shellfish (unconfirmed)"]);
        let why: Vec<&str> = v.left_out.iter().map(|(_, w)| *w).collect();
        assert_eq!(why, ["entered in error", "refuted", "resolved"]);
        // Only left-out ones: none active, said as such.
        let only_resolved = Section::loaded(vec![allergy(json!({"code": {"text": "Latex"},
            "clinicalStatus": {"coding": [{"code": "resolved"}]}}))]);
        let v = view(&only_resolved);
        assert_eq!(v.headline, Headline::NoneRecorded);
        assert_eq!(v.left_out.len(), 1);
    }
}
