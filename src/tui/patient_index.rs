//! The working set of patients and fuzzy matching over it.
//!
//! Each patient is one haystack, `name  birth date  MRN`, so `garc 1984`,
//! `00012345` and `smi jo` all work, every word having to match somewhere.
//! Typing one more character only narrows the previous matches (plus any
//! patients added since), which keeps a keystroke cheap at 100k patients.

use std::collections::HashMap;

use nucleo_matcher::pattern::{AtomKind, CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32String};

use crate::fhir::model::Patient;

/// Most rows a result list keeps ranked; more is never useful on a screen.
pub const MAX_RANKED: usize = 500;

#[derive(Debug, Clone, PartialEq)]
pub struct PatientRow {
    pub id: String,
    pub name: String,
    pub gender: String,
    pub birth_date: String,
    pub mrn: String,
}

impl PatientRow {
    pub fn from_patient(p: &Patient) -> Option<PatientRow> {
        Some(PatientRow {
            id: p.id.clone()?,
            name: p.display_name(),
            gender: p.gender.clone().unwrap_or_default(),
            birth_date: p.birth_date.clone().unwrap_or_default(),
            mrn: p.mrn().unwrap_or("").to_string(),
        })
    }

    fn haystack(&self) -> Utf32String {
        Utf32String::from(format!("{}  {}  {}", self.name, self.birth_date, self.mrn))
    }
}

pub struct PatientIndex {
    rows: Vec<PatientRow>,
    hay: Vec<Utf32String>,
    by_id: HashMap<String, usize>,
    matcher: Matcher,
    /// Query of the last match, and how many rows existed then.
    last: Option<(String, usize)>,
    /// Every row matching the last query (unordered): the candidates when the query grows.
    filtered: Vec<usize>,
    /// The best matches of the last query, best first.
    ranked: Vec<usize>,
}

impl Default for PatientIndex {
    fn default() -> Self {
        PatientIndex {
            rows: Vec::new(),
            hay: Vec::new(),
            by_id: HashMap::new(),
            matcher: Matcher::new(Config::DEFAULT),
            last: None,
            filtered: Vec::new(),
            ranked: Vec::new(),
        }
    }
}

impl PatientIndex {
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn row(&self, i: usize) -> Option<&PatientRow> {
        self.rows.get(i)
    }

    pub fn get(&self, id: &str) -> Option<&PatientRow> {
        self.by_id.get(id).and_then(|i| self.rows.get(*i))
    }

    /// Add or refresh a patient; returns whether it was new.
    pub fn upsert(&mut self, row: PatientRow) -> bool {
        if let Some(&i) = self.by_id.get(&row.id) {
            if self.rows[i] != row {
                self.hay[i] = row.haystack();
                self.rows[i] = row;
                // Changed text: the old match set may no longer hold.
                self.last = None;
            }
            false
        } else {
            self.by_id.insert(row.id.clone(), self.rows.len());
            self.hay.push(row.haystack());
            self.rows.push(row);
            true
        }
    }

    /// The ranked matches of the last [`PatientIndex::search`].
    pub fn ranked(&self) -> &[usize] {
        &self.ranked
    }

    /// Rank the working set for `query`; an empty query lists it in order.
    pub fn search(&mut self, query: &str) -> &[usize] {
        let query = query.trim_start();
        if query.trim().is_empty() {
            self.filtered = (0..self.rows.len()).collect();
            self.ranked = (0..self.rows.len().min(MAX_RANKED)).collect();
            self.last = Some((String::new(), self.rows.len()));
            return &self.ranked;
        }
        let pattern = Pattern::new(
            query,
            CaseMatching::Ignore,
            Normalization::Smart,
            AtomKind::Fuzzy,
        );
        let narrowing = match &self.last {
            Some((q, n)) if !q.is_empty() && query.starts_with(q.as_str()) => Some(*n),
            _ => None,
        };
        let mut scored: Vec<(u32, usize)> = Vec::new();
        let mut score = |i: usize, matcher: &mut Matcher, hay: &[Utf32String]| {
            if let Some(s) = pattern.score(hay[i].slice(..), matcher) {
                scored.push((s, i));
            }
        };
        match narrowing {
            Some(n) => {
                for &i in &self.filtered {
                    score(i, &mut self.matcher, &self.hay);
                }
                for i in n..self.rows.len() {
                    score(i, &mut self.matcher, &self.hay);
                }
            }
            None => {
                for i in 0..self.rows.len() {
                    score(i, &mut self.matcher, &self.hay);
                }
            }
        }
        self.filtered = scored.iter().map(|&(_, i)| i).collect();
        self.filtered.sort_unstable();
        // Best score first; equal scores keep working-set order.
        let order = |a: &(u32, usize), b: &(u32, usize)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        if scored.len() > MAX_RANKED {
            scored.select_nth_unstable_by(MAX_RANKED, order);
            scored.truncate(MAX_RANKED);
        }
        scored.sort_unstable_by(order);
        self.ranked = scored.into_iter().map(|(_, i)| i).collect();
        self.last = Some((query.to_string(), self.rows.len()));
        &self.ranked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str, dob: &str, mrn: &str) -> PatientRow {
        PatientRow {
            id: id.into(),
            name: name.into(),
            gender: "female".into(),
            birth_date: dob.into(),
            mrn: mrn.into(),
        }
    }

    fn index() -> PatientIndex {
        let mut ix = PatientIndex::default();
        ix.upsert(row("1", "García, Ana", "1984-03-02", "00012345"));
        ix.upsert(row("2", "Smith, John", "1950-01-01", "00000001"));
        ix.upsert(row("3", "García, Ana", "1991-07-12", "00077777"));
        ix.upsert(row("4", "Smithers, Joanna", "1984-05-05", "00000002"));
        ix
    }

    fn ids(ix: &PatientIndex) -> Vec<&str> {
        ix.ranked()
            .iter()
            .filter_map(|&i| ix.row(i).map(|r| r.id.as_str()))
            .collect()
    }

    #[test]
    fn matches_name_date_and_mrn_together() {
        let mut ix = index();
        ix.search("garc 1984");
        assert_eq!(ids(&ix), vec!["1"]);
        ix.search("00012345");
        assert_eq!(ids(&ix), vec!["1"]);
        ix.search("smi jo");
        let mut got = ids(&ix);
        got.sort();
        assert_eq!(got, vec!["2", "4"]);
    }

    #[test]
    fn narrowing_sees_rows_added_in_between() {
        let mut ix = index();
        ix.search("garc");
        assert_eq!(ix.ranked().len(), 2);
        ix.upsert(row("5", "Garcia, Luis", "1984-09-09", "00055555"));
        ix.search("garci");
        let mut got = ids(&ix);
        got.sort();
        assert_eq!(got, vec!["1", "3", "5"]);
        ix.search("gar");
        assert_eq!(ix.ranked().len(), 3);
        ix.search("");
        assert_eq!(ix.ranked().len(), 5);
    }
}
