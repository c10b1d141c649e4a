//! Time on a patient's message thread, for the app: counted from keys while
//! the message view is open (gaps capped, nothing while locked or while
//! another pane shows), written to the task as a work-time entry when the
//! view closes, an action is taken on the task, the screen locks or the
//! app quits; each entry keeps its id through a retry, so a version
//! conflict re-reads the task and adds it again, never twice. Recording for
//! billing is a conditional create in the billing queue.

use std::collections::HashMap;

use serde_json::Value;

use super::{App, Origin};
use crate::api::{ApiError, ApiReply, ApiRequest, Write};
use crate::triage::time_count::{WorkEntry, add_entry, entries_of, window_seconds};
use crate::tui::command::{PaneReply, TaskChange};
use crate::tui::panes::PaneId;
use crate::tui::panes::tasks::WorkSummary;

/// A conflict is read and tried again this often before the entry waits
/// for the next occasion (the view opening or closing again).
const WORK_TRIES: u32 = 4;

/// An entry counted here and not yet confirmed by the server.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Unsent {
    pub entry: WorkEntry,
    pub patient_id: String,
    pub task_id: String,
    /// On its way (alone, or with an action on the task).
    pub sending: bool,
    pub tries: u32,
}

/// Entries on a patient's tasks as last read, and how the read went:
/// `None` while reading, `Ok(more)` read (`more`: more pages on the server).
type ReadEntries = (Vec<WorkEntry>, Option<Result<bool, String>>);

/// What the app knows of the time on each patient's messages.
#[derive(Debug, Clone, Default)]
pub(super) struct WorkState {
    pub active: crate::triage::time_count::ActiveTime,
    /// Per patient.
    pub read: HashMap<String, ReadEntries>,
    /// Entries the server confirmed this session, per patient (kept so a
    /// read that raced a write does not hide them).
    pub written: HashMap<String, Vec<WorkEntry>>,
    pub unsent: Vec<Unsent>,
    pub summary: Option<WorkSummary>,
    /// Billing records made (or found) this session, by client id.
    pub billed: std::collections::HashSet<String>,
}

fn entry_id() -> String {
    let b: [u8; 12] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("wt-{h}")
}

impl App {
    /// What is being looked at now, if it is a patient's message.
    fn work_target(&self) -> Option<(String, String)> {
        if self.locked.is_some() || self.focus != PaneId::Tasks {
            return None;
        }
        let v = self.panes.tasks.viewing()?;
        Some((v.patient_id.clone()?, v.task_id.clone()))
    }

    /// After every event: start or stop counting as the view opens, closes
    /// or loses the screen; what stopping leaves is written.
    pub(super) fn work_sync(&mut self) {
        let target = self.work_target();
        let running = self
            .work
            .active
            .running()
            .map(|(p, t)| (p.to_string(), t.to_string()));
        if running != target {
            let now = self.clock.instant;
            if running.is_some() {
                self.work.active.stop(now);
                self.work_flush(None);
            }
            if let Some((p, t)) = &target {
                self.work.active.start(p, t, now);
                self.load_patient_tasks(p.clone());
            }
        }
        self.work_refresh_summary();
    }

    /// Write what is counted (at least the minimum) now, keeping the count
    /// running: before recording for billing.
    fn work_checkpoint(&mut self) {
        let now = self.clock.instant;
        let running = self
            .work
            .active
            .running()
            .map(|(p, t)| (p.to_string(), t.to_string()));
        self.work.active.stop(now);
        self.work_flush(None);
        if let Some((p, t)) = running {
            self.work.active.start(&p, &t, now);
        }
    }

    /// The screen locks or the app quits: the count stops and is written
    /// (the write keeps the token until it is back).
    pub(super) fn work_stop(&mut self) {
        self.work.active.stop(self.clock.instant);
        self.work_flush(None);
    }

    fn load_patient_tasks(&mut self, patient_id: String) {
        let e = self.work.read.entry(patient_id.clone()).or_default();
        e.1 = None;
        self.submit(
            ApiRequest::PatientTasks {
                patient_id: patient_id.clone(),
            },
            Origin::WorkTasks { patient_id },
        );
    }

    /// Turn what is due (for `task`, or all) into entries and send them.
    fn work_flush(&mut self, task: Option<&str>) {
        self.work_take_due(task);
        self.work_send();
    }

    /// Send every unsent entry not on its way: from the task as the queue
    /// holds it, else read first.
    fn work_send(&mut self) {
        let waiting: Vec<usize> = (0..self.work.unsent.len())
            .filter(|&i| !self.work.unsent[i].sending)
            .collect();
        for i in waiting {
            let u = self.work.unsent[i].clone();
            // Entries for one task go together in one write.
            if self.work.unsent[..i]
                .iter()
                .any(|o| o.task_id == u.task_id && o.sending)
            {
                continue;
            }
            self.work.unsent[i].sending = true;
            let row = self
                .panes
                .tasks
                .rows()
                .iter()
                .find(|r| r.task_id == u.task_id)
                .and_then(|r| Some((r.raw.clone(), r.version.clone()?)));
            match row {
                Some((raw, version)) => self.work_write(&u.task_id, raw, version),
                None => {
                    self.submit(
                        ApiRequest::ReadTask {
                            id: u.task_id.clone(),
                        },
                        Origin::WorkReread { task_id: u.task_id },
                    );
                }
            }
        }
    }

    /// Add the task's unsent entries to `task` and write it from `version`.
    fn work_write(&mut self, task_id: &str, mut task: Value, version: String) {
        let mut ids = Vec::new();
        for u in self.work.unsent.iter_mut().filter(|u| u.task_id == task_id) {
            u.sending = true;
            u.tries += 1;
            add_entry(&mut task, &u.entry);
            ids.push(u.entry.id.clone());
        }
        self.submit(
            ApiRequest::Write(Write::Update {
                resource: task,
                version,
            }),
            Origin::WorkWrite {
                task_id: task_id.to_string(),
            },
        );
    }

    /// Time counted enough to keep (on `task`, or on any) becomes entries
    /// waiting to be written, each with the id its retries reuse.
    fn work_take_due(&mut self, task: Option<&str>) {
        let who = self.notes.practitioner.clone();
        let at = self.clock.now;
        for (patient_id, task_id, seconds) in self.work.active.take_due(task) {
            self.work.unsent.push(Unsent {
                entry: WorkEntry {
                    id: entry_id(),
                    who: who.clone(),
                    seconds,
                    at,
                },
                patient_id,
                task_id,
                sending: false,
                tries: 0,
            });
        }
    }

    /// An action on tasks: what is counted on them rides with the change
    /// (one write, one version), and is confirmed when it is stored.
    pub(super) fn work_ride(&mut self, changes: &mut [TaskChange]) {
        for c in changes.iter_mut() {
            self.work_take_due(Some(&c.task_id));
            for u in self
                .work
                .unsent
                .iter_mut()
                .filter(|u| u.task_id == c.task_id && !u.sending)
            {
                u.sending = true;
                u.tries += 1;
                add_entry(&mut c.resource, &u.entry);
            }
        }
    }

    /// A task as the server stored it: its entries are confirmed.
    pub(super) fn work_stored(&mut self, task: &Value) {
        let stored: Vec<String> = entries_of(task).into_iter().map(|e| e.id).collect();
        let mut done = Vec::new();
        self.work.unsent.retain(|u| {
            if stored.contains(&u.entry.id) {
                done.push(u.clone());
                false
            } else {
                true
            }
        });
        for u in done {
            self.work
                .written
                .entry(u.patient_id)
                .or_default()
                .push(u.entry);
        }
    }

    /// A change to `task_id` failed: entries that rode with it go alone,
    /// from the task read again.
    pub(super) fn work_ride_failed(&mut self, task_id: &str) {
        let mut any = false;
        for u in self
            .work
            .unsent
            .iter_mut()
            .filter(|u| u.task_id == task_id && u.sending)
        {
            u.sending = false;
            any = true;
        }
        if any {
            self.work_retry(task_id);
        }
    }

    fn work_retry(&mut self, task_id: &str) {
        let can = self
            .work
            .unsent
            .iter()
            .any(|u| u.task_id == task_id && u.tries < WORK_TRIES);
        if !can {
            self.warn(
                "Time on the patient's messages was not saved (the task kept changing); \
                 it is tried again when the message is next opened or closed"
                    .into(),
            );
            return;
        }
        for u in self.work.unsent.iter_mut().filter(|u| u.task_id == task_id) {
            u.sending = true;
        }
        self.submit(
            ApiRequest::ReadTask {
                id: task_id.to_string(),
            },
            Origin::WorkReread {
                task_id: task_id.to_string(),
            },
        );
    }

    pub(super) fn work_written(&mut self, task_id: String, result: Result<ApiReply, ApiError>) {
        match result {
            Ok(ApiReply::Written { resource, version }) => self.task_stored(resource, version),
            Err(e) if e.status == Some(412) => {
                self.work_unsending(&task_id);
                self.work_retry(&task_id);
            }
            other => self.work_not_saved(&task_id, "", other),
        }
        self.work_refresh_summary();
    }

    fn work_unsending(&mut self, task_id: &str) {
        for u in self.work.unsent.iter_mut().filter(|u| u.task_id == task_id) {
            u.sending = false;
        }
    }

    /// The entries stay here for the next try; the clinician is told.
    fn work_not_saved(&mut self, task_id: &str, step: &str, outcome: Result<ApiReply, ApiError>) {
        self.work_unsending(task_id);
        let why = match outcome {
            Err(e) => e.to_string(),
            _ => "unexpected reply".into(),
        };
        self.warn(format!(
            "Time on the patient's messages was not saved ({step}{why}); \
             it is kept here and tried again"
        ));
    }

    pub(super) fn work_reread(&mut self, task_id: String, result: Result<ApiReply, ApiError>) {
        match result {
            Ok(ApiReply::Resource(task)) => {
                let version = task
                    .pointer("/meta/versionId")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                // Already there (an earlier try got through): confirmed.
                self.work_stored(&task);
                self.reply_to(PaneId::Tasks, PaneReply::TaskNow(task.clone()));
                let left = self.work.unsent.iter().any(|u| u.task_id == task_id);
                match version {
                    Some(v) if left => self.work_write(&task_id, task, v),
                    _ => self.work_unsending(&task_id),
                }
            }
            other => self.work_not_saved(&task_id, "the task could not be read: ", other),
        }
        self.work_refresh_summary();
    }

    pub(super) fn work_tasks_read(
        &mut self,
        patient_id: String,
        result: Result<ApiReply, ApiError>,
    ) {
        let e = self.work.read.entry(patient_id).or_default();
        match result {
            Ok(ApiReply::Resources { resources, more }) => {
                e.0 = resources.iter().flat_map(entries_of).collect();
                e.1 = Some(Ok(more));
            }
            Ok(_) => e.1 = Some(Err("unexpected reply".into())),
            Err(err) => e.1 = Some(Err(err.to_string())),
        }
        self.work_refresh_summary();
    }

    /// The line the message view shows, from what was read, written, is on
    /// its way and is counted now.
    pub(super) fn work_refresh_summary(&mut self) {
        let summary = self.work_target().map(|(p, _)| {
            let (read_entries, read) = self
                .work
                .read
                .get(&p)
                .map(|(e, r)| (e.as_slice(), r.clone()))
                .unwrap_or((&[], None));
            let written = self.work.written.get(&p).map(Vec::as_slice).unwrap_or(&[]);
            let unsent = self
                .work
                .unsent
                .iter()
                .filter(|u| u.patient_id == p)
                .map(|u| &u.entry);
            let me = self.notes.practitioner.as_deref();
            let (mut total, mut mine) = window_seconds(
                read_entries.iter().chain(written).chain(unsent),
                self.clock.now,
                me,
            );
            let now = self.work.active.counted(&p).as_secs();
            total += now;
            mine += now;
            WorkSummary {
                patient_id: p,
                total_secs: total,
                mine_secs: mine,
                read,
            }
        });
        if summary != self.work.summary {
            self.work.summary = summary;
            self.dirty = true;
        }
    }

    /// Record the time for billing: written first, then a task in the
    /// billing queue, made once per patient, day and code.
    pub(super) fn record_billing(&mut self, task: Value, client_id: String, label: String) {
        self.work_checkpoint();
        let authored = task
            .get("authoredOn")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        self.submit(
            ApiRequest::Write(Write::Create {
                resource: task,
                client_id: client_id.clone(),
                conditional: self.features.conditional_create,
                replace_existing: false,
            }),
            Origin::Billing {
                label,
                authored,
                client_id,
            },
        );
    }

    pub(super) fn billing_recorded(
        &mut self,
        label: String,
        authored: String,
        client_id: String,
        result: Result<ApiReply, ApiError>,
    ) {
        match result {
            Ok(ApiReply::Written { resource, .. }) => {
                // Found rather than made: made earlier, here or elsewhere.
                let found = resource.get("authoredOn").and_then(Value::as_str);
                let earlier = !self.work.billed.insert(client_id);
                if earlier || found.is_some_and(|f| !same_instant(f, &authored)) {
                    self.inform(format!(
                        "Already recorded for billing: {}",
                        resource
                            .get("description")
                            .and_then(Value::as_str)
                            .unwrap_or(&label)
                    ));
                } else {
                    self.inform(format!("Recorded for billing (billing queue): {label}"));
                }
            }
            Ok(_) => self.warn(format!(
                "Not recorded for billing: unexpected reply ({label})"
            )),
            Err(e) => self.warn(format!("Not recorded for billing: {e}")),
        }
    }
}

fn same_instant(a: &str, b: &str) -> bool {
    let t = |s: &str| crate::fhir::time::instant(s);
    match (t(a), t(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}
