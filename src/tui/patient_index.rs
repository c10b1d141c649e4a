//! The working set of patients and fuzzy matching over it.
//!
//! Each patient is one haystack, `name  birth date  MRN`, so `garc 1984`,
//! `00012345` and `smi jo` all work, every word having to match somewhere.
//! Typing one more character only narrows the previous matches (plus any
//! patients added since), which keeps a keystroke cheap at 100k patients.

use std::collections::HashMap;

use nucleo_matcher::chars::{normalize, to_lower_case};
use nucleo_matcher::pattern::{Atom, AtomKind, CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32String};

use crate::fhir::model::Patient;

/// Most rows a result list keeps ranked; more is never useful on a screen.
pub const MAX_RANKED: usize = 500;
/// Below this many candidates one thread scores faster than several.
const PARALLEL_FROM: usize = 8_192;
/// Threads used to score a large candidate set.
const MAX_THREADS: usize = 4;

/// Letters and digits present (after the matcher's case folding and
/// normalisation): a row lacking any of the query's cannot match it.
fn char_mask(s: &str) -> u64 {
    s.chars().fold(0, |m, c| {
        let c = to_lower_case(normalize(c));
        match c {
            'a'..='z' => m | 1 << (c as u32 - 'a' as u32),
            '0'..='9' => m | 1 << (26 + c as u32 - '0' as u32),
            _ => m,
        }
    })
}

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

    fn haystack(&self) -> String {
        // The trailing space: nucleo-matcher 0.3 misses a substring that ends
        // at the last character of a non-ASCII haystack (an MRN after "García").
        format!("{}  {}  {} ", self.name, self.birth_date, self.mrn)
    }
}

/// Numbers (MRNs, birth dates) are typed whole: their words match as
/// substrings. Other words match fuzzily.
fn is_number_word(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_digit())
        && word
            .chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == '/')
}

fn pattern(query: &str) -> Pattern {
    let atoms = query
        .split_whitespace()
        .map(|w| {
            let kind = if is_number_word(w) {
                AtomKind::Substring
            } else {
                AtomKind::Fuzzy
            };
            Atom::new(w, CaseMatching::Ignore, Normalization::Smart, kind, false)
        })
        .collect();
    let mut pattern = Pattern::new(
        "",
        CaseMatching::Ignore,
        Normalization::Smart,
        AtomKind::Fuzzy,
    );
    pattern.atoms = atoms;
    pattern
}

/// Whether every row matching `new` also matches `old`, so matching `new`
/// may start from `old`'s matches: `new` extends `old` and no word changed kind.
fn narrows(old: &str, new: &str) -> bool {
    new.starts_with(old)
        && old
            .split_whitespace()
            .zip(new.split_whitespace())
            .all(|(a, b)| is_number_word(a) == is_number_word(b))
}

#[derive(Default)]
pub struct PatientIndex {
    rows: Vec<PatientRow>,
    hay: Vec<Utf32String>,
    masks: Vec<u64>,
    by_id: HashMap<String, usize>,
    /// One matcher per scoring thread (they keep scratch memory).
    matchers: Vec<Matcher>,
    /// Rows in list order (name, birth date, id), and each row's place in it:
    /// an empty query lists in this order and equal scores break ties by it,
    /// so the list does not depend on which reply arrived first.
    sorted: Vec<usize>,
    place: Vec<u32>,
    sorted_len: usize,
    /// Query of the last match, and how many rows existed then.
    last: Option<(String, usize)>,
    /// Every row matching the last query (unordered): the candidates when the query grows.
    filtered: Vec<usize>,
    /// The best matches of the last query, best first.
    ranked: Vec<usize>,
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
                let hay = row.haystack();
                self.masks[i] = char_mask(&hay);
                self.hay[i] = Utf32String::from(hay);
                self.rows[i] = row;
                // Changed text: the old match set may no longer hold.
                self.last = None;
            }
            false
        } else {
            self.by_id.insert(row.id.clone(), self.rows.len());
            let hay = row.haystack();
            self.masks.push(char_mask(&hay));
            self.hay.push(Utf32String::from(hay));
            self.rows.push(row);
            true
        }
    }

    /// The ranked matches of the last [`PatientIndex::search`].
    pub fn ranked(&self) -> &[usize] {
        &self.ranked
    }

    fn sort_rows(&mut self) {
        if self.sorted_len == self.rows.len() && self.last.is_some() {
            return;
        }
        let rows = &self.rows;
        let mut sorted: Vec<usize> = (0..rows.len()).collect();
        sorted.sort_by_cached_key(|&i| {
            let r = &rows[i];
            (r.name.to_lowercase(), r.birth_date.clone(), r.id.clone())
        });
        self.place = vec![0; rows.len()];
        for (pos, &i) in sorted.iter().enumerate() {
            self.place[i] = pos as u32;
        }
        self.sorted = sorted;
        self.sorted_len = self.rows.len();
    }

    /// Score candidates (in index order), on several threads when there are many.
    fn score(&mut self, pattern: &Pattern, candidates: &[usize]) -> Vec<(u32, usize)> {
        let threads = if candidates.len() >= PARALLEL_FROM {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .clamp(1, MAX_THREADS)
        } else {
            1
        };
        while self.matchers.len() < threads {
            self.matchers.push(Matcher::new(Config::DEFAULT));
        }
        let hay = &self.hay;
        let run = |matcher: &mut Matcher, part: &[usize]| -> Vec<(u32, usize)> {
            part.iter()
                .filter_map(|&i| Some((pattern.score(hay[i].slice(..), matcher)?, i)))
                .collect()
        };
        if threads == 1 {
            return run(&mut self.matchers[0], candidates);
        }
        let chunk = candidates.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = candidates
                .chunks(chunk)
                .zip(self.matchers.iter_mut())
                .map(|(part, matcher)| scope.spawn(move || run(matcher, part)))
                .collect();
            // A scoring thread cannot panic short of a bug in the matcher;
            // its part is then simply missing from the results.
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    }

    /// Rank the working set for `query`; an empty query lists it in order.
    pub fn search(&mut self, query: &str) -> &[usize] {
        let query = query.trim_start();
        self.sort_rows();
        if query.trim().is_empty() {
            self.filtered = (0..self.rows.len()).collect();
            self.ranked = self.sorted.iter().copied().take(MAX_RANKED).collect();
            self.last = Some((String::new(), self.rows.len()));
            return &self.ranked;
        }
        let pattern = pattern(query);
        let narrowing = match &self.last {
            Some((q, n)) if !q.is_empty() && narrows(q, query) => Some(*n),
            _ => None,
        };
        let need = char_mask(query);
        let masks = &self.masks;
        let candidates: Vec<usize> = match narrowing {
            Some(n) => self
                .filtered
                .iter()
                .copied()
                .chain(n..self.rows.len())
                .filter(|&i| masks[i] & need == need)
                .collect(),
            None => (0..self.rows.len())
                .filter(|&i| masks[i] & need == need)
                .collect(),
        };
        let mut scored = self.score(&pattern, &candidates);
        // Candidates were in index order, so the matches are too.
        self.filtered = scored.iter().map(|&(_, i)| i).collect();
        // Best score first; equal scores in list order.
        let place = &self.place;
        let order =
            |a: &(u32, usize), b: &(u32, usize)| b.0.cmp(&a.0).then(place[a.1].cmp(&place[b.1]));
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
    fn an_mrn_at_the_end_of_an_accented_name_matches() {
        let mut ix = index();
        ix.search("12345");
        assert_eq!(ids(&ix), vec!["1"]);
    }

    #[test]
    fn numbers_match_as_typed() {
        let mut ix = index();
        // Digits in order but apart do not make an MRN match.
        ix.search("0012");
        assert_eq!(ids(&ix), vec!["1"]);
        ix.search("1984-0");
        let mut got = ids(&ix);
        got.sort();
        assert_eq!(got, vec!["1", "4"]);
        // A word turning from a number into a name is matched afresh.
        assert!(!narrows("19", "19a"));
        assert!(narrows("garc 19", "garc 198"));
        assert!(!narrows("garc 19", "gar"));
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
