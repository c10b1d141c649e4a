//! Fuzzy matching off the UI task: the working set lives on a thread of its
//! own, which ranks it for each query and sends back the rows to list. The
//! UI only ever holds the rows on screen, so typing and drawing never wait
//! for a match at 100k patients; a burst of keys is matched once, for the
//! last query.

use std::sync::mpsc;

use crate::chart::PatientRow;
use crate::chart::query::DateOrder;
use crate::tui::patient_index::PatientIndex;

/// Work for the matcher, applied in order.
#[derive(Debug, Clone)]
pub enum MatchJob {
    /// Add or refresh patients in the working set.
    Add(Vec<PatientRow>),
    /// Rank the working set for `query`; rows the server returned for this
    /// query (`server_found`) are listed even where local matching misses.
    Search {
        seq: u64,
        query: String,
        server_found: Vec<String>,
    },
    SetDateOrder(DateOrder),
    /// Forget every patient (the screen locked).
    Clear,
}

/// The ranked rows for a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Matches {
    /// The [`MatchJob::Search`] answered; earlier ones may have been skipped.
    pub seq: u64,
    pub query: String,
    /// Best first, at most [`crate::tui::patient_index::MAX_RANKED`].
    pub rows: Vec<PatientRow>,
    /// Patients in the working set.
    pub known: usize,
}

/// Apply jobs to an index; the answer to the last search among them.
pub fn run_jobs(index: &mut PatientIndex, jobs: Vec<MatchJob>) -> Option<Matches> {
    let mut last = None;
    for job in jobs {
        match job {
            MatchJob::Add(rows) => {
                for r in rows {
                    index.upsert(r);
                }
            }
            MatchJob::SetDateOrder(order) => index.set_date_order(order),
            MatchJob::Clear => {
                let order = index.date_order();
                *index = PatientIndex::default();
                index.set_date_order(order);
                last = None;
            }
            MatchJob::Search {
                seq,
                query,
                server_found,
            } => last = Some((seq, query, server_found)),
        }
    }
    let (seq, query, server_found) = last?;
    let ranked = index.search_with(&query, &server_found).to_vec();
    let rows = ranked
        .iter()
        .filter_map(|&i| index.row(i).cloned())
        .collect();
    Some(Matches {
        seq,
        query,
        rows,
        known: index.len(),
    })
}

/// The matcher thread. Dropping the handle ends the thread.
pub struct MatchWorker {
    tx: mpsc::Sender<MatchJob>,
}

impl MatchWorker {
    /// Start the thread; `deliver` is called on it with each result.
    pub fn spawn(deliver: impl Fn(Matches) + Send + 'static) -> MatchWorker {
        let (tx, rx) = mpsc::channel::<MatchJob>();
        let spawned = std::thread::Builder::new()
            .name("chartty-matcher".into())
            .spawn(move || {
                let mut index = PatientIndex::default();
                while let Ok(first) = rx.recv() {
                    // Everything queued meanwhile: rows are added, and only
                    // the newest query is matched.
                    let mut jobs = vec![first];
                    jobs.extend(rx.try_iter());
                    if let Some(m) = run_jobs(&mut index, jobs) {
                        deliver(m);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the matcher thread: {e}");
        }
        MatchWorker { tx }
    }

    pub fn send(&self, job: MatchJob) {
        // The thread only ends with the handle; a send cannot fail before.
        let _ = self.tx.send(job);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, name: &str) -> PatientRow {
        PatientRow {
            id: id.into(),
            name: name.into(),
            gender: "male",
            birth_date: "1970-01-01".into(),
            mrn: format!("000{id}"),
            mrn_is_other_id: false,
            deceased: None,
        }
    }

    #[test]
    fn a_burst_of_queries_is_matched_once_for_the_last() {
        let mut ix = PatientIndex::default();
        let m = run_jobs(
            &mut ix,
            vec![
                MatchJob::Add(vec![row("1", "Søren, Ib"), row("2", "Smith, Jo")]),
                MatchJob::Search {
                    seq: 1,
                    query: "s".into(),
                    server_found: vec![],
                },
                MatchJob::Search {
                    seq: 2,
                    query: "soren".into(),
                    server_found: vec![],
                },
            ],
        )
        .unwrap();
        assert_eq!(m.seq, 2);
        assert_eq!(m.known, 2);
        assert_eq!(
            m.rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["1"]
        );
        assert!(run_jobs(&mut ix, vec![MatchJob::Add(vec![])]).is_none());
    }

    #[test]
    fn the_thread_answers() {
        let (tx, rx) = mpsc::channel();
        let w = MatchWorker::spawn(move |m| {
            let _ = tx.send(m);
        });
        w.send(MatchJob::Add(vec![row("1", "Łukasz, Wójcik")]));
        w.send(MatchJob::Search {
            seq: 7,
            query: "lukasz".into(),
            server_found: vec![],
        });
        let m = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        assert_eq!((m.seq, m.rows.len()), (7, 1));
    }
}
