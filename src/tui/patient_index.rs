//! The working set of patients and fuzzy matching over it.
//!
//! A query is words, each of which must match: words with a digit (an MRN,
//! a birth year or date, an identifier) match the birth date or the MRN as
//! typed (a substring; a typed date such as `05/14/1971` is read as a
//! date first); other words match the name fuzzily (nucleo), both folded the
//! way the server folds them ("nguyen" finds Nguyễn, "lodz" Łódź), so
//! `garc 1984`, `00012345` and `smi jo` all work. Typing one more character
//! only narrows the previous matches (plus any patients added since), which
//! keeps a keystroke cheap at 100k patients.

use std::collections::HashMap;

use nucleo_matcher::pattern::{Atom, AtomKind, CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher, Utf32String};

use crate::chart::PatientRow;
use crate::chart::query::{DateOrder, birthdate};
use crate::fhir::fold::fold;

/// Most rows a result list keeps ranked; more is never useful on a screen.
pub const MAX_RANKED: usize = 500;
/// Below this many candidates one thread scores faster than several.
const PARALLEL_FROM: usize = 16_384;
/// Threads used to score a large candidate set.
const MAX_THREADS: usize = 4;

/// Letters and digits present in folded text: a row lacking any of the
/// query's cannot match it.
fn char_mask(folded: &str) -> u64 {
    folded.chars().fold(0, |m, c| match c {
        'a'..='z' => m | 1 << (c as u32 - 'a' as u32),
        '0'..='9' => m | 1 << (26 + c as u32 - '0' as u32),
        _ => m,
    })
}

/// Words with a digit are numbers: matched as typed against birth date and MRN.
fn is_number_word(word: &str) -> bool {
    word.chars().any(|c| c.is_ascii_digit())
}

/// A query split the way rows are matched.
struct Query {
    /// Fuzzy pattern of the name words; `None` when there are none.
    name: Option<Pattern>,
    name_mask: u64,
    /// Number words, lower-cased.
    numbers: Vec<String>,
}

impl Query {
    fn parse(query: &str, order: DateOrder) -> Query {
        let folded = fold(query);
        let (numbers, names): (Vec<&str>, Vec<&str>) =
            folded.split_whitespace().partition(|w| is_number_word(w));
        let name = (!names.is_empty()).then(|| {
            let mut p = Pattern::new(
                "",
                CaseMatching::Ignore,
                Normalization::Smart,
                AtomKind::Fuzzy,
            );
            p.atoms = names
                .iter()
                .map(|w| {
                    Atom::new(
                        w,
                        CaseMatching::Ignore,
                        Normalization::Never,
                        AtomKind::Fuzzy,
                        false,
                    )
                })
                .collect();
            p
        });
        Query {
            name,
            name_mask: names.iter().fold(0, |m, w| m | char_mask(w)),
            // A typed date matches the birth date as the server stores it.
            numbers: numbers
                .iter()
                .map(|w| birthdate(w, order).unwrap_or_else(|| w.to_lowercase()))
                .collect(),
        }
    }
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

/// What a matched number word adds to the score: the MRN itself, then the
/// start of the MRN or birth date, then anywhere.
fn number_score(mrn: &str, birth_date: &str, word: &str) -> u32 {
    if mrn == word {
        400
    } else if mrn.starts_with(word) {
        200
    } else if birth_date.starts_with(word) {
        150
    } else {
        50
    }
}

/// Fields of the rows, laid out for matching. Only what the rows do not
/// already hold in matchable form is kept here (memory at 100k patients).
#[derive(Default)]
struct Fields {
    name: Vec<Utf32String>,
    name_mask: Vec<u64>,
    /// The MRN lower-cased, where that differs from the row's MRN.
    mrn_lower: Vec<Option<Box<str>>>,
}

impl Fields {
    fn set(&mut self, i: usize, row: &PatientRow) {
        let folded = fold(&row.name);
        let (name, mask) = (Utf32String::from(folded.as_str()), char_mask(&folded));
        let lower = row.mrn.to_lowercase();
        let mrn = (lower != row.mrn).then(|| lower.into_boxed_str());
        if i == self.name.len() {
            self.name.push(name);
            self.name_mask.push(mask);
            self.mrn_lower.push(mrn);
        } else {
            self.name[i] = name;
            self.name_mask[i] = mask;
            self.mrn_lower[i] = mrn;
        }
    }

    fn score(
        &self,
        rows: &[PatientRow],
        q: &Query,
        i: usize,
        matcher: &mut Matcher,
    ) -> Option<u32> {
        let mut total = 0;
        for w in &q.numbers {
            let row = &rows[i];
            let mrn = self.mrn_lower[i].as_deref().unwrap_or(row.mrn.as_str());
            let dob = row.birth_date.as_str();
            if !(mrn.contains(w.as_str()) || dob.contains(w.as_str())) {
                return None;
            }
            total += number_score(mrn, dob, w);
        }
        if let Some(p) = &q.name {
            if self.name_mask[i] & q.name_mask != q.name_mask {
                return None;
            }
            total += p.score(self.name[i].slice(..), matcher)?;
        }
        Some(total)
    }
}

#[derive(Default)]
pub struct PatientIndex {
    rows: Vec<PatientRow>,
    fields: Fields,
    by_id: HashMap<Box<str>, u32>,
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
    /// Every row matching the last query, in index order: the candidates when the query grows.
    filtered: Vec<usize>,
    /// The best matches of the last query, best first.
    ranked: Vec<usize>,
    date_order: DateOrder,
}

impl PatientIndex {
    pub fn set_date_order(&mut self, order: DateOrder) {
        if self.date_order != order {
            self.date_order = order;
            self.last = None;
        }
    }

    pub fn date_order(&self) -> DateOrder {
        self.date_order
    }

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
        self.by_id.get(id).and_then(|&i| self.rows.get(i as usize))
    }

    /// Add or refresh a patient; returns whether it was new.
    pub fn upsert(&mut self, row: PatientRow) -> bool {
        if let Some(i) = self.by_id.get(row.id.as_str()).map(|&i| i as usize) {
            if self.rows[i] != row {
                self.fields.set(i, &row);
                self.rows[i] = row;
                // Changed text: the old match set and order may no longer hold.
                self.last = None;
                self.sorted_len = 0;
            }
            false
        } else {
            let i = self.rows.len();
            self.by_id.insert(row.id.as_str().into(), i as u32);
            self.fields.set(i, &row);
            self.rows.push(row);
            true
        }
    }

    /// The ranked matches of the last [`PatientIndex::search`].
    pub fn ranked(&self) -> &[usize] {
        &self.ranked
    }

    fn sort_rows(&mut self) {
        if self.sorted_len == self.rows.len() && self.sorted.len() == self.rows.len() {
            return;
        }
        let rows = &self.rows;
        let mut sorted: Vec<usize> = (0..rows.len()).collect();
        sorted.sort_by_cached_key(|&i| {
            let r = &rows[i];
            // Alphabetical as a reader expects it: Østergaard among the Os.
            (fold(&r.name), r.birth_date.clone(), r.id.clone())
        });
        self.place = vec![0; rows.len()];
        for (pos, &i) in sorted.iter().enumerate() {
            self.place[i] = pos as u32;
        }
        self.sorted = sorted;
        self.sorted_len = self.rows.len();
    }

    /// Score candidates (in index order), on several threads when there are many.
    fn score(&mut self, q: &Query, candidates: &[usize]) -> Vec<(u32, usize)> {
        let threads = if candidates.len() >= PARALLEL_FROM && q.name.is_some() {
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
        let (fields, rows) = (&self.fields, &self.rows);
        let run = |matcher: &mut Matcher, part: &[usize]| -> Vec<(u32, usize)> {
            part.iter()
                .filter_map(|&i| Some((fields.score(rows, q, i, matcher)?, i)))
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

    /// Rank the working set for `query`, then add the rows the server found
    /// for it that local matching did not (an identifier the list does not
    /// show, a name spelled another way): what the server answered is
    /// never filtered away.
    pub fn search_with(&mut self, query: &str, server_found: &[String]) -> &[usize] {
        self.search(query);
        for id in server_found {
            if let Some(&i) = self.by_id.get(id.as_str())
                && !self.ranked.contains(&(i as usize))
            {
                self.ranked.push(i as usize);
            }
        }
        &self.ranked
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
        let q = Query::parse(query, self.date_order);
        let candidates: Vec<usize> = match &self.last {
            Some((old, n)) if !old.trim().is_empty() && narrows(old, query) => self
                .filtered
                .iter()
                .copied()
                .chain(*n..self.rows.len())
                .collect(),
            _ => (0..self.rows.len()).collect(),
        };
        let mut scored = self.score(&q, &candidates);
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
            gender: "female",
            birth_date: dob.into(),
            mrn: mrn.into(),
            mrn_is_other_id: false,
            deceased: None,
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
    fn upper_case_mrns_match_lower_case_typing_and_rows_refresh() {
        let mut ix = index();
        ix.upsert(row("8", "Okafor, Chidi", "1970-01-01", "CB56-96D9"));
        ix.search("cb56");
        assert_eq!(ids(&ix), vec!["8"]);
        // The same patient again with a changed MRN: found by the new one only.
        assert!(!ix.upsert(row("8", "Okafor, Chidi", "1970-01-01", "XY99")));
        ix.search("cb56");
        assert!(ids(&ix).is_empty());
        ix.search("xy99");
        assert_eq!(ids(&ix), vec!["8"]);
        assert_eq!(ix.get("8").map(|r| r.mrn.as_str()), Some("XY99"));
        assert_eq!(ix.len(), 5);
    }

    #[test]
    fn identifiers_with_letters_match_as_typed() {
        let mut ix = index();
        ix.upsert(row("9", "Fonseca, Agustín", "1994-02-01", "cb5696d9-a0de"));
        ix.search("CB5696");
        assert_eq!(ids(&ix), vec!["9"]);
        ix.search("agustin 1994");
        assert_eq!(ids(&ix), vec!["9"]);
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
        assert!(!narrows("ab", "ab1"));
        assert!(narrows("19", "19a"));
        assert!(narrows("garc 19", "garc 198"));
        assert!(!narrows("garc 19", "gar"));
    }

    #[test]
    fn names_fold_the_way_they_are_typed_and_dates_in_any_order() {
        let mut ix = index();
        ix.upsert(row("10", "Nguyễn, Thị Lan", "1971-05-14", "00010000"));
        ix.upsert(row("11", "Østergaard, Søren", "1960-01-02", "00010001"));
        ix.upsert(row("12", "Yılmaz, Ayşe", "1980-02-03", "00010002"));
        ix.upsert(row("13", "Wójcik, Łukasz", "1990-03-04", "00010003"));
        for (typed, id) in [
            ("nguyen", "10"),
            ("nguyễn thi", "10"),
            ("soren", "11"),
            ("ostergaard", "11"),
            ("yilmaz", "12"),
            ("lukasz", "13"),
            ("05/14/1971", "10"),
            ("14.05.1971", "10"),
            ("1971-05-14", "10"),
            ("nguyen 05/14/1971", "10"),
        ] {
            ix.search(typed);
            assert_eq!(ids(&ix), vec![id], "{typed}");
        }
        ix.set_date_order(DateOrder::Dmy);
        ix.search("02/01/1960");
        assert_eq!(ids(&ix), vec!["11"]);
    }

    #[test]
    fn what_the_server_found_is_never_filtered_away() {
        let mut ix = index();
        // The server matched an identifier the list does not hold (an SSN).
        ix.search_with("999-12-3456", &["2".to_string()]);
        assert_eq!(ids(&ix), vec!["2"]);
        ix.search_with("smith", &["2".to_string(), "unknown".to_string()]);
        let mut got = ids(&ix);
        got.sort();
        assert_eq!(got, vec!["2", "4"], "no duplicate, unknown ids skipped");
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
